/**
 * One session's window registry: the daemon's side of each domain window,
 * driven only by trusted messages (the validator's output), shown as a
 * {@link HostWindow}, and the source of the input, configure and close
 * messages that go back to the agent.
 *
 * The validator already holds the protocol rules (unknown ids, duplicate
 * CREATEs, override-redirect, the configure handshake); the registry keeps
 * what showing a window needs: its host window, image, title, class, hints
 * and state, and it never trusts anything the validator did not produce.
 */
import type { Logger } from "pino";

import { decorateClass, decorateTitle, type VmName } from "../decorator/index.ts";
import {
  VERSION_DESTROY_ACK,
  VERSION_WINDOW_DUMP_ACK,
  offsetInWindow,
  vmRect,
  type Message,
  type Size,
  type TrustedMessage,
  type TrustedCursorShape,
  type TrustedOf,
  type VmRect,
  type WindowPoint,
  type WindowRect,
} from "../protocol/index.ts";
import type { DomainId, GrantTable } from "../shm/index.ts";
import type { GuidCounters } from "./counters.ts";
import type { HostDisplay } from "./host/display.ts";
import { buttonMask, keymapNotifyVector, xKeycodeFromEvdev } from "./host/input-map.ts";
import { HostWindow, type HostWindowListener, type HostWindowStates } from "./host/window.ts";
import { WindowImage } from "./images.ts";
import { RateLimit } from "./rate-limit.ts";

/** X event and detail values the daemon sends. */
const KEY_PRESS = 2;
const KEY_RELEASE = 3;
const BUTTON_PRESS = 4;
const BUTTON_RELEASE = 5;
const ENTER_NOTIFY = 7;
const LEAVE_NOTIFY = 8;
const FOCUS_IN = 9;
const FOCUS_OUT = 10;
const NOTIFY_NORMAL = 0;
const NOTIFY_NONLINEAR = 3;

/**
 * Host windows one domain may have made a second, sustained: each MAP makes
 * a toplevel (or popup) of several surfaces on the host compositor, which
 * every domain shares. A MAP past the rate (and past {@link HOST_WINDOW_BURST})
 * waits for its turn; an UNMAP or DESTROY before then means the host never
 * saw the window, so MAP/UNMAP churn costs the host at most this rate.
 */
export const HOST_WINDOW_RATE = 50;
/** Host windows made at once above the rate: a reconnecting agent maps all its windows together. */
export const HOST_WINDOW_BURST = 100;

/** What the registry needs from its session. */
export interface WindowContext {
  readonly display: HostDisplay;
  readonly grants: GrantTable;
  readonly domain: DomainId;
  readonly vmName: VmName;
  readonly border: number;
  readonly frameColor: number;
  readonly backgroundColor: number;
  readonly counters: GuidCounters;
  readonly log: Logger;
  /** The negotiated protocol version. */
  readonly version: number;
  /** Queues a message for the agent. */
  send(message: Message): void;
  /** The daemon's own CONFIGURE went out: the validator must hold the agent to it. */
  noteConfigureSent(window: number, rect: VmRect): void;
  /** A key reached a window; true when the session took it (a clipboard hotkey) and it must not go on. */
  interceptKey(window: DomainWindow, time: number, code: number, pressed: boolean, state: number): boolean;
  /** A commit of this window reached the host (for counters and latency hooks). */
  committed(window: DomainWindow, damage: readonly WindowRect[]): void;
}

/** The daemon's view of one domain window. */
export class DomainWindow implements HostWindowListener {
  readonly id: number;
  /** Geometry in VM space, as last agreed. */
  rect: VmRect;
  overrideRedirect: boolean;
  transientFor: number | null = null;
  title = "";
  resClass = "";
  minSize: Size | null = null;
  maxSize: Size | null = null;
  fullscreen = false;
  /** The pointer image the domain asked for (MSG_CURSOR). */
  cursor: TrustedCursorShape = { kind: "default" };
  /** The image of the last WINDOW_DUMP, or null (none yet, an empty dump, or unmapped). */
  image: WindowImage | null = null;
  host: HostWindow | null = null;
  readonly #registry: WindowRegistry;

  constructor(registry: WindowRegistry, id: number, rect: VmRect, overrideRedirect: boolean) {
    this.#registry = registry;
    this.id = id;
    this.rect = rect;
    this.overrideRedirect = overrideRedirect;
  }

