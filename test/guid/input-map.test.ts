import fc from "fast-check";
import { describe, expect, it } from "vitest";

import {
  AXIS_HORIZONTAL,
  AXIS_VERTICAL,
  AxisAccumulator,
  BTN_BACK,
  BTN_EXTRA,
  BTN_FORWARD,
  BTN_LEFT,
  BTN_MIDDLE,
  BTN_RIGHT,
  BTN_SIDE,
  Button1Mask,
  Button5Mask,
  KEYMAP_VECTOR_BYTES,
  MAX_WHEEL_CLICKS,
  buttonMask,
  keymapNotifyVector,
  xButtonFromLinux,
  xKeycodeFromEvdev,
  xStateFromModifiers,
} from "../../guid/host/input-map.ts";

describe("xButtonFromLinux", () => {
  it("maps the Linux buttons to X's numbers", () => {
    expect(BTN_LEFT).toBe(0x110);
    expect(BTN_BACK).toBe(0x116);
    expect(xButtonFromLinux(BTN_LEFT)).toBe(1);
    expect(xButtonFromLinux(BTN_RIGHT)).toBe(3);
    expect(xButtonFromLinux(BTN_MIDDLE)).toBe(2);
    expect(xButtonFromLinux(BTN_SIDE)).toBe(8);
    expect(xButtonFromLinux(BTN_EXTRA)).toBe(9);
    expect(xButtonFromLinux(BTN_FORWARD)).toBe(9);
    expect(xButtonFromLinux(BTN_BACK)).toBe(8);
  });

  it("has no X button for other codes", () => {
    for (const code of [0, -1, 1, 0x10f, 0x117, 0x11f, 0x120, 0x14a, 2 ** 31, 2 ** 32 - 1, 0x110 + 0.5, Number.NaN]) {
      expect(xButtonFromLinux(code)).toBeNull();
    }
  });
});

describe("buttonMask", () => {
  it("gives Button1Mask..Button5Mask for buttons 1..5", () => {
    expect([1, 2, 3, 4, 5].map(buttonMask)).toEqual([0x100, 0x200, 0x400, 0x800, 0x1000]);
    expect(buttonMask(1)).toBe(Button1Mask);
    expect(buttonMask(5)).toBe(Button5Mask);
  });

  it("gives 0 for buttons without a mask bit", () => {
    for (const button of [0, 6, 7, 8, 9, -1, 2 ** 31, 2 ** 32 - 1, 1.5, Number.NaN]) expect(buttonMask(button)).toBe(0);
  });
});

describe("xStateFromModifiers", () => {
  it("ors depressed, latched and locked", () => {
    expect(xStateFromModifiers(0x1, 0, 0)).toBe(0x1);
    expect(xStateFromModifiers(0x4, 0x1, 0x2)).toBe(0x7);
    expect(xStateFromModifiers(0, 0, 0x10)).toBe(0x10);
    expect(xStateFromModifiers(0x1 | 0x4, 0, 0)).toBe(0x5);
  });

  it("keeps only the eight real modifiers, never a button bit", () => {
    expect(xStateFromModifiers(0x100, 0x200, 0x1000)).toBe(0);
    expect(xStateFromModifiers(0xffffffff, 0, 0)).toBe(0xff);
    expect(xStateFromModifiers(-1, -1, -1)).toBe(0xff);
    expect(xStateFromModifiers(2 ** 31, 0, 0)).toBe(0);
    fc.assert(
      fc.property(fc.nat(), fc.nat(), fc.nat(), (a, b, c) => {
        const state = xStateFromModifiers(a, b, c);
        expect(state & ~0xff).toBe(0);
      }),
    );
  });
});

