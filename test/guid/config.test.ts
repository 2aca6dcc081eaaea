import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";

import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

import {
  COLOUR_NAMES,
  ConfigError,
  DEFAULT_GUID_CONFIG,
  MAX_GUID_CONFIG_BYTES,
  MAX_LIBCONFIG_NESTING,
  TRAYICON_MODES,
  loadGuidConfig,
  parseGuidConfig,
  parseLibconfig,
  pastePolicyDecision,
  type ConfigErrorCode,
  type GuidConfig,
  type LibconfigGroup,
  type LibconfigValue,
  type PasteRule,
} from "../../guid/config.ts";
import { CONTROL_MASK, MOD4_MASK, SHIFT_MASK } from "../../guid/hotkeys.ts";

const FILE = "guid.conf";

/** Runs `run` and returns the ConfigError it throws; fails when it returns or throws anything else. */
function configError(run: () => unknown): ConfigError {
  try {
    run();
  } catch (error) {
    if (error instanceof ConfigError) return error;
    throw new Error(`expected a ConfigError, got ${String(error)}`);
  }
  throw new Error("expected a ConfigError, but nothing was thrown");
}

function expectError(run: () => unknown, code: ConfigErrorCode, line: number, message: string | RegExp): ConfigError {
  const error = configError(run);
  expect(error.code).toBe(code);
  expect(error.line).toBe(line);
  expect(error.file).toBe(FILE);
  expect(error.message.startsWith(`${FILE}:${line}: `)).toBe(true);
  if (typeof message === "string") expect(error.message).toBe(message);
  else expect(error.message).toMatch(message);
  return error;
}

function setting(group: LibconfigGroup, name: string): LibconfigValue {
  const found = group.settings.get(name);
  if (found === undefined) throw new Error(`no setting ${name}`);
  return found.value;
}

/** A value without its positions, to compare parse results with plain data. */
type Plain = boolean | bigint | number | string | { array: Plain[] } | { list: Plain[] } | { group: [string, Plain][] };

function plain(value: LibconfigValue): Plain {
  switch (value.kind) {
    case "bool":
    case "int":
    case "float":
    case "string":
      return value.value;
    case "array":
      return { array: value.elements.map(plain) };
    case "list":
      return { list: value.elements.map(plain) };
    case "group":
      return { group: [...value.settings].map(([name, s]) => [name, plain(s.value)]) };
  }
}

function parsePlain(text: string): [string, Plain][] {
  return (plain(parseLibconfig(text, FILE)) as { group: [string, Plain][] }).group;
}

/** A guid.conf with `lines` inside `global`, starting on line 3 (after a comment and the group's opening). */
function globalFile(...lines: string[]): string {
  return ["# test file", "global: {", ...lines.map((l) => `  ${l}`), "};", ""].join("\n");
}

function parseGlobal(...lines: string[]): GuidConfig {
  return parseGuidConfig(globalFile(...lines), FILE);
}

// ---------------------------------------------------------------------------

describe("libconfig: settings", () => {
  it("reads name = value; and name : value;", () => {
    expect(parsePlain("a = 1; b : 2;")).toEqual([
      ["a", 1n],
      ["b", 2n],
    ]);
  });

  it("accepts ; or , or nothing as the terminator, also before } and at the end of the file", () => {
    expect(parsePlain("a = 1, b = 2; c = 3 d = { e = 4 } f = 5")).toEqual([
      ["a", 1n],
      ["b", 2n],
      ["c", 3n],
      ["d", { group: [["e", 4n]] }],
      ["f", 5n],
    ]);
  });

  it("accepts names with -, _, digits and *", () => {
    expect(parsePlain("sys-net_2 = 1; *wild* = 2; A-b = 3;").map(([name]) => name)).toEqual([
      "sys-net_2",
      "*wild*",
      "A-b",
    ]);
  });

  it("parses an empty file, and one of only comments and blank lines, as an empty group", () => {
    expect(parsePlain("")).toEqual([]);
    expect(parsePlain("\n  # one\n// two\n/* three */\n\n")).toEqual([]);
  });

  it("keeps settings in file order", () => {
    expect(parsePlain("z = 1; a = 2; m = 3;").map(([name]) => name)).toEqual(["z", "a", "m"]);
  });

  it("skips a UTF-8 byte order mark at the start", () => {
    expect(parsePlain("\ufeffa = 1;")).toEqual([["a", 1n]]);
  });
});

