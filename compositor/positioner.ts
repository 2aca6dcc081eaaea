/**
 * xdg_positioner: where a popup goes, relative to its parent's window
 * geometry, and how it is moved to stay on the screen (flip, slide, resize
 * in that order per axis, as the protocol describes).
 */
import type { Rect } from "./geometry.ts";

/** xdg_positioner.anchor and .gravity values (the two enums share their numbering). */
export const enum Edge {
  None = 0,
  Top = 1,
  Bottom = 2,
  Left = 3,
  Right = 4,
  TopLeft = 5,
  BottomLeft = 6,
  TopRight = 7,
  BottomRight = 8,
}

/** xdg_positioner.constraint_adjustment bits. */
export const SLIDE_X = 1;
export const SLIDE_Y = 2;
export const FLIP_X = 4;
export const FLIP_Y = 8;
export const RESIZE_X = 16;
export const RESIZE_Y = 32;

/** The state an app builds up on an xdg_positioner. */
export interface PositionerState {
  /** Popup size (set_size), pixels, > 0. */
  width: number;
  height: number;
  /** Anchor rectangle (set_anchor_rect) in the parent's window-geometry coordinates. */
  anchorRect: Rect;
  anchor: Edge;
  gravity: Edge;
  constraintAdjustment: number;
  /** set_offset, pixels. */
  offsetX: number;
  offsetY: number;
}

/** A positioner nobody configured yet: an empty anchor at 0,0 and a 1×1 popup. */
export function defaultPositioner(): PositionerState {
  return {
    width: 1,
    height: 1,
    anchorRect: { x: 0, y: 0, width: 0, height: 0 },
    anchor: Edge.None,
    gravity: Edge.None,
    constraintAdjustment: 0,
    offsetX: 0,
    offsetY: 0,
  };
}

/** -1 toward left/top, 0 centre, +1 toward right/bottom, per axis. */
function horizontal(edge: Edge): -1 | 0 | 1 {
  if (edge === Edge.Left || edge === Edge.TopLeft || edge === Edge.BottomLeft) return -1;
  if (edge === Edge.Right || edge === Edge.TopRight || edge === Edge.BottomRight) return 1;
  return 0;
}

function vertical(edge: Edge): -1 | 0 | 1 {
  if (edge === Edge.Top || edge === Edge.TopLeft || edge === Edge.TopRight) return -1;
  if (edge === Edge.Bottom || edge === Edge.BottomLeft || edge === Edge.BottomRight) return 1;
  return 0;
}

/** Position on one axis: anchor point on the anchor span, then the popup extends per gravity. */
function place(
  start: number,
  span: number,
  anchor: -1 | 0 | 1,
  gravity: -1 | 0 | 1,
  size: number,
  offset: number,
): number {
  const point = anchor === -1 ? start : anchor === 1 ? start + span : start + Math.trunc(span / 2);
  const origin = gravity === -1 ? point - size : gravity === 1 ? point : point - Math.trunc(size / 2);
  return origin + offset;
}

interface Span {
  start: number;
  size: number;
}

function fits(span: Span, min: number, max: number): boolean {
  return span.start >= min && span.start + span.size <= max;
}

function constrainAxis(
  anchorStart: number,
  anchorSpan: number,
  anchor: -1 | 0 | 1,
  gravity: -1 | 0 | 1,
  size: number,
  offset: number,
  min: number,
  max: number,
  flip: boolean,
  slide: boolean,
  resize: boolean,
): Span {
  let span: Span = { start: place(anchorStart, anchorSpan, anchor, gravity, size, offset), size };
  if (fits(span, min, max)) return span;
  if (flip && (anchor !== 0 || gravity !== 0)) {
    const flipped = {
      start: place(anchorStart, anchorSpan, (-anchor || 0) as -1 | 0 | 1, (-gravity || 0) as -1 | 0 | 1, size, -offset),
      size,
    };
    if (fits(flipped, min, max)) return flipped;
  }
  if (slide) {
    let start = span.start;
    if (start + size > max) start = max - size;
    if (start < min) start = min;
    span = { start, size };
    if (fits(span, min, max)) return span;
  }
  if (resize) {
    const start = Math.max(span.start, min);
    const end = Math.min(span.start + span.size, max);
    if (end > start) span = { start, size: end - start };
  }
  return span;
}

/**
 * The popup's rectangle relative to the parent's window geometry, kept
 * inside `bounds` (the screen, in the same coordinates) where the app's
 * constraint adjustments allow. An app that allows none gets its exact
 * position, even off screen: the daemon clamps override-redirect windows
 * itself.
 */
export function positionPopup(state: PositionerState, bounds: Rect): Rect {
  const a = state.anchorRect;
  const adjust = state.constraintAdjustment;
  const x = constrainAxis(
    a.x,
    a.width,
    horizontal(state.anchor),
    horizontal(state.gravity),
    state.width,
    state.offsetX,
    bounds.x,
    bounds.x + bounds.width,
    (adjust & FLIP_X) !== 0,
    (adjust & SLIDE_X) !== 0,
    (adjust & RESIZE_X) !== 0,
  );
  const y = constrainAxis(
    a.y,
    a.height,
    vertical(state.anchor),
    vertical(state.gravity),
    state.height,
    state.offsetY,
    bounds.y,
    bounds.y + bounds.height,
    (adjust & FLIP_Y) !== 0,
    (adjust & SLIDE_Y) !== 0,
    (adjust & RESIZE_Y) !== 0,
  );
  return { x: x.start, y: y.start, width: x.size, height: y.size };
}
