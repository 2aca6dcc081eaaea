/**
 * The host cursor images the daemon shows for MSG_CURSOR (protocol 1.3, §1.7
 * "Cursors"): the names of the X font-cursor glyphs a domain may ask for,
 * the freedesktop cursor-spec names a modern theme has for each, an Xcursor
 * file parser written from libXcursor's file format, and a cursor theme
 * that looks names up along the theme's `Inherits=` chain as libXcursor does.
 *
 * The theme is the GUI domain's own (trusted) files, but the parser still
 * treats every count and offset as hostile: a malformed file gives null,
 * never an exception or a read past its end. Nothing here throws on bad
 * files or missing themes; without any theme every lookup is null and the
 * daemon leaves the cursor to the compositor.
 */
import { readFileSync, statSync } from "node:fs";
import { homedir } from "node:os";
import path from "node:path";

/**
 * The X11 `cursorfont.h` glyph names, index = glyph id / 2 (XC_X_cursor 0 …
 * XC_xterm 152), each with the cursor-spec (CSS) and common alias names a
 * theme without that X name is likely to have, best first.
 */
const GLYPHS: readonly (readonly [name: string, fallbacks: readonly string[]])[] = [
  ["X_cursor", ["not-allowed", "crossed_circle", "pirate"]],
  ["arrow", ["default", "top_left_arrow"]],
  ["based_arrow_down", ["s-resize", "bottom_side", "sb_down_arrow"]],
  ["based_arrow_up", ["n-resize", "top_side", "sb_up_arrow"]],
  ["boat", []],
  ["bogosity", ["not-allowed", "X_cursor"]],
  ["bottom_left_corner", ["sw-resize", "nesw-resize", "size_bdiag"]],
  ["bottom_right_corner", ["se-resize", "nwse-resize", "size_fdiag"]],
  ["bottom_side", ["s-resize", "ns-resize", "size_ver"]],
  ["bottom_tee", ["s-resize"]],
  ["box_spiral", []],
  ["center_ptr", ["default"]],
  ["circle", ["not-allowed", "crossed_circle"]],
  ["clock", ["wait", "watch"]],
  ["coffee_mug", ["wait", "watch"]],
  ["cross", ["crosshair", "tcross"]],
  ["cross_reverse", ["crosshair", "cross"]],
  ["crosshair", ["crosshair", "cross", "tcross"]],
  ["diamond_cross", ["crosshair", "cross"]],
  ["dot", ["cell"]],
  ["dotbox", ["cell", "dot_box_mask"]],
  ["double_arrow", ["ns-resize", "row-resize", "sb_v_double_arrow", "v_double_arrow"]],
  ["draft_large", ["right_ptr"]],
  ["draft_small", ["right_ptr"]],
  ["draped_box", ["dotbox", "cell"]],
  ["exchange", ["move", "all-scroll"]],
  ["fleur", ["move", "all-scroll", "size_all"]],
  ["gobbler", []],
  ["gumby", []],
  ["hand1", ["pointer", "hand2", "hand", "grab"]],
  ["hand2", ["pointer", "hand1", "hand"]],
  ["heart", []],
  ["icon", ["dotbox", "cell"]],
  ["iron_cross", ["crosshair", "cross"]],
  ["left_ptr", ["default", "arrow", "top_left_arrow"]],
  ["left_side", ["w-resize", "ew-resize", "size_hor"]],
  ["left_tee", ["w-resize"]],
  ["leftbutton", []],
  ["ll_angle", ["sw-resize", "bottom_left_corner"]],
  ["lr_angle", ["se-resize", "bottom_right_corner"]],
  ["man", []],
  ["middlebutton", []],
  ["mouse", []],
  ["pencil", ["draft"]],
  ["pirate", ["not-allowed", "X_cursor", "crossed_circle"]],
  ["plus", ["cell", "crosshair"]],
  ["question_arrow", ["help", "left_ptr_help", "whats_this"]],
  ["right_ptr", ["draft_large"]],
  ["right_side", ["e-resize", "ew-resize", "size_hor"]],
  ["right_tee", ["e-resize"]],
  ["rightbutton", []],
  ["rtl_logo", []],
  ["sailboat", []],
  ["sb_down_arrow", ["s-resize", "bottom_side"]],
  ["sb_h_double_arrow", ["ew-resize", "col-resize", "h_double_arrow", "size_hor"]],
  ["sb_left_arrow", ["w-resize", "left_side"]],
  ["sb_right_arrow", ["e-resize", "right_side"]],
  ["sb_up_arrow", ["n-resize", "top_side"]],
  ["sb_v_double_arrow", ["ns-resize", "row-resize", "v_double_arrow", "size_ver"]],
  ["shuttle", []],
  ["sizing", ["nwse-resize", "se-resize", "bottom_right_corner"]],
  ["spider", []],
  ["spraycan", []],
  ["star", []],
  ["target", ["crosshair", "dotbox"]],
  ["tcross", ["crosshair", "cross"]],
  ["top_left_arrow", ["default", "left_ptr"]],
  ["top_left_corner", ["nw-resize", "nwse-resize", "size_fdiag"]],
  ["top_right_corner", ["ne-resize", "nesw-resize", "size_bdiag"]],
  ["top_side", ["n-resize", "ns-resize", "size_ver"]],
  ["top_tee", ["n-resize"]],
  ["trek", []],
  ["ul_angle", ["nw-resize", "top_left_corner"]],
  ["umbrella", []],
  ["ur_angle", ["ne-resize", "top_right_corner"]],
  ["watch", ["wait", "progress", "left_ptr_watch", "clock"]],
  ["xterm", ["text", "ibeam"]],
];

