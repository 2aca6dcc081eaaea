/**
 * Damage: the copy of exactly the damaged rectangles (coalesced by
 * compositor/'s coalesceDamage) from an app's wl_shm buffer into the
 * window's granted framebuffer.
 *
 * Upstream's agent sends one SHMIMAGE per X damage rectangle with no
 * coalescing; we send one per coalesced rectangle.
 */

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
 * to (`targetX`, `targetY`) of `target`, clipped to both buffers, row by row
 * (one copy when whole rows of equal stride are copied). Returns the bytes
 * copied. This is how a surface placed at an offset inside its window (a
 * subsurface, or a main surface whose window geometry starts inside it)
 * lands in the window's framebuffer. XRGB8888 and ARGB8888 in a
 * little-endian wl_shm buffer are byte for byte the protocol's BGRX: no
 * conversion happens.
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
  if (right <= left || bottom <= top) return 0;
  const rowBytes = (right - left) * 4;
  const rows = bottom - top;
  let from = (sourceY + top) * source.stride + (sourceX + left) * 4;
  let to = (targetY + top) * target.stride + (targetX + left) * 4;
  if (rowBytes === source.stride && rowBytes === target.stride) {
    target.bytes.set(source.bytes.subarray(from, from + rows * rowBytes), to);
    return rows * rowBytes;
  }
  for (let row = 0; row < rows; row++) {
    target.bytes.set(source.bytes.subarray(from, from + rowBytes), to);
    from += source.stride;
    to += target.stride;
  }
  return rows * rowBytes;
}
