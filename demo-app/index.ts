/**
 * demo-app/: a small Wayland client on wayland/ that any domain can run
 * without Debian packages: `npm start`'s app when foot and weston-terminal
 * are missing, and the app the end-to-end tests click and type into. Its
 * pixels are exact (software drawing, fixed colours and layout), so tests
 * compare them.
 */
export {
  APP_ID,
  DEFAULT_TIMEOUT_MS,
  DemoApp,
  DemoAppError,
  MAX_TYPED_LENGTH,
  MAX_WINDOW_SIZE,
  PASTE_LIMIT,
  PASTE_TIMEOUT_MS,
  TEXT_MIME_TYPES,
  sanitizePasted,
} from "./app.ts";
export type { DemoAppOptions } from "./app.ts";
export { checkName, main, parseCli, parseSize } from "./cli.ts";
export type { DemoAppCli } from "./cli.ts";
export { BTN_LEFT, BTN_RIGHT, ModifierState, characterOf } from "./keys.ts";
export * from "./layout.ts";
export { PaintedSurface } from "./painted-surface.ts";
export {
  MAX_TEXT_CHARS,
  MAX_TEXT_WIDTH,
  blendText,
  createCanvas,
  fillRect,
  renderText,
  strokeRect,
  textOrigin,
} from "./text.ts";
export type { Canvas, TextMask, TextStyle } from "./text.ts";
