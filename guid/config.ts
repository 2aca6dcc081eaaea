/**
 * guid.conf: the daemon's configuration file in libconfig syntax
 * (qubes-gui-protocol.md 4.7). A hand-written libconfig parser (there is no
 * maintained npm package) turns the text into a tree of values that each know
 * their line, and the guid.conf schema on top of it checks every key against
 * its type and range and yields a {@link GuidConfig}: `global` first, then the
 * entry of `VM` for the qube this daemon serves, key by key.
 *
 * The file belongs to the GUI domain's administrator, not to a domain, but a
 * broken file must still end in one clear `file:line: message`, never in a
 * stack trace or a hang: every error is a {@link ConfigError}, nesting is
 * bounded, and the scanner is linear in the input.
 */
import { open } from "node:fs/promises";

import {
  BORDER_WIDTH,
  DEFAULT_CLIPBOARD_BUFFER_SIZE,
  MAX_CLIPBOARD_BUFFER_SIZE,
  MIN_CLIPBOARD_BUFFER_SIZE,
} from "../protocol/index.ts";
import { parseKeySequence, type KeySequence } from "./hotkeys.ts";

// ---------------------------------------------------------------------------
// Errors

/**
 * Stable identifiers of configuration faults, so that callers and tests
 * branch on the code and never on the message text.
 */
export type ConfigErrorCode =
  /** The text is not libconfig (bad token, missing '=', unbalanced brackets, bad number...). */
  | "SYNTAX"
  /** `@include`, which this parser refuses. */
  | "INCLUDE"
  /** Groups, lists and arrays nested deeper than {@link MAX_LIBCONFIG_NESTING}. */
  | "TOO_DEEP"
  /** A name set twice in one group. */
  | "DUPLICATE_KEY"
  /** A key guid.conf does not know. */
  | "UNKNOWN_KEY"
  /** A top-level setting other than `global` and `VM`. */
  | "UNKNOWN_GROUP"
  /** A required key is absent (in a paste_policy rule). */
  | "MISSING_KEY"
  /** A value of the wrong libconfig type (a string where a boolean belongs...). */
  | "WRONG_TYPE"
  /** A number outside its key's range. */
  | "OUT_OF_RANGE"
  /** A value of the right type that the key does not accept (unknown mode, bad key sequence...). */
  | "BAD_VALUE"
  /** The file does not exist. */
  | "NOT_FOUND"
  /** The file exists but could not be read. */
  | "READ"
  /** The file is larger than {@link MAX_GUID_CONFIG_BYTES}. */
  | "TOO_LARGE";

/**
 * Why a configuration was refused, with the file and line it concerns; the
 * message is `file:LINE: what, which value, what is allowed`, ready to print
 * as it is, so that an administrator can fix the file without a stack trace.
 */
export class ConfigError extends Error {
  /** Stable identifier of the fault. */
  readonly code: ConfigErrorCode;
  /** The file name as given to the parser (a path, or a label such as "guid.conf"). */
  readonly file: string;
  /** 1-based line the fault is on; 0 when it concerns the whole file (not found, unreadable, too large). */
  readonly line: number;
  /** 1-based column (UTF-16 units) where the fault starts, or null when it concerns the whole file. */
  readonly column: number | null;
  /** The message without its `file:line: ` prefix. */
  readonly detail: string;

  constructor(code: ConfigErrorCode, file: string, line: number, column: number | null, detail: string) {
    super(line > 0 ? `${file}:${line}: ${detail}` : `${file}: ${detail}`);
    this.name = "ConfigError";
    this.code = code;
    this.file = file;
    this.line = line;
    this.column = column;
    this.detail = detail;
  }
}

// ---------------------------------------------------------------------------
// libconfig values

/** Where a value starts in its file: both 1-based, the column in UTF-16 units. */
export interface LibconfigPosition {
  readonly line: number;
  readonly column: number;
}

/** `true` / `false` in any letter case. */
export interface LibconfigBoolean extends LibconfigPosition {
  readonly kind: "bool";
  readonly value: boolean;
}

/**
 * An integer, decimal or hex, with or without the `L`/`LL` suffix. Decimal
 * values are signed 64-bit (-2^63..2^63-1); hex values are kept as written,
 * unsigned 0..2^64-1 (libconfig would reinterpret 0xffffffff as -1; the
 * schema's range checks then see the number the administrator wrote).
 */
export interface LibconfigInteger extends LibconfigPosition {
  readonly kind: "int";
  readonly value: bigint;
  /** Written as `0x...`; kept so that messages show the value as written. */
  readonly hex: boolean;
}

/** A floating-point number (`1.5`, `.5`, `1e3`, `-2.5e-3`). */
export interface LibconfigFloat extends LibconfigPosition {
  readonly kind: "float";
  readonly value: number;
}

/** A string: one or more adjacent double-quoted literals, escapes resolved, concatenated. */
export interface LibconfigString extends LibconfigPosition {
  readonly kind: "string";
  readonly value: string;
}

/** A value that is not an aggregate; the only kind an array may hold. */
export type LibconfigScalar = LibconfigBoolean | LibconfigInteger | LibconfigFloat | LibconfigString;

/** `[ scalar, ... ]`: scalars of one type (all integers, all strings...). */
export interface LibconfigArray extends LibconfigPosition {
  readonly kind: "array";
  readonly elements: readonly LibconfigScalar[];
}

