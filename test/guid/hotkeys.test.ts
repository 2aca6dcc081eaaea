import fc from "fast-check";
import { describe, expect, it } from "vitest";

import {
  CONTROL_MASK,
  HOTKEY_MODIFIER_MASK,
  LOCK_MASK,
  MOD1_MASK,
  MOD2_MASK,
  MOD3_MASK,
  MOD4_MASK,
  MOD5_MASK,
  SHIFT_MASK,
  matchesSequence,
  parseKeySequence,
  type KeySequence,
} from "../../guid/hotkeys.ts";

function parsed(text: string): KeySequence {
  const sequence = parseKeySequence(text);
  if (sequence === null) throw new Error(`${text} parsed as disabled`);
  return sequence;
}

describe("X modifier masks", () => {
  it("are the X.h bits", () => {
    expect([SHIFT_MASK, LOCK_MASK, CONTROL_MASK, MOD1_MASK, MOD2_MASK, MOD3_MASK, MOD4_MASK, MOD5_MASK]).toEqual([
      0x1, 0x2, 0x4, 0x8, 0x10, 0x20, 0x40, 0x80,
    ]);
  });

  it("compare Shift, Control, Mod1, Mod3 and Mod4 only (upstream's mask 0x6d)", () => {
    expect(HOTKEY_MODIFIER_MASK).toBe(0x6d);
    expect(HOTKEY_MODIFIER_MASK & (LOCK_MASK | MOD2_MASK | MOD5_MASK)).toBe(0);
  });
});

describe("parseKeySequence", () => {
  it("parses the default copy sequence Ctrl-Shift-c", () => {
    expect(parseKeySequence("Ctrl-Shift-c")).toEqual({
      modifiers: CONTROL_MASK | SHIFT_MASK,
      keysym: "c",
      text: "Ctrl-Shift-c",
    });
  });

  it.each([
    ["Mod4-c", MOD4_MASK, "c"],
    ["Ctrl-Alt-v", CONTROL_MASK | MOD1_MASK, "v"],
    ["Control-Insert", CONTROL_MASK, "Insert"],
    ["Shift-Insert", SHIFT_MASK, "Insert"],
    ["Mod1-Mod3-F12", MOD1_MASK | MOD3_MASK, "F12"],
    ["ctrl-SHIFT-alt-mod4-x", CONTROL_MASK | SHIFT_MASK | MOD1_MASK | MOD4_MASK, "x"],
    ["Alt-Mod1-KP_Enter", MOD1_MASK, "KP_Enter"],
    ["F12", 0, "F12"],
  ])("parses %s", (text, modifiers, keysym) => {
    expect(parseKeySequence(text)).toEqual({ modifiers, keysym, text });
  });

  it("keeps the key name as written (Ctrl-Shift-C keeps C)", () => {
    expect(parsed("Ctrl-Shift-C").keysym).toBe("C");
  });

  it.each(["none", "None", "NONE", "disable", "Disable", "DISABLE"])("turns the hotkey off for %s", (text) => {
    expect(parseKeySequence(text)).toBeNull();
  });

  it.each([
    ["", /empty/],
    ["Ctrl-", /no key after the last '-'/],
    ["Ctrl-Shift", /no key after the modifiers/],
    ["Shift", /no key after the modifiers/],
    ["Ctrl--c", /empty part/],
    ["-c", /empty part/],
    ["Hyper-c", /unknown modifier "Hyper"/],
    ["Super-c", /unknown modifier "Super"/],
    ["Mod2-c", /Mod2 \(usually Num Lock\) is ignored/],
    ["Mod5-c", /Mod5 \(usually AltGr\) is ignored/],
    ["Lock-c", /Lock \(Caps Lock\) is ignored/],
    ["Ctrl-Shift-c ", /key name "c " has characters outside/],
    ["Ctrl-é", /key name "é" has characters outside/],
    ["Ctrl-+", /key name "\+" has characters outside/],
    ["Ctrl Shift c", /key name "Ctrl Shift c" has characters outside/],
  ])("rejects %j with a RangeError saying why", (text, why) => {
    expect(() => parseKeySequence(text)).toThrow(RangeError);
    expect(() => parseKeySequence(text)).toThrow(why);
    expect(() => parseKeySequence(text)).toThrow(/^invalid key sequence/);
  });

  it("reads disabled (with a d) as a key name, not as the off switch, as upstream does", () => {
    expect(parseKeySequence("disabled")).toEqual({ modifiers: 0, keysym: "disabled", text: "disabled" });
  });

  it("bounds a 10 000-character sequence to a short error message", () => {
    for (const text of [`Bogus-${"x".repeat(10_000)}`, `Ctrl-${"é".repeat(10_000)}`]) {
      expect(() => parseKeySequence(text)).toThrow(RangeError);
      expect(() => parseKeySequence(text)).toThrow(/^.{1,300}$/s);
    }
  });

  it("never throws anything but RangeError, and its modifiers stay within the compared mask", () => {
    fc.assert(
      fc.property(fc.string({ unit: "grapheme-ascii", maxLength: 40 }), (text) => {
        try {
          const sequence = parseKeySequence(text);
          if (sequence !== null) {
            expect(sequence.modifiers & ~HOTKEY_MODIFIER_MASK).toBe(0);
            expect(sequence.keysym).toMatch(/^[A-Za-z0-9_]+$/);
            expect(sequence.text).toBe(text);
          }
        } catch (error) {
          expect(error).toBeInstanceOf(RangeError);
        }
      }),
      { numRuns: 2000 },
    );
  });
});

