import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import path from "node:path";

import fc from "fast-check";
import { beforeAll, describe, expect, it, vi } from "vitest";

import { parseKeymap, type HostKeymap } from "../../guid/host/keymap.ts";
import { requireProgram } from "../helpers/compositors.ts";
import { repoRoot, withStartup } from "../helpers/processes.ts";

// Real programs start here (compositors, wayvnc, agents, apps, xkbcli): their start-up may take what a
// loaded machine needs; each event a test waits for keeps its own bound.
vi.setConfig({ testTimeout: withStartup(30_000, 2), hookTimeout: withStartup(30_000, 3) });

/** Real keymaps: `xkbcli compile-keymap --layout <l>` (libxkbcommon 1.5, xkb-data 2.35). */
function fixture(layout: "us" | "de" | "fr"): string {
  return readFileSync(path.join(repoRoot, "test/guid/fixtures", `keymap-${layout}.xkb`), "utf8");
}

const KEY_ESC = 1;
const KEY_MINUS = 12;
const KEY_Q = 16;
const KEY_W = 17;
const KEY_Y = 21;
const KEY_A = 30;
const KEY_Z = 44;
const KEY_LEFTSHIFT = 42;
const KEY_C = 46;
const KEY_V = 47;
const KEY_SEMICOLON = 39;
const KEY_F1 = 59;
const KEY_COMPOSE = 127;

/** A keymap text with the given sections, in the wrapper xkbcli writes. */
function keymap(keycodes: string, symbols: string): string {
  return `xkb_keymap {\nxkb_keycodes "test" {\n${keycodes}\n};\nxkb_symbols "test" {\n${symbols}\n};\n};\n`;
}

const US_CODES = `
  minimum = 8;
  maximum = 255;
  <ESC> = 9;
  <AC03> = 40;
  <AB03> = 54;
  <AB04> = 55;
  <LFSH> = 50;
  <COMP> = 135;
  indicator 1 = "Caps Lock";
  alias <MENU> = <COMP>;
  alias <LatC> = <AB03>;
  alias <LatCC> = <LatC>;
`;

describe("parseKeymap on real keymaps", () => {
  const us = parseKeymap(fixture("us"));
  const de = parseKeymap(fixture("de"));
  const fr = parseKeymap(fixture("fr"));

  it("gives c and C for KEY_C in us", () => {
    expect(us.keysymsOf(KEY_C)).toEqual(["c", "C"]);
    expect(us.keysymsOf(KEY_V)).toEqual(["v", "V"]);
    expect(us.codesFor("c")).toEqual([KEY_C]);
    expect(us.codesFor("V")).toEqual([KEY_V]);
  });

  it("reads keys of one level and keys written with type= and symbols[Group1]=", () => {
    expect(us.keysymsOf(KEY_ESC)).toEqual(["Escape"]);
    expect(us.keysymsOf(KEY_LEFTSHIFT)).toEqual(["Shift_L"]);
    expect(us.keysymsOf(KEY_F1)).toEqual(["F1", "F1"]);
    expect(us.keysymsOf(KEY_COMPOSE)).toEqual(["Menu"]);
    expect(us.keysymsOf(KEY_SEMICOLON)).toEqual(["semicolon", "colon"]);
  });

  it("finds a on KEY_Q and q on KEY_A in fr", () => {
    expect(fr.codesFor("a")).toEqual([KEY_Q]);
    expect(fr.codesFor("A")).toEqual([KEY_Q]);
    expect(fr.keysymsOf(KEY_Q)).toEqual(["a", "A"]);
    expect(fr.keysymsOf(KEY_A)).toEqual(["q", "Q"]);
    expect(fr.keysymsOf(KEY_W)).toEqual(["z", "Z"]);
    expect(fr.codesFor("c")).toEqual([KEY_C]);
  });

  it("swaps y and z in de and puts ssharp on KEY_MINUS", () => {
    expect(de.keysymsOf(KEY_Y)).toEqual(["z", "Z"]);
    expect(de.keysymsOf(KEY_Z)).toEqual(["y", "Y"]);
    expect(de.codesFor("ssharp")).toEqual([KEY_MINUS]);
    expect(de.keysymsOf(KEY_MINUS)).toEqual(["ssharp", "question"]);
  });

  it("knows nothing of codes the keymap does not define", () => {
    for (const code of [0, -1, -8, 0x300, 2 ** 31, 2 ** 32 - 1, 1.5, Number.NaN]) {
      expect(us.keysymsOf(code)).toEqual([]);
    }
    expect(us.codesFor("NoSymbol")).toEqual([]);
    expect(us.codesFor("no_such_keysym")).toEqual([]);
  });

  it("reads the same keymap with the NUL terminator of wl_keyboard.keymap", () => {
    const withNul = parseKeymap(`${fixture("us")}\0`);
    for (let code = 0; code < 0x300; code++) expect(withNul.keysymsOf(code)).toEqual(us.keysymsOf(code));
  });

  it("never contradicts the whole keymap when the text is cut anywhere", () => {
    const text = fixture("fr");
    fc.assert(
      fc.property(fc.integer({ min: 0, max: text.length }), (cut) => {
        const part = parseKeymap(text.slice(0, cut));
        for (let code = 0; code < 0x300; code++) {
          const levels = part.keysymsOf(code);
          if (levels.length > 0) expect(levels).toEqual(fr.keysymsOf(code));
        }
      }),
      { numRuns: 200 },
    );
  });
});