describe("AxisAccumulator", () => {
  it("sends |discrete| clicks in the discrete direction", () => {
    const acc = new AxisAccumulator();
    expect(acc.accumulate(AXIS_VERTICAL, 15, 1)).toEqual({ button: 5, clicks: 1 });
    expect(acc.accumulate(AXIS_VERTICAL, -30, -2)).toEqual({ button: 4, clicks: 2 });
    expect(acc.accumulate(AXIS_HORIZONTAL, -15, -1)).toEqual({ button: 6, clicks: 1 });
    expect(acc.accumulate(AXIS_HORIZONTAL, 45, 3)).toEqual({ button: 7, clicks: 3 });
  });

  it("sends one click per 10 units of a smooth scroll and keeps the rest", () => {
    const acc = new AxisAccumulator();
    expect(acc.accumulate(AXIS_VERTICAL, 4)).toBeNull();
    expect(acc.accumulate(AXIS_VERTICAL, 4)).toBeNull();
    expect(acc.accumulate(AXIS_VERTICAL, 4)).toEqual({ button: 5, clicks: 1 });
    expect(acc.accumulate(AXIS_VERTICAL, 28)).toEqual({ button: 5, clicks: 3 });
    expect(acc.accumulate(AXIS_VERTICAL, 9.99)).toBeNull();
    expect(acc.accumulate(AXIS_VERTICAL, 0.02)).toEqual({ button: 5, clicks: 1 });
  });

  it("sends 3 clicks for two libinput detents of 15 without discrete steps", () => {
    const acc = new AxisAccumulator();
    expect(acc.accumulate(AXIS_VERTICAL, -15)).toEqual({ button: 4, clicks: 1 });
    expect(acc.accumulate(AXIS_VERTICAL, -15)).toEqual({ button: 4, clicks: 2 });
  });

  it("drops the remainder when the direction changes", () => {
    const acc = new AxisAccumulator();
    expect(acc.accumulate(AXIS_VERTICAL, 9)).toBeNull();
    expect(acc.accumulate(AXIS_VERTICAL, -9)).toBeNull();
    expect(acc.accumulate(AXIS_VERTICAL, -2)).toEqual({ button: 4, clicks: 1 });
    expect(acc.accumulate(AXIS_VERTICAL, 9)).toBeNull();
    expect(acc.accumulate(AXIS_VERTICAL, 1)).toEqual({ button: 5, clicks: 1 });
  });

  it("keeps the two axes apart", () => {
    const acc = new AxisAccumulator();
    expect(acc.accumulate(AXIS_VERTICAL, 6)).toBeNull();
    expect(acc.accumulate(AXIS_HORIZONTAL, -6)).toBeNull();
    expect(acc.accumulate(AXIS_VERTICAL, 6)).toEqual({ button: 5, clicks: 1 });
    expect(acc.accumulate(AXIS_HORIZONTAL, -6)).toEqual({ button: 6, clicks: 1 });
  });

  it("clears the smooth remainder of an axis on a discrete event and on reset", () => {
    const acc = new AxisAccumulator();
    acc.accumulate(AXIS_VERTICAL, 9);
    acc.accumulate(AXIS_VERTICAL, 15, 1);
    expect(acc.accumulate(AXIS_VERTICAL, 9)).toBeNull();
    acc.reset();
    expect(acc.accumulate(AXIS_VERTICAL, 9)).toBeNull();
  });

  it("ignores unknown axes, zero and non-finite values", () => {
    const acc = new AxisAccumulator();
    for (const axis of [2, -1, 2 ** 31, 2 ** 32 - 1, 0.5]) expect(acc.accumulate(axis, 100, 1)).toBeNull();
    expect(acc.accumulate(AXIS_VERTICAL, 0)).toBeNull();
    expect(acc.accumulate(AXIS_VERTICAL, Number.NaN)).toBeNull();
    expect(acc.accumulate(AXIS_VERTICAL, Number.POSITIVE_INFINITY)).toBeNull();
    expect(acc.accumulate(AXIS_VERTICAL, 0, 0)).toBeNull();
    expect(acc.accumulate(AXIS_VERTICAL, 9)).toBeNull();
  });

  it(`sends at most ${MAX_WHEEL_CLICKS} clicks for one event`, () => {
    const acc = new AxisAccumulator();
    expect(acc.accumulate(AXIS_VERTICAL, 2 ** 31)).toEqual({ button: 5, clicks: MAX_WHEEL_CLICKS });
    expect(acc.accumulate(AXIS_VERTICAL, 9)).toBeNull();
    expect(acc.accumulate(AXIS_VERTICAL, -1e300, -(2 ** 31))).toEqual({ button: 4, clicks: MAX_WHEEL_CLICKS });
  });

  it("sends as many clicks as the total value allows, in one direction", () => {
    fc.assert(
      fc.property(fc.array(fc.double({ min: 0.01, max: 100, noNaN: true }), { maxLength: 50 }), (values) => {
        const acc = new AxisAccumulator();
        let clicks = 0;
        for (const value of values) {
          const out = acc.accumulate(AXIS_HORIZONTAL, value);
          if (out) {
            expect(out.button).toBe(7);
            clicks += out.clicks;
          }
        }
        const total = values.reduce((sum, v) => sum + v, 0);
        expect(Math.abs(clicks - Math.floor(total / 10))).toBeLessThanOrEqual(1);
        expect(clicks).toBeLessThanOrEqual(total / 10 + 1e-9);
      }),
    );
  });
});

