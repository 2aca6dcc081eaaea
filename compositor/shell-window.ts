/**
 * What a {@link ShellWindow} of either role has: its id, main surface,
 * xdg_surface state and signals, the commit path (map, unmap, the xdg part
 * of the main surface's commit, one {@link WindowCommit} per change of the
 * window's image, holds on commits), frame pacing, its place on the screen
 * and its child popups. The roles add theirs in toplevel.ts and popup.ts.
 */
import { Signal, xdg_surface, type Client, type Display } from "../wayland/index.ts";
import type { CommitHold, ShellWindow, Size, ToplevelStates, WindowCommit, WindowLayer, WindowRequest } from "./api.ts";
import type { Rect } from "./geometry.ts";
import { intersect, isEmpty, union } from "./geometry.ts";
import type { PopupWindow } from "./popup.ts";
import type { PositionerState } from "./positioner.ts";
import { placedSurfaces, treeSurfaces, type Surface, type SurfaceRoleHandler } from "./surface.ts";
import { clampCoordinate, type XdgSurfaceState } from "./xdg-surface.ts";

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

/**
 * The part of a toplevel or popup (see {@link ShellWindow}) that both roles
 * share; the compositor's own fields (surface, xdg_surface state, popups)
 * are public for the seat and the compositor, not for the Qubes side.
 */
export abstract class ShellWindowImpl implements ShellWindow, SurfaceRoleHandler {
  readonly id: number;
  abstract readonly kind: "toplevel" | "popup";
  /** A popup's parent, or a toplevel's xdg_toplevel.set_parent (see the roles). */
  abstract readonly parent: ShellWindowImpl | null;
  /** Toplevel state of the contract; a popup reports "" and 0×0 (see popup.ts). */
  abstract readonly title: string;
  abstract readonly appId: string;
  abstract readonly minSize: Size;
  abstract readonly maxSize: Size;
  /** Popup state of the contract; a toplevel reports null (see toplevel.ts). */
  abstract readonly popupRect: Rect | null;
  abstract readonly positioner: PositionerState | null;
  readonly pid: number;
  /** The committed geometry's size; 0×0 before the first buffer and after an unmap. */
  size: Size = { width: 0, height: 0 };
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

  /** The main surface and its client. */
  readonly surface: Surface;
  readonly client: Client;
  /** The xdg_surface's configure handshake and window geometry. */
  readonly xdg: XdgSurfaceState;
  /** Child popups that are alive. */
  readonly popups = new Set<PopupWindow>();
  destroyed = false;

  protected readonly display: Display;
  protected readonly context: ShellContext;
  private emittedSize: Size | null = null;
  private emittedOrigin: { x: number; y: number } | null = null;
  /** Anything shows the window (setShown); frame callbacks of a mapped window wait while not. */
  private shown = true;
  /** The last signalled commit had listeners, and they have not called frameDone yet. */
  private awaitingFrameDone = false;
  /** A commit of the tree is being handled: its frame callbacks are scheduled, if at all, once it is. */
  private committing = false;
  /** The commit a consumer holds (its buffers stay with us), if any. */
  private held: HeldCommit | null = null;

  constructor(id: number, surface: Surface, xdg: XdgSurfaceState, display: Display, context: ShellContext) {
    this.id = id;
    this.surface = surface;
    this.client = surface.client;
    this.pid = surface.client.credentials.pid;
    this.xdg = xdg;
    this.display = display;
    this.context = context;
  }

  abstract configure(size: Size, states?: ToplevelStates): number;
  abstract close(): void;
  /** Sends the role's configure and xdg_surface.configure in answer to the initial commit. */
  protected abstract sendInitialConfigure(): void;
  /** Applies the role's double-buffered state at a commit of the main surface; false after a protocol error. */
  protected abstract applyRoleCommit(): boolean;

  /** Where the window's top-left is on the screen. */
  screenPosition(): { x: number; y: number } {
    return this.position;
  }

  /** Sets the window's position on the screen (the daemon's CONFIGURE x, y): its popups are kept on screen from there. */
  placeOnScreen(screenX: number, screenY: number): void {
    const x = clampCoordinate(Number.isFinite(screenX) ? Math.trunc(screenX) : 0);
    const y = clampCoordinate(Number.isFinite(screenY) ? Math.trunc(screenY) : 0);
    if (this.position.x === x && this.position.y === y) return;
    this.position = { x, y };
    for (const child of this.popups) child.parentMoved();
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

  /** xdg_surface.ack_configure (the serial checked by the xdg_surface state), announced to the Qubes side. */
  ackConfigure(serial: number): void {
    if (this.xdg.ackConfigure(serial)) this.events.ackConfigure.emit(serial);
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
    const xdg = this.xdg;
    xdg.applyGeometry();
    if (!this.applyRoleCommit()) return false;
    if (!xdg.initialCommitDone) {
      if (surface.hasContent) {
        xdg.resource.postError(
          xdg_surface.enums.error.unconfigured_buffer,
          "a buffer was attached before the initial configure",
        );
        return false;
      }
      xdg.initialCommitDone = true;
      this.sendInitialConfigure();
      return false;
    }
    if (surface.hasContent && !xdg.configured) {
      xdg.resource.postError(
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

  /** The app committed a null buffer: hidden (its popups dismissed), and back to the state before the initial commit. */
  private unmap(): void {
    for (const child of this.popups) child.dismiss();
    this.mapped = false;
    this.xdg.resetHandshake();
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
    const geometry = this.xdg.geometry;
    if (geometry === null) return bounds;
    const clipped = intersect(geometry, bounds);
    return isEmpty(clipped) ? geometry : clipped;
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
    this.leaveParent();
    if (this.surface.roleHandler === this) this.surface.roleHandler = null;
    this.mapped = false;
    this.context.windowDestroyed(this);
    this.events.destroy.emit(this);
  }

  /** At destroy: the window stops being one of its parent's popups (a popup's; a toplevel is none). */
  protected leaveParent(): void {}
}
