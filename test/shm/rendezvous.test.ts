/**
 * Taking a rendezvous path: a stale socket (nobody listening) is replaced, a
 * socket that a live process serves or a file that is not a socket is
 * refused with EADDRINUSE naming the path, and the file is left as it was.
 */
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";

import { afterEach, describe, expect, it } from "vitest";

import * as native from "../../native/index.ts";
import {
  ACCEPT_RETRY_MS,
  acceptAllowedPeer,
  connectWhenListening,
  grantSocketPath,
  listenReplacing,
  unlinkIfOwn,
  unlinkStale,
} from "../../shm/index.ts";
import { createVchanServer, connectVchanClient, vchanSocketPath, type Vchan } from "../../vchan/index.ts";
import { pollUntil } from "../helpers/guid-harness.ts";

const dirs: string[] = [];
const fds: number[] = [];
const channels: Vchan[] = [];

function tempDir(): string {
  const dir = mkdtempSync(path.join(tmpdir(), "qubes-rendezvous-"));
  dirs.push(dir);
  return dir;
}

/** A socket file nobody listens on: what a process that died leaves behind. */
function staleSocket(socketPath: string): void {
  native.close(native.listen("stream", socketPath, 1));
}

/** True when a connect to `socketPath` is accepted now. */
function accepts(socketPath: string): boolean {
  const fd = native.socket("stream");
  try {
    native.connect(fd, socketPath);
    return true;
  } catch {
    return false;
  } finally {
    native.close(fd);
  }
}