describe("xKeycodeFromEvdev", () => {
  it("adds 8", () => {
    expect(xKeycodeFromEvdev(0)).toBe(8);
    expect(xKeycodeFromEvdev(1)).toBe(9);
    expect(xKeycodeFromEvdev(46)).toBe(54);
    expect(xKeycodeFromEvdev(247)).toBe(255);
  });

  it("refuses codes without an X keycode", () => {
    for (const code of [248, 0x2ff, -1, -8, 2 ** 31, 2 ** 32 - 1, 1.5, Number.NaN]) {
      expect(xKeycodeFromEvdev(code)).toBeNull();
    }
  });
});

describe("keymapNotifyVector", () => {
  it("is 32 zero bytes when no key is held", () => {
    expect(keymapNotifyVector([])).toEqual(new Uint8Array(KEYMAP_VECTOR_BYTES));
  });

  it("sets bit k%8 of byte k/8 for X keycode k = evdev + 8", () => {
    const keys = keymapNotifyVector([46, 42, 29]);
    const expected = new Uint8Array(32);
    expected[6] = (1 << (54 % 8)) | (1 << (50 % 8)); // KEY_C → 54 and KEY_LEFTSHIFT → 50: byte 6, bits 6 and 2
    expected[4] = 1 << (37 % 8); // KEY_LEFTCTRL → 37: byte 4, bit 5
    expect(keys).toEqual(expected);
    expect(keys[6]).toBe(0b0100_0100);
    expect(keys[4]).toBe(0b0010_0000);
  });

  it("covers keycodes 8 and 255 and skips codes without one", () => {
    const keys = keymapNotifyVector(new Set([0, 247, 248, -1, 1000, 2 ** 32 - 1, Number.NaN]));
    expect(keys[1]).toBe(0x01);
    expect(keys[31]).toBe(0x80);
    expect(keys.reduce((n, byte) => n + byte.toString(2).replaceAll("0", "").length, 0)).toBe(2);
  });

  it("holds exactly the keys given", () => {
    fc.assert(
      fc.property(fc.uniqueArray(fc.integer({ min: 0, max: 247 }), { maxLength: 60 }), (held) => {
        const keys = keymapNotifyVector(held);
        expect(keys.length).toBe(32);
        const back: number[] = [];
        for (let k = 0; k < 256; k++) if ((keys[k >> 3]! >> (k & 7)) & 1) back.push(k - 8);
        expect(back).toEqual([...held].sort((a, b) => a - b));
      }),
    );
  });
});
