import { constants as fsConstants, openSync, readdirSync } from "node:fs";

import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";

import * as native from "../../native/index.ts";
import {
  DEFAULT_OFFER_TIMEOUT_MS,
  MemfdGrantTable,
  ShmError,
  XenGrantTable,
  createGrantTable,
  grantSocketPath,
  whenReadable,
  xenGrantAvailability,
  type GrantTable,
} from "../../shm/index.ts";
import { temporaryDirectory } from "../helpers/processes.ts";

const PAGE = native.PAGE_SIZE;
const GRANTER = 1;
const MAPPER = 2;

/** The grant backends this machine can run, each making a (granter, mapper) pair of tables. */
const backends: Array<{ name: string; pair: (dir: string, maxGrantedPages?: number) => [GrantTable, GrantTable] }> = [
  {
    name: "memfd",
    pair: (dir, maxGrantedPages) => [
      new MemfdGrantTable({
        domain: GRANTER,
        socketDir: dir,
        ...(maxGrantedPages === undefined ? {} : { maxGrantedPages }),
      }),
      new MemfdGrantTable({ domain: MAPPER, socketDir: dir }),
    ],
  },
];

function expectShmError(run: () => unknown, code: string): void {
  let caught: unknown;
  try {
    run();
  } catch (error) {
    caught = error;
  }
  expect(caught).toBeInstanceOf(ShmError);
  expect((caught as ShmError).code).toBe(code);
}

