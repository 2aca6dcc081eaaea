/**
 * Where the demo app draws what, and in which colours: the fixed geometry of
 * its window and of its popup menu, as pure functions of the window size,
 * so that the app and the tests that check its pixels agree on every
 * rectangle. All coordinates are buffer pixels of the surface they name
 * (scale 1, no window geometry: surface = window coordinates).
 */

/** A rectangle in buffer pixels; width and height are ≥ 0. */
export interface Rect {
  x: number;
  y: number;
  width: number;
  height: number;
}

/** The window's background (0xRRGGBB, as every colour here). */
export const BACKGROUND = 0xf0f0f0;
/** The name and the typed text. */
export const TEXT_COLOR = 0x202020;
/** Inside the text line's box and the canvas. */
export const FIELD_BACKGROUND = 0xffffff;
/** The 1-pixel border of the text line's box and of the canvas. */
export const FIELD_BORDER = 0x909090;
/** A dot a left click draws on the canvas. */
export const DOT_COLOR = 0x1c3f94;
/** A dot's side in pixels: a square from (x - 4, y - 4) to (x + 3, y + 3) around the click. */
export const DOT_SIZE = 8;

/** The popup menu's background, its 1-pixel border, and the hovered item's background. */
export const MENU_BACKGROUND = 0xffffff;
export const MENU_BORDER = 0x404040;
export const MENU_HOVER = 0xc8dcff;
/** The menu's items, top to bottom. */
export const MENU_ITEMS = ["Copy", "Paste", "Clear"] as const;
/** One menu item's label. */
export type MenuItem = (typeof MENU_ITEMS)[number];
/** One item's height, and the menu's outer width, in pixels. */
export const MENU_ITEM_HEIGHT = 24;
export const MENU_WIDTH = 120;
/** The menu's outer height: the items and the border. */
export const MENU_HEIGHT = MENU_ITEMS.length * MENU_ITEM_HEIGHT + 2;
/** Where an item's label starts, from the item's left edge. */
export const MENU_LABEL_X = 10;

/** Font sizes (px) of the name, the typed line and the menu labels. */
export const NAME_FONT_SIZE = 28;
export const LINE_FONT_SIZE = 16;
export const MENU_FONT_SIZE = 15;

/** The default window size when the compositor lets the app choose. */
export const DEFAULT_SIZE = { width: 480, height: 320 } as const;

/** The parts of the window at one size. */
export interface WindowLayout {
  width: number;
  height: number;
  /** Where the name is drawn (clipped to this). */
  name: Rect;
  /** The typed line's box, border included. */
  lineBox: Rect;
  /** Where the typed text is drawn, inside the box (clipped to this; the end of a long text shows). */
  lineText: Rect;
  /** The canvas, border included. */
  canvasBox: Rect;
  /** The canvas inside its border: where clicks draw dots. */
  canvas: Rect;
}

const PAD = 8;

function rect(x: number, y: number, width: number, height: number): Rect {
  return { x, y, width: Math.max(0, width), height: Math.max(0, height) };
}

/** The layout of a `width` × `height` window. */
export function windowLayout(width: number, height: number): WindowLayout {
  const name = rect(PAD, 4, width - 2 * PAD, 40);
  const lineBox = rect(PAD, 48, width - 2 * PAD, 28);
  const lineText = rect(lineBox.x + 6, lineBox.y + 2, lineBox.width - 12, lineBox.height - 4);
  const canvasBox = rect(PAD, 84, width - 2 * PAD, height - 84 - PAD);
  const canvas = inset(canvasBox, 1);
  return { width, height, name, lineBox, lineText, canvasBox, canvas };
}

/** The menu item rectangle (inside the border) of item `index`, in popup coordinates. */
export function menuItemRect(index: number): Rect {
  return rect(1, 1 + index * MENU_ITEM_HEIGHT, MENU_WIDTH - 2, MENU_ITEM_HEIGHT);
}

/** The item at popup point (x, y), or null when the point is on the border or outside. */
export function menuItemAt(x: number, y: number): number | null {
  if (x < 1 || x >= MENU_WIDTH - 1 || y < 1) return null;
  const index = Math.floor((y - 1) / MENU_ITEM_HEIGHT);
  return index < MENU_ITEMS.length ? index : null;
}

/** The dot a left click at (x, y) draws, clipped to the canvas; null when (x, y) is not on the canvas. */
export function dotRect(layout: WindowLayout, x: number, y: number): Rect | null {
  if (!contains(layout.canvas, x, y)) return null;
  const half = DOT_SIZE / 2;
  return intersect({ x: x - half, y: y - half, width: DOT_SIZE, height: DOT_SIZE }, layout.canvas);
}

/** `r` shrunk by `by` pixels on every side. */
export function inset(r: Rect, by: number): Rect {
  return rect(r.x + by, r.y + by, r.width - 2 * by, r.height - 2 * by);
}

/** True when (x, y) is inside `r`. */
export function contains(r: Rect, x: number, y: number): boolean {
  return x >= r.x && y >= r.y && x < r.x + r.width && y < r.y + r.height;
}

/** The overlap of two rectangles, or null when they do not overlap. */
export function intersect(a: Rect, b: Rect): Rect | null {
  const x = Math.max(a.x, b.x);
  const y = Math.max(a.y, b.y);
  const right = Math.min(a.x + a.width, b.x + b.width);
  const bottom = Math.min(a.y + a.height, b.y + b.height);
  return right > x && bottom > y ? { x, y, width: right - x, height: bottom - y } : null;
}

/** The smallest rectangle holding both. */
export function union(a: Rect, b: Rect): Rect {
  const x = Math.min(a.x, b.x);
  const y = Math.min(a.y, b.y);
  return {
    x,
    y,
    width: Math.max(a.x + a.width, b.x + b.width) - x,
    height: Math.max(a.y + a.height, b.y + b.height) - y,
  };
}
