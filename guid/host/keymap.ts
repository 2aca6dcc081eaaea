/**
 * The keysyms of the host compositor's keymap, read from the text of
 * wl_keyboard.keymap (format xkb_v1, as libxkbcommon's
 * xkb_keymap_get_as_string writes it). The daemon only needs to know which
 * keys give `c`/`C` and `v`/`V` for the clipboard hotkeys (Ctrl+Shift+C,
 * Ctrl+Shift+V) whatever the user's layout, so this reads two sections of the
 * keymap and nothing else: `xkb_keycodes` (key names → keycodes) and
 * `xkb_symbols` (key names → keysyms of group 1, levels 1 and 2). It is a
 * tolerant reader, not a validator: a part it does not understand is
 * skipped, and it never throws.
 */

/** The keysyms a host keymap gives each key, as far as the daemon needs them. */
export interface HostKeymap {
  /**
   * The keysym names of levels 1 and 2 of group 1 of the key with this evdev
   * code (`["c", "C"]`, `["Shift_L"]`), or an empty list when the keymap says
   * nothing about it. A level the keymap leaves empty, or that holds several
   * keysyms, is `"NoSymbol"`, as xkb_state_key_get_one_sym reports it.
   */
  keysymsOf(evdevCode: number): readonly string[];
  /** The evdev codes, ascending, of the keys that give `keysym` at level 1 or 2 of group 1. */
  codesFor(keysym: string): number[];
}

/** X keycodes are evdev codes plus 8 (the XKB "evdev" keycodes). */
const EVDEV_OFFSET = 8;
/** Linux KEY_MAX: the largest evdev key code. */
const KEY_MAX = 0x2ff;
const NO_SYMBOL = "NoSymbol";
/** Levels kept per key: 1 (plain) and 2 (Shift). */
const LEVELS = 2;
/** Alias hops followed before giving up (aliases of aliases are legal, loops are not). */
const MAX_ALIAS_HOPS = 8;

type TokenKind = "word" | "keyname" | "string" | "punct";

interface Token {
  readonly kind: TokenKind;
  readonly text: string;
}

const WORD = /[A-Za-z0-9_]+/y;
const KEYNAME = /<([^<>\s]*)>/y;

/** Splits keymap text into words, `<key names>`, strings and single punctuation characters; drops comments. */
function tokenize(text: string): Token[] {
  const tokens: Token[] = [];
  let at = 0;
  while (at < text.length) {
    const c = text[at] as string;
    if (c === " " || c === "\t" || c === "\n" || c === "\r" || c === "\f" || c === "\v") {
      at++;
    } else if (c === "#" || (c === "/" && text[at + 1] === "/")) {
      const end = text.indexOf("\n", at);
      at = end === -1 ? text.length : end + 1;
    } else if (c === "/" && text[at + 1] === "*") {
      const end = text.indexOf("*/", at + 2);
      at = end === -1 ? text.length : end + 2;
    } else if (c === '"') {
      let end = at + 1;
      while (end < text.length && text[end] !== '"') end += text[end] === "\\" ? 2 : 1;
      tokens.push({ kind: "string", text: text.slice(at + 1, Math.min(end, text.length)) });
      at = end + 1;
    } else if (c === "<") {
      KEYNAME.lastIndex = at;
      const match = KEYNAME.exec(text);
      if (match) {
        tokens.push({ kind: "keyname", text: match[1] as string });
        at = KEYNAME.lastIndex;
      } else {
        tokens.push({ kind: "punct", text: c });
        at++;
      }
    } else {
      WORD.lastIndex = at;
      const match = WORD.exec(text);
      if (match) {
        tokens.push({ kind: "word", text: match[0] });
        at = WORD.lastIndex;
      } else {
        tokens.push({ kind: "punct", text: c });
        at++;
      }
    }
  }
  return tokens;
}

function isPunct(token: Token | undefined, text: string): boolean {
  return token !== undefined && token.kind === "punct" && token.text === text;
}

/**
 * The statements (without their `;`) of every section named `section`. A `;`
 * always ends a statement, even inside an unclosed brace, so that one broken
 * statement cannot swallow the rest of the section.
 */
