/**
 * The `socket` vchan backend, byte-compatible with qubes-core-vchan-socket:
 * the raw byte stream on one SOCK_STREAM AF_UNIX socket named
 * `vchan.<server>.<client>.<port>.sock` in VCHAN_SOCKET_DIR (default
 * /var/run/vchan), no framing of any kind, so a program built on the upstream
 * library talks to ours. The server replaces only a stale socket at its path
 * (a live server there, or a file that is not a socket, is EADDRINUSE: one
 * path, one server), listens with backlog 1 and accepts one connection (then
 * removes the path: there is no reconnect, a new server takes the path
 * again); the client retries while the path is missing or refused.
 *
 * As upstream, two local rings sit beside the socket (server: sized from
 * readMin/writeMin, client: 4096 bytes each) and dataReady/bufferSpace report
 * them. Where upstream runs a thread to move bytes, this moves them on the
 * event loop: a Poll on the socket fills the read ring and drains the write
 * ring; write() sends straight from the caller's bytes when the ring is
 * empty and read() receives straight into the caller's buffer when its ring
 * is empty, so a large transfer is not copied twice.
 */
import path from "node:path";

import * as native from "../native/index.ts";
import {
  checkDomainId,
  connectWhenListening,
  ownDomainFromEnvironment,
  socketDirectoryFromEnvironment,
  acceptAllowedPeer,
  allowedPeerUids,
  listenReplacing,
  unlinkIfOwn,
  type BoundListener,
  type DomainId,
} from "../shm/index.ts";
import { VchanBase, checkPort } from "./base.ts";
import { ByteRing, powerOfTwoAtLeast } from "./byte-ring.ts";
import { VchanError } from "./errors.ts";
import {
  VCHAN_CONNECTED,
  VCHAN_DISCONNECTED,
  VCHAN_WAITING,
  type VchanClientOptions,
  type VchanServerOptions,
  type VchanState,
} from "./types.ts";

/** The ring size of a client (qubes-core-vchan-socket's fixed choice), in bytes. */
export const SOCKET_CLIENT_RING_SIZE = 4096;

/** The largest ring a server asks for (libvchan's order 20), in bytes. */
export const MAX_RING_SIZE = 1 << 20;

/** The socket path of a vchan: `<dir>/vchan.<server>.<client>.<port>.sock`. */
export function vchanSocketPath(socketDir: string, server: DomainId, client: DomainId, port: number): string {
  return path.join(socketDir, `vchan.${server}.${client}.${port}.sock`);
}

function checkMin(value: number | undefined, name: string): number {
  const n = value ?? 4096;
  if (!Number.isInteger(n) || n < 0 || n > MAX_RING_SIZE) {
    throw new RangeError(`${name} must be 0..${MAX_RING_SIZE}, got ${String(n)}`);
  }
  return n;
}

/** A vchan end on the socket backend. Create it with {@link createSocketServer} or {@link connectSocketClient}. */
export class SocketVchan extends VchanBase {
  readonly backend = "socket" as const;
  readonly writeRingSize: number;
  readonly readRingSize: number;
  /** The socket path (server: removed once the client connected). */
  readonly socketPath: string;
  /** Bytes received from the socket and not yet read. */
  readonly #rx: ByteRing;
  /** Bytes accepted by write() and not yet taken by the socket. */
  readonly #tx: ByteRing;
  /** The connected socket, or -1 (waiting, gone, closed). */
  #fd = -1;
  /** The listening socket while a server waits, or null. */
  #listener: BoundListener | null = null;
  /** The users whose connection a server answers (see shm/'s acceptAllowedPeer). */
  readonly #allowedPeers = allowedPeerUids();
  #poll: native.Poll | null = null;
  #pollEvents = 0;
  #state: VchanState;
  /** close() was called. */
  #closed = false;
  /** A write or send came up short: emit `drain` when space is freed. */
  #wantDrain = false;
  /** Bytes of ring space the short write (1) or failed send (its length) waits for before `drain`. */
  #drainNeed = 1;
  /** The last receive found the socket empty: skip receiving until the Poll says readable. */
  #drained = false;

  /** @internal Use createSocketServer / connectSocketClient. */
  constructor(
    role: "server" | "client",
    domain: DomainId,
    port: number,
    socketPath: string,
    readRingSize: number,
    writeRingSize: number,
    fd: number,
    listener: BoundListener | null,
  ) {
    super(role, domain, port);
    this.socketPath = socketPath;
    this.readRingSize = readRingSize;
    this.writeRingSize = writeRingSize;
    this.#rx = new ByteRing(readRingSize);
    this.#tx = new ByteRing(writeRingSize);
    if (fd >= 0) {
      this.#fd = fd;
      this.#state = VCHAN_CONNECTED;
      this.#poll = new native.Poll(fd, (error, events) => this.#onSocket(error, events));
      this.#updatePoll();
    } else {
      if (listener === null) throw new TypeError("a waiting server needs its listener");
      this.#listener = listener;
      this.#state = VCHAN_WAITING;
      this.#poll = new native.Poll(listener.fd, () => this.#onListen());
      this.#poll.start(native.POLL_READABLE);
    }
  }

