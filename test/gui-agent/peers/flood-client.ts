/**
 * Wayland clients for the fairness test, each in a process of its own so
 * that what they do costs the compositor's process only what a real app
 * would. Each prints "ready" once connected, then waits for a line on stdin:
 *
 * - `surfaces SOCKET`: on "go", writes 110,000 wl_compositor.create_surface
 *   in one burst (as fast as the socket takes them), waits for the
 *   compositor to answer or end it, and starts over on a fresh connection
 *   until "stop"; prints `burst N: <how it ended>` after each.
 * - `commits SOCKET`: a 1024×768 toplevel that, on "go", commits a fully
 *   damaged buffer as fast as the compositor takes them (64 commits, then a
 *   sync, then the next 64), until "stop"; prints `commits N` at the end.
 * - `probe SOCKET`: on "go MS", makes wl_display.sync round trips one after
 *   the other (2 ms apart) for MS milliseconds and prints `latencies [..]`
 *   (ms, in order).
 */
import { createInterface } from "node:readline";

import {
  Poll,
  POLL_READABLE,
  POLL_WRITABLE,
  close,
  connect as connectSocket,
  recvmsg,
  sendmsg,
  socket,
} from "../../../native/index.ts";
import { ClientShmPool, SHM_FORMAT_XRGB8888, connect } from "../../../wayland/index.ts";

const [mode, socketPath] = process.argv.slice(2);
if (socketPath === undefined) throw new Error("usage: flood-client.ts surfaces|commits|probe SOCKET");

const lines = createInterface({ input: process.stdin });
const commands: string[] = [];
const waiters: Array<(line: string) => void> = [];
lines.on("line", (line) => {
  const waiter = waiters.shift();
  if (waiter !== undefined) waiter(line);
  else commands.push(line);
});
let stopped = false;
lines.on("close", () => {
  stopped = true;
  for (const waiter of waiters.splice(0)) waiter("stop");
});

function nextCommand(): Promise<string> {
  const queued = commands.shift();
  if (queued !== undefined) return Promise.resolve(queued);
  return new Promise((resolve) => waiters.push(resolve));
}

/** One Wayland message built by hand: object, opcode, 32-bit words, and a string where `words` has a string. */
function message(objectId: number, opcode: number, args: Array<number | string>): Buffer {
  const parts: Buffer[] = [];
  for (const arg of args) {
    if (typeof arg === "number") {
      const word = Buffer.alloc(4);
      word.writeUInt32LE(arg >>> 0);
      parts.push(word);
    } else {
      const text = Buffer.from(`${arg}\0`);
      const padded = Buffer.alloc(4 + ((text.length + 3) & ~3));
      padded.writeUInt32LE(text.length);
      text.copy(padded, 4);
      parts.push(padded);
    }
  }
  const body = Buffer.concat(parts);
  const header = Buffer.alloc(8);
  header.writeUInt32LE(objectId);
  header.writeUInt32LE(((8 + body.length) << 16) | opcode, 4);
  return Buffer.concat([header, body]);
}

/**
 * A raw connection: writes a byte stream as fast as the socket takes it and
 * reads events until the compositor hangs up. Resolves with how it ended.
 */
function rawSession(first: Buffer, burst: (compositorName: number) => Buffer): Promise<string> {
  const fd = socket("stream");
  connectSocket(fd, socketPath as string);
  return new Promise((resolve) => {
    let pending = first;
    let burstSent = false;
    let received = Buffer.alloc(0);
    let error = "";
    let writeFailed = "";
    const finish = (how: string): void => {
      if (poll.closed) return;
      poll.close();
      close(fd);
      resolve(how);
    };
    const write = (): void => {
      while (pending.length > 0) {
        let sent: number | null;
        try {
          sent = sendmsg(fd, pending);
        } catch (thrown) {
          // The compositor hung up: what it said before is still to be read.
          writeFailed = `write failed (${(thrown as Error).message})`;
          pending = Buffer.alloc(0);
          read(true);
          return;
        }
        if (sent === null) break;
        pending = pending.subarray(sent);
      }
      if (!poll.closed) poll.start(pending.length > 0 ? POLL_READABLE | POLL_WRITABLE : POLL_READABLE);
    };
    const buffer = new Uint8Array(65536);
    const poll = new Poll(fd, (status, events) => {
      // An error (the compositor hung up on a write) stops the handle: read what it sent, then end.
      if (status === null && (events & POLL_WRITABLE) !== 0) write();
      if (poll.closed) return;
      if (status === null && (events & POLL_READABLE) === 0) return;
      read(status !== null);
    });
    const read = (ending: boolean): void => {
      while (!poll.closed) {
        let got;
        try {
          got = recvmsg(fd, buffer, 8);
        } catch {
          got = { bytes: 0, fds: [] };
        }
        if (got === null) {
          if (ending) finish(error === "" ? writeFailed || "poll error" : error);
          return;
        }
        for (const extra of got.fds) close(extra);
        if (got.bytes === 0) {
          finish(error === "" ? "closed" : error);
          return;
        }
        received = Buffer.concat([received, buffer.subarray(0, got.bytes)]);
        while (received.length >= 8) {
          const objectId = received.readUInt32LE(0);
          const word = received.readUInt32LE(4);
          const size = word >>> 16;
          if (received.length < size) break;
          const opcode = word & 0xffff;
          if (objectId === 1 && opcode === 0) {
            const length = received.readUInt32LE(16);
            error = `error ${received.readUInt32LE(12)}: ${received.subarray(20, 20 + length - 1).toString()}`;
          } else if (objectId === 2 && opcode === 0 && !burstSent) {
            const name = received.readUInt32LE(8);
            const length = received.readUInt32LE(12);
            if (received.subarray(16, 16 + length - 1).toString() === "wl_compositor") {
              burstSent = true;
              pending = Buffer.concat([pending, burst(name)]);
              write();
            }
          }
          received = received.subarray(size);
        }
      }
    };
    write();
  });
}

