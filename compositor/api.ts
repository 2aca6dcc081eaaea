/**
 * The seam between the Wayland compositor core that apps talk to and its
 * drivers: the agent's Qubes side (gui-agent/), which speaks the GUI
 * protocol to the daemon, and qubes-gui-desktop (desktop/).
 *
 * The compositor knows nothing of Qubes or browsers: it turns xdg toplevels
 * and popups into {@link ShellWindow}s, announces what apps do to them
 * through signals, and takes commands (configure, close, input, clipboard)
 * from its driver. Coordinates in this file are window coordinates unless a name says
 * otherwise: (0, 0) is the top-left corner of the window's geometry
 * (xdg_surface.set_window_geometry, or the main surface's bounds), in
 * logical pixels, which equal buffer pixels because the agent's output has
 * scale 1.
 */
import type { Signal } from "../wayland/index.ts";
import type { Rect } from "./geometry.ts";
import type { PositionerState } from "./positioner.ts";

/** A size in pixels; 0 in a dimension means "unset / the app decides". */
export interface Size {
  width: number;
  height: number;
}

/** A read-only view of committed pixels: XRGB8888/ARGB8888 little-endian = the protocol's BGRX bytes. */
export interface PixelSource {
  /**
   * Bytes of the buffer, row 0 first; valid only during the signal that
   * delivered it (or while a {@link CommitHold} keeps them). A resampled
   * (scaled) surface finishes resampling every row when this is read.
   */
  readonly bytes: Uint8Array;
  /**
   * The same bytes with at least rows [y, y + count), columns [x, x +
   * width) ready (all columns when x and width are left out): a scaled
   * surface is resampled as pixels are asked for, so a copy pays for the
   * rectangle it copies (a commit's damage, a slice of it), not the surface.
   */
  rows(y: number, count: number, x?: number, width?: number): Uint8Array;
  /** Bytes per row. */
  readonly stride: number;
  /** Pixels. */
  readonly width: number;
  readonly height: number;
  /** True for ARGB8888 (alpha meaningful), false for XRGB8888. */
  readonly hasAlpha: boolean;
}

/** One surface's contribution to a window's image, in stacking order (bottom first). */
export interface WindowLayer {
  readonly pixels: PixelSource;
  /** Where the buffer's (0, 0) lands, in window coordinates (the main surface at -geometry.x, -geometry.y). */
  readonly x: number;
  readonly y: number;
}

/**
 * A commit that changed a window's image: every layer of the window (main
 * surface and its subsurfaces, bottom first) and the damaged rectangles in
 * window coordinates. The pixels are readable only while the signal's
 * listeners run; the compositor releases the buffers (wl_buffer.release)
 * right after, so a listener copies what it needs synchronously, or holds
 * the commit ({@link WindowCommit.hold}) to copy it over later turns.
 */
export interface WindowCommit {
  readonly layers: readonly WindowLayer[];
  /** Damage in window coordinates, clipped to the window's size; the whole window after a size change. */
  readonly damage: readonly Rect[];
  /** The window's size (its geometry's size) as of this commit. */
  readonly size: Size;
  /** True when the size differs from the previous commit's (or this is the first commit with a buffer). */
  readonly resized: boolean;
  /**
   * Keeps this commit's buffers from the app (no wl_buffer.release) after
   * the listeners return, for a listener that copies the pixels over later
   * turns of the event loop. Call it during the signal. The hold ends at
   * release(), or when the window's next commit is signalled (that commit
   * always is while a hold lasts, even with no damage, and carries the
   * window's current pixels), or when the window unmaps or is destroyed.
   */
  hold(): CommitHold;
}

/** What {@link WindowCommit.hold} returns: the held commit's pixels on later turns, and the release. */
export interface CommitHold {
  /**
   * The held commit's layers, as views valid until the next turn of the
   * event loop (a pool the app grew in between is read through its new
   * mapping); null once the hold ended.
   */
  layers(): readonly WindowLayer[] | null;
  /** Ends the hold: the buffers go back to the app (when it has not replaced them already). Idempotent. */
  release(): void;
}

/** xdg_toplevel states the Qubes side can ask for in a configure. */
export interface ToplevelStates {
  activated?: boolean;
  fullscreen?: boolean;
  maximized?: boolean;
}