describe.each(backends)("grant table ($name backend, one process)", ({ pair }) => {
  let dir: { dir: string; remove: () => void };
  let granter: GrantTable;
  let mapper: GrantTable;

  beforeEach(async () => {
    dir = temporaryDirectory();
    [granter, mapper] = pair(dir.dir);
    (granter as MemfdGrantTable).offer?.(MAPPER);
    await mapper.attach(GRANTER);
  });
  afterEach(() => {
    granter.destroy();
    mapper.destroy();
    dir.remove();
  });

  it("maps shared pages as one live view: writes after the map are seen on both sides, zero bytes copied", () => {
    const shared = granter.share(MAPPER, 3, { writable: true });
    expect(shared.refs).toHaveLength(3);
    const mapping = mapper.map(GRANTER, shared.refs, { writable: true });
    const mine = new Uint8Array(shared.buffer);
    const theirs = new Uint8Array(mapping.buffer);
    expect(theirs.byteLength).toBe(3 * PAGE);
    mine[2 * PAGE + 5] = 0x5a;
    expect(theirs[2 * PAGE + 5]).toBe(0x5a);
    theirs[7] = 0xa5;
    expect(mine[7]).toBe(0xa5);
    expect(mapper.counters.bytesCopied).toBe(0);
    expect(mapper.counters.mmapCalls).toBe(1);
    mapper.unmap(mapping);
    granter.revoke(shared);
  });

  it("offers a contiguous run of refs as fd + offset + length that maps to the same bytes", () => {
    const shared = granter.share(MAPPER, 4);
    new Uint8Array(shared.buffer)[3 * PAGE] = 77;
    const mapping = mapper.map(GRANTER, shared.refs);
    const range = mapping.contiguous;
    expect(range).not.toBeNull();
    if (range === null) return;
    expect(range.length).toBe(4 * PAGE);
    const again = native.mmap(range.fd, range.offset, range.length);
    expect(new Uint8Array(again)[3 * PAGE]).toBe(77);
    native.munmap(again);
    mapper.unmap(mapping);
  });

  it("detach unmaps the domain's mappings and forgets its pool until the next attach", async () => {
    const shared = granter.share(MAPPER, 2);
    const mapping = mapper.map(GRANTER, shared.refs);
    mapper.detach(GRANTER);
    expect(mapping.buffer.byteLength).toBe(0);
    expectShmError(() => mapper.map(GRANTER, shared.refs), "GRANT_NO_PEER");
    mapper.detach(GRANTER);
    await mapper.attach(GRANTER);
    expect(new Uint8Array(mapper.map(GRANTER, shared.refs).buffer).byteLength).toBe(2 * PAGE);
  });

  it("after detach, attach takes the pool of a new granter process on the same socket", async () => {
    const old = granter.share(MAPPER, 1);
    new Uint8Array(old.buffer)[0] = 1;
    granter.destroy();
    mapper.detach(GRANTER);
    [granter] = pair(dir.dir);
    const fresh = granter.share(MAPPER, 1);
    new Uint8Array(fresh.buffer)[0] = 2;
    await mapper.attach(GRANTER);
    expect(new Uint8Array(mapper.map(GRANTER, fresh.refs).buffer)[0]).toBe(2);
  });

  it("maps a scattered list of refs in the order given, as one view with one mmap per run", () => {
    const a = granter.share(MAPPER, 2);
    const b = granter.share(MAPPER, 2);
    new Uint8Array(a.buffer).fill(1);
    new Uint8Array(b.buffer).fill(2);
    const refs = [b.refs[1], a.refs[0], a.refs[1], b.refs[0]] as number[];
    const before = mapper.counters.mmapCalls;
    const mapping = mapper.map(GRANTER, refs);
    const bytes = new Uint8Array(mapping.buffer);
    expect([bytes[0], bytes[PAGE], bytes[2 * PAGE], bytes[3 * PAGE + PAGE - 1]]).toEqual([2, 1, 1, 2]);
    expect(mapping.contiguous).toBeNull();
    // Runs: [b1] then [a0, a1, b0] (b0 directly follows a1 in the pool).
    expect(mapper.counters.mmapCalls - before).toBe(2);
    mapper.unmap(mapping);
    expect(mapping.buffer.byteLength).toBe(0);
  });

  it("rejects a ref that was never granted", () => {
    const shared = granter.share(MAPPER, 1);
    expectShmError(() => mapper.map(GRANTER, [(shared.refs[0] as number) + 1]), "GRANT_NOT_GRANTED");
  });

  it("rejects a revoked ref, and the granter's view is detached on revoke", () => {
    const shared = granter.share(MAPPER, 2);
    granter.revoke(shared);
    expect(shared.buffer.byteLength).toBe(0);
    expectShmError(() => mapper.map(GRANTER, shared.refs), "GRANT_REVOKED");
    expectShmError(() => granter.revoke(shared), "GRANT_STALE");
  });

  it.each([-1, 0.5, 2 ** 31, 2 ** 32 - 1, 2 ** 32, Number.NaN])("rejects the out-of-range ref %s", (ref) => {
    granter.share(MAPPER, 1);
    expectShmError(() => mapper.map(GRANTER, [ref]), "GRANT_OUT_OF_RANGE");
  });

  it("rejects an empty list of refs", () => {
    expectShmError(() => mapper.map(GRANTER, []), "GRANT_OUT_OF_RANGE");
  });

  it("refuses a writable mapping of pages granted read-only", () => {
    const shared = granter.share(MAPPER, 1);
    expectShmError(() => mapper.map(GRANTER, shared.refs, { writable: true }), "GRANT_READ_ONLY");
    const mapping = mapper.map(GRANTER, shared.refs);
    expect(mapping.writable).toBe(false);
    mapper.unmap(mapping);
  });

  it("refuses to map from a domain whose pool is not attached", () => {
    expectShmError(() => mapper.map(9, [0]), "GRANT_NO_PEER");
  });

  it("zeroes pages when they are granted again", () => {
    const first = granter.share(MAPPER, 2, { writable: true });
    new Uint8Array(first.buffer).fill(0xee);
    const refs = first.refs;
    granter.revoke(first);
    const second = granter.share(MAPPER, 2);
    expect(second.refs).toEqual(refs);
    expect(new Uint8Array(second.buffer).every((byte) => byte === 0)).toBe(true);
    const mapping = mapper.map(GRANTER, second.refs);
    expect(new Uint8Array(mapping.buffer).every((byte) => byte === 0)).toBe(true);
    mapper.unmap(mapping);
  });

  it("refuses a second unmap of the same mapping", () => {
    const mapping = mapper.map(GRANTER, granter.share(MAPPER, 1).refs);
    mapper.unmap(mapping);
    expectShmError(() => mapper.unmap(mapping), "GRANT_STALE");
  });
});

