/**
 * xdg_toplevel and zxdg_decoration_manager_v1: the toplevel's own state
 * (title, app id, min/max size, parent, the last configured size and
 * states), its configures (deferred until the initial commit, with bounds
 * and capabilities as the version allows), the requests that become
 * {@link WindowRequest}s (move, resize, maximize, fullscreen, minimize,
 * window menu), close, and server-side decoration.
 */
import { xdg_toplevel, zxdg_toplevel_decoration_v1, type Display, type Resource } from "../wayland/index.ts";
import type { Size, ToplevelStates, WindowRequest } from "./api.ts";
import type { Rect } from "./geometry.ts";
import type { PositionerState } from "./positioner.ts";
import { ShellWindowImpl, type ShellContext } from "./shell-window.ts";
import type { Surface } from "./surface.ts";
import { MAX_EDGE, type XdgSurfaceState } from "./xdg-surface.ts";

/** xdg_toplevel.state values. */
const STATE_MAXIMIZED = 1;
const STATE_FULLSCREEN = 2;
const STATE_ACTIVATED = 4;

/** xdg_toplevel.wm_capabilities values: what the daemon's frame offers. */
const CAPABILITIES = [2, 3, 4];

/** xdg_toplevel.resize_edge values. */
const RESIZE_EDGES = [0, 1, 2, 4, 5, 6, 8, 9, 10];

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

/** A toplevel window: {@link ShellWindowImpl} with the xdg_toplevel's state. */
export class ToplevelWindow extends ShellWindowImpl {
  readonly kind = "toplevel";
  /** xdg_toplevel.set_parent (null when none, or when the parent is gone). */
  parent: ToplevelWindow | null = null;
  title = "";
  appId = "";
  minSize: Size = { width: 0, height: 0 };
  maxSize: Size = { width: 0, height: 0 };
  readonly xdgToplevel: Resource<"xdg_toplevel">;
  /** The decoration object (one at most). */
  decoration: Resource<"zxdg_toplevel_decoration_v1"> | null = null;

  /** A configure the Qubes side asked for before the initial commit: sent in answer to it. */
  private deferred: { size: Size; states: ToplevelStates; serial: number } | null = null;
  private lastStates: ToplevelStates = {};
  private lastSize: Size = { width: 0, height: 0 };
  private pendingMin: Size | null = null;
  private pendingMax: Size | null = null;

  constructor(
    id: number,
    surface: Surface,
    xdg: XdgSurfaceState,
    xdgToplevel: Resource<"xdg_toplevel">,
    display: Display,
    context: ShellContext,
  ) {
    super(id, surface, xdg, display, context);
    this.xdgToplevel = xdgToplevel;
  }

  /** A toplevel has no popup rectangle. */
  get popupRect(): Rect | null {
    return null;
  }

  /** A toplevel has no positioner. */
  get positioner(): PositionerState | null {
    return null;
  }

  configure(size: Size, states: ToplevelStates = {}): number {
    if (this.destroyed) return 0;
    const serial = this.display.nextSerial();
    // Now 0 ≤ width, height ≤ MAX_EDGE, integers (anything else asks for 0: the app decides).
    const clamped = { width: edge(size.width), height: edge(size.height) };
    if (!this.xdg.initialCommitDone) {
      this.deferred = { size: clamped, states, serial };
      return serial;
    }
    this.sendConfigure(clamped, states, serial);
    return serial;
  }

  close(): void {
    if (this.destroyed) return;
    this.xdgToplevel.send("close");
  }

  /** Re-sends the last toplevel configure with a fresh serial (after a decoration mode request). */
  reconfigure(): void {
    if (this.xdg.initialCommitDone && !this.destroyed) {
      this.sendConfigure(this.lastSize, this.lastStates, this.display.nextSerial());
    }
  }

  setPendingMinSize(size: Size): void {
    this.pendingMin = size;
  }

  setPendingMaxSize(size: Size): void {
    this.pendingMax = size;
  }

