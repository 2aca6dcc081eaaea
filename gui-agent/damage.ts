/**
 * Damage: which rectangles of a window changed, coalesced into few enough
 * rectangles that each one is worth a SHMIMAGE message, and the copy of
 * exactly those rectangles from an app's wl_shm buffer into the window's
 * granted framebuffer.
 *
 * Upstream's agent sends one SHMIMAGE per X damage rectangle with no
 * coalescing; a Wayland app may report dozens of tiny rectangles per commit.
 * We merge rectangles whose union wastes little, and fall back to the
 * bounding box when there are too many: fewer messages, and never more than
 * a bounded number of extra pixels copied.
 */
import { area, intersect, isEmpty, union, type Rect } from "../compositor/index.ts";

/** At most this many rectangles leave {@link coalesceDamage}. */
export const MAX_DAMAGE_RECTS = 16;

/**
 * Two rectangles are merged when their union wastes at most this many pixels
 * beyond what they cover (a 64×64 block), or when the union is at most 1/8
 * bigger than their sum.
 */
const MERGE_SLACK_PIXELS = 64 * 64;

/**
 * Clips damage to `bounds`, drops empty rectangles and merges them until at
 * most {@link MAX_DAMAGE_RECTS} remain. The result covers every damaged
 * pixel inside `bounds`; it may cover a few undamaged ones.
 */
export function coalesceDamage(rects: readonly Rect[], bounds: Rect): Rect[] {
  let out: Rect[] = [];
  for (const rect of rects) {
    const clipped = intersect(rect, bounds);
    if (!isEmpty(clipped)) out.push(clipped);
  }
  if (out.length <= 1) return out;

  // Greedy pairwise merging: merge any pair whose union is cheap, until no
  // pair is. Quadratic, but the list is short (apps send few rectangles, and
  // huge lists go straight to the bounding box below).
  if (out.length <= 4 * MAX_DAMAGE_RECTS) {
    let merged = true;
    while (merged) {
      merged = false;
      outer: for (let i = 0; i < out.length; i++) {
        for (let j = i + 1; j < out.length; j++) {
          const a = out[i] as Rect;
          const b = out[j] as Rect;
          const joined = union(a, b);
          const covered = area(a) + area(b) - area(intersect(a, b));
          const waste = area(joined) - covered;
          if (waste <= MERGE_SLACK_PIXELS || area(joined) * 8 <= covered * 9) {
            out[i] = joined;
            out.splice(j, 1);
            merged = true;
            break outer;
          }
        }
      }
    }
  }
  if (out.length > MAX_DAMAGE_RECTS) {
    out = [out.reduce(union)];
  }
  return out;
}

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