  get #context(): WindowContext {
    return this.#registry.context;
  }

  // ---- HostWindowListener: the host → the agent ----

  configure(requested: Size | null, _states: HostWindowStates): void {
    if (requested === null) return;
    // Within the window's own size hints, whatever the host asked (sway's `resize set` ignores them).
    const size = {
      width: Math.min(Math.max(requested.width, this.minSize?.width ?? 1), this.maxSize?.width ?? Infinity),
      height: Math.min(Math.max(requested.height, this.minSize?.height ?? 1), this.maxSize?.height ?? Infinity),
    };
    if (size.width === this.rect.width && size.height === this.rect.height) {
      // The host's size is refused: the window keeps (and shows) the one it has.
      if (requested.width !== size.width || requested.height !== size.height) this.#resizeHost(size, true);
      return;
    }
    const rect = vmRect(this.rect.x, this.rect.y, size.width, size.height);
    this.rect = rect;
    this.#context.noteConfigureSent(this.id, rect);
    this.#context.send({
      type: "CONFIGURE",
      window: this.id,
      x: rect.x,
      y: rect.y,
      width: rect.width,
      height: rect.height,
      override_redirect: 0,
    });
    this.#resizeHost(size);
  }

  /** Resizes the host window, counting a resize merged into the next host frame's. */
  #resizeHost(size: Size, force = false): void {
    if (this.host !== null && !this.host.resize(size, force)) this.#context.counters.resizesCoalesced += 1;
  }

  close(): void {
    this.#context.send({ type: "CLOSE", window: this.id });
  }

  dismissed(): void {
    // The host closed the popup (a click elsewhere): the app learns it as a close of its menu.
    this.#context.send({ type: "CLOSE", window: this.id });
  }

  committed(damage: readonly WindowRect[]): void {
    this.#context.committed(this, damage);
  }

  pointerEnter(at: WindowPoint, state: number): void {
    const context = this.#context;
    context.send({ type: "KEYMAP_NOTIFY", window: 0, keys: keymapNotifyVector(context.display.heldKeys) });
    context.send({
      type: "CROSSING",
      window: this.id,
      event_type: ENTER_NOTIFY,
      x: at.x,
      y: at.y,
      state,
      mode: NOTIFY_NORMAL,
      detail: NOTIFY_NONLINEAR,
      focus: this.#registry.focused === this ? 1 : 0,
    });
  }

  pointerMotion(at: WindowPoint, state: number): void {
    this.#context.send({ type: "MOTION", window: this.id, x: at.x, y: at.y, state, is_hint: 0 });
  }

  pointerLeave(state: number): void {
    this.#context.send({
      type: "CROSSING",
      window: this.id,
      event_type: LEAVE_NOTIFY,
      x: 0,
      y: 0,
      state,
      mode: NOTIFY_NORMAL,
      detail: NOTIFY_NONLINEAR,
      focus: this.#registry.focused === this ? 1 : 0,
    });
  }

  pointerButton(at: WindowPoint, xButton: number, pressed: boolean, state: number): void {
    this.#context.send({
      type: "BUTTON",
      window: this.id,
      event_type: pressed ? BUTTON_PRESS : BUTTON_RELEASE,
      x: at.x,
      y: at.y,
      state,
      button: xButton,
    });
  }

  pointerWheel(at: WindowPoint, xButton: number, clicks: number, state: number): void {
    // As X reports a click: the release's state has the button held (Button4Mask, Button5Mask).
    for (let i = 0; i < clicks; i++) {
      this.pointerButton(at, xButton, true, state);
      this.pointerButton(at, xButton, false, state | buttonMask(xButton));
    }
  }

  focusIn(keys: readonly number[]): void {
    const context = this.#context;
    this.#registry.focused = this;
    context.send({ type: "KEYMAP_NOTIFY", window: 0, keys: keymapNotifyVector(keys) });
    context.send({
      type: "FOCUS",
      window: this.id,
      event_type: FOCUS_IN,
      mode: NOTIFY_NORMAL,
      detail: NOTIFY_NONLINEAR,
    });
  }

  focusOut(): void {
    if (this.#registry.focused === this) this.#registry.focused = null;
    this.#context.send({
      type: "FOCUS",
      window: this.id,
      event_type: FOCUS_OUT,
      mode: NOTIFY_NORMAL,
      detail: NOTIFY_NONLINEAR,
    });
  }

  key(time: number, code: number, pressed: boolean, at: WindowPoint, state: number): void {
    const context = this.#context;
    if (context.interceptKey(this, time, code, pressed, state)) return;
    const keycode = xKeycodeFromEvdev(code);
    if (keycode === null) return;
    context.send({
      type: "KEYPRESS",
      window: this.id,
      event_type: pressed ? KEY_PRESS : KEY_RELEASE,
      x: at.x,
      y: at.y,
      state,
      keycode,
    });
  }

  // ---- trusted messages → the host ----

  /** Shows the window on the host (MAP, or a re-map after override-redirect was revoked). */
  show(): void {
    const context = this.#context;
    this.#destroyHost();
    const parent = this.transientFor === null ? null : this.#registry.get(this.transientFor);
    const parentHost = parent?.host ?? null;
    const role =
      this.overrideRedirect && parent !== undefined && parent !== null && parentHost !== null
        ? ({ kind: "popup", parent: parentHost, offset: offsetInWindow(parent.rect, this.rect) } as const)
        : ({ kind: "toplevel", parent: parentHost } as const);
    this.host = new HostWindow(context.display, {
      role,
      size: { width: this.rect.width, height: this.rect.height },
      border: context.border,
      frameColor: context.frameColor,
      backgroundColor: context.backgroundColor,
      title: decorateTitle(context.vmName, this.title),
      appId: decorateClass(context.vmName, this.resClass),
      listener: this,
    });
    this.host.setSizeLimits(this.minSize, this.maxSize);
    this.host.setCursorShape(this.cursor);
    if (this.fullscreen) this.host.setFullscreen(true);
    if (this.image !== null) this.host.setContent(this.image);
  }

  /**
   * Destroys the host window. The host destroys our popups with it, so the
   * windows they showed are hidden too: none keeps a destroyed host (whose
   * xdg_surface a later child's get_popup would name).
   */
  #destroyHost(): void {
    const host = this.host;
    if (host === null) return;
    for (const other of this.#registry.shown) {
      if (other.host?.role.kind === "popup" && other.host.role.parent === host) other.hide();
    }
    host.destroy();
    this.host = null;
  }

  /** Removes the window from the host and lets go of its image (UNMAP, DESTROY, end of session). */
  hide(): void {
    this.#destroyHost();
    this.image?.destroy();
    this.image = null;
    if (this.#registry.focused === this) this.#registry.focused = null;
  }
}

