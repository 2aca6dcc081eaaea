// The shm backend against a peer that lies: a hand-made client or server that
// speaks the rendezvous and writes whatever it likes into the control page.
import { once } from "node:events";
import { readFileSync, readdirSync } from "node:fs";

import fc from "fast-check";
import { afterEach, beforeEach, describe, expect, it } from "vitest";

import * as native from "../../native/index.ts";
import { MemfdGrantTable, ShmError, connectWhenListening, whenReadable, type GrantMapping } from "../../shm/index.ts";
import {
  CLI_LIVE,
  CLI_NOTIFY,
  GRANTS,
  LEFT_CONS,
  LEFT_ORDER,
  LEFT_PROD,
  RIGHT_CONS,
  RIGHT_ORDER,
  RIGHT_PROD,
  SRV_LIVE,
  SRV_NOTIFY,
  VCHAN_CONNECTED,
  VCHAN_DISCONNECTED,
  VchanError,
  connectShmClient,
  createShmServer,
  shmVchanSocketPath,
  type Vchan,
} from "../../vchan/index.ts";
import { finishedAfterReady, spawnTs, temporaryDirectory, withStartup } from "../helpers/processes.ts";

const SERVER = 1;
const CLIENT = 2;
const PORT = 6000;
/** The rendezvous message's magic ("QVSH") and version, written here independently of vchan/shm.ts. */
const HELLO = [0x51565348, 1];

let dir: { dir: string; remove: () => void };
const cleanups: Array<() => void> = [];
beforeEach(() => {
  dir = temporaryDirectory();
});
afterEach(() => {
  for (const cleanup of cleanups.splice(0).reverse()) cleanup();
  dir.remove();
});

/** A hostile client: the real server's control page, writable, and its event channel. */
interface HostileClient {
  server: Vchan;
  words: Uint32Array;
  bytes: Uint8Array;
  /** Wakes the server. */
  kick: () => void;
  /** The server's write ring (right), as the client sees it. */
  rightRing: Uint8Array;
  leftRing: Uint8Array;
}

async function hostileClient(): Promise<HostileClient> {
  const server = createShmServer({ domain: CLIENT, ownDomain: SERVER, port: PORT, socketDir: dir.dir });
  cleanups.push(() => server.close());
  const table = new MemfdGrantTable({ domain: CLIENT, socketDir: dir.dir, poolName: `vchan-${PORT}` });
  cleanups.push(() => table.destroy());
  const fd = await connectWhenListening(shmVchanSocketPath(dir.dir, SERVER, CLIENT, PORT));
  cleanups.push(() => native.close(fd));
  await table.attach(SERVER);
  await whenReadable(fd);
  const hello = new Uint8Array(16);
  const received = native.recvmsg(fd, hello, 2);
  if (received === null || received.fds.length !== 2) throw new Error("no rendezvous message");
  const [serverToClient, clientToServer] = received.fds as [number, number];
  cleanups.push(() => {
    native.close(serverToClient);
    native.close(clientToServer);
  });
  const ref = new Uint32Array(hello.buffer)[2] as number;
  const ctrl = table.map(SERVER, [ref], { writable: true });
  const words = new Uint32Array(ctrl.buffer);
  const bytes = new Uint8Array(ctrl.buffer);
  // The GUI's sizes: order 12 both ways, one page each.
  expect(new Uint16Array(ctrl.buffer)[LEFT_ORDER / 2]).toBe(12);
  const left: GrantMapping = table.map(SERVER, [words[GRANTS / 4] as number], { writable: true });
  const right: GrantMapping = table.map(SERVER, [words[GRANTS / 4 + 1] as number], { writable: true });
  bytes[CLI_LIVE] = 1;
  const kick = (): void => void native.eventfdSignal(clientToServer);
  kick();
  await server.whenConnected();
  return { server, words, bytes, kick, leftRing: new Uint8Array(left.buffer), rightRing: new Uint8Array(right.buffer) };
}

