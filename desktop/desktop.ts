/**
 * qubes-gui-desktop's compositor side: the apps' windows (guid's, on the GUI
 * domain) on one output, stacked, focused by a click, moved by their title
 * bar or an app's xdg_toplevel.move, closed by their title bar's button, and
 * composed into one BGRX output buffer that the viewer (viewer.ts) shows in
 * a browser. It implements both halves of viewer-api.ts.
 *
 * Composition: each window's latest commit is held (as any compositor holds
 * the buffer it shows, until the app commits a new one), so the output can
 * be recomposed from the apps' own pools whenever anything moves. Damage in
 * output coordinates collects until the end of the turn, then one pass
 * redraws exactly the damaged rectangles, bottom window first (from the
 * topmost opaque layer that covers a rectangle whole): each pixel an
 * app committed is copied at most once per output frame, straight from its
 * pool into the output. The apps' frame callbacks are released after the
 * pass, so they are paced by the output.
 *
 * Title bars are drawn here, by the desktop, never by an app: a toplevel's
 * bar holds its title (guid's `[name] title`) and a close button; popups
 * have none.
 */
import type { Logger } from "pino";
import sharp from "sharp";

import {
  clampOutputSize,
  coalesceDamage,
  copyPixelRows,
  createCompositor,
  intersect,
  isEmpty,
  type Compositor,
  type CommitHold,
  type Keymap,
  type Rect,
  type ShellWindow,
  type Size,
} from "../compositor/index.ts";
import { Signal } from "../wayland/index.ts";
import type { ViewerInput, ViewerOutput } from "./viewer-api.ts";

/** Height of a toplevel's title bar, in pixels. */
export const TITLE_BAR_HEIGHT = 24;
/** Width of the close button at the right end of a title bar. */
const CLOSE_BUTTON_WIDTH = 28;
/** The output's colour where no window is, a dark slate (0xRRGGBB, as every colour here: a BGRX word). */
const BACKGROUND = 0x202830;
/** Title bar colours (0xRRGGBB): the focused window's and the others'. */
const BAR_FOCUSED = 0x3c4650;
const BAR_UNFOCUSED = 0x2a3038;
const BAR_TEXT = 0xeeeeec;
/** Where the next new toplevel goes: each one cascades by this step from the previous. */
const CASCADE_ORIGIN = { x: 32, y: 32 + TITLE_BAR_HEIGHT };
const CASCADE_STEP = 36;
const BTN_LEFT = 0x110;

export interface DesktopOptions {
  /** The Wayland socket: a name in XDG_RUNTIME_DIR or an absolute path. */
  socket: string;
  /** The output's size (clamped to 640×480 .. 16384×6144). */
  size: Size;
  keymap: Keymap;
  log: Logger;
}

/** A shown window: a toplevel with its bar, or a popup placed from its parent. */
interface Placed {
  readonly shell: ShellWindow;
  /** Output position of the window's (0, 0): a toplevel's own; a popup's follows its parent. */
  x: number;
  y: number;
  hold: CommitHold | null;
  /** The output rectangle drawn for it the last time (its bar included), for the damage when it goes. */
  drawn: Rect | null;
  /** A toplevel's title bar pixels (BGRX, width × TITLE_BAR_HEIGHT), or null until drawn. */
  bar: { width: number; focused: boolean; title: string; pixels: Buffer } | null;
  /** The commit time (hrtime ns) of the oldest commit not composed yet. */
  pendingCommitNs: bigint | null;
  /** It committed since the last pass: frameDone after the next one. */
  committed: boolean;
}

/** What the pointer is on: a window's content, a title bar (its close button or the rest), or nothing. */
type Target = { kind: "window"; placed: Placed } | { kind: "bar"; placed: Placed; close: boolean } | { kind: "none" };

export class Desktop implements ViewerOutput, ViewerInput {
  readonly width: number;
  readonly height: number;
  readonly pixels: Buffer;
  readonly events = {
    frame: new Signal<{ damage: readonly Rect[]; commitTimeNs: bigint | null }>(),
    cursor: new Signal<string>(),
  };
  readonly compositor: Compositor;
  readonly #log: Logger;
  /** Toplevels, bottom first. */
  readonly #stack: Placed[] = [];
  readonly #placed = new Map<ShellWindow, Placed>();
  #damage: Rect[] = [];
  #passScheduled = false;
  #cascade = 0;
  #pointer = { x: 0, y: 0 };
  #buttons = new Set<number>();
  /** The window a button press went to, which keeps the pointer until every button is up (the implicit grab). */
  #grab: Placed | null = null;
  #move: { placed: Placed; dx: number; dy: number } | null = null;
  #focused: Placed | null = null;
  #cursor = "default";
  #destroyed = false;

