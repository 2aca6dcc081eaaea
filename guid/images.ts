/**
 * A window's image: the domain's framebuffer of one WINDOW_DUMP, mapped once
 * and shown on the host compositor.
 *
 * Zero copy: when the refs are one contiguous run of the domain's memfd
 * pool, the host compositor gets that pool fd as a wl_shm pool and a buffer
 * at the run's offset, so it reads the domain's pages itself and the daemon
 * copies 0 bytes per frame. Otherwise (a scattered list, or Xen, whose
 * gntdev ranges a wl_shm pool cannot map from offset 0) the daemon copies the
 * damaged rectangles into a buffer of its own, and counts the bytes.
 */
import type { DumpGeometry, WindowRect } from "../protocol/index.ts";
import { MappedFramebuffer, type DomainId, type GrantTable } from "../shm/index.ts";
import { ClientShmPool, SHM_FORMAT_XRGB8888, type Proxy } from "../wayland/index.ts";
import type { GuidCounters } from "./counters.ts";
import type { ContentSource } from "./host/window.ts";

/** The daemon's own buffer on the copy path. */
interface OwnCopy {
  readonly pool: ClientShmPool;
  readonly pixels: Uint8Array;
}

/** One WINDOW_DUMP's pixels on the host. */
export class WindowImage implements ContentSource {
  readonly width: number;
  readonly height: number;
  readonly buffer: Proxy<"wl_buffer">;
  /** True when the host reads the domain's pages directly. */
  readonly zeroCopy: boolean;
  readonly #framebuffer: MappedFramebuffer;
  readonly #counters: GuidCounters;
  /** The daemon's own pixels on the copy path. */
  readonly #copy: OwnCopy | null;
  #destroyed = false;

  private constructor(
    framebuffer: MappedFramebuffer,
    buffer: Proxy<"wl_buffer">,
    copy: OwnCopy | null,
    counters: GuidCounters,
  ) {
    this.#framebuffer = framebuffer;
    this.width = framebuffer.width;
    this.height = framebuffer.height;
    this.buffer = buffer;
    this.#copy = copy;
    this.zeroCopy = copy === null;
    this.#counters = counters;
  }

  /**
   * Maps a validated dump's refs (an image, not "empty") and makes the host
   * buffer. Throws a ShmError when a ref is bad (the caller ends the session).
   */
  static create(
    grants: GrantTable,
    domain: DomainId,
    geometry: Extract<DumpGeometry, { kind: "image" }>,
    refs: Uint32Array,
    shm: Proxy<"wl_shm">,
    counters: GuidCounters,
  ): WindowImage {
    // Not populated: on the zero-copy path the daemon never touches the pixels.
    const framebuffer = new MappedFramebuffer(grants, domain, geometry.width, geometry.height, Array.from(refs), {
      populate: false,
    });
    counters.bytesMapped += framebuffer.mapping.buffer.byteLength;
    try {
      const range = framebuffer.contiguous;
      const stride = framebuffer.stride;
      if (range !== null && grants.backend === "memfd") {
        const pool = shm.request("create_pool", range.fd, range.offset + range.length);
        const buffer = pool.request(
          "create_buffer",
          range.offset,
          geometry.width,
          geometry.height,
          stride,
          SHM_FORMAT_XRGB8888,
        );
        pool.request("destroy");
        counters.zeroCopyImages += 1;
        return new WindowImage(framebuffer, buffer, null, counters);
      }
      const pool = new ClientShmPool(shm, stride * geometry.height);
      const { proxy, bytes } = pool.createBuffer(0, geometry.width, geometry.height, stride, SHM_FORMAT_XRGB8888);
      counters.copiedImages += 1;
      return new WindowImage(framebuffer, proxy, { pool, pixels: bytes }, counters);
    } catch (error) {
      framebuffer.unmap();
      throw error;
    }
  }

  update(damage: readonly WindowRect[]): void {
    const copy = this.#copy;
    if (copy === null || this.#destroyed) return;
    const source = this.#framebuffer.pixels;
    const stride = this.#framebuffer.stride;
    for (const rect of damage) {
      const right = Math.min(rect.x + rect.width, this.width);
      const bottom = Math.min(rect.y + rect.height, this.height);
      if (right <= rect.x || bottom <= rect.y) continue;
      const rowBytes = (right - rect.x) * 4;
      if (rect.x === 0 && right === this.width) {
        const start = rect.y * stride;
        const end = bottom * stride;
        copy.pixels.set(source.subarray(start, end), start);
        this.#counters.bytesCopied += end - start;
        continue;
      }
      for (let row = rect.y; row < bottom; row++) {
        const start = row * stride + rect.x * 4;
        copy.pixels.set(source.subarray(start, start + rowBytes), start);
      }
      this.#counters.bytesCopied += rowBytes * (bottom - rect.y);
    }
  }

  /** Lets go of the host buffer and the mapping. */
  destroy(): void {
    if (this.#destroyed) return;
    this.#destroyed = true;
    if (!this.buffer.destroyed) this.buffer.request("destroy");
    this.#copy?.pool.destroy();
    this.#framebuffer.unmap();
  }
}
