// The host compositor of the waypipe comparison, in its own process: the
// smallest compositor both forwarders run on (wl_compositor,
// wl_subcompositor, wp_viewporter, wl_shm, xdg_wm_base, one 3840×2160
// output), on wayland/'s server side, listening on the socket path argv[2].
//
// It behaves like a real compositor where that paces or blocks a client:
// - frame callbacks fire at the ticks of a 60 Hz refresh clock (argv[3] Hz,
//   0 for "at the next turn"), the way weston's or sway's repaint answers
//   them, so nothing can deliver more than one frame per refresh;
// - a wl_buffer is released when the surface commits another buffer in its
//   place (as weston's pixman renderer and wlroots do), never sooner.
//
// It stamps every commit that shows a content buffer (wider than guid's 4×4
// solid colours): the CLOCK_MONOTONIC time (ns) it read the commit and the
// low 24 bits of the buffer's first pixel, where the bench's app writes its
// frame number. It prints "ready" once listening; each "report" on stdin
// prints one line "report T1,SEQ1,W1 T2,SEQ2,W2 ..." of the commits stamped
// since the previous report. Nothing is printed while frames flow, except
// "first <width>" at the first content commit (the window is shown).
import { createInterface } from "node:readline";

import { Display, shmBufferOf, type Resource } from "../../wayland/index.ts";
import { createStandInGlobals } from "./stand-in-globals.ts";

const socketPath = process.argv[2];
const refreshHz = Number(process.argv[3] ?? "60");
if (socketPath === undefined || !(refreshHz >= 0)) throw new Error("usage: paced-host.ts SOCKET_PATH [REFRESH_HZ]");
const periodMs = refreshHz > 0 ? 1000 / refreshHz : 0;

const display = new Display();
display.addSocket(socketPath);
createStandInGlobals(
  display,
  {
    width: 3840,
    height: 2160,
    mmWidth: 880,
    mmHeight: 500,
    refreshMHz: Math.round(refreshHz * 1000) || 60000,
  },
  implementSurface,
);

/** Stamps of content commits since the last report: time (ns), frame number, width. */
let stamps: string[] = [];
let first = true;

/** Frame callbacks waiting for the next refresh tick. */
let due: Array<Resource<"wl_callback">> = [];
let timer: NodeJS.Timeout | null = null;
const origin = performance.now();

function fireDue(): void {
  timer = null;
  const done = due;
  due = [];
  const time = Date.now() >>> 0;
  for (const callback of done) {
    if (callback.destroyed) continue;
    callback.send("done", time);
    callback.destroy();
  }
}

function schedule(callbacks: Array<Resource<"wl_callback">>): void {
  due.push(...callbacks);
  if (timer !== null) return;
  if (periodMs === 0) {
    timer = setTimeout(fireDue, 0);
    return;
  }
  // The next tick of the refresh clock, as a repaint at the next vblank.
  const now = performance.now();
  const tick = Math.floor((now - origin) / periodMs) + 1;
  timer = setTimeout(fireDue, Math.max(0, origin + tick * periodMs - now));
}

function implementSurface(surface: Resource<"wl_surface">): void {
  let pending: Resource<"wl_buffer"> | null | undefined;
  let current: Resource<"wl_buffer"> | null = null;
  let callbacks: Array<Resource<"wl_callback">> = [];
  const release = (buffer: Resource<"wl_buffer"> | null): void => {
    if (buffer !== null && !buffer.destroyed) buffer.send("release");
  };
  surface.implement({
    attach: (buffer) => {
      pending = buffer;
    },
    frame: (callback) => {
      callbacks.push(callback);
    },
    destroy: () => {
      release(current);
      current = null;
    },
    commit: () => {
      const now = process.hrtime.bigint();
      if (pending !== undefined) {
        if (pending !== current) release(current);
        current = pending;
        pending = undefined;
        const shm = current === null ? undefined : shmBufferOf(current);
        if (shm !== undefined && shm.width > 4) {
          const bytes = shm.bytes();
          const seq =
            bytes === undefined
              ? -1
              : (bytes[0] as number) | ((bytes[1] as number) << 8) | ((bytes[2] as number) << 16);
          stamps.push(`${now},${seq},${shm.width}`);
          if (first) {
            first = false;
            process.stdout.write(`first ${shm.width}\n`);
          }
        }
      }
      if (callbacks.length > 0) schedule(callbacks);
      callbacks = [];
    },
  });
}

process.stdout.write("ready\n");
for await (const line of createInterface({ input: process.stdin })) {
  if (line !== "report") continue;
  process.stdout.write(`report ${stamps.join(" ")}\n`);
  stamps = [];
}
// stdin ended: the benchmark is over.
display.destroy();
process.exit(0);
