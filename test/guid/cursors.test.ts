import { existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";

import fc from "fast-check";
import { afterAll, describe, expect, it } from "vitest";

import {
  CursorTheme,
  cursorGlyphFallbacks,
  cursorGlyphName,
  MAX_CURSOR_DIMENSION,
  parseXcursor,
  type CursorImage,
} from "../../guid/host/cursors.ts";

// The Xcursor layout, spelt out here so the files below do not depend on the parser.
const MAGIC = [0x58, 0x63, 0x75, 0x72]; // "Xcur"
const IMAGE_TYPE = 0xfffd0002;
const COMMENT_TYPE = 0xfffe0001;

interface ImageSpec {
  /** Nominal size in the TOC and the chunk (the chunk's own subtype when `chunkSubtype` is set). */
  size: number;
  width: number;
  height: number;
  xhot: number;
  yhot: number;
  delay?: number;
  /** width × height ARGB values; `seed`-derived when absent. */
  pixels?: number[];
  seed?: number;
  chunkHeader?: number;
  chunkType?: number;
  chunkSubtype?: number;
  /** Pixels actually written (default width × height). */
  pixelCount?: number;
}

interface FileSpec {
  images: ImageSpec[];
  fileHeader?: number;
  /** Overrides the ntoc field. */
  ntoc?: number;
  /** Extra non-image TOC entries (a comment chunk) placed first. */
  comment?: boolean;
  /** Overrides the position of TOC entry i. */
  positions?: Record<number, number>;
}

/** Little-endian byte writer. */
class Bytes {
  readonly out: number[] = [];
  u32(value: number): this {
    const v = value >>> 0;
    this.out.push(v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, (v >>> 24) & 0xff);
    return this;
  }
  raw(values: number[]): this {
    this.out.push(...values);
    return this;
  }
  get length(): number {
    return this.out.length;
  }
}

/** The first `count` (default all) pixels of `spec`: its own, or a pattern derived from its seed. */
function pixelsOf(spec: ImageSpec, count = spec.width * spec.height): number[] {
  if (spec.pixels !== undefined) return spec.pixels.slice(0, count);
  const seed = spec.seed ?? 1;
  return Array.from({ length: count }, (_, i) => Math.imul(seed, 0x01000193) + Math.imul(i, 0x9e3779b1));
}

function chunkLength(spec: ImageSpec): number {
  return (spec.chunkHeader ?? 36) + 4 * (spec.pixelCount ?? spec.width * spec.height);
}

/** An Xcursor file: header, TOC (optional comment first), then the chunks in order. */
function xcursorFile(spec: FileSpec): Uint8Array {
  const header = spec.fileHeader ?? 16;
  const entries = (spec.comment ? 1 : 0) + spec.images.length;
  const comment = [0x68, 0x69, 0, 0]; // "hi" padded
  const commentChunk = 20 + comment.length;
  const b = new Bytes()
    .raw(MAGIC)
    .u32(header)
    .u32(0x10000)
    .u32(spec.ntoc ?? entries);
  while (b.length < header) b.raw([0]);
  let position = header + entries * 12;
  let index = 0;
  if (spec.comment) {
    b.u32(COMMENT_TYPE)
      .u32(1)
      .u32(spec.positions?.[index] ?? position);
    position += commentChunk;
    index++;
  }
  for (const image of spec.images) {
    b.u32(IMAGE_TYPE)
      .u32(image.size)
      .u32(spec.positions?.[index] ?? position);
    position += chunkLength(image);
    index++;
  }
  if (spec.comment) {
    b.u32(20).u32(COMMENT_TYPE).u32(1).u32(1).u32(comment.length).raw(comment);
  }
  for (const image of spec.images) {
    const chunkHeader = image.chunkHeader ?? 36;
    b.u32(chunkHeader)
      .u32(image.chunkType ?? IMAGE_TYPE)
      .u32(image.chunkSubtype ?? image.size)
      .u32(1)
      .u32(image.width)
      .u32(image.height)
      .u32(image.xhot)
      .u32(image.yhot)
      .u32(image.delay ?? 50);
    for (let i = 36; i < chunkHeader; i++) b.raw([0xee]);
    const pixels = pixelsOf(image, image.pixelCount);
    for (const p of pixels) b.u32(p);
  }
  return Uint8Array.from(b.out);
}

const simple: ImageSpec = {
  size: 24,
  width: 2,
  height: 3,
  xhot: 1,
  yhot: 2,
  pixels: [0xff000000, 0x80402010, 0x00000000, 0xffffffff, 0x7f7f0000, 0x01010101],
};

function expectImage(image: CursorImage | null, spec: ImageSpec): void {
  expect(image).not.toBeNull();
  expect(image?.width).toBe(spec.width);
  expect(image?.height).toBe(spec.height);
  expect(image?.hotX).toBe(spec.xhot);
  expect(image?.hotY).toBe(spec.yhot);
  expect(Array.from(image?.pixels ?? [])).toEqual(pixelsOf(spec).map((p) => p >>> 0));
}

describe("cursorGlyphName", () => {
  it("names the cursorfont glyphs by even id", () => {
    expect(cursorGlyphName(0)).toBe("X_cursor");
    expect(cursorGlyphName(34)).toBe("crosshair");
    expect(cursorGlyphName(52)).toBe("fleur");
    expect(cursorGlyphName(60)).toBe("hand2");
    expect(cursorGlyphName(68)).toBe("left_ptr");
    expect(cursorGlyphName(108)).toBe("sb_h_double_arrow");
    expect(cursorGlyphName(116)).toBe("sb_v_double_arrow");
    expect(cursorGlyphName(150)).toBe("watch");
    expect(cursorGlyphName(152)).toBe("xterm");
  });

  it("has a distinct name for each of the 77 glyphs", () => {
    const names = new Set<string>();
    for (let glyph = 0; glyph <= 152; glyph += 2) names.add(cursorGlyphName(glyph) ?? "");
    expect(names.size).toBe(77);
    expect(names.has("")).toBe(false);
  });

  it("knows no odd, negative, fractional or out-of-range id", () => {
    for (const glyph of [1, 67, 153, 154, -2, -1, 2 ** 31, 2 ** 32 - 1, 2.5, Number.NaN]) {
      expect(cursorGlyphName(glyph)).toBeUndefined();
      expect(cursorGlyphFallbacks(glyph)).toEqual([]);
    }
  });

  it("falls back to cursor-spec names", () => {
    expect(cursorGlyphFallbacks(68)).toContain("default");
    expect(cursorGlyphFallbacks(152)).toContain("text");
    expect(cursorGlyphFallbacks(60)).toContain("pointer");
    expect(cursorGlyphFallbacks(58)).toContain("pointer");
    expect(cursorGlyphFallbacks(150)).toContain("wait");
    expect(cursorGlyphFallbacks(52)).toEqual(expect.arrayContaining(["move", "all-scroll"]));
    for (const glyph of [30, 34, 130]) expect(cursorGlyphFallbacks(glyph)).toContain("crosshair");
    expect(cursorGlyphFallbacks(108)).toEqual(expect.arrayContaining(["ew-resize", "col-resize"]));
    expect(cursorGlyphFallbacks(116)).toEqual(expect.arrayContaining(["ns-resize", "row-resize"]));
    expect(cursorGlyphFallbacks(138)[0]).toBe("n-resize");
    expect(cursorGlyphFallbacks(16)[0]).toBe("s-resize");
    expect(cursorGlyphFallbacks(70)[0]).toBe("w-resize");
    expect(cursorGlyphFallbacks(96)[0]).toBe("e-resize");
    expect(cursorGlyphFallbacks(134)[0]).toBe("nw-resize");
    expect(cursorGlyphFallbacks(136)[0]).toBe("ne-resize");
    expect(cursorGlyphFallbacks(12)[0]).toBe("sw-resize");
    expect(cursorGlyphFallbacks(14)[0]).toBe("se-resize");
    expect(cursorGlyphFallbacks(92)[0]).toBe("help");
    expect(cursorGlyphFallbacks(0)[0]).toBe("not-allowed");
  });
});

describe("parseXcursor", () => {
  it("reads a file with one image", () => {
    expectImage(parseXcursor(xcursorFile({ images: [simple] })), simple);
  });

  it("keeps premultiplied ARGB values as they are", () => {
    const image = parseXcursor(xcursorFile({ images: [simple] }));
    expect(image?.pixels[1]).toBe(0x80402010);
    expect(image?.pixels[3]).toBe(0xffffffff);
  });

  it("skips non-image chunks in the table of contents", () => {
    expectImage(parseXcursor(xcursorFile({ images: [simple], comment: true })), simple);
  });

  it("honours a file header longer than 16 bytes", () => {
    expectImage(parseXcursor(xcursorFile({ images: [simple], fileHeader: 28 })), simple);
  });

  it("honours an image chunk header longer than 36 bytes", () => {
    const spec = { ...simple, chunkHeader: 44 };
    expectImage(parseXcursor(xcursorFile({ images: [spec] })), spec);
  });

  describe("with two sizes", () => {
    const small: ImageSpec = { size: 24, width: 24, height: 24, xhot: 4, yhot: 4, seed: 24 };
    const large: ImageSpec = { size: 32, width: 32, height: 32, xhot: 5, yhot: 5, seed: 32 };
    const file = xcursorFile({ images: [small, large] });

    it("chooses the size nearest the wanted one", () => {
      expectImage(parseXcursor(file, 24), small);
      expectImage(parseXcursor(file, 27), small);
      expectImage(parseXcursor(file, 30), large);
      expectImage(parseXcursor(file, 32), large);
      expectImage(parseXcursor(file, 48), large);
      expectImage(parseXcursor(file, 1), small);
    });

    it("wants 24 when no size is given", () => {
      expectImage(parseXcursor(file), small);
    });

    it("breaks a tie in favour of the size listed first", () => {
      expectImage(parseXcursor(file, 28), small);
      expectImage(parseXcursor(xcursorFile({ images: [large, small] }), 28), large);
    });

    it("finds the nearest size wherever it is listed", () => {
      expectImage(parseXcursor(xcursorFile({ images: [large, small] }), 24), small);
    });
  });

  it("returns the first frame of an animation", () => {
    const frames: ImageSpec[] = [1, 2, 3].map((seed) => ({
      size: 24,
      width: 4,
      height: 4,
      xhot: seed,
      yhot: 0,
      seed,
    }));
    const other: ImageSpec = { size: 48, width: 8, height: 8, xhot: 0, yhot: 0, seed: 9 };
    const file = xcursorFile({ images: [other, ...frames] });
    expectImage(parseXcursor(file, 24), frames[0] as ImageSpec);
  });

  it("moves a hotspot on the far edge onto the last pixel", () => {
    const image = parseXcursor(xcursorFile({ images: [{ ...simple, xhot: 2, yhot: 3 }] }));
    expect(image?.hotX).toBe(1);
    expect(image?.hotY).toBe(2);
  });

  it("accepts the largest allowed dimensions", () => {
    const spec: ImageSpec = { size: 24, width: MAX_CURSOR_DIMENSION, height: 1, xhot: 0, yhot: 0 };
    expect(parseXcursor(xcursorFile({ images: [spec] }))?.width).toBe(MAX_CURSOR_DIMENSION);
  });

  describe("rejects", () => {
    const valid = xcursorFile({ images: [simple] });

    function patched(offset: number, value: number): Uint8Array {
      const bytes = valid.slice();
      new DataView(bytes.buffer).setUint32(offset, value >>> 0, true);
      return bytes;
    }

    it("every truncation of a valid file", () => {
      for (let end = 0; end < valid.length; end++) expect(parseXcursor(valid.subarray(0, end))).toBeNull();
      expect(parseXcursor(valid)).not.toBeNull();
    });

    it("an empty buffer", () => {
      expect(parseXcursor(new Uint8Array(0))).toBeNull();
    });

    it("a wrong magic", () => {
      expect(parseXcursor(patched(0, 0x72756359))).toBeNull();
    });

    it.each([0, 15, valid.length + 1, 2 ** 31, 2 ** 32 - 1])("a file header size of %d", (size) => {
      expect(parseXcursor(patched(4, size))).toBeNull();
    });

    it("a file with no TOC entries", () => {
      expect(parseXcursor(xcursorFile({ images: [simple], ntoc: 0 }))).toBeNull();
      expect(parseXcursor(xcursorFile({ images: [] }))).toBeNull();
    });

    it("a file whose TOC has no image", () => {
      expect(parseXcursor(xcursorFile({ images: [], comment: true }))).toBeNull();
    });

    it.each([Math.floor((valid.length - 16) / 12) + 1, 0x10001, 2 ** 31, 2 ** 32 - 1])(
      "an ntoc of %d that overflows the file",
      (ntoc) => {
        expect(parseXcursor(patched(12, ntoc))).toBeNull();
      },
    );

    it.each([-1, 0, valid.length - 35, valid.length, 2 ** 31, 2 ** 32 - 1])(
      "an image position of %d past the end",
      (position) => {
        expect(parseXcursor(xcursorFile({ images: [simple], positions: { 0: position } }))).toBeNull();
      },
    );

    it.each([0, 35, 37, 2 ** 31, 2 ** 32 - 1])("an image chunk header size of %d", (size) => {
      expect(parseXcursor(patched(28, size))).toBeNull();
    });

    it("a chunk whose type is not an image", () => {
      expect(parseXcursor(xcursorFile({ images: [{ ...simple, chunkType: COMMENT_TYPE }] }))).toBeNull();
    });

    it("a chunk whose size disagrees with its TOC entry", () => {
      expect(parseXcursor(xcursorFile({ images: [{ ...simple, chunkSubtype: 32 }] }))).toBeNull();
    });

    it.each([
      [0, 1],
      [1, 0],
      [MAX_CURSOR_DIMENSION + 1, 1],
      [1, MAX_CURSOR_DIMENSION + 1],
      [0x7fff, 1],
      [2 ** 31, 1],
      [1, 2 ** 32 - 1],
      [2 ** 32 - 1, 2 ** 32 - 1],
    ])("a %d×%d image", (width, height) => {
      const spec: ImageSpec = { size: 24, width, height, xhot: 0, yhot: 0, pixelCount: 4 };
      expect(parseXcursor(xcursorFile({ images: [spec] }))).toBeNull();
    });

    it("pixels that run past the end", () => {
      expect(parseXcursor(xcursorFile({ images: [{ ...simple, pixelCount: 5 }] }))).toBeNull();
    });

    it.each([
      [3, 0],
      [0, 4],
      [2 ** 31, 0],
      [0, 2 ** 32 - 1],
    ])("a hotspot at %d,%d beyond a 2×3 image", (xhot, yhot) => {
      expect(parseXcursor(xcursorFile({ images: [{ ...simple, xhot, yhot }] }))).toBeNull();
    });
  });

  it("never throws on random bytes", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 512 }), fc.integer({ min: -1, max: 2000 }), (bytes, size) => {
        checkResult(parseXcursor(bytes, size));
      }),
      { numRuns: 2000 },
    );
  });

  it("never throws on a valid file with random words overwritten", () => {
    const file = xcursorFile({ images: [simple, { ...simple, size: 32, seed: 7, pixels: undefined }], comment: true });
    fc.assert(
      fc.property(
        fc.array(
          fc.tuple(
            fc.nat({ max: file.length - 4 }),
            fc.oneof(fc.constantFrom(0, 1, 16, 36, 0x7fff, 2 ** 31, 2 ** 32 - 1), fc.nat()),
          ),
          { minLength: 1, maxLength: 4 },
        ),
        fc.nat({ max: file.length }),
        (writes, end) => {
          const bytes = file.slice(0, end);
          const view = new DataView(bytes.buffer);
          for (const [offset, value] of writes) if (offset + 4 <= bytes.length) view.setUint32(offset, value, true);
          checkResult(parseXcursor(bytes));
        },
      ),
      { numRuns: 3000 },
    );
  });

  /** What any non-null result must satisfy. */
  function checkResult(image: CursorImage | null): void {
    if (image === null) return;
    expect(image.width).toBeGreaterThan(0);
    expect(image.width).toBeLessThanOrEqual(MAX_CURSOR_DIMENSION);
    expect(image.height).toBeGreaterThan(0);
    expect(image.height).toBeLessThanOrEqual(MAX_CURSOR_DIMENSION);
    expect(image.pixels.length).toBe(image.width * image.height);
    expect(image.hotX).toBeGreaterThanOrEqual(0);
    expect(image.hotX).toBeLessThan(image.width);
    expect(image.hotY).toBeGreaterThanOrEqual(0);
    expect(image.hotY).toBeLessThan(image.height);
  }
});

