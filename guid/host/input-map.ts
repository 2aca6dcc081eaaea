/**
 * Wayland input, as the host compositor reports it to the daemon, turned into
 * the X11 values the Qubes GUI protocol carries (qubes-gui-protocol.md 1.6,
 * 1.7): X button numbers for BUTTON, X state masks, X keycodes for KEYPRESS,
 * and the KEYMAP_NOTIFY bit vector. Pure functions plus one small piece of
 * state for scrolling; nothing here talks to Wayland or to a domain.
 */

/** Linux input-event-codes.h BTN_LEFT. */
export const BTN_LEFT = 0x110;
/** Linux BTN_RIGHT. */
export const BTN_RIGHT = 0x111;
/** Linux BTN_MIDDLE. */
export const BTN_MIDDLE = 0x112;
/** Linux BTN_SIDE (the thumb "back" button on most mice). */
export const BTN_SIDE = 0x113;
/** Linux BTN_EXTRA (the thumb "forward" button on most mice). */
export const BTN_EXTRA = 0x114;
/** Linux BTN_FORWARD. */
export const BTN_FORWARD = 0x115;
/** Linux BTN_BACK. */
export const BTN_BACK = 0x116;

const X_BUTTONS: ReadonlyMap<number, number> = new Map([
  [BTN_LEFT, 1],
  [BTN_RIGHT, 3],
  [BTN_MIDDLE, 2],
  [BTN_SIDE, 8],
  [BTN_EXTRA, 9],
  [BTN_FORWARD, 9],
  [BTN_BACK, 8],
]);

/**
 * The X button number for a Linux button code of wl_pointer.button (left 1,
 * middle 2, right 3, back 8, forward 9), or null for a button X has no number
 * for; this is the mapping the X server's evdev/libinput drivers use, so the
 * domain's applications see the buttons they would see on bare X.
 */
export function xButtonFromLinux(code: number): number | null {
  return X_BUTTONS.get(code) ?? null;
}

/** X state-mask bit of a held button 1 (Button1Mask). */
export const Button1Mask = 0x100;
/** X Button2Mask. */
export const Button2Mask = 0x200;
/** X Button3Mask. */
export const Button3Mask = 0x400;
/** X Button4Mask. */
export const Button4Mask = 0x800;
/** X Button5Mask. */
export const Button5Mask = 0x1000;

/**
 * The X state-mask bit of a held X button (1 → Button1Mask … 5 →
 * Button5Mask), or 0 for buttons X has no mask bit for (0, > 5), so that the
 * `state` of BUTTON, MOTION and KEYPRESS lists the buttons held as X does.
 */
export function buttonMask(xButton: number): number {
  return Number.isInteger(xButton) && xButton >= 1 && xButton <= 5 ? Button1Mask << (xButton - 1) : 0;
}

/**
 * The X state-mask modifier bits (Shift 0x1, Lock 0x2, Control 0x4, Mod1..Mod5
 * 0x8..0x80) from the three masks of wl_keyboard.modifiers.
 *
 * Why the masks can be used as they are: bit i of each wl_keyboard.modifiers
 * mask is the modifier of index i in the host keymap (the compositor sends
 * xkb_state_serialize_mods), and libxkbcommon always gives the eight real
 * modifiers Shift, Lock, Control, Mod1, Mod2, Mod3, Mod4, Mod5 the indices
 * 0..7 in that order: exactly the bits 0x1..0x80 of X's state mask. Indices
 * from 8 on are virtual modifiers (Alt, NumLock, LevelThree …), which X
 * only knows through the real modifiers they map to; they are dropped rather
 * than misread as X's button bits 0x100 and up. A modifier is active when it
 * is depressed, latched or locked, as in X's state.
 */
export function xStateFromModifiers(depressed: number, latched: number, locked: number): number {
  return (depressed | latched | locked) & 0xff;
}

/** wl_pointer.axis vertical_scroll. */
export const AXIS_VERTICAL = 0;
/** wl_pointer.axis horizontal_scroll. */
export const AXIS_HORIZONTAL = 1;
/** Axis units (wl_fixed, as a JS number) per X wheel click when the compositor sends no discrete steps. */
export const AXIS_UNITS_PER_CLICK = 10;
/**
 * Most wheel clicks one axis event yields; the rest of a larger scroll is
 * dropped, so that one absurd value cannot make the daemon send millions of
 * BUTTON messages.
 */
export const MAX_WHEEL_CLICKS = 64;

/** X wheel button 4 (scroll up). */
const WHEEL_UP = 4;
/** X wheel button 5 (scroll down). */
const WHEEL_DOWN = 5;
/** X wheel button 6 (scroll left). */
const WHEEL_LEFT = 6;
/** X wheel button 7 (scroll right). */
const WHEEL_RIGHT = 7;

