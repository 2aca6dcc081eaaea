/**
 * One domain window on the host compositor: an xdg_toplevel or xdg_popup
 * whose surfaces the daemon owns and the domain cannot reach.
 *
 * Three surfaces, no per-frame pixel work for the frame:
 * - the root (the xdg surface): a solid buffer of the label colour scaled by
 *   a viewport to the outer size, content + 2 × border: the frame;
 * - a background subsurface at (border, border), the window's size, in the
 *   background colour: what shows where the domain has no pixels yet;
 * - the content subsurface at (border, border), desynchronised so that its
 *   commits apply at once: the domain's framebuffer, cropped by a viewport
 *   to the window's size so that it can never cover the frame.
 *
 * Damage is coalesced between frame callbacks and never lost: a commit goes
 * out at once when no frame is pending, else at the next frame callback
 * with everything that accumulated. Resizes likewise, on the root's frame
 * callbacks: a storm of CONFIGUREs reaches the host once a frame, at the
 * last size asked for.
 */
import {
  MAX_WINDOW_HEIGHT,
  MAX_WINDOW_WIDTH,
  windowPoint,
  windowRect,
  type Size,
  type TrustedCursorShape,
  type WindowPoint,
  type WindowRect,
} from "../../protocol/index.ts";
import { frameLayout } from "../../decorator/index.ts";
import { xdg_positioner, xdg_toplevel, type Proxy } from "../../wayland/index.ts";
import { HostDisplay, type SurfaceInput } from "./display.ts";

/** Pixels the daemon shows as a window's content: a host buffer, updated before each commit when it is a copy. */
export interface ContentSource {
  readonly buffer: Proxy<"wl_buffer">;
  readonly width: number;
  readonly height: number;
  /** Brings the buffer up to date for `damage` before it is committed (a copy); nothing for zero copy. */
  update(damage: readonly WindowRect[]): void;
}

/** xdg_toplevel states the daemon cares about. */
export interface HostWindowStates {
  maximized: boolean;
  fullscreen: boolean;
  activated: boolean;
}

/** What the daemon's side of a window hears from the host. */
export interface HostWindowListener {
  /** The host wants the content to be `size` (frame excluded), or leaves it to the window (null). */
  configure(size: Size | null, states: HostWindowStates): void;
  /** The user closed the window. */
  close(): void;
  /** The host dismissed a popup. */
  dismissed(): void;
  /** A commit of content reached the host compositor (for counters and latency figures). */
  committed(damage: readonly WindowRect[]): void;
  pointerEnter(at: WindowPoint, state: number): void;
  pointerMotion(at: WindowPoint, state: number): void;
  pointerLeave(state: number): void;
  pointerButton(at: WindowPoint, xButton: number, pressed: boolean, state: number): void;
  pointerWheel(at: WindowPoint, xButton: number, clicks: number, state: number): void;
  focusIn(keys: readonly number[], state: number): void;
  focusOut(state: number): void;
  key(time: number, code: number, pressed: boolean, at: WindowPoint, state: number): void;
}

/** How a window is shown: a toplevel (maybe a dialog of another), or a popup placed relative to its parent. */
export type HostWindowRole =
  | { readonly kind: "toplevel"; readonly parent: HostWindow | null }
  | { readonly kind: "popup"; readonly parent: HostWindow; readonly offset: WindowPoint };

/** Options of a {@link HostWindow}. */
export interface HostWindowOptions {
  role: HostWindowRole;
  /** The content size (frame excluded), 1..16384 × 1..6144. */
  size: Size;
  /** Frame width in pixels. */
  border: number;
  /** Label colour, 0xRRGGBB. */
  frameColor: number;
  /** Colour where the domain has no pixels, 0xRRGGBB. */
  backgroundColor: number;
  title: string;
  appId: string;
  listener: HostWindowListener;
}

/** Most damage rectangles kept between frames before they merge into their bounding box. */
const MAX_PENDING_RECTS = 16;

/** wl_fixed-friendly centre of a 4×4 solid buffer: sampling never reaches its edges. */
const SOLID_SOURCE = [1, 1, 2, 2] as const;

