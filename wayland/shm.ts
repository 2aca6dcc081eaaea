/**
 * Shared memory both sides need: wl_shm pools over memfds mapped once
 * through the native addon, buffers with formats and strides, and xkb
 * keymaps delivered by fd.
 *
 * The server side validates every pool and buffer a client asks for (sizes,
 * strides, offsets, formats) before a byte is read, and maps each pool once
 * (again only when the client grows it). The client side writes pixels
 * straight into the mapping: no copy on either side.
 */
import {
  SEAL_GROW,
  SEAL_SEAL,
  SEAL_SHRINK,
  SEAL_WRITE,
  addSeals,
  close as closeFd,
  fileSize,
  memfdCreate,
  mappingFaulted,
  mmap,
  munmap,
} from "../native/index.ts";
import type { Proxy } from "./client.ts";
import { wl_shm } from "./protocols/all.generated.ts";
import type { Display, Global, Resource } from "./server.ts";
import { Signal } from "./signal.ts";

/** wl_shm.format argb8888 (0): 32-bit BGRA in memory, alpha used; every compositor supports it. */
export const SHM_FORMAT_ARGB8888 = wl_shm.enums.format.argb8888;
/** wl_shm.format xrgb8888 (1): 32-bit BGRX in memory, the Qubes framebuffer layout; every compositor supports it. */
export const SHM_FORMAT_XRGB8888 = wl_shm.enums.format.xrgb8888;

/** Bytes per pixel of the formats this module validates strides for (32-bit formats). */
export const BYTES_PER_PIXEL = 4;

/** A client's pool as the server maps it: the fd (owned) and one read-only mapping. */
export class ShmPool {
  /** The pool's size in bytes. */
  size: number;
  /** The mapping; replaced (and the old one unmapped) when the client grows the pool. */
  memory: ArrayBuffer;
  /** The client's wl_shm_pool, for reporting a pool that went bad (null for pools made without one). */
  resource: Resource<"wl_shm_pool"> | null = null;
  /** Emitted once when the last reference is dropped: the pool is unmapped and its fd closed. */
  readonly events = { destroy: new Signal<ShmPool>() };
  /** True once the last reference was dropped. */
  destroyed = false;
  private readonly fd: number;
  private references = 1;

  /**
   * Maps `size` bytes of `fd` (owned from now on); throws when the file is
   * shorter or cannot be mapped. The mapping survives the client shrinking
   * the file later: reads past the end give zeros (see {@link faulted}).
   */
  constructor(fd: number, size: number) {
    this.fd = fd;
    this.size = size;
    this.checkFileSize(size);
    this.memory = mmap(fd, 0, size, { writable: false, guardSigbus: true });
  }

  /** True once a read found the client's file shrunk under the pool (the pixels read were zeros). */
  get faulted(): boolean {
    return mappingFaulted(this.memory);
  }

  /**
   * Ends the client with wl_shm.error.invalid_fd if a read found its file
   * shrunk; true when the pool is intact. What a compositor calls after
   * reading a buffer's pixels.
   */
  checkIntact(): boolean {
    if (!this.faulted) return true;
    if (this.resource !== null && !this.resource.destroyed) {
      this.resource.postError(wl_shm.enums.error.invalid_fd, "the pool's file shrank under its buffers");
    }
    return false;
  }

  private checkFileSize(size: number): void {
    const actual = fileSize(this.fd);
    if (actual < size) throw new RangeError(`the file has ${actual} bytes, fewer than the pool's ${size}`);
  }

  /** Grows the mapping to `size` bytes. */
  resize(size: number): void {
    this.checkFileSize(size);
    const memory = mmap(this.fd, 0, size, { writable: false, guardSigbus: true });
    munmap(this.memory);
    this.memory = memory;
    this.size = size;
  }

  /** @internal */
  reference(): void {
    this.references += 1;
  }

  /** Drops one reference (the pool object's or a buffer's); the last one unmaps and closes the fd. */
  unreference(): void {
    this.references -= 1;
    if (this.references > 0 || this.destroyed) return;
    this.destroyed = true;
    munmap(this.memory);
    closeFd(this.fd);
    this.events.destroy.emit(this);
  }
}

/** A wl_buffer over a pool: where its pixels are, their format and stride. */
export class ShmBuffer {
  /** The pool the pixels live in (kept mapped while the buffer lives). */
  readonly pool: ShmPool;
  /** Byte offset of the first pixel in the pool. */
  readonly offset: number;
  /** Width in buffer pixels. */
  readonly width: number;
  /** Height in buffer pixels. */
  readonly height: number;
  /** Bytes per row. */
  readonly stride: number;
  /** A wl_shm.format value. */
  readonly format: number;