/** What a window's app asked of its window state (set_fullscreen, set_minimized ...). */
export type WindowRequest =
  | { kind: "fullscreen"; on: boolean }
  | { kind: "maximize"; on: boolean }
  | { kind: "minimize" }
  | { kind: "move" }
  | { kind: "resize"; edges: number }
  /** xdg_toplevel.show_window_menu at window coordinates (x, y). */
  | { kind: "windowMenu"; x: number; y: number }
  /** xdg_activation_v1.activate: the app asks to be raised and focused (show it as demands-attention). */
  | { kind: "activate" };

/**
 * A toplevel or popup of an app: what the Qubes side turns into a Qubes
 * window. Created when the app gives a surface the xdg_toplevel or xdg_popup
 * role; `mapped` once a buffer is committed after the initial configure;
 * destroyed when the role object or the surface is destroyed.
 */
export interface ShellWindow {
  /** Compositor-local id, unique for the compositor's lifetime (not the Qubes window id). */
  readonly id: number;
  readonly kind: "toplevel" | "popup";
  /** The popup's parent; a toplevel's xdg_toplevel.set_parent (null when none). */
  readonly parent: ShellWindow | null;
  /** The pid of the app (from the Wayland socket's peer credentials). */
  readonly pid: number;
  /** xdg_toplevel.set_title ("" until set). */
  readonly title: string;
  /** xdg_toplevel.set_app_id ("" until set). */
  readonly appId: string;
  /** xdg_toplevel.set_min_size / set_max_size (0 = unset). */
  readonly minSize: Size;
  readonly maxSize: Size;
  /** The window's current size (its committed geometry's size); 0×0 before the first buffer. */
  readonly size: Size;
  /** A popup's rectangle relative to its parent's window coordinates, after constraining; null for toplevels. */
  readonly popupRect: Rect | null;
  /** A popup's positioner state as the app set it (for re-positioning when the parent moves); null for toplevels. */
  readonly positioner: PositionerState | null;
  /** True between the first buffer commit and unmap/destroy. */
  readonly mapped: boolean;

  readonly events: {
    /** The first commit with a buffer after the initial configure (the window is ready to show). */
    map: Signal<ShellWindow>;
    /** The app committed a null buffer: hide, keep the object. */
    unmap: Signal<ShellWindow>;
    /** The window is gone (role object or surface destroyed, or its client disconnected). */
    destroy: Signal<ShellWindow>;
    /** New pixels: copy them now, or hold the commit (see {@link WindowCommit}). */
    commit: Signal<WindowCommit>;
    /** Title or app id changed. */
    title: Signal<ShellWindow>;
    appId: Signal<ShellWindow>;
    /** Min or max size changed. */
    sizeHints: Signal<ShellWindow>;
    /** The app asked for a window state change. */
    request: Signal<WindowRequest>;
    /** The app acknowledged the configure with this serial (xdg_surface.ack_configure). */
    ackConfigure: Signal<number>;
    /** A popup was repositioned (xdg_popup.reposition) or its parent moved it: popupRect changed. */
    reposition: Signal<ShellWindow>;
  };

  /**
   * Toplevel: sends xdg_toplevel.configure(width, height, states) and
   * xdg_surface.configure; returns the serial to wait for in ackConfigure.
   * 0×0 lets the app choose. Popup: re-sends its position (width/height
   * ignored).
   */
  configure(size: Size, states?: ToplevelStates): number;
  /** Asks the app to close the window (xdg_toplevel.close, xdg_popup.popup_done). */
  close(): void;
  /**
   * The consumer is done with the window's last signalled commit (its
   * pixels are copied and announced): the frame callbacks the app asked
   * for fire at the output's next refresh (60 Hz), or when the window is
   * shown again (see {@link setShown}). `timeMs` is not used: callbacks
   * carry the time of the refresh that fires them.
   */
  frameDone(timeMs?: number): void;
  /**
   * Says whether anything shows the window now (the Qubes side: a daemon
   * has it mapped). While a mapped window is not shown its frame callbacks
   * wait, so an animating app costs nothing while nobody can see it; they
   * fire at the next refresh once it is shown again. Windows are shown
   * until told otherwise.
   */
  setShown(shown: boolean): void;
  /**
   * Tells the compositor where the window's (0, 0) is on the screen (the
   * output), as the daemon last placed it: popups of this window are then
   * constrained to the screen in the window's own coordinates.
   */
  placeOnScreen(x: number, y: number): void;
}

