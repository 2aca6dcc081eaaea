/**
 * What bench/peers/scale-app.ts draws and bench/scale.bench.ts reads back
 * from the desktop's output, in one place: each window is BASE everywhere
 * but an AREA × AREA square at (AREA/2, AREA/2), whose every pixel is the
 * sequence number of the window's last update, and the pixel diagonally
 * next to the square's top-left corner, (AREA/2 - 1, AREA/2 - 1), which
 * names the window: {@link identityPixel}.
 */

/** The updated square's side, in pixels; it sits at (AREA/2, AREA/2) of the window. */
export const AREA = 64;
/** The colour (0x00RRGGBB) of every pixel outside the updated square. */
export const BASE = 0x305070;

/** The pixel naming window `window` (0..255) of the app tagged `tag` (0..127): never BASE, never a seq below 2^23. */
export function identityPixel(tag: number, window: number): number {
  return 0x800000 | ((tag & 0x7f) << 8) | (window & 0xff);
}
