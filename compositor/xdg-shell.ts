/**
 * xdg_wm_base (toplevels and popups with their positioners) and
 * zxdg_decoration_manager_v1, turning each role object into a
 * {@link ShellWindow} that the Qubes side drives: the configure handshake,
 * window geometry, min/max size, title and app id, popups placed by
 * positioner.ts and kept on the output, popup grabs, and one
 * {@link WindowCommit} per change of the window's image.
 */
import {
  Signal,
  xdg_popup,
  xdg_positioner,
  xdg_surface,
  xdg_toplevel,
  xdg_wm_base,
  zxdg_toplevel_decoration_v1,
  type Client,
  type Display,
  type Resource,
} from "../wayland/index.ts";
import type { Rect } from "./geometry.ts";
import { intersect, isEmpty, union } from "./geometry.ts";
import { defaultPositioner, positionPopup, type PositionerState } from "./positioner.ts";
import type { CommitHold, ShellWindow, Size, ToplevelStates, WindowCommit, WindowLayer, WindowRequest } from "./api.ts";
import { placedSurfaces, surfaceOf, treeSurfaces, type Surface, type SurfaceRoleHandler } from "./surface.ts";

/** What the shell needs from the rest of the compositor. */
export interface ShellContext {
  /** The output's size (popups are kept inside it). */
  outputSize(): Size;
  /** A new window exists (not yet mapped). */
  windowCreated(window: ShellWindowImpl): void;
  /** A window is gone (just before its destroy signal). */
  windowDestroyed(window: ShellWindowImpl): void;
  /** A window was mapped or unmapped, or a popup grab changed (keyboard focus may move). */
  windowStateChanged(window: ShellWindowImpl): void;
  /** A window's surface got content for the first time since it was mapped (send wl_surface.enter). */
  surfaceShown(surface: Surface): void;
  /** A window's frame callbacks may fire now (frameDone, or it is shown again): put them on the refresh clock. */
  framesReady(window: ShellWindowImpl): void;
}

/** xdg_toplevel.state values. */
const STATE_MAXIMIZED = 1;
const STATE_FULLSCREEN = 2;
const STATE_ACTIVATED = 4;

/** xdg_toplevel.wm_capabilities values: what the daemon's frame offers. */
const CAPABILITIES = [2, 3, 4];

/** The largest window edge accepted from an app (the protocol's sizes are int32; X windows are at most 32767). */
const MAX_EDGE = 32767;

/** Configure serials remembered per window for ack_configure; older ones are only known as "sent before". */
const MAX_SENT_SERIALS = 256;

/** True when serial `a` was handed out before `b` (serials wrap at 2^32). */
function serialBefore(a: number, b: number): boolean {
  return ((a - b) | 0) < 0;
}

/**
 * A commit held by the consumer (see WindowCommit.hold): the window's
 * layers as of that commit, refreshed when the app's pool was mapped again.
 */
class HeldCommit implements CommitHold {
  readonly #window: ShellWindowImpl;
  /** The geometry's origin in main-surface coordinates when the commit was signalled. */
  readonly #origin: { x: number; y: number };
  #layers: WindowLayer[];

  constructor(window: ShellWindowImpl, origin: { x: number; y: number }, layers: WindowLayer[]) {
    this.#window = window;
    this.#origin = origin;
    this.#layers = layers;
  }

  layers(): readonly WindowLayer[] | null {
    if (!this.#window.isHolding(this)) return null;
    // rows(0, 0) costs nothing; a view of a pool that was mapped again reads as empty.
    if (this.#layers.some((layer) => layer.pixels.rows(0, 0).byteLength === 0)) {
      this.#layers = this.#window.layersAt(this.#origin);
    }
    return this.#layers;
  }

  release(): void {
    this.#window.endHold(this);
  }
}

function statesArray(states: ToplevelStates): Uint8Array {
  const values: number[] = [];
  if (states.maximized === true) values.push(STATE_MAXIMIZED);
  if (states.fullscreen === true) values.push(STATE_FULLSCREEN);
  if (states.activated === true) values.push(STATE_ACTIVATED);
  const bytes = new Uint8Array(values.length * 4);
  const view = new DataView(bytes.buffer);
  values.forEach((value, i) => view.setUint32(i * 4, value, true));
  return bytes;
}

/**
 * A toplevel or popup (see {@link ShellWindow}); the compositor's own
 * fields (surface, role objects, handshake state) are public for the seat
 * and the compositor, not for the Qubes side.
 */
export class ShellWindowImpl implements ShellWindow, SurfaceRoleHandler {
  readonly id: number;
  readonly kind: "toplevel" | "popup";
  parent: ShellWindowImpl | null;
  readonly pid: number;
  title = "";
  appId = "";
  minSize: Size = { width: 0, height: 0 };
  maxSize: Size = { width: 0, height: 0 };
  size: Size = { width: 0, height: 0 };
  popupRect: Rect | null = null;
  positioner: PositionerState | null = null;
  mapped = false;
  /** Top-left on the screen as the Qubes side set it (placeOnScreen); popups not placed derive theirs from the parent. */
  position = { x: 0, y: 0 };
  readonly events = {
    map: new Signal<ShellWindow>(),
    unmap: new Signal<ShellWindow>(),
    destroy: new Signal<ShellWindow>(),
    commit: new Signal<WindowCommit>(),
    title: new Signal<ShellWindow>(),
    appId: new Signal<ShellWindow>(),
    sizeHints: new Signal<ShellWindow>(),
    request: new Signal<WindowRequest>(),
    ackConfigure: new Signal<number>(),
    reposition: new Signal<ShellWindow>(),
  };

