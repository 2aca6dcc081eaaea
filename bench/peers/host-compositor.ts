// The host compositor of the daemon benchmark, in its own process: the
// smallest compositor guid runs on (wl_compositor, wl_subcompositor,
// wp_viewporter, wl_shm, xdg_wm_base, one 1920×1080 output), on wayland/'s
// server side, listening on the socket path given as argv[2]. It prints
// "ready" once listening, and at every commit that carries a buffer larger
// than guid's 4×4 solid colours (a domain's content), one line
// "commit <CLOCK_MONOTONIC ns>", the time it read the commit. Frame
// callbacks fire on the next turn of its event loop, so nothing here paces
// the daemon more than a fast compositor would.
import { Display, shmBufferOf, type Resource } from "../../wayland/index.ts";
import { createStandInGlobals } from "./stand-in-globals.ts";

const socketPath = process.argv[2];
if (socketPath === undefined) throw new Error("usage: host-compositor.ts SOCKET_PATH");

const display = new Display();
display.addSocket(socketPath);
createStandInGlobals(
  display,
  { width: 1920, height: 1080, mmWidth: 520, mmHeight: 290, refreshMHz: 60000 },
  implementSurface,
);

function implementSurface(surface: Resource<"wl_surface">): void {
  let pending: Resource<"wl_buffer"> | null = null;
  let callbacks: Array<Resource<"wl_callback">> = [];
  surface.implement({
    attach: (buffer) => {
      pending = buffer;
    },
    frame: (callback) => {
      callbacks.push(callback);
    },
    commit: () => {
      const now = process.hrtime.bigint();
      const buffer = pending;
      pending = null;
      if (buffer !== null && (shmBufferOf(buffer)?.width ?? 0) > 4) process.stdout.write(`commit ${now}\n`);
      const done = callbacks;
      callbacks = [];
      if (done.length > 0) {
        setImmediate(() => {
          for (const callback of done) {
            if (callback.destroyed) continue;
            callback.send("done", Number(process.hrtime.bigint() / 1_000_000n) >>> 0);
            callback.destroy();
          }
        });
      }
    },
  });
}

process.stdout.write("ready\n");
process.stdin.resume();
process.stdin.on("end", () => {
  display.destroy();
  process.exit(0);
});
