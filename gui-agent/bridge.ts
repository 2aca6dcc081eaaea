/**
 * The Qubes side of the agent: turns the compositor's windows into Qubes
 * windows on the wire (qubes-gui-protocol.md 1.8), copies their damaged
 * pixels into granted framebuffers, and turns the daemon's messages into
 * input, configures, closes and clipboard transfers for the apps.
 *
 * The bridge outlives daemon connections: windows, framebuffers and ids stay
 * while no daemon is connected, and every window is replayed to the next one
 * (reference 1.3).
 */
import type { Logger } from "pino";

import {
  MAX_CLIPBOARD_BUFFER_SIZE,
  MAX_WINDOW_HEIGHT,
  MAX_WINDOW_WIDTH,
  MAX_CLIPBOARD_SIZE,
  PMaxSize,
  PMinSize,
  VERSION_CURSOR,
  VERSION_DESTROY_ACK,
  VERSION_LARGE_CLIPBOARD,
  VERSION_WINDOW_DUMP_ACK,
  WINDOW_DUMP_TYPE_GRANT_REFS,
  WINDOW_FLAG_DEMANDS_ATTENTION,
  WINDOW_FLAG_FULLSCREEN,
  WINDOW_FLAG_MINIMIZE,
  wmclassField,
  wmnameData,
  type Message,
  type XconfMessage,
} from "../protocol/index.ts";
import { DumpQueue, Framebuffer, type DomainId, type GrantTable } from "../shm/index.ts";
import type { AgentCompositor, ShellWindow, WindowCommit, WindowRequest } from "./compositor/api.ts";
import { cursorFromName } from "./cursors.ts";
import { coalesceDamage, copyBlock, type PixelBuffer } from "./damage.ts";
import type { Rect } from "./geometry.ts";
import { evdevFromXKeycode, modifiersFromXState, pointerActionFromXButton } from "./input-map.ts";
import type { DaemonLink } from "./link.ts";

/** X event types in KEYPRESS/BUTTON/CROSSING/FOCUS. */
const KEY_PRESS = 2;
const BUTTON_PRESS = 4;
const ENTER_NOTIFY = 7;
const LEAVE_NOTIFY = 8;
const FOCUS_IN = 9;
const FOCUS_OUT = 10;

/** The counters a test or benchmark reads. */
export interface AgentCounters {
  /** Bytes copied from apps' buffers into framebuffers. */
  bytesCopied: number;
  /** Commits with new pixels handled. */
  frames: number;
  /** SHMIMAGE messages sent. */
  shmimages: number;
  /** WINDOW_DUMP messages sent. */
  dumps: number;
  /** Framebuffers allocated (granted). */
  framebuffers: number;
  /** Time the last commit took in the bridge, from the commit signal to its last SHMIMAGE written (ns). */
  lastCommitNanos: number;
}

/** One app window as a Qubes window. */
class QubesWindow {
  /** The window id on the wire (never 0). */
  readonly id: number;
  readonly shell: ShellWindow;
  /** Popups: override-redirect, transient for their parent. */
  readonly overrideRedirect: boolean;
  readonly parent: QubesWindow | null;
  /** Screen position of the window's (0, 0), as last agreed with the daemon. */
  x = 0;
  y = 0;
  /** The framebuffer holding the window's current image (its size is the window's size). */
  framebuffer: Framebuffer | null = null;
  /** CREATE sent on the current link. */
  created = false;
  /** MAP sent on the current link (and no UNMAP since). */
  mapped = false;
  /** A WINDOW_DUMP of the current framebuffer must go out before the next SHMIMAGE. */
  dumpPending = true;
  /** WINDOW_FLAGS currently set by the agent. */
  flags = 0;
  /** DESTROY sent; input for it is ignored and the id is not reused until the daemon acknowledges. */
  destroyed = false;
  /** Placed on the screen once: a remap keeps the position the daemon last gave. */
  placed = false;
  /** The size the daemon believes the window has (last CONFIGURE either way); 0 before any. */
  wireWidth = 0;
  wireHeight = 0;
  /** Serial of a configure asked of the app for the daemon's size, until the app acknowledges it. */
  pendingConfigure = 0;
  /** The CURSOR last sent for this window (-1: none yet). */
  cursor = -1;
  readonly unsubscribe: Array<() => void> = [];

