/**
 * Records the `wayland` fuzz target's corpus: real clients (foot,
 * weston-terminal, weston-simple-shm, our demo app) run against the agent's
 * compositor (in this process, driven as in the fuzz target) through a
 * recording proxy socket, which passes every byte and fd both ways and
 * keeps what the client sent: each sendmsg's bytes, and the kind and size
 * of each fd that came with it (SCM_RIGHTS cannot be stored; the replay
 * sends fresh memfds of the same sizes, pipes for pipes). A client runs
 * until its window has committed a few frames, then gets SIGTERM.
 *
 *   node --import tsx test/fuzz/wayland/capture.ts [OUTDIR]
 *
 * writes OUTDIR/NAME.wlrq (default test/fuzz/corpus/wayland/).
 */
import { spawn } from "node:child_process";
import { fstatSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

import { compileKeymap } from "../../../compositor/index.ts";
import {
  POLL_READABLE,
  POLL_WRITABLE,
  Poll,
  accept,
  close,
  connect,
  listen,
  recvmsg,
  sendmsg,
  socket,
} from "../../../native/index.ts";
import { newStats } from "../harness.ts";
import { startAgentServer } from "./servers.ts";
import { encodeCapture, type CapturedChunk, type CapturedFd } from "./wire.ts";

const here = path.dirname(fileURLToPath(import.meta.url));
const repoRoot = path.resolve(here, "../../..");
/** How long a client may take to show its window and those frames (ms). */
const CLIENT_TIMEOUT_MS = 30_000;

/**
 * One socket of the proxy: what it reads goes to its peer's queue (kept
 * when `record`), and its own queue is written as the socket takes it.
 */
class Endpoint {
  readonly chunks: CapturedChunk[] = [];
  peer: Endpoint | null = null;
  closed = false;
  private readonly queue: Array<{ bytes: Uint8Array; fds: number[] }> = [];
  private readonly poll: Poll;

  constructor(
    readonly fd: number,
    private readonly record: boolean,
    private readonly onEnd: () => void,
  ) {
    this.poll = new Poll(fd, (error, events) => {
      if (error !== null) this.onEnd();
      else if ((events & POLL_WRITABLE) !== 0) this.flush();
      if ((events & POLL_READABLE) !== 0) this.read();
    });
    this.poll.start(POLL_READABLE);
  }

  /** Queues bytes (and fds, owned from now on) to write to this socket. */
  send(bytes: Uint8Array, fds: number[]): void {
    this.queue.push({ bytes, fds });
    this.flush();
  }

  private read(): void {
    const buffer = new Uint8Array(65536);
    while (!this.closed) {
      let got;
      try {
        got = recvmsg(this.fd, buffer);
      } catch {
        got = { bytes: 0, fds: [] as number[] };
      }
      if (got === null) return;
      if (got.bytes === 0) {
        for (const fd of got.fds) close(fd);
        this.onEnd();
        return;
      }
      const bytes = buffer.slice(0, got.bytes);
      if (this.record) this.chunks.push({ bytes, fds: got.fds.map(describeFd) });
      if (this.peer === null) for (const fd of got.fds) close(fd);
      else this.peer.send(bytes, got.fds);
    }
  }

  private flush(): void {
    while (this.queue.length > 0 && !this.closed) {
      const head = this.queue[0]!;
      let sent: number | null;
      try {
        sent = sendmsg(this.fd, head.bytes, head.fds.length > 0 ? head.fds : undefined);
      } catch {
        this.onEnd();
        return;
      }
      if (sent === null) break;
      for (const fd of head.fds) close(fd);
      head.fds = [];
      head.bytes = head.bytes.subarray(sent);
      if (head.bytes.length === 0) this.queue.shift();
    }
    if (!this.closed) this.poll.start(this.queue.length > 0 ? POLL_READABLE | POLL_WRITABLE : POLL_READABLE);
  }

  /** Stops watching, closes the fds still queued and the socket. */
  destroy(): void {
    if (this.closed) return;
    this.closed = true;
    this.poll.close();
    for (const { fds } of this.queue.splice(0)) for (const fd of fds) close(fd);
    close(this.fd);
  }
}

function describeFd(fd: number): CapturedFd {
  const stat = fstatSync(fd);
  if (stat.isFile()) return { kind: "file", size: stat.size };
  return stat.isFIFO() ? { kind: "pipe" } : { kind: "other" };
}

/** A recording proxy on `listenPath` in front of `upstreamPath`: each client's chunks kept. */
function startProxy(listenPath: string, upstreamPath: string): { chunks: () => CapturedChunk[]; destroy: () => void } {
  const listener = listen("stream", listenPath, 4);
  const clients: Endpoint[] = [];
  const servers: Endpoint[] = [];
  const poll = new Poll(listener, () => {
    const accepted = accept(listener);
    if (accepted === null) return;
    const upstream = socket("stream");
    connect(upstream, upstreamPath);
    const end = (): void => {
      client.destroy();
      server.destroy();
    };
    const client = new Endpoint(accepted, true, end);
    const server = new Endpoint(upstream, false, end);
    client.peer = server;
    server.peer = client;
    clients.push(client);
    servers.push(server);
  });
  poll.start(POLL_READABLE);
  return {
    chunks: () => clients.flatMap((client) => client.chunks),
    destroy: () => {
      poll.close();
      close(listener);
      for (const endpoint of [...clients, ...servers]) endpoint.destroy();
      rmSync(listenPath, { force: true });
    },
  };
}

interface App {
  name: string;
  command: string;
  args: string[];
  /** Commits of its windows to wait for before it is stopped (an idle terminal commits once). */
  frames: number;
}

const APPS: App[] = [
  { name: "weston-simple-shm", command: "weston-simple-shm", args: [], frames: 8 },
  {
    name: "foot",
    command: "foot",
    args: ["-o", "tweak.render-timer=none", "-e", "sh", "-c", "echo fuzz; cat"],
    frames: 1,
  },
  { name: "weston-terminal", command: "weston-terminal", args: ["--shell=/bin/sh"], frames: 1 },
  {
    name: "qubes-demo-app",
    command: process.execPath,
    args: [path.join(repoRoot, "bin", "qubes-demo-app.js"), "--name", "fuzz"],
    frames: 1,
  },
];

async function captureApp(app: App, dir: string, upstream: string): Promise<CapturedChunk[]> {
  const listenPath = path.join(dir, `capture-${app.name}`);
  const proxy = startProxy(listenPath, upstream);
  const child = spawn(app.command, app.args, {
    env: {
      PATH: process.env.PATH,
      HOME: dir,
      LANG: "C.UTF-8",
      XDG_RUNTIME_DIR: dir,
      WAYLAND_DISPLAY: path.basename(listenPath),
    },
    stdio: ["pipe", "ignore", "pipe"],
  });
  let stderr = "";
  child.stderr?.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk));
  try {
    await framesOf(app, child);
  } catch (error) {
    throw new Error(`${(error as Error).message}; it printed:\n${stderr.slice(-1500)}`);
  } finally {
    child.kill("SIGTERM");
    if (child.exitCode === null && child.signalCode === null) {
      await new Promise((resolve) => child.once("close", resolve));
    }
    proxy.destroy();
  }
  if (stderr !== "") process.stderr.write(`${app.name}: ${stderr.slice(-500)}\n`);
  return proxy.chunks();
}