/** `( value, ... )`: values of any type, groups and nested lists included. */
export interface LibconfigList extends LibconfigPosition {
  readonly kind: "list";
  readonly elements: readonly LibconfigValue[];
}

/** `{ name = value; ... }`: named settings in file order, each name once; also the file itself. */
export interface LibconfigGroup extends LibconfigPosition {
  readonly kind: "group";
  readonly settings: ReadonlyMap<string, LibconfigSetting>;
}

/** Any libconfig value. */
export type LibconfigValue = LibconfigScalar | LibconfigArray | LibconfigList | LibconfigGroup;

/** `name = value;` in a group; the position is the name's. */
export interface LibconfigSetting extends LibconfigPosition {
  readonly name: string;
  readonly value: LibconfigValue;
}

/**
 * How deep groups, lists and arrays may nest; deeper input is refused so that
 * the recursive parser cannot run out of stack (real files nest 3 deep).
 */
export const MAX_LIBCONFIG_NESTING = 64;

// ---------------------------------------------------------------------------
// Scanner

type Punct = "=" | ":" | ";" | "," | "{" | "}" | "[" | "]" | "(" | ")";

/** A piece of a string literal: text, or one raw byte ≥ 0x80 from a `\xNN` escape. */
type StringPart = string | number;

type Token = LibconfigPosition &
  (
    | { readonly kind: "name"; readonly text: string }
    | { readonly kind: "bool"; readonly value: boolean }
    | { readonly kind: "int"; readonly value: bigint; readonly hex: boolean; readonly text: string }
    | { readonly kind: "float"; readonly value: number; readonly text: string }
    | { readonly kind: "string"; readonly parts: readonly StringPart[] }
    | { readonly kind: "punct"; readonly text: Punct }
    | { readonly kind: "eof" }
  );

const PUNCTUATION = new Set<string>(["=", ":", ";", ",", "{", "}", "[", "]", "(", ")"]);
const NAME = /[A-Za-z*][-A-Za-z0-9_*]*/y;
const HEX = /0[xX]([0-9A-Fa-f]+)(?:LL?)?/y;
const INTEGER = /([-+]?)([0-9]+)(?:LL?)?/y;
const FLOAT_WITH_POINT = /[-+]?[0-9]*\.[0-9]*(?:[eE][-+]?[0-9]+)?/y;
const FLOAT_WITH_EXPONENT = /[-+]?[0-9]+(?:\.[0-9]*)?[eE][-+]?[0-9]+/y;
const HEX_BYTE = /^[0-9A-Fa-f]{2}$/;
const INT64_MIN = -(1n << 63n);
const INT64_MAX = (1n << 63n) - 1n;
const MAX_SHOWN = 60;

function matchAt(pattern: RegExp, text: string, pos: number): RegExpExecArray | null {
  pattern.lastIndex = pos;
  return pattern.exec(text);
}

/**
 * Splits libconfig text into tokens with one token of look-ahead, as libconfig's
 * flex scanner does (longest match; `true`/`false` beat names of the same
 * length), and skips whitespace and the three kinds of comment.
 */
class Scanner {
  private pos = 0;
  private line = 1;
  private lineStart = 0;
  private peeked: Token | null = null;

  constructor(
    private readonly text: string,
    private readonly file: string,
  ) {
    // A UTF-8 byte order mark, which some editors write, is not content.
    if (text.charCodeAt(0) === 0xfeff) this.pos = this.lineStart = 1;
  }

  peek(): Token {
    this.peeked ??= this.scan();
    return this.peeked;
  }

  next(): Token {
    const token = this.peek();
    this.peeked = null;
    return token;
  }

  error(code: ConfigErrorCode, at: LibconfigPosition, detail: string): ConfigError {
    return new ConfigError(code, this.file, at.line, at.column, `${detail} (column ${at.column})`);
  }

  private here(pos = this.pos): LibconfigPosition {
    return { line: this.line, column: pos - this.lineStart + 1 };
  }

  private scan(): Token {
    this.skipTrivia();
    const text = this.text;
    const at = this.here();
    if (this.pos >= text.length) return { kind: "eof", ...at };
    const ch = text[this.pos] as string;
    if (PUNCTUATION.has(ch)) {
      this.pos++;
      return { kind: "punct", text: ch as Punct, ...at };
    }
    if (ch === '"') return this.scanString(at);
    if (ch === "@" && text.startsWith("@include", this.pos)) {
      throw this.error(
        "INCLUDE",
        at,
        "@include is not supported in guid.conf: put the settings in this file (qvm-start-daemon writes one file per qube)",
      );
    }
    const name = matchAt(NAME, text, this.pos);
    if (name !== null) {
      this.pos += name[0].length;
      const lower = name[0].toLowerCase();
      if (lower === "true" || lower === "false") return { kind: "bool", value: lower === "true", ...at };
      return { kind: "name", text: name[0], ...at };
    }
    const number = this.scanNumber(at);
    if (number !== null) return number;
    throw this.error("SYNTAX", at, `unexpected character ${showCharacter(text.codePointAt(this.pos) as number)}`);
  }

