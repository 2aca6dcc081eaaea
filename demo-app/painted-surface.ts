/**
 * A wl_surface the demo app paints in software: the app draws into one
 * {@link Canvas} (the truth), and each commit copies into a free XRGB8888
 * shm buffer only the rectangles that buffer missed since it was last
 * shown, then damages (wl_surface.damage_buffer) only what changed since the
 * previous commit. Two buffers in turn; a third is made only while the
 * compositor holds both (sway with pixman releases late). Commits are paced
 * by frame callbacks: changes made while a frame is pending go out together
 * at its done event.
 */
import { ClientShmPool, SHM_FORMAT_XRGB8888, type Proxy } from "../wayland/index.ts";

import { union, intersect, type Rect } from "./layout.ts";
import { createCanvas, type Canvas } from "./text.ts";

/** Buffers made at most for one size (two in turn, a third while the compositor holds both). */
const MAX_BUFFERS = 3;
/** Above this many damage rectangles, their bounding box is sent instead. */
const MAX_DAMAGE_RECTS = 16;

interface Slot {
  readonly pool: ClientShmPool;
  readonly proxy: Proxy<"wl_buffer">;
  readonly pixels: Uint32Array;
  busy: boolean;
  /** Retired (an old size): destroyed once the compositor releases it. */
  retired: boolean;
  /** Where this buffer differs from the canvas; null: everywhere. */
  stale: Rect[] | null;
}

/** Adds `rect` to a damage list, collapsing a long list into its bounding box. */
function addDamage(list: Rect[], rect: Rect): void {
  list.push(rect);
  if (list.length > MAX_DAMAGE_RECTS) {
    const box = list.reduce(union);
    list.length = 0;
    list.push(box);
  }
}

/** A surface with its canvas, buffers and frame pacing. */
export class PaintedSurface {
  /** The surface (its role is the caller's business). */
  readonly surface: Proxy<"wl_surface">;
  /** What the surface should show: draw here, then {@link damage} and {@link schedule}. */
  canvas: Canvas;
  /** Commits made so far. */
  commits = 0;
  readonly #shm: Proxy<"wl_shm">;
  #slots: Slot[] = [];
  /** Damage since the last commit; null: the whole surface (new size). */
  #damage: Rect[] | null = null;
  #framePending = false;
  #scheduled = false;
  /** The next commit must go out even without damage (a configure was acked). */
  #mustCommit = false;
  #destroyed = false;
  /** Called after each commit. */
  onCommit: (() => void) | null = null;

  constructor(surface: Proxy<"wl_surface">, shm: Proxy<"wl_shm">, width: number, height: number, color: number) {
    this.surface = surface;
    this.#shm = shm;
    this.canvas = createCanvas(width, height, color);
  }

  get width(): number {
    return this.canvas.width;
  }

  get height(): number {
    return this.canvas.height;
  }

  /** A new size: a fresh canvas filled with `color` (the caller repaints it); the next commit damages everything. */
  resize(width: number, height: number, color: number): void {
    this.canvas = createCanvas(width, height, color);
    for (const slot of this.#slots) this.#retire(slot);
    this.#slots = [];
    this.#damage = null;
  }

  /** Marks `rect` of the canvas as changed. */
  damage(rect: Rect): void {
    const clipped = intersect(rect, { x: 0, y: 0, width: this.width, height: this.height });
    if (clipped === null) return;
    if (this.#damage !== null) addDamage(this.#damage, clipped);
    for (const slot of this.#slots) if (slot.stale !== null) addDamage(slot.stale, clipped);
  }

  /** Commits the changes at the next frame callback (or at once when none is pending). */
  schedule(): void {
    if (this.#scheduled || this.#destroyed) return;
    this.#scheduled = true;
    setImmediate(() => {
      this.#scheduled = false;
      this.#commitIfReady();
    });
  }

  /**
   * Commits now, without waiting for a pending frame callback: after an
   * ack_configure, whose size the next commit must carry. False when every
   * buffer is held (the commit goes out at the next release).
   */
  commitNow(): boolean {
    this.#mustCommit = true;
    return this.#commit();
  }

  /** Destroys the buffers and the surface. */
  destroy(): void {
    if (this.#destroyed) return;
    this.#destroyed = true;
    for (const slot of this.#slots) {
      if (!slot.proxy.destroyed) slot.proxy.request("destroy");
      slot.pool.destroy();
    }
    this.#slots = [];
    if (!this.surface.destroyed) this.surface.request("destroy");
  }

  #commitIfReady(): void {
    if (this.#destroyed || this.#framePending) return;
    if (!this.#mustCommit && this.#damage !== null && this.#damage.length === 0) return;
    this.#commit();
  }

  #commit(): boolean {
    if (this.#destroyed) return false;
    const slot = this.#freeSlot();
    if (slot === null) return false;
    const { width, height, pixels } = this.canvas;
    if (slot.stale === null) slot.pixels.set(pixels);
    else {
      for (const r of slot.stale) {
        for (let y = r.y; y < r.y + r.height; y++) {
          const start = y * width + r.x;
          slot.pixels.set(pixels.subarray(start, start + r.width), start);
        }
      }
    }
    slot.stale = [];
    slot.busy = true;
    this.surface.request("attach", slot.proxy, 0, 0);
    for (const r of this.#damage ?? [{ x: 0, y: 0, width, height }]) {
      this.surface.request("damage_buffer", r.x, r.y, r.width, r.height);
    }
    this.#damage = [];
    this.#mustCommit = false;
    this.#framePending = true;
    const callback = this.surface.request("frame");
    callback.on("done", () => {
      callback.destroy();
      this.#framePending = false;
      this.#commitIfReady();
    });
    this.surface.request("commit");
    this.surface.connection.flush();
    this.commits++;
    this.onCommit?.();
    return true;
  }

  #freeSlot(): Slot | null {
    const free = this.#slots.find((slot) => !slot.busy);
    if (free !== undefined) return free;
    if (this.#slots.length >= MAX_BUFFERS) return null;
    const { width, height } = this.canvas;
    const pool = new ClientShmPool(this.#shm, width * height * 4);
    const { proxy, bytes } = pool.createBuffer(0, width, height, width * 4, SHM_FORMAT_XRGB8888);
    const slot: Slot = {
      pool,
      proxy,
      pixels: new Uint32Array(bytes.buffer, bytes.byteOffset, width * height),
      busy: false,
      retired: false,
      stale: null,
    };
    proxy.on("release", () => {
      slot.busy = false;
      if (slot.retired) this.#retire(slot);
      // A commit that found every buffer held goes out now.
      else if (this.#mustCommit) this.#commit();
      else this.#commitIfReady();
    });
    this.#slots.push(slot);
    return slot;
  }

  #retire(slot: Slot): void {
    slot.retired = true;
    if (slot.busy && !this.#destroyed) return;
    if (!slot.proxy.destroyed) slot.proxy.request("destroy");
    slot.pool.destroy();
  }
}