  constructor(pool: ShmPool, offset: number, width: number, height: number, stride: number, format: number) {
    this.pool = pool;
    this.offset = offset;
    this.width = width;
    this.height = height;
    this.stride = stride;
    this.format = format;
  }

  /**
   * The buffer's bytes (stride × height) as a view of the current mapping,
   * valid until the pool is resized. A client that shrinks the file under
   * the pool cannot crash the reader: the pool's mapping is guarded, reads
   * past the file's end give zeros, and {@link ShmPool.checkIntact} (called
   * when the buffer is released) ends that client.
   */
  bytes(): Uint8Array | undefined {
    if (this.pool.memory.byteLength < this.offset + this.stride * this.height) return undefined;
    return new Uint8Array(this.pool.memory, this.offset, this.stride * this.height);
  }
}

/** The ShmBuffer behind a wl_buffer resource, if it is one of ours. */
export function shmBufferOf(resource: Resource): ShmBuffer | undefined {
  return resource.data instanceof ShmBuffer ? resource.data : undefined;
}

/**
 * Adds a wl_shm global that accepts pools and buffers in `formats`
 * (ARGB8888 and XRGB8888 by default, which every client may assume). Each
 * pool counts against its client's limits (one pool, one fd, its bytes)
 * until its last buffer is gone; a pool or a resize past them ends that
 * client with no_memory naming the limit.
 */
export function createShmGlobal(
  display: Display,
  formats: readonly number[] = [SHM_FORMAT_ARGB8888, SHM_FORMAT_XRGB8888],
): Global<"wl_shm"> {
  const errors = wl_shm.enums.error;
  return display.createGlobal("wl_shm", 1, (shm) => {
    shm.implement({
      create_pool: (poolResource, fd, size) => {
        if (size <= 0) {
          closeFd(fd);
          shm.postError(errors.invalid_stride, `a pool of ${size} bytes`);
          return;
        }
        const client = shm.client;
        const charge = { pools: 1, fds: 1, mappedBytes: size };
        // Past a limit: the client got no_memory naming it and is gone.
        if (!client.charge(charge)) {
          closeFd(fd);
          return;
        }
        let pool: ShmPool;
        try {
          pool = new ShmPool(fd, size);
        } catch (error) {
          client.uncharge(charge);
          closeFd(fd);
          shm.postError(errors.invalid_fd, `cannot map the pool: ${(error as Error).message}`);
          return;
        }
        pool.events.destroy.add(() => client.uncharge({ pools: 1, fds: 1, mappedBytes: pool.size }));
        implementPool(poolResource, pool, formats);
      },
    });
    for (const format of formats) shm.send("format", format);
  });
}

function implementPool(resource: Resource<"wl_shm_pool">, pool: ShmPool, formats: readonly number[]): void {
  const errors = wl_shm.enums.error;
  resource.data = pool;
  pool.resource = resource;
  resource.events.destroy.add(() => pool.unreference());
  resource.implement({
    create_buffer: (buffer, offset, width, height, stride, format) => {
      if (!formats.includes(format)) {
        resource.postError(errors.invalid_format, `format 0x${format.toString(16)} was not advertised`);
        return;
      }
      // Now 0 < width, 0 < height, width·4 ≤ stride, and the last row ends inside the pool.
      if (
        offset < 0 ||
        width <= 0 ||
        height <= 0 ||
        stride < width * BYTES_PER_PIXEL ||
        Math.floor(0x7fffffff / stride) <= height ||
        offset > pool.size - stride * height
      ) {
        resource.postError(
          errors.invalid_stride,
          `buffer ${width}x${height}, stride ${stride}, offset ${offset} does not fit a pool of ${pool.size} bytes`,
        );
        return;
      }
      pool.reference();
      buffer.data = new ShmBuffer(pool, offset, width, height, stride, format);
      buffer.events.destroy.add(() => pool.unreference());
      buffer.implement({});
    },
    resize: (size) => {
      if (size < pool.size) {
        resource.postError(errors.invalid_fd, `a pool only grows (${pool.size} to ${size} bytes)`);
        return;
      }
      const grown = { mappedBytes: size - pool.size };
      if (!resource.client.charge(grown)) return;
      try {
        pool.resize(size);
      } catch (error) {
        resource.client.uncharge(grown);
        resource.postError(errors.invalid_fd, `cannot map the pool: ${(error as Error).message}`);
      }
    },
  });
}