describe("parseKeymap on the forms it must read", () => {
  it("reads bare lists, symbols[Group1]=, symbols[1]= and aliases; skips name, include and modifier_map", () => {
    const map = parseKeymap(
      keymap(
        US_CODES,
        `
        name[Group1]="English (US)";
        include "pc+us+inet(evdev)"
        key <ESC> { [ Escape ] };
        key <AC03> { type= "ALPHABETIC", symbols[Group1]= [ d, D ] };
        key <LatCC> { symbols[1]= [ c, C, ccedilla ] };
        key <AB04> { [ v, V ], [ Cyrillic_em, Cyrillic_EM ] };
        key <MENU> { type= "ONE_LEVEL", symbols[Group2]= [ Hyper_R ], symbols[Group1]= [ Menu ] };
        modifier_map Shift { <LFSH> };
        `,
      ),
    );
    expect(map.keysymsOf(KEY_ESC)).toEqual(["Escape"]);
    expect(map.keysymsOf(32)).toEqual(["d", "D"]);
    expect(map.keysymsOf(KEY_C)).toEqual(["c", "C"]);
    expect(map.keysymsOf(KEY_V)).toEqual(["v", "V"]);
    expect(map.keysymsOf(KEY_COMPOSE)).toEqual(["Menu"]);
    expect(map.keysymsOf(KEY_LEFTSHIFT)).toEqual([]);
    expect(map.codesFor("Cyrillic_em")).toEqual([]);
  });

  it("lists every key that gives a keysym, ascending", () => {
    const map = parseKeymap(keymap(US_CODES, "key <AB04> { [ c, C ] };\nkey <ESC> { [ C ] };\nkey <AB03> { [ c ] };"));
    expect(map.codesFor("c")).toEqual([KEY_C, KEY_V]);
    expect(map.codesFor("C")).toEqual([KEY_ESC, KEY_V]);
  });

  it("lets a later definition of a key replace an earlier one, except augment", () => {
    const map = parseKeymap(
      keymap(
        US_CODES,
        "key <AB03> { [ a, A ] };\nkey <AB03> { [ c, C ] };\naugment key <AB03> { [ x, X ] };\nreplace key <ESC> { [ Escape ] };",
      ),
    );
    expect(map.keysymsOf(KEY_C)).toEqual(["c", "C"]);
    expect(map.keysymsOf(KEY_ESC)).toEqual(["Escape"]);
  });

  it("gives NoSymbol for an empty level or a level of several keysyms", () => {
    const map = parseKeymap(
      keymap(US_CODES, "key <AB03> { [ NoSymbol, C ] };\nkey <AB04> { [ { v, w }, V ] };\nkey <ESC> { [ ] };"),
    );
    expect(map.keysymsOf(KEY_C)).toEqual(["NoSymbol", "C"]);
    expect(map.keysymsOf(KEY_V)).toEqual(["NoSymbol", "V"]);
    expect(map.keysymsOf(KEY_ESC)).toEqual([]);
    expect(map.codesFor("NoSymbol")).toEqual([]);
  });

  it("skips comments", () => {
    const map = parseKeymap(
      keymap(
        `// <AB03> = 99;\n<AB03> = 54; # the C key\n/* <AB03> = 98; */`,
        "key <AB03> { [ c, /* x, */ C ] }; // done",
      ),
    );
    expect(map.keysymsOf(KEY_C)).toEqual(["c", "C"]);
  });

  it("reads the sections in either order and in a keymap without the wrapper", () => {
    const text = `xkb_symbols { key <AB03> { [ c, C ] }; };\nxkb_keycodes { <AB03> = 54; };`;
    expect(parseKeymap(text).keysymsOf(KEY_C)).toEqual(["c", "C"]);
  });
});