function sectionStatements(tokens: readonly Token[], section: string): Token[][] {
  const statements: Token[][] = [];
  let at = 0;
  while (at < tokens.length) {
    const token = tokens[at] as Token;
    at++;
    if (token.kind !== "word" || token.text !== section) continue;
    while (at < tokens.length && (tokens[at] as Token).kind === "string") at++;
    if (!isPunct(tokens[at], "{")) continue;
    at++;
    let depth = 1;
    let current: Token[] = [];
    while (at < tokens.length && depth > 0) {
      const t = tokens[at] as Token;
      at++;
      if (isPunct(t, ";")) {
        if (current.length > 0) statements.push(current);
        current = [];
        depth = 1;
        continue;
      }
      if (isPunct(t, "{")) depth++;
      else if (isPunct(t, "}")) depth--;
      if (depth > 0) current.push(t);
    }
    if (current.length > 0) statements.push(current);
  }
  return statements;
}

const MERGE_MODES = new Set(["override", "augment", "replace"]);
const INCLUDE_WORDS = new Set(["include", "override", "augment", "replace", "alternate"]);

/**
 * The statement without leading includes (`include "pc"`, which end at the
 * line, not at a `;`) and without its merge mode, and that mode ("override"
 * when none).
 */
function mergeMode(statement: readonly Token[]): { mode: string; rest: readonly Token[] } {
  let rest = statement;
  while (rest[0]?.kind === "word" && INCLUDE_WORDS.has(rest[0].text) && rest[1]?.kind === "string") {
    rest = rest.slice(2);
  }
  const first = rest[0];
  if (first?.kind === "word" && MERGE_MODES.has(first.text)) return { mode: first.text, rest: rest.slice(1) };
  return { mode: "override", rest };
}

function parseKeycode(text: string): number | null {
  if (!/^(?:[0-9]+|0[xX][0-9a-fA-F]+)$/.test(text)) return null;
  const value = Number(text);
  return value >= EVDEV_OFFSET && value <= KEY_MAX + EVDEV_OFFSET ? value : null;
}

interface Keycodes {
  readonly codes: Map<string, number>;
  readonly aliases: Map<string, string>;
}

/** Reads `<NAME> = 38;` and `alias <A> = <B>;`; skips minimum, maximum, indicators and anything else. */
function readKeycodes(statements: readonly Token[][]): Keycodes {
  const codes = new Map<string, number>();
  const aliases = new Map<string, string>();
  for (const statement of statements) {
    const { mode, rest } = mergeMode(statement);
    const [a, b, c, d] = rest;
    if (rest.length === 3 && a?.kind === "keyname" && isPunct(b, "=") && c?.kind === "word") {
      const code = parseKeycode(c.text);
      if (code !== null && !(mode === "augment" && codes.has(a.text))) codes.set(a.text, code);
    } else if (
      rest.length === 4 &&
      a?.kind === "word" &&
      a.text === "alias" &&
      b?.kind === "keyname" &&
      isPunct(c, "=") &&
      d?.kind === "keyname"
    ) {
      if (!(mode === "augment" && aliases.has(b.text))) aliases.set(b.text, d.text);
    }
  }
  return { codes, aliases };
}

/** Splits `tokens` at the commas outside any bracket. */
function splitTopLevel(tokens: readonly Token[]): Token[][] {
  const parts: Token[][] = [];
  let current: Token[] = [];
  let depth = 0;
  for (const t of tokens) {
    if (t.kind === "punct") {
      if (t.text === "[" || t.text === "{" || t.text === "(") depth++;
      else if (t.text === "]" || t.text === "}" || t.text === ")") depth = Math.max(0, depth - 1);
      else if (t.text === "," && depth === 0) {
        parts.push(current);
        current = [];
        continue;
      }
    }
    current.push(t);
  }
  parts.push(current);
  return parts;
}

/** The tokens between `open` at `tokens[from]` and its matching `close`, or null when it is not there. */
function bracketed(tokens: readonly Token[], from: number, open: string, close: string): Token[] | null {
  if (!isPunct(tokens[from], open)) return null;
  let depth = 0;
  for (let i = from; i < tokens.length; i++) {
    const t = tokens[i] as Token;
    if (isPunct(t, open)) depth++;
    else if (isPunct(t, close) && --depth === 0) return tokens.slice(from + 1, i);
  }
  return null;
}

