/**
 * The `shm` vchan backend: libxenvchan's control page and rings (see
 * layout.ts) on pages granted through shm/, with a pair of eventfds standing
 * in for the event channel (one per direction: an eventfd is one counter).
 *
 * Rendezvous (Xen uses xenstore): the server listens on
 * `vchan-shm.<server>.<client>.<port>.sock` in the socket directory and sends
 * its one client the control page's grant ref and the two eventfds
 * (SCM_RIGHTS). That connection then stays open as the death watch: when
 * either process dies the other sees the hang-up, as Xen's unmap notify
 * clears the live byte.
 *
 * Trust: everything in the control page that the peer writes (its index, its
 * live byte, the notify bits; for a client also the orders and grant refs) is
 * read as hostile. Each side keeps its own index privately and only
 * publishes it. Readable = prod − cons (mod 2³²), and anything above the ring
 * size counts as nothing readable (or no space), so a lying peer can stall the
 * channel but never make us read or write outside the ring, spin, or block.
 * The two fds a client receives are checked to be eventfds, not in semaphore
 * mode, and made non-blocking before first use; an eventfd error, or a run of
 * wake-ups that change nothing, ends the channel as if the peer had left.
 */
import { readFileSync, readlinkSync } from "node:fs";
import path from "node:path";

import * as native from "../native/index.ts";
import {
  MemfdGrantTable,
  checkDomainId,
  connectWhenListening,
  ownDomainFromEnvironment,
  socketDirectoryFromEnvironment,
  acceptAllowedPeer,
  allowedPeerUids,
  listenReplacing,
  unlinkIfOwn,
  whenReadable,
  type BoundListener,
  type DomainId,
  type GrantMapping,
  type GrantTable,
  type SharedPages,
} from "../shm/index.ts";
import { VchanBase, checkPort } from "./base.ts";
import { VchanError } from "./errors.ts";
import {
  CLI_LIVE,
  CLI_NOTIFY,
  CONTROL_PAGE_SIZE,
  GRANTS,
  LEFT_CONS,
  LEFT_ORDER,
  LEFT_PROD,
  LIVE_CONNECTED,
  LIVE_GONE,
  LIVE_WAITING,
  RIGHT_CONS,
  RIGHT_ORDER,
  RIGHT_PROD,
  SRV_LIVE,
  SRV_NOTIFY,
  VCHAN_NOTIFY_READ,
  VCHAN_NOTIFY_WRITE,
  checkOrders,
  chooseOrders,
  ringPlace,
} from "./layout.ts";
import { MAX_RING_SIZE } from "./socket.ts";
import {
  VCHAN_CONNECTED,
  VCHAN_DISCONNECTED,
  VCHAN_WAITING,
  type VchanClientOptions,
  type VchanServerOptions,
  type VchanState,
} from "./types.ts";

/** Magic of the rendezvous message ("QVSH") and its version. */
const HELLO_MAGIC = 0x51565348;
const HELLO_VERSION = 1;
const HELLO_BYTES = 16;

/**
 * Wake-ups in a row that find nothing of the peer's changed (its index in
 * either ring, its live byte) before the channel counts the peer as hostile
 * and ends. An honest peer kicks only after changing one of them, so it
 * leaves at most one or two such wakes in a row (a kick that lands after we
 * already saw its change); a peer that kicks in a loop, or a semaphore-mode
 * eventfd on a kernel that hides the mode, leaves an endless run.
 */
const MAX_IDLE_WAKES = 64;

/** What `/proc/self/fd/N` links to for an eventfd. */
const EVENTFD_LINK = "anon_inode:[eventfd]";

/** An eventfd from the peer that passed {@link checkPeerEventfd}: its kernel id when fdinfo shows one. */
interface CheckedEventfd {
  readonly fd: number;
  readonly id: string | null;
}

/**
 * Validates an fd the peer sent as an eventfd: it must be one (not a socket,
 * pipe or file, whose reads and writes fail or block), not in semaphore mode
 * (one signal of 2^50 would wake us 2^50 times), and it is made non-blocking
 * (a peer could hand over a blocking one with a full counter, and our kick
 * would block the event loop). Returns the problem, or the checked fd.
 */