describe("libconfig: scalars", () => {
  it("reads booleans in any letter case", () => {
    expect(parsePlain("a = true; b = FALSE; c = TrUe; d = fAlSe;")).toEqual([
      ["a", true],
      ["b", false],
      ["c", true],
      ["d", false],
    ]);
  });

  it("reads a name that merely starts with true as a name (truex is not a boolean)", () => {
    expectError(() => parseLibconfig("a = truex;", FILE), "SYNTAX", 1, /expected a value, found the name truex/);
  });

  it("reads decimal integers with sign and leading zeros", () => {
    expect(parsePlain("a = 0; b = -1; c = +42; d = 007; e = 2147483648;")).toEqual([
      ["a", 0n],
      ["b", -1n],
      ["c", 42n],
      ["d", 7n],
      ["e", 2147483648n],
    ]);
  });

  it("reads the L and LL suffixes as 64-bit integers, to the int64 limits", () => {
    expect(parsePlain("a = 5L; b = 9223372036854775807LL; c = -9223372036854775808L;")).toEqual([
      ["a", 5n],
      ["b", 9223372036854775807n],
      ["c", -9223372036854775808n],
    ]);
  });

  it("reads hex integers, upper or lower case, with suffixes, up to 64 bits", () => {
    const group = parseLibconfig("a = 0x1f; b = 0XFF; c = 0xffffffffffffffffL; d = 0x0000000000000000001;", FILE);
    expect(setting(group, "a")).toMatchObject({ kind: "int", value: 31n, hex: true });
    expect(setting(group, "b")).toMatchObject({ kind: "int", value: 255n, hex: true });
    expect(setting(group, "c")).toMatchObject({ value: 2n ** 64n - 1n });
    expect(setting(group, "d")).toMatchObject({ value: 1n });
  });

  it("rejects integers beyond 64 bits with their line number", () => {
    expectError(
      () => parseLibconfig("a = 1;\nb = 9223372036854775808;", FILE),
      "SYNTAX",
      2,
      `${FILE}:2: integer 9223372036854775808 does not fit in 64 bits (column 5)`,
    );
    expectError(() => parseLibconfig("\n\nc = -9223372036854775809L;", FILE), "SYNTAX", 3, /does not fit in 64 bits/);
    expectError(() => parseLibconfig("d = 0x10000000000000000;", FILE), "SYNTAX", 1, /does not fit in 64 bits/);
  });

  it("reads floats in every libconfig form", () => {
    expect(parsePlain("a = 1.5; b = .5; c = 1.; d = 1e3; e = -2.5e-3; f = +1.5E+2; g = 0.0;")).toEqual([
      ["a", 1.5],
      ["b", 0.5],
      ["c", 1],
      ["d", 1000],
      ["e", -0.0025],
      ["f", 150],
      ["g", 0],
    ]);
    expect(setting(parseLibconfig("c = 1.;", FILE), "c").kind).toBe("float");
  });

  it("rejects a lone '.' and a float too large for a double", () => {
    expectError(() => parseLibconfig("a = .;", FILE), "SYNTAX", 1, /unexpected character '\.'/);
    expectError(() => parseLibconfig("a = 1e999;", FILE), "SYNTAX", 1, /float 1e999 is too large/);
  });

  it("reads double-quoted strings with every escape", () => {
    expect(parsePlain(String.raw`a = "back\\slash \"quoted\" \f\n\r\t end";`)).toEqual([
      ["a", 'back\\slash "quoted" \f\n\r\t end'],
    ]);
  });

  it("reads \\xNN escapes, upper and lower case, bytes ≥ 0x80 as UTF-8", () => {
    expect(parsePlain(String.raw`a = "\x41\x62\X43"; b = "caf\xc3\xa9"; c = "\xE2\x82\xAC";`)).toEqual([
      ["a", "AbC"],
      ["b", "café"],
      ["c", "€"],
    ]);
  });

  it("keeps a backslash before any other character, as libconfig", () => {
    expect(parsePlain(String.raw`a = "\q\x4 \"";`)).toEqual([["a", '\\q\\x4 "']]);
  });

  it("rejects \\x00 and \\x bytes that are not UTF-8", () => {
    expectError(() => parseLibconfig(String.raw`a = "ab\x00";`, FILE), "SYNTAX", 1, /\\x00 is not allowed/);
    expectError(() => parseLibconfig(String.raw`a = "\xff";`, FILE), "SYNTAX", 1, /not valid UTF-8/);
  });

  it("concatenates adjacent string literals, across lines and comments", () => {
    const group = parseLibconfig('\na = "one " "two"\n  /* c */ " three" # c\n  "!";\nb = 1;', FILE);
    expect(setting(group, "a")).toEqual({ kind: "string", value: "one two three!", line: 2, column: 5 });
    expect(group.settings.get("b")?.line).toBe(5);
  });

  it("joins \\x bytes split over adjacent literals before decoding them", () => {
    expect(parsePlain(String.raw`a = "\xc3" "\xa9";`)).toEqual([["a", "é"]]);
  });

  it("reads a string spanning lines, and counts those lines", () => {
    const group = parseLibconfig('a = "line 1\nline 2";\nb = 2;', FILE);
    expect(setting(group, "a")).toMatchObject({ value: "line 1\nline 2" });
    expect(setting(group, "b").line).toBe(3);
  });

  it("keeps UTF-8 text in strings as it is", () => {
    expect(parsePlain('a = "Zürich ✓ 日本";')).toEqual([["a", "Zürich ✓ 日本"]]);
  });
});

describe("libconfig: comments", () => {
  it("skips # and // comments to the end of the line", () => {
    expect(parsePlain("# a = 1;\na = 2; # b = 3;\n// c = 4;\nd = 5; // e = 6;")).toEqual([
      ["a", 2n],
      ["d", 5n],
    ]);
  });

  it("skips /* */ comments, also inside a setting and over several lines, and keeps line numbers right", () => {
    const group = parseLibconfig("/* one\n two\n three */ a /* x */ = /* y */ 1;\nb = /*\n*/ 2;", FILE);
    expect(group.settings.get("a")?.line).toBe(3);
    expect(setting(group, "b")).toMatchObject({ value: 2n, line: 5 });
  });

  it("does not take comment characters inside a string for a comment", () => {
    expect(parsePlain('a = "# not // a /* comment */";')).toEqual([["a", "# not // a /* comment */"]]);
  });

  it("rejects an unterminated /* comment at the line it opens", () => {
    expectError(() => parseLibconfig("a = 1;\n/* open\n\n", FILE), "SYNTAX", 2, /unterminated \/\* comment/);
  });
});

describe("libconfig: groups, lists and arrays", () => {
  it("reads nested groups", () => {
    expect(parsePlain('a = { b = { c = 1; }; d = "x"; };')).toEqual([
      [
        "a",
        {
          group: [
            ["b", { group: [["c", 1n]] }],
            ["d", "x"],
          ],
        },
      ],
    ]);
  });

  it("reads heterogeneous lists holding groups, lists and arrays", () => {
    expect(parsePlain('a = ( 1, "two", 3.0, true, { x = 1; }, ( 2 ), [ 3, 4 ] );')).toEqual([
      [
        "a",
        {
          list: [1n, "two", 3, true, { group: [["x", 1n]] }, { list: [2n] }, { array: [3n, 4n] }],
        },
      ],
    ]);
  });

  it("reads arrays of one scalar type", () => {
    expect(parsePlain('a = [1, 0x2, 3L]; b = ["x", "y" "z"]; c = [true, false]; d = [1.5, 2.5];')).toEqual([
      ["a", { array: [1n, 2n, 3n] }],
      ["b", { array: ["x", "yz"] }],
      ["c", { array: [true, false] }],
      ["d", { array: [1.5, 2.5] }],
    ]);
  });

  it("reads empty groups, lists and arrays", () => {
    expect(parsePlain("a = {}; b = (); c = [];")).toEqual([
      ["a", { group: [] }],
      ["b", { list: [] }],
      ["c", { array: [] }],
    ]);
  });

  it("accepts a trailing comma and repeated commas in lists and arrays, as libconfig", () => {
    expect(parsePlain("a = (1, 2,); b = [1,, 2,];")).toEqual([
      ["a", { list: [1n, 2n] }],
      ["b", { array: [1n, 2n] }],
    ]);
  });

  it("gives every element its own line", () => {
    const list = setting(parseLibconfig("a = (\n  1,\n  { b = 2; },\n  [\n3 ]\n);", FILE), "a");
    if (list.kind !== "list") throw new Error("not a list");
    expect(list.line).toBe(1);
    expect(list.elements.map((e) => e.line)).toEqual([2, 3, 4]);
    const array = list.elements[2];
    if (array?.kind !== "array") throw new Error("not an array");
    expect(array.elements[0]?.line).toBe(5);
  });

  it("rejects an array mixing types at the offending element's line", () => {
    expectError(
      () => parseLibconfig('a = [1,\n "x"];', FILE),
      "SYNTAX",
      2,
      `${FILE}:2: mismatched element type in array: "x" is a string, but the array opened on line 1 starts with an integer (column 2)`,
    );
    expectError(() => parseLibconfig("a = [1, 1.5];", FILE), "SYNTAX", 1, /1\.5 is a float/);
  });

  it("rejects a group, list or array inside an array", () => {
    for (const inner of ["{ b = 1; }", "(1)", "[1]"]) {
      expectError(() => parseLibconfig(`a = [ ${inner} ];`, FILE), "SYNTAX", 1, /an array holds booleans/);
    }
  });

  it(`accepts ${MAX_LIBCONFIG_NESTING} levels of nesting and refuses one more`, () => {
    const deep = (n: number) => `a = ${"(".repeat(n)}${")".repeat(n)};`;
    expect(() => parseLibconfig(deep(MAX_LIBCONFIG_NESTING), FILE)).not.toThrow();
    expectError(() => parseLibconfig(deep(MAX_LIBCONFIG_NESTING + 1), FILE), "TOO_DEEP", 1, /nest deeper than 64/);
  });
});

