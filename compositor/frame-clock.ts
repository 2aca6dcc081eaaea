/**
 * The output's refresh clock: frame callbacks (wl_surface.frame) fire on its
 * ticks, at most once per refresh period for each surface, the way a real
 * compositor answers them when it repaints an output. An app that draws
 * whenever its callback fires is thereby paced to the output's refresh
 * instead of to how fast the agent can copy. The clock's timer runs only
 * while some surface waits for a tick.
 */
import { FRAME_PERIOD_MS } from "./output.ts";
import type { Surface } from "./surface.ts";

/** Fires the frame callbacks of scheduled surfaces at the output's refresh ticks. */
export class FrameClock {
  /** Surfaces whose callbacks fire at the next tick. */
  readonly #due = new Set<Surface>();
  /** The phase of the ticks: tick k is at `#origin + k × period` (performance.now() ms). */
  readonly #origin = performance.now();
  readonly #periodMs: number;
  /** The tick the timer is set for, and the last tick that fired (-1: none). */
  #armedTick = 0;
  #firedTick = -1;
  #timer: NodeJS.Timeout | null = null;
  #destroyed = false;

  constructor(periodMs = FRAME_PERIOD_MS) {
    this.#periodMs = periodMs;
  }

  /** The surface's frame callbacks fire at the next tick (a surface without callbacks is skipped). */
  schedule(surface: Surface): void {
    if (this.#destroyed || surface.destroyed || surface.frameCallbacks.length === 0) return;
    this.#due.add(surface);
    if (this.#timer === null) {
      const now = performance.now();
      // The first tick after now, and never the one that fired last (a timer may run a little early).
      const tick = Math.max(Math.floor((now - this.#origin) / this.#periodMs) + 1, this.#firedTick + 1);
      this.#armedTick = tick;
      this.#timer = setTimeout(this.#tick, Math.max(0, this.#origin + tick * this.#periodMs - now));
    }
  }

  /** Forgets a surface (it is gone, or its callbacks were fired some other way). */
  cancel(surface: Surface): void {
    this.#due.delete(surface);
  }

  /** Stops the clock; scheduled callbacks never fire. */
  destroy(): void {
    this.#destroyed = true;
    this.#due.clear();
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
  }

  readonly #tick = (): void => {
    this.#timer = null;
    this.#firedTick = this.#armedTick;
    const surfaces = [...this.#due];
    this.#due.clear();
    const time = Date.now() >>> 0;
    for (const surface of surfaces) if (!surface.destroyed) surface.fireFrameCallbacks(time);
  };
}