async function floodSurfaces(): Promise<void> {
  const getRegistry = message(1, 1, [2]);
  // wl_registry.bind(name, "wl_compositor", 4, 3), then 110,000 create_surface(id) on object 3.
  const burst = (name: number): Buffer => {
    const bind = message(2, 0, [name, "wl_compositor", 4, 3]);
    const surfaces = Buffer.alloc(110_000 * 12);
    for (let i = 0; i < 110_000; i++) {
      surfaces.writeUInt32LE(3, i * 12);
      surfaces.writeUInt32LE((12 << 16) | 0, i * 12 + 4);
      surfaces.writeUInt32LE(4 + i, i * 12 + 8);
    }
    return Buffer.concat([bind, surfaces]);
  };
  // A connection that is answered shows the compositor is there.
  const probe = await connect({ display: socketPath });
  probe.destroy();
  console.log("ready");
  if ((await nextCommand()) !== "go") return;
  for (let n = 1; !stopped && commands[0] !== "stop"; n++) {
    const how = await rawSession(getRegistry, burst);
    console.log(`burst ${n}: ${how}`);
  }
}

async function floodCommits(): Promise<void> {
  const width = 1024;
  const height = 768;
  const connection = await connect({ display: socketPath });
  const surface = connection.bind("wl_compositor", 4).request("create_surface");
  const shm = connection.bind("wl_shm", 1);
  const wmBase = connection.bind("xdg_wm_base", 2);
  wmBase.on("ping", (serial) => wmBase.request("pong", serial));
  const xdgSurface = wmBase.request("get_xdg_surface", surface);
  const toplevel = xdgSurface.request("get_toplevel");
  toplevel.request("set_title", "flood");
  const configured = new Promise<number>((resolve) => xdgSurface.on("configure", (serial) => resolve(serial)));
  surface.request("commit");
  xdgSurface.request("ack_configure", await configured);
  xdgSurface.on("configure", (serial) => xdgSurface.request("ack_configure", serial));
  const pool = new ClientShmPool(shm, width * height * 4);
  const { proxy: buffer, bytes } = pool.createBuffer(0, width, height, width * 4, SHM_FORMAT_XRGB8888);
  bytes.fill(0x80);
  surface.request("attach", buffer, 0, 0);
  surface.request("damage_buffer", 0, 0, width, height);
  surface.request("commit");
  await connection.roundtrip();
  console.log("ready");
  if ((await nextCommand()) !== "go") return;
  let commits = 0;
  while (!stopped && commands[0] !== "stop" && !connection.destroyed) {
    for (let i = 0; i < 64; i++) {
      surface.request("attach", buffer, 0, 0);
      surface.request("damage_buffer", 0, 0, width, height);
      surface.request("commit");
    }
    commits += 64;
    await connection.roundtrip();
  }
  console.log(`commits ${commits}${connection.error !== undefined ? ` (${connection.error.message})` : ""}`);
  connection.destroy();
}

async function probe(): Promise<void> {
  const connection = await connect({ display: socketPath });
  console.log("ready");
  for (;;) {
    const command = await nextCommand();
    const go = /^go (\d+)$/.exec(command);
    if (go === null) break;
    const end = performance.now() + Number(go[1]);
    const latencies: number[] = [];
    while (performance.now() < end) {
      const start = performance.now();
      await connection.roundtrip();
      latencies.push(performance.now() - start);
      await new Promise((resolve) => setTimeout(resolve, 2));
    }
    console.log(`latencies ${JSON.stringify(latencies.map((ms) => Math.round(ms * 100) / 100))}`);
  }
  connection.destroy();
}

const run = mode === "surfaces" ? floodSurfaces : mode === "commits" ? floodCommits : probe;
await run();
process.exit(0);