describe("libconfig: syntax errors carry file, line and column", () => {
  it.each<[string, string, number, string]>([
    ["a = ;", "SYNTAX", 1, "expected a value, found ';' (column 5)"],
    ["a = 1;\n\n  b 2;", "SYNTAX", 3, `expected '=' or ':' after b, found the number 2 (column 5)`],
    ['a = "open\n\n', "SYNTAX", 1, "unterminated string: no closing '\"' before the end of the file (column 5)"],
    ["a = {\n b = 1;\n", "SYNTAX", 3, "the file ends inside the group opened on line 1: expected '}' (column 1)"],
    ["a = 1;\n}", "SYNTAX", 2, "unexpected '}': no group is open (column 1)"],
    ["a = (1 2);", "SYNTAX", 1, "expected ',' or ')' in the list opened on line 1, found the number 2 (column 8)"],
    [
      "a = [1\n",
      "SYNTAX",
      2,
      "expected ',' or ']' in the array opened on line 1, found the end of the file (column 1)",
    ],
    [
      "a = word;",
      "SYNTAX",
      1,
      "expected a value, found the name word (strings are written in double quotes) (column 5)",
    ],
    ["1 = 2;", "SYNTAX", 1, "expected a setting name, found the number 1 (column 1)"],
    ["true = 1;", "SYNTAX", 1, "expected a setting name, found true (column 1)"],
    ['"a" = 1;', "SYNTAX", 1, "expected a setting name, found a string (column 1)"],
    ["a = 1;\n  b = $;", "SYNTAX", 2, "unexpected character '$' (column 7)"],
    ["a = \u0001;", "SYNTAX", 1, "unexpected character U+0001 (column 5)"],
    ["a = 1; /", "SYNTAX", 1, "unexpected character '/' (column 8)"],
    [
      "a = 1;\na = 2;",
      "DUPLICATE_KEY",
      2,
      "duplicate setting a = 2: already set on line 1, and a name may appear once per group (column 1)",
    ],
    [
      '# x\n@include "other.cfg"\n',
      "INCLUDE",
      2,
      "@include is not supported in guid.conf: put the settings in this file (qvm-start-daemon writes one file per qube) (column 1)",
    ],
  ])("%j → %s on line %i", (text, code, line, detail) => {
    const error = expectError(
      () => parseLibconfig(text, FILE),
      code as ConfigErrorCode,
      line,
      `${FILE}:${line}: ${detail}`,
    );
    expect(error.detail).toBe(detail);
    expect(error.column).toBe(Number(/column (\d+)\)$/.exec(detail)?.[1]));
  });

  it("allows the same name in different groups", () => {
    expect(() => parseLibconfig("a = { x = 1; }; b = { x = 2; };", FILE)).not.toThrow();
  });

  it("bounds what it quotes from the file", () => {
    const error = configError(() => parseLibconfig(`${"n".repeat(5000)} 1;`, FILE));
    expect(error.message.length).toBeLessThan(200);
  });
});

