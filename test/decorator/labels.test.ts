import { describe, expect, it } from "vitest";

import { LABELS, formatColor, labelByIndex, labelByName, parseColor } from "../../decorator/index.ts";

const TABLE: [number, string, number][] = [
  [1, "red", 0xcc0000],
  [2, "orange", 0xf57900],
  [3, "yellow", 0xedd400],
  [4, "green", 0x73d216],
  [5, "gray", 0x555555],
  [6, "blue", 0x3465a4],
  [7, "purple", 0x75507b],
  [8, "black", 0x000000],
];

describe("the label table", () => {
  it("holds the eight qubes-core-admin labels in index order", () => {
    expect(LABELS.map((l) => [l.index, l.name, l.color])).toEqual(TABLE);
  });

  it("cannot be changed at run time", () => {
    expect(Object.isFrozen(LABELS)).toBe(true);
    expect(LABELS.every((label) => Object.isFrozen(label))).toBe(true);
  });

  for (const [index, name, color] of TABLE) {
    it(`finds ${name} by index ${index} and by name in any case`, () => {
      expect(labelByIndex(index)).toEqual({ index, name, color });
      expect(labelByName(name)).toEqual({ index, name, color });
      expect(labelByName(name.toUpperCase())).toEqual({ index, name, color });
      expect(labelByName(name[0]!.toUpperCase() + name.slice(1))?.index).toBe(index);
    });
  }

  it("has no label at indices 0, 9, -1, 2^31, 2^32-1 or 1.5", () => {
    for (const index of [0, 9, -1, 2 ** 31, 2 ** 32 - 1, 1.5, Number.NaN]) {
      expect(labelByIndex(index)).toBeUndefined();
    }
  });

  it("has no label named grey, pink, '' or ' red'", () => {
    for (const name of ["grey", "pink", "", " red", "red ", "re"]) expect(labelByName(name)).toBeUndefined();
  });
});

describe("parseColor, as qubes-guid -c", () => {
  it("reads 0xRRGGBB in either case of the digits and of the x", () => {
    expect(parseColor("0xcc0000")).toBe(0xcc0000);
    expect(parseColor("0xCC0000")).toBe(0xcc0000);
    expect(parseColor("0X3465a4")).toBe(0x3465a4);
    expect(parseColor("0x000000")).toBe(0);
    expect(parseColor("0xffffff")).toBe(0xffffff);
  });

  it("reads #RRGGBB", () => {
    expect(parseColor("#f57900")).toBe(0xf57900);
    expect(parseColor("#75507B")).toBe(0x75507b);
  });

  it("reads every label name as its colour", () => {
    for (const [, name, color] of TABLE) {
      expect(parseColor(name)).toBe(color);
      expect(parseColor(name.toUpperCase())).toBe(color);
    }
  });

  it.each([
    "",
    "0x",
    "#",
    "0xcc000",
    "0xcc00000",
    "#cc000",
    "#cc00000",
    "cc0000",
    "0xgg0000",
    "#-12345",
    "0x-12345",
    " 0xcc0000",
    "0xcc0000 ",
    "0x cc000",
    "grey",
    "4",
    "0b110011001100110011001100",
  ])("rejects %j with a RangeError naming the text", (text) => {
    expect(() => parseColor(text)).toThrow(RangeError);
    expect(() => parseColor(text)).toThrow(JSON.stringify(text));
  });
});

describe("formatColor", () => {
  it("writes #rrggbb, lower case, zero padded", () => {
    expect(formatColor(0xcc0000)).toBe("#cc0000");
    expect(formatColor(0x3465a4)).toBe("#3465a4");
    expect(formatColor(0)).toBe("#000000");
    expect(formatColor(0x00000f)).toBe("#00000f");
    expect(formatColor(0xffffff)).toBe("#ffffff");
  });

  it("round-trips with parseColor for every label", () => {
    for (const label of LABELS) expect(parseColor(formatColor(label.color))).toBe(label.color);
  });

  it("rejects values that are not 24-bit RGB", () => {
    for (const rgb of [-1, 0x1000000, 2 ** 31, 2 ** 32 - 1, 1.5, Number.NaN, Number.POSITIVE_INFINITY]) {
      expect(() => formatColor(rgb)).toThrow(RangeError);
    }
  });
});
