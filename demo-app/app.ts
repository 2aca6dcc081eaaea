/**
 * The demo app: one xdg_toplevel titled `demo: NAME` that shows the domain's
 * name, a line of what was typed, and a canvas where left clicks leave dots;
 * a right click opens a popup menu (Copy, Paste, Clear); Ctrl+C and Ctrl+V
 * copy and paste the typed line through the Wayland selection.
 *
 * It is a plain client of wayland/'s client side, with software drawing
 * into XRGB8888 shm buffers and exact damage, so that tests can check what
 * it shows pixel for pixel. Keys are mapped with a fixed US layout
 * (keys.ts); Enter clears the line; keys do not repeat.
 */
import {
  closeFd,
  connect,
  createPipe,
  readPipe,
  writePipe,
  xdg_positioner,
  type ClientConnection,
  type Proxy,
} from "../wayland/index.ts";

import {
  BTN_LEFT,
  BTN_RIGHT,
  KEY_BACKSPACE,
  KEY_C,
  KEY_ENTER,
  KEY_ESC,
  KEY_KPENTER,
  KEY_V,
  ModifierState,
  characterOf,
} from "./keys.ts";
import {
  BACKGROUND,
  DOT_COLOR,
  FIELD_BACKGROUND,
  FIELD_BORDER,
  LINE_FONT_SIZE,
  MENU_BACKGROUND,
  MENU_BORDER,
  MENU_FONT_SIZE,
  MENU_HEIGHT,
  MENU_HOVER,
  MENU_ITEMS,
  MENU_LABEL_X,
  MENU_WIDTH,
  NAME_FONT_SIZE,
  TEXT_COLOR,
  dotRect,
  menuItemAt,
  menuItemRect,
  windowLayout,
  type MenuItem,
  type Rect,
  type WindowLayout,
} from "./layout.ts";
import { PaintedSurface } from "./painted-surface.ts";
import { blendText, fillRect, renderText, strokeRect, textOrigin, type TextMask } from "./text.ts";

/** The app id of every demo app window. */
export const APP_ID = "qubes-demo-app";
/** MIME types the app offers when it copies, best first; it reads the first of these a selection offers. */
export const TEXT_MIME_TYPES = ["text/plain;charset=utf-8", "text/plain"] as const;
/** Also read when pasting, after {@link TEXT_MIME_TYPES} (what X11 apps offer through Xwayland). */
const LEGACY_TEXT_TYPES = ["UTF8_STRING", "STRING", "TEXT"] as const;
/** The most bytes a paste reads (the rest of a bigger selection is dropped). */
export const PASTE_LIMIT = 64 * 1024;
/** How long a paste waits for the selection's owner to write and close. */
export const PASTE_TIMEOUT_MS = 2000;
/** The typed line's longest length (UTF-16 code units); typing and pasting stop there. */
export const MAX_TYPED_LENGTH = 64 * 1024;
/** Dots remembered for repainting after a resize (the oldest are forgotten). */
const MAX_DOTS = 4096;
/** The largest window the app makes (a configure asking more is clamped). */
export const MAX_WINDOW_SIZE = 8192;
/** Default bound on each wait for the compositor (connect, configure, roundtrip). */
export const DEFAULT_TIMEOUT_MS = 10_000;

/** Why the app could not start: `no-display` (exit 1), `missing-global`, `timeout`, `protocol`. */
export class DemoAppError extends Error {
  readonly code: "no-display" | "missing-global" | "timeout" | "protocol";
  constructor(code: DemoAppError["code"], message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "DemoAppError";
    this.code = code;
  }
}

/** Options of {@link DemoApp.start}. */
export interface DemoAppOptions {
  /** The domain's name, shown in the window and its title. */
  name: string;
  /** The size used when the compositor lets the app choose. */
  width: number;
  height: number;
  /** A display name or socket path; default $WAYLAND_DISPLAY. */
  display?: string;
  /** Bound on each wait for the compositor (ms); default {@link DEFAULT_TIMEOUT_MS}. */
  timeoutMs?: number;
  /** Where errors are reported, one line each; default stderr. */
  log?: (line: string) => void;
}

interface Menu {
  readonly painted: PaintedSurface;
  readonly xdgSurface: Proxy<"xdg_surface">;
  readonly popup: Proxy<"xdg_popup">;
  hovered: number | null;
  configured: boolean;
}

