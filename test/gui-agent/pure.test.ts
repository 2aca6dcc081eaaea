import fc from "fast-check";
import { describe, expect, it } from "vitest";

import { cursorFromName, CURSOR_DEFAULT } from "../../gui-agent/cursors.ts";
import { copyBlock, type PixelBuffer } from "../../gui-agent/damage.ts";
import { coalesceDamage, MAX_DAMAGE_RECTS } from "../../compositor/damage.ts";
import { contains, type Rect } from "../../compositor/geometry.ts";
import {
  BTN_LEFT,
  BTN_MIDDLE,
  BTN_RIGHT,
  evdevFromXKeycode,
  modifiersFromXState,
  pointerActionFromXButton,
} from "../../gui-agent/input-map.ts";
import { defaultPositioner, Edge, FLIP_Y, positionPopup, RESIZE_X, SLIDE_X } from "../../compositor/positioner.ts";
import { withStartup } from "../helpers/processes.ts";

const screen: Rect = { x: 0, y: 0, width: 1920, height: 1080 };

function pixels(width: number, height: number, stride = width * 4, fill?: (i: number) => number): PixelBuffer {
  const bytes = new Uint8Array(stride * height);
  if (fill !== undefined) for (let i = 0; i < bytes.length; i++) bytes[i] = fill(i);
  return { bytes, stride, width, height };
}

describe("damage coalescing", () => {
  it("keeps one 64×64 rectangle as it is", () => {
    expect(coalesceDamage([{ x: 100, y: 200, width: 64, height: 64 }], screen)).toEqual([
      { x: 100, y: 200, width: 64, height: 64 },
    ]);
  });

  it("clips to the window and drops empty rectangles", () => {
    expect(
      coalesceDamage(
        [
          { x: -10, y: -10, width: 20, height: 20 },
          { x: 5000, y: 0, width: 10, height: 10 },
          { x: 3, y: 3, width: 0, height: 9 },
        ],
        screen,
      ),
    ).toEqual([{ x: 0, y: 0, width: 10, height: 10 }]);
  });

  it("merges neighbouring glyph-sized rectangles but keeps far apart ones apart", () => {
    const glyphs = Array.from({ length: 10 }, (_, i) => ({ x: 10 + i * 8, y: 10, width: 8, height: 16 }));
    const far = { x: 1800, y: 1000, width: 8, height: 16 };
    const out = coalesceDamage([...glyphs, far], screen);
    expect(out).toEqual([{ x: 10, y: 10, width: 80, height: 16 }, far]);
  });

  it("always covers every damaged pixel with at most the limit of rectangles", () => {
    const rect = fc.record({
      x: fc.integer({ min: -100, max: 2000 }),
      y: fc.integer({ min: -100, max: 1200 }),
      width: fc.integer({ min: 0, max: 400 }),
      height: fc.integer({ min: 0, max: 400 }),
    });
    fc.assert(
      fc.property(fc.array(rect, { maxLength: 200 }), (rects) => {
        const out = coalesceDamage(rects, screen);
        expect(out.length).toBeLessThanOrEqual(MAX_DAMAGE_RECTS);
        for (const r of out) expect(contains(screen, r)).toBe(true);
        // Sample points of each input rectangle must be covered by some output rectangle.
        for (const r of rects) {
          const cx = Math.min(Math.max(r.x, 0), 1919);
          const cy = Math.min(Math.max(r.y, 0), 1079);
          const inside =
            r.width > 0 && r.height > 0 && cx >= r.x && cx < r.x + r.width && cy >= r.y && cy < r.y + r.height;
          if (!inside) continue;
          expect(out.some((o) => cx >= o.x && cx < o.x + o.width && cy >= o.y && cy < o.y + o.height)).toBe(true);
        }
      }),
    );
  });
});

