/**
 * The contract of the qubes_native C++ addon (build/Release/qubes_native.node).
 *
 * Every function re-checks its arguments in C++. A failed system call throws a
 * {@link SyscallError}: `code` is the errno name, `syscall` the call. Calls on
 * non-blocking fds that would block return `null` (or `false`/`0` where noted)
 * instead of throwing. All fds the addon creates are close-on-exec.
 */

/** An Error thrown for a failed system call. */
export interface SyscallError extends Error {
  /** errno name, e.g. `ENOENT`, `EBADF`, `EMSGSIZE`. */
  code: string;
  /** Negative errno, as Node core reports it. */
  errno: number;
  /** The system call that failed, e.g. `mmap`, `recvmsg`. */
  syscall: string;
}

/** Poll event bits, for Poll.start and its callback. */
export type PollEvents = number;

/** A libuv poll handle on an fd: readiness is delivered on the event loop. */
export declare class Poll {
  /** Watches `fd`; `callback` gets an error (or null) and the ready events (1 readable, 2 writable, 4 disconnect). */
  constructor(fd: number, callback: (error: SyscallError | null, events: PollEvents) => void);
  /** Starts (or changes) watching for events (1 readable | 2 writable | 4 disconnect). */
  start(events: PollEvents): void;
  /** Stops watching; start() may be called again. */
  stop(): void;
  /** Makes the handle keep the event loop alive (the default). */
  ref(): this;
  /** Lets the event loop exit while this handle is active. */
  unref(): this;
  /** Closes the handle; later calls throw EBADF. Idempotent. Does not close the fd. */
  close(): void;
  /** True once close() ran. */
  readonly closed: boolean;
}

/** The peer process of a connected AF_UNIX socket. */
export interface PeerCredentials {
  pid: number;
  uid: number;
  gid: number;
}

/** One received message: its byte count (0 = end of stream) and the fds that came with it. */
export interface Received {
  bytes: number;
  fds: number[];
}

/** Xen grant-table devices; only `openDevice` exists when the headers were absent at build time. */
export interface XenBinding {
  /** True when the addon was built with <xen/gntalloc.h> and <xen/gntdev.h>. */
  compiled: boolean;
  /** Opens a device read-write, e.g. `/dev/xen/gntdev`. */
  openDevice(path: string): number;
  /** Shares `count` fresh pages with `domid`: the mmap offset and one grant reference per page. */
  gntallocShare?(fd: number, domid: number, count: number, writable: boolean): { index: number; refs: number[] };
  /** Ends the sharing of a range made by gntallocShare. */
  gntallocRevoke?(fd: number, index: number, count: number): void;
  /** Inserts grant references of `domid` into gntdev; returns the mmap offset of the range. */
  gntdevMap?(fd: number, domid: number, refs: number[]): number;
  /** Removes a range from gntdev after it was munmapped. */
  gntdevUnmap?(fd: number, index: number, count: number): void;
  /** Asks the driver to clear a byte and/or signal an event channel when the page is unmapped. */
  setUnmapNotify?(
    fd: number,
    device: "gntalloc" | "gntdev",
    index: number,
    clearByte: boolean,
    eventChannelPort: number,
  ): void;
}

/** A libxenvchan channel, always non-blocking (see native/src/xenvchan.cc). */
export declare class XenVchan {
  /** libxenvchan_server_init(NULL, domain, xsPath, readMin, writeMin). */
  static serverInit(domain: number, xsPath: string, readMin: number, writeMin: number): XenVchan;
  /** libxenvchan_client_init(NULL, domain, xsPath); fails (ENOENT...) until the server published its keys. */
  static clientInit(domain: number, xsPath: string): XenVchan;
  /** Copies up to data.length bytes out: the count, 0 when nothing is ready. */
  read(data: Uint8Array): number;
  /** Copies what fits in: the count, 0 when the ring is full. */
  write(data: Uint8Array): number;
  /** All of data.length bytes or nothing (0). */
  recv(data: Uint8Array): number;
  /** All of data or nothing (0). */
  send(data: Uint8Array): number;
  /** Bytes readable now. */
  dataReady(): number;
  /** Bytes writable now. */
  bufferSpace(): number;
  /** 0 closed, 1 connected, 2 waiting for the client. */
  isOpen(): number;
  /** The event channel fd, to poll for readability. */
  fdForSelect(): number;
  /** Consumes the pending event once the fd polled readable. */
  wait(): number;
  /** Closes the channel; idempotent. */
  close(): void;
  /** [read ring size, write ring size] in bytes. */
  ringSizes(): [number, number];
}

/** libxenvchan, when its header was present at build time. */
export interface XenVchanBinding {
  /** True when the addon was built with <libxenvchan.h> and linked with -lxenvchan. */
  compiled: boolean;
  /** The channel class; absent when not compiled. */
  XenVchan?: typeof XenVchan;
}