/** X wheel clicks to send: press and release of `button`, `clicks` times. */
export interface WheelClicks {
  /** 4 up, 5 down, 6 left, 7 right. */
  readonly button: number;
  /** 1..MAX_WHEEL_CLICKS. */
  readonly clicks: number;
}

/**
 * Turns wl_pointer.axis (and axis_discrete) into X wheel clicks, the only
 * scrolling X clients understand: vertical negative → button 4, positive →
 * 5; horizontal negative → 6, positive → 7. One instance per seat pointer: it
 * keeps, per axis, the part of a smooth scroll that has not made a click yet.
 */
export class AxisAccumulator {
  /** Per axis, the value not yet sent as clicks: |remainder| < AXIS_UNITS_PER_CLICK, sign = last direction. */
  private readonly remainder = [0, 0];

  /**
   * Adds one axis event and returns the clicks it completes, or null for
   * none. With `discrete` (axis_discrete steps, signed), that many clicks in
   * its direction, and the smooth remainder of the axis is cleared; without,
   * one click per AXIS_UNITS_PER_CLICK units, keeping the rest for the next
   * event and dropping it when the direction changes. Unknown axes and
   * non-finite values give null.
   */
  accumulate(axis: number, value: number, discrete?: number): WheelClicks | null {
    if (axis !== AXIS_VERTICAL && axis !== AXIS_HORIZONTAL) return null;
    if (discrete !== undefined && Number.isFinite(discrete) && Math.trunc(discrete) !== 0) {
      this.remainder[axis] = 0;
      const steps = Math.trunc(discrete);
      return { button: wheelButton(axis, steps), clicks: Math.min(Math.abs(steps), MAX_WHEEL_CLICKS) };
    }
    if (!Number.isFinite(value) || value === 0) return null;
    let remainder = this.remainder[axis] as number;
    if (Math.sign(remainder) === -Math.sign(value)) remainder = 0;
    remainder += value;
    const clicks = Math.trunc(Math.abs(remainder) / AXIS_UNITS_PER_CLICK);
    if (clicks > MAX_WHEEL_CLICKS) {
      // Clamped: the rest of this scroll is dropped; now remainder = 0.
      this.remainder[axis] = 0;
      return { button: wheelButton(axis, value), clicks: MAX_WHEEL_CLICKS };
    }
    this.remainder[axis] = remainder - Math.sign(remainder) * clicks * AXIS_UNITS_PER_CLICK;
    return clicks === 0 ? null : { button: wheelButton(axis, value), clicks };
  }

  /** Forgets the partial scroll of both axes, e.g. when the pointer leaves the window. */
  reset(): void {
    this.remainder[AXIS_VERTICAL] = 0;
    this.remainder[AXIS_HORIZONTAL] = 0;
  }
}

function wheelButton(axis: number, direction: number): number {
  if (axis === AXIS_VERTICAL) return direction < 0 ? WHEEL_UP : WHEEL_DOWN;
  return direction < 0 ? WHEEL_LEFT : WHEEL_RIGHT;
}

/** X keycodes are evdev codes plus 8 (the XKB "evdev" keycodes). */
const EVDEV_OFFSET = 8;
/** The largest evdev code with an X keycode: X keycodes are 8..255. */
export const MAX_X_EVDEV_CODE = 255 - EVDEV_OFFSET;

/**
 * The X keycode (evdev code + 8) for an evdev key code of wl_keyboard.key,
 * or null for a code above 247 or not a key code at all, because X keycodes
 * are 8..255 and KEYPRESS must carry one the domain's X-side can use.
 */
export function xKeycodeFromEvdev(code: number): number | null {
  return Number.isInteger(code) && code >= 0 && code <= MAX_X_EVDEV_CODE ? code + EVDEV_OFFSET : null;
}

/** Bytes of the KEYMAP_NOTIFY key vector. */
export const KEYMAP_VECTOR_BYTES = 32;

/**
 * The KEYMAP_NOTIFY body for the evdev keys held (wl_keyboard.enter's keys):
 * 32 bytes, bit k%8 of byte k/8 set for each held X keycode k = evdev + 8,
 * XQueryKeymap's layout, so that the domain learns which keys are down when
 * its window gets focus. Codes without an X keycode are left out.
 */
export function keymapNotifyVector(evdevKeysHeld: Iterable<number>): Uint8Array {
  const keys = new Uint8Array(KEYMAP_VECTOR_BYTES);
  for (const code of evdevKeysHeld) {
    const keycode = xKeycodeFromEvdev(code);
    if (keycode === null) continue;
    keys[keycode >> 3] = (keys[keycode >> 3] as number) | (1 << (keycode & 7));
  }
  return keys;
}