describe("copyBlock", () => {
  it("copies exactly the rectangle's bytes between buffers of different strides", () => {
    const source = pixels(100, 50, 100 * 4 + 64, (i) => i % 251);
    const target = pixels(100, 50);
    const copied = copyBlock(source, 10, 5, target, 10, 5, 64, 20);
    expect(copied).toBe(64 * 20 * 4);
    for (let y = 0; y < 50; y++) {
      for (let x = 0; x < 100; x++) {
        const inside = x >= 10 && x < 74 && y >= 5 && y < 25;
        const got = target.bytes.subarray(y * 400 + x * 4, y * 400 + x * 4 + 4);
        const want = inside ? source.bytes.subarray(y * 464 + x * 4, y * 464 + x * 4 + 4) : new Uint8Array(4);
        expect([...got]).toEqual([...want]);
      }
    }
  });

  it("copies a full-width band in one piece and clips to the smaller buffer", () => {
    const source = pixels(64, 64, 256, () => 7);
    const target = pixels(64, 32);
    expect(copyBlock(source, 0, 0, target, 0, 0, 64, 64)).toBe(64 * 32 * 4);
    expect(target.bytes.every((b) => b === 7)).toBe(true);
  });

  it("moves a block between offsets, clipped where the source starts outside its buffer", () => {
    const source = pixels(8, 8, 32, (i) => i & 0xff);
    const target = pixels(8, 8);
    // Source (-2, 0) is off the left edge: the two columns there are not copied.
    expect(copyBlock(source, -2, 0, target, 3, 1, 4, 2)).toBe(2 * 2 * 4);
    expect([...target.bytes.subarray(1 * 32 + 5 * 4, 1 * 32 + 7 * 4)]).toEqual([...source.bytes.subarray(0, 8)]);
    expect(target.bytes.subarray(1 * 32 + 3 * 4, 1 * 32 + 5 * 4).every((b) => b === 0)).toBe(true);
  });
});

describe("input translation", () => {
  it("turns X keycodes into evdev codes (minus 8) and refuses those below 8", () => {
    expect(evdevFromXKeycode(38)).toBe(30); // 'a'
    expect(evdevFromXKeycode(9)).toBe(1); // Escape
    expect(evdevFromXKeycode(7)).toBeUndefined();
    expect(evdevFromXKeycode(256)).toBeUndefined();
  });

  it("maps X buttons 1/2/3 to left/middle/right and 4-7 to scroll steps", () => {
    expect(pointerActionFromXButton(1)).toEqual({ kind: "button", code: BTN_LEFT });
    expect(pointerActionFromXButton(2)).toEqual({ kind: "button", code: BTN_MIDDLE });
    expect(pointerActionFromXButton(3)).toEqual({ kind: "button", code: BTN_RIGHT });
    expect(pointerActionFromXButton(4)).toEqual({ kind: "axis", axis: 0, discrete: -1 });
    expect(pointerActionFromXButton(7)).toEqual({ kind: "axis", axis: 1, discrete: 1 });
    expect(pointerActionFromXButton(0)).toEqual({ kind: "none" });
  });

  it("splits the X state into held modifiers and locks, ignoring button bits", () => {
    expect(modifiersFromXState(0x1 | 0x4 | 0x100)).toEqual({ depressed: 0x5, latched: 0, locked: 0, group: 0 });
    expect(modifiersFromXState(0x2 | 0x10 | 0x8)).toEqual({ depressed: 0x8, latched: 0, locked: 0x12, group: 0 });
  });
});

describe("cursor names", () => {
  it("maps CSS and X names to 0x100 + the cursor-font glyph, unknown names to the default", () => {
    expect(cursorFromName("pointer")).toBe(0x100 + 60);
    expect(cursorFromName("text")).toBe(0x100 + 152);
    expect(cursorFromName("wait")).toBe(0x100 + 150);
    expect(cursorFromName("progress")).toBe(0x100 + 150);
    expect(cursorFromName("n-resize")).toBe(0x100 + 138);
    expect(cursorFromName("left_ptr")).toBe(0x100 + 68);
    expect(cursorFromName("no-such-cursor")).toBe(CURSOR_DEFAULT);
  });
});

