/**
 * desktop/: qubes-gui-desktop, our own host compositor for guid. Apps (guid's
 * windows) connect to its Wayland socket; desktop.ts stacks and composes
 * their windows into one output; viewer.ts shows that output in a browser
 * over HTTP and a WebSocket, with a token, and sends the input back.
 */
export { Desktop, TITLE_BAR_HEIGHT, type DesktopOptions } from "./desktop.ts";
export { startViewer, type FrameShown, type ViewerOptions } from "./viewer.ts";
export type { ViewerInput, ViewerOutput } from "./viewer-api.ts";
