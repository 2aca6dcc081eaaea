/**
 * xdg_surface state shared by both roles: the configure serials sent and
 * acknowledged (ack_configure), whether the initial commit was handled and
 * the app acked a configure since, and the window geometry
 * (set_window_geometry) pending and committed, with the errors of those
 * requests. The xdg_surface object itself is implemented in xdg-wm-base.ts,
 * which makes its role object and hands these requests here.
 */
import { xdg_surface, type Resource } from "../wayland/index.ts";
import type { Rect } from "./geometry.ts";

/** The largest window edge accepted from an app (the protocol's sizes are int32; X windows are at most 32767). */
export const MAX_EDGE = 32767;

/** Configure serials remembered per window for ack_configure; older ones are only known as "sent before". */
const MAX_SENT_SERIALS = 256;

/** True when serial `a` was handed out before `b` (serials wrap at 2^32). */
function serialBefore(a: number, b: number): boolean {
  return ((a - b) | 0) < 0;
}

/** Clamps a coordinate an app sent to ±2^30, so that sums of a few of them stay exact. */
export function clampCoordinate(value: number): number {
  return Math.max(-(1 << 30), Math.min(1 << 30, value));
}

/**
 * The configure handshake and window geometry of one xdg_surface. It exists
 * from get_xdg_surface on (a geometry set before the role object is kept),
 * and goes back to its initial handshake state when the window unmaps.
 */
export class XdgSurfaceState {
  readonly resource: Resource<"xdg_surface">;
  /** The initial commit was handled (the initial configure went out); false again after an unmap. */
  initialCommitDone = false;
  /** The app acked a configure since the initial commit: it may attach buffers. */
  configured = false;
  /** Serials of configures sent and not acked yet, oldest first (at most MAX_SENT_SERIALS). */
  private sentSerials: number[] = [];
  /** The newest serial dropped from sentSerials (null: none since the last ack covered them). */
  private forgottenSerial: number | null = null;
  /** set_window_geometry, in main-surface coordinates, as of the last commit (null: never set). */
  private committedGeometry: Rect | null = null;
  private pendingGeometry: Rect | null = null;

  constructor(resource: Resource<"xdg_surface">) {
    this.resource = resource;
  }

  /** The window geometry the app committed (main-surface coordinates), or null when it set none. */
  get geometry(): Rect | null {
    return this.committedGeometry;
  }

  /** xdg_surface.set_window_geometry: invalid_size for an empty or oversized rectangle, else pending until commit. */
  setWindowGeometry(x: number, y: number, width: number, height: number): void {
    if (width <= 0 || height <= 0 || width > MAX_EDGE || height > MAX_EDGE) {
      this.resource.postError(xdg_surface.enums.error.invalid_size, `invalid window geometry ${width}x${height}`);
      return;
    }
    this.pendingGeometry = { x: clampCoordinate(x), y: clampCoordinate(y), width, height };
  }

  /** The main surface was committed: a pending window geometry becomes the current one. */
  applyGeometry(): void {
    if (this.pendingGeometry === null) return;
    this.committedGeometry = this.pendingGeometry;
    this.pendingGeometry = null;
  }

  /** Sends xdg_surface.configure with `serial`, remembered for ack_configure. */
  sendConfigure(serial: number): void {
    this.sentSerials.push(serial);
    if (this.sentSerials.length > MAX_SENT_SERIALS) this.forgottenSerial = this.sentSerials.shift() ?? null;
    this.resource.send("configure", serial);
  }

  /**
   * xdg_surface.ack_configure: the serial must be one we sent and the app
   * did not ack yet. Past the last MAX_SENT_SERIALS configures, a serial
   * that may have been one of ours (not newer than the newest one
   * forgotten) is taken: an app is never ended for acking what we sent.
   * False after an invalid_serial error.
   */
  ackConfigure(serial: number): boolean {
    const at = this.sentSerials.indexOf(serial);
    const forgotten = this.forgottenSerial;
    if (at < 0 && (forgotten === null || serialBefore(forgotten, serial))) {
      this.resource.postError(xdg_surface.enums.error.invalid_serial, `ack_configure with unknown serial ${serial}`);
      return false;
    }
    // This ack covers every earlier configure.
    this.sentSerials = this.sentSerials.filter((sent) => serialBefore(serial, sent));
    if (forgotten !== null && !serialBefore(serial, forgotten)) this.forgottenSerial = null;
    this.configured = true;
    return true;
  }

  /** The window unmapped: the handshake starts again at the next commit (the geometry stays). */
  resetHandshake(): void {
    this.initialCommitDone = false;
    this.configured = false;
    this.sentSerials = [];
    this.forgottenSerial = null;
  }
}