  private skipTrivia(): void {
    const text = this.text;
    for (;;) {
      const c = text.charCodeAt(this.pos);
      if (c === 0x0a) {
        this.pos++;
        this.line++;
        this.lineStart = this.pos;
      } else if (c === 0x20 || c === 0x09 || c === 0x0d || c === 0x0c) {
        this.pos++;
      } else if (c === 0x23 || (c === 0x2f && text.charCodeAt(this.pos + 1) === 0x2f)) {
        const end = text.indexOf("\n", this.pos);
        this.pos = end === -1 ? text.length : end;
      } else if (c === 0x2f && text.charCodeAt(this.pos + 1) === 0x2a) {
        const at = this.here();
        const end = text.indexOf("*/", this.pos + 2);
        if (end === -1) throw this.error("SYNTAX", at, "unterminated /* comment: no */ before the end of the file");
        this.advanceTo(end + 2);
      } else {
        return;
      }
    }
  }

  /** Moves to `end`, counting the newlines passed. */
  private advanceTo(end: number): void {
    for (let i = this.pos; i < end; i++) {
      if (this.text.charCodeAt(i) === 0x0a) {
        this.line++;
        this.lineStart = i + 1;
      }
    }
    this.pos = end;
  }

  /**
   * One double-quoted literal. Escapes as libconfig: \\ \" \f \n \r \t and
   * \xNN; a backslash before anything else stays a backslash. Newlines may
   * appear inside. Bytes ≥ 0x80 from \xNN are kept as bytes and decoded as
   * UTF-8 once adjacent literals are joined.
   */
  private scanString(at: LibconfigPosition): Token {
    const text = this.text;
    const parts: StringPart[] = [];
    let i = this.pos + 1;
    let chunkStart = i;
    for (;;) {
      if (i >= text.length) {
        throw this.error("SYNTAX", at, "unterminated string: no closing '\"' before the end of the file");
      }
      const c = text.charCodeAt(i);
      if (c === 0x22) {
        if (i > chunkStart) parts.push(text.slice(chunkStart, i));
        this.pos = i + 1;
        return { kind: "string", parts, ...at };
      }
      if (c === 0x0a) {
        this.line++;
        this.lineStart = i + 1;
        i++;
        continue;
      }
      if (c !== 0x5c) {
        i++;
        continue;
      }
      if (i > chunkStart) parts.push(text.slice(chunkStart, i));
      const escape = text[i + 1];
      const simple = escape === undefined ? undefined : SIMPLE_ESCAPES.get(escape);
      if (simple !== undefined) {
        parts.push(simple);
        i += 2;
      } else if ((escape === "x" || escape === "X") && HEX_BYTE.test(text.slice(i + 2, i + 4))) {
        const byte = Number.parseInt(text.slice(i + 2, i + 4), 16);
        if (byte === 0) {
          throw this.error("SYNTAX", this.here(i), "\\x00 is not allowed in a string (libconfig would cut it there)");
        }
        parts.push(byte < 0x80 ? String.fromCharCode(byte) : byte);
        i += 4;
      } else {
        parts.push("\\");
        i += 1;
      }
      chunkStart = i;
    }
  }

  /** The longest of hex, float and integer that matches here, or null. */
  private scanNumber(at: LibconfigPosition): Token | null {
    const text = this.text;
    const hex = matchAt(HEX, text, this.pos);
    const integer = matchAt(INTEGER, text, this.pos);
    let float: string | null = null;
    for (const pattern of [FLOAT_WITH_POINT, FLOAT_WITH_EXPONENT]) {
      const m = matchAt(pattern, text, this.pos);
      // libconfig's pattern also matches a lone "." or "-."; a number needs a digit.
      if (m !== null && /[0-9]/.test(m[0]) && (float === null || m[0].length > float.length)) float = m[0];
    }
    const hexLength = hex?.[0].length ?? 0;
    const integerLength = integer?.[0].length ?? 0;
    const floatLength = float?.length ?? 0;
    if (hex !== null && hexLength >= integerLength && hexLength >= floatLength) {
      this.pos += hexLength;
      const digits = (hex[1] as string).replace(/^0+/, "");
      if (digits.length > 16) throw this.error("SYNTAX", at, `integer ${shortName(hex[0])} does not fit in 64 bits`);
      return { kind: "int", value: BigInt(`0x${digits || "0"}`), hex: true, text: hex[0], ...at };
    }
    if (float !== null && floatLength > integerLength) {
      this.pos += floatLength;
      const value = Number(float);
      if (!Number.isFinite(value)) throw this.error("SYNTAX", at, `float ${shortName(float)} is too large`);
      return { kind: "float", value, text: float, ...at };
    }
    if (integer !== null) {
      this.pos += integerLength;
      const digits = (integer[2] as string).replace(/^0+/, "");
      const value = digits.length > 19 ? null : BigInt(`${integer[1]}${digits || "0"}`);
      if (value === null || value < INT64_MIN || value > INT64_MAX) {
        throw this.error("SYNTAX", at, `integer ${shortName(integer[0])} does not fit in 64 bits`);
      }
      return { kind: "int", value, hex: false, text: integer[0], ...at };
    }
    return null;
  }
}

const SIMPLE_ESCAPES: ReadonlyMap<string, string> = new Map([
  ["\\", "\\"],
  ['"', '"'],
  ["f", "\f"],
  ["n", "\n"],
  ["r", "\r"],
  ["t", "\t"],
]);

// ---------------------------------------------------------------------------
// Parser

/** Recursive descent over libconfig's grammar; the depth argument bounds the recursion. */
class Parser {
  private readonly scanner: Scanner;

  constructor(text: string, file: string) {
    this.scanner = new Scanner(text, file);
  }

  parseFile(): LibconfigGroup {
    return { kind: "group", settings: this.parseSettings(null, 0), line: 1, column: 1 };
  }