  /** The main surface, its xdg_surface and role object, and the xdg_wm_base that made them. */
  readonly surface: Surface;
  readonly client: Client;
  readonly xdgSurface: Resource<"xdg_surface">;
  readonly wmBase: Resource<"xdg_wm_base">;
  toplevel: Resource<"xdg_toplevel"> | null = null;
  popup: Resource<"xdg_popup"> | null = null;
  /** A popup asked for a grab (xdg_popup.grab) and was not dismissed yet. */
  grabbed = false;
  /** Child popups that are alive. */
  readonly popups = new Set<ShellWindowImpl>();
  destroyed = false;
  /** The decoration object of a toplevel (one at most). */
  decoration: Resource<"zxdg_toplevel_decoration_v1"> | null = null;
  /** Reactive popup positioner (xdg_positioner.set_reactive). */
  reactive = false;

  private readonly display: Display;
  private readonly context: ShellContext;
  private initialCommitDone = false;
  private configured = false;
  private sentSerials: number[] = [];
  /** A configure the Qubes side asked for before the initial commit: sent in answer to it. */
  private deferred: { size: Size; states: ToplevelStates; serial: number } | null = null;
  /** The serial a popup's configure() returned before the initial commit: its initial configure uses it. */
  private deferredPopupSerial: number | null = null;
  private lastStates: ToplevelStates = {};
  private lastSize: Size = { width: 0, height: 0 };
  private geometry: Rect | null = null;
  private pendingGeometry: Rect | null = null;
  private pendingMin: Size | null = null;
  private pendingMax: Size | null = null;
  private emittedSize: Size | null = null;
  private emittedOrigin: { x: number; y: number } | null = null;
  private dismissed = false;
  /** placeOnScreen was called (a popup then uses its own place rather than its parent's). */
  private placed = false;
  /** The newest serial dropped from sentSerials (null: none since the last ack covered them). */
  private forgottenSerial: number | null = null;
  /** Anything shows the window (setShown); frame callbacks of a mapped window wait while not. */
  private shown = true;
  /** The last signalled commit had listeners, and they have not called frameDone yet. */
  private awaitingFrameDone = false;
  /** A commit of the tree is being handled: its frame callbacks are scheduled, if at all, once it is. */
  private committing = false;
  /** The commit a consumer holds (its buffers stay with us), if any. */
  private held: HeldCommit | null = null;

  constructor(
    id: number,
    kind: "toplevel" | "popup",
    parent: ShellWindowImpl | null,
    surface: Surface,
    xdgSurface: Resource<"xdg_surface">,
    wmBase: Resource<"xdg_wm_base">,
    display: Display,
    context: ShellContext,
  ) {
    this.id = id;
    this.kind = kind;
    this.parent = parent;
    this.surface = surface;
    this.client = surface.client;
    this.pid = surface.client.credentials.pid;
    this.xdgSurface = xdgSurface;
    this.wmBase = wmBase;
    this.display = display;
    this.context = context;
  }

  /** Where the window's top-left is on the screen. */
  screenPosition(): { x: number; y: number } {
    if (this.kind === "popup" && this.parent !== null && !this.placed) {
      const origin = this.parent.screenPosition();
      return { x: origin.x + (this.popupRect?.x ?? 0), y: origin.y + (this.popupRect?.y ?? 0) };
    }
    return this.position;
  }