  constructor(options: DesktopOptions) {
    this.#log = options.log;
    this.compositor = createCompositor({
      socket: options.socket,
      outputSize: options.size,
      keymap: options.keymap,
      onHandlerError: ({ pid, request, error }) =>
        this.#log.error({ pid, request, err: error }, "a request handler failed; the app was disconnected"),
      onClientEnded: ({ pid, code, reason }) => this.#log.warn({ pid, code, reason }, "app ended by the desktop"),
    });
    const size = clampOutputSize(options.size);
    this.width = size.width;
    this.height = size.height;
    this.pixels = Buffer.alloc(this.width * this.height * 4);
    this.pixels.fill(0);
    new Uint32Array(this.pixels.buffer, this.pixels.byteOffset, this.width * this.height).fill(BACKGROUND);
    for (const shell of this.compositor.windows) this.#adopt(shell);
    this.compositor.events.newWindow.add((shell) => this.#adopt(shell));
    this.compositor.seat.events.cursor.add(({ name }) => this.#setCursor(name === null ? "none" : name));
  }

  /** The socket apps connect to. */
  get socketPath(): string {
    return this.compositor.socketPath;
  }

  /**
   * What is on the output now, bottom first (each toplevel followed by its
   * popups), with each window's content rectangle on the output (its title
   * bar is the TITLE_BAR_HEIGHT rows above a toplevel's): for tests and tools.
   */
  get shown(): Array<{ window: ShellWindow; kind: "toplevel" | "popup"; rect: Rect }> {
    return this.#drawList().map((placed) => ({
      window: placed.shell,
      kind: placed.shell.kind,
      rect: this.#contentRect(placed),
    }));
  }

  destroy(): void {
    if (this.#destroyed) return;
    this.#destroyed = true;
    for (const placed of this.#placed.values()) placed.hold?.release();
    this.compositor.destroy();
  }

  // ---- windows

  #adopt(shell: ShellWindow): void {
    const placed: Placed = {
      shell,
      x: 0,
      y: 0,
      hold: null,
      drawn: null,
      bar: null,
      pendingCommitNs: null,
      committed: false,
    };
    this.#placed.set(shell, placed);
    const { events } = shell;
    events.map.add(() => this.#mapped(placed));
    events.unmap.add(() => this.#hide(placed));
    events.destroy.add(() => {
      this.#hide(placed);
      this.#placed.delete(shell);
    });
    events.commit.add((commit) => {
      const now = process.hrtime.bigint();
      placed.hold = commit.hold();
      placed.pendingCommitNs ??= now;
      placed.committed = true;
      if (commit.resized && shell.kind === "toplevel") this.#redrawBar(placed);
      if (commit.resized || placed.drawn === null) {
        this.#damageWindow(placed);
      } else {
        for (const rect of commit.damage) this.#addDamage({ ...rect, x: rect.x + placed.x, y: rect.y + placed.y });
      }
    });
    events.title.add(() => this.#redrawBar(placed));
    events.reposition.add(() => {
      this.#damageWindow(placed);
      this.#placePopup(placed);
      this.#damageWindow(placed);
    });
    events.request.add((request) => {
      if (request.kind === "move" && shell.kind === "toplevel" && this.#buttons.size > 0) this.#startMove(placed);
      else if (request.kind === "maximize" || request.kind === "fullscreen") this.#maximize(placed, request.on);
    });
  }

  #mapped(placed: Placed): void {
    const { shell } = placed;
    if (shell.kind === "toplevel") {
      if (!this.#stack.includes(placed)) {
        // Eight places down and right from the top-left corner, then the first again.
        const step = this.#cascade++ % 8;
        placed.x = CASCADE_ORIGIN.x + step * CASCADE_STEP;
        placed.y = CASCADE_ORIGIN.y + step * CASCADE_STEP;
        this.#stack.push(placed);
        this.#log.info(
          { title: shell.title, appId: shell.appId, pid: shell.pid, x: placed.x, y: placed.y, ...shell.size },
          "window shown",
        );
      }
      shell.placeOnScreen(placed.x, placed.y);
      this.#redrawBar(placed);
      this.#focus(placed);
    } else {
      this.#placePopup(placed);
    }
    this.#damageWindow(placed);
  }

  /** Unmapped or destroyed: its pixels and its place go; the focus passes to the window below. */
  #hide(placed: Placed): void {
    if (placed.drawn !== null) this.#addDamage(placed.drawn);
    placed.drawn = null;
    placed.hold?.release();
    placed.hold = null;
    const at = this.#stack.indexOf(placed);
    if (at >= 0) this.#stack.splice(at, 1);
    if (this.#grab === placed) this.#grab = null;
    if (this.#move?.placed === placed) this.#move = null;
    if (this.#focused === placed) {
      this.#focused = null;
      const next = this.#stack.at(-1);
      if (next !== undefined) this.#focus(next);
      else this.compositor.seat.focus(null);
    }
  }

  #placePopup(placed: Placed): void {
    const { shell } = placed;
    const parent = shell.parent === null ? undefined : this.#placed.get(shell.parent);
    const rect = shell.popupRect;
    if (parent === undefined || rect === null) return;
    placed.x = parent.x + rect.x;
    placed.y = parent.y + rect.y;
    shell.placeOnScreen(placed.x, placed.y);
  }

  /** Raises a toplevel and gives it the keyboard; its bar and the previous one's show the change. */
  #focus(placed: Placed): void {
    const top = this.#stack.at(-1);
    if (top !== placed) {
      const at = this.#stack.indexOf(placed);
      if (at >= 0) {
        this.#stack.splice(at, 1);
        this.#stack.push(placed);
        this.#damageWindow(placed);
      }
    }
    if (this.#focused === placed) return;
    const previous = this.#focused;
    this.#focused = placed;
    this.compositor.seat.focus(placed.shell);
    placed.shell.configure({ width: 0, height: 0 }, { activated: true });
    this.#redrawBar(placed);
    if (previous !== null && previous.shell.mapped) {
      previous.shell.configure({ width: 0, height: 0 }, { activated: false });
      this.#redrawBar(previous);
    }
  }

  #maximize(placed: Placed, on: boolean): void {
    if (placed.shell.kind !== "toplevel") return;
    if (on) {
      this.#moveTo(placed, 0, TITLE_BAR_HEIGHT);
      placed.shell.configure({ width: this.width, height: this.height - TITLE_BAR_HEIGHT }, { maximized: true });
    } else {
      placed.shell.configure({ width: 0, height: 0 }, {});
    }
  }

  #startMove(placed: Placed): void {
    this.#move = { placed, dx: this.#pointer.x - placed.x, dy: this.#pointer.y - placed.y };
  }

  /** Moves a toplevel (its popups follow), kept so that some of its bar stays on the output. */
  #moveTo(placed: Placed, x: number, y: number): void {
    const size = placed.shell.size;
    const nx = Math.max(-size.width + 48, Math.min(this.width - 48, Math.round(x)));
    const ny = Math.max(TITLE_BAR_HEIGHT, Math.min(this.height - 8, Math.round(y)));
    if (nx === placed.x && ny === placed.y) return;
    this.#damageWindow(placed);
    placed.x = nx;
    placed.y = ny;
    placed.shell.placeOnScreen(nx, ny);
    this.#damageWindow(placed);
    for (const popup of this.#popupsOf(placed)) {
      this.#damageWindow(popup);
      this.#placePopup(popup);
      this.#damageWindow(popup);
    }
  }

  /** The shown popups whose chain leads to `root`, in creation order. */
  #popupsOf(root: Placed): Placed[] {
    const out: Placed[] = [];
    for (const placed of this.#placed.values()) {
      if (placed.shell.kind !== "popup" || !placed.shell.mapped) continue;
      let parent = placed.shell.parent;
      while (parent !== null && parent.kind === "popup") parent = parent.parent;
      if (parent === root.shell) out.push(placed);
    }
    return out;
  }

  #contentRect(placed: Placed): Rect {
    const { width, height } = placed.shell.size;
    return { x: placed.x, y: placed.y, width, height };
  }

  #barRect(placed: Placed): Rect {
    return { x: placed.x, y: placed.y - TITLE_BAR_HEIGHT, width: placed.shell.size.width, height: TITLE_BAR_HEIGHT };
  }

  /** Everything drawn for the window: its content, and a toplevel's bar. */
  #windowRect(placed: Placed): Rect {
    const content = this.#contentRect(placed);
    if (placed.shell.kind !== "toplevel") return content;
    return { ...content, y: content.y - TITLE_BAR_HEIGHT, height: content.height + TITLE_BAR_HEIGHT };
  }

  #damageWindow(placed: Placed): void {
    if (placed.drawn !== null) this.#addDamage(placed.drawn);
    if (placed.shell.mapped) this.#addDamage(this.#windowRect(placed));
  }

  // ---- title bars

  /** Draws the bar (colour and close button) at once, and its title text when sharp has rendered it. */
  #redrawBar(placed: Placed): void {
    if (placed.shell.kind !== "toplevel") return;
    const width = placed.shell.size.width;
    const focused = this.#focused === placed;
    const title = placed.shell.title;
    if (width <= 0) return;
    if (
      placed.bar !== null &&
      placed.bar.width === width &&
      placed.bar.focused === focused &&
      placed.bar.title === title
    )
      return;
    const pixels = Buffer.alloc(width * TITLE_BAR_HEIGHT * 4);
    const words = new Uint32Array(pixels.buffer, pixels.byteOffset, width * TITLE_BAR_HEIGHT);
    words.fill(focused ? BAR_FOCUSED : BAR_UNFOCUSED);
    drawCloseButton(words, width);
    const bar = { width, focused, title, pixels };
    placed.bar = bar;
    this.#addDamage(this.#barRect(placed));
    renderTitle(title, Math.max(0, width - CLOSE_BUTTON_WIDTH - 8)).then(
      (text) => {
        if (placed.bar !== bar || text === null || this.#destroyed) return;
        blendText(words, width, text, 8, Math.floor((TITLE_BAR_HEIGHT - text.height) / 2));
        if (placed.shell.mapped) this.#addDamage(this.#barRect(placed));
      },
      (error: unknown) => this.#log.warn({ err: error }, "title text not drawn"),
    );
  }

  // ---- composition

  #addDamage(rect: Rect): void {
    const clipped = intersect(rect, { x: 0, y: 0, width: this.width, height: this.height });
    if (isEmpty(clipped) || this.#destroyed) return;
    this.#damage.push(clipped);
    if (!this.#passScheduled) {
      this.#passScheduled = true;
      setImmediate(() => this.#compose());
    }
  }

  /** One output frame: every damaged rectangle redrawn bottom up, then the frame announced and the apps' callbacks released. */
  #compose(): void {
    this.#passScheduled = false;
    if (this.#destroyed) return;
    const damage = coalesceDamage(this.#damage, { x: 0, y: 0, width: this.width, height: this.height });
    this.#damage = [];
    if (damage.length === 0) return;
    let commitTimeNs: bigint | null = null;
    const words = new Uint32Array(this.pixels.buffer, this.pixels.byteOffset, this.width * this.height);
    const drawList = this.#drawList();
    for (const rect of damage) this.#paint(rect, drawList, words);
    for (const placed of drawList) {
      placed.drawn = this.#windowRect(placed);
      if (placed.pendingCommitNs !== null && (commitTimeNs === null || placed.pendingCommitNs < commitTimeNs)) {
        commitTimeNs = placed.pendingCommitNs;
      }
      placed.pendingCommitNs = null;
    }
    // The apps' pixels are in the output now: their next frames may come (the viewer reads the output, not them).
    for (const placed of this.#placed.values()) {
      if (!placed.committed) continue;
      placed.committed = false;
      placed.shell.frameDone();
    }
    this.events.frame.emit({ damage, commitTimeNs });
  }

  /** The shown windows in drawing order: each toplevel, bottom first, then its popups (one pass over the windows). */
  #drawList(): Placed[] {
    const popups = new Map<ShellWindow, Placed[]>();
    for (const placed of this.#placed.values()) {
      if (placed.shell.kind !== "popup" || !placed.shell.mapped) continue;
      let root = placed.shell.parent;
      while (root !== null && root.kind === "popup") root = root.parent;
      if (root === null) continue;
      const list = popups.get(root);
      if (list === undefined) popups.set(root, [placed]);
      else list.push(placed);
    }
    const list: Placed[] = [];
    for (const placed of this.#stack) {
      if (!placed.shell.mapped) continue;
      list.push(placed);
      for (const popup of popups.get(placed.shell) ?? []) list.push(popup);
    }
    return list;
  }

  /**
   * What is drawn inside the output rectangle `clip`, bottom first: title
   * bars and the windows' layers, each clipped to `clip`. Only the topmost
   * opaque one that covers all of `clip` and those above it are drawn (the
   * rest would be painted over): a full update of a window's content is one
   * copy, whatever lies under it.
   */
  #paint(clip: Rect, drawList: readonly Placed[], words: Uint32Array): void {
    const parts: Array<{ area: Rect; opaque: boolean; draw: (area: Rect) => void }> = [];
    for (const placed of drawList) {
      // Most windows miss most rectangles: rule them out before any work.
      const top = placed.shell.kind === "toplevel" ? placed.y - TITLE_BAR_HEIGHT : placed.y;
      const { width, height } = placed.shell.size;
      if (
        placed.x >= clip.x + clip.width ||
        top >= clip.y + clip.height ||
        placed.x + width <= clip.x ||
        placed.y + height <= clip.y
      ) {
        continue;
      }
      const barPixels = placed.bar;
      if (barPixels !== null && placed.shell.kind === "toplevel") {
        const bar = this.#barRect(placed);
        const area = intersect(intersect(bar, clip), { ...bar, width: barPixels.width });
        if (!isEmpty(area)) {
          parts.push({
            area,
            opaque: true,
            draw: (part) => {
              copyPixelRows(
                {
                  bytes: barPixels.pixels,
                  offset: (part.y - bar.y) * barPixels.width * 4 + (part.x - bar.x) * 4,
                  stride: barPixels.width * 4,
                },
                { bytes: this.pixels, offset: (part.y * this.width + part.x) * 4, stride: this.width * 4 },
                part.width * 4,
                part.height,
              );
            },
          });
        }
      }
      const content = intersect(this.#contentRect(placed), clip);
      if (isEmpty(content)) continue;
      for (const layer of placed.hold?.layers() ?? []) {
        const source = layer.pixels;
        const originX = placed.x + layer.x;
        const originY = placed.y + layer.y;
        const area = intersect(content, { x: originX, y: originY, width: source.width, height: source.height });
        if (isEmpty(area)) continue;
        parts.push({
          area,
          opaque: !source.hasAlpha,
          draw: (part) => {
            const sourceX = part.x - originX;
            const sourceY = part.y - originY;
            const bytes = source.rows(sourceY, part.height, sourceX, part.width);
            if (source.hasAlpha) {
              blendPremultiplied(bytes, source.stride, sourceX, sourceY, words, this.width, part);
              return;
            }
            // One native call: a memmove per row, straight from the app's pool into the output.
            copyPixelRows(
              { bytes, offset: sourceY * source.stride + sourceX * 4, stride: source.stride },
              { bytes: this.pixels, offset: (part.y * this.width + part.x) * 4, stride: this.width * 4 },
              part.width * 4,
              part.height,
            );
          },
        });
      }
    }
    let first = parts.length - 1;
    while (first >= 0) {
      const part = parts[first] as (typeof parts)[number];
      if (part.opaque && part.area.width === clip.width && part.area.height === clip.height) break;
      first--;
    }
    if (first < 0) {
      for (let y = clip.y; y < clip.y + clip.height; y++) {
        words.fill(BACKGROUND, y * this.width + clip.x, y * this.width + clip.x + clip.width);
      }
      first = 0;
    }
    for (let i = first; i < parts.length; i++) {
      const part = parts[i] as (typeof parts)[number];
      part.draw(part.area);
    }
  }

  // ---- input (ViewerInput)

  pointerMove(x: number, y: number): void {
    this.#pointer = { x: clampInt(x, 0, this.width - 1), y: clampInt(y, 0, this.height - 1) };
    const move = this.#move;
    if (move !== null) {
      this.#moveTo(move.placed, this.#pointer.x - move.dx, this.#pointer.y - move.dy);
      return;
    }
    const target =
      this.#grab !== null ? { kind: "window" as const, placed: this.#grab } : this.#targetAt(this.#pointer);
    if (target.kind === "window") {
      this.compositor.seat.pointerMove(
        target.placed.shell,
        this.#pointer.x - target.placed.x,
        this.#pointer.y - target.placed.y,
      );
    } else {
      this.compositor.seat.pointerLeave();
      this.#setCursor("default");
    }
  }

  pointerLeave(): void {
    if (this.#buttons.size > 0) return;
    this.compositor.seat.pointerLeave();
  }

  pointerButton(code: number, pressed: boolean): void {
    if (!Number.isInteger(code) || code < 0 || code > 0xffff) return;
    if (pressed) {
      if (this.#buttons.has(code)) return;
      this.#buttons.add(code);
      if (this.#buttons.size > 1) {
        this.compositor.seat.pointerButton(code, true);
        return;
      }
      const target = this.#targetAt(this.#pointer);
      if (target.kind === "none") {
        this.compositor.seat.pointerButton(code, true);
        return;
      }
      const root = this.#rootOf(target.placed);
      if (root !== null) this.#focus(root);
      if (target.kind === "bar") {
        if (code !== BTN_LEFT) return;
        if (target.close) target.placed.shell.close();
        else this.#startMove(target.placed);
        return;
      }
      this.#grab = target.placed;
      this.compositor.seat.pointerButton(code, true);
      return;
    }
    if (!this.#buttons.delete(code)) return;
    const grabbed = this.#grab;
    if (this.#buttons.size === 0) {
      this.#grab = null;
      this.#move = null;
    }
    if (grabbed !== null || this.#move === null) this.compositor.seat.pointerButton(code, false);
    if (this.#buttons.size === 0) this.pointerMove(this.#pointer.x, this.#pointer.y);
  }

  pointerAxis(axis: 0 | 1, discrete: number): void {
    this.compositor.seat.pointerAxis(axis, discrete);
  }

  key(code: number, pressed: boolean): void {
    if (!Number.isInteger(code) || code < 0 || code > 0x2ff) return;
    this.compositor.seat.key(code, pressed);
  }

  releaseAll(): void {
    for (const code of [...this.compositor.seat.pressedKeys]) this.compositor.seat.key(code, false);
    for (const code of [...this.#buttons]) this.pointerButton(code, false);
    this.#move = null;
  }

  #rootOf(placed: Placed): Placed | null {
    let shell: ShellWindow | null = placed.shell;
    while (shell !== null && shell.kind === "popup") shell = shell.parent;
    return shell === null ? null : (this.#placed.get(shell) ?? null);
  }

  /** What is at output point `point`: the topmost popup or window content, or a title bar. */
  #targetAt(point: { x: number; y: number }): Target {
    const inside = (rect: Rect): boolean =>
      point.x >= rect.x && point.y >= rect.y && point.x < rect.x + rect.width && point.y < rect.y + rect.height;
    for (let i = this.#stack.length - 1; i >= 0; i--) {
      const placed = this.#stack[i] as Placed;
      if (!placed.shell.mapped) continue;
      const popups = this.#popupsOf(placed);
      for (let j = popups.length - 1; j >= 0; j--) {
        const popup = popups[j] as Placed;
        if (inside(this.#contentRect(popup))) return { kind: "window", placed: popup };
      }
      if (inside(this.#contentRect(placed))) return { kind: "window", placed };
      const bar = this.#barRect(placed);
      if (inside(bar)) return { kind: "bar", placed, close: point.x >= bar.x + bar.width - CLOSE_BUTTON_WIDTH };
    }
    return { kind: "none" };
  }

  #setCursor(name: string): void {
    if (name === this.#cursor) return;
    this.#cursor = name;
    this.events.cursor.emit(name);
  }
}

function clampInt(value: number, min: number, max: number): number {
  return Number.isFinite(value) ? Math.max(min, Math.min(max, Math.round(value))) : min;
}

/** Blends a premultiplied ARGB8888 block (BGRA bytes) over the output's BGRX words. */
function blendPremultiplied(
  source: Uint8Array,
  stride: number,
  sourceX: number,
  sourceY: number,
  target: Uint32Array,
  targetWidth: number,
  area: Rect,
): void {
  for (let row = 0; row < area.height; row++) {
    let from = (sourceY + row) * stride + sourceX * 4;
    let to = (area.y + row) * targetWidth + area.x;
    for (let column = 0; column < area.width; column++, from += 4, to++) {
      const alpha = source[from + 3] as number;
      if (alpha === 255) {
        target[to] =
          (source[from] as number) | ((source[from + 1] as number) << 8) | ((source[from + 2] as number) << 16);
        continue;
      }
      if (alpha === 0) continue;
      const under = target[to] as number;
      const keep = 255 - alpha;
      const b = (source[from] as number) + (((under & 0xff) * keep) >> 8);
      const g = (source[from + 1] as number) + ((((under >> 8) & 0xff) * keep) >> 8);
      const r = (source[from + 2] as number) + ((((under >> 16) & 0xff) * keep) >> 8);
      target[to] = Math.min(b, 255) | (Math.min(g, 255) << 8) | (Math.min(r, 255) << 16);
    }
  }
}

/** The close button: a light × centred in the bar's right end. */
function drawCloseButton(words: Uint32Array, width: number): void {
  const left = width - CLOSE_BUTTON_WIDTH;
  if (left < 0) return;
  const size = 10;
  const x0 = left + Math.floor((CLOSE_BUTTON_WIDTH - size) / 2);
  const y0 = Math.floor((TITLE_BAR_HEIGHT - size) / 2);
  for (let i = 0; i < size; i++) {
    for (const dx of [0, 1]) {
      words[(y0 + i) * width + x0 + i + dx] = BAR_TEXT;
      words[(y0 + i) * width + x0 + size - 1 - i + dx] = BAR_TEXT;
    }
  }
}

interface TextBitmap {
  width: number;
  height: number;
  /** RGBA, width × height × 4. */
  rgba: Buffer;
}

const XML_ESCAPES: Readonly<Record<string, string>> = {
  "&": "&amp;",
  "<": "&lt;",
  ">": "&gt;",
  '"': "&quot;",
  "'": "&apos;",
};

/** A title rasterised by sharp (librsvg): light text, alpha-only, at most `maxWidth` wide; null when nothing fits. */
async function renderTitle(title: string, maxWidth: number): Promise<TextBitmap | null> {
  if (title === "" || maxWidth < 8) return null;
  // Control characters are not drawn; the length is capped before layout.
  const text = [...title]
    .slice(0, 200)
    .map((c) => ((c.codePointAt(0) as number) < 0x20 || c === "\u007f" ? " " : c))
    .join("");
  const escaped = text.replace(/[&<>"']/g, (c) => XML_ESCAPES[c] as string);
  const height = 16;
  const svg =
    `<svg xmlns="http://www.w3.org/2000/svg" width="${maxWidth}" height="${height}">` +
    `<text x="0" y="12" font-family="DejaVu Sans, sans-serif" font-size="12" fill="#${BAR_TEXT.toString(16)}">${escaped}</text></svg>`;
  const { data, info } = await sharp(Buffer.from(svg)).ensureAlpha().raw().toBuffer({ resolveWithObject: true });
  return { width: info.width, height: info.height, rgba: data };
}

/** Blends straight-alpha RGBA text onto BGRX words at (x, y). */
function blendText(words: Uint32Array, width: number, text: TextBitmap, x: number, y: number): void {
  const height = words.length / width;
  for (let row = 0; row < text.height; row++) {
    const ty = y + row;
    if (ty < 0 || ty >= height) continue;
    for (let column = 0; column < text.width; column++) {
      const tx = x + column;
      if (tx >= width) break;
      const from = (row * text.width + column) * 4;
      const alpha = text.rgba[from + 3] as number;
      if (alpha === 0) continue;
      const under = words[ty * width + tx] as number;
      const mix = (channel: number, shift: number): number =>
        ((channel * alpha + ((under >> shift) & 0xff) * (255 - alpha)) / 255) & 0xff;
      words[ty * width + tx] =
        mix(text.rgba[from + 2] as number, 0) |
        (mix(text.rgba[from + 1] as number, 8) << 8) |
        (mix(text.rgba[from] as number, 16) << 16);
    }
  }
}
