/**
 * native/: the project's one C++ addon, loaded once, with arguments checked in
 * TypeScript before they reach C++ (which checks them again).
 *
 * Everything the rest of the code needs from the kernel that Node core does
 * not offer goes through here: memfd and mmap as zero-copy ArrayBuffers,
 * eventfd, fd readiness on the event loop, AF_UNIX sockets with SCM_RIGHTS, and
 * the Xen grant devices.
 */
import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";
import path from "node:path";

import type {
  MemoryStats,
  NativeBinding,
  PeerCredentials,
  Received,
  SyscallError,
  XenBinding,
  XenVchan,
  XenVchanBinding,
} from "./addon.d.ts";

export type { MemoryStats, PeerCredentials, Received, SyscallError, XenBinding, XenVchan, XenVchanBinding };

const here = path.dirname(fileURLToPath(import.meta.url));
const addonPath = path.join(here, "..", "build", "Release", "qubes_native.node");

/**
 * Loads the addon. A checkout where `npm ci` has not built it (or where an
 * interrupted build removed it) gets one line saying what to do, with the
 * stable code ADDON_NOT_BUILT that the programs print without a stack.
 */
function loadAddon(): NativeBinding {
  try {
    return createRequire(import.meta.url)(addonPath) as NativeBinding;
  } catch (error) {
    if ((error as { code?: string }).code !== "MODULE_NOT_FOUND" || existsSync(addonPath)) throw error;
    throw Object.assign(new Error("the native addon is not built: run npm ci", { cause: error }), {
      code: "ADDON_NOT_BUILT",
      path: addonPath,
    });
  }
}

/** The raw binding; prefer the checked wrappers below. */
export const binding: NativeBinding = loadAddon();

/** Poll event bits. */
export const POLL_READABLE = 1;
export const POLL_WRITABLE = 2;
export const POLL_DISCONNECT = 4;

/** memfd seals (F_SEAL_*). */
export const SEAL_SEAL = 0x1;
export const SEAL_SHRINK = 0x2;
export const SEAL_GROW = 0x4;
export const SEAL_WRITE = 0x8;

/** The kernel's limit on fds in one SCM_RIGHTS message. */
export const MAX_FDS_PER_MESSAGE = 253;

/** The system page size in bytes. */
export const PAGE_SIZE: number = binding.pageSize();

/**
 * Guarded mappings ({@link MmapOptions.guardSigbus}) that can exist at once
 * in the process: past it such an mmap fails with ENOMEM. A server maps each
 * client's wl_shm pools guarded, so it holds each client to a small share.
 */
export const SIGBUS_GUARD_SLOTS: number = binding.sigbusGuardSlots;

/** The Poll handle class: readiness of an fd on the event loop. */
export const Poll = binding.Poll;
export type Poll = InstanceType<NativeBinding["Poll"]>;

/** True when `error` is a failed system call with errno name `code`. */
export function isSyscallError(error: unknown, code?: string): error is SyscallError {
  return (
    error instanceof Error &&
    typeof (error as SyscallError).syscall === "string" &&
    (code === undefined || (error as SyscallError).code === code)
  );
}

function checkFd(fd: number, name = "fd"): void {
  if (!Number.isInteger(fd) || fd < 0 || fd > 0x7fffffff) {
    throw new RangeError(`${name} must be a non-negative integer, got ${String(fd)}`);
  }
}

function checkSize(value: number, name: string, min: number, max: number): void {
  if (!Number.isSafeInteger(value) || value < min || value > max) {
    throw new RangeError(`${name} must be an integer in ${min}..${max}, got ${String(value)}`);
  }
}

/** Closes an fd. */
export function close(fd: number): void {
  checkFd(fd);
  binding.close(fd);
}

/** Duplicates an fd (close-on-exec). */
export function dup(fd: number): number {
  checkFd(fd);
  return binding.dup(fd);
}

/** Sets or clears O_NONBLOCK on an fd. */
export function setNonBlocking(fd: number, nonBlocking = true): void {
  checkFd(fd);
  binding.setNonBlocking(fd, nonBlocking);
}

