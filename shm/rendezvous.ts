/**
 * The named AF_UNIX sockets of every rendezvous here (grant pools,
 * vchan-socket, vchan-shm). Clients connect to a path that may not exist
 * yet, retrying while it is missing or refuses, as qubes-core-vchan-socket's
 * client does, without ever blocking the event loop. Servers take a path only
 * from nobody: a stale socket (nobody listening) is replaced, but a socket a
 * live process serves, or a file that is not a socket, is an error, so that a
 * second process with the same domain ids cannot cut the first one off.
 *
 * Access: a rendezvous hands out a domain's grant pool and table, or a vchan,
 * read-write. Its socket is made mode 0600 as soon as it is bound, and every
 * connection is checked with SO_PEERCRED before anything is sent: only this
 * process's own user, root (who can read any process's memory anyway) and
 * the users QUBES_PEER_UIDS names get an answer; anyone else is hung up on.
 * Clients check the server the same way, so that a socket another user put
 * at the name first is never taken for the domain's.
 */
import { chmodSync, lstatSync, statSync, unlinkSync } from "node:fs";
import { constants } from "node:os";

import * as native from "../native/index.ts";

/** Options of {@link connectWhenListening}. */
export interface ConnectOptions {
  /** Abort the retries; the promise rejects with the signal's reason. */
  signal?: AbortSignal | undefined;
  /** Longest pause between attempts, in ms. Default 10. */
  maxRetryDelayMs?: number | undefined;
}

/**
 * Connects a non-blocking stream socket to `path`, retrying while the path
 * does not exist or nobody listens (ENOENT, ECONNREFUSED) or the backlog is
 * full; any other error rejects, a socket that cannot be made (EMFILE ...)
 * included. Resolves with the connected fd (owned by the caller). The
 * server's user (SO_PEERCRED) must be one a rendezvous answers
 * (see {@link allowedPeerUids}): a socket another user put at `path` is
 * refused with an error of code UNTRUSTED_PEER.
 */
export function connectWhenListening(path: string, options: ConnectOptions = {}): Promise<number> {
  const maxDelay = options.maxRetryDelayMs ?? 10;
  const signal = options.signal;
  return new Promise((resolve, reject) => {
    let allowed: ReadonlySet<number>;
    try {
      allowed = allowedPeerUids();
    } catch (error) {
      reject(error as Error);
      return;
    }
    let timer: ReturnType<typeof setTimeout> | undefined;
    let delay = 1;
    const onAbort = (): void => {
      if (timer !== undefined) clearTimeout(timer);
      reject(signal?.reason ?? new Error("aborted"));
    };
    const attempt = (): void => {
      timer = undefined;
      if (signal?.aborted === true) return;
      let fd: number;
      try {
        fd = native.socket("stream");
      } catch (error) {
        // No socket to try with (EMFILE, ENFILE ...): an error for the caller, not an exception in a timer.
        signal?.removeEventListener("abort", onAbort);
        reject(error as Error);
        return;
      }
      let connected = false;
      try {
        connected = native.connect(fd, path);
      } catch (error) {
        native.close(fd);
        if (!native.isSyscallError(error, "ENOENT") && !native.isSyscallError(error, "ECONNREFUSED")) {
          signal?.removeEventListener("abort", onAbort);
          reject(error);
          return;
        }
        timer = setTimeout(attempt, delay);
        delay = Math.min(delay * 2, maxDelay);
        return;
      }
      if (connected) {
        signal?.removeEventListener("abort", onAbort);
        // The server too must be one of ours: another user may have put a socket at this name first.
        const server = serverCredentials(fd);
        if (server === null || !allowed.has(server.uid)) {
          native.close(fd);
          reject(
            Object.assign(
              new Error(
                `${path} is served by ${server === null ? "an unknown user" : `uid ${server.uid}`}, ` +
                  "not by this user, root or QUBES_PEER_UIDS: refused",
              ),
              { code: "UNTRUSTED_PEER" },
            ),
          );
          return;
        }
        resolve(fd);
        return;
      }
      native.close(fd);
      timer = setTimeout(attempt, delay);
      delay = Math.min(delay * 2, maxDelay);
    };
    if (signal?.aborted === true) {
      reject(signal.reason ?? new Error("aborted"));
      return;
    }
    signal?.addEventListener("abort", onAbort, { once: true });
    attempt();
  });
}