  constructor(id: number, shell: ShellWindow, parent: QubesWindow | null) {
    this.id = id;
    this.shell = shell;
    this.overrideRedirect = shell.kind === "popup";
    this.parent = parent;
  }

  /** The window's size on the wire: the app's, cut to the protocol's 16384×6144 (the rest is not shown). */
  get width(): number {
    return this.framebuffer?.width ?? Math.min(this.shell.size.width, MAX_WINDOW_WIDTH);
  }

  get height(): number {
    return this.framebuffer?.height ?? Math.min(this.shell.size.height, MAX_WINDOW_HEIGHT);
  }
}

/** Options of the bridge. */
export interface BridgeOptions {
  compositor: AgentCompositor;
  /** This domain's grant table: framebuffers are shared from it. */
  grants: GrantTable;
  /** The GUI domain: framebuffers are granted to it. */
  guiDomain: DomainId;
  log: Logger;
}

/** Window ids in use wrap around below this bound (ids are u32; 0 is the screen window). */
const MAX_WINDOW_ID = 0xffffffff;

/**
 * The agent's bridge between its compositor and the current daemon link.
 */
export class WindowBridge {
  readonly counters: AgentCounters = {
    bytesCopied: 0,
    frames: 0,
    shmimages: 0,
    dumps: 0,
    framebuffers: 0,
    lastCommitNanos: 0,
  };
  readonly #compositor: AgentCompositor;
  readonly #grants: GrantTable;
  readonly #guiDomain: DomainId;
  readonly #log: Logger;
  readonly #byShell = new Map<ShellWindow, QubesWindow>();
  /** Every id in use: live windows and destroyed ones waiting for the DESTROY ack. */
  readonly #byId = new Map<number, QubesWindow>();
  readonly #dumps = new DumpQueue();
  #nextId = 1;
  #link: DaemonLink | null = null;
  #screen = { width: 1920, height: 1080 };
  /** The window the pointer is in, as the daemon last said. */
  #pointerWindow: QubesWindow | null = null;
  readonly #unsubscribe: Array<() => void> = [];

  constructor(options: BridgeOptions) {
    this.#compositor = options.compositor;
    this.#grants = options.grants;
    this.#guiDomain = options.guiDomain;
    this.#log = options.log;
    for (const shell of this.#compositor.windows) this.#adopt(shell);
    this.#unsubscribe.push(
      this.#compositor.events.newWindow.add((shell) => this.#adopt(shell)),
      this.#compositor.seat.events.cursor.add(({ window, name }) => this.#onCursor(window, name)),
    );
  }

  /** Told the duration (ns) of every commit the bridge handles, from the commit signal to its last SHMIMAGE written. */
  onCommitTimed: ((nanos: number) => void) | null = null;

  /** The daemon link now in use, if any. */
  get link(): DaemonLink | null {
    return this.#link;
  }

  /** WINDOW_DUMPs sent and not yet acknowledged. */
  get dumpsInFlight(): number {
    return this.#dumps.length;
  }

  /** Qubes window id of a compositor window, if it has one. */
  windowId(shell: ShellWindow): number | undefined {
    return this.#byShell.get(shell)?.id;
  }