describe("parseKeymap on broken text", () => {
  it("skips a broken key and keeps reading the next one", () => {
    const map = parseKeymap(
      keymap(
        US_CODES,
        "key <AB03> { [ c, C ;\nkey <AB04> { [ v, V ] };\nkey { [ x ] };\nkey <ESC> [ Escape ];\nkey <LFSH> { symbols[Group1] [ Shift_L ] };\nkey <AC03> { [ d, D ] };",
      ),
    );
    expect(map.keysymsOf(KEY_C)).toEqual([]);
    expect(map.keysymsOf(KEY_V)).toEqual(["v", "V"]);
    expect(map.keysymsOf(KEY_ESC)).toEqual([]);
    expect(map.keysymsOf(KEY_LEFTSHIFT)).toEqual([]);
    expect(map.keysymsOf(32)).toEqual(["d", "D"]);
  });

  it("skips keycodes that are not evdev keys plus 8 and aliases that loop", () => {
    const map = parseKeymap(
      keymap(
        "<A> = 7;\n<B> = 776;\n<C> = 4294967295;\n<D> = -9;\n<E> = 0x26;\n<F> = 12abc;\nalias <L1> = <L2>;\nalias <L2> = <L1>;",
        "key <A> { [ a ] };\nkey <B> { [ b ] };\nkey <C> { [ c ] };\nkey <D> { [ d ] };\nkey <E> { [ e ] };\nkey <F> { [ f ] };\nkey <L1> { [ l ] };",
      ),
    );
    for (const keysym of ["a", "b", "c", "d", "f", "l"]) expect(map.codesFor(keysym)).toEqual([]);
    expect(map.codesFor("e")).toEqual([0x26 - 8]);
  });

  it("gives an empty keymap for text that is no keymap", () => {
    for (const text of [
      "",
      "\0",
      "xkb_keycodes",
      "xkb_symbols {",
      "}}}};;;",
      "<<<>>>",
      '"',
      "/*",
      "key <AB03> { [ c ] };",
    ]) {
      const map = parseKeymap(text);
      expect(map.keysymsOf(KEY_C)).toEqual([]);
      expect(map.codesFor("c")).toEqual([]);
    }
  });

  it("never throws on random text or on a random mix of keymap pieces", () => {
    const piece = fc.constantFrom(
      "xkb_keycodes",
      "xkb_symbols",
      "key",
      "alias",
      "symbols",
      "Group1",
      "<AB03>",
      "<LatC>",
      "54",
      "c",
      "C",
      "{",
      "}",
      "[",
      "]",
      "(",
      ")",
      "=",
      ";",
      ",",
      '"',
      "<",
      ">",
      "//",
      "/*",
      "*/",
      "#",
      "\n",
      " ",
    );
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string({ maxLength: 400 }),
          fc.array(piece, { maxLength: 200 }).map((p) => p.join(" ")),
        ),
        (text) => {
          const map = parseKeymap(text);
          for (const code of [KEY_C, 46, 0]) expect(Array.isArray(map.keysymsOf(code))).toBe(true);
          expect(Array.isArray(map.codesFor("c"))).toBe(true);
        },
      ),
      { numRuns: 500 },
    );
  });
});

describe("parseKeymap against libxkbcommon itself", () => {
  beforeAll(() => {
    requireProgram("xkbcli", "libxkbcommon-tools");
  });

  /** evdev codes whose level 1 or 2 of group 1 is `char`, as `xkbcli how-to-type` reports them. */
  function howToType(layout: string, char: string): number[] {
    const out = execFileSync("xkbcli", ["how-to-type", "--layout", layout, String(char.codePointAt(0))], {
      encoding: "utf8",
    });
    const codes = new Set<number>();
    for (const line of out.split("\n")) {
      const row = /^(\d+)\s+\S+\s+(\d+)\s.*\s(\d+)\s+\[/.exec(line);
      if (row && row[2] === "1" && (row[3] === "1" || row[3] === "2")) codes.add(Number(row[1]) - 8);
    }
    return [...codes].sort((a, b) => a - b);
  }

  for (const layout of ["us", "de", "fr"]) {
    it(`finds the same keys for a-z and A-Z in ${layout}`, () => {
      const map: HostKeymap = parseKeymap(
        execFileSync("xkbcli", ["compile-keymap", "--layout", layout], { encoding: "utf8" }),
      );
      const letters = "abcdefghijklmnopqrstuvwxyz";
      for (const char of [...letters, ...letters.toUpperCase()]) {
        expect(map.codesFor(char), char).toEqual(howToType(layout, char));
      }
    });
  }
});
