/**
 * Connecting to a named AF_UNIX socket that may not exist yet: the client
 * side of every rendezvous here (grant pools, vchan-socket, vchan-shm) retries
 * while the path is missing or refuses, as qubes-core-vchan-socket's client
 * does, without ever blocking the event loop.
 */
import { statSync, unlinkSync } from "node:fs";

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
 * full; any other error rejects. Resolves with the connected fd (owned by the
 * caller).
 */
export function connectWhenListening(path: string, options: ConnectOptions = {}): Promise<number> {
  const maxDelay = options.maxRetryDelayMs ?? 10;
  const signal = options.signal;
  return new Promise((resolve, reject) => {
    let timer: ReturnType<typeof setTimeout> | undefined;
    let delay = 1;
    const onAbort = (): void => {
      if (timer !== undefined) clearTimeout(timer);
      reject(signal?.reason ?? new Error("aborted"));
    };
    const attempt = (): void => {
      timer = undefined;
      if (signal?.aborted === true) return;
      const fd = native.socket("stream");
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

/** Removes a stale socket path left by an earlier run; a missing path is fine. */
export function unlinkStale(path: string): void {
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

/** Removes a stale `path`, then listens there with `backlog`; remembers which file it bound. */
export function listenReplacing(path: string, backlog: number): BoundListener {
  unlinkStale(path);
  const fd = native.listen("stream", path, backlog);
  const stats = statSync(path);
  return { fd, path, dev: stats.dev, ino: stats.ino };
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