  /**
   * Starts using a link whose handshake just finished: every window is
   * replayed to the new daemon (CREATE, CONFIGURE, WINDOW_DUMP, WMCLASS,
   * WINDOW_HINTS, then MAP, WMNAME, WINDOW_FLAGS if mapped, and a full
   * SHMIMAGE), as the Linux agent does after a reconnect.
   */
  attach(link: DaemonLink, xconf: XconfMessage): void {
    this.#link = link;
    this.#screen = { width: xconf.w, height: xconf.h };
    this.#compositor.setOutputSize(this.#screen);
    // Dumps and destroys in flight belonged to the previous daemon.
    this.#dumps.releaseAll();
    for (const [id, window] of this.#byId) {
      if (window.destroyed) this.#byId.delete(id);
    }
    this.#pointerWindow = null;
    link.on("message", (message) => this.#handle(message));
    for (const window of this.#byShell.values()) {
      window.created = false;
      window.mapped = false;
      window.dumpPending = true;
      window.cursor = -1;
      if (window.shell.mapped) this.#replay(window);
    }
  }

  /** Stops using the link (the daemon went away); windows stay for the next one. */
  detach(): void {
    this.#link = null;
  }

  /** Unsubscribes from the compositor and ends every framebuffer. */
  destroy(): void {
    for (const off of this.#unsubscribe.splice(0)) off();
    for (const window of this.#byShell.values()) this.#forget(window);
    this.#byShell.clear();
    this.#byId.clear();
    this.#dumps.releaseAll();
  }

  // ---- compositor → daemon ----

  #allocateId(): number {
    for (;;) {
      const id = this.#nextId;
      this.#nextId = id >= MAX_WINDOW_ID ? 1 : id + 1;
      if (!this.#byId.has(id)) return id;
    }
  }

  #adopt(shell: ShellWindow): void {
    const parent = shell.parent === null ? null : (this.#byShell.get(shell.parent) ?? null);
    const window = new QubesWindow(this.#allocateId(), shell, parent);
    this.#byShell.set(shell, window);
    this.#byId.set(window.id, window);
    const on = shell.events;
    window.unsubscribe.push(
      on.map.add(() => this.#onMap(window)),
      on.commit.add((commit) => this.#onCommit(window, commit)),
      on.unmap.add(() => this.#onUnmap(window)),
      on.destroy.add(() => this.#onDestroy(window)),
      on.title.add(() => this.#sendTitle(window)),
      on.appId.add(() => this.#sendClass(window)),
      on.sizeHints.add(() => this.#sendHints(window)),
      on.request.add((request) => this.#onRequest(window, request)),
      on.reposition.add(() => this.#onReposition(window)),
      on.ackConfigure.add((serial) => {
        if (window.pendingConfigure !== 0 && serial >= window.pendingConfigure) window.pendingConfigure = 0;
      }),
    );
  }

  #send(message: Message): void {
    this.#link?.send(message);
  }

  /** Where a window appears first: popups relative to their parent, toplevels centred on the screen. */
  #place(window: QubesWindow): void {
    const rect = window.shell.popupRect;
    if (window.parent !== null && rect !== null) {
      window.x = window.parent.x + rect.x;
      window.y = window.parent.y + rect.y;
    } else {
      window.x = Math.max(0, Math.floor((this.#screen.width - window.width) / 2));
      window.y = Math.max(0, Math.floor((this.#screen.height - window.height) / 2));
    }
    window.placed = true;
    window.shell.placeOnScreen(window.x, window.y);
  }

  #onMap(window: QubesWindow): void {
    if (window.mapped || window.destroyed) return;
    if (!window.placed) this.#place(window);
    if (this.#link !== null) this.#announce(window);
  }

  /** CREATE, WINDOW_HINTS, WMNAME, WMCLASS, then WINDOW_FLAGS and MAP (reference 1.8 steps 1-2). */
  #announce(window: QubesWindow): void {
    if (!window.created) {
      this.#sendCreate(window);
      if (!window.overrideRedirect) {
        this.#sendHints(window);
        this.#sendTitle(window);
        this.#sendClass(window);
      }
    }
    if (!window.mapped) {
      this.#send({ type: "WINDOW_FLAGS", window: window.id, flags_set: window.flags, flags_unset: 0 });
      this.#sendMap(window);
      window.dumpPending = true;
    }
  }

  /** After a reconnect: the window as it is now, in the order of the Linux agent's replay. */
  #replay(window: QubesWindow): void {
    this.#sendCreate(window);
    this.#sendConfigure(window);
    this.#sendDump(window);
    if (!window.overrideRedirect) {
      this.#sendClass(window);
      this.#sendHints(window);
    }
    this.#sendMap(window);
    if (!window.overrideRedirect) this.#sendTitle(window);
    this.#send({ type: "WINDOW_FLAGS", window: window.id, flags_set: window.flags, flags_unset: 0 });
    this.#sendShmimage(window, { x: 0, y: 0, width: window.width, height: window.height });
  }

  #sendCreate(window: QubesWindow): void {
    this.#send({
      type: "CREATE",
      window: window.id,
      x: window.x,
      y: window.y,
      width: Math.max(1, window.width),
      height: Math.max(1, window.height),
      parent: 0,
      override_redirect: window.overrideRedirect ? 1 : 0,
    });
    window.created = true;
    window.wireWidth = Math.max(1, window.width);
    window.wireHeight = Math.max(1, window.height);
  }

  #sendMap(window: QubesWindow): void {
    this.#send({
      type: "MAP",
      window: window.id,
      transient_for: window.parent?.id ?? 0,
      override_redirect: window.overrideRedirect ? 1 : 0,
    });
    window.mapped = true;
  }

  #sendConfigure(window: QubesWindow): void {
    if (!window.created) return;
    window.wireWidth = Math.max(1, window.width);
    window.wireHeight = Math.max(1, window.height);
    this.#send({
      type: "CONFIGURE",
      window: window.id,
      x: window.x,
      y: window.y,
      width: window.wireWidth,
      height: window.wireHeight,
      override_redirect: 0,
    });
  }

  #sendDump(window: QubesWindow): void {
    const framebuffer = window.framebuffer;
    if (framebuffer === null || this.#link === null || !window.created) return;
    this.#send({
      type: "WINDOW_DUMP",
      window: window.id,
      dump_type: WINDOW_DUMP_TYPE_GRANT_REFS,
      width: framebuffer.width,
      height: framebuffer.height,
      bpp: 32,
      grant_refs: Uint32Array.from(framebuffer.refs),
    });
    this.counters.dumps += 1;
    // Before 1.7 no ACK comes: the daemon mapped the pages when it read the dump.
    if (this.#link.version >= VERSION_WINDOW_DUMP_ACK) this.#dumps.sent(framebuffer);
    window.dumpPending = false;
  }

  #sendShmimage(window: QubesWindow, rect: Rect): void {
    if (!window.mapped || this.#link === null) return;
    if (window.dumpPending) this.#sendDump(window);
    this.#send({ type: "SHMIMAGE", window: window.id, x: rect.x, y: rect.y, width: rect.width, height: rect.height });
    this.counters.shmimages += 1;
  }

  /**
   * A commit with new pixels: copy and announce them, then let the app draw
   * its next frame, whatever happened (a window the daemon cannot show must
   * not stall its app).
   */
  #onCommit(window: QubesWindow, commit: WindowCommit): void {
    if (window.destroyed) return;
    try {
      this.#copyCommit(window, commit);
    } catch (error) {
      this.#log.warn(
        { err: error, window: window.id, size: commit.size },
        "cannot show this frame (out of grant pages?)",
      );
    }
    window.shell.frameDone(Date.now() >>> 0);
  }

  #copyCommit(window: QubesWindow, commit: WindowCommit): void {
    const start = process.hrtime.bigint();
    // A window larger than the protocol allows shows its top-left 16384×6144.
    const width = Math.min(commit.size.width, MAX_WINDOW_WIDTH);
    const height = Math.min(commit.size.height, MAX_WINDOW_HEIGHT);
    if (width <= 0 || height <= 0) return;
    this.counters.frames += 1;
    let damage: Rect[];
    let framebuffer = window.framebuffer;
    if (framebuffer === null || framebuffer.width !== width || framebuffer.height !== height) {
      // A new size needs new pages: grant them, copy the whole window, dump it.
      const previous = framebuffer;
      framebuffer = new Framebuffer(this.#grants, this.#guiDomain, width, height);
      this.counters.framebuffers += 1;
      previous?.destroy();
      window.framebuffer = framebuffer;
      window.dumpPending = true;
      damage = [{ x: 0, y: 0, width, height }];
    } else {
      damage = coalesceDamage(commit.damage, { x: 0, y: 0, width, height });
    }
    const target: PixelBuffer = { bytes: framebuffer.pixels, stride: framebuffer.stride, width, height };
    for (const rect of damage) {
      for (const layer of commit.layers) {
        this.counters.bytesCopied += copyBlock(
          layer.pixels,
          rect.x - layer.x,
          rect.y - layer.y,
          target,
          rect.x,
          rect.y,
          rect.width,
          rect.height,
        );
      }
    }
    if (!window.mapped && window.shell.mapped && this.#link !== null) this.#onMap(window);
    // The daemon must know the size the window really has: after the app
    // resized itself, or answered a configure with another size than asked.
    if (
      window.created &&
      window.pendingConfigure === 0 &&
      (window.wireWidth !== width || window.wireHeight !== height)
    ) {
      this.#sendConfigure(window);
    }
    for (const rect of damage) this.#sendShmimage(window, rect);
    this.counters.lastCommitNanos = Number(process.hrtime.bigint() - start);
    this.onCommitTimed?.(this.counters.lastCommitNanos);
  }

  #onUnmap(window: QubesWindow): void {
    if (!window.mapped) return;
    this.#send({ type: "UNMAP", window: window.id });
    window.mapped = false;
    window.dumpPending = true;
    if (this.#pointerWindow === window) this.#pointerWindow = null;
  }

  #forget(window: QubesWindow): void {
    for (const off of window.unsubscribe.splice(0)) off();
    window.framebuffer?.destroy();
    window.framebuffer = null;
  }

  #onDestroy(window: QubesWindow): void {
    this.#byShell.delete(window.shell);
    this.#forget(window);
    if (this.#pointerWindow === window) this.#pointerWindow = null;
    window.destroyed = true;
    const link = this.#link;
    if (link !== null && window.created) {
      if (window.mapped) this.#send({ type: "UNMAP", window: window.id });
      this.#send({ type: "DESTROY", window: window.id });
      // From 1.5 the id stays reserved until the daemon's DESTROY comes back (the link may have just
      // closed under the sends: its version still says what the daemon spoke).
      if (link.version >= VERSION_DESTROY_ACK && !link.closed) return;
    }
    this.#byId.delete(window.id);
  }

  #sendTitle(window: QubesWindow): void {
    if (!window.created || window.overrideRedirect) return;
    this.#send({ type: "WMNAME", window: window.id, data: wmnameData(window.shell.title) });
  }

  #sendClass(window: QubesWindow): void {
    if (!window.created || window.overrideRedirect) return;
    const appId = window.shell.appId;
    this.#send({ type: "WMCLASS", window: window.id, res_class: wmclassField(appId), res_name: wmclassField(appId) });
  }

  #sendHints(window: QubesWindow): void {
    if (!window.created || window.overrideRedirect) return;
    const { minSize, maxSize } = window.shell;
    let flags = 0;
    if (minSize.width > 0 || minSize.height > 0) flags |= PMinSize;
    if (maxSize.width > 0 && maxSize.height > 0) flags |= PMaxSize;
    this.#send({
      type: "WINDOW_HINTS",
      window: window.id,
      flags,
      min_width: minSize.width,
      min_height: minSize.height,
      max_width: maxSize.width,
      max_height: maxSize.height,
      width_inc: 0,
      height_inc: 0,
      base_width: 0,
      base_height: 0,
    });
  }

  #setFlags(window: QubesWindow, set: number, unset: number): void {
    window.flags = (window.flags | set) & ~unset;
    if (window.created) this.#send({ type: "WINDOW_FLAGS", window: window.id, flags_set: set, flags_unset: unset });
  }

  #onRequest(window: QubesWindow, request: WindowRequest): void {
    switch (request.kind) {
      case "fullscreen":
        if (request.on) this.#setFlags(window, WINDOW_FLAG_FULLSCREEN, 0);
        else this.#setFlags(window, 0, WINDOW_FLAG_FULLSCREEN);
        break;
      case "minimize":
        this.#setFlags(window, WINDOW_FLAG_MINIMIZE, 0);
        break;
      case "activate":
        // An app cannot raise itself over another domain's windows: the host shows it as urgent.
        if (this.#compositor.seat.focused !== window.shell) this.#setFlags(window, WINDOW_FLAG_DEMANDS_ATTENTION, 0);
        break;
      default:
        // maximize, move and resize are the host window manager's business.
        break;
    }
  }

  #onReposition(window: QubesWindow): void {
    if (window.parent === null || window.shell.popupRect === null) return;
    window.x = window.parent.x + window.shell.popupRect.x;
    window.y = window.parent.y + window.shell.popupRect.y;
    window.shell.placeOnScreen(window.x, window.y);
    this.#sendConfigure(window);
  }

  #onCursor(shell: ShellWindow | null, name: string | null): void {
    if (this.#link === null || this.#link.version < VERSION_CURSOR) return;
    const window = shell === null ? this.#pointerWindow : this.#byShell.get(shell);
    if (window === undefined || window === null || !window.created) return;
    const cursor = name === null ? 0 : cursorFromName(name);
    if (cursor === window.cursor) return;
    window.cursor = cursor;
    this.#send({ type: "CURSOR", window: window.id, cursor });
  }

  // ---- daemon → compositor ----

  #live(id: number): QubesWindow | null {
    const window = this.#byId.get(id);
    return window === undefined || window.destroyed ? null : window;
  }

  #handle(message: Message): void {
    switch (message.type) {
      case "WINDOW_DUMP_ACK":
        this.#dumps.acknowledge();
        return;
      case "DESTROY": {
        const window = this.#byId.get(message.window);
        if (window?.destroyed === true) this.#byId.delete(message.window);
        return;
      }
      case "CLIPBOARD_REQ":
        void this.#answerClipboardRequest(message.window);
        return;
      case "CLIPBOARD_DATA":
        this.#compositor.clipboard.set(message.data);
        return;
      case "KEYMAP_NOTIFY":
        this.#releaseKeysNotHeld(message.keys);
        return;
      default:
        break;
    }
    const window = this.#live(message.window);
    if (window === null) {
      this.#log.debug({ type: message.type, window: message.window }, "message for an unknown or destroyed window");
      return;
    }
    const seat = this.#compositor.seat;
    switch (message.type) {
      case "KEYPRESS": {
        const code = evdevFromXKeycode(message.keycode);
        if (code === undefined) return;
        if (seat.focused !== window.shell) seat.focus(window.shell);
        const mods = modifiersFromXState(message.state);
        seat.setModifiers(mods.depressed, mods.latched, mods.locked, mods.group);
        seat.key(code, message.event_type === KEY_PRESS);
        return;
      }
      case "BUTTON": {
        seat.pointerMove(window.shell, message.x, message.y);
        this.#pointerWindow = window;
        const action = pointerActionFromXButton(message.button);
        const pressed = message.event_type === BUTTON_PRESS;
        if (action.kind === "button") seat.pointerButton(action.code, pressed);
        else if (action.kind === "axis" && pressed) seat.pointerAxis(action.axis, action.discrete);
        return;
      }
      case "MOTION":
        seat.pointerMove(window.shell, message.x, message.y);
        this.#pointerWindow = window;
        return;
      case "CROSSING":
        if (message.event_type === ENTER_NOTIFY) {
          seat.pointerMove(window.shell, message.x, message.y);
          this.#pointerWindow = window;
        } else if (message.event_type === LEAVE_NOTIFY && this.#pointerWindow === window) {
          seat.pointerLeave();
          this.#pointerWindow = null;
        }
        return;
      case "FOCUS":
        if (message.event_type === FOCUS_IN) {
          seat.focus(window.shell);
          if ((window.flags & WINDOW_FLAG_DEMANDS_ATTENTION) !== 0)
            this.#setFlags(window, 0, WINDOW_FLAG_DEMANDS_ATTENTION);
          if (window.shell.kind === "toplevel") {
            window.shell.configure(window.shell.size, this.#states(window, true));
          }
        } else if (message.event_type === FOCUS_OUT && seat.focused === window.shell) {
          seat.focus(null);
          if (window.shell.kind === "toplevel") {
            window.shell.configure(window.shell.size, this.#states(window, false));
          }
        }
        return;
      case "CONFIGURE":
        this.#onDaemonConfigure(window, message.x, message.y, message.width, message.height);
        return;
      case "CLOSE":
        window.shell.close();
        return;
      case "WINDOW_FLAGS": {
        const set = message.flags_set;
        const unset = message.flags_unset;
        window.flags = (window.flags | set) & ~unset;
        if (((set | unset) & WINDOW_FLAG_FULLSCREEN) !== 0 && window.shell.kind === "toplevel") {
          window.shell.configure({ width: 0, height: 0 }, this.#states(window, seat.focused === window.shell));
        }
        return;
      }
      case "MAP":
        // The host's window manager showed a window we had not mapped: Wayland
        // windows cannot be shown from outside; the next commit maps it.
        return;
      default:
        this.#log.debug({ type: message.type }, "ignored daemon message");
    }
  }

  #states(window: QubesWindow, activated: boolean): { activated: boolean; fullscreen: boolean } {
    return { activated, fullscreen: (window.flags & WINDOW_FLAG_FULLSCREEN) !== 0 };
  }

  /**
   * The daemon moved or resized a window (the configure handshake of
   * reference 1.8): acknowledge at once with the same values, then ask the
   * app for the new size; when it commits a different size than asked, the
   * next CONFIGURE (from the commit) tells the daemon what it really is.
   */
  #onDaemonConfigure(window: QubesWindow, x: number, y: number, width: number, height: number): void {
    window.x = x;
    window.y = y;
    window.shell.placeOnScreen(x, y);
    this.#send({ type: "CONFIGURE", window: window.id, x, y, width, height, override_redirect: 0 });
    window.wireWidth = width;
    window.wireHeight = height;
    const size = window.shell.size;
    if (window.shell.kind === "toplevel" && (size.width !== width || size.height !== height)) {
      const focused = this.#compositor.seat.focused === window.shell;
      window.pendingConfigure = window.shell.configure({ width, height }, this.#states(window, focused));
    }
  }

  #releaseKeysNotHeld(keys: Uint8Array): void {
    const seat = this.#compositor.seat;
    for (const code of [...seat.pressedKeys]) {
      const x = code + 8;
      const held = x < 256 && (((keys[x >> 3] as number) >> (x & 7)) & 1) === 1;
      if (!held) seat.key(code, false);
    }
  }

  async #answerClipboardRequest(windowId: number): Promise<void> {
    const link = this.#link;
    if (link === null) return;
    const large = link.version >= VERSION_LARGE_CLIPBOARD;
    const limit = large ? MAX_CLIPBOARD_BUFFER_SIZE : MAX_CLIPBOARD_SIZE;
    let data: Uint8Array = new Uint8Array(0);
    try {
      const selection = await this.#compositor.clipboard.read(limit + 1);
      if (selection !== null) data = selection.data;
    } catch (error) {
      this.#log.warn({ err: error }, "reading the clipboard failed");
    }
    // Over the limit: a 1.8 daemon learns it from exactly limit + 1 bytes; older ones get the first limit bytes.
    if (data.length > limit) data = large ? data.subarray(0, limit + 1) : data.subarray(0, limit);
    if (this.#link === link) link.send({ type: "CLIPBOARD_DATA", window: windowId, data });
  }
}