/** The names tried when nothing more specific exists: the theme's ordinary arrow. */
const LAST_RESORT: readonly string[] = ["left_ptr", "default"];

/** The glyph's entry in GLYPHS, or undefined unless `glyph` is an even integer 0..152. */
function glyphEntry(glyph: number): readonly [string, readonly string[]] | undefined {
  if (!Number.isInteger(glyph) || glyph < 0 || glyph % 2 !== 0) return undefined;
  return GLYPHS[glyph / 2];
}

/**
 * The X11 cursorfont name of font-cursor glyph `glyph` (68 → `"left_ptr"`),
 * or undefined for anything but an even id 0..152. It is the first name a
 * cursor theme is asked for, since X-era themes name their files after it.
 */
export function cursorGlyphName(glyph: number): string | undefined {
  return glyphEntry(glyph)?.[0];
}

/**
 * The other names, best first, under which a theme may have glyph `glyph`'s
 * shape: freedesktop cursor-spec names (152 xterm → `text`) and common
 * aliases; empty for glyphs with no modern equivalent and for unknown ids.
 * The ordinary arrow (`left_ptr`, `default`) is not in the list: it is the
 * last resort of every glyph, tried only after the whole theme chain lacks
 * all of these.
 */
export function cursorGlyphFallbacks(glyph: number): readonly string[] {
  return glyphEntry(glyph)?.[1] ?? [];
}

/**
 * One cursor image, ready for a wl_shm buffer. Shared by every caller of a
 * CursorTheme (it is cached): copy it, never modify it.
 */
export interface CursorImage {
  /** Width in buffer pixels (scale 1), 1..MAX_CURSOR_DIMENSION. */
  readonly width: number;
  /** Height in buffer pixels (scale 1), 1..MAX_CURSOR_DIMENSION. */
  readonly height: number;
  /** Hotspot x in buffer pixels from the left edge: 0 ≤ hotX < width. */
  readonly hotX: number;
  /** Hotspot y in buffer pixels from the top edge: 0 ≤ hotY < height. */
  readonly hotY: number;
  /**
   * width × height pixels, row-major from the top-left, each 0xAARRGGBB with
   * premultiplied alpha: exactly what a wl_shm ARGB8888 buffer holds, when
   * written through a Uint32Array view of it (the format is little-endian,
   * as the hosts this runs on are).
   */
  readonly pixels: Uint32Array;
}

