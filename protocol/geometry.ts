/**
 * Rectangles and points in the three coordinate spaces of the GUI protocol,
 * each a branded type so that mixing two spaces fails to compile:
 *
 * - VM space: the domain's root window, where CREATE and CONFIGURE place
 *   windows (x, y may be negative);
 * - window space: relative to one window's top-left corner, what SHMIMAGE
 *   rectangles and input coordinates use;
 * - screen space: the GUI domain's screen (the host compositor's outputs),
 *   what xconf and the work area describe.
 *
 * Only the constructors below make these values; converting between spaces
 * is an explicit call that says which window or offset it uses.
 */

declare const space: unique symbol;

/** A rectangle: the top-left corner and a size, integers in pixels. */
export interface PlainRect {
  readonly x: number;
  readonly y: number;
  readonly width: number;
  readonly height: number;
}

/** A point, integers in pixels. */
export interface PlainPoint {
  readonly x: number;
  readonly y: number;
}

/** A rectangle in the domain's root coordinates (VM space). */
export type VmRect = PlainRect & { readonly [space]: "vm" };
/** A rectangle relative to one window's top-left corner (window space). */
export type WindowRect = PlainRect & { readonly [space]: "window" };
/** A rectangle on the GUI domain's screen (screen space). */
export type ScreenRect = PlainRect & { readonly [space]: "screen" };

/** A point in VM space. */
export type VmPoint = PlainPoint & { readonly [space]: "vm" };
/** A point relative to one window's top-left corner. */
export type WindowPoint = PlainPoint & { readonly [space]: "window" };
/** A point on the GUI domain's screen. */
export type ScreenPoint = PlainPoint & { readonly [space]: "screen" };

/** A width and height in pixels. */
export interface Size {
  readonly width: number;
  readonly height: number;
}

/** A rectangle in VM space. */
export function vmRect(x: number, y: number, width: number, height: number): VmRect {
  return { x, y, width, height } as VmRect;
}

/** A rectangle in one window's space. */
export function windowRect(x: number, y: number, width: number, height: number): WindowRect {
  return { x, y, width, height } as WindowRect;
}

/** A rectangle in screen space. */
export function screenRect(x: number, y: number, width: number, height: number): ScreenRect {
  return { x, y, width, height } as ScreenRect;
}

/** A point in VM space. */
export function vmPoint(x: number, y: number): VmPoint {
  return { x, y } as VmPoint;
}

/** A point in one window's space. */
export function windowPoint(x: number, y: number): WindowPoint {
  return { x, y } as WindowPoint;
}

/** A point in screen space. */
export function screenPoint(x: number, y: number): ScreenPoint {
  return { x, y } as ScreenPoint;
}

/** Two rectangles of one space cover the same pixels. */
export function sameRect<R extends PlainRect>(a: R, b: R): boolean {
  return a.x === b.x && a.y === b.y && a.width === b.width && a.height === b.height;
}

/**
 * Where a window's VM rectangle lies on the screen. The GUI domain's screen
 * and a domain's root share one origin (qubes-guid maps VM coordinates 1:1
 * onto its root window), so the numbers stay; the space changes.
 */
export function screenRectFromVm(rect: VmRect): ScreenRect {
  return screenRect(rect.x, rect.y, rect.width, rect.height);
}

/** The offset of `inner`'s origin from `outer`'s, both in VM space, as a point in `outer`'s window space. */
export function offsetInWindow(outer: VmRect, inner: VmRect): WindowPoint {
  return windowPoint(inner.x - outer.x, inner.y - outer.y);
}
