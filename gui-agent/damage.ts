/**
 * Damage: the copy of exactly the damaged rectangles (coalesced by
 * compositor/'s coalesceDamage) from an app's wl_shm buffer into the
 * window's granted framebuffer.
 *
 * Upstream's agent sends one SHMIMAGE per X damage rectangle with no
 * coalescing; we send one per coalesced rectangle.
 */
import { copyPixelRows } from "../compositor/index.ts";

/** A BGRX/XRGB8888 pixel buffer: bytes, and the byte distance between rows. */
export interface PixelBuffer {
  readonly bytes: Uint8Array;
  /** Bytes per row, ≥ width × 4. */
  readonly stride: number;
  /** Pixels. */
  readonly width: number;
  /** Pixels. */
  readonly height: number;
}

/**
 * Copies a `width` × `height` block from (`sourceX`, `sourceY`) of `source`
 * to (`targetX`, `targetY`) of `target`, clipped to both buffers, in one
 * native call (one memmove per row, or one in all when whole rows of equal
 * stride are copied). Returns the bytes copied. This is how a surface
 * placed at an offset inside its window (a subsurface, or a main surface
 * whose window geometry starts inside it) lands in the window's
 * framebuffer. XRGB8888 and ARGB8888 in a little-endian wl_shm buffer are
 * byte for byte the protocol's BGRX: no conversion happens.
 */
export function copyBlock(
  source: PixelBuffer,
  sourceX: number,
  sourceY: number,
  target: PixelBuffer,
  targetX: number,
  targetY: number,
  width: number,
  height: number,
): number {
  // Clip against the source, then the target, moving both corners together.
  let left = 0;
  let top = 0;
  let right = width;
  let bottom = height;
  left = Math.max(left, -sourceX, -targetX);
  top = Math.max(top, -sourceY, -targetY);
  right = Math.min(right, source.width - sourceX, target.width - targetX);
  bottom = Math.min(bottom, source.height - sourceY, target.height - targetY);
  // Nothing to copy, or a view of a mapping that is gone (it reads as empty): nothing is copied.
  if (right <= left || bottom <= top || source.bytes.length === 0) return 0;
  const rowBytes = (right - left) * 4;
  const rows = bottom - top;
  const from = (sourceY + top) * source.stride + (sourceX + left) * 4;
  const to = (targetY + top) * target.stride + (targetX + left) * 4;
  // One native call for the whole block: no view per row (one memmove when whole rows of equal stride are copied).
  return copyPixelRows(
    { bytes: source.bytes, offset: from, stride: source.stride },
    { bytes: target.bytes, offset: to, stride: target.stride },
    rowBytes,
    rows,
  );
}