describe("an shm vchan server against a lying client", () => {
  it.each([
    ["runs 2^32-1 ahead", 0xffffffff],
    ["runs one byte more than the ring ahead", 4097],
    ["runs 2^31 ahead", 2 ** 31],
  ])("reads nothing when the client's producer index %s, and recovers when it tells the truth", async (_, lie) => {
    const peer = await hostileClient();
    const cons = peer.words[LEFT_CONS / 4] as number;
    peer.words[LEFT_PROD / 4] = (cons + lie) >>> 0;
    peer.kick();
    const buffer = new Uint8Array(8192).fill(0xee);
    expect(peer.server.dataReady()).toBe(0);
    expect(peer.server.read(buffer)).toBe(0);
    expect(buffer.every((byte) => byte === 0xee)).toBe(true);
    // The truth: 5 bytes at the ring's start.
    peer.leftRing.set([1, 2, 3, 4, 5], cons & 4095);
    peer.words[LEFT_PROD / 4] = (cons + 5) >>> 0;
    peer.kick();
    await once(peer.server, "data");
    expect(peer.server.read(buffer)).toBe(5);
    expect([...buffer.subarray(0, 5)]).toEqual([1, 2, 3, 4, 5]);
  });

  it("reads a full ring of the client's bytes and not one byte more", async () => {
    const peer = await hostileClient();
    peer.leftRing.fill(0xab);
    peer.words[LEFT_PROD / 4] = ((peer.words[LEFT_CONS / 4] as number) + 4096) >>> 0;
    peer.kick();
    const buffer = new Uint8Array(10000);
    expect(peer.server.read(buffer)).toBe(4096);
    expect(buffer.subarray(0, 4096).every((byte) => byte === 0xab)).toBe(true);
    expect(buffer.subarray(4096).every((byte) => byte === 0)).toBe(true);
  });

  it.each([
    ["claims to have consumed bytes never written", 5],
    ["claims a consumer index a whole ring behind", -4097],
  ])("writes nothing when the client %s", async (_, lie) => {
    const peer = await hostileClient();
    const prod = peer.words[RIGHT_PROD / 4] as number;
    peer.words[RIGHT_CONS / 4] = (prod + lie) >>> 0;
    peer.kick();
    expect(peer.server.bufferSpace()).toBe(0);
    expect(peer.server.write(new Uint8Array(100).fill(7))).toBe(0);
    expect(peer.server.send(new Uint8Array(1))).toBe(false);
    expect(peer.rightRing.every((byte) => byte === 0)).toBe(true);
  });

  it("keeps its own ring order and index whatever the client writes over them", async () => {
    const peer = await hostileClient();
    const view = new DataView(peer.words.buffer);
    view.setUint16(LEFT_ORDER, 0xffff, true);
    view.setUint16(RIGHT_ORDER, 3, true);
    const prod = peer.words[RIGHT_PROD / 4] as number;
    peer.words[RIGHT_PROD / 4] = 0xdeadbeef;
    peer.bytes[SRV_NOTIFY] = 0xff;
    peer.bytes[CLI_NOTIFY] = 0xff;
    peer.kick();
    expect(peer.server.write(new Uint8Array([9, 8, 7]))).toBe(3);
    // The bytes landed at the server's own index in its own ring.
    expect([...peer.rightRing.subarray(prod & 4095, (prod & 4095) + 3)]).toEqual([9, 8, 7]);
    expect(peer.words[RIGHT_PROD / 4]).toBe((prod + 3) >>> 0);
    expect(peer.leftRing.every((byte) => byte === 0)).toBe(true);
  });

  it("never reads or writes more than its rings hold, whatever indices the client writes (property)", async () => {
    const peer = await hostileClient();
    const buffer = new Uint8Array(3 * 4096);
    fc.assert(
      fc.property(
        fc.nat({ max: 0xffffffff }),
        fc.nat({ max: 0xffffffff }),
        fc.nat({ max: 255 }),
        (prod, cons, notify) => {
          peer.words[LEFT_PROD / 4] = prod;
          peer.words[RIGHT_CONS / 4] = cons;
          peer.bytes[SRV_NOTIFY] = notify;
          const ready = peer.server.dataReady();
          const space = peer.server.bufferSpace();
          expect(ready).toBeGreaterThanOrEqual(0);
          expect(ready).toBeLessThanOrEqual(4096);
          expect(space).toBeGreaterThanOrEqual(0);
          expect(space).toBeLessThanOrEqual(4096);
          expect(peer.server.read(buffer)).toBeLessThanOrEqual(4096);
          expect(peer.server.write(buffer)).toBeLessThanOrEqual(4096);
        },
      ),
      { numRuns: 500 },
    );
  });

  it.each([0, 7, 255])("treats a client live byte of %s as gone", async (live) => {
    const peer = await hostileClient();
    const gone = once(peer.server, "disconnect");
    peer.bytes[CLI_LIVE] = live;
    peer.kick();
    await gone;
    expect(peer.server.isOpen()).toBe(VCHAN_DISCONNECTED);
    expect(() => peer.server.write(new Uint8Array(1))).toThrow(VchanError);
  });
});

/**
 * A hostile server: a control page of our making, offered on the rendezvous
 * socket with `eventFds` (server-to-client, client-to-server; default two
 * fresh eventfds, closed by the cleanup either way).
 */