/**
 * Resolves once `fd` is readable (or has hung up), without blocking the loop.
 * The Poll handle is closed before the promise settles.
 */
export function whenReadable(fd: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const poll = new native.Poll(fd, (error) => {
      poll.close();
      signal?.removeEventListener("abort", onAbort);
      if (error !== null) reject(error);
      else resolve();
    });
    const onAbort = (): void => {
      poll.close();
      reject(signal?.reason ?? new Error("aborted"));
    };
    if (signal?.aborted === true) {
      poll.close();
      reject(signal.reason ?? new Error("aborted"));
      return;
    }
    signal?.addEventListener("abort", onAbort, { once: true });
    poll.start(native.POLL_READABLE | native.POLL_DISCONNECT);
  });
}

/** What a connect to a socket path says about it. */
type SocketState = "live" | "stale" | "missing";

/** Connects to `path` once and hangs up: a live process accepts (or its backlog is full), a stale socket refuses. */
function probeSocket(path: string): SocketState {
  const fd = native.socket("stream");
  try {
    // true: accepted; false: the listener's backlog is full. Either way a live process listens.
    native.connect(fd, path);
    return "live";
  } catch (error) {
    if (native.isSyscallError(error, "ECONNREFUSED")) return "stale";
    if (native.isSyscallError(error, "ENOENT")) return "missing";
    const code = (error as { code?: string }).code ?? "unknown error";
    throw new Error(`${path}: cannot tell whether a live process serves it (connect: ${code})`, { cause: error });
  } finally {
    native.close(fd);
  }
}

/** The error of a path that is taken: bind's own EADDRINUSE, with a message that names the path and why. */
function addressInUse(path: string, message: string): native.SyscallError & { path: string } {
  return Object.assign(new Error(message), {
    code: "EADDRINUSE",
    errno: -constants.errno.EADDRINUSE,
    syscall: "bind",
    path,
  });
}

/** A failed system call's error, again with a message that names `path` (the kernel's does not). */
function namingPath(error: unknown, path: string): unknown {
  if (!native.isSyscallError(error)) return error;
  const { code, errno, syscall } = error;
  return Object.assign(new Error(`cannot listen on ${path}: ${error.message}`, { cause: error }), {
    code,
    errno,
    syscall,
    path,
  });
}

/**
 * Removes a stale socket at `path` (one nobody listens on, left by a process
 * that died); a missing path is fine. Throws EADDRINUSE, removing nothing,
 * when a live process listens there or when the path is not a socket.
 */
