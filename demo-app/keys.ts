/**
 * Key codes to characters for the demo app, with a fixed US layout: the
 * compositor sends an xkb keymap, but parsing xkb is out of scope for a
 * demo, so evdev codes (linux/input-event-codes.h) are looked up in a table
 * of the US layout's printable keys, plain and with Shift.
 */

/** evdev codes the app acts on. */
export const KEY_ESC = 1;
export const KEY_BACKSPACE = 14;
export const KEY_ENTER = 28;
export const KEY_LEFTCTRL = 29;
export const KEY_LEFTSHIFT = 42;
export const KEY_C = 46;
export const KEY_V = 47;
export const KEY_RIGHTSHIFT = 54;
export const KEY_CAPSLOCK = 58;
export const KEY_KPENTER = 96;
export const KEY_RIGHTCTRL = 97;

/** Linux button codes (wl_pointer.button). */
export const BTN_LEFT = 0x110;
export const BTN_RIGHT = 0x111;

/** The xkb modifier masks of wl_keyboard.modifiers that every keymap has at these bits. */
export const MOD_SHIFT = 1;
export const MOD_LOCK = 2;
export const MOD_CONTROL = 4;

/** code → [plain, shifted] for the US layout's printable keys. */
const US_LAYOUT: ReadonlyMap<number, readonly [string, string]> = (() => {
  const table = new Map<number, readonly [string, string]>();
  const rows: Array<[number, string, string]> = [
    [2, "1234567890-=", "!@#$%^&*()_+"],
    [16, "qwertyuiop[]", "QWERTYUIOP{}"],
    [30, "asdfghjkl;'`", 'ASDFGHJKL:"~'],
    [43, "\\zxcvbnm,./", "|ZXCVBNM<>?"],
  ];
  for (const [first, plain, shifted] of rows) {
    for (let i = 0; i < plain.length; i++) table.set(first + i, [plain[i] as string, shifted[i] as string]);
  }
  table.set(57, [" ", " "]);
  return table;
})();

/**
 * The character key `code` types with the US layout, or null for a key that
 * types none. Caps Lock inverts Shift for letters only, as on a US keyboard.
 */
export function characterOf(code: number, shift: boolean, capsLock = false): string | null {
  const entry = US_LAYOUT.get(code);
  if (entry === undefined) return null;
  const [plain] = entry;
  const isLetter = plain >= "a" && plain <= "z";
  return entry[(isLetter && capsLock ? !shift : shift) ? 1 : 0];
}

/**
 * Shift, Ctrl and Caps Lock as the demo app knows them: from the modifier
 * keys' own press and release events (any keymap puts them on these codes),
 * combined with wl_keyboard.modifiers' masks (which also carry latches and
 * locks the key events cannot show).
 */
export class ModifierState {
  readonly #held = new Set<number>();
  #depressed = 0;
  #locked = 0;

  /** A key event: remembers modifier keys held down. */
  key(code: number, pressed: boolean): void {
    if (pressed) this.#held.add(code);
    else this.#held.delete(code);
  }

  /** wl_keyboard.enter: the keys held as focus arrives. */
  enter(keys: readonly number[]): void {
    this.#held.clear();
    for (const code of keys) this.#held.add(code);
  }

  /** wl_keyboard.leave: nothing is known to be held anymore. */
  leave(): void {
    this.#held.clear();
    this.#depressed = 0;
  }

  /** wl_keyboard.modifiers. */
  modifiers(depressed: number, latched: number, locked: number): void {
    this.#depressed = (depressed | latched) >>> 0;
    this.#locked = locked >>> 0;
  }

  get shift(): boolean {
    return this.#held.has(KEY_LEFTSHIFT) || this.#held.has(KEY_RIGHTSHIFT) || (this.#depressed & MOD_SHIFT) !== 0;
  }

  get ctrl(): boolean {
    return this.#held.has(KEY_LEFTCTRL) || this.#held.has(KEY_RIGHTCTRL) || (this.#depressed & MOD_CONTROL) !== 0;
  }

  get capsLock(): boolean {
    return (this.#locked & MOD_LOCK) !== 0;
  }
}