function checkPeerEventfd(fd: number): CheckedEventfd | string {
  let link: string;
  try {
    link = readlinkSync(`/proc/self/fd/${fd}`);
  } catch {
    return `fd ${fd} cannot be inspected`;
  }
  if (link !== EVENTFD_LINK) {
    // The link names whatever the peer sent (a path, socket:[n]): quoted and cut short.
    return `fd ${fd} is not an eventfd but ${JSON.stringify(link.slice(0, 64))}`;
  }
  let id: string | null = null;
  try {
    const untrustedInfo = readFileSync(`/proc/self/fdinfo/${fd}`, "latin1");
    const semaphore = /^eventfd-semaphore:\s*(\d+)/m.exec(untrustedInfo);
    if (semaphore !== null && semaphore[1] !== "0") return `fd ${fd} is an eventfd in semaphore mode`;
    // Kernels before 5.2 print no semaphore line: the idle-wake limit (MAX_IDLE_WAKES) covers them.
    id = /^eventfd-id:\s*(\d+)/m.exec(untrustedInfo)?.[1] ?? null;
  } catch {
    // No fdinfo to read: the idle-wake limit still bounds a semaphore eventfd.
  }
  try {
    native.setNonBlocking(fd);
  } catch {
    return `fd ${fd} cannot be made non-blocking`;
  }
  return { fd, id };
}

/** The rendezvous socket of an shm vchan: `<dir>/vchan-shm.<server>.<client>.<port>.sock`. */
export function shmVchanSocketPath(socketDir: string, server: DomainId, client: DomainId, port: number): string {
  return path.join(socketDir, `vchan-shm.${server}.${client}.${port}.sock`);
}

/**
 * Options of the shm backend: the grant table to use. Default: a memfd table
 * of the vchan's own, with pool name `vchan-<port>` on both sides (so it never
 * collides with the domain's main table), destroyed on close. Pass `grants`
 * on both sides or on neither: a server's pages are offered under its table's
 * pool name, and the client attaches under its own table's name.
 */
export interface ShmVchanExtra {
  /** This domain's grant table; the vchan shares (server) or maps (client) its pages there. */
  grants?: GrantTable;
}

/** The pool name of a vchan's own grant table. */
function vchanPoolName(port: number): string {
  return `vchan-${port}`;
}

/** Byte offsets of one side's fields in the control page. */
interface Side {
  readCons: number;
  readProd: number;
  writeCons: number;
  writeProd: number;
  ownLive: number;
  peerLive: number;
  ownNotify: number;
  peerNotify: number;
}

const SERVER_SIDE: Side = {
  readCons: LEFT_CONS,
  readProd: LEFT_PROD,
  writeCons: RIGHT_CONS,
  writeProd: RIGHT_PROD,
  ownLive: SRV_LIVE,
  peerLive: CLI_LIVE,
  ownNotify: SRV_NOTIFY,
  peerNotify: CLI_NOTIFY,
};

const CLIENT_SIDE: Side = {
  readCons: RIGHT_CONS,
  readProd: RIGHT_PROD,
  writeCons: LEFT_CONS,
  writeProd: LEFT_PROD,
  ownLive: CLI_LIVE,
  peerLive: SRV_LIVE,
  ownNotify: CLI_NOTIFY,
  peerNotify: SRV_NOTIFY,
};

/** What the vchan owns and releases on close. */
interface Resources {
  table: GrantTable;
  ownsTable: boolean;
  shared: SharedPages | null;
  mappings: GrantMapping[];
}

