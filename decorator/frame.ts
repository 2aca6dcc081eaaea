/**
 * Geometry of the identity frame the daemon draws around every window of a
 * domain (architecture.md, "Trust"): the host surface is the domain's image
 * with a border of label colour on each side, so the domain's pixels can
 * never reach the edge where the frame is. All rectangles here are in
 * decoration space: the outer (framed) surface, top-left corner at (0, 0).
 */
import type { Size, WindowRect } from "../protocol/index.ts";

declare const space: unique symbol;

/**
 * A rectangle in decoration space (the outer surface, frame included), in
 * pixels. Branded so that it cannot be mixed with a VM, window or screen
 * rectangle without going through a conversion of this module.
 */
export type DecorationRect = {
  readonly x: number;
  readonly y: number;
  readonly width: number;
  readonly height: number;
} & { readonly [space]: "decoration" };

/** A point relative to the content's top-left corner (the domain's window space), in pixels. */
export interface ContentPoint {
  readonly x: number;
  readonly y: number;
}

/** Where everything of one framed window lies, in decoration space. */
export interface FrameLayout {
  /** Size of the outer surface: content plus the border on each side. */
  readonly outer: Size;
  /** The domain's image, at (border, border). */
  readonly content: DecorationRect;
  /** The four frame strips: top, bottom, left, right. With `content` they tile `outer` exactly. */
  readonly strips: readonly [top: DecorationRect, bottom: DecorationRect, left: DecorationRect, right: DecorationRect];
  /** The border width used, in pixels (1..64). */
  readonly border: number;
}

/**
 * The frame width in pixels, as upstream's BORDER_WIDTH (qubes-gui-protocol.md
 * 1.7), so that a window looks the same under our daemon as under qubes-guid.
 */
export const DEFAULT_BORDER_WIDTH = 2;

/** The widest frame accepted, in pixels: a limit on programmer errors, not a protocol value. */
export const MAX_BORDER_WIDTH = 64;

function decorationRect(x: number, y: number, width: number, height: number): DecorationRect {
  return { x, y, width, height } as DecorationRect;
}

function checkBorder(border: number): void {
  if (!Number.isInteger(border) || border < 1 || border > MAX_BORDER_WIDTH) {
    throw new RangeError(`frame border must be an integer in 1..${MAX_BORDER_WIDTH}, got ${border}`);
  }
}

/**
 * Lays out a framed window: the outer size, the content rectangle and the
 * four strips to fill with the label colour, so that the renderer and the
 * input mapping share one definition of where the frame is. Throws a
 * RangeError for a border outside 1..64 or a content size that is not a
 * positive integer (programmer errors: the validator has already checked the
 * domain's sizes).
 */
export function frameLayout(content: { readonly width: number; readonly height: number }, border: number): FrameLayout {
  checkBorder(border);
  const { width, height } = content;
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1) {
    throw new RangeError(`frame content must have a positive integer size, got ${width}x${height}`);
  }
  const outerWidth = width + 2 * border;
  const outerHeight = height + 2 * border;
  return {
    outer: { width: outerWidth, height: outerHeight },
    content: decorationRect(border, border, width, height),
    strips: [
      decorationRect(0, 0, outerWidth, border),
      decorationRect(0, border + height, outerWidth, border),
      decorationRect(0, border, border, height),
      decorationRect(border + width, border, border, height),
    ],
    border,
  };
}

/**
 * Converts a point of the outer surface (where the host compositor reports
 * the pointer) to the content's coordinates, so that input reaches the domain
 * relative to its own window. The result is negative, or past the content
 * size, when the point is on the frame.
 */
export function contentPointFromDecoration(x: number, y: number, border: number): ContentPoint {
  checkBorder(border);
  return { x: x - border, y: y - border };
}

/**
 * Converts a rectangle of the domain's window (a SHMIMAGE damage rectangle)
 * to decoration space, so that damage on the outer surface lands on the
 * content and never on the frame.
 */
export function decorationRectFromContent(rect: WindowRect, border: number): DecorationRect {
  checkBorder(border);
  return decorationRect(rect.x + border, rect.y + border, rect.width, rect.height);
}

function inside(x: number, y: number, rect: DecorationRect): boolean {
  return x >= rect.x && x < rect.x + rect.width && y >= rect.y && y < rect.y + rect.height;
}

/**
 * Whether a point of the outer surface (fractional, as wl_fixed pointer
 * coordinates are) lies on the frame rather than on the content or outside,
 * so that clicks on the frame are not forwarded to the domain.
 */
export function isOnFrame(x: number, y: number, layout: FrameLayout): boolean {
  const { width, height } = layout.outer;
  if (!(x >= 0 && x < width && y >= 0 && y < height)) return false;
  return !inside(x, y, layout.content);
}