function hostileServer(
  fill: (words: Uint32Array, view: DataView, refs: readonly number[]) => void,
  magic = HELLO[0],
  eventFds: readonly [number, number] = [native.eventfdCreate(), native.eventfdCreate()],
  /** The rendezvous as sent: its first `bytes` bytes, and a third fd after the two eventfds. */
  shape: { bytes?: number; extraFd?: number } = {},
) {
  const table = new MemfdGrantTable({ domain: SERVER, socketDir: dir.dir, poolName: `vchan-${PORT}` });
  cleanups.push(() => table.destroy());
  const shared = table.share(CLIENT, 3, { writable: true });
  const words = new Uint32Array(shared.buffer);
  const view = new DataView(shared.buffer);
  view.setUint16(LEFT_ORDER, 12, true);
  view.setUint16(RIGHT_ORDER, 12, true);
  view.setUint8(CLI_LIVE, 2);
  view.setUint8(SRV_LIVE, 1);
  words[GRANTS / 4] = shared.refs[1] as number;
  words[GRANTS / 4 + 1] = shared.refs[2] as number;
  fill(words, view, shared.refs);
  const [serverToClient, clientToServer] = eventFds;
  const listenFd = native.listen("stream", shmVchanSocketPath(dir.dir, SERVER, CLIENT, PORT), 1);
  const hello = new Uint8Array(
    new Uint32Array([magic as number, HELLO[1] as number, shared.refs[0] as number, 0]).buffer,
  );
  const accepted: number[] = [];
  const poll = new native.Poll(listenFd, () => {
    const fd = native.accept(listenFd);
    if (fd === null) return;
    accepted.push(fd);
    const fds = [serverToClient, clientToServer, ...(shape.extraFd === undefined ? [] : [shape.extraFd])];
    native.sendmsg(fd, hello.subarray(0, shape.bytes ?? hello.length), fds);
  });
  poll.start(native.POLL_READABLE);
  cleanups.push(() => {
    poll.close();
    for (const fd of new Set([listenFd, serverToClient, clientToServer, ...accepted])) native.close(fd);
  });
  return { words, view, accepted, kick: () => native.eventfdSignal(serverToClient) };
}

/** The fds open in this process now. */
function openFds(): number {
  return readdirSync("/proc/self/fd").length;
}

/** An eventfd set to blocking with its counter at the kernel's maximum (2^64 - 2): a write to it blocks. */
function fullBlockingEventfd(): number {
  const fd = native.eventfdCreate();
  for (let value = 2 ** 52; value >= 1; value /= 2) while (native.eventfdSignal(fd, value));
  native.setNonBlocking(fd, false);
  return fd;
}

function connectClient(): Promise<Vchan> {
  return connectShmClient({ domain: SERVER, ownDomain: CLIENT, port: PORT, socketDir: dir.dir }).then((client) => {
    cleanups.push(() => client.close());
    return client;
  });
}

