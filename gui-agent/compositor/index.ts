/**
 * gui-agent/compositor/: the Wayland compositor half of the agent. Apps
 * connect to it; the Qubes side (gui-agent/*.ts) drives it through the
 * contract in api.ts.
 */
export { createAgentCompositor } from "./compositor.ts";
export { TEXT_MIME_TYPES } from "./data-device.ts";
export type {
  AgentCompositor,
  ClipboardControl,
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