export function unlinkStale(path: string): void {
  let stats;
  try {
    stats = lstatSync(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return;
    throw error;
  }
  if (!stats.isSocket()) throw addressInUse(path, `${path} exists and is not a socket: not removed`);
  const state = probeSocket(path);
  if (state === "live") throw addressInUse(path, `${path} is served by another live process`);
  if (state === "missing") return;
  try {
    unlinkSync(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
  }
}

/** A listening socket and the identity of the file it bound, so that only its owner removes the name. */
export interface BoundListener {
  /** The listening fd (owned by the caller). */
  readonly fd: number;
  /** The socket path. */
  readonly path: string;
  /** Device and inode of the socket file at bind time. */
  readonly dev: number;
  readonly ino: number;
}

/** Binds that found the path taken by a stale socket, each removed before the next; a racing process may bind in between. */
const MAX_BIND_ATTEMPTS = 3;

/**
 * Listens on `path` with `backlog`, after removing a stale socket there; the
 * listener remembers which file it bound. Throws EADDRINUSE (with a message
 * naming the path) when another live process serves `path` or when `path`
 * is not a socket: nothing is removed then. The bind comes first, so a path
 * that is free is never probed.
 */
export function listenReplacing(path: string, backlog: number): BoundListener {
  for (let attempt = 1; ; attempt++) {
    let fd: number;
    try {
      fd = native.listen("stream", path, backlog);
    } catch (error) {
      if (!native.isSyscallError(error, "EADDRINUSE") || attempt === MAX_BIND_ATTEMPTS) throw namingPath(error, path);
      unlinkStale(path);
      continue;
    }
    try {
      // Only this user may connect (root may anyway); the peer check at accept covers the instant before.
      chmodSync(path, 0o600);
      const stats = statSync(path);
      return { fd, path, dev: stats.dev, ino: stats.ino };
    } catch (error) {
      native.close(fd);
      throw error;
    }
  }
}

/**
 * Removes the listener's path if it still names the file this listener bound
 * (a newer server may have replaced it: its name is not ours to remove).
 */
export function unlinkIfOwn(listener: BoundListener): void {
  try {
    const stats = statSync(listener.path);
    if (stats.dev === listener.dev && stats.ino === listener.ino) unlinkSync(listener.path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
  }
}

/**
 * The users whose processes a rendezvous answers: this process's own, root,
 * and those of QUBES_PEER_UIDS (comma-separated uids), for a machine that
 * runs domains as users of their own. Throws a RangeError naming the
 * variable when it is malformed.
 */
export function allowedPeerUids(env: NodeJS.ProcessEnv = process.env): ReadonlySet<number> {
  const allowed = new Set<number>([process.getuid?.() ?? 0, 0]);
  const raw = env["QUBES_PEER_UIDS"];
  if (raw === undefined || raw.trim() === "") return allowed;
  for (const part of raw.split(",")) {
    const text = part.trim();
    const uid = Number(text);
    if (!/^\d{1,10}$/.test(text) || uid > 0xfffffffe) {
      throw new RangeError(`QUBES_PEER_UIDS must be comma-separated uids, got ${JSON.stringify(raw)}`);
    }
    allowed.add(uid);
  }
  return allowed;
}

/** How long a listener rests after the process ran out of fds or memory before it accepts again (ms). */
export const ACCEPT_RETRY_MS = 250;

/** accept() failed for want of a resource (fds, memory): the connection stays in the backlog. */
function exhausted(error: unknown): boolean {
  return ["EMFILE", "ENFILE", "ENOBUFS", "ENOMEM"].some((code) => native.isSyscallError(error, code));
}

/**
 * Accepts the next waiting connection on `listenFd` whose peer (SO_PEERCRED)
 * is one of `allowed`; connections from anyone else are closed at once.
 * Returns null when no connection is waiting, or when the process is out of
 * fds: then `poll`, the listener's watch, rests for {@link ACCEPT_RETRY_MS}
 * (the connection stays in the backlog; watching it meanwhile would spin).
 */
export function acceptAllowedPeer(listenFd: number, allowed: ReadonlySet<number>, poll?: native.Poll): number | null {
  for (;;) {
    let fd: number | null;
    try {
      fd = native.accept(listenFd);
    } catch (error) {
      if (native.isSyscallError(error, "ECONNABORTED")) continue;
      if (!exhausted(error)) throw error;
      if (poll !== undefined && !poll.closed) {
        poll.stop();
        setTimeout(() => {
          if (!poll.closed) poll.start(native.POLL_READABLE);
        }, ACCEPT_RETRY_MS).unref();
      }
      return null;
    }
    if (fd === null) return null;
    let credentials: { pid: number; uid: number } | null = null;
    try {
      credentials = native.peerCredentials(fd);
    } catch {
      credentials = null;
    }
    if (credentials !== null && allowed.has(credentials.uid)) return fd;
    native.close(fd);
  }
}

/** The peer credentials of a connected socket, or null when the kernel will not say. */
function serverCredentials(fd: number): { pid: number; uid: number } | null {
  try {
    return native.peerCredentials(fd);
  } catch {
    return null;
  }
}
