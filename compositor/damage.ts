/**
 * Damage coalescing: which rectangles of a surface, window or output changed,
 * merged into few enough rectangles that each one is worth its own copy or
 * message. Apps may report dozens of tiny rectangles per commit; we merge
 * rectangles whose union wastes little, and fall back to the bounding box
 * when there are too many: fewer copies, and never more than a bounded
 * number of extra pixels.
 */
import { area, intersect, isEmpty, union, type Rect } from "./geometry.ts";

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
