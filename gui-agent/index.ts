/**
 * gui-agent/: the in-domain agent. A Wayland compositor for the domain's
 * apps (compositor/) joined to the GUI daemon over a vchan (link.ts) by the
 * bridge (bridge.ts), started by startAgent or the `qubes-gui-agent` CLI.
 */
export { GuiAgent, startAgent, type AgentEvents, type AgentOptions } from "./agent.ts";
export { WindowBridge, type AgentCounters, type BridgeOptions } from "./bridge.ts";
export { DaemonLink, MAX_OUTPUT_QUEUE, type DaemonLinkEvents, type LinkCounters } from "./link.ts";
export type { Compositor, ShellWindow, WindowCommit } from "../compositor/index.ts";
export { compileKeymap, KeymapError, type Keymap, type KeymapNames } from "../compositor/index.ts";