describe("libconfig: hostile input", () => {
  it("never throws anything but ConfigError on random text (property)", () => {
    fc.assert(
      fc.property(fc.string({ unit: "binary", maxLength: 200 }), (text) => {
        try {
          parseLibconfig(text, FILE);
        } catch (error) {
          expect(error).toBeInstanceOf(ConfigError);
          expect((error as ConfigError).message).toMatch(/^guid\.conf:\d+: /);
        }
      }),
      { numRuns: 3000 },
    );
  });

  it("never throws anything but ConfigError on random libconfig-like tokens, in parser and schema (property)", () => {
    const token = fc.constantFrom(
      ...["global", "VM", "work", "a", "max_clipboard_size", "paste_policy", "source", "action", "*"],
      ...["=", ":", ";", ",", "{", "}", "(", ")", "[", "]", " ", "\n", "#", "//", "/*", "*/", '"', "\\", "\\x"],
      ...["1", "-1", "0x", "0xff", "1.5", ".", "e5", "L", "true", "FALSE", '"s"', '"allow"', "@include", "\u0000"],
    );
    fc.assert(
      fc.property(fc.array(token, { maxLength: 60 }), fc.boolean(), (tokens, schema) => {
        const text = tokens.join("");
        try {
          if (schema) parseGuidConfig(text, FILE, "work");
          else parseLibconfig(text, FILE);
        } catch (error) {
          expect(error).toBeInstanceOf(ConfigError);
        }
      }),
      { numRuns: 5000 },
    );
  });

  it("finishes on megabyte-sized hostile inputs", () => {
    const mb = 1 << 20;
    const inputs = [
      `a = ${"(".repeat(mb)}`,
      `a = ${"{ b = ".repeat(mb / 6)}`,
      `a = ${"[".repeat(mb)}`,
      "{".repeat(mb),
      `a = "${"\\x".repeat(mb / 2)}`,
      `a = "${"\\xc3".repeat(mb / 4)}";`,
      `a = ${"9".repeat(mb)};`,
      `a = ${"0x".padEnd(mb, "f")};`,
      `a = ${"1".repeat(mb)}.${"1".repeat(mb)}`,
      `a = ${'"x" '.repeat(mb / 4)};`,
      `a = (${"1,".repeat(mb / 16)});`,
      "/*".repeat(mb / 2),
      "//".repeat(mb / 2),
      "a".repeat(mb),
      "a-".repeat(mb / 2),
      "\n".repeat(mb) + "$",
    ];
    for (const text of inputs) {
      const started = performance.now();
      try {
        parseLibconfig(text, FILE);
      } catch (error) {
        expect(error).toBeInstanceOf(ConfigError);
      }
      // Linear work on 1–2 MB; a quadratic scan would take minutes.
      expect(performance.now() - started).toBeLessThan(5000);
    }
  });

  it("reads back what a printer independent of the parser writes (property)", () => {
    const name = fc.stringMatching(/^[A-Za-z*][-A-Za-z0-9_*]{0,8}$/).filter((n) => !/^(true|false)$/i.test(n));
    const text = fc.string({ unit: "grapheme", maxLength: 20 }).filter((s) => !s.includes("\u0000"));
    type Tree = Plain;
    const scalar = fc.oneof(
      fc.boolean(),
      fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }),
      fc.double({ noNaN: true, noDefaultInfinity: true }),
      text,
    );
    const array = fc.oneof(
      fc.array(fc.boolean(), { maxLength: 4 }),
      fc.array(fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }), { maxLength: 4 }),
      fc.array(text, { maxLength: 4 }),
    );
    const { value } = fc.letrec<{ value: Tree; group: Tree }>((tie) => ({
      value: fc.oneof(
        { depthSize: "small", withCrossShrink: true },
        scalar,
        array.map((elements): Tree => ({ array: elements as Plain[] })),
        fc.array(tie("value"), { maxLength: 3 }).map((elements): Tree => ({ list: elements })),
        tie("group"),
      ),
      group: fc
        .uniqueArray(fc.tuple(name, tie("value")), { maxLength: 4, selector: ([n]) => n })
        .map((settings): Tree => ({ group: settings })),
    }));
    const file = fc.uniqueArray(fc.tuple(name, value), { maxLength: 5, selector: ([n]) => n });

    let hexToggle = false;
    const print = (v: Tree): string => {
      if (typeof v === "boolean") return hexToggle ? String(v).toUpperCase() : String(v);
      if (typeof v === "bigint") {
        hexToggle = !hexToggle;
        // Beyond 2^63-1 only hex is an integer in libconfig.
        if (v > 2n ** 63n - 1n || (v >= 0n && hexToggle)) return `0x${v.toString(16)}L`;
        return v.toString();
      }
      if (typeof v === "number") {
        const s = Object.is(v, -0) ? "-0" : String(v);
        return /[.e]/.test(s) ? s : `${s}.0`;
      }
      if (typeof v === "string") {
        let out = '"';
        for (const ch of v) {
          if (ch === "\\") out += "\\\\";
          else if (ch === '"') out += '\\"';
          else if (ch === "\n") out += hexToggle ? "\\n" : '" /* split */ "\\x0a';
          else if (ch === "\t") out += "\\t";
          else if (ch.codePointAt(0)! < 0x20) out += `\\x${ch.codePointAt(0)!.toString(16).padStart(2, "0")}`;
          else out += ch;
        }
        return `${out}"`;
      }
      if ("array" in v) return `[ ${v.array.map(print).join(", ")} ]`;
      if ("list" in v) return `(\n${v.list.map(print).join(",\n")}\n)`;
      return `{ ${v.group.map(([n, x]) => `${n} = ${print(x)};`).join(" # c\n")} }`;
    };

    fc.assert(
      fc.property(file, (settings) => {
        const source = settings.map(([n, v]) => `${n} : ${print(v)}`).join("\n// c\n");
        expect(parsePlain(source)).toEqual(settings);
      }),
      { numRuns: 500 },
    );
  });
});

// ---------------------------------------------------------------------------

describe("guid.conf: defaults", () => {
  it.each<[keyof GuidConfig, unknown]>([
    ["allowFullscreen", false],
    ["overrideRedirectProtection", true],
    ["overrideRedirect", "allow"],
    ["allowUtf8Titles", false],
    ["secureCopySequence", { modifiers: CONTROL_MASK | SHIFT_MASK, keysym: "c", text: "Ctrl-Shift-c" }],
    ["securePasteSequence", { modifiers: CONTROL_MASK | SHIFT_MASK, keysym: "v", text: "Ctrl-Shift-v" }],
    ["maxClipboardSize", 64000],
    ["trayiconMode", "tint"],
    ["windowBackgroundColor", 0xffffff],
    ["startupTimeout", 45],
    ["logLevel", 1],
    ["eventsMaxDelay", 0],
    ["borderWidth", 2],
    ["pastePolicy", []],
  ])("%s defaults to %j, for an empty file and an empty global group", (field, expected) => {
    expect(DEFAULT_GUID_CONFIG[field]).toEqual(expected);
    expect(parseGuidConfig("", FILE)[field]).toEqual(expected);
    expect(parseGlobal()[field]).toEqual(expected);
  });

  it("has exactly the 14 documented fields", () => {
    expect(Object.keys(DEFAULT_GUID_CONFIG)).toHaveLength(14);
  });

  it("is frozen, and so is every parsed configuration", () => {
    expect(Object.isFrozen(DEFAULT_GUID_CONFIG)).toBe(true);
    expect(Object.isFrozen(parseGlobal("allow_fullscreen = true;"))).toBe(true);
  });
});

