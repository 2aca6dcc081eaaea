import fc from "fast-check";
import { describe, expect, it } from "vitest";

import {
  DEFAULT_BORDER_WIDTH,
  MAX_BORDER_WIDTH,
  contentPointFromDecoration,
  decorationRectFromContent,
  frameLayout,
  isOnFrame,
  type DecorationRect,
  type FrameLayout,
} from "../../decorator/index.ts";
import type { WindowRect } from "../../protocol/index.ts";

/** How many of the layout's five rectangles cover each pixel of the outer surface (row-major). */
function coverage(layout: FrameLayout): Uint8Array {
  const { width, height } = layout.outer;
  const counts = new Uint8Array(width * height);
  let outside = 0;
  for (const rect of [layout.content, ...layout.strips]) {
    for (let y = rect.y; y < rect.y + rect.height; y++) {
      for (let x = rect.x; x < rect.x + rect.width; x++) {
        if (x < 0 || y < 0 || x >= width || y >= height) outside++;
        else counts[y * width + x]!++;
      }
    }
  }
  expect(outside).toBe(0);
  return counts;
}

const plain = (r: DecorationRect) => ({ x: r.x, y: r.y, width: r.width, height: r.height });

describe("frameLayout", () => {
  it("draws upstream's 2-pixel frame by default", () => {
    expect(DEFAULT_BORDER_WIDTH).toBe(2);
  });

  it("lays out a 120x80 window with a 2-pixel frame as the brief's figure", () => {
    const layout = frameLayout({ width: 120, height: 80 }, 2);
    expect(layout.outer).toEqual({ width: 124, height: 84 });
    expect(plain(layout.content)).toEqual({ x: 2, y: 2, width: 120, height: 80 });
    expect(layout.strips.map(plain)).toEqual([
      { x: 0, y: 0, width: 124, height: 2 },
      { x: 0, y: 82, width: 124, height: 2 },
      { x: 0, y: 2, width: 2, height: 80 },
      { x: 122, y: 2, width: 2, height: 80 },
    ]);
  });

  it("covers every pixel of the outer surface exactly once with content and strips", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 48 }),
        fc.integer({ min: 1, max: 48 }),
        fc.integer({ min: 1, max: MAX_BORDER_WIDTH }),
        (width, height, border) => {
          const layout = frameLayout({ width, height }, border);
          expect(layout.outer).toEqual({ width: width + 2 * border, height: height + 2 * border });
          const counts = coverage(layout);
          expect(counts.every((count) => count === 1)).toBe(true);
          const framePixels = counts.length - width * height;
          const stripPixels = layout.strips.reduce((sum, s) => sum + s.width * s.height, 0);
          expect(stripPixels).toBe(framePixels);
        },
      ),
    );
  });

  it("tiles a 1x1 window and the widest frame", () => {
    for (const border of [1, DEFAULT_BORDER_WIDTH, MAX_BORDER_WIDTH]) {
      expect(coverage(frameLayout({ width: 1, height: 1 }, border)).every((c) => c === 1)).toBe(true);
    }
  });

  it.each([0, -1, 65, 1.5, Number.NaN, 2 ** 31, 2 ** 32 - 1])("rejects a border of %d", (border) => {
    expect(() => frameLayout({ width: 10, height: 10 }, border)).toThrow(RangeError);
  });

  it.each([
    [0, 10],
    [10, 0],
    [-1, 10],
    [10, -1],
    [1.5, 10],
    [10, Number.NaN],
    [Number.POSITIVE_INFINITY, 10],
  ])("rejects a content size of %dx%d", (width, height) => {
    expect(() => frameLayout({ width, height }, 2)).toThrow(RangeError);
  });
});

describe("points and rectangles between decoration and content", () => {
  const layout = frameLayout({ width: 120, height: 80 }, 2);

  it("moves a point of the outer surface into content coordinates", () => {
    expect(contentPointFromDecoration(2, 2, 2)).toEqual({ x: 0, y: 0 });
    expect(contentPointFromDecoration(121, 81, 2)).toEqual({ x: 119, y: 79 });
    expect(contentPointFromDecoration(0, 1, 2)).toEqual({ x: -2, y: -1 });
    expect(contentPointFromDecoration(10.5, 3.25, 2)).toEqual({ x: 8.5, y: 1.25 });
    expect(() => contentPointFromDecoration(0, 0, 0)).toThrow(RangeError);
  });

  it("says the pixels upstream paints in the label colour are on the frame and (2,2) is not", () => {
    for (const [x, y] of [
      [0, 0],
      [1, 1],
      [123, 83],
      [122, 82],
      [1, 40],
      [122.5, 40],
      [60, 1.99],
    ] as const) {
      expect(isOnFrame(x, y, layout)).toBe(true);
    }
    for (const [x, y] of [
      [2, 2],
      [121.99, 81.99],
      [60, 40],
    ] as const) {
      expect(isOnFrame(x, y, layout)).toBe(false);
    }
  });

  it("says a point outside the outer surface is not on the frame", () => {
    for (const [x, y] of [
      [-0.5, 0],
      [0, -1],
      [124, 10],
      [10, 84],
      [Number.NaN, 0],
    ] as const) {
      expect(isOnFrame(x, y, layout)).toBe(false);
    }
  });

  it("agrees with the strips for every pixel centre", () => {
    const { width, height } = layout.outer;
    const inStrip = (x: number, y: number) =>
      layout.strips.some((s) => x >= s.x && x < s.x + s.width && y >= s.y && y < s.y + s.height);
    for (let y = 0; y < height; y++) {
      for (let x = 0; x < width; x++) expect(isOnFrame(x + 0.5, y + 0.5, layout)).toBe(inStrip(x, y));
    }
  });

  it("moves a damage rectangle of the window onto the content", () => {
    const damage = { x: 0, y: 5, width: 120, height: 10 } as WindowRect;
    expect(plain(decorationRectFromContent(damage, 2))).toEqual({ x: 2, y: 7, width: 120, height: 10 });
  });

  it("does not take a plain rectangle where a decoration one is expected", () => {
    // @ts-expect-error: a rectangle without the decoration brand is another space.
    const rect: DecorationRect = { x: 0, y: 0, width: 1, height: 1 };
    expect(rect.width).toBe(1);
  });
});