/** A sane cursor from a real theme: modest size, hotspot inside, some opaque pixel. */
function expectSaneCursor(image: CursorImage | null): void {
  expect(image).not.toBeNull();
  if (image === null) return;
  expect(image.width).toBeGreaterThanOrEqual(8);
  expect(image.width).toBeLessThanOrEqual(256);
  expect(image.height).toBeGreaterThanOrEqual(8);
  expect(image.height).toBeLessThanOrEqual(256);
  expect(image.hotX).toBeLessThan(image.width);
  expect(image.hotY).toBeLessThan(image.height);
  expect(image.pixels.length).toBe(image.width * image.height);
  expect(image.pixels.some((p) => p >>> 24 === 0xff)).toBe(true);
}

describe("CursorTheme with the installed Adwaita theme", () => {
  const ADWAITA = "/usr/share/icons/Adwaita/cursors";
  if (!existsSync(ADWAITA)) {
    throw new Error(`${ADWAITA} is missing: apt-get install adwaita-icon-theme (see test-environment.md)`);
  }

  it.each([
    [68, "left_ptr"],
    [152, "xterm"],
    [60, "hand2"],
    [150, "watch"],
  ])("gives glyph %d (%s) a sane image", (glyph) => {
    const theme = CursorTheme.load({ searchPath: ["/usr/share/icons"], env: {} });
    expect(theme.hasCursors).toBe(true);
    expectSaneCursor(theme.forGlyph(glyph));
  });

  it("chooses images of the size asked for", () => {
    for (const size of [24, 32, 48]) {
      const theme = CursorTheme.load({ theme: "Adwaita", size, searchPath: ["/usr/share/icons"], env: {} });
      expect(theme.size).toBe(size);
      expect(theme.forGlyph(68)?.width).toBe(size);
    }
  });

  it("gives different glyphs different images and the default arrow for CURSOR_DEFAULT", () => {
    const theme = CursorTheme.load({ theme: "Adwaita", searchPath: ["/usr/share/icons"], env: {} });
    const arrow = theme.forGlyph(68);
    const text = theme.forGlyph(152);
    expect(arrow).not.toBeNull();
    expect(Array.from(text?.pixels ?? [])).not.toEqual(Array.from(arrow?.pixels ?? []));
    expect(theme.defaultImage()).toBe(arrow);
  });

  it("falls back to the default theme's chain for a theme that does not exist", () => {
    const theme = CursorTheme.load({ theme: "NoSuchTheme", searchPath: ["/usr/share/icons"], env: {} });
    expect(theme.themes[0]).toBe("NoSuchTheme");
    expect(theme.themes).toContain("Adwaita");
    expectSaneCursor(theme.forGlyph(68));
  });

  it("reads the search path, theme and size from XCURSOR_* when no option says", () => {
    const theme = CursorTheme.load({
      env: { XCURSOR_PATH: "/nonexistent:/usr/share/icons", XCURSOR_THEME: "Adwaita", XCURSOR_SIZE: "32" },
    });
    expect(theme.searchPath).toEqual(["/nonexistent", "/usr/share/icons"]);
    expect(theme.name).toBe("Adwaita");
    expect(theme.size).toBe(32);
    expect(theme.forGlyph(152)?.width).toBe(32);
  });
});