describe("guid.conf: every key", () => {
  it.each<[string, Partial<GuidConfig>]>([
    ["allow_fullscreen = true;", { allowFullscreen: true }],
    ["override_redirect_protection = false;", { overrideRedirectProtection: false }],
    ['override_redirect = "disabled";', { overrideRedirect: "disabled" }],
    ['override_redirect = "allow";', { overrideRedirect: "allow" }],
    ["allow_utf8_titles = TRUE;", { allowUtf8Titles: true }],
    ['secure_copy_sequence = "Mod4-c";', { secureCopySequence: { modifiers: MOD4_MASK, keysym: "c", text: "Mod4-c" } }],
    ['secure_copy_sequence = "none";', { secureCopySequence: null }],
    ['secure_paste_sequence = "Disable";', { securePasteSequence: null }],
    [
      'secure_paste_sequence = "Ctrl-Insert";',
      { securePasteSequence: { modifiers: CONTROL_MASK, keysym: "Insert", text: "Ctrl-Insert" } },
    ],
    ["max_clipboard_size = 256;", { maxClipboardSize: 256 }],
    ["max_clipboard_size = 256000;", { maxClipboardSize: 256000 }],
    ["max_clipboard_size = 0x10000L;", { maxClipboardSize: 65536 }],
    ['trayicon_mode = "border1";', { trayiconMode: "border1" }],
    ['trayicon_mode = "tint+whitehack";', { trayiconMode: "tint+whitehack" }],
    ['window_background_color = "0x123abc";', { windowBackgroundColor: 0x123abc }],
    ['window_background_color = "0XFFF";', { windowBackgroundColor: 0xfff }],
    ['window_background_color = "#00ff7f";', { windowBackgroundColor: 0x00ff7f }],
    ["window_background_color = 0x202020;", { windowBackgroundColor: 0x202020 }],
    ["window_background_color = 0;", { windowBackgroundColor: 0 }],
    ['window_background_color = "Black";', { windowBackgroundColor: 0 }],
    ["startup_timeout = 0;", { startupTimeout: 0 }],
    ["startup_timeout = 3600;", { startupTimeout: 3600 }],
    ["log_level = 0;", { logLevel: 0 }],
    ["log_level = 2;", { logLevel: 2 }],
    ["events_max_delay = 5000;", { eventsMaxDelay: 5000 }],
    ["border_width = 1;", { borderWidth: 1 }],
    ["border_width = 16;", { borderWidth: 16 }],
  ])("%s", (line, expected) => {
    expect(parseGlobal(line)).toEqual({ ...DEFAULT_GUID_CONFIG, ...expected });
  });

  it.each(TRAYICON_MODES)("accepts trayicon_mode %s", (mode) => {
    expect(parseGlobal(`trayicon_mode = "${mode}";`).trayiconMode).toBe(mode);
  });

  it.each([...COLOUR_NAMES])("accepts the colour name %s (case-insensitive) as 0x%s", (name, rgb) => {
    expect(parseGlobal(`window_background_color = "${name}";`).windowBackgroundColor).toBe(rgb);
    expect(parseGlobal(`window_background_color = "${name.toUpperCase()}";`).windowBackgroundColor).toBe(rgb);
  });

  it("uses the X11 values for names that differ from CSS (green, gray, purple)", () => {
    expect(COLOUR_NAMES.get("green")).toBe(0x00ff00);
    expect(COLOUR_NAMES.get("gray")).toBe(0xbebebe);
    expect(COLOUR_NAMES.get("grey")).toBe(0xbebebe);
    expect(COLOUR_NAMES.get("purple")).toBe(0xa020f0);
  });

  it("accepts and ignores windows_count_limit and subwindows, as upstream tooling still writes them", () => {
    expect(parseGlobal("windows_count_limit = 500;", "subwindows = true;")).toEqual(DEFAULT_GUID_CONFIG);
  });

  it("sets several keys in one group", () => {
    const config = parseGlobal("allow_fullscreen = true;", "log_level = 2;", 'trayicon_mode = "bg";');
    expect(config).toMatchObject({ allowFullscreen: true, logLevel: 2, trayiconMode: "bg" });
  });
});