/** "Xcur" read as a little-endian u32. */
const XCURSOR_MAGIC = 0x72756358;
/** The file header: magic, header size, version, ntoc. */
const XCURSOR_FILE_HEADER_LEN = 16;
/** One table-of-contents entry: type, subtype, position. */
const XCURSOR_TOC_ENTRY_LEN = 12;
/** The chunk type of an image (others, such as comments 0xfffe0001, are skipped). */
const XCURSOR_IMAGE_TYPE = 0xfffd0002;
/** An image chunk header: header size, type, subtype, version, width, height, xhot, yhot, delay. */
const XCURSOR_IMAGE_HEADER_LEN = 36;
/** libXcursor refuses more TOC entries than this. */
const XCURSOR_MAX_TOC = 0x10000;
/**
 * The largest width or height accepted. Xcursor allows 0x7fff; this keeps
 * one image under 4 MiB, far above any real cursor.
 */
export const MAX_CURSOR_DIMENSION = 1024;

/**
 * Parses an Xcursor file (libXcursor's format: little-endian, a table of
 * contents of chunks, image chunks of premultiplied ARGB pixels) and returns
 * the image whose nominal size is nearest `wantedSize`, the first frame when
 * that size is an animation; a tie goes to the size listed first, as in
 * libXcursor. Null for anything malformed: bad magic, a count or offset past
 * the end, a chunk that disagrees with its TOC entry, a dimension of 0 or
 * over MAX_CURSOR_DIMENSION, a hotspot beyond the image. Never throws and
 * never reads outside `bytes`, whatever they hold.
 */
export function parseXcursor(bytes: Uint8Array, wantedSize = 24): CursorImage | null {
  const length = bytes.byteLength;
  if (length < XCURSOR_FILE_HEADER_LEN) return null;
  const view = new DataView(bytes.buffer, bytes.byteOffset, length);
  const u32 = (offset: number): number => view.getUint32(offset, true);

  if (u32(0) !== XCURSOR_MAGIC) return null;
  const untrustedHeader = u32(4);
  const untrustedNtoc = u32(12);
  if (untrustedHeader < XCURSOR_FILE_HEADER_LEN || untrustedHeader > length) return null;
  if (untrustedNtoc === 0 || untrustedNtoc > XCURSOR_MAX_TOC) return null;
  if (untrustedHeader + untrustedNtoc * XCURSOR_TOC_ENTRY_LEN > length) return null;
  // Now every TOC entry lies inside `bytes`.
  const tocStart = untrustedHeader;
  const ntoc = untrustedNtoc;

  let best = -1;
  let bestSize = 0;
  for (let i = 0; i < ntoc; i++) {
    const entry = tocStart + i * XCURSOR_TOC_ENTRY_LEN;
    if (u32(entry) !== XCURSOR_IMAGE_TYPE) continue;
    const size = u32(entry + 4);
    if (best === -1 || Math.abs(size - wantedSize) < Math.abs(bestSize - wantedSize)) {
      best = i;
      bestSize = size;
    }
  }
  if (best === -1) return null;

  const entry = tocStart + best * XCURSOR_TOC_ENTRY_LEN;
  const untrustedPosition = u32(entry + 8);
  if (untrustedPosition + XCURSOR_IMAGE_HEADER_LEN > length) return null;
  const chunk = untrustedPosition;
  const untrustedChunkHeader = u32(chunk);
  if (untrustedChunkHeader < XCURSOR_IMAGE_HEADER_LEN) return null;
  if (u32(chunk + 4) !== XCURSOR_IMAGE_TYPE || u32(chunk + 8) !== bestSize) return null;
  const untrustedWidth = u32(chunk + 16);
  const untrustedHeight = u32(chunk + 20);
  const untrustedXhot = u32(chunk + 24);
  const untrustedYhot = u32(chunk + 28);
  if (untrustedWidth === 0 || untrustedWidth > MAX_CURSOR_DIMENSION) return null;
  if (untrustedHeight === 0 || untrustedHeight > MAX_CURSOR_DIMENSION) return null;
  const width = untrustedWidth;
  const height = untrustedHeight;
  const pixelStart = chunk + untrustedChunkHeader;
  if (pixelStart + width * height * 4 > length) return null;
  // libXcursor accepts a hotspot on the far edge (xhot == width); refuse past it.
  if (untrustedXhot > width || untrustedYhot > height) return null;
  // Clamp the far edge onto the last pixel: now 0 ≤ hotX < width, 0 ≤ hotY < height.
  const hotX = Math.min(untrustedXhot, width - 1);
  const hotY = Math.min(untrustedYhot, height - 1);

  const pixels = new Uint32Array(width * height);
  for (let i = 0; i < pixels.length; i++) pixels[i] = u32(pixelStart + i * 4);
  return { width, height, hotX, hotY, pixels };
}