afterEach(() => {
  for (const channel of channels.splice(0)) channel.close();
  for (const fd of fds.splice(0)) native.close(fd);
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

describe("listenReplacing", () => {
  it("listens on a free path", () => {
    const socketPath = path.join(tempDir(), "free.sock");
    const listener = listenReplacing(socketPath, 1);
    fds.push(listener.fd);
    expect(statSync(socketPath).isSocket()).toBe(true);
    expect(accepts(socketPath)).toBe(true);
  });

  it("replaces a stale socket that nobody listens on", () => {
    const socketPath = path.join(tempDir(), "stale.sock");
    staleSocket(socketPath);
    expect(accepts(socketPath)).toBe(false);
    const listener = listenReplacing(socketPath, 1);
    fds.push(listener.fd);
    expect(accepts(socketPath)).toBe(true);
  });

  it("refuses a socket a live process serves, naming it, and leaves that process its path", () => {
    const socketPath = path.join(tempDir(), "live.sock");
    const first = listenReplacing(socketPath, 1);
    fds.push(first.fd);
    let error: unknown;
    try {
      fds.push(listenReplacing(socketPath, 1).fd);
    } catch (caught) {
      error = caught;
    }
    expect(native.isSyscallError(error, "EADDRINUSE")).toBe(true);
    expect((error as Error).message).toBe(`${socketPath} is served by another live process`);
    expect(statSync(socketPath).ino).toBe(first.ino);
    // The live server saw one connection that hung up at once: the probe.
    const probe = native.accept(first.fd);
    expect(probe).not.toBeNull();
    native.close(probe as number);
    expect(accepts(socketPath)).toBe(true);
  });

  it("refuses a live listener whose backlog is full", () => {
    const socketPath = path.join(tempDir(), "busy.sock");
    const first = listenReplacing(socketPath, 0);
    fds.push(first.fd);
    // Fill the backlog: these connects are queued, never accepted.
    for (let i = 0; i < 4; i++) {
      const fd = native.socket("stream");
      fds.push(fd);
      try {
        native.connect(fd, socketPath);
      } catch {
        break;
      }
    }
    expect(() => listenReplacing(socketPath, 1)).toThrow(`${socketPath} is served by another live process`);
    expect(statSync(socketPath).ino).toBe(first.ino);
  });

  it("never removes a file that is not a socket", () => {
    const dir = tempDir();
    const file = path.join(dir, "regular.sock");
    writeFileSync(file, "keep me");
    expect(() => listenReplacing(file, 1)).toThrow(`${file} exists and is not a socket: not removed`);
    expect(readFileSync(file, "utf8")).toBe("keep me");
    expect(() => listenReplacing(dir, 1)).toThrow(`${dir} exists and is not a socket: not removed`);
    expect(statSync(dir).isDirectory()).toBe(true);
  });

  it("names the path when the directory is missing", () => {
    const socketPath = path.join(tempDir(), "no", "such", "dir", "x.sock");
    expect(() => listenReplacing(socketPath, 1)).toThrow(`cannot listen on ${socketPath}: bind failed: ENOENT`);
  });

  it("takes the path again in the same process once its own listener is gone", () => {
    const socketPath = path.join(tempDir(), "again.sock");
    const first = listenReplacing(socketPath, 1);
    native.close(first.fd);
    unlinkIfOwn(first);
    const second = listenReplacing(socketPath, 1);
    fds.push(second.fd);
    // And once closed without unlinking (a crash): the stale socket is replaced.
    native.close(second.fd);
    fds.pop();
    const third = listenReplacing(socketPath, 1);
    fds.push(third.fd);
    expect(accepts(socketPath)).toBe(true);
  });
});

describe("unlinkStale", () => {
  it("removes a stale socket, accepts a missing path, and refuses a live one or a regular file", () => {
    const dir = tempDir();
    const stale = path.join(dir, "stale.sock");
    staleSocket(stale);
    unlinkStale(stale);
    expect(existsSync(stale)).toBe(false);
    unlinkStale(stale);
    const live = path.join(dir, "live.sock");
    fds.push(listenReplacing(live, 1).fd);
    expect(() => unlinkStale(live)).toThrow(`${live} is served by another live process`);
    expect(existsSync(live)).toBe(true);
    const file = path.join(dir, "file");
    writeFileSync(file, "x");
    expect(() => unlinkStale(file)).toThrow(/is not a socket/);
    expect(existsSync(file)).toBe(true);
  });
});

describe("the rendezvous paths of a domain", () => {
  it("refuses a second vchan server on a path a live one serves, and replaces a stale one", async () => {
    const dir = tempDir();
    const options = { backend: "socket", domain: 0, ownDomain: 5, port: 6000, socketDir: dir } as const;
    const first = createVchanServer(options);
    channels.push(first);
    expect(() => createVchanServer(options)).toThrow(
      `${vchanSocketPath(dir, 5, 0, 6000)} is served by another live process`,
    );
    // The first server is still the one a client reaches.
    const client = await connectVchanClient({ backend: "socket", domain: 5, ownDomain: 0, port: 6000, socketDir: dir });
    channels.push(client);
    await first.whenConnected();
    // A new server in the same process after the first one's client came (its path is gone) ...
    first.close();
    const again = createVchanServer(options);
    channels.push(again);
    again.close();
    // ... and over a stale socket left by a crash.
    staleSocket(vchanSocketPath(dir, 5, 0, 6000));
    channels.push(createVchanServer(options));
  });

  it("refuses a second grant pool on a path a live one serves", async () => {
    const dir = tempDir();
    const socketPath = grantSocketPath(dir, 5, 0);
    const first = listenReplacing(socketPath, 16);
    fds.push(first.fd);
    expect(() => listenReplacing(socketPath, 16)).toThrow(`${socketPath} is served by another live process`);
    const fd = await connectWhenListening(socketPath);
    fds.push(fd);
  });
});

describe("acceptAllowedPeer out of fds", () => {
  it("rests the listener's watch instead of throwing or spinning, and accepts once an fd is free", async () => {
    const socketPath = path.join(tempDir(), "listener");
    const listenFd = native.listen("stream", socketPath, 4);
    fds.push(listenFd);
    const clientFd = native.socket("stream");
    fds.push(clientFd);
    const [soft, hard] = spawnSync("sh", ["-c", "ulimit -Sn; ulimit -Hn"], { encoding: "utf8" })
      .stdout.trim()
      .split("\n")
      .map(Number) as [number, number];
    const setLimit = (soft: number): void => {
      const run = spawnSync("prlimit", [`--pid=${process.pid}`, `--nofile=${soft}:${hard}`], { encoding: "utf8" });
      expect(run.status, `${run.error?.message ?? ""} ${run.stderr}`).toBe(0);
    };
    const openNow = (): number => readdirSync("/proc/self/fd").length - 1;
    let wakes = 0;
    let accepted: number | null = null;
    const watch = new native.Poll(listenFd, () => {
      wakes += 1;
      accepted ??= acceptAllowedPeer(listenFd, new Set([process.getuid?.() ?? 0]), watch);
    });
    const fillers: number[] = [];
    try {
      watch.start(native.POLL_READABLE);
      // Room for 32 more fds, then all taken: the next accept fails with EMFILE.
      setLimit(openNow() + 32);
      for (;;) {
        try {
          fillers.push(native.eventfdCreate());
        } catch (error) {
          expect(native.isSyscallError(error, "EMFILE")).toBe(true);
          break;
        }
      }
      native.connect(clientFd, socketPath);
      await new Promise((resolve) => setTimeout(resolve, 2 * ACCEPT_RETRY_MS + 100));
      // Woken, refused by the kernel, rested: a handful of wakes, not a loop at full speed.
      expect(accepted).toBeNull();
      expect(wakes).toBeGreaterThanOrEqual(1);
      expect(wakes).toBeLessThanOrEqual(4);
      for (const fd of fillers.splice(0)) native.close(fd);
      await pollUntil(() => accepted !== null, "the connection accepted once fds were free", 5000);
      expect(native.peerCredentials(accepted as unknown as number).uid).toBe(process.getuid?.() ?? 0);
    } finally {
      for (const fd of fillers) native.close(fd);
      watch.close();
      if (accepted !== null) native.close(accepted);
      setLimit(soft);
    }
  });
});
