// Per-client limits of the Wayland server: one client cannot take what the
// others need (wl_shm pools and the process-wide SIGBUS guard table, fds,
// objects, mapped bytes). A client past a limit gets wl_display.error
// no_memory naming the limit and is ended alone, while other clients, and a
// real app, keep working.
import { afterEach, beforeEach, describe, expect, it } from "vitest";

import { SIGBUS_GUARD_SLOTS, close, memfdCreate } from "../../native/index.ts";
import {
  ClientLimitError,
  ClientShmPool,
  DEFAULT_MAX_FDS_PER_CLIENT,
  DEFAULT_MAX_MAPPED_BYTES_PER_CLIENT,
  DEFAULT_MAX_OBJECTS_PER_CLIENT,
  DEFAULT_MAX_POOLS_PER_CLIENT,
  DISPLAY_ERROR_NO_MEMORY,
  Display,
  ProtocolError,
  SHM_FORMAT_XRGB8888,
  connect,
  createShmGlobal,
  type Client,
  type DisplayOptions,
} from "../../wayland/index.ts";
import { startWestonSimpleShm, type RunningApp } from "../helpers/apps.ts";
import { temporaryDirectory } from "../helpers/processes.ts";
import { RawClient, concatMessages, rawMessage } from "../helpers/raw-client.ts";
import { createTestCompositor, type TestCompositor } from "../helpers/test-compositor.ts";

/** How long a process may take to start and show that it is ready (ms): the machine's time, not the code's. */
const READY_TIMEOUT_MS = 120_000;

const WL_SHM_CREATE_POOL = 0;
const WL_SHM_POOL_CREATE_BUFFER = 0;
const WL_SHM_POOL_DESTROY = 1;
const WL_SHM_POOL_RESIZE = 2;
const WL_COMPOSITOR_CREATE_REGION = 1;

let dir: { dir: string; remove: () => void };
let compositor: TestCompositor;
const raws: RawClient[] = [];
const apps: RunningApp[] = [];
const fds: number[] = [];

beforeEach(() => {
  dir = temporaryDirectory("wayland-limits-");
  compositor = createTestCompositor(`${dir.dir}/wayland-limits`);
});

afterEach(async () => {
  for (const app of apps.splice(0)) await app.stop();
  for (const raw of raws.splice(0)) raw.destroy();
  for (const fd of fds.splice(0)) close(fd);
  compositor.destroy();
  dir.remove();
});

/** A raw client of the test compositor with wl_shm at id 3 and wl_compositor at id 4. */
async function hostileClient(socketPath = compositor.socketPath): Promise<RawClient> {
  const raw = RawClient.connect(socketPath);
  raws.push(raw);
  await raw.bindGlobals(["wl_shm", ["wl_compositor", 4]]);
  return raw;
}

/** A memfd of `size` bytes, closed after the test. */
function memfd(size: number): number {
  const fd = memfdCreate("pool", size);
  fds.push(fd);
  return fd;
}

/** Writes wl_shm.create_pool of `size` bytes over `fd` for each id of `ids`, at most 200 (fds) per sendmsg. */
async function createPools(raw: RawClient, ids: readonly number[], fd: number, size: number): Promise<void> {
  for (let at = 0; at < ids.length; at += 200) {
    const batch = ids.slice(at, at + 200);
    await raw.write(
      concatMessages(batch.map((id) => rawMessage(3, WL_SHM_CREATE_POOL, [id, size]))),
      batch.map(() => fd),
    );
  }
}