  /** Settings up to the `}` of the group opened by `open`, or to the end of the file when `open` is null. */
  private parseSettings(open: Token | null, depth: number): Map<string, LibconfigSetting> {
    const settings = new Map<string, LibconfigSetting>();
    for (;;) {
      const token = this.scanner.next();
      if (token.kind === "eof") {
        if (open === null) return settings;
        throw this.syntax(token, `the file ends inside the group opened on line ${open.line}: expected '}'`);
      }
      if (token.kind === "punct" && token.text === "}") {
        if (open !== null) return settings;
        throw this.syntax(token, "unexpected '}': no group is open");
      }
      if (token.kind !== "name") throw this.syntax(token, `expected a setting name, found ${describeToken(token)}`);
      const equals = this.scanner.next();
      if (equals.kind !== "punct" || (equals.text !== "=" && equals.text !== ":")) {
        throw this.syntax(equals, `expected '=' or ':' after ${shortName(token.text)}, found ${describeToken(equals)}`);
      }
      const value = this.parseValue(depth);
      const first = settings.get(token.text);
      if (first !== undefined) {
        throw this.scanner.error(
          "DUPLICATE_KEY",
          token,
          `duplicate setting ${shortName(token.text)} = ${describeValue(value)}: already set on line ${first.line}, and a name may appear once per group`,
        );
      }
      settings.set(token.text, { name: token.text, value, line: token.line, column: token.column });
      const terminator = this.scanner.peek();
      if (terminator.kind === "punct" && (terminator.text === ";" || terminator.text === ",")) this.scanner.next();
    }
  }

  private parseValue(depth: number): LibconfigValue {
    const token = this.scanner.next();
    const at = { line: token.line, column: token.column };
    switch (token.kind) {
      case "bool":
        return { kind: "bool", value: token.value, ...at };
      case "int":
        return { kind: "int", value: token.value, hex: token.hex, ...at };
      case "float":
        return { kind: "float", value: token.value, ...at };
      case "string":
        return { kind: "string", value: this.joinStrings(token), ...at };
      case "punct":
        if (token.text === "{" || token.text === "(" || token.text === "[") {
          if (depth >= MAX_LIBCONFIG_NESTING) {
            throw this.scanner.error(
              "TOO_DEEP",
              token,
              `groups, lists and arrays nest deeper than ${MAX_LIBCONFIG_NESTING} levels`,
            );
          }
          if (token.text === "{") return { kind: "group", settings: this.parseSettings(token, depth + 1), ...at };
          if (token.text === "(") return { kind: "list", elements: this.parseList(token, depth + 1), ...at };
          return { kind: "array", elements: this.parseArray(token, depth + 1), ...at };
        }
        break;
      default:
        break;
    }
    const hint = token.kind === "name" ? " (strings are written in double quotes)" : "";
    throw this.syntax(token, `expected a value, found ${describeToken(token)}${hint}`);
  }

  /** Adjacent literals form one string ("a" "b" is "ab"), the bytes of \xNN escapes decoded as UTF-8. */
  private joinStrings(first: Token & { kind: "string" }): string {
    const parts: StringPart[] = [];
    for (let token: Token = first; ;) {
      if (token.kind !== "string") break;
      for (const part of token.parts) parts.push(part);
      if (this.scanner.peek().kind !== "string") break;
      token = this.scanner.next();
    }
    if (parts.every((part) => typeof part === "string")) return parts.join("");
    const bytes: number[] = [];
    const encoder = new TextEncoder();
    for (const part of parts) {
      if (typeof part === "number") bytes.push(part);
      else for (const byte of encoder.encode(part)) bytes.push(byte);
    }
    try {
      return new TextDecoder("utf-8", { fatal: true }).decode(Uint8Array.from(bytes));
    } catch {
      throw this.syntax(first, "string is not valid UTF-8 once its \\x escapes are decoded");
    }
  }

  private parseList(open: Token, depth: number): LibconfigValue[] {
    const elements: LibconfigValue[] = [];
    this.parseElements(open, ")", () => elements.push(this.parseValue(depth)));
    return elements;
  }

  private parseArray(open: Token, depth: number): LibconfigScalar[] {
    const elements: LibconfigScalar[] = [];
    this.parseElements(open, "]", () => {
      const next = this.scanner.peek();
      if (next.kind === "punct" && (next.text === "{" || next.text === "(" || next.text === "[")) {
        throw this.syntax(
          next,
          `an array holds booleans, numbers or strings, not ${describeToken(next)}: use a list ( ... ) for groups and nesting`,
        );
      }
      const value = this.parseValue(depth) as LibconfigScalar;
      const first = elements[0];
      if (first !== undefined && first.kind !== value.kind) {
        throw this.syntax(
          value,
          `mismatched element type in array: ${describeValue(value)} is ${typeName(value)}, but the array opened on line ${open.line} starts with ${typeName(first)}`,
        );
      }
      elements.push(value);
    });
    return elements;
  }

  /**
   * `element (',' element?)*` up to `close`, as libconfig: a trailing comma,
   * and repeated commas, are accepted.
   */
  private parseElements(open: Token, close: ")" | "]", element: () => void): void {
    if (!this.isPunct(this.scanner.peek(), close)) {
      for (;;) {
        element();
        if (!this.isPunct(this.scanner.peek(), ",")) break;
        while (this.isPunct(this.scanner.peek(), ",")) this.scanner.next();
        if (this.isPunct(this.scanner.peek(), close)) break;
      }
    }
    const end = this.scanner.next();
    if (!this.isPunct(end, close)) {
      const what = close === ")" ? "list" : "array";
      throw this.syntax(
        end,
        `expected ',' or '${close}' in the ${what} opened on line ${open.line}, found ${describeToken(end)}`,
      );
    }
  }

