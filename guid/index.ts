/**
 * guid/: the GUI daemon. In the GUI domain it serves each domain's agent
 * (one {@link Session} per domain over a vchan, every byte validated by
 * protocol/), shows the domain's windows on the host Wayland compositor
 * framed in the domain's label colour, maps their framebuffers without
 * copying, sends input back and keeps the secure clipboard. Its program is
 * `qubes-guid` (cli.ts); tests and benchmarks use this entry point.
 */
export { main, parseCli } from "./cli.ts";
export type { CliOptions } from "./cli.ts";
export { Guid, startGuid } from "./daemon.ts";
export type { DomainSpec, GuidOptions } from "./daemon.ts";
export {
  MAX_WINDOWS_PER_DOMAIN,
  READ_SLICE_BYTES,
  SESSION_BYTE_BURST,
  SESSION_BYTE_RATE,
  SESSION_MESSAGE_BURST,
  SESSION_MESSAGE_RATE,
  Session,
} from "./session.ts";
export { HOST_WINDOW_BURST, HOST_WINDOW_RATE } from "./windows.ts";
export type { SessionEvents, SessionOptions } from "./session.ts";
export { createCounters } from "./counters.ts";
export type { GuidCounters } from "./counters.ts";
export { CLIPBOARD_FILE, GuiClipboard, timestampNewer } from "./clipboard.ts";
export type { ClipboardContent } from "./clipboard.ts";
export { DEFAULT_GUID_CONFIG, ConfigError, loadGuidConfig, parseGuidConfig, pastePolicyDecision } from "./config.ts";
export type { GuidConfig, PasteRule } from "./config.ts";
export { MAX_OUTPUT_QUEUE } from "./output.ts";
export { HostDisplay } from "./host/display.ts";
export { HostWindow } from "./host/window.ts";