describe("matchesSequence", () => {
  const copy = parsed("Ctrl-Shift-c");

  it("matches Ctrl+Shift+C whose key produces c and C", () => {
    expect(matchesSequence(copy, CONTROL_MASK | SHIFT_MASK, ["c", "C"])).toBe(true);
  });

  it("matches when only level 2 is given", () => {
    expect(matchesSequence(copy, CONTROL_MASK | SHIFT_MASK, ["C"])).toBe(true);
  });

  it("matches a sequence written in upper case against the lower-case keysym", () => {
    expect(matchesSequence(parsed("Ctrl-Shift-C"), CONTROL_MASK | SHIFT_MASK, ["c"])).toBe(true);
  });

  it("ignores Num Lock (Mod2), Caps Lock (Lock) and AltGr (Mod5) being on", () => {
    const state = CONTROL_MASK | SHIFT_MASK | MOD2_MASK | LOCK_MASK | MOD5_MASK;
    expect(matchesSequence(copy, state, ["c", "C"])).toBe(true);
  });

  it("ignores the button bits above the modifiers", () => {
    expect(matchesSequence(copy, CONTROL_MASK | SHIFT_MASK | 0x100 | 0x2000, ["c", "C"])).toBe(true);
  });

  it.each([
    ["Ctrl alone", CONTROL_MASK],
    ["Shift alone", SHIFT_MASK],
    ["no modifier", 0],
    ["one modifier too many (Alt)", CONTROL_MASK | SHIFT_MASK | MOD1_MASK],
    ["one modifier too many (Mod4)", CONTROL_MASK | SHIFT_MASK | MOD4_MASK],
    ["one modifier too many (Mod3)", CONTROL_MASK | SHIFT_MASK | MOD3_MASK],
  ])("does not match with %s", (_what, state) => {
    expect(matchesSequence(copy, state, ["c", "C"])).toBe(false);
  });

  it("does not match another key", () => {
    expect(matchesSequence(copy, CONTROL_MASK | SHIFT_MASK, ["v", "V"])).toBe(false);
    expect(matchesSequence(copy, CONTROL_MASK | SHIFT_MASK, [])).toBe(false);
  });

  it("compares only single letters case-insensitively: Insert is not insert", () => {
    const insert = parsed("Shift-Insert");
    expect(matchesSequence(insert, SHIFT_MASK, ["Insert"])).toBe(true);
    expect(matchesSequence(insert, SHIFT_MASK, ["insert"])).toBe(false);
    expect(matchesSequence(parsed("Ctrl-F1"), CONTROL_MASK, ["f1"])).toBe(false);
  });

  it("does not take a multi-letter keysym for a letter (c is not cedilla)", () => {
    expect(matchesSequence(copy, CONTROL_MASK | SHIFT_MASK, ["cedilla", "Cyrillic_es"])).toBe(false);
  });

  it("matches a modifier-free key only with no compared modifier down", () => {
    const f12 = parsed("F12");
    expect(matchesSequence(f12, MOD2_MASK, ["F12"])).toBe(true);
    expect(matchesSequence(f12, SHIFT_MASK, ["F12"])).toBe(false);
  });

  it("matches exactly when the compared modifier bits are the sequence's (property)", () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 0xffff }), (state) => {
        expect(matchesSequence(copy, state, ["c", "C"])).toBe(
          (state & HOTKEY_MODIFIER_MASK) === (CONTROL_MASK | SHIFT_MASK),
        );
      }),
    );
  });
});
