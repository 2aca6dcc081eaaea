/**
 * compositor/: the Wayland compositor core that apps connect to, shared by
 * the agent (gui-agent/, which turns its windows into Qubes windows) and by
 * qubes-gui-desktop (desktop/, which shows them in a browser). Both drive it
 * through the contract in api.ts. What the contract's types do not say:
 *
 * - Pacing: frame callbacks fire on the output's refresh clock (60 Hz), at
 *   most once per refresh for each surface. A window's callbacks also wait
 *   for `frameDone` while anyone listens to its `commit` signal, and, once
 *   mapped, for the window to be shown (`setShown`); a commit that changed
 *   nothing, or one nobody listens to, only waits for the clock.
 * - Buffers: a window of one surface gets its buffer released right after
 *   the commit signal's listeners return, unless a listener holds the commit
 *   (`WindowCommit.hold`) to copy it over later turns. A window of several surfaces
 *   (subsurfaces) keeps each surface's buffer until the app replaces it, so
 *   every layer stays readable for later commits that damage only part of
 *   the window.
 * - Layers are at each surface's logical size: scaled viewports and buffer
 *   scales other than 1 are resampled (nearest neighbour) into memory of the
 *   compositor; crops and scale-1 buffers are views of the app's pool.
 * - Popups are kept on the output from their parent's place on the screen:
 *   call `placeOnScreen` when the daemon places a window.
 * - Keyboard focus goes to the topmost grabbing popup of the focused window;
 *   a button press on another app's window dismisses grabbing popups.
 * - The selection is offered only to the app with keyboard focus, as the
 *   core protocol says: wl-copy and wl-paste (without a data-control
 *   protocol) show a 1×1 window titled "wl-clipboard" and wait for focus.
 */
export { createCompositor } from "./compositor.ts";
export { FRAME_PERIOD_MS, MAX_OUTPUT_SIZE, MIN_OUTPUT_SIZE, OUTPUT_REFRESH_MHZ, clampOutputSize } from "./output.ts";
export { TEXT_MIME_TYPES } from "./data-device.ts";
export type {
  Compositor,
  ClipboardControl,
  CommitHold,
  CompositorOptions,
  PixelSource,
  SeatControl,
  ShellWindow,
  Size,
  ToplevelStates,
  WindowCommit,
  WindowLayer,
  WindowRequest,
} from "./api.ts";
export { area, contains, intersect, isEmpty, union, type Rect } from "./geometry.ts";
export { defaultPositioner, positionPopup, type PositionerState } from "./positioner.ts";
export { KeymapError, compileKeymap, parseModifierKeys, type Keymap, type KeymapNames } from "./keymap.ts";
export { MAX_DAMAGE_RECTS, coalesceDamage } from "./damage.ts";
export { copyPixelRows } from "./surface.ts";
export { CURSOR_SHAPE_NAMES } from "./cursor-shapes.ts";