/** A session's windows by VM window id. */
export class WindowRegistry {
  readonly context: WindowContext;
  /** The window with the keyboard focus, if it is one of this session's. */
  focused: DomainWindow | null = null;
  readonly #windows = new Map<number, DomainWindow>();
  /** HOST_WINDOW_RATE: the host windows this session may still make now. */
  readonly #hostWindows = new RateLimit(HOST_WINDOW_RATE, HOST_WINDOW_BURST);
  /** Mapped windows waiting for their turn under HOST_WINDOW_RATE, in MAP order. */
  readonly #deferred = new Set<DomainWindow>();
  #deferTimer: NodeJS.Timeout | null = null;

  constructor(context: WindowContext) {
    this.context = context;
  }

  get size(): number {
    return this.#windows.size;
  }

  get(id: number): DomainWindow | undefined {
    return this.#windows.get(id);
  }

  /** Windows shown on the host now. */
  get shown(): DomainWindow[] {
    return [...this.#windows.values()].filter((window) => window.host !== null);
  }

  /**
   * Handles one validated message. Throws only on a programmer error or a
   * grant the domain cannot back (a ShmError): the session ends then.
   */
  handle(message: TrustedMessage): void {
    this.context.log.trace({ type: message.type, window: "window" in message ? message.window : 0 }, "message");
    switch (message.type) {
      case "CREATE":
        this.#create(message);
        return;
      case "CLIPBOARD_DATA":
        return;
      default:
        break;
    }
    const window = this.#windows.get(message.window);
    if (window === undefined) {
      // The validator lets only known ids through: this is a bug, not a domain's fault.
      throw new Error(`trusted ${message.type} for window 0x${message.window.toString(16)} unknown to the registry`);
    }
    switch (message.type) {
      case "DESTROY":
        this.#destroy(window, message);
        return;
      case "MAP":
        window.rect = message.rect;
        window.transientFor = message.transientFor;
        window.overrideRedirect = message.overrideRedirect;
        this.#show(window);
        return;
      case "UNMAP":
        this.#deferred.delete(window);
        window.hide();
        return;
      case "CONFIGURE":
        this.#configure(window, message);
        return;
      case "SHMIMAGE":
        if (window.image !== null) window.host?.damage(message.rect);
        return;
      case "WMNAME":
        window.title = message.title;
        window.host?.setTitle(decorateTitle(this.context.vmName, message.title));
        return;
      case "WMCLASS":
        window.resClass = message.resClass;
        return;
      case "WINDOW_HINTS":
        window.minSize = message.min;
        window.maxSize = message.max;
        window.host?.setSizeLimits(message.min, message.max);
        return;
      case "WINDOW_FLAGS":
        this.#flags(window, message);
        return;
      case "DOCK":
        // The validator took override-redirect away (a docked window is never one): so does the registry.
        window.overrideRedirect = false;
        // Wayland has no XEmbed tray: a docked window stays known but is not shown.
        this.context.log.info({ window: window.id }, "a docked (tray) window is not shown: no tray on Wayland");
        return;
      case "CURSOR":
        window.cursor = message.cursor;
        window.host?.setCursorShape(message.cursor);
        return;
      case "WINDOW_DUMP":
        this.#dump(window, message);
        return;
    }
  }

  /** Ends every window (the session is over): host windows and mappings go, nothing is sent. */
  clear(): void {
    if (this.#deferTimer !== null) clearTimeout(this.#deferTimer);
    this.#deferTimer = null;
    this.#deferred.clear();
    for (const window of this.#windows.values()) window.hide();
    this.#windows.clear();
    this.focused = null;
  }

  #create(message: TrustedOf<"CREATE">): void {
    if (this.#windows.has(message.window)) {
      throw new Error(`trusted CREATE of window 0x${message.window.toString(16)}, which exists`);
    }
    this.#windows.set(message.window, new DomainWindow(this, message.window, message.rect, message.overrideRedirect));
  }

  /** Shows a window the domain mapped, now or (past HOST_WINDOW_RATE) at its turn. */
  #show(window: DomainWindow): void {
    if (this.#deferred.size === 0 && this.#hostWindows.available()) {
      this.#hostWindows.spend(1);
      window.show();
      return;
    }
    this.#deferred.add(window);
    this.context.counters.mapsDeferred += 1;
    this.#showDeferredLater();
  }

  /** Shows the waiting windows, in MAP order, as the rate allows. */
  #showDeferredLater(): void {
    if (this.#deferTimer !== null || this.#deferred.size === 0) return;
    this.#deferTimer = setTimeout(() => {
      this.#deferTimer = null;
      // The host went away: the session ends (and clears this registry) on its own.
      if (this.context.display.connection.destroyed) return;
      for (const window of this.#deferred) {
        if (!this.#hostWindows.available()) break;
        this.#hostWindows.spend(1);
        this.#deferred.delete(window);
        window.show();
      }
      this.#showDeferredLater();
    }, Math.ceil(this.#hostWindows.waitMs()));
  }

  #destroy(window: DomainWindow, message: TrustedOf<"DESTROY">): void {
    this.#deferred.delete(window);
    window.hide();
    this.#windows.delete(window.id);
    for (const other of this.#windows.values()) if (other.transientFor === window.id) other.transientFor = null;
    if (message.sendAck && this.context.version >= VERSION_DESTROY_ACK) {
      this.context.send({ type: "DESTROY", window: window.id });
    }
  }

  #configure(window: DomainWindow, message: TrustedOf<"CONFIGURE">): void {
    const before = window.rect;
    window.rect = message.rect;
    window.overrideRedirect = message.overrideRedirect;
    const host = window.host;
    if (host === null) return;
    if (message.overrideRedirectRevoked) {
      // Now managed: unmap, change, map again (QSB-072), keeping the image.
      const image = window.image;
      window.image = null;
      window.hide();
      window.image = image;
      window.show();
      return;
    }
    if (!host.resize({ width: message.rect.width, height: message.rect.height })) {
      this.context.counters.resizesCoalesced += 1;
    }
    if (host.role.kind === "popup" && (before.x !== message.rect.x || before.y !== message.rect.y)) {
      const parent = window.transientFor === null ? undefined : this.#windows.get(window.transientFor);
      if (parent !== undefined) host.movePopup(offsetInWindow(parent.rect, message.rect));
    }
  }

  #flags(window: DomainWindow, message: TrustedOf<"WINDOW_FLAGS">): void {
    const host = window.host;
    if (message.set.fullscreen) window.fullscreen = true;
    if (message.unset.fullscreen) window.fullscreen = false;
    if (host === null) return;
    if (message.set.fullscreen) host.setFullscreen(true);
    if (message.unset.fullscreen) host.setFullscreen(false);
    // Fullscreen that guid.conf does not allow arrives as maximize.
    if (message.set.maximize) host.setMaximized(true);
    if (message.unset.maximize) host.setMaximized(false);
    if (message.set.minimize) host.setMinimized();
  }

  #dump(window: DomainWindow, message: TrustedOf<"WINDOW_DUMP">): void {
    const context = this.context;
    context.counters.dumps += 1;
    const previous = window.image;
    let image: WindowImage | null = null;
    // Mapped now, or kept for the MAP that follows (a reconnecting agent replays dumps before MAP).
    if (message.geometry.kind === "image") {
      image = WindowImage.create(
        context.grants,
        context.domain,
        message.geometry,
        message.grantRefs,
        context.display.shm,
        context.counters,
      );
    }
    window.image = image;
    window.host?.setContent(image);
    previous?.destroy();
    // The new mapping is in place (or there is nothing to map): the agent may release the old pages.
    if (context.version >= VERSION_WINDOW_DUMP_ACK) context.send({ type: "WINDOW_DUMP_ACK", window: window.id });
  }
}
