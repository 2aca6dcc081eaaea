/**
 * Wire constants of the Qubes GUI protocol 1.8, under their upstream names so
 * that a grep finds both this code and qubes-gui-common's header
 * (qubes-gui-protocol.md sections 1.2, 1.5 and 1.7).
 */

/** Builds a protocol version word (`major << 16 | minor`), the form sent in the handshake. */
export function protocolVersion(major: number, minor: number): number {
  return ((major & 0xffff) * 0x10000 + (minor & 0xffff)) >>> 0;
}

/** The major half of a version word; majors must match for two sides to talk. */
export function versionMajor(version: number): number {
  return version >>> 16;
}

/** The minor half of a version word; the features of section 1.2 depend on it. */
export function versionMinor(version: number): number {
  return version & 0xffff;
}

/** Formats a version word as `1.8`, for messages and the trace tool. */
export function formatVersion(version: number): string {
  return `${versionMajor(version)}.${versionMinor(version)}`;
}

/** Major protocol version this implementation speaks; a different major is refused. */
export const QUBES_GUID_PROTOCOL_VERSION_MAJOR = 1;
/** Minor protocol version this implementation speaks (1.8: large clipboard). */
export const QUBES_GUID_PROTOCOL_VERSION_MINOR = 8;
/** This implementation's version word, 0x00010008. */
export const QUBES_GUID_PROTOCOL_VERSION = protocolVersion(1, 8);

/** 1.2: CLIPBOARD_DATA carries its length in `untrusted_len` (before: in `window`); WINDOW_DUMP exists. */
export const VERSION_CLIPBOARD_LEN_IN_HEADER = protocolVersion(1, 2);
/** 1.3: MSG_CURSOR exists. */
export const VERSION_CURSOR = protocolVersion(1, 3);
/** 1.4: the daemon answers the agent's version word with the negotiated one before xconf. */
export const VERSION_BIDIRECTIONAL_NEGOTIATION = protocolVersion(1, 4);
/** 1.5: the daemon acknowledges a window's destruction with MSG_DESTROY. */
export const VERSION_DESTROY_ACK = protocolVersion(1, 5);
/** 1.6: a wrong `untrusted_len` on a fixed-size message ends the session (below: logged only). */
export const VERSION_STRICT_LENGTHS = protocolVersion(1, 6);
/** 1.7: the daemon sends MSG_WINDOW_DUMP_ACK after each WINDOW_DUMP. */
export const VERSION_WINDOW_DUMP_ACK = protocolVersion(1, 7);
/** 1.8: clipboard up to 256 000 bytes, "too big" signalled by limit + 1 bytes. */
export const VERSION_LARGE_CLIPBOARD = protocolVersion(1, 8);

/** Sentinel below the first message type; not a message. */
export const MSG_MIN = 123;
/** Daemon → agent key event (1.0). */
export const MSG_KEYPRESS = 124;
/** Daemon → agent button event (1.0). */
export const MSG_BUTTON = 125;
/** Daemon → agent pointer motion (1.0). */
export const MSG_MOTION = 126;
/** Daemon → agent enter/leave (1.0). */
export const MSG_CROSSING = 127;
/** Daemon → agent focus in/out (1.0). */
export const MSG_FOCUS = 128;
/** Obsolete daemon → agent resize; never sent. */
export const MSG_RESIZE = 129;
/** Agent → daemon window creation (1.0). */
export const MSG_CREATE = 130;
/** Agent → daemon window destruction (1.0); daemon → agent acknowledgement from 1.5. */
export const MSG_DESTROY = 131;
/** Map a window: agent → daemon, and daemon → agent when the host maps it (1.0). */
export const MSG_MAP = 132;
/** Agent → daemon unmap (1.0). */
export const MSG_UNMAP = 133;
/** Geometry change, both directions (1.0). */
export const MSG_CONFIGURE = 134;
/** Deprecated agent → daemon machine-frame dump (≤ 1.1 path). */
export const MSG_MFNDUMP = 135;
/** Agent → daemon damaged rectangle (1.0). */
export const MSG_SHMIMAGE = 136;
/** Daemon → agent close request (1.0). */
export const MSG_CLOSE = 137;
/** Obsolete command execution; never sent. */
export const MSG_EXECUTE = 138;
/** Daemon → agent clipboard request (1.0). */
export const MSG_CLIPBOARD_REQ = 139;
/** Clipboard contents, both directions (1.0). */
export const MSG_CLIPBOARD_DATA = 140;
/** Agent → daemon window title (1.0). */
export const MSG_WMNAME = 141;
/** Daemon → agent keyboard state vector (1.0). */
export const MSG_KEYMAP_NOTIFY = 142;
/** Agent → daemon tray-icon docking (1.0). */
export const MSG_DOCK = 143;
/** Agent → daemon size hints (1.0). */
export const MSG_WINDOW_HINTS = 144;
/** Window state flags, both directions (1.0). */
export const MSG_WINDOW_FLAGS = 145;
/** Agent → daemon WM_CLASS (1.1). */
export const MSG_WMCLASS = 146;
/** Agent → daemon frame buffer grant references (1.2). */
export const MSG_WINDOW_DUMP = 147;
/** Agent → daemon cursor shape (1.3). */
export const MSG_CURSOR = 148;
/** Daemon → agent dump acknowledgement (1.7). */
export const MSG_WINDOW_DUMP_ACK = 149;
/** Sentinel above the last message type; not a message. */
export const MSG_MAX = 150;

