/**
 * Keysyms of the US layout for the keys the clipboard hotkeys use, as a
 * fallback while the host has not sent its keymap (or sent one the parser
 * could not read): letters and digits on their evdev codes.
 */

const ROWS: ReadonlyArray<readonly [first: number, keys: string]> = [
  [2, "1234567890"],
  [16, "qwertyuiop"],
  [30, "asdfghjkl"],
  [44, "zxcvbnm"],
];

const TABLE = new Map<number, readonly string[]>();
for (const [first, keys] of ROWS) {
  for (let i = 0; i < keys.length; i++) {
    const key = keys[i] as string;
    TABLE.set(first + i, key === key.toUpperCase() ? [key] : [key, key.toUpperCase()]);
  }
}
TABLE.set(110, ["Insert"]);

/** Keysyms (levels 1 and 2) of evdev key `code` on a US keyboard; empty for keys not in the table. */
export function usKeysyms(code: number): readonly string[] {
  return TABLE.get(code) ?? [];
}