/**
 * Memory the caller already has, to hand to the compositor as a pool
 * without a copy (guid's granted framebuffers): the fd stays the caller's,
 * and so does `memory` when given.
 */
export interface ExistingPoolMemory {
  /** An fd of the memory, mapped by the compositor from offset 0 (the connection sends a duplicate). */
  fd: number;
  /** The caller's own mapping of the same bytes; mapped here (and unmapped by destroy) when absent. */
  memory?: ArrayBuffer;
}

/** A pool the client writes into: a memfd (or memory the caller has) mapped once, and its wl_shm_pool proxy. */
export class ClientShmPool {
  /** The pool proxy. */
  readonly proxy: Proxy<"wl_shm_pool">;
  /** The whole pool, writable. */
  readonly memory: ArrayBuffer;
  /** Pool size in bytes. */
  readonly size: number;
  private readonly fd: number;
  private readonly ownsFd: boolean;
  private readonly ownsMemory: boolean;
  private destroyed = false;

  /** Creates a `size`-byte pool on `shm`: over a fresh memfd, or over `existing` memory. */
  constructor(shm: Proxy<"wl_shm">, size: number, existing?: ExistingPoolMemory) {
    this.ownsFd = existing === undefined;
    this.ownsMemory = existing?.memory === undefined;
    this.fd = existing?.fd ?? memfdCreate("wl_shm_pool", size);
    let memory: ArrayBuffer | undefined;
    try {
      memory = existing?.memory ?? mmap(this.fd, 0, size, { writable: true, populate: true });
      if (memory.byteLength < size) throw new RangeError(`the memory has ${memory.byteLength} bytes, not ${size}`);
      this.memory = memory;
      this.proxy = shm.request("create_pool", this.fd, size);
    } catch (error) {
      if (this.ownsMemory && memory !== undefined) munmap(memory);
      if (this.ownsFd) closeFd(this.fd);
      throw error;
    }
    this.size = size;
  }

  /** A buffer at `offset` of `width`×`height` pixels, `stride` bytes per row, and a view of its bytes. */
  createBuffer(
    offset: number,
    width: number,
    height: number,
    stride: number,
    format: number,
  ): { proxy: Proxy<"wl_buffer">; bytes: Uint8Array } {
    if (offset < 0 || stride * height + offset > this.size) throw new RangeError("buffer outside the pool");
    const proxy = this.proxy.request("create_buffer", offset, width, height, stride, format);
    return { proxy, bytes: new Uint8Array(this.memory, offset, stride * height) };
  }

  /** Destroys the pool object (buffers stay valid on the compositor side) and releases what this pool made. */
  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    if (!this.proxy.destroyed) this.proxy.request("destroy");
    if (this.ownsMemory) munmap(this.memory);
    if (this.ownsFd) closeFd(this.fd);
  }
}

/**
 * Puts an xkb keymap (text) into a sealed memfd for wl_keyboard.keymap:
 * returns the fd (the caller closes it after sending) and the size to send,
 * which counts the terminating NUL as the protocol asks.
 */
export function createKeymapFd(keymap: string): { fd: number; size: number } {
  const text = Buffer.from(`${keymap}\0`, "utf8");
  const fd = memfdCreate("xkb-keymap", text.length);
  try {
    const memory = mmap(fd, 0, text.length, { writable: true });
    new Uint8Array(memory).set(text);
    munmap(memory);
    addSeals(fd, SEAL_SHRINK | SEAL_GROW | SEAL_WRITE | SEAL_SEAL);
  } catch (error) {
    closeFd(fd);
    throw error;
  }
  return { fd, size: text.length };
}

/** Reads a keymap received with wl_keyboard.keymap (format xkb_v1): the text without its NUL. Does not close the fd. */
export function readKeymap(fd: number, size: number): string {
  if (!Number.isInteger(size) || size <= 0 || size > 16 * 1024 * 1024) throw new RangeError(`bad keymap size ${size}`);
  const memory = mmap(fd, 0, size, { writable: false });
  try {
    const bytes = new Uint8Array(memory);
    const end = bytes.indexOf(0);
    return Buffer.from(bytes.subarray(0, end < 0 ? size : end)).toString("utf8");
  } finally {
    munmap(memory);
  }
}