/** How a CursorTheme is found; every field is optional. */
export interface CursorThemeOptions {
  /** The theme name; else XCURSOR_THEME; else `"default"`. */
  readonly theme?: string;
  /** The nominal cursor size in pixels (1..MAX_CURSOR_DIMENSION); else XCURSOR_SIZE; else 24. */
  readonly size?: number;
  /**
   * The directories holding themes, searched in order; else XCURSOR_PATH
   * (colon separated); else `~/.local/share/icons`, `~/.icons`,
   * `/usr/share/icons`, `/usr/share/pixmaps`. A leading `~` is the home
   * directory.
   */
  readonly searchPath?: readonly string[];
  /** The environment to read XCURSOR_* and HOME from; process.env when absent (tests pass their own). */
  readonly env?: Readonly<Record<string, string | undefined>>;
}

const DEFAULT_THEME = "default";
const DEFAULT_SIZE = 24;
const DEFAULT_SEARCH_PATH = ["~/.local/share/icons", "~/.icons", "/usr/share/icons", "/usr/share/pixmaps"];
/** Inherits= hops followed from the requested theme (libXcursor follows any depth). */
const MAX_INHERIT_DEPTH = 8;
/** Themes in one chain at most, whatever the fan-out of Inherits= lists. */
const MAX_CHAIN_THEMES = 32;
/** index.theme files larger than this are ignored (real ones are a few KiB). */
const MAX_INDEX_THEME_BYTES = 64 * 1024;
/** Cursor files larger than this are ignored (Adwaita's animated watch is 4 MiB). */
const MAX_CURSOR_FILE_BYTES = 32 * 1024 * 1024;

/**
 * A cursor theme: the requested theme, the themes it inherits, then the
 * `default` theme's chain (libXcursor's fallback), looked up in every
 * directory of the search path. Images are loaded on first use and cached,
 * misses included. A lookup never throws; a missing, unreadable or malformed
 * cursor file counts as absent.
 */
export class CursorTheme {
  /** The theme asked for (option, XCURSOR_THEME or "default"), whether or not it exists. */
  readonly name: string;
  /** The nominal size in pixels whose images are chosen (the nearest one a file has). */
  readonly size: number;
  /** The directories searched for themes, in order, `~` expanded. */
  readonly searchPath: readonly string[];
  /** The themes looked in, most specific first, each once (inheritance cycles cut). */
  readonly themes: readonly string[];
  /** Per theme in `themes` order: its existing `<dir>/<theme>/cursors` directories in search-path order. */
  readonly #cursorDirs: readonly (readonly string[])[];
  /** Parsed files by path (null: absent or malformed). */
  readonly #files = new Map<string, CursorImage | null>();
  /** Results of image() by cursor name. */
  readonly #byName = new Map<string, CursorImage | null>();
  /** Results of forGlyph() by glyph id. */
  readonly #byGlyph = new Map<number, CursorImage | null>();
  /** The result of defaultImage(); undefined until first asked. */
  #default: CursorImage | null | undefined;