describe("guid.conf: rejections name the key, the value and what is allowed, with the line number", () => {
  // Each bad setting is on line 3 of the file (see globalFile).
  it.each<[string, ConfigErrorCode, string]>([
    [
      "max_clipboard_size = 255;",
      "OUT_OF_RANGE",
      "global.max_clipboard_size = 255 is out of range: allowed 256..256000",
    ],
    [
      "max_clipboard_size = 256001;",
      "OUT_OF_RANGE",
      "global.max_clipboard_size = 256001 is out of range: allowed 256..256000",
    ],
    ["max_clipboard_size = 0;", "OUT_OF_RANGE", "global.max_clipboard_size = 0 is out of range: allowed 256..256000"],
    ["max_clipboard_size = -1;", "OUT_OF_RANGE", "global.max_clipboard_size = -1 is out of range: allowed 256..256000"],
    [
      "max_clipboard_size = 2147483648;",
      "OUT_OF_RANGE",
      "global.max_clipboard_size = 2147483648 is out of range: allowed 256..256000",
    ],
    [
      "max_clipboard_size = 0xffffffff;",
      "OUT_OF_RANGE",
      "global.max_clipboard_size = 0xffffffff is out of range: allowed 256..256000",
    ],
    [
      'max_clipboard_size = "64000";',
      "WRONG_TYPE",
      'global.max_clipboard_size = "64000" is a string: expected an integer 256..256000',
    ],
    [
      "max_clipboard_size = 64000.0;",
      "WRONG_TYPE",
      "global.max_clipboard_size = 64000.0 is a float: expected an integer 256..256000",
    ],
    ["startup_timeout = -1;", "OUT_OF_RANGE", "global.startup_timeout = -1 is out of range: allowed 0..3600"],
    ["startup_timeout = 3601;", "OUT_OF_RANGE", "global.startup_timeout = 3601 is out of range: allowed 0..3600"],
    [
      "startup_timeout = 4294967295;",
      "OUT_OF_RANGE",
      "global.startup_timeout = 4294967295 is out of range: allowed 0..3600",
    ],
    [
      "startup_timeout = true;",
      "WRONG_TYPE",
      "global.startup_timeout = true is a boolean: expected an integer 0..3600",
    ],
    ["log_level = 3;", "OUT_OF_RANGE", "global.log_level = 3 is out of range: allowed 0..2"],
    ["log_level = -1;", "OUT_OF_RANGE", "global.log_level = -1 is out of range: allowed 0..2"],
    ["events_max_delay = 5001;", "OUT_OF_RANGE", "global.events_max_delay = 5001 is out of range: allowed 0..5000"],
    ["events_max_delay = -1;", "OUT_OF_RANGE", "global.events_max_delay = -1 is out of range: allowed 0..5000"],
    ["border_width = 0;", "OUT_OF_RANGE", "global.border_width = 0 is out of range: allowed 1..16"],
    ["border_width = 17;", "OUT_OF_RANGE", "global.border_width = 17 is out of range: allowed 1..16"],
    ["border_width = [2];", "WRONG_TYPE", "global.border_width = [ ... ] is an array: expected an integer 1..16"],
    [
      'allow_fullscreen = "true";',
      "WRONG_TYPE",
      'global.allow_fullscreen = "true" is a string: expected a boolean (true or false)',
    ],
    [
      "allow_fullscreen = 1;",
      "WRONG_TYPE",
      "global.allow_fullscreen = 1 is an integer: expected a boolean (true or false)",
    ],
    [
      "override_redirect_protection = 0;",
      "WRONG_TYPE",
      "global.override_redirect_protection = 0 is an integer: expected a boolean (true or false)",
    ],
    [
      "allow_utf8_titles = { };",
      "WRONG_TYPE",
      "global.allow_utf8_titles = { ... } is a group: expected a boolean (true or false)",
    ],
    [
      'override_redirect = "disable";',
      "BAD_VALUE",
      'global.override_redirect = "disable" is not allowed: expected "allow" or "disabled" (with a d: "disable" is qvm-start-daemon\'s spelling)',
    ],
    [
      'override_redirect = "Allow";',
      "BAD_VALUE",
      'global.override_redirect = "Allow" is not allowed: expected one of "allow", "disabled"',
    ],
    [
      "override_redirect = true;",
      "WRONG_TYPE",
      'global.override_redirect = true is a boolean: expected a string, one of "allow", "disabled"',
    ],
    [
      'trayicon_mode = "sparkle";',
      "BAD_VALUE",
      'global.trayicon_mode = "sparkle" is not allowed: expected one of "bg", "border1", "border2", "tint", "tint+border1", "tint+border2", "tint+saturation50", "tint+whitehack"',
    ],
    [
      'secure_copy_sequence = "Ctrl-Hyper-c";',
      "BAD_VALUE",
      'global.secure_copy_sequence: invalid key sequence "Ctrl-Hyper-c": unknown modifier "Hyper" (allowed: Shift, Ctrl, Control, Alt, Mod1, Mod3, Mod4); expected e.g. "Ctrl-Shift-c", "Mod4-v" or "none"',
    ],
    [
      'secure_paste_sequence = "";',
      "BAD_VALUE",
      'global.secure_paste_sequence: invalid key sequence "": it is empty (use none or disable to turn the hotkey off); expected e.g. "Ctrl-Shift-c", "Mod4-v" or "none"',
    ],
    [
      "secure_paste_sequence = false;",
      "WRONG_TYPE",
      'global.secure_paste_sequence = false is a boolean: expected a string such as "Ctrl-Shift-c", "Mod4-v" or "none"',
    ],
    [
      'window_background_color = "chartreuse";',
      "BAD_VALUE",
      'global.window_background_color = "chartreuse" is not allowed: expected 0xRRGGBB (a string or an integer 0..0xffffff), "#RRGGBB" or a colour name (white, black, red, green, blue, yellow, gray, grey, cyan, magenta, orange, purple)',
    ],
    [
      "window_background_color = 0x1000000;",
      "OUT_OF_RANGE",
      "global.window_background_color = 0x1000000 is out of range: allowed 0..0xffffff",
    ],
    [
      "window_background_color = -1;",
      "OUT_OF_RANGE",
      "global.window_background_color = -1 is out of range: allowed 0..0xffffff",
    ],
    [
      'window_background_color = "0x1234567";',
      "BAD_VALUE",
      'global.window_background_color = "0x1234567" is not allowed: expected 0xRRGGBB',
    ],
    [
      'window_background_color = "#fff";',
      "BAD_VALUE",
      'global.window_background_color = "#fff" is not allowed: expected 0xRRGGBB',
    ],
    [
      'window_background_color = "0x";',
      "BAD_VALUE",
      'global.window_background_color = "0x" is not allowed: expected 0xRRGGBB',
    ],
    [
      "window_background_color = 1.0;",
      "WRONG_TYPE",
      "global.window_background_color = 1.0 is a float: expected 0xRRGGBB",
    ],
    [
      "frobnicate = 1;",
      "UNKNOWN_KEY",
      "unknown key global.frobnicate = 1; allowed keys: allow_fullscreen, override_redirect_protection, override_redirect, allow_utf8_titles, secure_copy_sequence, secure_paste_sequence, max_clipboard_size, trayicon_mode, window_background_color, startup_timeout, log_level, events_max_delay, windows_count_limit, subwindows, border_width, paste_policy",
    ],
    [
      "Allow_Fullscreen = true;",
      "UNKNOWN_KEY",
      "unknown key global.Allow_Fullscreen = true; allowed keys: allow_fullscreen",
    ],
    [
      "allow_fullscreen = true;\n  allow_fullscreen = false;",
      "DUPLICATE_KEY",
      "duplicate setting allow_fullscreen = false: already set on line 3, and a name may appear once per group (column 3)",
    ],
  ])("rejects %s", (line, code, detail) => {
    const lineNumber = line.includes("\n") ? 4 : 3;
    const error = configError(() => parseGlobal(line));
    expect(error.code).toBe(code);
    expect(error.line).toBe(lineNumber);
    expect(error.message.startsWith(`${FILE}:${lineNumber}: ${detail}`)).toBe(true);
  });

  it("rejects max_clipboard_size 255 with its line number", () => {
    expectError(
      () => parseGlobal("log_level = 1;", "max_clipboard_size = 255;"),
      "OUT_OF_RANGE",
      4,
      `${FILE}:4: global.max_clipboard_size = 255 is out of range: allowed 256..256000`,
    );
  });

  it("reports the line of the value when it is not the line of the key", () => {
    expectError(() => parseGlobal("log_level =", "", "7;"), "OUT_OF_RANGE", 5, /global\.log_level = 7/);
  });

  it("rejects an unknown top-level group, naming the allowed ones", () => {
    expectError(
      () => parseGuidConfig("global: {};\n\nglobals: { allow_fullscreen = true; };", FILE),
      "UNKNOWN_GROUP",
      3,
      `${FILE}:3: unknown top-level setting globals = { ... }: the top level holds only the groups global and VM`,
    );
  });

  it("rejects a key outside any group, saying where keys belong", () => {
    expectError(
      () => parseGuidConfig("allow_fullscreen = true;", FILE),
      "UNKNOWN_GROUP",
      1,
      /unknown top-level setting allow_fullscreen = true: keys belong inside global: \{ \.\.\. \}/,
    );
  });

  it("rejects global given twice", () => {
    expectError(
      () => parseGuidConfig("global: {};\nglobal: {};", FILE),
      "DUPLICATE_KEY",
      2,
      /duplicate setting global/,
    );
  });

  it("rejects global and VM that are not groups", () => {
    expectError(
      () => parseGuidConfig("global = 1;", FILE),
      "WRONG_TYPE",
      1,
      /global = 1 is an integer: expected a group/,
    );
    expectError(
      () => parseGuidConfig('VM = ("x");', FILE),
      "WRONG_TYPE",
      1,
      /VM = \( \.\.\. \) is a list: expected a group/,
    );
    expectError(() => parseGuidConfig("VM: { work = true; };", FILE), "WRONG_TYPE", 1, /VM\.work = true is a boolean/);
  });

  it("passes syntax errors through as ConfigError", () => {
    expectError(() => parseGlobal("allow_fullscreen = ;"), "SYNTAX", 3, /expected a value/);
  });
});