describe("CursorTheme", () => {
  const root = mkdtempSync(path.join(tmpdir(), "cursors-test-"));
  let dirCount = 0;
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  /** A fresh icons directory. */
  function iconsDir(): string {
    const dir = path.join(root, `icons-${dirCount++}`);
    mkdirSync(dir);
    return dir;
  }

  /** Writes theme `name` under `dir`: an index.theme when `inherits` is given, and one cursor file per entry. */
  function writeTheme(dir: string, name: string, inherits: string | null, cursors: Record<string, ImageSpec>): void {
    mkdirSync(path.join(dir, name, "cursors"), { recursive: true });
    if (inherits !== null) {
      writeFileSync(path.join(dir, name, "index.theme"), `[Icon Theme]\nName=${name}\nInherits=${inherits}\n`);
    }
    for (const [cursor, spec] of Object.entries(cursors)) {
      writeFileSync(path.join(dir, name, "cursors", cursor), xcursorFile({ images: [spec] }));
    }
  }

  const spec = (seed: number): ImageSpec => ({ size: 24, width: 3, height: 3, xhot: 1, yhot: 1, seed });

  it("follows Inherits= to another theme", () => {
    const dir = iconsDir();
    writeTheme(dir, "child", "parent", { xterm: spec(1) });
    writeTheme(dir, "parent", null, { xterm: spec(2), left_ptr: spec(3) });
    const theme = CursorTheme.load({ theme: "child", searchPath: [dir], env: {} });
    expect(theme.themes).toEqual(["child", "parent", "default"]);
    expectImage(theme.forGlyph(152), spec(1));
    expectImage(theme.forGlyph(68), spec(3));
    expectImage(theme.image("xterm"), spec(1));
    expect(theme.image("hand2")).toBeNull();
  });

  it("follows Inherits= across search-path directories", () => {
    const user = iconsDir();
    const system = iconsDir();
    writeTheme(user, "child", "parent", { xterm: spec(1) });
    writeTheme(system, "parent", null, { left_ptr: spec(3) });
    const theme = CursorTheme.load({ theme: "child", searchPath: [user, system], env: {} });
    expectImage(theme.forGlyph(68), spec(3));
  });

  it("lets an earlier search-path directory override a file of the same theme", () => {
    const user = iconsDir();
    const system = iconsDir();
    writeTheme(user, "t", null, { left_ptr: spec(1) });
    writeTheme(system, "t", null, { left_ptr: spec(2), xterm: spec(3) });
    const theme = CursorTheme.load({ theme: "t", searchPath: [user, system], env: {} });
    expectImage(theme.forGlyph(68), spec(1));
    expectImage(theme.forGlyph(152), spec(3));
  });

  it("stops at an inheritance cycle and still finds every theme's cursors", () => {
    const dir = iconsDir();
    writeTheme(dir, "a", "b", { xterm: spec(1) });
    writeTheme(dir, "b", "c", { hand2: spec(2) });
    writeTheme(dir, "c", "a", { left_ptr: spec(3) });
    writeTheme(dir, "self", "self", { left_ptr: spec(4) });
    const theme = CursorTheme.load({ theme: "a", searchPath: [dir], env: {} });
    expect(theme.themes).toEqual(["a", "b", "c", "default"]);
    expectImage(theme.forGlyph(152), spec(1));
    expectImage(theme.forGlyph(60), spec(2));
    expectImage(theme.forGlyph(68), spec(3));
    expect(theme.image("watch")).toBeNull();
    const self = CursorTheme.load({ theme: "self", searchPath: [dir], env: {} });
    expect(self.themes).toEqual(["self", "default"]);
    expectImage(self.defaultImage(), spec(4));
  });

  it("reads an Inherits= list and walks it depth first", () => {
    const dir = iconsDir();
    writeTheme(dir, "top", "left; right,other", {});
    writeTheme(dir, "left", "deep", {});
    writeTheme(dir, "deep", null, { xterm: spec(1) });
    writeTheme(dir, "right", null, { xterm: spec(2), left_ptr: spec(3) });
    const theme = CursorTheme.load({ theme: "top", searchPath: [dir], env: {} });
    expect(theme.themes).toEqual(["top", "left", "deep", "right", "other", "default"]);
    expectImage(theme.forGlyph(152), spec(1));
    expectImage(theme.forGlyph(68), spec(3));
  });

  it("follows a long Inherits= chain only a few levels", () => {
    const dir = iconsDir();
    for (let i = 0; i < 20; i++) writeTheme(dir, `t${i}`, `t${i + 1}`, {});
    writeTheme(dir, "t20", null, { left_ptr: spec(1) });
    const theme = CursorTheme.load({ theme: "t0", searchPath: [dir], env: {} });
    expect(theme.themes.length).toBeLessThan(12);
    expect(theme.defaultImage()).toBeNull();
  });

  it("prefers the user's theme's fallback name to an inherited theme's X name", () => {
    const dir = iconsDir();
    writeTheme(dir, "modern", "legacy", { pointer: spec(1), default: spec(2) });
    writeTheme(dir, "legacy", null, { hand2: spec(3), xterm: spec(4) });
    const theme = CursorTheme.load({ theme: "modern", searchPath: [dir], env: {} });
    expectImage(theme.forGlyph(60), spec(1));
    expectImage(theme.forGlyph(152), spec(4));
    expectImage(theme.forGlyph(150), spec(2));
    expectImage(theme.defaultImage(), spec(2));
  });

  it("follows symlinked cursor files", () => {
    const dir = iconsDir();
    writeTheme(dir, "t", null, { left_ptr: spec(1) });
    symlinkSync("left_ptr", path.join(dir, "t", "cursors", "arrow"));
    symlinkSync("missing", path.join(dir, "t", "cursors", "xterm"));
    const theme = CursorTheme.load({ theme: "t", searchPath: [dir], env: {} });
    expectImage(theme.image("arrow"), spec(1));
    expect(theme.image("xterm")).toBeNull();
  });

  it("passes over malformed, empty and directory cursor files", () => {
    const dir = iconsDir();
    writeTheme(dir, "broken", "good", {});
    writeTheme(dir, "good", null, { xterm: spec(2), hand2: spec(3), left_ptr: spec(4) });
    writeFileSync(path.join(dir, "broken", "cursors", "xterm"), Uint8Array.from([...MAGIC, 1, 2, 3]));
    writeFileSync(path.join(dir, "broken", "cursors", "hand2"), "");
    mkdirSync(path.join(dir, "broken", "cursors", "left_ptr"));
    const theme = CursorTheme.load({ theme: "broken", searchPath: [dir], env: {} });
    expectImage(theme.forGlyph(152), spec(2));
    expectImage(theme.forGlyph(60), spec(3));
    expectImage(theme.forGlyph(68), spec(4));
  });

  it("caches images, misses included", () => {
    const dir = iconsDir();
    writeTheme(dir, "t", null, { left_ptr: spec(1) });
    const theme = CursorTheme.load({ theme: "t", searchPath: [dir], env: {} });
    const first = theme.image("left_ptr");
    expect(theme.image("xterm")).toBeNull();
    writeFileSync(path.join(dir, "t", "cursors", "xterm"), xcursorFile({ images: [spec(2)] }));
    expect(theme.image("left_ptr")).toBe(first);
    expect(theme.image("xterm")).toBeNull();
  });

  it("refuses cursor and theme names that are not plain file names", () => {
    const dir = iconsDir();
    writeTheme(dir, "t", null, { left_ptr: spec(1) });
    const theme = CursorTheme.load({ theme: "t", searchPath: [dir], env: {} });
    expect(theme.image("../cursors/left_ptr")).toBeNull();
    expect(theme.image("..")).toBeNull();
    expect(theme.image("")).toBeNull();
    const escaping = CursorTheme.load({ theme: "../icons-0/t", searchPath: [dir], env: {} });
    expect(escaping.themes).toEqual(["default"]);
  });

  it("gives null for every lookup when there is no theme at all", () => {
    for (const searchPath of [[iconsDir()], [path.join(root, "nonexistent")], []]) {
      const theme = CursorTheme.load({ theme: "nothing", searchPath, env: {} });
      expect(theme.hasCursors).toBe(false);
      expect(theme.defaultImage()).toBeNull();
      for (let glyph = 0; glyph <= 152; glyph += 2) expect(theme.forGlyph(glyph)).toBeNull();
    }
  });

  it("gives null for a glyph that is not in cursorfont", () => {
    const dir = iconsDir();
    writeTheme(dir, "t", null, { left_ptr: spec(1) });
    const theme = CursorTheme.load({ theme: "t", searchPath: [dir], env: {} });
    expect(theme.forGlyph(1)).toBeNull();
    expect(theme.forGlyph(154)).toBeNull();
    expectImage(theme.forGlyph(8), spec(1));
  });

  it("uses the documented defaults with an empty environment", () => {
    const theme = CursorTheme.load({ env: { HOME: "/home/someone" } });
    expect(theme.name).toBe("default");
    expect(theme.size).toBe(24);
    expect(theme.searchPath).toEqual([
      "/home/someone/.local/share/icons",
      "/home/someone/.icons",
      "/usr/share/icons",
      "/usr/share/pixmaps",
    ]);
  });

  it("expands ~ in XCURSOR_PATH and ignores a bad XCURSOR_SIZE", () => {
    for (const XCURSOR_SIZE of ["", "0", "-5", "big", "99999999", "1025"]) {
      const theme = CursorTheme.load({ env: { HOME: "/h", XCURSOR_PATH: "~/icons::/x", XCURSOR_SIZE } });
      expect(theme.searchPath).toEqual(["/h/icons", "/x"]);
      expect(theme.size).toBe(24);
    }
  });

  it("prefers the options to the environment", () => {
    const dir = iconsDir();
    const theme = CursorTheme.load({
      theme: "mine",
      size: 48,
      searchPath: [dir],
      env: { XCURSOR_THEME: "other", XCURSOR_SIZE: "32", XCURSOR_PATH: "/x" },
    });
    expect(theme.name).toBe("mine");
    expect(theme.size).toBe(48);
    expect(theme.searchPath).toEqual([dir]);
  });

  it("falls back from a bad size option", () => {
    for (const size of [0, -1, 1.5, Number.NaN, 2 ** 31]) {
      expect(CursorTheme.load({ size, searchPath: [], env: { XCURSOR_SIZE: "32" } }).size).toBe(32);
    }
  });
});