  private constructor(name: string, size: number, searchPath: readonly string[], themes: readonly string[]) {
    this.name = name;
    this.size = size;
    this.searchPath = searchPath;
    this.themes = themes;
    this.#cursorDirs = themes.map((theme) =>
      searchPath.map((dir) => path.join(dir, theme, "cursors")).filter((dir) => isDirectory(dir)),
    );
  }

  /**
   * Finds the theme from `options` and the environment (XCURSOR_PATH,
   * XCURSOR_THEME, XCURSOR_SIZE, as libXcursor reads them) and resolves its
   * `Inherits=` chain now; images are read later, on first use. Never
   * throws: with no theme on disk every lookup of the result is null.
   */
  static load(options: CursorThemeOptions = {}): CursorTheme {
    const env = options.env ?? process.env;
    const home = env.HOME ?? safeHomedir();
    const searchPath = (options.searchPath ?? splitSearchPath(env.XCURSOR_PATH) ?? DEFAULT_SEARCH_PATH)
      .filter((dir) => dir !== "")
      .map((dir) => expandHome(dir, home));
    const name =
      [options.theme, env.XCURSOR_THEME].find((theme) => theme !== undefined && theme !== "") ?? DEFAULT_THEME;
    const size = validSize(options.size) ?? validSize(parseDecimal(env.XCURSOR_SIZE)) ?? DEFAULT_SIZE;
    const themes: string[] = [];
    const visited = new Set<string>();
    collectThemes(name, 0, searchPath, visited, themes);
    collectThemes(DEFAULT_THEME, 0, searchPath, visited, themes);
    return new CursorTheme(name, size, searchPath, themes);
  }

  /** Whether any theme of the chain has a cursors directory; false means every lookup is null. */
  get hasCursors(): boolean {
    return this.#cursorDirs.some((dirs) => dirs.length > 0);
  }

  /**
   * The image of cursor `name` (`"left_ptr"`, `"text"`): from the first
   * theme of the chain that has a well-formed file of that name, or null
   * when none has. A name that is not a plain file name is null.
   */
  image(name: string): CursorImage | null {
    let image = this.#byName.get(name);
    if (image === undefined) {
      image = this.#find([name]);
      this.#byName.set(name, image);
    }
    return image;
  }

  /**
   * The image for X font-cursor glyph `glyph` (a trusted MSG_CURSOR glyph,
   * even 0..152): the glyph's X name or one of its cursor-spec fallbacks,
   * from the most specific theme that has any of them (so the user's theme
   * wins over an inherited one that has the exact X name), else the
   * default arrow. Null for an unknown glyph or when the theme has nothing.
   */
  forGlyph(glyph: number): CursorImage | null {
    let image = this.#byGlyph.get(glyph);
    if (image === undefined) {
      const entry = glyphEntry(glyph);
      image = entry === undefined ? null : (this.#find([entry[0], ...entry[1]]) ?? this.defaultImage());
      this.#byGlyph.set(glyph, image);
    }
    return image;
  }

  /** The theme's ordinary arrow (`left_ptr`, else `default`), for CURSOR_DEFAULT; null when it has none. */
  defaultImage(): CursorImage | null {
    if (this.#default === undefined) this.#default = this.#find(LAST_RESORT);
    return this.#default;
  }

  /** The first well-formed file of any of `names`, theme by theme (most specific first), then name by name. */
  #find(names: readonly string[]): CursorImage | null {
    const safeNames = names.filter((name) => isPlainName(name));
    for (const dirs of this.#cursorDirs) {
      for (const name of safeNames) {
        for (const dir of dirs) {
          const image = this.#file(path.join(dir, name));
          if (image !== null) return image;
        }
      }
    }
    return null;
  }

  /** The parsed cursor file at `file` (following symlinks), cached; null when absent, too big or malformed. */
  #file(file: string): CursorImage | null {
    let image = this.#files.get(file);
    if (image === undefined) {
      const bytes = readSmallFile(file, MAX_CURSOR_FILE_BYTES);
      image = bytes === null ? null : parseXcursor(bytes, this.size);
      this.#files.set(file, image);
    }
    return image;
  }
}

