/**
 * The libvchan API in TypeScript terms, shared by every backend: a byte
 * stream between a server and a client domain on a port, with the ring
 * occupancy (dataReady, bufferSpace) visible to the caller, so back-pressure
 * is explicit, and readiness delivered as events on the event loop, never by
 * blocking it.
 */
import type { EventEmitter } from "node:events";

import type { DomainId } from "../shm/index.ts";

/** libvchan_is_open(): the peer is gone or the channel closed. */
export const VCHAN_DISCONNECTED = 0;
/** libvchan_is_open(): both sides are connected. */
export const VCHAN_CONNECTED = 1;
/** libvchan_is_open(): a server waiting for its client. */
export const VCHAN_WAITING = 2;

/** What libvchan_is_open() returns. */
export type VchanState = typeof VCHAN_DISCONNECTED | typeof VCHAN_CONNECTED | typeof VCHAN_WAITING;

/** The vchan backends by name. */
export type VchanBackend = "socket" | "shm" | "xen";

/**
 * Events of a {@link Vchan}, all emitted from the event loop (never inside a
 * call on the channel):
 * - `data`: bytes are readable (dataReady() > 0); repeated after a read that
 *   took bytes and left some behind, and scheduled for a listener added while
 *   bytes wait. A handler that waits for a whole message checks dataReady()
 *   (or tries recv()) and returns: the next `data` comes with the next bytes;
 * - `drain`: after a short write, ring space was freed; after a failed
 *   send, there is now room for all of it;
 * - `connect`: a waiting server's client connected;
 * - `disconnect`: the peer closed or died (bytes already received stay readable).
 */
export interface VchanEvents {
  data: [];
  drain: [];
  connect: [];
  disconnect: [];
}

/** One end of a vchan. */
export interface Vchan extends EventEmitter<VchanEvents> {
  /** Which backend carries the bytes. */
  readonly backend: VchanBackend;
  /** Whether this end is the server (it set the channel up) or the client. */
  readonly role: "server" | "client";
  /** The peer domain. */
  readonly domain: DomainId;
  /** The port number agreed with the peer (the GUI uses 6000). */
  readonly port: number;
  /** Bytes this end can write at most at once (send() of more always fails). */
  readonly writeRingSize: number;
  /** Bytes this end can buffer for reading at most. */
  readonly readRingSize: number;
  /** libvchan_is_open(): VCHAN_CONNECTED, VCHAN_WAITING or VCHAN_DISCONNECTED. */
  isOpen(): VchanState;
  /** libvchan_data_ready(): bytes readable now without waiting. */
  dataReady(): number;
  /** libvchan_buffer_space(): bytes writable now without waiting; 0 when not connected. */
  bufferSpace(): number;
  /** libvchan_read(): copies up to `into.length` readable bytes into `into`; the count (0 when nothing is ready). */
  read(into: Uint8Array): number;
  /** libvchan_recv(): fills all of `into` and returns true, or takes nothing and returns false. Throws VCHAN_TOO_LARGE past the ring size. */
  recv(into: Uint8Array): boolean;
  /** libvchan_write(): writes what fits now; the count (maybe 0). Throws VCHAN_DISCONNECTED when not connected. */
  write(data: Uint8Array): number;
  /** libvchan_send(): writes all of `data` and returns true, or nothing and returns false. Throws VCHAN_TOO_LARGE past the ring size. */
  send(data: Uint8Array): boolean;
  /** Resolves once the channel is connected (at once if it is); rejects if it is closed first. */
  whenConnected(): Promise<void>;
  /** libvchan_close(): ends this side; bytes written before stay readable by the peer. Idempotent. */
  close(): void;
}

/** Options shared by servers and clients. */
export interface VchanCommonOptions {
  /** The backend; default `xen` where it is available, else `socket`. */
  backend?: VchanBackend;
  /** The peer domain id. */
  domain: DomainId;
  /** The port (any non-negative integer; the GUI uses 6000). */
  port: number;
  /** This domain's id; default VCHAN_DOMAIN, else 0. */
  ownDomain?: DomainId;
  /** Rendezvous directory (socket and shm backends); default VCHAN_SOCKET_DIR, else /var/run/vchan. */
  socketDir?: string;
}

/** Options of a server (libvchan_server_init). */
export interface VchanServerOptions extends VchanCommonOptions {
  /** The least read ring size wanted, in bytes (libvchan's read_min). Default 4096. */
  readMin?: number;
  /** The least write ring size wanted, in bytes (libvchan's write_min). Default 4096. */
  writeMin?: number;
}

/** Options of a client (libvchan_client_init). */
export interface VchanClientOptions extends VchanCommonOptions {
  /** Abort the wait for the server. */
  signal?: AbortSignal;
}
