/**
 * Writes the fuzz client's requests on its socket: each fd a request names
 * is made fresh (a memfd, a pipe end, a socket, an eventfd, /dev/null),
 * sent by SCM_RIGHTS with the bytes, and closed on this side once written;
 * a memfd marked to shrink is kept to be truncated a round later, under the
 * pool the server has mapped by then.
 */
import { openSync } from "node:fs";

import { close, eventfdCreate, memfdCreate, resize, socket } from "../../../native/index.ts";
import { createPipe } from "../../../wayland/index.ts";
import type { RawClient } from "../../helpers/raw-client.ts";
import { concat } from "../harness.ts";
import { encodeRequest, type FdSpec, type RawRequest } from "./wire.ts";

/** The largest number of fds one sendmsg carries (SCM_MAX_FD). */
export const MAX_FDS_PER_WRITE = 253;

/** memfds kept open after they were sent, to be shrunk later under the server's mapping (see {@link shrinkHeld}). */
export type HeldFds = Array<{ fd: number; shrinkTo: number }>;

/** Makes the fd `spec` asks for (of a pipe, one end; the other is closed at once). */
function makeFd(spec: FdSpec): number {
  switch (spec.kind) {
    case "memfd":
      return memfdCreate("fuzz-pool", spec.size);
    case "pipe-read":
    case "pipe-write": {
      const pipe = createPipe();
      close(spec.kind === "pipe-read" ? pipe.writeFd : pipe.readFd);
      return spec.kind === "pipe-read" ? pipe.readFd : pipe.writeFd;
    }
    case "socket":
      return socket("stream");
    case "eventfd":
      return eventfdCreate();
    case "dev-null":
      return openSync("/dev/null", "r");
  }
}

/**
 * Makes the fds of `specs`. `release` closes them, except sent memfds that
 * are to shrink, which go to `held` (when given) to be shrunk later.
 */
export function makeFds(specs: readonly FdSpec[], held?: HeldFds): { fds: number[]; release: (sent: boolean) => void } {
  const fds: number[] = [];
  try {
    for (const spec of specs) fds.push(makeFd(spec));
  } catch (error) {
    for (const fd of fds) close(fd);
    throw error;
  }
  return {
    fds,
    release: (sent) => {
      fds.forEach((fd, i) => {
        const spec = specs[i] as FdSpec;
        if (sent && held !== undefined && spec.kind === "memfd" && spec.shrinkTo !== undefined) {
          held.push({ fd, shrinkTo: spec.shrinkTo });
        } else {
          close(fd);
        }
      });
    },
  };
}

/** Shrinks the held memfds under the pools the server made of them, and closes them. */
export function shrinkHeld(held: HeldFds, shrink = true): void {
  for (const { fd, shrinkTo } of held.splice(0)) {
    try {
      if (shrink) resize(fd, shrinkTo);
    } finally {
      close(fd);
    }
  }
}

/**
 * Encodes `requests` and writes them as one stream (`transform` may cut or
 * mutate the bytes), their fds with the first byte (at most
 * {@link MAX_FDS_PER_WRITE}; the rest are dropped, as a real client's would
 * be refused). Resolves with the bytes written, or -1 when the server hung
 * up first; this side's fds are closed either way.
 */
export async function sendRequests(
  raw: RawClient,
  requests: readonly RawRequest[],
  transform?: (bytes: Uint8Array) => Uint8Array,
  held?: HeldFds,
): Promise<number> {
  const encoded = concat(...requests.map(encodeRequest));
  const bytes = transform === undefined ? encoded : transform(encoded);
  const specs = requests.flatMap((request) => request.fds).slice(0, MAX_FDS_PER_WRITE);
  return sendBytes(raw, bytes, specs, held);
}

/** How long the server may take to read what a client wrote (ms): past it the server is stuck. */
export const WRITE_TIMEOUT_MS = 20_000;

/**
 * Writes `bytes` with fresh fds of `specs`; resolves with the bytes written,
 * or -1 when the server hung up first. Rejects when the server has not read
 * them within {@link WRITE_TIMEOUT_MS}.
 */
export async function sendBytes(
  raw: RawClient,
  bytes: Uint8Array,
  specs: readonly FdSpec[],
  held?: HeldFds,
): Promise<number> {
  if (raw.closed || bytes.length === 0) return raw.closed ? -1 : 0;
  const { fds, release } = makeFds(specs, held);
  let sent = false;
  let timer: NodeJS.Timeout | undefined;
  const stuck = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`the server never read ${bytes.length} bytes within ${WRITE_TIMEOUT_MS} ms`)),
      WRITE_TIMEOUT_MS,
    );
  });
  try {
    const written = raw.write(bytes, fds).then(
      () => true,
      () => false,
    );
    sent = await Promise.race([written, stuck]);
    return sent ? bytes.length : -1;
  } finally {
    clearTimeout(timer);
    release(sent);
  }
}
