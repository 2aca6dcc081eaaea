/**
 * The secure copy and paste hotkeys (qubes-gui-protocol.md 4.3): the upstream
 * `secure_copy_sequence` syntax (`Ctrl-Shift-c`, `Mod4-c`, `none`), parsed
 * once at start-up, and the test run on every key press on a domain's window
 * before the press is forwarded, so the two sequences never reach the domain.
 */

/** X modifier bit of Shift (X.h `ShiftMask`); the bits below are the X key event `state` bits, which the protocol carries. */
export const SHIFT_MASK = 0x1;
/** X modifier bit of Caps Lock (`LockMask`); ignored when hotkeys are compared. */
export const LOCK_MASK = 0x2;
/** X modifier bit of Control (`ControlMask`). */
export const CONTROL_MASK = 0x4;
/** X modifier bit Mod1 (`Mod1Mask`), usually Alt. */
export const MOD1_MASK = 0x8;
/** X modifier bit Mod2 (`Mod2Mask`), usually Num Lock; ignored when hotkeys are compared. */
export const MOD2_MASK = 0x10;
/** X modifier bit Mod3 (`Mod3Mask`), unbound on most layouts. */
export const MOD3_MASK = 0x20;
/** X modifier bit Mod4 (`Mod4Mask`), usually the Super (Windows) key. */
export const MOD4_MASK = 0x40;
/** X modifier bit Mod5 (`Mod5Mask`), usually AltGr (ISO_Level3_Shift); ignored when hotkeys are compared. */
export const MOD5_MASK = 0x80;

/**
 * The modifier bits a hotkey comparison looks at: Shift, Control, Mod1, Mod3
 * and Mod4, as upstream qubes-guid, so that Num Lock, Caps Lock and AltGr
 * being on does not stop Ctrl+Shift+C from working.
 */
export const HOTKEY_MODIFIER_MASK = SHIFT_MASK | CONTROL_MASK | MOD1_MASK | MOD3_MASK | MOD4_MASK;

/**
 * A parsed hotkey: the modifiers that must be held and the key, so that
 * matching a key press is a mask compare and a keysym compare.
 */
export interface KeySequence {
  /** X modifier bits that must be down, a subset of {@link HOTKEY_MODIFIER_MASK}; 0 = none. */
  readonly modifiers: number;
  /** The X keysym name as written in the configuration, e.g. "c", "Insert", "F12". */
  readonly keysym: string;
  /** The sequence as written (e.g. "Ctrl-Shift-c"), for logs and error messages. */
  readonly text: string;
}

/** Modifier names (lower case) → their bit; the upstream names plus `Control`. */
const MODIFIERS: ReadonlyMap<string, number> = new Map([
  ["shift", SHIFT_MASK],
  ["ctrl", CONTROL_MASK],
  ["control", CONTROL_MASK],
  ["alt", MOD1_MASK],
  ["mod1", MOD1_MASK],
  ["mod3", MOD3_MASK],
  ["mod4", MOD4_MASK],
]);

/** Modifiers that upstream's parser knows but its comparison ignores, so a sequence holding one never matches. */
const IGNORED_MODIFIERS: ReadonlyMap<string, string> = new Map([
  ["mod2", "Mod2 (usually Num Lock)"],
  ["mod5", "Mod5 (usually AltGr)"],
  ["lock", "Lock (Caps Lock)"],
]);

const KEY_NAME = /^[A-Za-z0-9_]+$/;
const SINGLE_LETTER = /^[A-Za-z]$/;
const MAX_SHOWN = 60;

/**
 * Parses an upstream hotkey such as `Ctrl-Shift-c`: modifiers Shift, Ctrl
 * (or Control), Alt (= Mod1), Mod1, Mod3, Mod4, case-insensitive, joined by
 * `-`, then an X keysym name. `none` or `disable` (any case) turns the
 * hotkey off and gives null. Throws a RangeError naming the problem for an
 * empty sequence, an unknown modifier, a missing key or a key name with
 * characters outside [A-Za-z0-9_]. Mod2, Mod5 and Lock are refused: the
 * comparison ignores them (as upstream's), so such a sequence could never fire.
 * The key name is not checked against the keysym table, which this module does
 * not carry: an unknown name simply never matches.
 */
export function parseKeySequence(text: string): KeySequence | null {
  const lower = text.toLowerCase();
  if (lower === "none" || lower === "disable") return null;
  if (text === "") throw badSequence(text, "it is empty (use none or disable to turn the hotkey off)");
  const parts = text.split("-");
  const key = parts.pop() as string;
  let modifiers = 0;
  for (const part of parts) {
    if (part === "") throw badSequence(text, "it has an empty part (two '-' in a row, or a leading '-')");
    const bit = MODIFIERS.get(part.toLowerCase());
    if (bit === undefined) {
      const ignored = IGNORED_MODIFIERS.get(part.toLowerCase());
      if (ignored !== undefined) {
        throw badSequence(text, `${ignored} is ignored when keys are compared, so this sequence could never match`);
      }
      throw badSequence(text, `unknown modifier ${show(part)} (allowed: Shift, Ctrl, Control, Alt, Mod1, Mod3, Mod4)`);
    }
    modifiers |= bit;
  }
  if (key === "") throw badSequence(text, "no key after the last '-'");
  if (MODIFIERS.has(key.toLowerCase()) || IGNORED_MODIFIERS.has(key.toLowerCase())) {
    throw badSequence(text, `no key after the modifiers (${show(key)} is a modifier)`);
  }
  if (!KEY_NAME.test(key)) {
    throw badSequence(text, `key name ${show(key)} has characters outside [A-Za-z0-9_]`);
  }
  return { modifiers, keysym: key, text };
}

/**
 * Tells whether a key press is the hotkey: the press's X modifier state,
 * masked with {@link HOTKEY_MODIFIER_MASK}, equals the sequence's modifiers,
 * and one of `keysyms` (the keysyms the pressed key produces at levels 1 and 2
 * of its group, e.g. ["c", "C"]) is the sequence's key. Single letters compare
 * case-insensitively, so "Ctrl-Shift-c" matches although Shift makes the key
 * produce "C"; other names ("Insert", "F12") compare exactly, as X keysym
 * names are case-sensitive.
 */
export function matchesSequence(sequence: KeySequence, xState: number, keysyms: readonly string[]): boolean {
  if ((xState & HOTKEY_MODIFIER_MASK) !== sequence.modifiers) return false;
  const wanted = sequence.keysym;
  const letter = SINGLE_LETTER.test(wanted);
  for (const keysym of keysyms) {
    if (keysym === wanted) return true;
    if (letter && SINGLE_LETTER.test(keysym) && keysym.toLowerCase() === wanted.toLowerCase()) return true;
  }
  return false;
}

function badSequence(text: string, why: string): RangeError {
  return new RangeError(`invalid key sequence ${show(text)}: ${why}`);
}

/** Quotes a piece of configuration for a message, bounded in length. */
function show(text: string): string {
  return JSON.stringify(text.length > MAX_SHOWN ? `${text.slice(0, MAX_SHOWN)}…` : text);
}
