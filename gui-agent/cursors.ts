/**
 * Cursor names (the cursor-shape protocol's and CSS's, and Xcursor theme
 * names) mapped to the protocol's CURSOR values: 0x100 + the X cursor-font
 * glyph (X11 cursorfont.h), or 0 for the default.
 */

/** MSG_CURSOR value for "the default cursor" (CURSOR_DEFAULT). */
export const CURSOR_DEFAULT = 0;
/** MSG_CURSOR values are CURSOR_X11 + an X cursor-font glyph. */
export const CURSOR_X11 = 0x100;

/** X11 cursorfont.h glyphs the names map to. */
const XC = {
  X_cursor: 0,
  arrow: 2,
  bottom_left_corner: 12,
  bottom_right_corner: 14,
  bottom_side: 16,
  crosshair: 34,
  fleur: 52,
  hand1: 58,
  hand2: 60,
  left_ptr: 68,
  left_side: 70,
  plus: 90,
  question_arrow: 92,
  right_side: 96,
  sb_h_double_arrow: 108,
  sb_v_double_arrow: 116,
  top_left_corner: 134,
  top_right_corner: 136,
  top_side: 138,
  watch: 150,
  xterm: 152,
} as const;

const BY_NAME: ReadonlyMap<string, number> = new Map<string, number>([
  ["left_ptr", XC.left_ptr],
  ["arrow", XC.arrow],
  ["pointer", XC.hand2],
  ["hand", XC.hand2],
  ["hand1", XC.hand1],
  ["hand2", XC.hand2],
  ["grab", XC.hand1],
  ["grabbing", XC.fleur],
  ["move", XC.fleur],
  ["all-scroll", XC.fleur],
  ["fleur", XC.fleur],
  ["text", XC.xterm],
  ["vertical-text", XC.xterm],
  ["xterm", XC.xterm],
  ["ibeam", XC.xterm],
  ["wait", XC.watch],
  ["progress", XC.watch],
  ["watch", XC.watch],
  ["crosshair", XC.crosshair],
  ["cell", XC.plus],
  ["plus", XC.plus],
  ["help", XC.question_arrow],
  ["question_arrow", XC.question_arrow],
  ["not-allowed", XC.X_cursor],
  ["no-drop", XC.X_cursor],
  ["x_cursor", XC.X_cursor],
  ["n-resize", XC.top_side],
  ["top_side", XC.top_side],
  ["s-resize", XC.bottom_side],
  ["bottom_side", XC.bottom_side],
  ["w-resize", XC.left_side],
  ["left_side", XC.left_side],
  ["e-resize", XC.right_side],
  ["right_side", XC.right_side],
  ["nw-resize", XC.top_left_corner],
  ["top_left_corner", XC.top_left_corner],
  ["ne-resize", XC.top_right_corner],
  ["top_right_corner", XC.top_right_corner],
  ["sw-resize", XC.bottom_left_corner],
  ["bottom_left_corner", XC.bottom_left_corner],
  ["se-resize", XC.bottom_right_corner],
  ["bottom_right_corner", XC.bottom_right_corner],
  ["ew-resize", XC.sb_h_double_arrow],
  ["col-resize", XC.sb_h_double_arrow],
  ["sb_h_double_arrow", XC.sb_h_double_arrow],
  ["ns-resize", XC.sb_v_double_arrow],
  ["row-resize", XC.sb_v_double_arrow],
  ["sb_v_double_arrow", XC.sb_v_double_arrow],
]);

/**
 * The MSG_CURSOR value for a cursor name; "default" and unknown names are
 * CURSOR_DEFAULT (the host's own pointer), which is also what an app's
 * cursor image becomes: its shape cannot be named.
 */
export function cursorFromName(name: string): number {
  const glyph = BY_NAME.get(name.toLowerCase());
  return glyph === undefined ? CURSOR_DEFAULT : CURSOR_X11 + glyph;
}
