/**
 * One-way byte pipes for transfers that Wayland hands to fds (clipboard and
 * drag-and-drop data: wl_data_source.send writes into an fd the compositor
 * gives it). Built on an AF_UNIX stream socketpair, which behaves as a pipe
 * for write(2) and read(2), because Node has no pipe(2).
 */
import { writeFile } from "node:fs";

import { Poll, POLL_READABLE, close, recvmsg, setNonBlocking, shutdown, socketpair } from "../native/index.ts";

/** The two ends of a pipe: the caller owns both fds. */
export interface PipeFds {
  /** The end to read from (non-blocking, for {@link readPipe}). */
  readFd: number;
  /** The end to hand to a writer (blocking, as a program writing with write(2) expects). */
  writeFd: number;
}

/**
 * Creates a pipe: a socketpair whose read end cannot write and whose write
 * end cannot read, so it carries bytes one way only.
 */
export function createPipe(): PipeFds {
  const [readFd, writeFd] = socketpair("stream");
  try {
    shutdown(readFd, "write");
    shutdown(writeFd, "read");
    setNonBlocking(writeFd, false);
  } catch (error) {
    close(readFd);
    close(writeFd);
    throw error;
  }
  return { readFd, writeFd };
}

/** What {@link readPipe} read: at most `limit` bytes, and whether the writer had more. */
export interface PipeRead {
  data: Uint8Array;
  truncated: boolean;
}

/**
 * Reads the read end of a pipe (owned: closed when done) until the writer
 * closes its end, `limit` bytes were exceeded (then `truncated`), or
 * `timeoutMs` passed without the end (then whatever arrived, not marked truncated).
 * The limit bounds what a hostile writer can make the reader buffer.
 */
export function readPipe(readFd: number, limit: number, timeoutMs = 5000): Promise<PipeRead> {
  if (!Number.isSafeInteger(limit) || limit < 0) throw new RangeError(`limit must be ≥ 0, got ${limit}`);
  return new Promise((resolve) => {
    const chunks: Uint8Array[] = [];
    let total = 0;
    let done = false;
    const buffer = new Uint8Array(Math.min(Math.max(limit + 1, 1), 65536));
    const finish = (truncated: boolean): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      poll.close();
      close(readFd);
      const data = new Uint8Array(Math.min(total, limit));
      let at = 0;
      for (const chunk of chunks) {
        const part = chunk.subarray(0, data.length - at);
        data.set(part, at);
        at += part.length;
        if (at >= data.length) break;
      }
      resolve({ data, truncated });
    };
    const poll = new Poll(readFd, (error) => {
      if (error !== null) {
        finish(false);
        return;
      }
      for (;;) {
        let received;
        try {
          received = recvmsg(readFd, buffer, 0);
        } catch {
          finish(false);
          return;
        }
        if (received === null) return;
        if (received.bytes === 0) {
          finish(false);
          return;
        }
        chunks.push(buffer.slice(0, received.bytes));
        total += received.bytes;
        if (total > limit) {
          finish(true);
          return;
        }
      }
    });
    const timer = setTimeout(() => finish(false), timeoutMs);
    poll.start(POLL_READABLE);
  });
}

/**
 * Writes `data` into `fd` (owned: closed when done) on Node's thread pool, in
 * blocking mode, so a reader that never reads ties up a pool thread, not the
 * event loop. Resolves false when the write failed (the reader went away).
 */
export function writePipe(fd: number, data: Uint8Array): Promise<boolean> {
  return new Promise((resolve) => {
    try {
      setNonBlocking(fd, false);
    } catch {
      close(fd);
      resolve(false);
      return;
    }
    writeFile(fd, data, (error) => {
      close(fd);
      resolve(error === null);
    });
  });
}

/** Closes an fd that a request handler received and owns (wl_data_offer.receive's, a keymap's): for code that may not import native/. */
export function closeFd(fd: number): void {
  close(fd);
}