  /** Sends xdg_toplevel.configure (with bounds and capabilities as the version allows) and xdg_surface.configure. */
  private sendConfigure(size: Size, states: ToplevelStates, serial: number): void {
    const toplevel = this.xdgToplevel;
    if (this.decoration !== null && !this.decoration.destroyed) this.decoration.send("configure", 2);
    if (toplevel.version >= 4) {
      const output = this.context.outputSize();
      toplevel.send("configure_bounds", output.width, output.height);
    }
    toplevel.send("configure", size.width, size.height, statesArray(states));
    this.lastStates = states;
    this.lastSize = size;
    this.xdg.sendConfigure(serial);
  }

  protected override sendInitialConfigure(): void {
    const toplevel = this.xdgToplevel;
    if (toplevel.version >= 5) {
      const caps = new Uint8Array(CAPABILITIES.length * 4);
      const view = new DataView(caps.buffer);
      CAPABILITIES.forEach((value, i) => view.setUint32(i * 4, value, true));
      toplevel.send("wm_capabilities", caps);
    }
    const deferred = this.deferred;
    this.deferred = null;
    if (deferred !== null) this.sendConfigure(deferred.size, deferred.states, deferred.serial);
    else this.sendConfigure({ width: 0, height: 0 }, {}, this.display.nextSerial());
  }

  /** Min and max size become current together; invalid_size when min exceeds max. */
  protected override applyRoleCommit(): boolean {
    if (this.pendingMin === null && this.pendingMax === null) return true;
    const min = this.pendingMin ?? this.minSize;
    const max = this.pendingMax ?? this.maxSize;
    this.pendingMin = null;
    this.pendingMax = null;
    if ((max.width > 0 && min.width > max.width) || (max.height > 0 && min.height > max.height)) {
      this.xdgToplevel.postError(
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
    return true;
  }
}

/** Implements the xdg_toplevel requests of `window` on `resource`. */
export function implementToplevel(resource: Resource<"xdg_toplevel">, window: ToplevelWindow): void {
  const errors = xdg_toplevel.enums.error;
  const checkSize = (width: number, height: number): Size | null => {
    if (width < 0 || height < 0) {
      resource.postError(errors.invalid_size, `negative size ${width}x${height}`);
      return null;
    }
    return { width: Math.min(width, MAX_EDGE), height: Math.min(height, MAX_EDGE) };
  };
  const request = (what: WindowRequest): void => window.events.request.emit(what);
  resource.implement({
    destroy() {},
    set_parent(parent) {
      if (parent === null) {
        window.parent = null;
        return;
      }
      const parentWindow = (parent.data as ToplevelWindow | undefined) ?? null;
      if (parentWindow === null || parentWindow.destroyed) {
        window.parent = null;
        return;
      }
      for (let p: ToplevelWindow | null = parentWindow; p !== null; p = p.parent) {
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
      request({ kind: "windowMenu", x, y });
    },
    move() {
      request({ kind: "move" });
    },
    resize(_seat, _serial, edges) {
      if (!RESIZE_EDGES.includes(edges)) {
        resource.postError(errors.invalid_resize_edge, `invalid resize edges ${edges}`);
        return;
      }
      request({ kind: "resize", edges });
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
      request({ kind: "maximize", on: true });
    },
    unset_maximized() {
      request({ kind: "maximize", on: false });
    },
    set_fullscreen() {
      request({ kind: "fullscreen", on: true });
    },
    unset_fullscreen() {
      request({ kind: "fullscreen", on: false });
    },
    set_minimized() {
      request({ kind: "minimize" });
    },
  });
  resource.data = window;
  resource.events.destroy.add(() => window.destroy());
}

/** Creates zxdg_decoration_manager_v1 (version 1) on `display`: decorations are always server-side. */
export function createDecorationGlobal(display: Display): void {
  display.createGlobal("zxdg_decoration_manager_v1", 1, (manager) => {
    manager.implement({
      destroy() {},
      get_toplevel_decoration(resource, toplevel) {
        const window = toplevel.data as ToplevelWindow;
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

/** A configure size from the Qubes side as an edge the protocol allows: 0 ≤ value ≤ MAX_EDGE, an integer. */
function edge(value: number): number {
  return Number.isFinite(value) ? Math.max(0, Math.min(MAX_EDGE, Math.trunc(value))) : 0;
}