/** A window on the host. */
export class HostWindow {
  readonly role: HostWindowRole;
  readonly #display: HostDisplay;
  readonly #listener: HostWindowListener;
  readonly #border: number;
  readonly #root: Proxy<"wl_surface">;
  readonly #rootViewport: Proxy<"wp_viewport">;
  readonly #xdgSurface: Proxy<"xdg_surface">;
  readonly #toplevel: Proxy<"xdg_toplevel"> | null;
  readonly #popup: Proxy<"xdg_popup"> | null;
  readonly #background: Proxy<"wl_surface">;
  readonly #backgroundSub: Proxy<"wl_subsurface">;
  readonly #backgroundViewport: Proxy<"wp_viewport">;
  readonly #content: Proxy<"wl_surface">;
  readonly #contentSub: Proxy<"wl_subsurface">;
  readonly #contentViewport: Proxy<"wp_viewport">;
  /** The content size the host has (frame excluded). */
  #size: Size;
  /** A size asked for while a resize's frame callback is outstanding: applied when it comes; null for none. */
  #nextSize: Size | null = null;
  /** The root's frame callback after a resize is outstanding. */
  #resizePending = false;
  #frameColor: number;
  #configured = false;
  #destroyed = false;
  #source: ContentSource | null = null;
  /** A new buffer waits to be attached. */
  #newSource = false;
  #damage: WindowRect[] = [];
  #framePending = false;
  #pointer: WindowPoint = windowPoint(0, 0);
  #pointerOnContent = false;
  #cursorShape: TrustedCursorShape = { kind: "default" };
  #pendingStates: HostWindowStates = { maximized: false, fullscreen: false, activated: false };
  #pendingSize: Size | null = null;
  #children = new Set<HostWindow>();