  private isPunct(token: Token, text: Punct): boolean {
    return token.kind === "punct" && token.text === text;
  }

  private syntax(at: LibconfigPosition, detail: string): ConfigError {
    return this.scanner.error("SYNTAX", at, detail);
  }
}

/**
 * Parses libconfig text into its top-level group, every value carrying the
 * line and column where it starts, so that a schema on top can say where a
 * bad value is. Throws a {@link ConfigError} (`fileName:LINE: message
 * (column N)`) for any syntax error and for `@include`, which is refused; on
 * any input it returns or throws a ConfigError in time linear in the text.
 */
export function parseLibconfig(text: string, fileName: string): LibconfigGroup {
  return new Parser(text, fileName).parseFile();
}

// ---------------------------------------------------------------------------
// The guid.conf schema

/** The tray-icon colouring modes of upstream's `trayicon_mode` (and `--trayicon-mode`). */
export const TRAYICON_MODES = [
  "bg",
  "border1",
  "border2",
  "tint",
  "tint+border1",
  "tint+border2",
  "tint+saturation50",
  "tint+whitehack",
] as const;

/** One of {@link TRAYICON_MODES}: how a domain's tray icons are marked with its label colour. */
export type TrayiconMode = (typeof TRAYICON_MODES)[number];

/**
 * `override_redirect`: whether a domain may create override-redirect windows
 * ("disabled" turns them into managed windows), as upstream's flag.
 */
export type OverrideRedirectMode = "allow" | "disabled";

/** Log verbosity as upstream's -q / -v: 0 errors only, 1 normal, 2 debug. */
export type LogLevel = 0 | 1 | 2;

/**
 * One rule of `paste_policy`: whether data copied in `source` may be pasted
 * into `target`, so that the daemon can refuse a paste before it sends the
 * clipboard to a domain. Rules are tried in order; see {@link pastePolicyDecision}.
 */
export interface PasteRule {
  /** Qube the clipboard data came from, or "*" for any. */
  readonly source: string;
  /** Qube the data would be pasted into, or "*" for any. */
  readonly target: string;
  readonly action: "allow" | "deny";
  /** Line of the rule in its file, for the daemon's log of each decision. */
  readonly line: number;
}

/**
 * The daemon's settings after guid.conf (defaults, then `global`, then the
 * qube's `VM` entry), so that the rest of the daemon reads typed, checked
 * values and never the file.
 */
export interface GuidConfig {
  /** `allow_fullscreen`: a domain may make its windows fullscreen. */
  readonly allowFullscreen: boolean;
  /** `override_redirect_protection`: limit override-redirect windows as upstream (4.4). */
  readonly overrideRedirectProtection: boolean;
  /** `override_redirect`. */
  readonly overrideRedirect: OverrideRedirectMode;
  /** `allow_utf8_titles`: keep UTF-8 in titles (else non-ASCII is replaced). */
  readonly allowUtf8Titles: boolean;
  /** `secure_copy_sequence`; null = the hotkey is off. */
  readonly secureCopySequence: KeySequence | null;
  /** `secure_paste_sequence`; null = the hotkey is off. */
  readonly securePasteSequence: KeySequence | null;
  /** `max_clipboard_size`, bytes, 256..256000. */
  readonly maxClipboardSize: number;
  /** `trayicon_mode`. */
  readonly trayiconMode: TrayiconMode;
  /** `window_background_color` as 0xRRGGBB, 0..0xffffff. */
  readonly windowBackgroundColor: number;
  /** `startup_timeout`, seconds the launcher waits for the agent to connect, 0..3600. */
  readonly startupTimeout: number;
  /** `log_level`. */
  readonly logLevel: LogLevel;
  /** `events_max_delay`, milliseconds input events may be held to batch them, 0..5000. */
  readonly eventsMaxDelay: number;
  /** `border_width` (our extension), px of the daemon-drawn frame on each side, 1..16. */
  readonly borderWidth: number;
  /** `paste_policy` (our extension); empty = every paste allowed. */
  readonly pastePolicy: readonly PasteRule[];
}

/**
 * The settings when guid.conf sets nothing: upstream's defaults (4.7) and ours
 * for the extensions, so that a missing key and an absent file mean the same.
 */
export const DEFAULT_GUID_CONFIG: GuidConfig = Object.freeze({
  allowFullscreen: false,
  overrideRedirectProtection: true,
  overrideRedirect: "allow",
  allowUtf8Titles: false,
  secureCopySequence: parseKeySequence("Ctrl-Shift-c"),
  securePasteSequence: parseKeySequence("Ctrl-Shift-v"),
  maxClipboardSize: DEFAULT_CLIPBOARD_BUFFER_SIZE,
  trayiconMode: "tint",
  windowBackgroundColor: 0xffffff,
  startupTimeout: 45,
  logLevel: 1,
  eventsMaxDelay: 0,
  borderWidth: BORDER_WIDTH,
  pastePolicy: Object.freeze([]),
});

/** The largest guid.conf {@link loadGuidConfig} reads: real ones are under 4 KiB, so more is a mistake. */
export const MAX_GUID_CONFIG_BYTES = 1 << 20;

