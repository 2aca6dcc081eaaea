/**
 * The keyboard map the compositor (the agent's or the desktop's) hands to its apps: a real xkb keymap compiled
 * from the system's XKB data by libxkbcommon's own compiler (`xkbcli
 * compile-keymap`), and which keys drive which of the eight real modifiers,
 * so the agent can keep wl_keyboard.modifiers in step with the keys it
 * injects.
 */
import { execFile } from "node:child_process";

/** RMLVO names that select a keymap, as in setxkbmap. */
export interface KeymapNames {
  rules?: string;
  model?: string;
  /** e.g. "us", "de", "us,ru". */
  layout?: string;
  variant?: string;
  options?: string;
}

/** A compiled keymap and the modifier keys in it. */
export interface Keymap {
  /** The keymap in xkb text format v1, as wl_keyboard.keymap format 1 expects (without the NUL). */
  text: string;
  /** evdev code of each key in a modifier_map → its X modifier bit (Shift 0x1 … Mod5 0x80). */
  modifierKeys: ReadonlyMap<number, number>;
}

const MODIFIER_BITS: Readonly<Record<string, number>> = {
  Shift: 0x1,
  Lock: 0x2,
  Control: 0x4,
  Mod1: 0x8,
  Mod2: 0x10,
  Mod3: 0x20,
  Mod4: 0x40,
  Mod5: 0x80,
};

/** Why a keymap could not be made. */
export class KeymapError extends Error {
  readonly code = "ERR_KEYMAP";
}

/** The program that compiles keymaps (libxkbcommon-tools). */
export const XKBCLI = "xkbcli";

/**
 * Compiles a keymap for `names` (default layout "us"). Rejects with a
 * {@link KeymapError} naming the layout when XKB cannot compile it, or
 * naming the missing program.
 */
export function compileKeymap(names: KeymapNames = {}): Promise<Keymap> {
  const args = ["compile-keymap"];
  for (const key of ["rules", "model", "layout", "variant", "options"] as const) {
    const value = key === "layout" ? (names.layout ?? "us") : names[key];
    if (value !== undefined && value !== "") args.push(`--${key}`, value);
  }
  return new Promise((resolve, reject) => {
    execFile(XKBCLI, args, { maxBuffer: 4 << 20, encoding: "utf8" }, (error, stdout, stderr) => {
      if (error !== null) {
        const missing = (error as NodeJS.ErrnoException).code === "ENOENT";
        reject(
          new KeymapError(
            missing
              ? `cannot compile a keymap: ${XKBCLI} not found (install libxkbcommon-tools)`
              : `cannot compile a keymap for ${JSON.stringify(names)}: ${stderr.trim().split("\n").at(-1) ?? error.message}`,
          ),
        );
        return;
      }
      resolve({ text: stdout, modifierKeys: parseModifierKeys(stdout) });
    });
  });
}

/**
 * Reads the keycodes section (`<NAME> = code;`) and the modifier_map lines
 * of a keymap in text form: evdev code → X modifier bit.
 */
export function parseModifierKeys(text: string): Map<number, number> {
  const codes = new Map<string, number>();
  for (const match of text.matchAll(/^\s*<([^>]+)>\s*=\s*(\d+)\s*;/gm)) {
    codes.set(match[1] as string, Number(match[2]));
  }
  const aliases = new Map<string, string>();
  for (const match of text.matchAll(/^\s*alias\s+<([^>]+)>\s*=\s*<([^>]+)>\s*;/gm)) {
    aliases.set(match[1] as string, match[2] as string);
  }
  const out = new Map<number, number>();
  for (const match of text.matchAll(/modifier_map\s+(\w+)\s*\{([^}]*)\}/g)) {
    const bit = MODIFIER_BITS[match[1] as string];
    if (bit === undefined) continue;
    for (const key of (match[2] as string).matchAll(/<([^>]+)>/g)) {
      const name = key[1] as string;
      const code = codes.get(name) ?? codes.get(aliases.get(name) ?? "");
      if (code !== undefined && !out.has(code - 8)) out.set(code - 8, bit);
    }
  }
  return out;
}