  /** Sets the window's position on the screen (the daemon's CONFIGURE x, y): its popups are kept on screen from there. */
  placeOnScreen(screenX: number, screenY: number): void {
    const x = clampCoordinate(Number.isFinite(screenX) ? Math.trunc(screenX) : 0);
    const y = clampCoordinate(Number.isFinite(screenY) ? Math.trunc(screenY) : 0);
    this.placed = true;
    if (this.position.x === x && this.position.y === y) return;
    this.position = { x, y };
    this.repositionReactivePopups();
  }

  configure(size: Size, states: ToplevelStates = {}): number {
    if (this.destroyed) return 0;
    const serial = this.display.nextSerial();
    if (this.kind === "toplevel") {
      // Now 0 ≤ width, height ≤ MAX_EDGE, integers (anything else asks for 0: the app decides).
      const clamped = { width: edge(size.width), height: edge(size.height) };
      if (!this.initialCommitDone) {
        this.deferred = { size: clamped, states, serial };
        return serial;
      }
      this.sendToplevelConfigure(clamped, states, serial);
    } else if (!this.initialCommitDone) {
      this.deferredPopupSerial = serial;
    } else {
      this.sendPopupConfigure(serial);
    }
    return serial;
  }

  close(): void {
    if (this.destroyed) return;
    if (this.toplevel !== null) this.toplevel.send("close");
    if (this.popup !== null) this.dismiss();
  }

  frameDone(): void {
    if (this.destroyed) return;
    this.awaitingFrameDone = false;
    this.context.framesReady(this);
  }

  setShown(shown: boolean): void {
    if (this.destroyed || this.shown === shown) return;
    this.shown = shown;
    if (shown) this.context.framesReady(this);
  }

  /** The window's frame callbacks may fire at the next refresh: the consumer is done, and it is shown or not mapped. */
  get framesMayFire(): boolean {
    return !this.committing && !this.awaitingFrameDone && (this.shown || !this.mapped);
  }

  /** True while a consumer holds the window's last commit: its buffers must not go back to the app. */
  get buffersHeld(): boolean {
    return this.held !== null;
  }

  /** @internal (HeldCommit) Whether `hold` is the live hold. */
  isHolding(hold: HeldCommit): boolean {
    return this.held === hold && !this.destroyed;
  }

  /** @internal (HeldCommit) Ends `hold` if it is the live one, handing the buffers of a one-surface window back. */
  endHold(hold: HeldCommit): void {
    if (this.held !== hold) return;
    this.held = null;
    if (this.destroyed) return;
    if (placedSurfaces(this.surface).length <= 1)
      for (const surface of treeSurfaces(this.surface)) surface.releaseBuffer();
  }

  /** Sends popup_done to a popup (and its child popups first), once; it stays until the app destroys it. */
  dismiss(): void {
    if (this.popup === null || this.dismissed) return;
    for (const child of this.popups) child.dismiss();
    this.dismissed = true;
    this.grabbed = false;
    this.popup.send("popup_done");
    this.context.windowStateChanged(this);
  }

  /** Sends xdg_toplevel.configure (with bounds and capabilities as the version allows) and xdg_surface.configure. */
  private sendToplevelConfigure(size: Size, states: ToplevelStates, serial: number): void {
    const toplevel = this.toplevel;
    if (toplevel === null) return;
    if (this.decoration !== null && !this.decoration.destroyed) this.decoration.send("configure", 2);
    if (toplevel.version >= 4) {
      const output = this.context.outputSize();
      toplevel.send("configure_bounds", output.width, output.height);
    }
    toplevel.send("configure", size.width, size.height, statesArray(states));
    this.lastStates = states;
    this.lastSize = size;
    this.sendSurfaceConfigure(serial);
  }

  /** Re-sends the last toplevel configure with a fresh serial (after a decoration mode request). */
  reconfigure(): void {
    if (this.kind === "toplevel" && this.initialCommitDone && !this.destroyed) {
      this.sendToplevelConfigure(this.lastSize, this.lastStates, this.display.nextSerial());
    }
  }

  private sendPopupConfigure(serial: number): void {
    const popup = this.popup;
    const rect = this.popupRect;
    if (popup === null || rect === null) return;
    popup.send("configure", rect.x, rect.y, rect.width, rect.height);
    this.sendSurfaceConfigure(serial);
  }

  private sendSurfaceConfigure(serial: number): void {
    this.sentSerials.push(serial);
    if (this.sentSerials.length > MAX_SENT_SERIALS) this.forgottenSerial = this.sentSerials.shift() ?? null;
    this.xdgSurface.send("configure", serial);
  }

  /** Places a popup from its positioner, inside the output as seen from the parent. */
  placePopup(): void {
    if (this.positioner === null || this.parent === null) return;
    const origin = this.parent.screenPosition();
    const output = this.context.outputSize();
    this.popupRect = positionPopup(this.positioner, {
      x: -origin.x,
      y: -origin.y,
      width: output.width,
      height: output.height,
    });
  }