/**
 * X colour names accepted by `window_background_color`, with their X11
 * rgb.txt values (upstream resolves names with XParseColor, so "green" is
 * 0x00ff00 and "gray" 0xbebebe, not the CSS values).
 */
export const COLOUR_NAMES: ReadonlyMap<string, number> = new Map([
  ["white", 0xffffff],
  ["black", 0x000000],
  ["red", 0xff0000],
  ["green", 0x00ff00],
  ["blue", 0x0000ff],
  ["yellow", 0xffff00],
  ["gray", 0xbebebe],
  ["grey", 0xbebebe],
  ["cyan", 0x00ffff],
  ["magenta", 0xff00ff],
  ["orange", 0xffa500],
  ["purple", 0xa020f0],
]);

/** A qube name as Qubes validates it (a letter, then letters, digits, `_`, `.`, `-`; < 32 bytes). */
const QUBE_NAME = /^[A-Za-z][A-Za-z0-9_.-]{0,30}$/;

type Overrides = { -readonly [K in keyof GuidConfig]?: GuidConfig[K] };

/** Where a value sits, for messages: the file and the dotted key path (`global.max_clipboard_size`). */
interface Where {
  readonly file: string;
  readonly path: string;
}

type KeyHandler = (value: LibconfigValue, where: Where) => Overrides;

const IGNORED: KeyHandler = () => ({});

/** Every key a `global` or `VM.<qube>` group may hold, and how its value becomes a field. */
const KEYS: ReadonlyMap<string, KeyHandler> = new Map<string, KeyHandler>([
  ["allow_fullscreen", (v, at) => ({ allowFullscreen: booleanValue(v, at) })],
  ["override_redirect_protection", (v, at) => ({ overrideRedirectProtection: booleanValue(v, at) })],
  ["override_redirect", (v, at) => ({ overrideRedirect: overrideRedirectValue(v, at) })],
  ["allow_utf8_titles", (v, at) => ({ allowUtf8Titles: booleanValue(v, at) })],
  ["secure_copy_sequence", (v, at) => ({ secureCopySequence: sequenceValue(v, at) })],
  ["secure_paste_sequence", (v, at) => ({ securePasteSequence: sequenceValue(v, at) })],
  [
    "max_clipboard_size",
    (v, at) => ({ maxClipboardSize: integerValue(v, at, MIN_CLIPBOARD_BUFFER_SIZE, MAX_CLIPBOARD_BUFFER_SIZE) }),
  ],
  ["trayicon_mode", (v, at) => ({ trayiconMode: oneOf(v, at, TRAYICON_MODES) })],
  ["window_background_color", (v, at) => ({ windowBackgroundColor: colourValue(v, at) })],
  ["startup_timeout", (v, at) => ({ startupTimeout: integerValue(v, at, 0, 3600) })],
  ["log_level", (v, at) => ({ logLevel: integerValue(v, at, 0, 2) as LogLevel })],
  ["events_max_delay", (v, at) => ({ eventsMaxDelay: integerValue(v, at, 0, 5000) })],
  ["windows_count_limit", IGNORED],
  ["subwindows", IGNORED],
  ["border_width", (v, at) => ({ borderWidth: integerValue(v, at, 1, 16) })],
  ["paste_policy", (v, at) => ({ pastePolicy: pastePolicyValue(v, at) })],
]);

/**
 * Parses guid.conf text: `global: { ... };` and an optional
 * `VM: { <qube>: { ... }; ... };` whose entry for `vmName` overrides `global`
 * key by key, over {@link DEFAULT_GUID_CONFIG}. Every entry of `VM` is checked,
 * not only `vmName`'s, so a mistake shows whichever qube starts first. Throws
 * a {@link ConfigError} naming the file, line, key, value and what is allowed
 * for a syntax error, an unknown key or top-level group, a duplicate key, or a
 * value of the wrong type or out of range.
 */
export function parseGuidConfig(text: string, fileName: string, vmName?: string): GuidConfig {
  const root = parseLibconfig(text, fileName);
  let global: Overrides = {};
  let vm: Overrides = {};
  for (const [name, setting] of root.settings) {
    const value = setting.value;
    if (name === "global") {
      global = applyGroup(requireGroup(value, { file: fileName, path: "global" }), "global", fileName);
    } else if (name === "VM") {
      const vms = requireGroup(value, { file: fileName, path: "VM" });
      for (const [qube, entry] of vms.settings) {
        const path = `VM.${shortName(qube)}`;
        const overrides = applyGroup(requireGroup(entry.value, { file: fileName, path }), path, fileName);
        if (qube === vmName) vm = overrides;
      }
    } else {
      const hint =
        value.kind === "group"
          ? "the top level holds only the groups global and VM"
          : "keys belong inside global: { ... }; or VM: { <qube>: { ... }; };";
      throw new ConfigError(
        "UNKNOWN_GROUP",
        fileName,
        setting.line,
        setting.column,
        `unknown top-level setting ${shortName(name)} = ${describeValue(value)}: ${hint}`,
      );
    }
  }
  return Object.freeze({ ...DEFAULT_GUID_CONFIG, ...global, ...vm });
}

/**
 * Reads and parses a guid.conf file (see {@link parseGuidConfig}); messages
 * name the file by `path`. A missing file is a ConfigError with code
 * NOT_FOUND, so that the caller can choose upstream's behaviour (warn, go on
 * with the defaults) for its default path and fail for an explicit `-C`.
 */