/** What a process holds through the addon's mmap() (for leak checks). */
export interface MemoryStats {
  /** Mappings not yet unmapped (by munmap or the buffer's finalizer). */
  mappings: number;
  mappedBytes: number;
  /** SIGBUS guard table slots taken by guarded mappings. */
  guardSlotsInUse: number;
}

export interface NativeBinding {
  /** Closes an fd. */
  close(fd: number): void;
  /** Duplicates an fd (F_DUPFD_CLOEXEC). */
  dup(fd: number): number;
  /** Sets or clears O_NONBLOCK. */
  setNonBlocking(fd: number, nonBlocking: boolean): void;

  /** memfd_create(name, MFD_CLOEXEC [| MFD_ALLOW_SEALING]). */
  memfdCreate(name: string, allowSealing: boolean): number;
  /** Sets the size of a file. */
  ftruncate(fd: number, size: number): void;
  /** st_size of an fd. */
  fileSize(fd: number): number;
  /** F_ADD_SEALS. */
  addSeals(fd: number, seals: number): void;
  /** F_GET_SEALS. */
  getSeals(fd: number): number;
  /** Maps `length` bytes of `fd` at `offset` (page aligned), MAP_SHARED: a zero-copy ArrayBuffer. */
  mmap(fd: number, offset: number, length: number, writable: boolean, populate: boolean, guard?: boolean): ArrayBuffer;
  /** True once a read of a mapping made with `guard` hit the end of a shrunk file (it now reads zeros). */
  mappingFaulted(buffer: ArrayBuffer): boolean;
  /** Slots of the process-wide SIGBUS guard table: how many guarded mappings can exist at once. */
  sigbusGuardSlots: number;
  /** Unmaps a buffer returned by mmap now and detaches it. A second call throws EINVAL. */
  munmap(buffer: ArrayBuffer): void;
  /** Whether a buffer returned by mmap is still mapped. */
  isMapped(buffer: ArrayBuffer): boolean;
  /** The system page size. */
  pageSize(): number;
  /** What this process holds through mmap() now: live mappings, their bytes, SIGBUS guard slots in use. */
  memoryStats(): MemoryStats;

  /** A non-blocking eventfd. */
  eventfdCreate(initial: number, semaphore: boolean): number;
  /** Adds `value` (default 1) to the counter; false if that would overflow (a value > 1 can block on a blocking fd). */
  eventfdSignal(fd: number, value?: number): boolean;
  /** Reads and resets the counter; 0 when nothing was pending; never blocks (preadv2 RWF_NOWAIT). */
  eventfdConsume(fd: number): number;

  Poll: typeof Poll;

  /** A non-blocking AF_UNIX socket. */
  socket(type: "stream" | "seqpacket"): number;
  /** A connected pair of non-blocking AF_UNIX sockets. */
  socketpair(type: "stream" | "seqpacket"): [number, number];
  bind(fd: number, path: string): void;
  listen(fd: number, backlog: number): void;
  /** A connected fd, or null when none is pending. */
  accept(fd: number): number | null;
  /** True when connected; false when the listener's backlog is full (retry when writable). */
  connect(fd: number, path: string): boolean;
  /** Sends data with fds (SCM_RIGHTS, at most 253, needs ≥ 1 byte): bytes sent, or null if it would block. */
  sendmsg(fd: number, data: Uint8Array, fds?: number[]): number | null;
  /** Receives into `buffer` with up to `maxFds` fds, or null if nothing is there. EMSGSIZE on truncation. */
  recvmsg(fd: number, buffer: Uint8Array, maxFds: number): Received | null;
  shutdown(fd: number, how: "read" | "write" | "both"): void;
  /** SO_PEERCRED. */
  peerCredentials(fd: number): PeerCredentials;

  xen: XenBinding;

  /**
   * Maps several page runs of `fd` side by side as one zero-copy ArrayBuffer
   * (a reserved range, each run placed with MAP_FIXED). Offsets page aligned,
   * lengths positive multiples of the page size.
   */
  mmapRuns(fd: number, offsets: number[], lengths: number[], writable: boolean, populate: boolean): ArrayBuffer;
  /** Unmaps a buffer returned by mmapRuns now and detaches it. A second call throws EINVAL. */
  munmapRuns(buffer: ArrayBuffer): void;

  /** libxenvchan; only `compiled: false` when its header was absent at build time. */
  xenVchan: XenVchanBinding;

  /**
   * Copies `rows` rows of `rowBytes` bytes from `source` (the first at
   * `sourceOffset`, then every `sourceStride` bytes) to `target` (from
   * `targetOffset`, every `targetStride` bytes), in one call: bytes copied.
   * Every figure is an integer in 0..2^31-1; RangeError when a row is longer
   * than a stride (more than one row) or the rectangle does not fit a buffer.
   */
  copyRect(
    source: Uint8Array,
    sourceOffset: number,
    sourceStride: number,
    target: Uint8Array,
    targetOffset: number,
    targetStride: number,
    rowBytes: number,
    rows: number,
  ): number;
}