/**
 * Appends `theme` and, depth first, the themes its index.theme inherits to
 * `out`, each once: `visited` cuts cycles and diamonds, MAX_INHERIT_DEPTH
 * and MAX_CHAIN_THEMES bound the walk. Like libXcursor, the first
 * index.theme in search-path order that has an `Inherits=` line is used.
 */
function collectThemes(
  theme: string,
  depth: number,
  searchPath: readonly string[],
  visited: Set<string>,
  out: string[],
): void {
  if (!isPlainName(theme) || visited.has(theme) || out.length >= MAX_CHAIN_THEMES) return;
  visited.add(theme);
  out.push(theme);
  if (depth >= MAX_INHERIT_DEPTH) return;
  for (const dir of searchPath) {
    const bytes = readSmallFile(path.join(dir, theme, "index.theme"), MAX_INDEX_THEME_BYTES);
    if (bytes === null) continue;
    const inherits = parseInherits(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("utf8"));
    if (inherits === null) continue;
    for (const parent of inherits) collectThemes(parent, depth + 1, searchPath, visited, out);
    return;
  }
}

const INHERITS_LINE = /^[ \t]*Inherits[ \t]*=(.*)$/m;

/** The theme names of the first `Inherits=` line of an index.theme (separated by `,`, `;` or blanks), or null without one. */
function parseInherits(text: string): string[] | null {
  const match = INHERITS_LINE.exec(text);
  if (match === null) return null;
  return (match[1] as string).split(/[\s,;]+/).filter((name) => name !== "");
}

/** Whether `name` can name a theme or cursor: one path component, not `.`/`..`, no NUL. */
function isPlainName(name: string): boolean {
  return name !== "" && name !== "." && name !== ".." && !name.includes("/") && !name.includes("\0");
}

/** The contents of the regular file (symlinks followed) at `file` when it exists and holds at most `maxBytes`; else null. */
function readSmallFile(file: string, maxBytes: number): Uint8Array | null {
  try {
    const stat = statSync(file, { throwIfNoEntry: false });
    if (stat === undefined || !stat.isFile() || stat.size > maxBytes) return null;
    const bytes = readFileSync(file);
    return bytes.byteLength > maxBytes ? null : bytes;
  } catch {
    return null;
  }
}

/** Whether `dir` is a directory (symlinks followed); false on any error. */
function isDirectory(dir: string): boolean {
  try {
    return statSync(dir, { throwIfNoEntry: false })?.isDirectory() ?? false;
  } catch {
    return false;
  }
}

/** XCURSOR_PATH split at colons, or null when unset or empty. */
function splitSearchPath(value: string | undefined): string[] | null {
  if (value === undefined || value === "") return null;
  return value.split(":");
}

/** `dir` with a leading `~` (alone or before `/`) replaced by `home`; unchanged without a home. */
function expandHome(dir: string, home: string | undefined): string {
  if (home === undefined || home === "") return dir;
  if (dir === "~") return home;
  if (dir.startsWith("~/")) return path.join(home, dir.slice(2));
  return dir;
}

/** os.homedir(), or undefined when the system cannot say. */
function safeHomedir(): string | undefined {
  try {
    return homedir();
  } catch {
    return undefined;
  }
}

/** The integer a string of decimal digits spells, or undefined for anything else. */
function parseDecimal(value: string | undefined): number | undefined {
  if (value === undefined || !/^[0-9]{1,6}$/.test(value.trim())) return undefined;
  return Number(value.trim());
}

/** `size` when it is an integer 1..MAX_CURSOR_DIMENSION, else undefined. */
function validSize(size: number | undefined): number | undefined {
  if (size === undefined || !Number.isInteger(size) || size < 1 || size > MAX_CURSOR_DIMENSION) return undefined;
  return size;
}