  constructor(display: HostDisplay, options: HostWindowOptions) {
    this.#display = display;
    this.role = options.role;
    this.#listener = options.listener;
    this.#border = options.border;
    this.#size = clampSize(options.size, this.#border);
    this.#frameColor = options.frameColor;
    const compositor = display.compositor;
    this.#root = compositor.request("create_surface");
    this.#rootViewport = display.viewporter.request("get_viewport", this.#root);
    this.#background = compositor.request("create_surface");
    this.#backgroundSub = display.subcompositor.request("get_subsurface", this.#background, this.#root);
    this.#backgroundViewport = display.viewporter.request("get_viewport", this.#background);
    this.#content = compositor.request("create_surface");
    this.#contentSub = display.subcompositor.request("get_subsurface", this.#content, this.#root);
    this.#contentViewport = display.viewporter.request("get_viewport", this.#content);
    this.#contentSub.request("set_desync");
    // The background under it covers the whole window: pointer input lands there alone, so that
    // moving between the domain's pixels and a part the image leaves uncovered is no crossing.
    const noInput = compositor.request("create_region");
    this.#content.request("set_input_region", noInput);
    noInput.request("destroy");
    HostDisplay.setInput(this.#root, this.#frameInput);
    HostDisplay.setInput(this.#background, this.#contentInput);
    HostDisplay.setInput(this.#content, this.#keyboardOnlyInput);

    // The background: the window's size, under the content.
    const background = display.solid(options.backgroundColor);
    const { content } = frameLayout(this.#size, this.#border);
    this.#backgroundSub.request("set_position", content.x, content.y);
    this.#backgroundViewport.request("set_source", ...SOLID_SOURCE);
    this.#backgroundViewport.request("set_destination", this.#size.width, this.#size.height);
    this.#background.request("attach", background.buffer, 0, 0);
    this.#background.request("damage_buffer", 0, 0, 4, 4);
    this.#background.request("commit");
    this.#contentSub.request("set_position", content.x, content.y);
    this.#contentSub.request("place_above", this.#background);

    this.#xdgSurface = display.wmBase.request("get_xdg_surface", this.#root);
    this.#xdgSurface.on("configure", (serial) => this.#onConfigure(serial));
    if (options.role.kind === "toplevel") {
      const toplevel = this.#xdgSurface.request("get_toplevel");
      this.#toplevel = toplevel;
      this.#popup = null;
      const parent = options.role.parent;
      if (parent !== null && parent.#toplevel !== null) toplevel.request("set_parent", parent.#toplevel);
      toplevel.request("set_title", options.title);
      toplevel.request("set_app_id", options.appId);
      toplevel.on("configure", (width, height, states) => {
        const outer = { width, height };
        this.#pendingSize =
          width > 0 && height > 0
            ? clampSize(
                { width: outer.width - 2 * this.#border, height: outer.height - 2 * this.#border },
                this.#border,
              )
            : null;
        this.#pendingStates = decodeStates(states);
      });
      toplevel.on("close", () => this.#listener.close());
    } else {
      const parent = options.role.parent;
      parent.#children.add(this);
      const positioner = display.wmBase.request("create_positioner");
      this.#placePopup(positioner, options.role.offset);
      const popup = this.#xdgSurface.request("get_popup", parent.#xdgSurface, positioner);
      positioner.request("destroy");
      this.#popup = popup;
      this.#toplevel = null;
      popup.on("popup_done", () => this.#listener.dismissed());
    }
    this.#root.request("commit");
  }

  /** The content size (frame excluded). */
  get size(): Size {
    return this.#size;
  }

  /** True once the host configured the window and its first frame is up. */
  get shown(): boolean {
    return this.#configured;
  }

  /** A frame callback is outstanding (damage waits for it). */
  get framePending(): boolean {
    return this.#framePending;
  }

  /** Damage waiting for the next frame callback. */
  get pendingDamage(): readonly WindowRect[] {
    return this.#damage;
  }

  /** The window's wl_surface for its content (tests and benchmarks find it by id). */
  get contentSurfaceId(): number {
    return this.#content.id;
  }

  setTitle(title: string): void {
    this.#toplevel?.request("set_title", title);
  }

  /** Min and max content sizes (frame excluded); null leaves a limit unset. */
  setSizeLimits(min: Size | null, max: Size | null): void {
    const toplevel = this.#toplevel;
    if (toplevel === null) return;
    const frame = 2 * this.#border;
    toplevel.request("set_min_size", min === null ? 0 : min.width + frame, min === null ? 0 : min.height + frame);
    toplevel.request("set_max_size", max === null ? 0 : max.width + frame, max === null ? 0 : max.height + frame);
  }

  setFullscreen(on: boolean): void {
    if (on) this.#toplevel?.request("set_fullscreen", null);
    else this.#toplevel?.request("unset_fullscreen");
  }

  setMaximized(on: boolean): void {
    this.#toplevel?.request(on ? "set_maximized" : "unset_maximized");
  }

  setMinimized(): void {
    this.#toplevel?.request("set_minimized");
  }

  /**
   * New content size (frame excluded): the frame, background and crop follow
   * in one atomic commit, at once, or when the last resize's frame callback
   * comes (false: this one is merged into that commit). `force` commits even
   * an unchanged size, to tell the host the size it asked for is refused.
   */
  resize(size: Size, force = false): boolean {
    if (this.#destroyed) return true;
    const clamped = clampSize(size, this.#border);
    const current = this.#nextSize ?? this.#size;
    if (!force && clamped.width === current.width && clamped.height === current.height) return true;
    if (this.#resizePending) {
      this.#nextSize = clamped;
      return false;
    }
    this.#applySize(clamped);
    return true;
  }

  /** Moves a popup relative to its parent (its content's offset from the parent's content). */
  movePopup(offset: WindowPoint): void {
    const popup = this.#popup;
    if (popup === null || this.#destroyed || popup.version < 3) return;
    const positioner = this.#display.wmBase.request("create_positioner");
    this.#placePopup(positioner, offset);
    popup.request("reposition", positioner, 0);
    positioner.request("destroy");
  }

  /** Shows `source` as the content (or the background only, for null); committed at once, whole. */
  setContent(source: ContentSource | null): void {
    if (this.#destroyed) return;
    this.#source = source;
    this.#newSource = true;
    this.#damage = source === null ? [] : [windowRect(0, 0, source.width, source.height)];
    if (source !== null) this.#cropContent(source);
    this.#commitContent();
  }

  /** Content pixels changed in `rect`: committed now, or at the next frame callback with the rest. */
  damage(rect: WindowRect): void {
    if (this.#destroyed || this.#source === null) return;
    const damage = this.#damage;
    if (damage.length >= MAX_PENDING_RECTS) {
      const merged = bounds([...damage, rect]);
      damage.length = 0;
      damage.push(merged);
    } else {
      damage.push(rect);
    }
    if (!this.#framePending) this.#commitContent();
  }

  /** The pointer image over the content (what the domain's CURSOR asked), shown now if the pointer is there. */
  setCursorShape(shape: TrustedCursorShape): void {
    this.#cursorShape = shape;
    if (this.#pointerOnContent && !this.#destroyed) this.#display.showCursor(shape);
  }

  /** Removes the window from the host (popups of it go first). */
  destroy(): void {
    if (this.#destroyed) return;
    this.#destroyed = true;
    for (const child of [...this.#children]) child.destroy();
    if (this.role.kind === "popup") this.role.parent.#children.delete(this);
    HostDisplay.setInput(this.#root, null);
    HostDisplay.setInput(this.#background, null);
    HostDisplay.setInput(this.#content, null);
    if (this.#display.connection.destroyed) return;
    this.#popup?.request("destroy");
    this.#toplevel?.request("destroy");
    this.#xdgSurface.request("destroy");
    this.#contentViewport.request("destroy");
    this.#contentSub.request("destroy");
    this.#content.request("destroy");
    this.#backgroundViewport.request("destroy");
    this.#backgroundSub.request("destroy");
    this.#background.request("destroy");
    this.#rootViewport.request("destroy");
    this.#root.request("destroy");
  }

  #placePopup(positioner: Proxy<"xdg_positioner">, offset: WindowPoint): void {
    const outer = this.#outerSize();
    // Both window geometries start at the frame's corner, so the frames' offset is the contents' offset.
    positioner.request("set_size", outer.width, outer.height);
    positioner.request("set_anchor_rect", 0, 0, 1, 1);
    positioner.request("set_anchor", xdg_positioner.enums.anchor.top_left);
    positioner.request("set_gravity", xdg_positioner.enums.gravity.bottom_right);
    positioner.request("set_offset", offset.x, offset.y);
    positioner.request(
      "set_constraint_adjustment",
      xdg_positioner.enums.constraint_adjustment.slide_x | xdg_positioner.enums.constraint_adjustment.slide_y,
    );
  }

  /** The frame around the content, as decorator/ lays it out. */
  #outerSize(): Size {
    return frameLayout(this.#size, this.#border).outer;
  }

  /** Commits `size`; until the root's frame callback, later sizes wait in #nextSize. */
  #applySize(size: Size): void {
    this.#size = size;
    this.#backgroundViewport.request("set_destination", size.width, size.height);
    this.#background.request("commit");
    if (this.#source !== null) this.#cropContent(this.#source);
    if (!this.#configured) return;
    this.#resizePending = true;
    this.#root.request("frame").on("done", () => {
      this.#resizePending = false;
      const next = this.#nextSize;
      this.#nextSize = null;
      if (next !== null && !this.#destroyed) this.#applySize(next);
    });
    this.#commitRoot();
  }

  #onConfigure(serial: number): void {
    if (this.#destroyed) return;
    this.#xdgSurface.request("ack_configure", serial);
    const first = !this.#configured;
    this.#configured = true;
    if (first) {
      const frame = this.#display.solid(this.#frameColor);
      this.#rootViewport.request("set_source", ...SOLID_SOURCE);
      this.#root.request("attach", frame.buffer, 0, 0);
      this.#root.request("damage_buffer", 0, 0, 4, 4);
    }
    this.#commitRoot();
    if (this.#toplevel !== null) this.#listener.configure(this.#pendingSize, this.#pendingStates);
  }

  /** The frame and window geometry at the current size, then the root commit that applies the subsurfaces. */
  #commitRoot(): void {
    const outer = this.#outerSize();
    this.#rootViewport.request("set_destination", outer.width, outer.height);
    this.#xdgSurface.request("set_window_geometry", 0, 0, outer.width, outer.height);
    this.#root.request("commit");
  }

  #cropContent(source: ContentSource): void {
    const width = Math.min(source.width, this.#size.width);
    const height = Math.min(source.height, this.#size.height);
    this.#contentViewport.request("set_source", 0, 0, width, height);
    this.#contentViewport.request("set_destination", width, height);
  }

  #commitContent(): void {
    const source = this.#source;
    const content = this.#content;
    if (this.#newSource) {
      content.request("attach", source?.buffer ?? null, 0, 0);
      this.#newSource = false;
    } else if (source !== null) {
      // Re-attach: compositors take a wl_shm buffer's new pixels on attach + damage.
      content.request("attach", source.buffer, 0, 0);
    }
    const damage = this.#damage;
    this.#damage = [];
    if (source !== null) {
      source.update(damage);
      for (const rect of damage) content.request("damage_buffer", rect.x, rect.y, rect.width, rect.height);
    }
    const callback = content.request("frame");
    this.#framePending = true;
    callback.on("done", () => {
      this.#framePending = false;
      if (!this.#destroyed && this.#damage.length > 0) this.#commitContent();
    });
    content.request("commit");
    // The commit is what the host waits for: out now, not after the rest of this batch of messages.
    this.#display.connection.flush();
    this.#listener.committed(damage);
  }

  readonly #contentInput: SurfaceInput = {
    pointerEnter: (_serial, x, y, state) => {
      this.#pointerOnContent = true;
      this.#pointer = windowPoint(x, y);
      this.#display.showCursor(this.#cursorShape);
      this.#listener.pointerEnter(this.#pointer, state);
    },
    pointerMotion: (_time, x, y, state) => {
      this.#pointer = windowPoint(x, y);
      this.#listener.pointerMotion(this.#pointer, state);
    },
    pointerLeave: (state) => {
      this.#pointerOnContent = false;
      this.#listener.pointerLeave(state);
    },
    pointerButton: (_serial, _time, xButton, pressed, state) =>
      this.#listener.pointerButton(this.#pointer, xButton, pressed, state),
    pointerWheel: (_time, xButton, clicks, state) => this.#listener.pointerWheel(this.#pointer, xButton, clicks, state),
    keyboardEnter: (_serial, keys, state) => this.#listener.focusIn(keys, state),
    keyboardLeave: (state) => this.#listener.focusOut(state),
    key: (_serial, time, code, pressed, state) => this.#listener.key(time, code, pressed, this.#pointer, state),
  };

  /** The content surface takes no pointer input (its input region is empty); keys still go to the window. */
  readonly #keyboardOnlyInput: SurfaceInput = {
    ...this.#contentInput,
    pointerEnter: () => undefined,
    pointerMotion: () => undefined,
    pointerLeave: () => undefined,
    pointerButton: () => undefined,
    pointerWheel: () => undefined,
  };

  /** Input on the frame: a press moves the window (a toplevel); keys still go to the window. */
  readonly #frameInput: SurfaceInput = {
    pointerEnter: () => this.#display.showCursor({ kind: "default" }),
    pointerMotion: () => undefined,
    pointerLeave: () => undefined,
    pointerButton: (serial, _time, xButton, pressed) => {
      const seat = this.#display.seat;
      if (pressed && xButton === 1 && seat !== null && this.#toplevel !== null) {
        this.#toplevel.request("move", seat, serial);
      }
    },
    pointerWheel: () => undefined,
    keyboardEnter: (_serial, keys, state) => this.#listener.focusIn(keys, state),
    keyboardLeave: (state) => this.#listener.focusOut(state),
    key: (_serial, time, code, pressed, state) => this.#listener.key(time, code, pressed, this.#pointer, state),
  };
}

/**
 * Now 1 ≤ width and width + 2 × border ≤ 16384, height likewise ≤ 6144: the
 * framed surface (its viewport's destination) stays within the largest
 * output a host takes, which may refuse more (our Desktop ends the client).
 */
function clampSize(size: Size, border: number): Size {
  return {
    width: Math.min(MAX_WINDOW_WIDTH - 2 * border, Math.max(1, Math.floor(size.width))),
    height: Math.min(MAX_WINDOW_HEIGHT - 2 * border, Math.max(1, Math.floor(size.height))),
  };
}

function bounds(rects: readonly WindowRect[]): WindowRect {
  let left = Infinity;
  let top = Infinity;
  let right = -Infinity;
  let bottom = -Infinity;
  for (const rect of rects) {
    left = Math.min(left, rect.x);
    top = Math.min(top, rect.y);
    right = Math.max(right, rect.x + rect.width);
    bottom = Math.max(bottom, rect.y + rect.height);
  }
  return windowRect(left, top, right - left, bottom - top);
}

function decodeStates(states: Uint8Array): HostWindowStates {
  const view = new DataView(states.buffer, states.byteOffset, states.byteLength);
  const result: HostWindowStates = { maximized: false, fullscreen: false, activated: false };
  for (let at = 0; at + 4 <= states.byteLength; at += 4) {
    const state = view.getUint32(at, true);
    if (state === xdg_toplevel.enums.state.maximized) result.maximized = true;
    else if (state === xdg_toplevel.enums.state.fullscreen) result.fullscreen = true;
    else if (state === xdg_toplevel.enums.state.activated) result.activated = true;
  }
  return result;
}