describe("popup positioning", () => {
  const menu = (overrides: Partial<ReturnType<typeof defaultPositioner>>) => ({
    ...defaultPositioner(),
    width: 200,
    height: 300,
    anchorRect: { x: 100, y: 20, width: 50, height: 20 },
    anchor: Edge.BottomLeft,
    gravity: Edge.BottomRight,
    ...overrides,
  });

  it("puts a menu below its anchor when it fits", () => {
    expect(positionPopup(menu({}), screen)).toEqual({ x: 100, y: 40, width: 200, height: 300 });
  });

  it("flips a menu above its anchor when it would leave the bottom of the screen", () => {
    const state = menu({ anchorRect: { x: 100, y: 900, width: 50, height: 20 }, constraintAdjustment: FLIP_Y });
    expect(positionPopup(state, screen)).toEqual({ x: 100, y: 600, width: 200, height: 300 });
  });

  it("slides a menu left to stay on screen, and resizes when sliding is not allowed", () => {
    const anchorRect = { x: 1850, y: 20, width: 50, height: 20 };
    expect(positionPopup(menu({ anchorRect, constraintAdjustment: SLIDE_X }), screen).x).toBe(1720);
    expect(positionPopup(menu({ anchorRect, constraintAdjustment: RESIZE_X }), screen)).toEqual({
      x: 1850,
      y: 40,
      width: 70,
      height: 300,
    });
  });

  it("leaves an unconstrained popup where the app asked, even off screen", () => {
    const state = menu({ anchorRect: { x: 1900, y: 1070, width: 10, height: 10 } });
    expect(positionPopup(state, screen)).toEqual({ x: 1900, y: 1080, width: 200, height: 300 });
  });
});

// compileKeymap runs xkbcli: each call is a process start, which the guard allows for.
describe("keymap", { timeout: withStartup(10_000, 2) }, async () => {
  const { compileKeymap, parseModifierKeys, KeymapError } = await import("../../compositor/keymap.ts");

  it("compiles the default us keymap from the system's XKB data, with its modifier keys", async () => {
    const keymap = await compileKeymap();
    expect(keymap.text.startsWith("xkb_keymap {")).toBe(true);
    expect(keymap.modifierKeys.get(42)).toBe(0x1); // KEY_LEFTSHIFT
    expect(keymap.modifierKeys.get(29)).toBe(0x4); // KEY_LEFTCTRL
    expect(keymap.modifierKeys.get(56)).toBe(0x8); // KEY_LEFTALT
    expect(keymap.modifierKeys.get(58)).toBe(0x2); // KEY_CAPSLOCK
    expect(keymap.modifierKeys.get(125)).toBe(0x40); // KEY_LEFTMETA
  });

  it("compiles another layout on request", async () => {
    const keymap = await compileKeymap({ layout: "de" });
    // German keyboards swap Y and Z: the key right of T (<AD06>) types z.
    expect(keymap.text).toMatch(/key <AD06>\s*\{[^}]*\[\s*z,/);
  });

  it("names the layout it could not compile", async () => {
    await expect(compileKeymap({ layout: "no-such-layout" })).rejects.toThrow(KeymapError);
    await expect(compileKeymap({ layout: "no-such-layout" })).rejects.toThrow(/no-such-layout/);
  });

  it("reads modifier keys through aliases", () => {
    const text = [
      "xkb_keycodes {",
      "  <LFSH> = 50;",
      "  alias <SHFT> = <LFSH>;",
      "};",
      "modifier_map Shift { <SHFT> };",
      "modifier_map Bogus { <LFSH> };",
    ].join("\n");
    expect([...parseModifierKeys(text)]).toEqual([[42, 1]]);
  });
});