/** A vchan end on the shm backend. Create it with {@link createShmServer} or {@link connectShmClient}. */
export class ShmVchan extends VchanBase {
  readonly backend = "shm" as const;
  readonly readRingSize: number;
  readonly writeRingSize: number;
  readonly #side: Side;
  /** The control page as bytes and as u32 words (shared, partly hostile). */
  readonly #ctrl8: Uint8Array;
  readonly #ctrl32: Uint32Array;
  /** The ring this side reads (written by the peer) and the one it writes. */
  readonly #readRing: Uint8Array;
  readonly #writeRing: Uint8Array;
  /** Private copies of the two indices this side owns. */
  #readCons: number;
  #writeProd: number;
  /** eventfd this side signals to wake the peer; eventfd it waits on. Owned. */
  readonly #kickFd: number;
  readonly #waitFd: number;
  readonly #waitPoll: native.Poll;
  /** Listening socket while a server waits (null otherwise), and its poll. */
  #listener: BoundListener | null;
  /** The users whose connection a server answers (see shm/'s acceptAllowedPeer). */
  readonly #allowedPeers = allowedPeerUids();
  #listenPoll: native.Poll | null = null;
  /** The rendezvous connection, kept as the death watch (-1 before/after). */
  #watchFd = -1;
  #watchPoll: native.Poll | null = null;
  #state: VchanState;
  #closed = false;
  #wantDrain = false;
  /** Bytes of space the short write (1) or failed send (its length) waits for before `drain`. */
  #drainNeed = 1;
  /** The peer's fields as the last wake-up saw them, and wake-ups in a row since that found them unchanged. */
  #lastWake = { live: -1, prod: -1, cons: -1 };
  #idleWakes = 0;
  readonly #resources: Resources;
  readonly #hello: Uint8Array;
  readonly #sendFds: number[];