/** Creates a memfd (close-on-exec; sealing allowed unless told otherwise) of `size` bytes. */
export function memfdCreate(name: string, size = 0, options: { allowSealing?: boolean } = {}): number {
  if (typeof name !== "string" || name.length === 0 || name.length > 249) {
    throw new RangeError("memfd name must be 1..249 characters");
  }
  checkSize(size, "size", 0, 2 ** 46);
  const fd = binding.memfdCreate(name, options.allowSealing ?? true);
  if (size > 0) {
    try {
      binding.ftruncate(fd, size);
    } catch (error) {
      binding.close(fd);
      throw error;
    }
  }
  return fd;
}

/** Resizes a file (memfd) to `size` bytes. */
export function resize(fd: number, size: number): void {
  checkFd(fd);
  checkSize(size, "size", 0, 2 ** 46);
  binding.ftruncate(fd, size);
}

/** The size of a file in bytes. */
export function fileSize(fd: number): number {
  checkFd(fd);
  return binding.fileSize(fd);
}

/** Adds seals (SEAL_*) to a memfd. */
export function addSeals(fd: number, seals: number): void {
  checkFd(fd);
  checkSize(seals, "seals", 0, 0xffff);
  binding.addSeals(fd, seals);
}

/** The seals of a memfd. */
export function getSeals(fd: number): number {
  checkFd(fd);
  return binding.getSeals(fd);
}

/** Options of {@link mmap}. */
export interface MmapOptions {
  /** PROT_WRITE as well as PROT_READ. Default false. */
  writable?: boolean;
  /** MAP_POPULATE: fault every page in now, not on first touch. Default false. */
  populate?: boolean;
  /**
   * Survive the file shrinking under the mapping (another process's memfd,
   * e.g. a Wayland client's pool): a read past the file's end then reads
   * zeros instead of killing the process with SIGBUS, and
   * {@link mappingFaulted} says it happened. Default false.
   */
  guardSigbus?: boolean;
}

/**
 * Maps `length` bytes of `fd` from `offset` (a multiple of the page size) as a
 * zero-copy ArrayBuffer over shared memory. Release it with {@link munmap};
 * the garbage collector unmaps forgotten ones, late.
 */
export function mmap(fd: number, offset: number, length: number, options: MmapOptions = {}): ArrayBuffer {
  checkFd(fd);
  checkSize(offset, "offset", 0, 2 ** 46);
  checkSize(length, "length", 1, 2 ** 32);
  if (offset % PAGE_SIZE !== 0) throw new RangeError(`offset must be a multiple of ${PAGE_SIZE}, got ${offset}`);
  return binding.mmap(
    fd,
    offset,
    length,
    options.writable ?? false,
    options.populate ?? false,
    options.guardSigbus ?? false,
  );
}

/** True once a read of a mapping made with `guardSigbus` found its file shrunk (it reads zeros since). */
export function mappingFaulted(buffer: ArrayBuffer): boolean {
  if (!(buffer instanceof ArrayBuffer)) throw new TypeError("mappingFaulted needs the ArrayBuffer returned by mmap");
  return binding.mappingFaulted(buffer);
}

/** Unmaps a buffer from {@link mmap} now; every view of it then reads as empty. */
export function munmap(buffer: ArrayBuffer): void {
  if (!(buffer instanceof ArrayBuffer)) throw new TypeError("munmap needs the ArrayBuffer returned by mmap");
  binding.munmap(buffer);
}

/** Whether a buffer from {@link mmap} is still mapped. */
export function isMapped(buffer: ArrayBuffer): boolean {
  if (!(buffer instanceof ArrayBuffer)) throw new TypeError("isMapped needs the ArrayBuffer returned by mmap");
  return binding.isMapped(buffer);
}

/** What this process holds mapped through {@link mmap} now: mappings, bytes and SIGBUS guard slots (leak checks). */
export function memoryStats(): MemoryStats {
  return binding.memoryStats();
}

/** Creates a non-blocking eventfd. */
export function eventfdCreate(options: { initial?: number; semaphore?: boolean } = {}): number {
  const initial = options.initial ?? 0;
  checkSize(initial, "initial", 0, 0xffffffff);
  return binding.eventfdCreate(initial, options.semaphore ?? false);
}