  /** xdg_popup.reposition: a new positioner, a repositioned event with the token, then configure. */
  reposition(state: PositionerState, token: number, reactive: boolean): void {
    this.positioner = state;
    this.reactive = reactive;
    this.placePopup();
    this.popup?.send("repositioned", token);
    if (this.initialCommitDone) this.sendPopupConfigure(this.display.nextSerial());
    this.events.reposition.emit(this);
  }

  private repositionReactivePopups(): void {
    for (const child of this.popups) {
      if (child.reactive && child.positioner !== null) {
        const before = child.popupRect;
        child.placePopup();
        const after = child.popupRect;
        if (
          before !== null &&
          after !== null &&
          (before.x !== after.x ||
            before.y !== after.y ||
            before.width !== after.width ||
            before.height !== after.height)
        ) {
          if (child.initialCommitDone) child.sendPopupConfigure(this.display.nextSerial());
          child.events.reposition.emit(child);
        }
      }
      child.repositionReactivePopups();
    }
  }

  /**
   * xdg_surface.ack_configure: the serial must be one we sent and the app
   * did not ack yet. Past the last MAX_SENT_SERIALS configures, a serial
   * that may have been one of ours (not newer than the newest one
   * forgotten) is taken: an app is never ended for acking what we sent.
   */
  ackConfigure(serial: number): void {
    const at = this.sentSerials.indexOf(serial);
    const forgotten = this.forgottenSerial;
    if (at < 0 && (forgotten === null || serialBefore(forgotten, serial))) {
      this.xdgSurface.postError(xdg_surface.enums.error.invalid_serial, `ack_configure with unknown serial ${serial}`);
      return;
    }
    // This ack covers every earlier configure.
    this.sentSerials = this.sentSerials.filter((sent) => serialBefore(serial, sent));
    if (forgotten !== null && !serialBefore(serial, forgotten)) this.forgottenSerial = null;
    this.configured = true;
    this.events.ackConfigure.emit(serial);
  }

  setPendingGeometry(rect: Rect): void {
    this.pendingGeometry = rect;
  }

  setPendingMinSize(size: Size): void {
    this.pendingMin = size;
  }

  setPendingMaxSize(size: Size): void {
    this.pendingMax = size;
  }

  /** @see SurfaceRoleHandler */
  treeCommitted(from: Surface): void {
    if (this.destroyed) return;
    // The map signal (the consumer shows the window) comes before the commit signal: callbacks of
    // this commit must not be put on the clock before the consumer had its say about them.
    this.committing = true;
    try {
      this.handleTreeCommit(from);
    } finally {
      this.committing = false;
    }
  }

  private handleTreeCommit(from: Surface): void {
    if (from === this.surface && !this.applyOwnCommit()) {
      this.clearDamage();
      return;
    }
    if (!this.mapped) {
      this.clearDamage();
      return;
    }
    this.emitCommit();
  }

  /** The xdg part of the main surface's commit; false when nothing is to be shown (or after an error). */
  private applyOwnCommit(): boolean {
    const surface = this.surface;
    if (this.pendingGeometry !== null) {
      this.geometry = this.pendingGeometry;
      this.pendingGeometry = null;
    }
    if (this.pendingMin !== null || this.pendingMax !== null) {
      const min = this.pendingMin ?? this.minSize;
      const max = this.pendingMax ?? this.maxSize;
      this.pendingMin = null;
      this.pendingMax = null;
      if ((max.width > 0 && min.width > max.width) || (max.height > 0 && min.height > max.height)) {
        this.toplevel?.postError(
          xdg_toplevel.enums.error.invalid_size,
          `min size ${min.width}x${min.height} exceeds max size ${max.width}x${max.height}`,
        );
        return false;
      }
      const changed =
        min.width !== this.minSize.width ||
        min.height !== this.minSize.height ||
        max.width !== this.maxSize.width ||
        max.height !== this.maxSize.height;
      this.minSize = min;
      this.maxSize = max;
      if (changed) this.events.sizeHints.emit(this);
    }
    if (!this.initialCommitDone) {
      if (surface.hasContent) {
        this.xdgSurface.postError(
          xdg_surface.enums.error.unconfigured_buffer,
          "a buffer was attached before the initial configure",
        );
        return false;
      }
      this.initialCommitDone = true;
      this.sendInitialConfigure();
      return false;
    }
    if (surface.hasContent && !this.configured) {
      this.xdgSurface.postError(
        xdg_surface.enums.error.unconfigured_buffer,
        "a buffer was attached before the first ack_configure",
      );
      return false;
    }
    if (!surface.hasContent) {
      if (this.mapped) this.unmap();
      return false;
    }
    if (!this.mapped) {
      this.mapped = true;
      this.emittedSize = null;
      this.emittedOrigin = null;
      const geometry = this.windowGeometry();
      this.size = { width: geometry.width, height: geometry.height };
      this.events.map.emit(this);
      this.context.windowStateChanged(this);
      this.context.surfaceShown(surface);
    }
    return true;
  }