/** Size of the common message header {type, window, untrusted_len}. */
export const MSG_HEADER_SIZE = 12;
/** Size of the handshake version word. */
export const MSG_VERSION_SIZE = 4;
/** Size of the handshake `msg_xconf`. */
export const MSG_XCONF_SIZE = 16;

/** Widest window the daemon accepts; wider is clamped. */
export const MAX_WINDOW_WIDTH = 16384;
/** Tallest window the daemon accepts; taller is clamped. */
export const MAX_WINDOW_HEIGHT = 6144;
/** Bits per pixel of every frame buffer (BGRX). */
export const DUMMY_DRV_FB_BPP = 32;
/** Page size of grant-shared memory. */
export const XC_PAGE_SIZE = 4096;
/** Largest frame buffer in bytes (16384 · 6144 · 4). */
export const MAX_WINDOW_MEM = MAX_WINDOW_WIDTH * MAX_WINDOW_HEIGHT * 4;
/** Most grant references in one WINDOW_DUMP (pages of the largest frame buffer). */
export const MAX_GRANT_REFS_COUNT = MAX_WINDOW_MEM / XC_PAGE_SIZE;
/** Most machine frames in one (deprecated) MFNDUMP. */
export const MAX_MFN_COUNT = MAX_GRANT_REFS_COUNT;
/** Size of a WINDOW_DUMP's own header {type, width, height, bpp}. */
export const WINDOW_DUMP_HDR_SIZE = 16;
/** Largest whole WINDOW_DUMP message, header included: 393 244 bytes. */
export const QUBES_MAX_MSG_WINDOW_DUMP_LEN = MAX_GRANT_REFS_COUNT * 4 + MSG_HEADER_SIZE + WINDOW_DUMP_HDR_SIZE;
/** Size of MFNDUMP's fixed part (`shm_cmd` without the frame list). */
export const SHM_CMD_SIZE = 28;
/** The only WINDOW_DUMP type: a list of grant references. */
export const WINDOW_DUMP_TYPE_GRANT_REFS = 0;

/** Clipboard limit for protocol ≤ 1.7. */
export const MAX_CLIPBOARD_SIZE = 65000;
/** Largest configurable clipboard limit (1.8). */
export const MAX_CLIPBOARD_BUFFER_SIZE = 256000;
/** Smallest configurable clipboard limit (1.8). */
export const MIN_CLIPBOARD_BUFFER_SIZE = 256;
/** Default per-domain clipboard limit (1.8). */
export const DEFAULT_CLIPBOARD_BUFFER_SIZE = 64000;

/** The vchan port of the GUI protocol. */
export const QUBES_GUI_VCHAN_PORT = 6000;
/** Width of the frame the daemon draws around override-redirect windows, in pixels. */
export const BORDER_WIDTH = 2;
/** An override-redirect window covering more than this % of the work area loses override-redirect. */
export const MAX_OVERRIDE_REDIRECT_PERCENTAGE = 90;
/** The "whole screen" window id. */
export const FULLSCREEN_WINDOW_ID = 0;

/** WINDOW_FLAGS bit: fullscreen (`_NET_WM_STATE_FULLSCREEN`). */
export const WINDOW_FLAG_FULLSCREEN = 1;
/** WINDOW_FLAGS bit: demands attention (`_NET_WM_STATE_DEMANDS_ATTENTION`). */
export const WINDOW_FLAG_DEMANDS_ATTENTION = 2;
/** WINDOW_FLAGS bit: minimize (`_NET_WM_STATE_HIDDEN`). */
export const WINDOW_FLAG_MINIMIZE = 4;

/** XSizeHints flag: user-specified position. */
export const USPosition = 1;
/** XSizeHints flag: user-specified size (dropped by the daemon). */
export const USSize = 2;
/** XSizeHints flag: program-specified position. */
export const PPosition = 4;
/** XSizeHints flag: program-specified size (dropped by the daemon). */
export const PSize = 8;
/** XSizeHints flag: minimum size present. */
export const PMinSize = 16;
/** XSizeHints flag: maximum size present. */
export const PMaxSize = 32;
/** XSizeHints flag: resize increments present. */
export const PResizeInc = 64;
/** XSizeHints flag: aspect ratios present (dropped by the daemon). */
export const PAspect = 128;
/** XSizeHints flag: base size present. */
export const PBaseSize = 256;
/** XSizeHints flag: window gravity present (dropped by the daemon). */
export const PWinGravity = 512;

/** CURSOR value: inherit the default cursor. */
export const CURSOR_DEFAULT = 0;
/** CURSOR value base: X font cursor `CURSOR_X11 + XC_glyph`. */
export const CURSOR_X11 = 0x100;
/** CURSOR values must stay below this (0x100 + 154). */
export const CURSOR_X11_MAX = 0x19a;

/** X event type in KEYPRESS: key pressed. */
export const KeyPress = 2;
/** X event type in KEYPRESS: key released. */
export const KeyRelease = 3;
/** X event type in BUTTON: button pressed. */
export const ButtonPress = 4;
/** X event type in BUTTON: button released. */
export const ButtonRelease = 5;
/** X event type in CROSSING: pointer entered. */
export const EnterNotify = 7;
/** X event type in CROSSING: pointer left. */
export const LeaveNotify = 8;
/** X event type in FOCUS: focus gained. */
export const FocusIn = 9;
/** X event type in FOCUS: focus lost. */
export const FocusOut = 10;