/**
 * Adds `value` to an eventfd's counter, waking its pollers; false if the
 * counter is full. Never blocks for a value of 1 (poll says whether 1 more
 * fits); a larger value into a nearly full counter blocks when the fd's
 * description is blocking (poll cannot tell how much room is left).
 */
export function eventfdSignal(fd: number, value = 1): boolean {
  checkFd(fd);
  checkSize(value, "value", 1, Number.MAX_SAFE_INTEGER);
  return binding.eventfdSignal(fd, value);
}

/**
 * Reads and resets an eventfd's counter; 0 when nothing was pending. Never
 * blocks, whatever the shared description's O_NONBLOCK says (RWF_NOWAIT; on
 * kernels before 5.12, poll first).
 */
export function eventfdConsume(fd: number): number {
  checkFd(fd);
  return binding.eventfdConsume(fd);
}

/** AF_UNIX socket types. */
export type SocketType = "stream" | "seqpacket";

function checkType(type: SocketType): void {
  if (type !== "stream" && type !== "seqpacket") throw new TypeError(`socket type must be stream or seqpacket`);
}

function checkPath(socketPath: string): void {
  if (typeof socketPath !== "string" || Buffer.byteLength(socketPath) === 0 || Buffer.byteLength(socketPath) > 107) {
    throw new RangeError(`socket path must be 1..107 bytes: ${JSON.stringify(socketPath)}`);
  }
}

/** A non-blocking AF_UNIX socket. */
export function socket(type: SocketType): number {
  checkType(type);
  return binding.socket(type);
}

/** A connected pair of non-blocking AF_UNIX sockets. */
export function socketpair(type: SocketType): [number, number] {
  checkType(type);
  return binding.socketpair(type);
}

/** A listening socket bound to `socketPath`. */
export function listen(type: SocketType, socketPath: string, backlog = 16): number {
  checkPath(socketPath);
  checkSize(backlog, "backlog", 0, 4096);
  const fd = socket(type);
  try {
    binding.bind(fd, socketPath);
    binding.listen(fd, backlog);
  } catch (error) {
    binding.close(fd);
    throw error;
  }
  return fd;
}

/** Accepts a pending connection: its fd, or null when none is pending. */
export function accept(fd: number): number | null {
  checkFd(fd);
  return binding.accept(fd);
}

/** Starts connecting `fd` to `socketPath`: true when connected, false when the listener is busy. */
export function connect(fd: number, socketPath: string): boolean {
  checkFd(fd);
  checkPath(socketPath);
  return binding.connect(fd, socketPath);
}

/** Sends `data` and `fds` (SCM_RIGHTS): the bytes sent, or null if the socket is full. */
export function sendmsg(fd: number, data: Uint8Array, fds: readonly number[] = []): number | null {
  checkFd(fd);
  if (!(data instanceof Uint8Array)) throw new TypeError("data must be a Uint8Array");
  if (fds.length > MAX_FDS_PER_MESSAGE) throw new RangeError(`at most ${MAX_FDS_PER_MESSAGE} fds fit in one message`);
  for (const passed of fds) checkFd(passed, "passed fd");
  if (fds.length > 0 && data.byteLength === 0) throw new RangeError("fds need at least one data byte");
  return binding.sendmsg(fd, data, fds as number[]);
}

/** Receives into `buffer` with up to `maxFds` fds: null if nothing is there; bytes 0 at end of stream. */
export function recvmsg(fd: number, buffer: Uint8Array, maxFds = MAX_FDS_PER_MESSAGE): Received | null {
  checkFd(fd);
  if (!(buffer instanceof Uint8Array) || buffer.byteLength === 0) {
    throw new TypeError("buffer must be a non-empty Uint8Array");
  }
  checkSize(maxFds, "maxFds", 0, MAX_FDS_PER_MESSAGE);
  return binding.recvmsg(fd, buffer, maxFds);
}

/** shutdown(2) on a socket. */
export function shutdown(fd: number, how: "read" | "write" | "both"): void {
  checkFd(fd);
  binding.shutdown(fd, how);
}