export async function loadGuidConfig(path: string, vmName?: string): Promise<GuidConfig> {
  let text: string;
  try {
    const handle = await open(path, "r");
    try {
      const buffer = Buffer.alloc(MAX_GUID_CONFIG_BYTES + 1);
      let length = 0;
      while (length < buffer.length) {
        const { bytesRead } = await handle.read(buffer, length, buffer.length - length, null);
        if (bytesRead === 0) break;
        length += bytesRead;
      }
      if (length > MAX_GUID_CONFIG_BYTES) {
        throw new ConfigError("TOO_LARGE", path, 0, null, `is larger than ${MAX_GUID_CONFIG_BYTES} bytes`);
      }
      text = buffer.toString("utf8", 0, length);
    } finally {
      await handle.close();
    }
  } catch (error) {
    if (error instanceof ConfigError) throw error;
    const errno = (error as NodeJS.ErrnoException).code;
    throw new ConfigError(
      errno === "ENOENT" ? "NOT_FOUND" : "READ",
      path,
      0,
      null,
      `cannot read: ${(error as Error).message}`,
    );
  }
  return parseGuidConfig(text, path, vmName);
}

/** The outcome of {@link pastePolicyDecision}. */
export interface PasteDecision {
  readonly allowed: boolean;
  /** Index of the rule that decided, or null when none matched (allowed by default). */
  readonly rule: number | null;
}

/**
 * Decides whether a paste from `source` into `target` is allowed: the first
 * rule whose source and target match (each a name or "*") wins, and no match
 * allows, so an empty policy keeps upstream's behaviour. Pure, so that the
 * daemon can log the rule behind each decision and tests need no daemon.
 */
export function pastePolicyDecision(rules: readonly PasteRule[], source: string, target: string): PasteDecision {
  for (const [index, rule] of rules.entries()) {
    if ((rule.source === "*" || rule.source === source) && (rule.target === "*" || rule.target === target)) {
      return { allowed: rule.action === "allow", rule: index };
    }
  }
  return { allowed: true, rule: null };
}

function applyGroup(group: LibconfigGroup, path: string, file: string): Overrides {
  const out: Overrides = {};
  for (const [name, setting] of group.settings) {
    const handler = KEYS.get(name);
    if (handler === undefined) {
      throw new ConfigError(
        "UNKNOWN_KEY",
        file,
        setting.line,
        setting.column,
        `unknown key ${path}.${shortName(name)} = ${describeValue(setting.value)}; allowed keys: ${[...KEYS.keys()].join(", ")}`,
      );
    }
    Object.assign(out, handler(setting.value, { file, path: `${path}.${name}` }));
  }
  return out;
}

function requireGroup(value: LibconfigValue, at: Where): LibconfigGroup {
  if (value.kind !== "group") throw wrongType(value, at, "a group { key = value; ... }");
  return value;
}

function booleanValue(value: LibconfigValue, at: Where): boolean {
  if (value.kind !== "bool") throw wrongType(value, at, "a boolean (true or false)");
  return value.value;
}

function integerValue(value: LibconfigValue, at: Where, min: number, max: number): number {
  if (value.kind !== "int") throw wrongType(value, at, `an integer ${min}..${max}`);
  if (value.value < BigInt(min) || value.value > BigInt(max)) {
    throw new ConfigError(
      "OUT_OF_RANGE",
      at.file,
      value.line,
      value.column,
      `${at.path} = ${describeValue(value)} is out of range: allowed ${min}..${max}`,
    );
  }
  return Number(value.value);
}

function oneOf<T extends string>(value: LibconfigValue, at: Where, allowed: readonly T[]): T {
  const expected = `one of ${allowed.map((a) => `"${a}"`).join(", ")}`;
  if (value.kind !== "string") throw wrongType(value, at, `a string, ${expected}`);
  const found = allowed.find((a) => a === value.value);
  if (found === undefined) throw badValue(value, at, expected);
  return found;
}

function overrideRedirectValue(value: LibconfigValue, at: Where): OverrideRedirectMode {
  if (value.kind === "string" && value.value === "disable") {
    // qvm-start-daemon validates "disable", but upstream's daemon only knows "disabled" (4.7).
    throw badValue(value, at, `"allow" or "disabled" (with a d: "disable" is qvm-start-daemon's spelling)`);
  }
  return oneOf(value, at, ["allow", "disabled"] as const);
}

function sequenceValue(value: LibconfigValue, at: Where): KeySequence | null {
  if (value.kind !== "string") throw wrongType(value, at, 'a string such as "Ctrl-Shift-c", "Mod4-v" or "none"');
  try {
    return parseKeySequence(value.value);
  } catch (error) {
    if (!(error instanceof RangeError)) throw error;
    throw new ConfigError(
      "BAD_VALUE",
      at.file,
      value.line,
      value.column,
      `${at.path}: ${error.message}; expected e.g. "Ctrl-Shift-c", "Mod4-v" or "none"`,
    );
  }
}