describe("guid.conf: the VM group overrides global key by key", () => {
  const text = [
    "global: {",
    "  allow_fullscreen = false;",
    "  log_level = 2;",
    '  trayicon_mode = "border2";',
    "};",
    "VM: {",
    "  work: {",
    "    allow_fullscreen = true;",
    '    trayicon_mode = "bg";',
    "  };",
    "  sys-net: {",
    "    max_clipboard_size = 1000;",
    "  };",
    "};",
  ].join("\n");

  it("applies the named qube's entry over global, keeping global's other keys", () => {
    expect(parseGuidConfig(text, FILE, "work")).toEqual({
      ...DEFAULT_GUID_CONFIG,
      allowFullscreen: true,
      logLevel: 2,
      trayiconMode: "bg",
    });
  });

  it("accepts qube names with '-'", () => {
    expect(parseGuidConfig(text, FILE, "sys-net")).toMatchObject({ maxClipboardSize: 1000, trayiconMode: "border2" });
  });

  it("uses global alone for a qube without an entry, and without a qube name", () => {
    const global = { ...DEFAULT_GUID_CONFIG, logLevel: 2, trayiconMode: "border2" };
    expect(parseGuidConfig(text, FILE, "personal")).toEqual(global);
    expect(parseGuidConfig(text, FILE)).toEqual(global);
  });

  it("applies the entry whether VM comes before or after global", () => {
    const swapped = "VM: { work: { log_level = 0; }; };\nglobal: { log_level = 2; };";
    expect(parseGuidConfig(swapped, FILE, "work").logLevel).toBe(0);
  });

  it("overrides paste_policy as a whole", () => {
    const policy = [
      'global: { paste_policy = ( { source = "*"; target = "*"; action = "deny"; } ); };',
      "VM: { work: { paste_policy = (); }; };",
    ].join("\n");
    expect(parseGuidConfig(policy, FILE, "work").pastePolicy).toEqual([]);
    expect(parseGuidConfig(policy, FILE, "other").pastePolicy).toHaveLength(1);
  });

  it("checks every qube's entry, not only the named one", () => {
    const bad = `${text}\nVM2: {};`.replace("max_clipboard_size = 1000;", "max_clipboard_size = 1;");
    expectError(
      () => parseGuidConfig(bad, FILE, "work"),
      "OUT_OF_RANGE",
      12,
      /VM\.sys-net\.max_clipboard_size = 1 is out of range/,
    );
  });

  it("rejects an unknown key inside a qube's entry with its path", () => {
    expectError(
      () => parseGuidConfig("VM: {\n  work: {\n    colour = 1;\n  };\n};", FILE, "work"),
      "UNKNOWN_KEY",
      3,
      /unknown key VM\.work\.colour = 1; allowed keys:/,
    );
  });
});

