/**
 * Translation of the X11 values in the daemon's input messages into what a
 * Wayland seat sends: evdev key codes, linux button codes, scroll axes and
 * xkb modifier masks.
 */

/** X11 keycodes are evdev codes + 8 (the X server's offset). */
export const X_KEYCODE_OFFSET = 8;

/** linux/input-event-codes.h button codes. */
export const BTN_LEFT = 0x110;
export const BTN_RIGHT = 0x111;
export const BTN_MIDDLE = 0x112;

/** wl_pointer axis values. */
export const AXIS_VERTICAL = 0;
export const AXIS_HORIZONTAL = 1;

/** One wheel click in wl_pointer.axis units (logical pixels), as most compositors send. */
export const AXIS_STEP = 15;

/** The evdev code for an X keycode, or undefined for keycodes below 8 (none exist in X). */
export function evdevFromXKeycode(keycode: number): number | undefined {
  return keycode >= X_KEYCODE_OFFSET && keycode <= 255 ? keycode - X_KEYCODE_OFFSET : undefined;
}

/** The X keycode for an evdev code. */
export function xKeycodeFromEvdev(code: number): number {
  return code + X_KEYCODE_OFFSET;
}

/** What an X button number becomes on a Wayland pointer. */
export type PointerAction =
  { kind: "button"; code: number } | { kind: "axis"; axis: number; discrete: -1 | 1 } | { kind: "none" };

/**
 * X buttons 1/2/3 are left/middle/right; 4/5 scroll up/down, 6/7 scroll
 * left/right (one discrete step each, on press only). Higher buttons are
 * the side buttons 8/9 (BTN_SIDE 0x113, BTN_EXTRA 0x114).
 */
export function pointerActionFromXButton(button: number): PointerAction {
  switch (button) {
    case 1:
      return { kind: "button", code: BTN_LEFT };
    case 2:
      return { kind: "button", code: BTN_MIDDLE };
    case 3:
      return { kind: "button", code: BTN_RIGHT };
    case 4:
      return { kind: "axis", axis: AXIS_VERTICAL, discrete: -1 };
    case 5:
      return { kind: "axis", axis: AXIS_VERTICAL, discrete: 1 };
    case 6:
      return { kind: "axis", axis: AXIS_HORIZONTAL, discrete: -1 };
    case 7:
      return { kind: "axis", axis: AXIS_HORIZONTAL, discrete: 1 };
    case 8:
      return { kind: "button", code: 0x113 };
    case 9:
      return { kind: "button", code: 0x114 };
    default:
      return { kind: "none" };
  }
}

/** X modifier bits in a `state` field. */
export const X_SHIFT = 0x1;
export const X_LOCK = 0x2;
export const X_CONTROL = 0x4;
export const X_MOD1 = 0x8;
export const X_MOD2 = 0x10;
export const X_MOD3 = 0x20;
export const X_MOD4 = 0x40;
export const X_MOD5 = 0x80;

/** wl_keyboard.modifiers masks. */
export interface ModifierMasks {
  depressed: number;
  latched: number;
  locked: number;
  group: number;
}

/**
 * The modifier masks a keyboard should report for an X `state`. An xkb
 * keymap compiled from the system's XKB data lists the eight real modifiers
 * first, in X's order (Shift, Lock, Control, Mod1..Mod5), so bit i of the X
 * state is bit i of the xkb mask. Caps Lock and Num Lock (Mod2) are locks;
 * the others are held keys. Bits above 0x80 (pointer buttons) are not
 * modifiers.
 */
export function modifiersFromXState(state: number): ModifierMasks {
  const mods = state & 0xff;
  const locks = X_LOCK | X_MOD2;
  return { depressed: mods & ~locks, latched: 0, locked: mods & locks, group: 0 };
}