describe("an shm vchan client against a lying server", () => {
  it.each([
    [9, 12],
    [12, 21],
    [10, 10],
    [11, 11],
    [0xffff, 12],
    [0, 0],
  ])("refuses ring orders %s and %s", async (left, right) => {
    hostileServer((_, view) => {
      view.setUint16(LEFT_ORDER, left, true);
      view.setUint16(RIGHT_ORDER, right, true);
    });
    await expect(connectClient()).rejects.toMatchObject({ name: "VchanError", code: "VCHAN_BAD_PEER" });
  });

  it("refuses ring refs that were never granted to it", async () => {
    hostileServer((words) => {
      words[GRANTS / 4] = 4000;
    });
    const error = await connectClient().catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(ShmError);
    expect((error as ShmError).code).toBe("GRANT_NOT_GRANTED");
  });

  it("refuses a rendezvous message with a bad magic", async () => {
    hostileServer(() => undefined, 0x12345678);
    await expect(connectClient()).rejects.toMatchObject({ code: "VCHAN_BAD_PEER" });
  });

  it("refuses a rendezvous message of 12 bytes instead of taking the missing ones as zeros", async () => {
    hostileServer(() => undefined, HELLO[0], undefined, { bytes: 12 });
    await expect(connectClient()).rejects.toMatchObject({ code: "VCHAN_BAD_PEER", message: /12 bytes/ });
  });

  it("refuses a rendezvous message with three fds, and keeps none of them", async () => {
    const extra = native.eventfdCreate();
    cleanups.push(() => native.close(extra));
    const peer = hostileServer(() => undefined, HELLO[0], undefined, { extraFd: extra });
    const before = openFds();
    await expect(connectClient()).rejects.toMatchObject({ code: "VCHAN_BAD_PEER", message: /more than 2 fds/ });
    expect(openFds()).toBe(before + peer.accepted.length);
  });

  it.each<[string, () => [number, number]]>([
    [
      "a socket holding 3 bytes as its wait fd",
      () => {
        const [ours, theirs] = native.socketpair("stream");
        native.sendmsg(theirs, new Uint8Array([1, 2, 3]));
        cleanups.push(() => native.close(theirs));
        return [ours, native.eventfdCreate()];
      },
    ],
    [
      "a socket nobody reads as its kick fd",
      () => {
        const [ours, theirs] = native.socketpair("stream");
        native.close(theirs);
        return [native.eventfdCreate(), ours];
      },
    ],
    ["a memfd as its kick fd", () => [native.eventfdCreate(), native.memfdCreate("not-an-eventfd", 8)]],
    [
      "a semaphore-mode eventfd as its wait fd",
      () => [native.eventfdCreate({ semaphore: true }), native.eventfdCreate()],
    ],
    [
      "one eventfd for both directions",
      () => {
        const fd = native.eventfdCreate();
        return [fd, native.dup(fd)];
      },
    ],
  ])("refuses %s, and keeps none of what it received", async (_, make) => {
    const fds = make();
    const peer = hostileServer(() => undefined, HELLO[0], fds);
    const before = openFds();
    const error = await connectClient().catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(VchanError);
    expect((error as VchanError).code).toBe("VCHAN_BAD_PEER");
    expect((error as VchanError).message).toMatch(/event channel/);
    // Only the hostile server's accepted connection is new.
    expect(openFds()).toBe(before + peer.accepted.length);
    // The server's later signals reach nothing of ours.
    native.eventfdSignal(fds[0], 2 ** 50);
    await new Promise((resolve) => setImmediate(resolve));
  });

  it("makes the eventfds it receives non-blocking, so a full counter never blocks its kick", async () => {
    const full = fullBlockingEventfd();
    hostileServer(() => undefined, HELLO[0], [native.eventfdCreate(), full]);
    const client = await connectClient();
    expect(client.isOpen()).toBe(VCHAN_CONNECTED);
    // O_NONBLOCK (04000 octal) is now set on the shared file.
    const flags = /^flags:\s*([0-7]+)/m.exec(readFileSync(`/proc/self/fdinfo/${full}`, "utf8"))?.[1];
    expect(Number.parseInt(flags ?? "0", 8) & 0o4000).toBe(0o4000);
    expect(client.send(new Uint8Array(100).fill(1))).toBe(true);
    client.close();
  });

  it(
    "stays responsive in its own process when the server hands it a blocking eventfd with a full counter",
    { timeout: withStartup(20_000) },
    async () => {
      hostileServer(() => undefined, HELLO[0], [native.eventfdCreate(), fullBlockingEventfd()]);
      const child = spawnTs("test/vchan/peers/vchan-peer.ts", ["shm", "client", dir.dir, String(PORT), "send", "1000"]);
      try {
        // A client blocked in write() never exits by itself: from its ready line
        // (before it connects), it has 10 s to connect, send and end.
        const result = await finishedAfterReady(child, 10_000);
        expect(result.stdout).toBe("connected\n");
        expect(result.signal).toBeNull();
        expect(result.code).toBe(0);
      } finally {
        child.kill();
      }
    },
  );

  it("ends the channel when the server keeps waking it without changing anything", async () => {
    const peer = hostileServer(() => undefined);
    const client = await connectClient();
    const gone = once(client, "disconnect");
    let kicks = 0;
    // An honest server kicks only after changing an index or its live byte; this one never does.
    while (client.isOpen() === VCHAN_CONNECTED && kicks < 1000) {
      peer.kick();
      kicks += 1;
      await new Promise((resolve) => setImmediate(resolve));
    }
    expect(client.isOpen()).toBe(VCHAN_DISCONNECTED);
    expect(kicks).toBeLessThanOrEqual(100);
    await gone;
    // It hears nothing more: its wait fd is no longer polled.
    peer.kick();
    await new Promise((resolve) => setImmediate(resolve));
    expect(client.dataReady()).toBe(0);
  });

  it("reads nothing when the server's producer index lies, and sees a zeroed live byte as gone", async () => {
    const peer = hostileServer(() => undefined);
    const client = await connectClient();
    expect(client.isOpen()).toBe(VCHAN_CONNECTED);
    peer.words[RIGHT_PROD / 4] = 0x80000000;
    peer.kick();
    expect(client.dataReady()).toBe(0);
    expect(client.read(new Uint8Array(100))).toBe(0);
    const gone = once(client, "disconnect");
    peer.view.setUint8(SRV_LIVE, 0);
    peer.kick();
    await gone;
    expect(client.isOpen()).toBe(VCHAN_DISCONNECTED);
  });
});
