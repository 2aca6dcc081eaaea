/** What test/gui-agent/peers/frame-client.ts draws, for the tests that check it. */

/** The pattern's pixel (0x00RRGGBB) at (x, y) for generation `gen`. */
export function framePixel(x: number, y: number, gen: number): number {
  return ((x * 2654435761) ^ (y * 40503) ^ (gen * 0x5a3c1f)) & 0xffffff;
}

/** The size of the `i`-th frame of `resize`: from 400×300 up to 1183×887. */
export function resizeSize(i: number): { width: number; height: number } {
  return { width: 400 + (i % 88) * 9, height: 300 + (i % 98) * 6 };
}
