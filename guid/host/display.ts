/**
 * guid's connection to the host compositor (sway, weston, KDE, or our own
 * qubes-gui-desktop), as a Wayland client on wayland/: the globals the
 * daemon needs, the outputs (the screen size that xconf reports to agents),
 * the seat with its pointer and keyboard, solid-colour buffers for frames,
 * and the routing of every input event to the surface it belongs to.
 *
 * Everything here is trusted (the host compositor runs in the GUI domain);
 * nothing a domain sent reaches this file without having been validated.
 */
import type { Logger } from "pino";

import { screenRect, type ScreenRect, type TrustedCursorShape } from "../../protocol/index.ts";
import {
  ClientShmPool,
  SHM_FORMAT_ARGB8888,
  SHM_FORMAT_XRGB8888,
  WaylandError,
  closeFd,
  connect,
  readKeymap,
  type ClientConnection,
  type GlobalInfo,
  type Proxy,
} from "../../wayland/index.ts";
import { CursorTheme, type CursorImage } from "./cursors.ts";
import { AxisAccumulator, buttonMask, xButtonFromLinux, xStateFromModifiers } from "./input-map.ts";
import { parseKeymap, type HostKeymap } from "./keymap.ts";

/** What a surface of ours does with the input that lands on it. */
export interface SurfaceInput {
  /** The pointer entered the surface at (x, y), surface coordinates; `state` is the X state mask now. */
  pointerEnter(serial: number, x: number, y: number, state: number): void;
  pointerMotion(time: number, x: number, y: number, state: number): void;
  pointerLeave(state: number): void;
  /** An X button (1..9) pressed or released at the pointer; `state` is the mask before the event, as X reports it. */
  pointerButton(serial: number, time: number, xButton: number, pressed: boolean, state: number): void;
  /** Wheel clicks as X buttons 4..7 (each click a press and a release). */
  pointerWheel(time: number, xButton: number, clicks: number, state: number): void;
  /** The keyboard focus came here; `keys` are the evdev codes held now. */
  keyboardEnter(serial: number, keys: readonly number[], state: number): void;
  keyboardLeave(state: number): void;
  /** A key (evdev code) pressed or released; `state` is the mask before the event. */
  key(serial: number, time: number, code: number, pressed: boolean, state: number): void;
}

/** A 4×4 buffer of one colour, shown through a viewport from its centre 2×2, so that filtering never blends its edges. */
export interface SolidBuffer {
  readonly buffer: Proxy<"wl_buffer">;
  readonly color: number;
}

interface OutputState {
  readonly proxy: Proxy<"wl_output">;
  x: number;
  y: number;
  width: number;
  height: number;
  scale: number;
}

/** Options of {@link HostDisplay.connect}. */
export interface HostDisplayOptions {
  /** A display name or socket path; default $WAYLAND_DISPLAY. */
  display?: string;
  /** Default $XDG_RUNTIME_DIR. */
  runtimeDir?: string;
  /** How long the compositor has to answer the first requests; default 10 000 ms. */
  timeoutMs?: number;
  log: Logger;
}

/** Default of {@link HostDisplayOptions.timeoutMs}. */
export const CONNECT_TIMEOUT_MS = 10_000;

const SOLID_BYTES = 4 * 4 * 4;
const SOLID_POOL_BYTES = 4096;

/**
 * The host compositor as guid sees it. One per process: every session's
 * windows live on it.
 */
export class HostDisplay {
  readonly connection: ClientConnection;
  readonly compositor: Proxy<"wl_compositor">;
  readonly subcompositor: Proxy<"wl_subcompositor">;
  readonly shm: Proxy<"wl_shm">;
  readonly wmBase: Proxy<"xdg_wm_base">;
  readonly viewporter: Proxy<"wp_viewporter">;
  /** The seat, or null when the compositor has none (headless weston): windows show, no input arrives. */
  seat: Proxy<"wl_seat"> | null = null;
  /** The host keymap, once the keyboard sent it. */
  keymap: HostKeymap | null = null;
  /**
   * Keys (evdev codes) whose press was a clipboard hotkey: their release is
   * swallowed wherever it lands. One set for the whole display, because the
   * focus may move to another domain's window between press and release.
   */
  readonly swallowedKeys = new Set<number>();
  /** Keys (evdev codes) held down now, as the keyboard reported them: what KEYMAP_NOTIFY tells an agent. */
  readonly heldKeys = new Set<number>();
  readonly #log: Logger;
  readonly #outputs = new Map<number, OutputState>();
  readonly #solids = new Map<number, SolidBuffer>();
  readonly #solidPools: ClientShmPool[] = [];
  #solidUsed = SOLID_POOL_BYTES;
  #pointer: Proxy<"wl_pointer"> | null = null;
  #keyboard: Proxy<"wl_keyboard"> | null = null;
  #pointerFocus: Proxy<"wl_surface"> | null = null;
  #keyboardFocus: Proxy<"wl_surface"> | null = null;
  #pointerSerial = 0;
  /** Where each held button was pressed: its release goes there, wherever the pointer is then (X's implicit grab). */
  readonly #pressedOn = new Map<number, SurfaceInput>();
  #modifiers = 0;
  #buttons = 0;
  readonly #axis = new AxisAccumulator();
  readonly #discrete: [number | null, number | null] = [null, null];
  #lastInputSerial = 0;
  #cursorTheme: CursorTheme | null = null;
  readonly #cursors = new Map<CursorImage, { surface: Proxy<"wl_surface">; pool: ClientShmPool }>();