/** `promise`, or a rejection naming `what` after `timeoutMs`. */
function within<T>(promise: Promise<T>, what: string, timeoutMs = 10_000): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} never came within ${timeoutMs} ms`)), timeoutMs);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

function range(from: number, count: number): number[] {
  return Array.from({ length: count }, (_, i) => from + i);
}

/** The server's Client of the raw client that connected `index`-th (in connection order). */
function serverClients(display: Display): Client[] {
  return [...display.clients];
}

/** Asserts that a real app and a well-behaved client of ours still work: weston-simple-shm draws frames, and a pool and a buffer can be made. */
async function expectOthersKeepWorking(display: TestCompositor): Promise<void> {
  const witness = await connect({ display: display.socketPath });
  try {
    const pool = new ClientShmPool(witness.bind("wl_shm", 1), 64 * 64 * 4);
    pool.createBuffer(0, 64, 64, 256, SHM_FORMAT_XRGB8888);
    await witness.roundtrip();
    expect(witness.error).toBeUndefined();
    pool.destroy();
  } finally {
    witness.destroy();
  }
  const app = startWestonSimpleShm({ runtimeDir: dir.dir, display: display.socketPath });
  apps.push(app);
  // Its first frame is its readiness (a process start, allowed as long as the machine needs); then 10 more in 10 s.
  await frames(display, app, 1, READY_TIMEOUT_MS, "weston-simple-shm's first frame");
  await frames(display, app, 10, 10_000, "10 frames of weston-simple-shm");
}

/** Resolves once `count` more frames were committed; rejects naming `what` after `timeoutMs` or if `app` ends. */
function frames(
  display: TestCompositor,
  app: RunningApp,
  count: number,
  timeoutMs: number,
  what: string,
): Promise<void> {
  const target = display.frames + count;
  return new Promise<void>((resolve, reject) => {
    let settled = false;
    const finish = (error?: Error): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      remove();
      if (error === undefined) resolve();
      else reject(error);
    };
    const timer = setTimeout(
      () => finish(new Error(`${what} never came within ${timeoutMs} ms:\n${app.stderr()}`)),
      timeoutMs,
    );
    const remove = display.events.commit.add(() => {
      if (display.frames >= target) finish();
    });
    void app.exited.then(({ code, signal }) =>
      finish(new Error(`weston-simple-shm ended (${code ?? signal}) before ${what}:\n${app.stderr()}`)),
    );
  });
}

// Tests that start weston-simple-shm: its start-up may take as long as the machine needs, then 60 s for the rest.
describe("per-client limits", { timeout: READY_TIMEOUT_MS + 60_000 }, () => {
  it("holds each client far below the SIGBUS guard table, the process's fds and memory", () => {
    expect(DEFAULT_MAX_POOLS_PER_CLIENT * 64).toBeLessThanOrEqual(SIGBUS_GUARD_SLOTS);
    expect(DEFAULT_MAX_FDS_PER_CLIENT).toBeLessThanOrEqual(DEFAULT_MAX_POOLS_PER_CLIENT + 64);
    expect(compositor.display.clientLimits).toEqual({
      objects: DEFAULT_MAX_OBJECTS_PER_CLIENT,
      pools: DEFAULT_MAX_POOLS_PER_CLIENT,
      fds: DEFAULT_MAX_FDS_PER_CLIENT,
      mappedBytes: DEFAULT_MAX_MAPPED_BYTES_PER_CLIENT,
    });
  });

  it("ends a client past its limit of 256 wl_shm pools with an error naming it, while 20 clients that hold 256 pools each and a real app keep working", async () => {
    const clients: RawClient[] = [];
    for (let n = 0; n < 20; n++) {
      const raw = await hostileClient();
      await createPools(raw, range(100, 256), memfd(4096), 4096);
      expect(await raw.sync(`the pools of client ${n}`), `client ${n}: ${JSON.stringify(raw.error())}`).toBe(
        "answered",
      );
      clients.push(raw);
    }
    const server = serverClients(compositor.display);
    expect(server.map((client) => client.usage.pools)).toEqual(server.map(() => 256));

    const gone = within(
      new Promise<Client>((resolve) => compositor.display.events.disconnect.add(resolve)),
      "the greedy client's disconnect",
    );
    const greedy = clients[0]!;
    await createPools(greedy, [5000], memfd(4096), 4096);
    expect(await greedy.sync("the 257th pool's answer")).toBe("closed");
    expect(greedy.error()).toEqual({
      objectId: 1,
      code: DISPLAY_ERROR_NO_MEMORY,
      message: "client exceeded its limit of 256 wl_shm pools",
    });
    const ended = await gone;
    expect(ended.error).toBeInstanceOf(ClientLimitError);
    expect(ended.error).toMatchObject({ code: "limit-exceeded", limit: "pools", max: 256 });

    for (const raw of clients.slice(1)) expect(await raw.sync("a sync of a client within its limits")).toBe("answered");
    await expectOthersKeepWorking(compositor);
  });

  it("ends a client that creates more objects than its limit with an error naming it, and only that client", async () => {
    const bystander = await hostileClient();
    const greedy = await hostileClient();
    const regions = range(100, 8192 + 2000).map((id) => rawMessage(4, WL_COMPOSITOR_CREATE_REGION, [id]));
    await greedy.write(concatMessages(regions)).catch(() => undefined);
    expect(await greedy.sync("the answer to 10,192 create_region")).toBe("closed");
    expect(greedy.error()).toEqual({
      objectId: 1,
      code: DISPLAY_ERROR_NO_MEMORY,
      message: "client exceeded its limit of 8192 objects",
    });
    expect(await bystander.sync("the bystander's sync")).toBe("answered");
    await expectOthersKeepWorking(compositor);
  });

  it("ends a client that sends more fds than the server may hold for it with an error naming the limit", async () => {
    const greedy = await hostileClient();
    const fd = memfd(4096);
    // Half a header, then the other half of it: the message is never complete, so its fds pile up.
    await greedy.write(
      new Uint8Array([1, 0, 0, 0]),
      Array.from({ length: 253 }, () => fd),
    );
    await greedy.write(
      new Uint8Array([0, 0, 16, 0]),
      Array.from({ length: 253 }, () => fd),
    );
    await greedy.waitForClose("the hang-up after 506 fds");
    expect(greedy.error()).toEqual({
      objectId: 1,
      code: DISPLAY_ERROR_NO_MEMORY,
      message: "client exceeded its limit of 320 fds",
    });
    await expectOthersKeepWorking(compositor);
  });

  it("counts the fds of a client's pools against its fd limit (DisplayOptions.maxFdsPerClient)", async () => {
    const limited = limitedDisplay({ maxFdsPerClient: 16, maxPoolsPerClient: 1000 });
    const raw = await hostileClient(limited.socketPath);
    const fd = memfd(4096);
    for (const id of range(100, 16)) await createPools(raw, [id], fd, 4096);
    expect(await raw.sync("16 pools")).toBe("answered");
    await createPools(raw, [200], fd, 4096);
    expect(await raw.sync("the 17th pool's answer")).toBe("closed");
    expect(raw.error()?.message).toBe("client exceeded its limit of 16 fds");
  });

  it("ends a client whose pools would map more than its limit of bytes, on create and on resize", async () => {
    const half = 600 * 1024 * 1024;
    const big = memfd(2 * half);
    const creator = await hostileClient();
    await createPools(creator, [100, 101], big, half);
    expect(await creator.sync("two pools of 600 MiB")).toBe("closed");
    expect(creator.error()?.message).toBe(
      "client exceeded its limit of 1073741824 bytes (1024 MiB) of mapped wl_shm pools",
    );

    const grower = await hostileClient();
    await createPools(grower, [100], big, 4096);
    await grower.write(rawMessage(100, WL_SHM_POOL_RESIZE, [2 * half]));
    expect(await grower.sync("a resize to 1200 MiB")).toBe("closed");
    expect(grower.error()?.message).toBe(
      "client exceeded its limit of 1073741824 bytes (1024 MiB) of mapped wl_shm pools",
    );
    await expectOthersKeepWorking(compositor);
  });

  it("gives back a pool's share once its last buffer is gone, not before", async () => {
    const raw = await hostileClient();
    await createPools(raw, [100], memfd(8192), 8192);
    await raw.write(rawMessage(100, WL_SHM_POOL_CREATE_BUFFER, [101, 0, 16, 16, 64, SHM_FORMAT_XRGB8888]));
    await raw.write(rawMessage(100, WL_SHM_POOL_DESTROY));
    await raw.sync("the pool's destroy");
    const [client] = serverClients(compositor.display);
    expect(client!.usage).toMatchObject({ pools: 1, fds: 1, mappedBytes: 8192 });
    await raw.write(rawMessage(101, 0));
    await raw.sync("the buffer's destroy");
    expect(client!.usage).toMatchObject({ pools: 0, fds: 0, mappedBytes: 0 });
  });

  it("says why each client went: a limit, a protocol error, or nothing for a clean disconnect", async () => {
    const reasons: Array<string | undefined> = [];
    const record = (client: Client): void => {
      reasons.push(
        client.error === undefined ? undefined : `${client.error.constructor.name}: ${client.error.message}`,
      );
    };
    compositor.display.events.disconnect.add(record);
    const clean = await hostileClient();
    const cleanGone = within(
      new Promise<void>((resolve) => compositor.display.events.disconnect.add(() => resolve())),
      "the disconnect of a client that closed its socket",
    );
    clean.destroy();
    await cleanGone;
    const wrong = await hostileClient();
    await wrong.write(rawMessage(77, 0));
    await wrong.waitForClose("the hang-up after a request to no object");
    const limited = limitedDisplay({ maxPoolsPerClient: 1 });
    limited.display.events.disconnect.add(record);
    const greedy = await hostileClient(limited.socketPath);
    await createPools(greedy, [100, 101], memfd(4096), 4096);
    await greedy.waitForClose("the hang-up after a second pool");
    await new Promise<void>((resolve) => setImmediate(resolve));
    expect(reasons).toEqual([
      undefined,
      "ProtocolError: wl_display#1: error 0: no object 77",
      "ClientLimitError: client exceeded its limit of 1 wl_shm pools",
    ]);
    expect(compositor.display.clients.size).toBe(0);
  });

  it("refuses limits that are not positive", () => {
    expect(() => new Display({ maxPoolsPerClient: 0 })).toThrow(RangeError);
    expect(() => new Display({ maxFdsPerClient: -1 })).toThrow(RangeError);
    expect(() => new Display({ maxMappedBytesPerClient: Number.NaN })).toThrow(RangeError);
    expect(new ProtocolError("protocol-error", 1, "wl_display", 2, "x")).toBeInstanceOf(Error);
  });
});

/** A display with wl_shm and wl_compositor under `options`, listening in the test's dir; destroyed after the test. */
function limitedDisplay(options: DisplayOptions): { display: Display; socketPath: string } {
  const display = new Display(options);
  createShmGlobal(display);
  display.createGlobal("wl_compositor", 5, (resource) =>
    resource.implement({
      create_region: (region) => region.implement({}),
      create_surface: (surface) => surface.implement({}),
    }),
  );
  const socketPath = display.addSocket(`${dir.dir}/wayland-limited-${Math.random().toString(36).slice(2)}`);
  const previous = compositor.destroy;
  compositor.destroy = () => {
    display.destroy();
    previous();
  };
  return { display, socketPath };
}