  /** @internal Use createShmServer / connectShmClient. */
  constructor(init: {
    role: "server" | "client";
    domain: DomainId;
    port: number;
    ctrl: Uint8Array;
    readRing: Uint8Array;
    writeRing: Uint8Array;
    kickFd: number;
    waitFd: number;
    listener: BoundListener | null;
    watchFd: number;
    resources: Resources;
    hello: Uint8Array;
    sendFds: number[];
  }) {
    super(init.role, init.domain, init.port);
    this.#side = init.role === "server" ? SERVER_SIDE : CLIENT_SIDE;
    this.#ctrl8 = init.ctrl;
    this.#ctrl32 = new Uint32Array(init.ctrl.buffer, init.ctrl.byteOffset, CONTROL_PAGE_SIZE / 4);
    this.#readRing = init.readRing;
    this.#writeRing = init.writeRing;
    this.readRingSize = init.readRing.length;
    this.writeRingSize = init.writeRing.length;
    this.#readCons = Atomics.load(this.#ctrl32, this.#side.readCons / 4);
    this.#writeProd = Atomics.load(this.#ctrl32, this.#side.writeProd / 4);
    this.#kickFd = init.kickFd;
    this.#waitFd = init.waitFd;
    this.#listener = init.listener;
    this.#resources = init.resources;
    this.#hello = init.hello;
    this.#sendFds = init.sendFds;
    this.#state = VCHAN_DISCONNECTED;
    this.#waitPoll = new native.Poll(this.#waitFd, () => this.#onEvent());
    try {
      this.#waitPoll.start(native.POLL_READABLE);
      if (this.#listener !== null) {
        this.#state = VCHAN_WAITING;
        this.#listenPoll = new native.Poll(this.#listener.fd, () => this.#onListen());
        this.#listenPoll.start(native.POLL_READABLE);
      } else {
        this.#state = Atomics.load(this.#ctrl8, SRV_LIVE) === LIVE_CONNECTED ? VCHAN_CONNECTED : VCHAN_DISCONNECTED;
        this.#watch(init.watchFd);
      }
    } catch (error) {
      // The caller still owns every fd and page: only the polls made here are ours to undo.
      this.#closePolls();
      throw error;
    }
    if (init.role === "client") {
      // Mark ourselves live and wake the server once (it then sees CONNECTED).
      Atomics.store(this.#ctrl8, CLI_LIVE, LIVE_CONNECTED);
      this.#kick();
    }
  }

  isOpen(): VchanState {
    return this.#state;
  }

  dataReady(): number {
    // As libxenvchan: asking is a request to hear of the next write (a caller
    // waiting for a whole message checks this, then waits for `data`).
    if (!this.#closed) this.#request(VCHAN_NOTIFY_WRITE);
    return this.#ready();
  }

  bufferSpace(): number {
    if (this.#state !== VCHAN_CONNECTED) return 0;
    const space = this.#space();
    if (space < this.writeRingSize) this.#request(VCHAN_NOTIFY_READ);
    return space;
  }

  read(into: Uint8Array): number {
    const n = Math.min(into.length, this.#ready());
    if (n > 0) {
      // Now 0 < n ≤ ready ≤ ring size: the copy stays inside the ring.
      const size = this.readRingSize;
      const at = this.#readCons & (size - 1);
      const first = Math.min(n, size - at);
      into.set(this.#readRing.subarray(at, at + first), 0);
      if (n > first) into.set(this.#readRing.subarray(0, n - first), first);
      this.#readCons = (this.#readCons + n) >>> 0;
      Atomics.store(this.#ctrl32, this.#side.readCons / 4, this.#readCons);
      this.#notify(VCHAN_NOTIFY_READ);
    }
    if (n > 0) this.#afterRead();
    else if (!this.#closed) this.#request(VCHAN_NOTIFY_WRITE);
    return n;
  }

  recv(into: Uint8Array): boolean {
    this.checkFits(into.length, this.readRingSize, "recv");
    if (this.#closed) return false;
    // Hear of the next write before checking, so a short ring is never missed.
    this.#request(VCHAN_NOTIFY_WRITE);
    if (this.#ready() < into.length) return false;
    this.read(into);
    return true;
  }

  write(data: Uint8Array): number {
    this.#checkConnected();
    const n = Math.min(data.length, this.#space());
    if (n > 0) {
      // Now 0 < n ≤ free space ≤ ring size.
      const size = this.writeRingSize;
      const at = this.#writeProd & (size - 1);
      const first = Math.min(n, size - at);
      this.#writeRing.set(first === data.length ? data : data.subarray(0, first), at);
      if (n > first) this.#writeRing.set(data.subarray(first, n), 0);
      this.#writeProd = (this.#writeProd + n) >>> 0;
      Atomics.store(this.#ctrl32, this.#side.writeProd / 4, this.#writeProd);
      this.#notify(VCHAN_NOTIFY_WRITE);
    }
    if (n < data.length) this.#waitForSpace(1);
    return n;
  }

  send(data: Uint8Array): boolean {
    this.checkFits(data.length, this.writeRingSize, "send");
    this.#checkConnected();
    if (this.#space() < data.length) {
      this.#waitForSpace(data.length);
      if (this.#space() < data.length) return false;
    }
    // Now all of data fits: write() takes it whole.
    this.write(data);
    return true;
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    const wasOpen = this.#state !== VCHAN_DISCONNECTED;
    this.#state = VCHAN_DISCONNECTED;
    // Polls first: no callback may run over fds or pages released below.
    this.#closePolls();
    // Tell the peer: zero our live byte, then kick (what Xen's close does).
    Atomics.store(this.#ctrl8, this.#side.ownLive, LIVE_GONE);
    this.#kick();
    // Every release runs even if one throws; the first error is rethrown at the end.
    const errors: unknown[] = [];
    const attempt = (release: () => void): void => {
      try {
        release();
      } catch (error) {
        errors.push(error);
      }
    };
    const listener = this.#listener;
    this.#listener = null;
    if (listener !== null) {
      attempt(() => native.close(listener.fd));
      attempt(() => unlinkIfOwn(listener));
    }
    const watchFd = this.#watchFd;
    this.#watchFd = -1;
    if (watchFd >= 0) attempt(() => native.close(watchFd));
    attempt(() => native.close(this.#kickFd));
    attempt(() => native.close(this.#waitFd));
    const { table, ownsTable, shared, mappings } = this.#resources;
    for (const mapping of mappings) attempt(() => table.unmap(mapping));
    if (shared !== null) attempt(() => table.revoke(shared));
    if (ownsTable) attempt(() => table.destroy());
    if (wasOpen) this.schedule("disconnect");
    if (errors.length > 0) throw errors[0];
  }

  /** Closes every poll handle (idempotent; Poll.close never throws). */
  #closePolls(): void {
    this.#waitPoll.close();
    this.#listenPoll?.close();
    this.#listenPoll = null;
    this.#watchPoll?.close();
    this.#watchPoll = null;
  }

  /**
   * Wakes the peer. A full counter means it is woken already; any error means
   * the eventfd is unusable, which can only be the peer's doing: it is gone.
   * Never throws (it runs inside read/write and in Poll callbacks).
   */
  #kick(): void {
    try {
      native.eventfdSignal(this.#kickFd);
    } catch {
      this.#peerGone();
    }
  }

  /** Bytes readable: prod − cons, or 0 if the peer's index is impossible. */
  #ready(): number {
    if (this.#closed) return 0;
    const untrustedProd = Atomics.load(this.#ctrl32, this.#side.readProd / 4);
    const ready = (untrustedProd - this.#readCons) >>> 0;
    return ready > this.readRingSize ? 0 : ready;
  }

  /** Bytes writable: size − (prod − cons), or 0 if the peer's index is impossible. */
  #space(): number {
    const untrustedCons = Atomics.load(this.#ctrl32, this.#side.writeCons / 4);
    const used = (this.#writeProd - untrustedCons) >>> 0;
    return used > this.writeRingSize ? 0 : this.writeRingSize - used;
  }

  /**
   * Asks the peer to signal us on its next write (WRITE) or consume (READ).
   * The caller re-checks the indices afterwards (no lost wake-up: both sides
   * use sequentially consistent atomics).
   */
  #request(bit: number): void {
    // A plain load first: the locked RMW only when the bit is not set yet (the line is shared with the peer).
    if ((Atomics.load(this.#ctrl8, this.#side.peerNotify) & bit) === 0)
      Atomics.or(this.#ctrl8, this.#side.peerNotify, bit);
  }

  /**
   * After our write (WRITE) or consume (READ), published with a seq-cst
   * store: kicks the peer if it asked. A peer that sets the bit after our
   * load re-checks the index we already published, so testing with a load
   * before the atomic clear loses no wake-up.
   */
  #notify(bit: number): void {
    if ((Atomics.load(this.#ctrl8, this.#side.ownNotify) & bit) === 0) return;
    const before = Atomics.and(this.#ctrl8, this.#side.ownNotify, ~bit & 0xff);
    if ((before & bit) !== 0) this.#kick();
  }

  /** After a read: re-arm the WRITE request when empty, and keep `data` coming while bytes remain. */
  #afterRead(): void {
    if (this.#closed) return;
    if (this.#ready() === 0) {
      this.#request(VCHAN_NOTIFY_WRITE);
      // The peer may have written between the check and the request.
      if (this.#ready() === 0) return;
    }
    this.schedule("data");
  }

  #waitForSpace(need: number): void {
    this.#wantDrain = true;
    this.#drainNeed = need;
    this.#request(VCHAN_NOTIFY_READ);
    // The peer may have consumed between our check and the request.
    if (this.#space() >= need) {
      this.#wantDrain = false;
      this.schedule("drain");
    }
  }

  #checkConnected(): void {
    if (this.#state !== VCHAN_CONNECTED || this.#closed) {
      throw new VchanError(
        "VCHAN_DISCONNECTED",
        `vchan ${this.role} for domain ${this.domain} port ${this.port} is not connected`,
      );
    }
  }

  /** The event channel fired: liveness, then data and space. Runs in a Poll callback: never throws. */
  #onEvent(): void {
    if (this.#closed) return;
    try {
      native.eventfdConsume(this.#waitFd);
    } catch {
      // An eventfd that fails to read can only be the peer's doing.
      this.#peerGone();
      return;
    }
    const untrustedPeerLive = Atomics.load(this.#ctrl8, this.#side.peerLive);
    const untrustedProd = Atomics.load(this.#ctrl32, this.#side.readProd / 4);
    const untrustedCons = Atomics.load(this.#ctrl32, this.#side.writeCons / 4);
    if (
      untrustedPeerLive === this.#lastWake.live &&
      untrustedProd === this.#lastWake.prod &&
      untrustedCons === this.#lastWake.cons
    ) {
      this.#idleWakes += 1;
      if (this.#idleWakes >= MAX_IDLE_WAKES) {
        // Woken again and again for nothing: a peer looping on kicks, or a semaphore eventfd.
        this.#peerGone();
        return;
      }
    } else {
      this.#idleWakes = 0;
      this.#lastWake = { live: untrustedPeerLive, prod: untrustedProd, cons: untrustedCons };
    }
    if (this.#state === VCHAN_WAITING) {
      if (untrustedPeerLive === LIVE_CONNECTED && this.#watchFd >= 0) {
        this.#state = VCHAN_CONNECTED;
        this.schedule("connect");
      } else if (untrustedPeerLive !== LIVE_WAITING) {
        this.#peerGone();
      }
    } else if (this.#state === VCHAN_CONNECTED && untrustedPeerLive !== LIVE_CONNECTED) {
      this.#peerGone();
    }
    // Ask for the next write only once the ring is empty: while bytes wait, the
    // reader's own read() re-arms the request when it drains them.
    if (this.#ready() === 0) this.#request(VCHAN_NOTIFY_WRITE);
    let drain = false;
    if (this.#wantDrain && this.#state === VCHAN_CONNECTED) {
      if (this.#space() >= this.#drainNeed) {
        this.#wantDrain = false;
        drain = true;
      } else {
        this.#request(VCHAN_NOTIFY_READ);
      }
    }
    if (this.#ready() > 0) this.emitNow("data");
    if (drain && !this.#closed) this.emitNow("drain");
  }

  /** Server: the one client arrived; hand it the control page ref and the eventfds. */
  #onListen(): void {
    if (this.#listener === null) return;
    // A connection from a user not allowed is hung up on, and the server keeps waiting for its client.
    const fd = acceptAllowedPeer(this.#listener.fd, this.#allowedPeers, this.#listenPoll ?? undefined);
    if (fd === null) return;
    this.#listenPoll?.close();
    this.#listenPoll = null;
    native.close(this.#listener.fd);
    unlinkIfOwn(this.#listener);
    this.#listener = null;
    try {
      native.sendmsg(fd, this.#hello, this.#sendFds);
    } catch {
      native.close(fd);
      this.#peerGone();
      return;
    }
    this.#watch(fd);
  }

  /** Keeps the rendezvous connection as the death watch. */
  #watch(fd: number): void {
    this.#watchFd = fd;
    const scratch = new Uint8Array(64);
    this.#watchPoll = new native.Poll(fd, (error, events) => {
      if (error === null && (events & native.POLL_DISCONNECT) === 0) {
        // Bytes from the peer mean nothing here: drain them; end of stream means it is gone.
        try {
          const received = native.recvmsg(fd, scratch, 0);
          if (received === null || received.bytes > 0) return;
        } catch {
          // A reset connection: the peer is gone.
        }
      }
      this.#peerGone();
    });
    this.#watchPoll.start(native.POLL_READABLE | native.POLL_DISCONNECT);
  }

  #peerGone(): void {
    if (this.#watchPoll !== null) {
      this.#watchPoll.close();
      this.#watchPoll = null;
    }
    // Nothing the peer signals matters any more; bytes already in the ring are read without wake-ups.
    this.#waitPoll.close();
    const was = this.#state;
    this.#state = VCHAN_DISCONNECTED;
    if (was !== VCHAN_DISCONNECTED && !this.#closed) this.schedule("disconnect");
    // Bytes already in our read ring stay readable.
    if (this.#ready() > 0) this.schedule("data");
  }
}

function checkMin(value: number | undefined, name: string): number {
  const n = value ?? 4096;
  if (!Number.isInteger(n) || n < 0 || n > MAX_RING_SIZE) {
    throw new RangeError(`${name} must be 0..${MAX_RING_SIZE}, got ${String(n)}`);
  }
  return n;
}

/**
 * libvchan_server_init on the shm backend: grants the control page and ring
 * pages to `domain`, listens for its client, returns at once in state
 * VCHAN_WAITING; `connect` fires when the client has mapped the rings.
 */
export function createShmServer(options: VchanServerOptions & ShmVchanExtra): ShmVchan {
  const domain = checkDomainId(options.domain);
  const port = checkPort(options.port);
  const own = checkDomainId(options.ownDomain ?? ownDomainFromEnvironment(), "ownDomain");
  const socketDir = options.socketDir ?? socketDirectoryFromEnvironment();
  const [leftOrder, rightOrder] = chooseOrders(
    checkMin(options.readMin, "readMin"),
    checkMin(options.writeMin, "writeMin"),
  );
  const left = ringPlace(leftOrder);
  const right = ringPlace(rightOrder);
  const leftPages = left.inPage ? 0 : left.pages;
  const rightPages = right.inPage ? 0 : right.pages;
  const table = options.grants ?? new MemfdGrantTable({ domain: own, socketDir, poolName: vchanPoolName(port) });
  const ownsTable = options.grants === undefined;
  const opened: number[] = [];
  let shared: SharedPages | null = null;
  try {
    shared = table.share(domain, 1 + leftPages + rightPages, { writable: true, populate: true });
    const memory = new Uint8Array(shared.buffer);
    const ctrl = memory.subarray(0, CONTROL_PAGE_SIZE);
    const view = new DataView(shared.buffer, 0, CONTROL_PAGE_SIZE);
    view.setUint16(LEFT_ORDER, leftOrder, true);
    view.setUint16(RIGHT_ORDER, rightOrder, true);
    ctrl[CLI_LIVE] = LIVE_WAITING;
    ctrl[SRV_LIVE] = LIVE_CONNECTED;
    ctrl[CLI_NOTIFY] = VCHAN_NOTIFY_WRITE;
    ctrl[SRV_NOTIFY] = 0;
    for (let i = 0; i < leftPages + rightPages; i++) {
      view.setUint32(GRANTS + 4 * i, shared.refs[1 + i] as number, true);
    }
    const leftRing = left.inPage
      ? ctrl.subarray(left.offset, left.offset + 2 ** leftOrder)
      : memory.subarray(CONTROL_PAGE_SIZE, CONTROL_PAGE_SIZE + 2 ** leftOrder);
    const rightStart = CONTROL_PAGE_SIZE * (1 + leftPages);
    const rightRing = right.inPage
      ? ctrl.subarray(right.offset, right.offset + 2 ** rightOrder)
      : memory.subarray(rightStart, rightStart + 2 ** rightOrder);
    const serverToClient = native.eventfdCreate();
    opened.push(serverToClient);
    const clientToServer = native.eventfdCreate();
    opened.push(clientToServer);
    allowedPeerUids(); // A malformed QUBES_PEER_UIDS is an error here, before the socket is made.
    const listener = listenReplacing(shmVchanSocketPath(socketDir, own, domain, port), 1);
    const hello = new Uint8Array(new Uint32Array([HELLO_MAGIC, HELLO_VERSION, shared.refs[0] as number, 0]).buffer);
    return new ShmVchan({
      role: "server",
      domain,
      port,
      ctrl,
      readRing: leftRing,
      writeRing: rightRing,
      kickFd: serverToClient,
      waitFd: clientToServer,
      listener,
      watchFd: -1,
      resources: { table, ownsTable, shared, mappings: [] },
      hello,
      sendFds: [serverToClient, clientToServer],
    });
  } catch (error) {
    for (const fd of opened) native.close(fd);
    if (shared !== null) table.revoke(shared);
    if (ownsTable) table.destroy();
    throw error;
  }
}

/**
 * libvchan_client_init on the shm backend: waits for the server's rendezvous
 * socket, maps its control page and rings (checking every value it read
 * there), marks itself live and kicks the server once. Resolves connected.
 * Throws VCHAN_BAD_PEER for a malformed control page.
 */
export async function connectShmClient(options: VchanClientOptions & ShmVchanExtra): Promise<ShmVchan> {
  const domain = checkDomainId(options.domain);
  const port = checkPort(options.port);
  const own = checkDomainId(options.ownDomain ?? ownDomainFromEnvironment(), "ownDomain");
  const socketDir = options.socketDir ?? socketDirectoryFromEnvironment();
  const table = options.grants ?? new MemfdGrantTable({ domain: own, socketDir, poolName: vchanPoolName(port) });
  const ownsTable = options.grants === undefined;
  const mappings: GrantMapping[] = [];
  let fds: number[] = [];
  let fd = -1;
  try {
    fd = await connectWhenListening(shmVchanSocketPath(socketDir, domain, own, port), { signal: options.signal });
    await table.attach(domain, options.signal === undefined ? {} : { signal: options.signal });
    const hello = new Uint8Array(HELLO_BYTES);
    const malformed = (what: string, cause?: unknown): VchanError =>
      new VchanError("VCHAN_BAD_PEER", `domain ${domain} sent a malformed vchan rendezvous message: ${what}`, {
        cause,
      });
    let bytes: number;
    for (;;) {
      await whenReadable(fd, options.signal);
      let received: native.Received | null;
      try {
        received = native.recvmsg(fd, hello, 2);
      } catch (error) {
        // More than two fds (the kernel dropped the rest; native closed those that came).
        if (native.isSyscallError(error, "EMSGSIZE")) throw malformed("more than 2 fds", error);
        throw error;
      }
      if (received === null) continue;
      fds = received.fds;
      bytes = received.bytes;
      break;
    }
    const words = new Uint32Array(hello.buffer);
    if (bytes !== HELLO_BYTES) throw malformed(`${bytes} bytes, not ${HELLO_BYTES}`);
    if (fds.length !== 2) throw malformed(`${fds.length} fds, not 2`);
    if (words[0] !== HELLO_MAGIC || words[1] !== HELLO_VERSION) throw malformed("bad magic or version");
    const [untrustedServerToClient, untrustedClientToServer] = fds as [number, number];
    const badEvent = (problem: string): VchanError =>
      new VchanError("VCHAN_BAD_PEER", `domain ${domain}'s vchan event channel: ${problem}`);
    const waitEvent = checkPeerEventfd(untrustedServerToClient);
    if (typeof waitEvent === "string") throw badEvent(waitEvent);
    const kickEvent = checkPeerEventfd(untrustedClientToServer);
    if (typeof kickEvent === "string") throw badEvent(kickEvent);
    if (waitEvent.id !== null && waitEvent.id === kickEvent.id) throw badEvent("one eventfd sent for both directions");
    // Now both fds are distinct non-blocking, non-semaphore eventfds.
    const untrustedCtrlRef = words[2] as number;
    const ctrlMapping = table.map(domain, [untrustedCtrlRef], { writable: true });
    mappings.push(ctrlMapping);
    const ctrl = new Uint8Array(ctrlMapping.buffer, 0, CONTROL_PAGE_SIZE);
    const view = new DataView(ctrlMapping.buffer, 0, CONTROL_PAGE_SIZE);
    const untrustedLeftOrder = view.getUint16(LEFT_ORDER, true);
    const untrustedRightOrder = view.getUint16(RIGHT_ORDER, true);
    const problem = checkOrders(untrustedLeftOrder, untrustedRightOrder);
    if (problem !== null) throw new VchanError("VCHAN_BAD_PEER", `domain ${domain}'s vchan control page: ${problem}`);
    // Now both orders are 10..20, distinct when below 12, and their refs fit the page.
    const left = ringPlace(untrustedLeftOrder);
    const right = ringPlace(untrustedRightOrder);
    const leftPages = left.inPage ? 0 : left.pages;
    const refsAt = (first: number, count: number): number[] =>
      Array.from({ length: count }, (_, i) => view.getUint32(GRANTS + 4 * (first + i), true));
    let leftRing: Uint8Array;
    if (left.inPage) leftRing = ctrl.subarray(left.offset, left.offset + 2 ** untrustedLeftOrder);
    else {
      const mapping = table.map(domain, refsAt(0, left.pages), { writable: true });
      mappings.push(mapping);
      leftRing = new Uint8Array(mapping.buffer, 0, 2 ** untrustedLeftOrder);
    }
    let rightRing: Uint8Array;
    if (right.inPage) rightRing = ctrl.subarray(right.offset, right.offset + 2 ** untrustedRightOrder);
    else {
      const mapping = table.map(domain, refsAt(leftPages, right.pages));
      mappings.push(mapping);
      rightRing = new Uint8Array(mapping.buffer, 0, 2 ** untrustedRightOrder);
    }
    Atomics.store(ctrl, SRV_NOTIFY, VCHAN_NOTIFY_WRITE);
    // The constructor marks us live and kicks the server; from its return the vchan owns every fd and page.
    const vchan = new ShmVchan({
      role: "client",
      domain,
      port,
      ctrl,
      readRing: rightRing,
      writeRing: leftRing,
      kickFd: untrustedClientToServer,
      waitFd: untrustedServerToClient,
      listener: null,
      watchFd: fd,
      resources: { table, ownsTable, shared: null, mappings },
      hello: new Uint8Array(0),
      sendFds: [],
    });
    fds = [];
    fd = -1;
    return vchan;
  } catch (error) {
    for (const extra of fds) native.close(extra);
    if (fd >= 0) native.close(fd);
    for (const mapping of mappings) table.unmap(mapping);
    if (ownsTable) table.destroy();
    throw error;
  }
}