/** The first two levels of a `[ a, A, ... ]` list. */
function readLevels(inside: readonly Token[]): string[] {
  if (inside.length === 0) return [];
  return splitTopLevel(inside)
    .slice(0, LEVELS)
    .map((level) => (level.length === 1 && level[0]?.kind === "word" ? level[0].text : NO_SYMBOL));
}

function isGroupOne(tokens: readonly Token[]): boolean {
  return tokens.length === 1 && tokens[0]?.kind === "word" && /^(?:group1|1)$/i.test(tokens[0].text);
}

/** Group 1 of a key body: `symbols[Group1]= [...]` or `symbols[1]= [...]`, else the first bare `[...]`. */
function readGroupOne(body: readonly Token[]): string[] | null {
  let bare: string[] | null = null;
  for (const item of splitTopLevel(body)) {
    const first = item[0];
    if (isPunct(first, "[")) {
      const inside = bracketed(item, 0, "[", "]");
      if (inside !== null && bare === null) bare = readLevels(inside);
    } else if (first?.kind === "word" && first.text.toLowerCase() === "symbols") {
      const group = bracketed(item, 1, "[", "]");
      if (group === null || !isGroupOne(group)) continue;
      const eq = 1 + group.length + 2;
      if (!isPunct(item[eq], "=")) continue;
      const inside = bracketed(item, eq + 1, "[", "]");
      if (inside !== null) return readLevels(inside);
    }
  }
  return bare;
}

/** Reads `key <NAME> { ... };` statements into key name → levels; skips everything else. */
function readSymbols(statements: readonly Token[][]): Map<string, string[]> {
  const keys = new Map<string, string[]>();
  for (const statement of statements) {
    const { mode, rest } = mergeMode(statement);
    const [keyword, name] = rest;
    if (keyword?.kind !== "word" || keyword.text !== "key" || name?.kind !== "keyname") continue;
    const body = bracketed(rest, 2, "{", "}") ?? (isPunct(rest[2], "{") ? rest.slice(3) : null);
    if (body === null) continue;
    const levels = readGroupOne(body);
    if (levels === null || (mode === "augment" && keys.has(name.text))) continue;
    keys.set(name.text, levels);
  }
  return keys;
}

function resolve(name: string, { codes, aliases }: Keycodes): number | undefined {
  let current = name;
  for (let hop = 0; hop <= MAX_ALIAS_HOPS; hop++) {
    const code = codes.get(current);
    if (code !== undefined) return code;
    const next = aliases.get(current);
    if (next === undefined) return undefined;
    current = next;
  }
  return undefined;
}

class ParsedKeymap implements HostKeymap {
  constructor(private readonly byCode: ReadonlyMap<number, readonly string[]>) {}

  keysymsOf(evdevCode: number): readonly string[] {
    return this.byCode.get(evdevCode) ?? [];
  }

  codesFor(keysym: string): number[] {
    if (keysym === NO_SYMBOL) return [];
    const codes: number[] = [];
    for (const [code, levels] of this.byCode) if (levels.includes(keysym)) codes.push(code);
    return codes.sort((a, b) => a - b);
  }
}

/**
 * Reads the keysyms of group 1, levels 1 and 2, of every key of an xkb_v1
 * keymap text, so that the daemon can recognise its hotkeys in the user's
 * layout. Never throws: text it cannot read gives a keymap that knows fewer
 * keys, or none.
 */
export function parseKeymap(text: string): HostKeymap {
  const byCode = new Map<number, readonly string[]>();
  const tokens = tokenize(text);
  const keycodes = readKeycodes(sectionStatements(tokens, "xkb_keycodes"));
  for (const [name, levels] of readSymbols(sectionStatements(tokens, "xkb_symbols"))) {
    const code = resolve(name, keycodes);
    if (code !== undefined) byCode.set(code - EVDEV_OFFSET, Object.freeze(levels));
  }
  return new ParsedKeymap(byCode);
}