let frames: (count: number) => void = () => undefined;

/** Resolves once the app's windows committed its frames; rejects naming what never came. */
function framesOf(app: App, child: ReturnType<typeof spawn>): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`${app.name}: ${app.frames} frames never came within ${CLIENT_TIMEOUT_MS} ms`)),
      CLIENT_TIMEOUT_MS,
    );
    child.once("close", (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`${app.name} ended (${code ?? signal}) before ${app.frames} frames`));
    });
    frames = (count) => {
      if (count < app.frames) return;
      clearTimeout(timer);
      resolve();
    };
  });
}

const outDir = path.resolve(process.argv[2] ?? path.join(here, "..", "corpus", "wayland"));
mkdirSync(outDir, { recursive: true });
const dir = mkdtempSync(path.join(tmpdir(), "fuzz-capture-"));
const stats = newStats();
const server = startAgentServer(path.join(dir, "wayland-agent"), await compileKeymap({ layout: "us" }), stats);
let commits = 0;
server.compositor.events.newWindow.add((window) => {
  window.events.commit.add(() => frames(++commits));
});
let failed = false;
try {
  for (const app of APPS) {
    commits = 0;
    try {
      const chunks = await captureApp(app, dir, server.socketPath);
      const file = path.join(outDir, `${app.name}.wlrq`);
      const encoded = encodeCapture(chunks);
      writeFileSync(file, encoded);
      process.stdout.write(`${file}: ${chunks.length} writes, ${encoded.length} bytes\n`);
    } catch (error) {
      failed = true;
      process.stderr.write(`${(error as Error).message}\n`);
    }
  }
} finally {
  server.destroy();
  rmSync(dir, { recursive: true, force: true });
}
process.exit(failed ? 1 : 0);