describe.each(backends)("grant limits ($name backend)", ({ pair }) => {
  it("refuses to grant past the domain's page limit, and grants again after a revoke", () => {
    const dir = temporaryDirectory();
    const [granter, mapper] = pair(dir.dir, 8);
    try {
      const a = granter.share(MAPPER, 5);
      granter.share(MAPPER, 3);
      expect(granter.counters.pagesShared).toBe(8);
      expectShmError(() => granter.share(MAPPER, 1), "GRANT_LIMIT");
      granter.revoke(a);
      expect(granter.share(MAPPER, 5).refs).toHaveLength(5);
    } finally {
      granter.destroy();
      mapper.destroy();
      dir.remove();
    }
  });
});

describe("memfd grant pools from a lying granter", () => {
  let dir: { dir: string; remove: () => void };
  let listenFd: number;
  let poll: native.Poll;
  const fds: number[] = [];

  beforeEach(() => {
    dir = temporaryDirectory();
  });
  afterEach(() => {
    poll?.close();
    native.close(listenFd);
    for (const fd of fds.splice(0)) native.close(fd);
    dir.remove();
  });

  /**
   * Offers a hand-made pool and table as domain 1 would, with whatever they
   * contain; `tableBytes` makes the table file larger than its content
   * (sparse: the pages past the content are never written).
   */
  function offer(table: Uint32Array, poolPages: number, seal: boolean, tableBytes?: number): void {
    const poolFd = native.memfdCreate("hostile-pool", poolPages * PAGE);
    const contentBytes = Math.ceil(table.byteLength / PAGE) * PAGE;
    const tableFd = native.memfdCreate("hostile-table", tableBytes ?? contentBytes);
    fds.push(poolFd, tableFd);
    const view = native.mmap(tableFd, 0, contentBytes, { writable: true });
    new Uint32Array(view).set(table);
    native.munmap(view);
    if (seal) {
      native.addSeals(poolFd, native.SEAL_SHRINK);
      native.addSeals(tableFd, native.SEAL_SHRINK);
    }
    listenFd = native.listen("stream", grantSocketPath(dir.dir, GRANTER, MAPPER));
    const hello = new Uint8Array(new Uint32Array([0x51475250, 1, GRANTER, MAPPER]).buffer);
    poll = new native.Poll(listenFd, () => {
      const connection = native.accept(listenFd);
      if (connection === null) return;
      native.sendmsg(connection, hello, [poolFd, tableFd]);
      native.close(connection);
    });
    poll.start(native.POLL_READABLE);
  }

  function header(entries: number): Uint32Array {
    const table = new Uint32Array(16 + entries);
    table.set([0x51474e54, 1, GRANTER, MAPPER, entries]);
    return table;
  }

  it("rejects a ref the table says is granted to another domain", async () => {
    const table = header(4);
    table[16] = 1 | (3 << 16);
    offer(table, 4, true);
    const mapper = new MemfdGrantTable({ domain: MAPPER, socketDir: dir.dir });
    await mapper.attach(GRANTER);
    expectShmError(() => mapper.map(GRANTER, [0]), "GRANT_WRONG_DOMAIN");
    mapper.destroy();
  });

  it("rejects refs the table calls granted but that lie past the end of the pool, or past the table", async () => {
    const table = header(1024);
    for (let i = 0; i < 1024; i++) table[16 + i] = 1 | (MAPPER << 16);
    offer(table, 2, true);
    const mapper = new MemfdGrantTable({ domain: MAPPER, socketDir: dir.dir });
    await mapper.attach(GRANTER);
    expect(new Uint8Array(mapper.map(GRANTER, [0, 1]).buffer)).toHaveLength(2 * PAGE);
    expectShmError(() => mapper.map(GRANTER, [1, 2]), "GRANT_OUT_OF_RANGE");
    expectShmError(() => mapper.map(GRANTER, [1_000_000]), "GRANT_OUT_OF_RANGE");
    mapper.destroy();
  });

  it("rejects malformed table entries", async () => {
    const table = header(4);
    table[16] = 3 | (MAPPER << 16);
    offer(table, 4, true);
    const mapper = new MemfdGrantTable({ domain: MAPPER, socketDir: dir.dir });
    await mapper.attach(GRANTER);
    expectShmError(() => mapper.map(GRANTER, [0]), "GRANT_BAD_POOL");
    mapper.destroy();
  });

  it.each([
    ["2^32 + 4096 bytes (past what the mapper can map)", 2 ** 32 + 4096],
    ["one page more than 2^24 entries need", Math.ceil((64 + 2 ** 24 * 4) / PAGE) * PAGE + PAGE],
  ])("refuses a table of %s with GRANT_BAD_POOL, and attaches nothing", async (_, tableBytes) => {
    offer(header(4), 4, true, tableBytes);
    const mapper = new MemfdGrantTable({ domain: MAPPER, socketDir: dir.dir });
    await expect(mapper.attach(GRANTER)).rejects.toMatchObject({
      name: "ShmError",
      code: "GRANT_BAD_POOL",
      message: expect.stringMatching(/grant table has a bad size/) as unknown,
    });
    expect(mapper.isAttached(GRANTER)).toBe(false);
    mapper.destroy();
  });

  it("attaches a table of exactly 2^24 entries, the most a domain may grant", async () => {
    offer(header(4), 4, true, Math.ceil((64 + 2 ** 24 * 4) / PAGE) * PAGE);
    const mapper = new MemfdGrantTable({ domain: MAPPER, socketDir: dir.dir });
    await mapper.attach(GRANTER);
    expect(mapper.isAttached(GRANTER)).toBe(true);
    mapper.destroy();
  });

  it("refuses a pool of more pages than its table has entries", async () => {
    // One table page holds 1008 entries: a sparse pool of 2^24 + 1 pages is far past them.
    offer(header(4), 2 ** 24 + 1, true);
    const mapper = new MemfdGrantTable({ domain: MAPPER, socketDir: dir.dir });
    await expect(mapper.attach(GRANTER)).rejects.toMatchObject({
      code: "GRANT_BAD_POOL",
      message: expect.stringMatching(/pool .* is larger than its table/) as unknown,
    });
    expect(mapper.isAttached(GRANTER)).toBe(false);
    mapper.destroy();
  });

  /**
   * A granter that accepts on its pair socket and says nothing until
   * `answer()`, which sends a valid offer on every connection it holds.
   */
  function silentGranter(): { accepted: number[]; answer: () => void } {
    const poolFd = native.memfdCreate("silent-pool", PAGE);
    const tableFd = native.memfdCreate("silent-table", PAGE);
    fds.push(poolFd, tableFd);
    const view = native.mmap(tableFd, 0, PAGE, { writable: true });
    new Uint32Array(view).set(header(4));
    native.munmap(view);
    native.addSeals(poolFd, native.SEAL_SHRINK);
    native.addSeals(tableFd, native.SEAL_SHRINK);
    listenFd = native.listen("stream", grantSocketPath(dir.dir, GRANTER, MAPPER));
    const accepted: number[] = [];
    poll = new native.Poll(listenFd, () => {
      const connection = native.accept(listenFd);
      if (connection === null) return;
      accepted.push(connection);
      fds.push(connection);
    });
    poll.start(native.POLL_READABLE);
    const hello = new Uint8Array(new Uint32Array([0x51475250, 1, GRANTER, MAPPER]).buffer);
    const answer = (): void => {
      for (const fd of accepted) {
        try {
          native.sendmsg(fd, hello, [poolFd, tableFd]);
        } catch {
          // A mapper that gave up has closed this connection.
        }
      }
    };
    return { accepted, answer };
  }

  /** Resolves once `fd` reads end of stream (the mapper closed its end). */
  async function hangUpOf(fd: number): Promise<void> {
    for (;;) {
      await whenReadable(fd);
      const received = native.recvmsg(fd, new Uint8Array(16), 0);
      if (received !== null && received.bytes === 0) return;
    }
  }

  it("rejects attach with GRANT_TIMEOUT, naming the domain and the socket, when the granter accepts and sends nothing for 10 s", async () => {
    const granter = silentGranter();
    vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout"] });
    try {
      const mapper = new MemfdGrantTable({ domain: MAPPER, socketDir: dir.dir });
      const settled = vi.fn();
      const attaching = mapper.attach(GRANTER).then(settled, (error: unknown) => {
        settled();
        throw error;
      });
      attaching.catch(() => undefined);
      await vi.advanceTimersByTimeAsync(DEFAULT_OFFER_TIMEOUT_MS - 1);
      expect(settled).not.toHaveBeenCalled();
      await vi.advanceTimersByTimeAsync(1);
      const error = await attaching.catch((caught: unknown) => caught);
      expect(error).toBeInstanceOf(ShmError);
      expect((error as ShmError).code).toBe("GRANT_TIMEOUT");
      expect((error as ShmError).message).toContain(`domain ${GRANTER}`);
      expect((error as ShmError).message).toContain(grantSocketPath(dir.dir, GRANTER, MAPPER));
      expect(mapper.isAttached(GRANTER)).toBe(false);
      await hangUpOf(granter.accepted[0] as number);
      mapper.destroy();
    } finally {
      vi.useRealTimers();
    }
  });

  it("honours each caller's signal: an aborted caller stops waiting, the others still attach", async () => {
    const granter = silentGranter();
    const mapper = new MemfdGrantTable({ domain: MAPPER, socketDir: dir.dir });
    const first = mapper.attach(GRANTER);
    const controller = new AbortController();
    const second = mapper.attach(GRANTER, { signal: controller.signal });
    const reason = new Error("the caller gave up");
    controller.abort(reason);
    await expect(second).rejects.toBe(reason);
    await vi.waitFor(() => expect(granter.accepted).toHaveLength(1));
    granter.answer();
    await first;
    expect(mapper.isAttached(GRANTER)).toBe(true);
    mapper.destroy();
  });

  it("ends the shared fetch when its last waiter aborts, and a later attach starts afresh", async () => {
    const granter = silentGranter();
    const mapper = new MemfdGrantTable({ domain: MAPPER, socketDir: dir.dir });
    const controller = new AbortController();
    const first = mapper.attach(GRANTER, { signal: controller.signal });
    await vi.waitFor(() => expect(granter.accepted).toHaveLength(1));
    controller.abort(new Error("gave up"));
    await expect(first).rejects.toThrow("gave up");
    await hangUpOf(granter.accepted[0] as number);
    const again = mapper.attach(GRANTER);
    await vi.waitFor(() => expect(granter.accepted).toHaveLength(2));
    granter.answer();
    await again;
    expect(mapper.isAttached(GRANTER)).toBe(true);
    mapper.destroy();
  });

  /** Offers `fds` (whatever they are) with a valid hello, as domain 1 would. */
  function offerFds(fdsToSend: number[]): void {
    listenFd = native.listen("stream", grantSocketPath(dir.dir, GRANTER, MAPPER));
    const hello = new Uint8Array(new Uint32Array([0x51475250, 1, GRANTER, MAPPER]).buffer);
    poll = new native.Poll(listenFd, () => {
      const connection = native.accept(listenFd);
      if (connection === null) return;
      native.sendmsg(connection, hello, fdsToSend);
      native.close(connection);
    });
    poll.start(native.POLL_READABLE);
  }

  function sealedMemfd(bytes: number): number {
    const fd = native.memfdCreate("hostile", bytes);
    native.addSeals(fd, native.SEAL_SHRINK);
    fds.push(fd);
    return fd;
  }

  it.each<[string, () => number]>([
    ["an eventfd", () => native.eventfdCreate()],
    ["a socket", () => native.socketpair("stream")[0]],
    ["a directory", () => openSync(dir.dir, fsConstants.O_RDONLY | fsConstants.O_DIRECTORY)],
  ])("refuses a pool that is %s with GRANT_BAD_POOL, not an fcntl error", async (_, make) => {
    const pool = make();
    fds.push(pool);
    const table = sealedMemfd(PAGE);
    const view = native.mmap(table, 0, PAGE, { writable: true });
    new Uint32Array(view).set([0x51474e54, 1, GRANTER, MAPPER, 4]);
    native.munmap(view);
    offerFds([pool, table]);
    const mapper = new MemfdGrantTable({ domain: MAPPER, socketDir: dir.dir });
    await expect(mapper.attach(GRANTER)).rejects.toMatchObject({
      name: "ShmError",
      code: "GRANT_BAD_POOL",
      message: expect.stringMatching(/not a memfd sealed against shrinking/) as unknown,
    });
    mapper.destroy();
  });

  it("refuses an offer of three fds with GRANT_BAD_POOL, and keeps none of them", async () => {
    offerFds([sealedMemfd(PAGE), sealedMemfd(PAGE), sealedMemfd(PAGE)]);
    const mapper = new MemfdGrantTable({ domain: MAPPER, socketDir: dir.dir });
    const before = readdirSync("/proc/self/fd").length;
    await expect(mapper.attach(GRANTER)).rejects.toMatchObject({ code: "GRANT_BAD_POOL", message: /more than 2 fds/ });
    expect(readdirSync("/proc/self/fd").length).toBe(before);
    mapper.destroy();
  });

  it("refuses a writable map of a pool the granter sealed against writing after the attach, with GRANT_BAD_POOL", async () => {
    const table = header(4);
    table[16] = 1 | 4 | (MAPPER << 16);
    offer(table, 4, true);
    const mapper = new MemfdGrantTable({ domain: MAPPER, socketDir: dir.dir });
    await mapper.attach(GRANTER);
    // F_SEAL_FUTURE_WRITE: no new writable mapping of the pool, by anyone.
    native.addSeals(fds[0] as number, 0x10);
    expectShmError(() => mapper.map(GRANTER, [0], { writable: true }), "GRANT_BAD_POOL");
    expect(new Uint8Array(mapper.map(GRANTER, [0]).buffer)).toHaveLength(PAGE);
    mapper.destroy();
  });

  it("refuses a pool that is not sealed against shrinking (it could be truncated under a mapping)", async () => {
    offer(header(4), 4, false);
    const mapper = new MemfdGrantTable({ domain: MAPPER, socketDir: dir.dir });
    await expect(mapper.attach(GRANTER)).rejects.toMatchObject({ code: "GRANT_BAD_POOL" });
    expect(mapper.isAttached(GRANTER)).toBe(false);
    mapper.destroy();
  });
});

describe("xen grant backend", () => {
  it.skipIf(xenGrantAvailability().available)("says clearly that it is not available off Xen", () => {
    const availability = xenGrantAvailability();
    expect(availability.available).toBe(false);
    if (availability.available) return;
    expect(availability.reason).toMatch(
      /^xen grant backend not available: .*(\/dev\/xen\/gnt\w+ does not exist|built without)/,
    );
    expectShmError(() => new XenGrantTable({ domain: 1 }), "BACKEND_NOT_AVAILABLE");
    expect(() => new XenGrantTable({ domain: 1 })).toThrow(availability.reason);
  });

  it("is compiled into the addon where the kernel's xen headers exist", () => {
    expect(typeof native.xen.compiled).toBe("boolean");
    if (native.xen.compiled) expect(typeof native.xen.gntdevMap).toBe("function");
  });

  it("makes memfd the default grant backend off Xen", () => {
    const dir = temporaryDirectory();
    const table = createGrantTable({ domain: 4, socketDir: dir.dir });
    expect(table.backend).toBe(xenGrantAvailability().available ? "xen" : "memfd");
    table.destroy();
    dir.remove();
  });
});