/** The pid, uid and gid of a connected socket's peer. */
export function peerCredentials(fd: number): PeerCredentials {
  checkFd(fd);
  return binding.peerCredentials(fd);
}

/** Xen grant devices (gntalloc/gntdev); `xen.compiled` says whether the ioctls exist in this build. */
export const xen: XenBinding = binding.xen;

/** One run of pages of a file: byte offset (page aligned) and length (a positive multiple of the page size). */
export interface PageRun {
  offset: number;
  length: number;
}

/**
 * Maps several page runs of `fd` side by side as one zero-copy ArrayBuffer,
 * in the order given: a scattered list of grant pages seen as one view. Costs
 * one mmap per run. Release it with {@link munmapRuns}.
 */
export function mmapRuns(fd: number, runs: readonly PageRun[], options: MmapOptions = {}): ArrayBuffer {
  checkFd(fd);
  if (runs.length === 0 || runs.length > 98304) throw new RangeError("runs must hold 1..98304 runs");
  const offsets: number[] = [];
  const lengths: number[] = [];
  for (const run of runs) {
    checkSize(run.offset, "offset", 0, 2 ** 46);
    checkSize(run.length, "length", PAGE_SIZE, 2 ** 40);
    if (run.offset % PAGE_SIZE !== 0 || run.length % PAGE_SIZE !== 0) {
      throw new RangeError(`runs must be page aligned: offset ${run.offset}, length ${run.length}`);
    }
    offsets.push(run.offset);
    lengths.push(run.length);
  }
  return binding.mmapRuns(fd, offsets, lengths, options.writable ?? false, options.populate ?? false);
}

/** Unmaps a buffer from {@link mmapRuns} now; every view of it then reads as empty. */
export function munmapRuns(buffer: ArrayBuffer): void {
  if (!(buffer instanceof ArrayBuffer)) throw new TypeError("munmapRuns needs the ArrayBuffer returned by mmapRuns");
  binding.munmapRuns(buffer);
}

/** libxenvchan (`compiled` false when its header was absent at build time). */
export const xenVchan: XenVchanBinding = binding.xenVchan;

/** A rectangle of rows in a byte buffer: the first row at `offset`, the next `stride` bytes further. */
export interface StridedBytes {
  readonly bytes: Uint8Array;
  /** Byte offset of the first row's first byte. */
  readonly offset: number;
  /** Bytes from one row to the next. */
  readonly stride: number;
}

function checkCopyFigure(value: number, name: string): void {
  if (!Number.isInteger(value) || value < 0 || value > 0x7fffffff) {
    throw new RangeError(`${name} must be an integer in 0..2147483647, got ${String(value)}`);
  }
}

function checkStrided(side: StridedBytes, name: string, rowBytes: number, rows: number): void {
  if (!(side.bytes instanceof Uint8Array)) throw new TypeError(`${name} must be a Uint8Array`);
  checkCopyFigure(side.offset, `${name} offset`);
  checkCopyFigure(side.stride, `${name} stride`);
  if (rows > 1 && side.stride < rowBytes) throw new RangeError(`${name} stride ${side.stride} < row ${rowBytes}`);
  if (rows > 0 && rowBytes > 0 && side.offset + (rows - 1) * side.stride + rowBytes > side.bytes.length) {
    throw new RangeError(`${rows} rows of ${rowBytes} bytes do not fit ${name} (${side.bytes.length} bytes)`);
  }
}

/**
 * Copies `rows` rows of `rowBytes` bytes from `source` to `target`, each
 * with its own stride, in one native call (one memmove per row, one for the
 * whole block when both strides equal the row): a rectangle narrower than
 * its buffer costs no view per row. Returns the bytes copied.
 */
export function copyRect(source: StridedBytes, target: StridedBytes, rowBytes: number, rows: number): number {
  checkCopyFigure(rowBytes, "rowBytes");
  checkCopyFigure(rows, "rows");
  checkStrided(source, "source", rowBytes, rows);
  checkStrided(target, "target", rowBytes, rows);
  return binding.copyRect(
    source.bytes,
    source.offset,
    source.stride,
    target.bytes,
    target.offset,
    target.stride,
    rowBytes,
    rows,
  );
}