function colourValue(value: LibconfigValue, at: Where): number {
  const expected = `0xRRGGBB (a string or an integer 0..0xffffff), "#RRGGBB" or a colour name (${[...COLOUR_NAMES.keys()].join(", ")})`;
  if (value.kind === "int") {
    if (value.value < 0n || value.value > 0xffffffn) {
      throw new ConfigError(
        "OUT_OF_RANGE",
        at.file,
        value.line,
        value.column,
        `${at.path} = ${describeValue(value)} is out of range: allowed 0..0xffffff`,
      );
    }
    return Number(value.value);
  }
  if (value.kind !== "string") throw wrongType(value, at, expected);
  // 0x takes 1 to 6 digits, as upstream's strtoul; # only the 6-digit form, as "#fff" means #f0f0f0 to X.
  const hex = /^(?:0[xX]([0-9A-Fa-f]{1,6})|#([0-9A-Fa-f]{6}))$/.exec(value.value);
  if (hex !== null) return Number.parseInt((hex[1] ?? hex[2]) as string, 16);
  const named = COLOUR_NAMES.get(value.value.toLowerCase());
  if (named === undefined) throw badValue(value, at, expected);
  return named;
}

function pastePolicyValue(value: LibconfigValue, at: Where): readonly PasteRule[] {
  if (value.kind === "array" && value.elements.length === 0) return Object.freeze([]);
  if (value.kind !== "list") {
    throw wrongType(value, at, 'a list of rules ( { source = "work"; target = "*"; action = "deny"; }, ... )');
  }
  return Object.freeze(
    value.elements.map((element, index) => pasteRule(element, { file: at.file, path: `${at.path}[${index}]` })),
  );
}

function pasteRule(value: LibconfigValue, at: Where): PasteRule {
  const group = requireGroup(value, at);
  const fields: { source?: string; target?: string; action?: "allow" | "deny" } = {};
  for (const [name, setting] of group.settings) {
    const where = { file: at.file, path: `${at.path}.${name}` };
    if (name === "source" || name === "target") {
      fields[name] = qubeOrAny(setting.value, where);
    } else if (name === "action") {
      fields.action = oneOf(setting.value, where, ["allow", "deny"] as const);
    } else {
      throw new ConfigError(
        "UNKNOWN_KEY",
        at.file,
        setting.line,
        setting.column,
        `unknown key ${at.path}.${shortName(name)} = ${describeValue(setting.value)}; a rule holds source, target and action`,
      );
    }
  }
  for (const name of ["source", "target", "action"] as const) {
    if (fields[name] === undefined) {
      throw new ConfigError(
        "MISSING_KEY",
        at.file,
        group.line,
        group.column,
        `${at.path} has no ${name}: a rule needs source, target (a qube name or "*") and action ("allow" or "deny")`,
      );
    }
  }
  return Object.freeze({
    source: fields.source as string,
    target: fields.target as string,
    action: fields.action as "allow" | "deny",
    line: group.line,
  });
}

function qubeOrAny(value: LibconfigValue, at: Where): string {
  const expected = 'a qube name (a letter, then letters, digits, "_", ".", "-"; at most 31) or "*"';
  if (value.kind !== "string") throw wrongType(value, at, `a string, ${expected}`);
  if (value.value !== "*" && !QUBE_NAME.test(value.value)) throw badValue(value, at, expected);
  return value.value;
}

function wrongType(value: LibconfigValue, at: Where, expected: string): ConfigError {
  return new ConfigError(
    "WRONG_TYPE",
    at.file,
    value.line,
    value.column,
    `${at.path} = ${describeValue(value)} is ${typeName(value)}: expected ${expected}`,
  );
}

function badValue(value: LibconfigValue, at: Where, expected: string): ConfigError {
  return new ConfigError(
    "BAD_VALUE",
    at.file,
    value.line,
    value.column,
    `${at.path} = ${describeValue(value)} is not allowed: expected ${expected}`,
  );
}

// ---------------------------------------------------------------------------
// Describing values and tokens in messages (bounded, control characters escaped)

function typeName(value: LibconfigValue): string {
  switch (value.kind) {
    case "bool":
      return "a boolean";
    case "int":
      return "an integer";
    case "float":
      return "a float";
    case "string":
      return "a string";
    case "array":
      return "an array";
    case "list":
      return "a list";
    case "group":
      return "a group";
  }
}

function describeValue(value: LibconfigValue): string {
  switch (value.kind) {
    case "bool":
      return String(value.value);
    case "int":
      return value.hex ? `0x${value.value.toString(16)}` : value.value.toString();
    case "float":
      return Number.isInteger(value.value) ? value.value.toFixed(1) : String(value.value);
    case "string":
      return shorten(value.value);
    case "array":
      return "[ ... ]";
    case "list":
      return "( ... )";
    case "group":
      return "{ ... }";
  }
}

function describeToken(token: Token): string {
  switch (token.kind) {
    case "name":
      return `the name ${shortName(token.text)}`;
    case "bool":
      return token.value ? "true" : "false";
    case "int":
    case "float":
      return `the number ${shortName(token.text)}`;
    case "string":
      return "a string";
    case "punct":
      return `'${token.text}'`;
    case "eof":
      return "the end of the file";
  }
}

/** A piece of the file quoted for a message: JSON-escaped (no raw control characters), at most 60 characters. */
function shorten(text: string): string {
  return JSON.stringify(text.length > MAX_SHOWN ? `${text.slice(0, MAX_SHOWN)}…` : text);
}

/** A name or number for a message: they hold only [-+.A-Za-z0-9_*], so they need no escaping, only a bound. */
function shortName(name: string): string {
  return name.length > MAX_SHOWN ? `${name.slice(0, MAX_SHOWN)}…` : name;
}

function showCharacter(codePoint: number): string {
  const hex = `U+${codePoint.toString(16).toUpperCase().padStart(4, "0")}`;
  return codePoint > 0x20 && codePoint < 0x7f ? `'${String.fromCodePoint(codePoint)}'` : hex;
}