function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new DemoAppError("timeout", `${what} within ${ms} ms`)), ms);
  });
  return Promise.race([promise, expired]).finally(() => clearTimeout(timer));
}

function clampSize(value: number): number {
  return Math.max(1, Math.min(MAX_WINDOW_SIZE, Math.floor(value)));
}

/** The u32 values of a Wayland array argument. */
function u32s(array: Uint8Array): number[] {
  const view = new DataView(array.buffer, array.byteOffset, array.byteLength);
  const values: number[] = [];
  for (let at = 0; at + 4 <= array.byteLength; at += 4) values.push(view.getUint32(at, true));
  return values;
}

/** Pasted text as one line: line breaks and tabs become spaces, other control characters go. */
export function sanitizePasted(text: string): string {
  // eslint-disable-next-line no-control-regex
  return text.replace(/\r\n|[\n\r\t]/g, " ").replace(/[\u0000-\u001f\u007f-\u009f]/g, "");
}

/** A running demo app window. */
export class DemoApp {
  /** Resolves with the exit status once the app ends: 0 when closed, 1 when the compositor went away. */
  readonly ended: Promise<number>;
  readonly name: string;
  readonly #connection: ClientConnection;
  readonly #log: (line: string) => void;
  readonly #compositor: Proxy<"wl_compositor">;
  readonly #shm: Proxy<"wl_shm">;
  readonly #wmBase: Proxy<"xdg_wm_base">;
  #seat: Proxy<"wl_seat"> | null = null;
  #dataManager: Proxy<"wl_data_device_manager"> | null = null;
  #dataDevice: Proxy<"wl_data_device"> | null = null;
  readonly #main: PaintedSurface;
  readonly #xdgSurface: Proxy<"xdg_surface">;
  readonly #toplevel: Proxy<"xdg_toplevel">;
  #layout: WindowLayout;
  #pendingSize: { width: number; height: number } | null = null;
  #configured = false;
  #firstConfigure: (() => void) | null = null;
  #menu: Menu | null = null;
  #nameMask: TextMask | null = null;
  #menuMasks: TextMask[] = [];
  #typed = "";
  #lineMask: TextMask | null = null;
  #rendering = false;
  readonly #dots: Array<{ x: number; y: number }> = [];
  readonly #modifiers = new ModifierState();
  #pointerSurface: Proxy<"wl_surface"> | null = null;
  #pointerX = 0;
  #pointerY = 0;
  #source: Proxy<"wl_data_source"> | null = null;
  #offer: Proxy<"wl_data_offer"> | null = null;
  #closing = false;
  #end!: (status: number) => void;