describe("guid.conf: a file in the style upstream ships", () => {
  const shipped = `# Sample configuration file for the Qubes GUI daemon.
# For the syntax see the libconfig manual.
# qvm-start-daemon writes a per-qube file from qvm-features; this one is
# for reference, and every key shows its default.

global: {
  # default values
  #allow_fullscreen = false;
  #override_redirect_protection = true;
  #override_redirect = "allow";
  #allow_utf8_titles = false;
  #secure_copy_sequence = "Ctrl-Shift-c";
  #secure_paste_sequence = "Ctrl-Shift-v";
  #max_clipboard_size = 64000;
  #windows_count_limit = 500;
  #trayicon_mode = "tint";
  #window_background_color = "white";
  #startup_timeout = 45;
  #log_level = 1;
  #events_max_delay = 0;
  #border_width = 2;
  #paste_policy = ( { source = "untrusted"; target = "*"; action = "deny"; } );
};

# most settings can be set per qube:

VM: {
  # example_vm: {
  #   allow_fullscreen = true;
  # };
};
`;

  it("parses to exactly the defaults", () => {
    expect(parseGuidConfig(shipped, "/etc/qubes/guid.conf", "work")).toEqual(DEFAULT_GUID_CONFIG);
  });

  it("gives the defaults again with every key uncommented", () => {
    const uncommented = shipped.replace(/^ {2}#([a-z_]+ = )/gm, "  $1");
    expect(uncommented).not.toEqual(shipped);
    expect(parseLibconfig(uncommented, FILE).settings.get("global")?.value).toMatchObject({ kind: "group" });
    expect(parseGuidConfig(uncommented, FILE)).toEqual({
      ...DEFAULT_GUID_CONFIG,
      pastePolicy: [{ source: "untrusted", target: "*", action: "deny", line: 22 }],
    });
  });

  it("takes the example qube's entry once it is uncommented", () => {
    const withExample = shipped.replace(
      "  # example_vm: {\n  #   allow_fullscreen = true;\n  # };",
      "  example_vm: {\n    allow_fullscreen = true;\n  };",
    );
    expect(withExample).not.toEqual(shipped);
    expect(parseGuidConfig(withExample, FILE, "example_vm").allowFullscreen).toBe(true);
    expect(parseGuidConfig(withExample, FILE, "work").allowFullscreen).toBe(false);
  });
});

describe("guid.conf: paste_policy", () => {
  it("reads rules in order with their lines", () => {
    const config = parseGlobal(
      "paste_policy = (",
      '  { source = "work"; target = "*"; action = "allow"; },',
      '  { source = "*"; target = "vault"; action = "deny"; }',
      ");",
    );
    expect(config.pastePolicy).toEqual([
      { source: "work", target: "*", action: "allow", line: 4 },
      { source: "*", target: "vault", action: "deny", line: 5 },
    ]);
    expect(Object.isFrozen(config.pastePolicy)).toBe(true);
  });

  it("accepts an empty list and an empty array", () => {
    expect(parseGlobal("paste_policy = ();").pastePolicy).toEqual([]);
    expect(parseGlobal("paste_policy = [];").pastePolicy).toEqual([]);
  });

  it.each<[string, ConfigErrorCode, string | RegExp]>([
    ['paste_policy = "deny";', "WRONG_TYPE", /global\.paste_policy = "deny" is a string: expected a list of rules/],
    [
      'paste_policy = [ "x" ];',
      "WRONG_TYPE",
      /global\.paste_policy = \[ \.\.\. \] is an array: expected a list of rules/,
    ],
    ['paste_policy = ( "x" );', "WRONG_TYPE", /global\.paste_policy\[0\] = "x" is a string: expected a group/],
    [
      'paste_policy = ( { source = "work"; target = "*"; } );',
      "MISSING_KEY",
      /global\.paste_policy\[0\] has no action: a rule needs source, target \(a qube name or "\*"\) and action \("allow" or "deny"\)/,
    ],
    ['paste_policy = ( { target = "*"; action = "deny"; } );', "MISSING_KEY", /has no source/],
    ['paste_policy = ( { source = "*"; action = "deny"; } );', "MISSING_KEY", /has no target/],
    [
      'paste_policy = ( { source = "work"; target = "*"; action = "ask"; } );',
      "BAD_VALUE",
      /global\.paste_policy\[0\]\.action = "ask" is not allowed: expected one of "allow", "deny"/,
    ],
    [
      'paste_policy = ( { source = "1work"; target = "*"; action = "deny"; } );',
      "BAD_VALUE",
      /global\.paste_policy\[0\]\.source = "1work" is not allowed: expected a qube name/,
    ],
    [
      'paste_policy = ( { source = "work"; target = "w*"; action = "deny"; } );',
      "BAD_VALUE",
      /\.target = "w\*" is not allowed/,
    ],
    [
      `paste_policy = ( { source = "${"a".repeat(32)}"; target = "*"; action = "deny"; } );`,
      "BAD_VALUE",
      /\.source = "a{32}" is not allowed/,
    ],
    [
      'paste_policy = ( { source = 1; target = "*"; action = "deny"; } );',
      "WRONG_TYPE",
      /\.source = 1 is an integer: expected a string, a qube name/,
    ],
    [
      'paste_policy = ( { source = "work"; target = "*"; action = "deny"; when = "always"; } );',
      "UNKNOWN_KEY",
      /unknown key global\.paste_policy\[0\]\.when = "always"; a rule holds source, target and action/,
    ],
  ])("rejects %s", (line, code, message) => {
    expectError(() => parseGlobal(line), code, 3, message);
  });

  it("names the rule by index and its own line", () => {
    expectError(
      () =>
        parseGlobal(
          "paste_policy = (",
          '  { source = "work"; target = "*"; action = "deny"; },',
          '  { source = "work"; target = "*"; action = "maybe"; }',
          ");",
        ),
      "BAD_VALUE",
      5,
      /global\.paste_policy\[1\]\.action = "maybe"/,
    );
  });
});

describe("pastePolicyDecision", () => {
  const rule = (source: string, target: string, action: "allow" | "deny"): PasteRule => ({
    source,
    target,
    action,
    line: 1,
  });

  it("allows everything with no rules", () => {
    expect(pastePolicyDecision([], "work", "personal")).toEqual({ allowed: true, rule: null });
  });

  it("lets the first matching rule win", () => {
    const rules = [rule("work", "vault", "deny"), rule("work", "*", "allow"), rule("*", "*", "deny")];
    expect(pastePolicyDecision(rules, "work", "vault")).toEqual({ allowed: false, rule: 0 });
    expect(pastePolicyDecision(rules, "work", "personal")).toEqual({ allowed: true, rule: 1 });
    expect(pastePolicyDecision(rules, "personal", "work")).toEqual({ allowed: false, rule: 2 });
  });

  it("allows when no rule matches", () => {
    const rules = [rule("untrusted", "*", "deny"), rule("*", "vault", "deny")];
    expect(pastePolicyDecision(rules, "work", "personal")).toEqual({ allowed: true, rule: null });
  });

  it("matches names exactly: no prefixes, no case folding, '*' only as a whole", () => {
    const rules = [rule("work", "*", "deny")];
    expect(pastePolicyDecision(rules, "work-2", "x").allowed).toBe(true);
    expect(pastePolicyDecision(rules, "Work", "x").allowed).toBe(true);
    expect(pastePolicyDecision([rule("*", "*", "deny")], "*", "*")).toEqual({ allowed: false, rule: 0 });
    expect(pastePolicyDecision([rule("work", "personal", "deny")], "*", "personal").allowed).toBe(true);
  });

  it("decides from a parsed policy", () => {
    const { pastePolicy } = parseGlobal('paste_policy = ( { source = "untrusted"; target = "*"; action = "deny"; } );');
    expect(pastePolicyDecision(pastePolicy, "untrusted", "work")).toEqual({ allowed: false, rule: 0 });
    expect(pastePolicyDecision(pastePolicy, "work", "untrusted")).toEqual({ allowed: true, rule: null });
  });
});

describe("loadGuidConfig", () => {
  let dir = "";

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "guid-config-"));
  });

  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("reads a file and applies the qube's entry", async () => {
    const path = join(dir, "guid.conf");
    await writeFile(path, "global: { log_level = 0; };\nVM: { work: { log_level = 2; }; };\n");
    expect((await loadGuidConfig(path)).logLevel).toBe(0);
    expect((await loadGuidConfig(path, "work")).logLevel).toBe(2);
  });

  it("names the file by its path in errors", async () => {
    const path = join(dir, "bad.conf");
    await writeFile(path, "global: {\n  log_level = 9;\n};\n");
    await expect(loadGuidConfig(path)).rejects.toThrow(`${path}:2: global.log_level = 9 is out of range: allowed 0..2`);
  });

  it("reports a missing file as NOT_FOUND, on line 0", async () => {
    const path = join(dir, "absent.conf");
    const error = await loadGuidConfig(path).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConfigError);
    expect(error).toMatchObject({ code: "NOT_FOUND", file: path, line: 0, column: null });
    expect((error as Error).message).toMatch(new RegExp(`^${path}: cannot read: ENOENT`));
  });

  it("reports a directory as READ", async () => {
    await expect(loadGuidConfig(dir)).rejects.toMatchObject({ code: "READ", line: 0 });
  });

  it(`refuses a file over ${MAX_GUID_CONFIG_BYTES} bytes and reads one of exactly that size`, async () => {
    const path = join(dir, "big.conf");
    await writeFile(path, "#".repeat(MAX_GUID_CONFIG_BYTES + 1));
    await expect(loadGuidConfig(path)).rejects.toMatchObject({ code: "TOO_LARGE", line: 0 });
    await writeFile(path, "#".repeat(MAX_GUID_CONFIG_BYTES));
    await expect(loadGuidConfig(path)).resolves.toEqual(DEFAULT_GUID_CONFIG);
  });
});

describe("ConfigError", () => {
  it("is an Error with code, file, line, column and detail", () => {
    const error = configError(() => parseLibconfig("a = 1;\n  b = ;", FILE));
    expect(error).toBeInstanceOf(Error);
    expect(error.name).toBe("ConfigError");
    expect(error).toMatchObject({ code: "SYNTAX", file: FILE, line: 2, column: 7 });
    expect(error.message).toBe(`${FILE}:2: ${error.detail}`);
  });
});