/** Pointer and keyboard input, as the Qubes side injects it. */
export interface SeatControl {
  /** Gives keyboard focus to a window (wl_keyboard.enter with the held keys) or takes it away (null). */
  focus(window: ShellWindow | null): void;
  /** The window with keyboard focus. */
  readonly focused: ShellWindow | null;
  /** A key by evdev code; modifiers follow the key's effect on the keymap's modifier keys. */
  key(code: number, pressed: boolean): void;
  /** Sets the modifier state (xkb masks) when it differs from the current one. */
  setModifiers(depressed: number, latched: number, locked: number, group: number): void;
  /** evdev codes currently held down. */
  readonly pressedKeys: ReadonlySet<number>;
  /** Pointer at window coordinates (x, y) of `window`: enter if it is not the pointer's window yet, else motion. */
  pointerMove(window: ShellWindow, x: number, y: number): void;
  /** The pointer left its window (wl_pointer.leave). */
  pointerLeave(): void;
  /** A button (linux code, BTN_LEFT = 0x110) on the window under the pointer. */
  pointerButton(code: number, pressed: boolean): void;
  /** A scroll step: axis 0 vertical / 1 horizontal, `discrete` steps (±1). */
  pointerAxis(axis: number, discrete: number): void;
  /** The cursor the app under the pointer asked for: a name (cursor-shape or "default"), or null for hidden. */
  readonly events: { cursor: Signal<{ window: ShellWindow | null; name: string | null }> };
}

/** The clipboard (wl_data_device selection) as the Qubes side uses it. */
export interface ClipboardControl {
  /**
   * Reads the current selection, preferring text/plain;charset=utf-8, then
   * text/plain, UTF8_STRING, STRING, TEXT; null when there is none or it
   * offers no text. Reads at most `limit` bytes and reports whether more
   * were there.
   */
  read(limit: number): Promise<{ data: Uint8Array; truncated: boolean } | null>;
  /** Makes `data` the selection, offered as the text types above, owned by the compositor. */
  set(data: Uint8Array): void;
  readonly events: {
    /** An app (or set()) changed the selection. */
    change: Signal<void>;
  };
}

/** The compositor as the Qubes side drives it. */
export interface Compositor {
  /** The socket path apps connect to (also what WAYLAND_DISPLAY should name). */
  readonly socketPath: string;
  /** Windows that exist now, in creation order. */
  readonly windows: readonly ShellWindow[];
  readonly seat: SeatControl;
  readonly clipboard: ClipboardControl;
  readonly events: {
    /** A new toplevel or popup (not yet mapped). */
    newWindow: Signal<ShellWindow>;
  };
  /** Sets the output's size (wl_output mode, xdg_output), e.g. from the daemon's xconf; clamped to 640×480..16384×6144 (see output.ts). */
  setOutputSize(size: Size): void;
  /** Closes every client and the socket. */
  destroy(): void;
}

/** Options of the compositor. */
export interface CompositorOptions {
  /** Socket name (relative to XDG_RUNTIME_DIR) or absolute path. */
  socket: string;
  /** Initial output size (before the daemon's xconf arrives). */
  outputSize: Size;
  /** The keymap text (xkb v1) and its modifier keys (see ../keymap.ts). */
  keymap: { text: string; modifierKeys: ReadonlyMap<number, number> };
  /**
   * Told when a request handler of the compositor threw (a bug of ours: the
   * app got wl_display.error implementation and was disconnected), so the
   * agent can log it. Optional.
   */
  onHandlerError?: (failure: { pid: number; request: string; error: unknown }) => void;
  /**
   * Told when the compositor ended an app: a protocol error or a limit
   * (`code`, and the error's message as `reason`), so the agent can log it
   * with the app's pid. Clean disconnects are not reported. Optional.
   */
  onClientEnded?: (ended: { pid: number; code: string; reason: string }) => void;
}