  private constructor(connection: ClientConnection, options: DemoAppOptions, masks: TextMask[]) {
    this.name = options.name;
    this.#nameMask = masks[0] ?? null;
    this.#menuMasks = masks.slice(1);
    this.#connection = connection;
    this.#log = options.log ?? ((line) => void process.stderr.write(`qubes-demo-app: ${line}\n`));
    this.ended = new Promise((resolve) => (this.#end = resolve));
    this.#compositor = this.#bindRequired("wl_compositor", 4, 4);
    this.#shm = this.#bindRequired("wl_shm", 1, 1);
    this.#wmBase = this.#bindRequired("xdg_wm_base", 1, 3);
    this.#wmBase.on("ping", (serial) => this.#wmBase.request("pong", serial));
    const seatInfo = connection.findGlobal("wl_seat");
    if (seatInfo === undefined) this.#log("the compositor has no wl_seat: no input");
    else {
      const seat = connection.bind("wl_seat", 5, seatInfo);
      this.#seat = seat;
      let pointer = false;
      let keyboard = false;
      seat.on("capabilities", (capabilities) => {
        if ((capabilities & 1) !== 0 && !pointer) {
          pointer = true;
          this.#setupPointer(seat.request("get_pointer"));
        }
        if ((capabilities & 2) !== 0 && !keyboard) {
          keyboard = true;
          this.#setupKeyboard(seat.request("get_keyboard"));
        }
      });
      if (connection.findGlobal("wl_data_device_manager") === undefined) {
        this.#log("the compositor has no wl_data_device_manager: no clipboard");
      } else {
        this.#dataManager = connection.bind("wl_data_device_manager", 3);
        this.#setupDataDevice(this.#dataManager.request("get_data_device", seat));
      }
    }

    const width = clampSize(options.width);
    const height = clampSize(options.height);
    this.#layout = windowLayout(width, height);
    this.#main = new PaintedSurface(this.#compositor.request("create_surface"), this.#shm, width, height, BACKGROUND);
    this.#xdgSurface = this.#wmBase.request("get_xdg_surface", this.#main.surface);
    this.#toplevel = this.#xdgSurface.request("get_toplevel");
    this.#toplevel.request("set_title", `demo: ${options.name}`);
    this.#toplevel.request("set_app_id", APP_ID);
    this.#toplevel.on("configure", (w, h) => {
      this.#pendingSize = w > 0 && h > 0 ? { width: clampSize(w), height: clampSize(h) } : null;
    });
    this.#toplevel.on("close", () => this.close());
    this.#xdgSurface.on("configure", (serial) => this.#onConfigure(serial));
    this.#main.surface.request("commit");
    connection.events.destroy.add(() => {
      if (this.#closing) return;
      this.#log(`the compositor connection ended: ${connection.error?.message ?? "closed"}`);
      this.#finish(1);
    });
  }

  /**
   * Connects to the compositor, maps the window and commits its first frame
   * (the name drawn); resolves once the compositor has handled that commit.
   * Rejects with a {@link DemoAppError} naming what failed.
   */
  static async start(options: DemoAppOptions): Promise<DemoApp> {
    const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    // Text first, while connecting: the first frame shows the name.
    const masks = Promise.all([
      renderText(options.name, { size: NAME_FONT_SIZE, bold: true }),
      ...MENU_ITEMS.map((item) => renderText(item, { size: MENU_FONT_SIZE })),
    ]);
    // Settled below either way; this keeps a rejection during connect from going unhandled.
    masks.catch(() => undefined);
    let connection: ClientConnection;
    try {
      connection = await connect({
        ...(options.display === undefined ? {} : { display: options.display }),
        timeoutMs,
      });
    } catch (error) {
      throw new DemoAppError("no-display", `cannot connect to the Wayland display: ${(error as Error).message}`, {
        cause: error,
      });
    }
    let app: DemoApp | undefined;
    try {
      const rendered = await withTimeout(masks, timeoutMs, "the text was not rendered");
      app = new DemoApp(connection, options, rendered);
      const started = app;
      const configured = new Promise<void>((resolve) => {
        if (started.#configured) resolve();
        else started.#firstConfigure = resolve;
      });
      await withTimeout(configured, timeoutMs, "the compositor sent no configure");
      await withTimeout(connection.roundtrip(), timeoutMs, "the compositor did not answer");
      return app;
    } catch (error) {
      // The error is the one line to report: the end of the connection is not another.
      if (app !== undefined) app.#closing = true;
      connection.destroy();
      if (error instanceof DemoAppError) throw error;
      throw new DemoAppError("protocol", (error as Error).message, { cause: error });
    }
  }

  /** The window's size now. */
  get size(): { width: number; height: number } {
    return { width: this.#main.width, height: this.#main.height };
  }

  /** The typed line. */
  get typed(): string {
    return this.#typed;
  }

  /** Closes the window and the connection; {@link ended} resolves with `status`. */
  close(status = 0): void {
    if (this.#closing) return;
    this.#closing = true;
    this.#closeMenu();
    this.#finish(status);
  }

  #finish(status: number): void {
    this.#closing = true;
    if (!this.#toplevel.destroyed) this.#toplevel.request("destroy");
    if (!this.#xdgSurface.destroyed) this.#xdgSurface.request("destroy");
    this.#main.destroy();
    this.#connection.destroy();
    this.#end(status);
  }

  #bindRequired<I extends string>(name: I, minimum: number, wanted: number): Proxy<I> {
    const info = this.#connection.findGlobal(name);
    if (info === undefined || info.version < minimum) {
      throw new DemoAppError(
        "missing-global",
        `the compositor has no ${name}${minimum > 1 ? ` version ≥ ${minimum}` : ""}, which the app needs`,
      );
    }
    return this.#connection.bind(name, wanted, info);
  }

  // --- the window -------------------------------------------------------

  #onConfigure(serial: number): void {
    if (this.#closing) return;
    this.#xdgSurface.request("ack_configure", serial);
    const size = this.#pendingSize;
    const resized = size !== null && (size.width !== this.#main.width || size.height !== this.#main.height);
    if (resized) {
      this.#main.resize(size.width, size.height, BACKGROUND);
      this.#layout = windowLayout(size.width, size.height);
    }
    const first = !this.#configured;
    this.#configured = true;
    if (first) {
      this.#paintAll();
      this.#main.commitNow();
      this.#firstConfigure?.();
      this.#firstConfigure = null;
      return;
    }
    if (resized) this.#paintAll();
    this.#main.commitNow();
  }

  #paintAll(): void {
    const canvas = this.#main.canvas;
    const layout = this.#layout;
    fillRect(canvas, { x: 0, y: 0, width: canvas.width, height: canvas.height }, BACKGROUND);
    if (this.#nameMask !== null) {
      const origin = textOrigin(this.#nameMask, layout.name);
      blendText(canvas, this.#nameMask, layout.name.x, origin.y, layout.name, TEXT_COLOR);
    }
    this.#paintLine();
    fillRect(canvas, layout.canvasBox, FIELD_BACKGROUND);
    strokeRect(canvas, layout.canvasBox, FIELD_BORDER);
    for (const dot of this.#dots) {
      const rect = dotRect(layout, dot.x, dot.y);
      if (rect !== null) fillRect(canvas, rect, DOT_COLOR);
    }
    this.#main.damage({ x: 0, y: 0, width: canvas.width, height: canvas.height });
  }

  /** Repaints the typed line's box (with the last rendered text) and damages it. */
  #paintLine(): void {
    const canvas = this.#main.canvas;
    const { lineBox, lineText } = this.#layout;
    fillRect(canvas, lineBox, FIELD_BACKGROUND);
    strokeRect(canvas, lineBox, FIELD_BORDER);
    const mask = this.#lineMask;
    if (mask !== null && this.#typed !== "") {
      const origin = textOrigin(mask, lineText);
      blendText(canvas, mask, origin.x, origin.y, lineText, TEXT_COLOR);
    }
    this.#main.damage(lineBox);
  }

  /** The typed line changed: renders it (one rendering at a time, always of the latest text), then repaints. */
  #setTyped(text: string): void {
    this.#typed = text.length > MAX_TYPED_LENGTH ? text.slice(0, MAX_TYPED_LENGTH) : text;
    if (this.#rendering) return;
    this.#rendering = true;
    void this.#renderLine();
  }

  async #renderLine(): Promise<void> {
    try {
      for (;;) {
        const text = this.#typed;
        let mask: TextMask | null = null;
        if (text !== "") {
          try {
            mask = await renderText(text, { size: LINE_FONT_SIZE });
          } catch (error) {
            this.#log(`cannot render the typed text: ${(error as Error).message}`);
          }
        }
        if (this.#closing) return;
        if (text !== this.#typed) continue;
        this.#lineMask = mask;
        this.#paintLine();
        this.#main.schedule();
        return;
      }
    } finally {
      this.#rendering = false;
    }
  }

  #drawDot(x: number, y: number): void {
    const rect = dotRect(this.#layout, x, y);
    if (rect === null) return;
    this.#dots.push({ x, y });
    if (this.#dots.length > MAX_DOTS) this.#dots.shift();
    fillRect(this.#main.canvas, rect, DOT_COLOR);
    this.#main.damage(rect);
    this.#main.schedule();
  }

  // --- the popup menu ---------------------------------------------------

  #openMenu(x: number, y: number, serial: number): void {
    this.#closeMenu();
    const surface = this.#compositor.request("create_surface");
    const painted = new PaintedSurface(surface, this.#shm, MENU_WIDTH, MENU_HEIGHT, MENU_BACKGROUND);
    const xdgSurface = this.#wmBase.request("get_xdg_surface", surface);
    const positioner = this.#wmBase.request("create_positioner");
    const { anchor, gravity, constraint_adjustment: adjust } = xdg_positioner.enums;
    positioner.request("set_size", MENU_WIDTH, MENU_HEIGHT);
    const ax = Math.max(0, Math.min(this.#main.width - 1, x));
    const ay = Math.max(0, Math.min(this.#main.height - 1, y));
    positioner.request("set_anchor_rect", ax, ay, 1, 1);
    positioner.request("set_anchor", anchor.top_left);
    positioner.request("set_gravity", gravity.bottom_right);
    positioner.request("set_constraint_adjustment", adjust.slide_x | adjust.slide_y | adjust.flip_x | adjust.flip_y);
    const popup = xdgSurface.request("get_popup", this.#xdgSurface, positioner);
    positioner.request("destroy");
    const menu: Menu = { painted, xdgSurface, popup, hovered: null, configured: false };
    this.#menu = menu;
    popup.on("popup_done", () => this.#closeMenu(menu));
    xdgSurface.on("configure", (configureSerial) => {
      if (this.#menu !== menu) return;
      xdgSurface.request("ack_configure", configureSerial);
      if (!menu.configured) {
        menu.configured = true;
        this.#paintMenu(menu);
      }
      menu.painted.commitNow();
    });
    if (this.#seat !== null) popup.request("grab", this.#seat, serial);
    surface.request("commit");
  }

  #paintMenu(menu: Menu): void {
    const canvas = menu.painted.canvas;
    fillRect(canvas, { x: 0, y: 0, width: MENU_WIDTH, height: MENU_HEIGHT }, MENU_BACKGROUND);
    strokeRect(canvas, { x: 0, y: 0, width: MENU_WIDTH, height: MENU_HEIGHT }, MENU_BORDER);
    for (let i = 0; i < MENU_ITEMS.length; i++) this.#paintMenuItem(menu, i);
    menu.painted.damage({ x: 0, y: 0, width: MENU_WIDTH, height: MENU_HEIGHT });
  }

  #paintMenuItem(menu: Menu, index: number): void {
    const canvas = menu.painted.canvas;
    const item = menuItemRect(index);
    fillRect(canvas, item, menu.hovered === index ? MENU_HOVER : MENU_BACKGROUND);
    const mask = this.#menuMasks[index];
    if (mask !== undefined) {
      const box: Rect = { x: item.x + MENU_LABEL_X, y: item.y, width: item.width - MENU_LABEL_X, height: item.height };
      const origin = textOrigin(mask, box);
      blendText(canvas, mask, origin.x, origin.y, box, TEXT_COLOR);
    }
    menu.painted.damage(item);
  }

  #hover(menu: Menu, index: number | null): void {
    if (menu.hovered === index) return;
    const before = menu.hovered;
    menu.hovered = index;
    if (!menu.configured) return;
    if (before !== null) this.#paintMenuItem(menu, before);
    if (index !== null) this.#paintMenuItem(menu, index);
    menu.painted.schedule();
  }

  #closeMenu(which?: Menu): void {
    const menu = this.#menu;
    if (menu === null || (which !== undefined && which !== menu)) return;
    this.#menu = null;
    if (this.#pointerSurface === menu.painted.surface) this.#pointerSurface = null;
    if (!menu.popup.destroyed) menu.popup.request("destroy");
    if (!menu.xdgSurface.destroyed) menu.xdgSurface.request("destroy");
    menu.painted.destroy();
  }

  #runMenuItem(item: MenuItem, serial: number): void {
    if (item === "Copy") this.#copy(serial);
    else if (item === "Paste") void this.#paste();
    else this.#setTyped("");
  }

  // --- input ------------------------------------------------------------

  #setupPointer(pointer: Proxy<"wl_pointer">): void {
    pointer.on("enter", (_serial, surface, x, y) => {
      this.#pointerSurface = surface;
      this.#pointerMoved(x, y);
    });
    pointer.on("leave", (_serial, surface) => {
      const menu = this.#menu;
      if (menu !== null && surface === menu.painted.surface) this.#hover(menu, null);
      this.#pointerSurface = null;
    });
    pointer.on("motion", (_time, x, y) => this.#pointerMoved(x, y));
    pointer.on("button", (serial, _time, button, state) => {
      if (state !== 1 || this.#closing) return;
      const x = Math.floor(this.#pointerX);
      const y = Math.floor(this.#pointerY);
      const menu = this.#menu;
      const surface = this.#pointerSurface;
      if (menu !== null && surface === menu.painted.surface) {
        if (button !== BTN_LEFT) return;
        const index = menuItemAt(x, y);
        if (index === null) return;
        this.#closeMenu(menu);
        this.#runMenuItem(MENU_ITEMS[index] as MenuItem, serial);
        return;
      }
      if (surface !== this.#main.surface) return;
      if (button === BTN_RIGHT) this.#openMenu(x, y, serial);
      else if (button === BTN_LEFT) {
        // A click outside the open menu only closes it.
        if (menu !== null) this.#closeMenu(menu);
        else this.#drawDot(x, y);
      }
    });
  }

  #pointerMoved(x: number, y: number): void {
    this.#pointerX = x;
    this.#pointerY = y;
    const menu = this.#menu;
    if (menu !== null && this.#pointerSurface === menu.painted.surface) {
      this.#hover(menu, menuItemAt(Math.floor(x), Math.floor(y)));
    }
  }

  #setupKeyboard(keyboard: Proxy<"wl_keyboard">): void {
    // The keymap is not parsed: keys.ts maps codes with the US layout.
    keyboard.on("keymap", (_format, fd) => closeFd(fd));
    keyboard.on("enter", (_serial, _surface, keys) => this.#modifiers.enter(u32s(keys)));
    keyboard.on("leave", () => this.#modifiers.leave());
    keyboard.on("modifiers", (_serial, depressed, latched, locked) =>
      this.#modifiers.modifiers(depressed, latched, locked),
    );
    keyboard.on("key", (serial, _time, code, state) => {
      const pressed = state === 1;
      this.#modifiers.key(code, pressed);
      if (pressed && !this.#closing) this.#keyPressed(code, serial);
    });
  }

  #keyPressed(code: number, serial: number): void {
    const mods = this.#modifiers;
    if (mods.ctrl) {
      // Ctrl+Shift+C/V belong to the Qubes clipboard (guid): left alone here.
      if (mods.shift) return;
      if (code === KEY_C) this.#copy(serial);
      else if (code === KEY_V) void this.#paste();
      return;
    }
    if (code === KEY_BACKSPACE) {
      if (this.#typed !== "") this.#setTyped(Array.from(this.#typed).slice(0, -1).join(""));
    } else if (code === KEY_ENTER || code === KEY_KPENTER) {
      if (this.#typed !== "") this.#setTyped("");
    } else if (code === KEY_ESC) {
      this.#closeMenu();
    } else {
      const char = characterOf(code, mods.shift, mods.capsLock);
      if (char !== null && this.#typed.length < MAX_TYPED_LENGTH) this.#setTyped(this.#typed + char);
    }
  }

  // --- the clipboard ----------------------------------------------------

  #setupDataDevice(device: Proxy<"wl_data_device">): void {
    this.#dataDevice = device;
    device.on("data_offer", (offer) => {
      const types: string[] = [];
      offer.data = types;
      offer.on("offer", (mimeType) => {
        if (types.length < 64) types.push(mimeType);
      });
    });
    device.on("selection", (offer) => {
      const old = this.#offer;
      this.#offer = offer;
      if (old !== null && old !== offer && !old.destroyed) old.request("destroy");
    });
  }

  /** Makes the typed line the selection, with the serial of the input event that asked for it. */
  #copy(serial: number): void {
    const manager = this.#dataManager;
    const device = this.#dataDevice;
    if (manager === null || device === null) {
      this.#log("cannot copy: the compositor has no clipboard");
      return;
    }
    const bytes = new Uint8Array(Buffer.from(this.#typed, "utf8"));
    const source = manager.request("create_data_source");
    for (const type of TEXT_MIME_TYPES) source.request("offer", type);
    source.on("send", (mimeType, fd) => {
      if ((TEXT_MIME_TYPES as readonly string[]).includes(mimeType)) void writePipe(fd, bytes);
      else closeFd(fd);
    });
    source.on("cancelled", () => {
      if (this.#source === source) this.#source = null;
      if (!source.destroyed) source.request("destroy");
    });
    this.#source = source;
    device.request("set_selection", source, serial);
  }

  /** Appends the selection's text (at most {@link PASTE_LIMIT} bytes) to the typed line. */
  async #paste(): Promise<void> {
    const offer = this.#offer;
    if (offer === null || offer.destroyed) return;
    const types = (offer.data as string[] | undefined) ?? [];
    const mimeType = [...TEXT_MIME_TYPES, ...LEGACY_TEXT_TYPES].find((type) => types.includes(type));
    if (mimeType === undefined) return;
    const { readFd, writeFd } = createPipe();
    try {
      offer.request("receive", mimeType, writeFd);
    } finally {
      closeFd(writeFd);
    }
    this.#connection.flush();
    const { data, truncated } = await readPipe(readFd, PASTE_LIMIT, PASTE_TIMEOUT_MS);
    if (this.#closing) return;
    let text = new TextDecoder("utf-8").decode(data);
    // A cut in the middle of a character leaves a replacement character at the end.
    if (truncated) text = text.replace(/\uFFFD$/, "");
    const pasted = sanitizePasted(text);
    if (pasted !== "") this.#setTyped(this.#typed + pasted);
  }
}