  private sendInitialConfigure(): void {
    if (this.kind === "toplevel") {
      const toplevel = this.toplevel;
      if (toplevel !== null && toplevel.version >= 5) {
        const caps = new Uint8Array(CAPABILITIES.length * 4);
        const view = new DataView(caps.buffer);
        CAPABILITIES.forEach((value, i) => view.setUint32(i * 4, value, true));
        toplevel.send("wm_capabilities", caps);
      }
      const deferred = this.deferred;
      this.deferred = null;
      if (deferred !== null) this.sendToplevelConfigure(deferred.size, deferred.states, deferred.serial);
      else this.sendToplevelConfigure({ width: 0, height: 0 }, {}, this.display.nextSerial());
    } else {
      this.placePopup();
      this.sendPopupConfigure(this.deferredPopupSerial ?? this.display.nextSerial());
      this.deferredPopupSerial = null;
    }
  }

  /** The app committed a null buffer: hidden (its popups dismissed), and back to the state before the initial commit. */
  private unmap(): void {
    for (const child of this.popups) child.dismiss();
    this.mapped = false;
    this.initialCommitDone = false;
    this.configured = false;
    this.sentSerials = [];
    this.forgottenSerial = null;
    this.held = null;
    this.awaitingFrameDone = false;
    this.size = { width: 0, height: 0 };
    this.events.unmap.emit(this);
    this.context.windowStateChanged(this);
  }

  private clearDamage(): void {
    for (const surface of treeSurfaces(this.surface)) surface.damage = [];
  }

  /** The window's geometry in main-surface coordinates: the set geometry within the surfaces' bounds, else the bounds. */
  windowGeometry(): Rect {
    let bounds: Rect | null = null;
    for (const placed of placedSurfaces(this.surface)) {
      const rect = { x: placed.x, y: placed.y, width: placed.surface.width, height: placed.surface.height };
      bounds = bounds === null ? rect : union(bounds, rect);
    }
    bounds ??= { x: 0, y: 0, width: 0, height: 0 };
    if (this.geometry === null) return bounds;
    const clipped = intersect(this.geometry, bounds);
    return isEmpty(clipped) ? this.geometry : clipped;
  }

  /** @internal (HeldCommit) The window's layers with the geometry's origin at `origin` (main-surface coordinates). */
  layersAt(origin: { x: number; y: number }): WindowLayer[] {
    const layers: WindowLayer[] = [];
    for (const placed of placedSurfaces(this.surface)) {
      const pixels = placed.surface.pixels();
      if (pixels !== null) layers.push({ pixels, x: placed.x - origin.x, y: placed.y - origin.y });
    }
    return layers;
  }

  /**
   * Builds the window's layers and damage and emits commit (also with no
   * damage while a consumer holds the previous commit, whose buffers may
   * have just gone back to the app). Frame callbacks then wait for
   * frameDone when anyone listened.
   */
  private emitCommit(): void {
    const geometry = this.windowGeometry();
    const size = { width: geometry.width, height: geometry.height };
    const resized =
      this.emittedSize === null || this.emittedSize.width !== size.width || this.emittedSize.height !== size.height;
    // The geometry moved within the surfaces: every pixel of the window may have changed.
    const moved =
      this.emittedOrigin !== null && (this.emittedOrigin.x !== geometry.x || this.emittedOrigin.y !== geometry.y);
    const origin = { x: geometry.x, y: geometry.y };
    this.emittedOrigin = origin;
    const windowRect: Rect = { x: 0, y: 0, width: size.width, height: size.height };
    const damage: Rect[] = [];
    if (!resized && !moved) {
      for (const placed of placedSurfaces(this.surface)) {
        const x = placed.x - geometry.x;
        const y = placed.y - geometry.y;
        for (const rect of placed.surface.damage) {
          const moved = intersect({ x: rect.x + x, y: rect.y + y, width: rect.width, height: rect.height }, windowRect);
          if (!isEmpty(moved)) damage.push(moved);
        }
      }
    }
    this.clearDamage();
    this.size = size;
    // A new commit ends the hold on the previous one.
    const wasHeld = this.held !== null;
    this.held = null;
    if (resized || moved) {
      if (!isEmpty(windowRect)) damage.push(windowRect);
    } else if (damage.length === 0 && !wasHeld) {
      return;
    }
    this.emittedSize = size;
    const layers = this.layersAt(origin);
    const listening = this.events.commit.size > 0;
    let signalling = true;
    const commit: WindowCommit = {
      layers,
      damage,
      size,
      resized,
      hold: () => {
        if (!signalling) throw new Error("WindowCommit.hold() is for the commit signal's listeners, during the signal");
        const hold = new HeldCommit(this, origin, layers);
        this.held = hold;
        return hold;
      },
    };
    // Before the signal: a listener done at once calls frameDone during it.
    this.awaitingFrameDone = listening;
    try {
      this.events.commit.emit(commit);
    } finally {
      signalling = false;
    }
  }