  private constructor(connection: ClientConnection, log: Logger) {
    this.connection = connection;
    this.#log = log;
    this.compositor = this.#bind("wl_compositor", 4, 4);
    this.subcompositor = this.#bind("wl_subcompositor", 1, 1);
    this.shm = this.#bind("wl_shm", 1, 1);
    this.wmBase = this.#bind("xdg_wm_base", 1, 3);
    this.viewporter = this.#bind("wp_viewporter", 1, 1);
    this.wmBase.on("ping", (serial) => this.wmBase.request("pong", serial));
    for (const info of connection.globals.values()) this.#onGlobal(info);
    connection.events.global.add((info) => this.#onGlobal(info));
    connection.events.globalRemove.add((info) => this.#onGlobalRemove(info));
  }

  /**
   * Connects to the host compositor, binds what guid needs and waits until
   * the outputs have described themselves. Rejects with a message naming
   * what is missing (no compositor, or a global guid cannot work without).
   */
  static async connect(options: HostDisplayOptions): Promise<HostDisplay> {
    const timeoutMs = options.timeoutMs ?? CONNECT_TIMEOUT_MS;
    const connection = await connect({
      ...(options.display === undefined ? {} : { display: options.display }),
      ...(options.runtimeDir === undefined ? {} : { runtimeDir: options.runtimeDir }),
      timeoutMs,
    });
    let display: HostDisplay;
    let timer: NodeJS.Timeout | undefined;
    const silent = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new WaylandError("no-display", `the host compositor did not answer within ${timeoutMs} ms`)),
        timeoutMs,
      );
    });
    try {
      display = new HostDisplay(connection, options.log);
      // One roundtrip for the binds, one for the events they caused (modes, capabilities, keymap).
      await Promise.race([connection.roundtrip(), silent]);
      await Promise.race([connection.roundtrip(), silent]);
    } catch (error) {
      connection.destroy();
      throw error;
    } finally {
      clearTimeout(timer);
    }
    return display;
  }

  /** The union of the outputs in compositor coordinates; 1280×800 at 0,0 when there is no output yet. */
  get screen(): ScreenRect {
    let left = Infinity;
    let top = Infinity;
    let right = -Infinity;
    let bottom = -Infinity;
    for (const output of this.#outputs.values()) {
      if (output.width <= 0 || output.height <= 0) continue;
      const scale = Math.max(1, output.scale);
      left = Math.min(left, output.x);
      top = Math.min(top, output.y);
      right = Math.max(right, output.x + Math.ceil(output.width / scale));
      bottom = Math.max(bottom, output.y + Math.ceil(output.height / scale));
    }
    if (left === Infinity) return screenRect(0, 0, 1280, 800);
    return screenRect(left, top, right - left, bottom - top);
  }

  /** The serial of the latest input event (for requests such as xdg_toplevel.move). */
  get lastInputSerial(): number {
    return this.#lastInputSerial;
  }

  /** The X state mask now: modifiers and held buttons. */
  get xState(): number {
    return this.#modifiers | this.#buttons;
  }

  /** A shared buffer of one colour (0xRRGGBB) for frames and backgrounds; made once per colour. */
  solid(color: number): SolidBuffer {
    const existing = this.#solids.get(color);
    if (existing !== undefined) return existing;
    if (this.#solidUsed + SOLID_BYTES > SOLID_POOL_BYTES) {
      this.#solidPools.push(new ClientShmPool(this.shm, SOLID_POOL_BYTES));
      this.#solidUsed = 0;
    }
    const pool = this.#solidPools[this.#solidPools.length - 1] as ClientShmPool;
    const { proxy, bytes } = pool.createBuffer(this.#solidUsed, 4, 4, 16, SHM_FORMAT_XRGB8888);
    new Uint32Array(bytes.buffer, bytes.byteOffset, 16).fill((color & 0xffffff) | 0xff000000);
    this.#solidUsed += SOLID_BYTES;
    const solid = { buffer: proxy, color };
    this.#solids.set(color, solid);
    return solid;
  }

  /**
   * Shows `shape` as the pointer's image (the pointer must be on one of our
   * surfaces since its last enter): an image of the GUI domain's cursor
   * theme, or none. Without a theme, the default shape is left to the
   * compositor.
   */
  showCursor(shape: TrustedCursorShape): void {
    const pointer = this.#pointer;
    if (pointer === null) return;
    if (shape.kind === "none") {
      pointer.request("set_cursor", this.#pointerSerial, null, 0, 0);
      return;
    }
    this.#cursorTheme ??= CursorTheme.load();
    const theme = this.#cursorTheme;
    const image = shape.kind === "x11" ? theme.forGlyph(shape.glyph) : theme.defaultImage();
    if (image === null) return;
    let cursor = this.#cursors.get(image);
    if (cursor === undefined) {
      const bytes = image.width * image.height * 4;
      const pool = new ClientShmPool(this.shm, bytes);
      const { proxy, bytes: pixels } = pool.createBuffer(
        0,
        image.width,
        image.height,
        image.width * 4,
        SHM_FORMAT_ARGB8888,
      );
      new Uint32Array(pixels.buffer, pixels.byteOffset, image.width * image.height).set(image.pixels);
      const surface = this.compositor.request("create_surface");
      surface.request("attach", proxy, 0, 0);
      surface.request("damage_buffer", 0, 0, image.width, image.height);
      surface.request("commit");
      cursor = { surface, pool };
      this.#cursors.set(image, cursor);
    }
    pointer.request("set_cursor", this.#pointerSerial, cursor.surface, image.hotX, image.hotY);
  }

  /** Tells the compositor which surface is ours for input (`surface.data`). */
  static setInput(surface: Proxy<"wl_surface">, input: SurfaceInput | null): void {
    surface.data = input;
  }

  /** Flushes and waits until the compositor has handled every request so far. */
  roundtrip(): Promise<void> {
    return this.connection.roundtrip();
  }

  /** Adds a listener for the end of the connection (the compositor went away or sent an error). */
  onClosed(listener: (error: WaylandError | undefined) => void): () => void {
    return this.connection.events.destroy.add((connection) => listener(connection.error));
  }

  /** Disconnects (every surface of ours disappears). */
  destroy(): void {
    for (const pool of this.#solidPools.splice(0)) pool.destroy();
    for (const cursor of this.#cursors.values()) cursor.pool.destroy();
    this.#cursors.clear();
    this.connection.destroy();
  }

  #bind<I extends string>(name: I, minimum: number, wanted: number): Proxy<I> {
    const info = this.connection.findGlobal(name);
    if (info === undefined || info.version < minimum) {
      throw new WaylandError(
        "protocol-error",
        `the host compositor has no ${name}${minimum > 1 ? ` version ≥ ${minimum}` : ""}; guid needs it`,
      );
    }
    return this.connection.bind(name, wanted, info);
  }

  #onGlobal(info: GlobalInfo): void {
    if (info.interface === "wl_output") this.#addOutput(info);
    else if (info.interface === "wl_seat" && this.seat === null) this.#addSeat(info);
  }

  #onGlobalRemove(info: GlobalInfo): void {
    const output = this.#outputs.get(info.name);
    if (output !== undefined) {
      this.#outputs.delete(info.name);
      if (output.proxy.version >= 3) output.proxy.request("release");
      else output.proxy.destroy();
    }
  }

  #addOutput(info: GlobalInfo): void {
    const proxy = this.connection.bind("wl_output", 3, info);
    const output: OutputState = { proxy, x: 0, y: 0, width: 0, height: 0, scale: 1 };
    this.#outputs.set(info.name, output);
    proxy.on("geometry", (x, y) => {
      output.x = x;
      output.y = y;
    });
    proxy.on("mode", (flags, width, height) => {
      // Bit 0 of flags: the current mode.
      if ((flags & 1) !== 0) {
        output.width = width;
        output.height = height;
      }
    });
    proxy.on("scale", (factor) => {
      output.scale = factor;
    });
  }

  #addSeat(info: GlobalInfo): void {
    const seat = this.connection.bind("wl_seat", 5, info);
    this.seat = seat;
    // Devices are kept when a capability goes: input devices come and go (a virtual keyboard that
    // types and leaves), and a device object made late would miss the events sent before it existed.
    seat.on("capabilities", (capabilities) => {
      if ((capabilities & 1) !== 0 && this.#pointer === null) this.#setupPointer(seat.request("get_pointer"));
      if ((capabilities & 2) !== 0 && this.#keyboard === null) this.#setupKeyboard(seat.request("get_keyboard"));
    });
  }

  #inputOf(surface: Proxy<"wl_surface"> | null): SurfaceInput | null {
    if (surface === null || surface.destroyed) return null;
    return (surface.data as SurfaceInput | null | undefined) ?? null;
  }

  #setupPointer(pointer: Proxy<"wl_pointer">): void {
    this.#pointer = pointer;
    pointer.on("enter", (serial, surface, x, y) => {
      this.#pointerSerial = serial;
      this.#pointerFocus = surface;
      this.#inputOf(surface)?.pointerEnter(serial, Math.floor(x), Math.floor(y), this.xState);
    });
    pointer.on("leave", (serial, surface) => {
      this.#pointerSerial = serial;
      const input = this.#inputOf(surface ?? this.#pointerFocus);
      this.#pointerFocus = null;
      this.#buttons = 0;
      input?.pointerLeave(this.xState);
    });
    pointer.on("motion", (time, x, y) => {
      this.#inputOf(this.#pointerFocus)?.pointerMotion(time, Math.floor(x), Math.floor(y), this.xState);
    });
    pointer.on("button", (serial, time, button, buttonState) => {
      this.#lastInputSerial = serial;
      const xButton = xButtonFromLinux(button);
      if (xButton === null) return;
      const pressed = buttonState === 1;
      const before = this.xState;
      const mask = buttonMask(xButton);
      this.#buttons = pressed ? this.#buttons | mask : this.#buttons & ~mask;
      let input = this.#inputOf(this.#pointerFocus);
      if (pressed) {
        if (input !== null) this.#pressedOn.set(xButton, input);
      } else {
        input = this.#pressedOn.get(xButton) ?? input;
        this.#pressedOn.delete(xButton);
      }
      input?.pointerButton(serial, time, xButton, pressed, before);
    });
    pointer.on("axis", (time, axis, value) => {
      const discrete = this.#discrete[axis === 1 ? 1 : 0] ?? undefined;
      this.#discrete[axis === 1 ? 1 : 0] = null;
      const wheel = this.#axis.accumulate(axis, value, discrete);
      if (wheel !== null && wheel.clicks > 0) {
        this.#inputOf(this.#pointerFocus)?.pointerWheel(time, wheel.button, wheel.clicks, this.xState);
      }
    });
    if (pointer.version >= 5) {
      pointer.on("axis_discrete", (axis, discrete) => {
        // Comes before the axis event it describes, in the same frame.
        this.#discrete[axis === 1 ? 1 : 0] = discrete;
      });
    }
  }

  #setupKeyboard(keyboard: Proxy<"wl_keyboard">): void {
    this.#keyboard = keyboard;
    keyboard.on("keymap", (format, fd, size) => {
      try {
        if (format === 1) this.keymap = parseKeymap(readKeymap(fd, size));
      } catch (error) {
        this.#log.warn({ err: error }, "cannot read the host keymap: the clipboard hotkeys use the US layout");
      } finally {
        closeFd(fd);
      }
    });
    keyboard.on("enter", (serial, surface, keys) => {
      this.#lastInputSerial = serial;
      this.#keyboardFocus = surface;
      const held = u32Array(keys);
      this.heldKeys.clear();
      for (const code of held) this.heldKeys.add(code);
      this.#inputOf(surface)?.keyboardEnter(serial, held, this.xState);
    });
    keyboard.on("leave", (serial, surface) => {
      this.#lastInputSerial = serial;
      const input = this.#inputOf(surface ?? this.#keyboardFocus);
      this.#keyboardFocus = null;
      // Keys go elsewhere from now on: what is held is unknown until the next enter.
      this.heldKeys.clear();
      input?.keyboardLeave(this.xState);
    });
    keyboard.on("key", (serial, time, key, keyState) => {
      this.#lastInputSerial = serial;
      if (keyState === 1) this.heldKeys.add(key);
      else this.heldKeys.delete(key);
      this.#inputOf(this.#keyboardFocus)?.key(serial, time, key, keyState === 1, this.xState);
    });
    keyboard.on("modifiers", (_serial, depressed, latched, locked) => {
      this.#modifiers = xStateFromModifiers(depressed, latched, locked);
    });
  }

  /** The serial of the pointer's last enter or leave (what wl_pointer.set_cursor needs). */
  get pointerSerial(): number {
    return this.#pointerSerial;
  }

  /** The pointer, for set_cursor; null without one. */
  get pointer(): Proxy<"wl_pointer"> | null {
    return this.#pointer;
  }
}

/** The u32 values of a Wayland array argument. */
function u32Array(array: Uint8Array): number[] {
  const view = new DataView(array.buffer, array.byteOffset, array.byteLength);
  const values: number[] = [];
  for (let at = 0; at + 4 <= array.byteLength; at += 4) values.push(view.getUint32(at, true));
  return values;
}