  isOpen(): VchanState {
    return this.#state;
  }

  dataReady(): number {
    if (this.#fd >= 0 && this.#rx.free > 0) {
      this.#fill();
      this.#updatePoll();
    }
    return this.#rx.length;
  }

  bufferSpace(): number {
    if (this.#state !== VCHAN_CONNECTED) return 0;
    if (this.#tx.length > 0) {
      this.#flush();
      this.#updatePoll();
    }
    return this.#tx.free;
  }

  read(into: Uint8Array): number {
    let n = this.#rx.shift(into);
    // An empty ring: receive straight into the caller's buffer.
    while (n < into.length && this.#rx.length === 0 && this.#fd >= 0) {
      const got = this.#receive(into.subarray(n));
      if (got <= 0) break;
      n += got;
    }
    if (this.#fd >= 0) {
      this.#fill();
      this.#updatePoll();
    }
    // Bytes left behind after progress: say so again (never after a read that took nothing, or a caller could spin).
    if (n > 0 && this.#rx.length > 0) this.schedule("data");
    return n;
  }

  recv(into: Uint8Array): boolean {
    this.checkFits(into.length, this.readRingSize, "recv");
    if (this.dataReady() < into.length) return false;
    this.#rx.shift(into);
    if (this.#fd >= 0) {
      this.#fill();
      this.#updatePoll();
    }
    if (this.#rx.length > 0) this.schedule("data");
    return true;
  }

  write(data: Uint8Array): number {
    this.#checkConnected();
    let n = 0;
    if (this.#tx.length === 0) n = this.#send(data);
    else this.#flush();
    if (this.#fd >= 0 && n < data.length) n += this.#tx.push(data.subarray(n));
    if (this.#tx.length > 0 && this.#fd >= 0) this.#flush();
    if (n < data.length) {
      this.#wantDrain = true;
      this.#drainNeed = 1;
    }
    this.#updatePoll();
    this.#drainIfRoom();
    return n;
  }

  send(data: Uint8Array): boolean {
    this.checkFits(data.length, this.writeRingSize, "send");
    this.#checkConnected();
    if (this.#tx.length > 0) this.#flush();
    if (this.#tx.free < data.length) {
      this.#wantDrain = true;
      this.#drainNeed = data.length;
      this.#updatePoll();
      return false;
    }
    // Now the ring alone can take all of data, whatever the socket takes.
    this.write(data);
    return true;
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    const wasOpen = this.#state !== VCHAN_DISCONNECTED;
    this.#state = VCHAN_DISCONNECTED;
    if (this.#listener !== null) {
      this.#poll?.close();
      this.#poll = null;
      this.#stopListening(this.#listener);
    }
    if (this.#fd >= 0) {
      if (this.#tx.length > 0) this.#flush();
      // Bytes write() accepted are the peer's: linger until the socket took them.
      if (this.#tx.length > 0 && this.#fd >= 0) this.#updatePoll();
      else this.#release();
    }
    if (wasOpen) this.schedule("disconnect");
  }

  #checkConnected(): void {
    if (this.#state !== VCHAN_CONNECTED || this.#closed) {
      throw new VchanError(
        "VCHAN_DISCONNECTED",
        `vchan ${this.role} for domain ${this.domain} port ${this.port} is not connected`,
      );
    }
  }

  #onListen(): void {
    if (this.#listener === null) return;
    // A connection from a user not allowed is hung up on, and the server keeps waiting for its client.
    const fd = acceptAllowedPeer(this.#listener.fd, this.#allowedPeers, this.#poll ?? undefined);
    if (fd === null) return;
    // One connection only: stop listening and take the name away.
    this.#poll?.close();
    this.#stopListening(this.#listener);
    this.#fd = fd;
    this.#state = VCHAN_CONNECTED;
    this.#poll = new native.Poll(fd, (error, events) => this.#onSocket(error, events));
    this.#pollEvents = 0;
    this.#updatePoll();
    this.schedule("connect");
  }

  #stopListening(listener: BoundListener): void {
    native.close(listener.fd);
    unlinkIfOwn(listener);
    this.#listener = null;
  }

  #onSocket(error: native.SyscallError | null, events: number): void {
    if (error !== null) {
      this.#peerGone();
      return;
    }
    let arrived = false;
    if ((events & native.POLL_READABLE) !== 0) {
      this.#drained = false;
      arrived = this.#fill();
    }
    if ((events & native.POLL_WRITABLE) !== 0) {
      this.#flush();
      if (this.#closed && this.#tx.length === 0) {
        this.#release();
        return;
      }
      this.#drainIfRoom();
    }
    this.#updatePoll();
    if (arrived) this.emitNow("data");
  }

  /** After a short write or failed send: emits `drain` once the ring has the room asked for (the socket may already have taken it all). */
  #drainIfRoom(): void {
    if (this.#wantDrain && this.#tx.free >= this.#drainNeed && this.#state === VCHAN_CONNECTED) {
      this.#wantDrain = false;
      this.schedule("drain");
    }
  }

  /** Receives from the socket into the read ring while it has room; true when bytes arrived. */
  #fill(): boolean {
    let got = false;
    while (this.#fd >= 0 && this.#rx.free > 0) {
      const space = this.#rx.writable();
      const n = this.#receive(space);
      if (n <= 0) break;
      this.#rx.produce(n);
      got = true;
      if (n < space.length) break;
    }
    return got;
  }

  /** One non-blocking receive: bytes, 0 when nothing is there, -1 at end of stream. */
  #receive(into: Uint8Array): number {
    if (this.#drained) return 0;
    let received: native.Received | null;
    try {
      received = native.recvmsg(this.#fd, into, 0);
    } catch {
      this.#peerGone();
      return -1;
    }
    if (received === null) {
      this.#drained = true;
      return 0;
    }
    if (received.bytes === 0) {
      this.#peerGone();
      return -1;
    }
    // A short receive emptied the socket (a stream returns all it has, up to the buffer).
    if (received.bytes < into.length) this.#drained = true;
    return received.bytes;
  }

  /** One non-blocking send of `data`: the bytes the socket took. */
  #send(data: Uint8Array): number {
    if (data.length === 0) return 0;
    try {
      return native.sendmsg(this.#fd, data) ?? 0;
    } catch {
      this.#peerGone();
      return 0;
    }
  }

  /** Sends from the write ring while the socket takes bytes. */
  #flush(): void {
    while (this.#fd >= 0 && this.#tx.length > 0) {
      const chunk = this.#tx.readable();
      const n = this.#send(chunk);
      if (n === 0) break;
      this.#tx.consume(n);
    }
  }

  /** Watches the socket for what is wanted now: room to read into, bytes to send. */
  #updatePoll(): void {
    if (this.#fd < 0 || this.#poll === null) return;
    let events = 0;
    if (!this.#closed && this.#rx.free > 0) events |= native.POLL_READABLE;
    if (this.#tx.length > 0) events |= native.POLL_WRITABLE;
    if (events === this.#pollEvents) return;
    this.#pollEvents = events;
    if (events === 0) this.#poll.stop();
    else this.#poll.start(events);
  }

  /** The peer closed or died: bytes already received stay readable. */
  #peerGone(): void {
    const wasConnected = this.#state === VCHAN_CONNECTED;
    this.#state = VCHAN_DISCONNECTED;
    this.#release();
    if (wasConnected && !this.#closed) this.schedule("disconnect");
  }

  #release(): void {
    this.#poll?.close();
    this.#poll = null;
    this.#pollEvents = 0;
    if (this.#fd >= 0) {
      native.close(this.#fd);
      this.#fd = -1;
    }
  }
}

/**
 * libvchan_server_init on the socket backend: listens on
 * `vchan.<own>.<domain>.<port>.sock` (a stale socket is replaced; throws
 * EADDRINUSE naming the path when another live process serves it or it is
 * not a socket) and returns at once in state VCHAN_WAITING; `connect` fires
 * when the client arrives.
 */
export function createSocketServer(options: VchanServerOptions): SocketVchan {
  const domain = checkDomainId(options.domain);
  const port = checkPort(options.port);
  const own = checkDomainId(options.ownDomain ?? ownDomainFromEnvironment(), "ownDomain");
  const readSize = powerOfTwoAtLeast(checkMin(options.readMin, "readMin"), 4096);
  const writeSize = powerOfTwoAtLeast(checkMin(options.writeMin, "writeMin"), 4096);
  const socketPath = vchanSocketPath(options.socketDir ?? socketDirectoryFromEnvironment(), own, domain, port);
  allowedPeerUids(); // A malformed QUBES_PEER_UIDS is an error here, before anything is made.
  const listener = listenReplacing(socketPath, 1);
  return new SocketVchan("server", domain, port, socketPath, readSize, writeSize, -1, listener);
}

/**
 * libvchan_client_init on the socket backend: connects to
 * `vchan.<domain>.<own>.<port>.sock`, retrying until the server listens;
 * resolves connected.
 */
export async function connectSocketClient(options: VchanClientOptions): Promise<SocketVchan> {
  const domain = checkDomainId(options.domain);
  const port = checkPort(options.port);
  const own = checkDomainId(options.ownDomain ?? ownDomainFromEnvironment(), "ownDomain");
  const socketPath = vchanSocketPath(options.socketDir ?? socketDirectoryFromEnvironment(), domain, own, port);
  const fd = await connectWhenListening(socketPath, { signal: options.signal });
  return new SocketVchan(
    "client",
    domain,
    port,
    socketPath,
    SOCKET_CLIENT_RING_SIZE,
    SOCKET_CLIENT_RING_SIZE,
    fd,
    null,
  );
}