  /** The window is gone: children popups are dismissed, signals fire once. */
  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    this.held = null;
    for (const child of this.popups) child.dismiss();
    this.parent?.popups.delete(this);
    if (this.surface.roleHandler === this) this.surface.roleHandler = null;
    this.mapped = false;
    this.context.windowDestroyed(this);
    this.events.destroy.emit(this);
  }
}

/** Creates xdg_wm_base (version 5) and zxdg_decoration_manager_v1 on `display`. */
export function createShellGlobals(display: Display, context: ShellContext): void {
  let nextId = 1;

  display.createGlobal("xdg_wm_base", 5, (wmBase) => {
    const surfaces = new Set<Resource<"xdg_surface">>();
    const wmErrors = xdg_wm_base.enums.error;
    wmBase.implement({
      destroy() {
        if (surfaces.size > 0) wmBase.postError(wmErrors.defunct_surfaces, "xdg_wm_base destroyed before its surfaces");
      },
      pong() {},
      create_positioner(resource) {
        implementPositioner(resource);
      },
      get_xdg_surface(resource, surfaceResource) {
        const surface = surfaceOf(surfaceResource);
        if (surface.role !== null && surface.role !== "xdg_toplevel" && surface.role !== "xdg_popup") {
          wmBase.postError(wmErrors.role, `wl_surface@${surfaceResource.id} already has the role ${surface.role}`);
          return;
        }
        if (surface.roleHandler !== null || surface.hasContent) {
          wmBase.postError(
            wmErrors.invalid_surface_state,
            `wl_surface@${surfaceResource.id} already has an xdg_surface or a buffer`,
          );
          return;
        }
        surfaces.add(resource);
        resource.events.destroy.add(() => surfaces.delete(resource));
        implementXdgSurface(resource, surface, wmBase);
      },
    });
  });

  function implementPositioner(resource: Resource<"xdg_positioner">): void {
    const state = defaultPositioner();
    const flags = { size: false, anchorRect: false, reactive: false };
    resource.data = { state, flags };
    const invalid = xdg_positioner.enums.error.invalid_input;
    resource.implement({
      destroy() {},
      set_size(width, height) {
        if (width <= 0 || height <= 0 || width > MAX_EDGE || height > MAX_EDGE) {
          resource.postError(invalid, `invalid size ${width}x${height}`);
          return;
        }
        state.width = width;
        state.height = height;
        flags.size = true;
      },
      set_anchor_rect(x, y, width, height) {
        if (width < 0 || height < 0 || width > MAX_EDGE || height > MAX_EDGE) {
          resource.postError(invalid, `invalid anchor rect ${width}x${height}`);
          return;
        }
        state.anchorRect = { x: clampCoordinate(x), y: clampCoordinate(y), width, height };
        flags.anchorRect = true;
      },
      set_anchor(anchor) {
        if (anchor > 8) {
          resource.postError(invalid, `invalid anchor ${anchor}`);
          return;
        }
        state.anchor = anchor;
      },
      set_gravity(gravity) {
        if (gravity > 8) {
          resource.postError(invalid, `invalid gravity ${gravity}`);
          return;
        }
        state.gravity = gravity;
      },
      set_constraint_adjustment(adjustment) {
        state.constraintAdjustment = adjustment & 0x3f;
      },
      set_offset(x, y) {
        state.offsetX = clampCoordinate(x);
        state.offsetY = clampCoordinate(y);
      },
      set_reactive() {
        flags.reactive = true;
      },
      set_parent_size() {},
      set_parent_configure() {},
    });
  }

  /** The positioner's state, or null (after an invalid_positioner error) when it is incomplete. */
  function completePositioner(
    wmBase: Resource<"xdg_wm_base">,
    positioner: Resource<"xdg_positioner">,
  ): { state: PositionerState; reactive: boolean } | null {
    const data = positioner.data as {
      state: PositionerState;
      flags: { size: boolean; anchorRect: boolean; reactive: boolean };
    };
    if (!data.flags.size || !data.flags.anchorRect) {
      wmBase.postError(xdg_wm_base.enums.error.invalid_positioner, "the positioner has no size or no anchor rectangle");
      return null;
    }
    return { state: { ...data.state, anchorRect: { ...data.state.anchorRect } }, reactive: data.flags.reactive };
  }

  function implementXdgSurface(
    resource: Resource<"xdg_surface">,
    surface: Surface,
    wmBase: Resource<"xdg_wm_base">,
  ): void {
    const errors = xdg_surface.enums.error;
    let window: ShellWindowImpl | null = null;
    // Until a role object exists, the surface's commits come here: committing without a role is an error.
    const unconstructed: SurfaceRoleHandler = {
      treeCommitted(from) {
        if (from === surface) resource.postError(errors.not_constructed, "commit before get_toplevel or get_popup");
      },
      framesMayFire: true,
      buffersHeld: false,
    };
    surface.roleHandler = unconstructed;
    const create = (kind: "toplevel" | "popup", parent: ShellWindowImpl | null): ShellWindowImpl | null => {
      if (window !== null) {
        resource.postError(errors.already_constructed, "the xdg_surface already has a role object");
        return null;
      }
      const role = kind === "toplevel" ? "xdg_toplevel" : "xdg_popup";
      if (surface.role !== null && surface.role !== role) {
        wmBase.postError(xdg_wm_base.enums.error.role, `the surface has the role ${surface.role}`);
        return null;
      }
      surface.role = role;
      window = new ShellWindowImpl(nextId++, kind, parent, surface, resource, wmBase, display, context);
      surface.roleHandler = window;
      return window;
    };
    let pendingGeometry: Rect | null = null;
    const adoptGeometry = (created: ShellWindowImpl): void => {
      if (pendingGeometry !== null) created.setPendingGeometry(pendingGeometry);
      pendingGeometry = null;
    };
    resource.data = { window: (): ShellWindowImpl | null => window };
    resource.implement({
      destroy() {
        if (window !== null && !window.destroyed) {
          resource.postError(errors.defunct_role_object, "xdg_surface destroyed before its role object");
        }
      },
      get_toplevel(toplevel) {
        const created = create("toplevel", null);
        if (created === null) return;
        created.toplevel = toplevel;
        adoptGeometry(created);
        implementToplevel(toplevel, created);
        context.windowCreated(created);
      },
      get_popup(popup, parentResource, positioner) {
        if (parentResource === null) {
          wmBase.postError(
            xdg_wm_base.enums.error.invalid_popup_parent,
            "a popup needs a parent xdg_surface here (no other shell protocol is offered)",
          );
          return;
        }
        const parentWindow = (parentResource.data as { window: () => ShellWindowImpl | null }).window();
        if (parentWindow === null || parentWindow.destroyed) {
          wmBase.postError(xdg_wm_base.enums.error.invalid_popup_parent, "the parent xdg_surface has no role object");
          return;
        }
        const placed = completePositioner(wmBase, positioner);
        if (placed === null) return;
        const created = create("popup", parentWindow);
        if (created === null) return;
        created.popup = popup;
        created.positioner = placed.state;
        created.reactive = placed.reactive;
        created.placePopup();
        adoptGeometry(created);
        parentWindow.popups.add(created);
        implementPopup(popup, created, wmBase);
        context.windowCreated(created);
      },
      set_window_geometry(x, y, width, height) {
        if (width <= 0 || height <= 0 || width > MAX_EDGE || height > MAX_EDGE) {
          resource.postError(errors.invalid_size, `invalid window geometry ${width}x${height}`);
          return;
        }
        const rect = { x: clampCoordinate(x), y: clampCoordinate(y), width, height };
        if (window !== null) window.setPendingGeometry(rect);
        else pendingGeometry = rect;
      },
      ack_configure(serial) {
        if (window === null) {
          resource.postError(errors.not_constructed, "ack_configure before get_toplevel or get_popup");
          return;
        }
        window.ackConfigure(serial);
      },
    });
    resource.events.destroy.add(() => {
      if (surface.roleHandler === unconstructed) surface.roleHandler = null;
      window?.destroy();
    });
    surface.resource.events.destroy.add(() => window?.destroy());
  }

  function implementToplevel(resource: Resource<"xdg_toplevel">, window: ShellWindowImpl): void {
    const errors = xdg_toplevel.enums.error;
    const checkSize = (width: number, height: number): Size | null => {
      if (width < 0 || height < 0) {
        resource.postError(errors.invalid_size, `negative size ${width}x${height}`);
        return null;
      }
      return { width: Math.min(width, MAX_EDGE), height: Math.min(height, MAX_EDGE) };
    };
    resource.implement({
      destroy() {},
      set_parent(parent) {
        if (parent === null) {
          window.parent = null;
          return;
        }
        const parentWindow = (parent.data as ShellWindowImpl | undefined) ?? null;
        if (parentWindow === null || parentWindow.destroyed) {
          window.parent = null;
          return;
        }
        for (let p: ShellWindowImpl | null = parentWindow; p !== null; p = p.parent) {
          if (p === window) {
            resource.postError(errors.invalid_parent, "the parent would be a descendant of the window");
            return;
          }
        }
        window.parent = parentWindow;
      },
      set_title(title) {
        if (title === window.title) return;
        window.title = title;
        window.events.title.emit(window);
      },
      set_app_id(appId) {
        if (appId === window.appId) return;
        window.appId = appId;
        window.events.appId.emit(window);
      },
      show_window_menu(_seat, _serial, x, y) {
        window.events.request.emit({ kind: "windowMenu", x, y });
      },
      move() {
        window.events.request.emit({ kind: "move" });
      },
      resize(_seat, _serial, edges) {
        if (![0, 1, 2, 4, 5, 6, 8, 9, 10].includes(edges)) {
          resource.postError(errors.invalid_resize_edge, `invalid resize edges ${edges}`);
          return;
        }
        window.events.request.emit({ kind: "resize", edges });
      },
      set_max_size(width, height) {
        const size = checkSize(width, height);
        if (size !== null) window.setPendingMaxSize(size);
      },
      set_min_size(width, height) {
        const size = checkSize(width, height);
        if (size !== null) window.setPendingMinSize(size);
      },
      set_maximized() {
        window.events.request.emit({ kind: "maximize", on: true });
      },
      unset_maximized() {
        window.events.request.emit({ kind: "maximize", on: false });
      },
      set_fullscreen() {
        window.events.request.emit({ kind: "fullscreen", on: true });
      },
      unset_fullscreen() {
        window.events.request.emit({ kind: "fullscreen", on: false });
      },
      set_minimized() {
        window.events.request.emit({ kind: "minimize" });
      },
    });
    resource.data = window;
    resource.events.destroy.add(() => window.destroy());
  }

  function implementPopup(
    resource: Resource<"xdg_popup">,
    window: ShellWindowImpl,
    wmBase: Resource<"xdg_wm_base">,
  ): void {
    resource.data = window;
    resource.implement({
      destroy() {
        for (const child of window.popups) {
          if (!child.destroyed) {
            wmBase.postError(
              xdg_wm_base.enums.error.not_the_topmost_popup,
              "a popup was destroyed before its child popups",
            );
            return;
          }
        }
      },
      grab() {
        if (window.mapped) {
          resource.postError(xdg_popup.enums.error.invalid_grab, "grab after the popup was mapped");
          return;
        }
        window.grabbed = true;
      },
      reposition(positioner, token) {
        const placed = completePositioner(wmBase, positioner);
        if (placed === null) return;
        window.reposition(placed.state, token, placed.reactive);
      },
    });
    resource.events.destroy.add(() => window.destroy());
  }

  display.createGlobal("zxdg_decoration_manager_v1", 1, (manager) => {
    manager.implement({
      destroy() {},
      get_toplevel_decoration(resource, toplevel) {
        const window = toplevel.data as ShellWindowImpl;
        const errors = zxdg_toplevel_decoration_v1.enums.error;
        if (window.decoration !== null && !window.decoration.destroyed) {
          resource.postError(errors.already_constructed, "the toplevel already has a decoration object");
          return;
        }
        if (window.surface.hasContent) {
          resource.postError(errors.unconfigured_buffer, "the toplevel already has a buffer");
          return;
        }
        window.decoration = resource;
        // Always server-side; a mode request is answered with a new configure sequence once the handshake began.
        resource.implement({
          destroy() {},
          set_mode() {
            window.reconfigure();
          },
          unset_mode() {
            window.reconfigure();
          },
        });
        window.reconfigure();
      },
    });
  });
}

function edge(value: number): number {
  return Number.isFinite(value) ? Math.max(0, Math.min(MAX_EDGE, Math.trunc(value))) : 0;
}

function clampCoordinate(value: number): number {
  return Math.max(-(1 << 30), Math.min(1 << 30, value));
}
