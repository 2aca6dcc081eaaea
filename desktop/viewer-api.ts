/**
 * The seam between qubes-gui-desktop's two halves: the compositor side
 * (desktop.ts: windows of the apps, their stacking and composition into one
 * output) and the viewer (viewer.ts: the HTTP and WebSocket server a
 * browser shows the output through and sends input back over).
 *
 * Coordinates are output pixels: (0, 0) is the output's top-left corner.
 */
import type { Rect } from "../compositor/index.ts";
import type { Signal } from "../wayland/index.ts";

/** The composed output, as the viewer reads it. */
export interface ViewerOutput {
  /** Pixels. */
  readonly width: number;
  readonly height: number;
  /**
   * The output's pixels, BGRX (wl_shm XRGB8888 little-endian: B, G, R, pad
   * per pixel; the pad byte is not alpha), row 0 first, stride width × 4.
   * Complete and consistent whenever the viewer's code runs: the compositor
   * side writes it only inside its own turns, before it emits `frame`.
   */
  readonly pixels: Buffer;
  readonly events: {
    /**
     * An output frame was composed: the rectangles that changed in it,
     * clipped to the output, possibly overlapping. `commitTimeNs` is the
     * process.hrtime.bigint() of the earliest app commit composed in this
     * frame (for latency measurement), or null when no commit caused it
     * (a window moved, closed, or was raised).
     */
    frame: Signal<{ damage: readonly Rect[]; commitTimeNs: bigint | null }>;
    /** The cursor the app under the pointer asked for: a CSS cursor name ("default", "text", "pointer" ...), or "none". */
    cursor: Signal<string>;
  };
}

/** Input from the browser, in output coordinates and Linux evdev codes. */
export interface ViewerInput {
  /** The pointer is at (x, y) of the output (integers, clamped to the output). */
  pointerMove(x: number, y: number): void;
  /** The pointer left the output (the page lost it). */
  pointerLeave(): void;
  /** A button, as an evdev code: BTN_LEFT 0x110, BTN_RIGHT 0x111, BTN_MIDDLE 0x112. */
  pointerButton(code: number, pressed: boolean): void;
  /** A scroll step: axis 0 vertical, 1 horizontal; `discrete` is ±1 per notch (positive: down / right). */
  pointerAxis(axis: 0 | 1, discrete: number): void;
  /** A key by evdev code (KEY_A = 30 ...): the physical key, whatever the browser's layout. */
  key(code: number, pressed: boolean): void;
  /** The page lost the keyboard (blur, close): every held key and button is released. */
  releaseAll(): void;
}
