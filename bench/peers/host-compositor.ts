// The host compositor of the daemon benchmark, in its own process: the
// smallest compositor guid runs on (wl_compositor, wl_subcompositor,
// wp_viewporter, wl_shm, xdg_wm_base, one 1920×1080 output), on wayland/'s
// server side, listening on the socket path given as argv[2]. It prints
// "ready" once listening, and at every commit that carries a buffer larger
// than guid's 4×4 solid colours (a domain's content), one line
// "commit <CLOCK_MONOTONIC ns>", the time it read the commit. Frame
// callbacks fire on the next turn of its event loop, so nothing here paces
// the daemon more than a fast compositor would.
import { Display, createShmGlobal, shmBufferOf, type Resource } from "../../wayland/index.ts";

const socketPath = process.argv[2];
if (socketPath === undefined) throw new Error("usage: host-compositor.ts SOCKET_PATH");

const display = new Display();
display.addSocket(socketPath);
createShmGlobal(display);

display.createGlobal("wl_compositor", 5, (compositor) => {
  compositor.implement({
    create_surface: (surface) => implementSurface(surface),
    create_region: (region) => region.implement({}),
  });
});
display.createGlobal("wl_subcompositor", 1, (subcompositor) => {
  subcompositor.implement({ get_subsurface: (subsurface) => subsurface.implement({}) });
});
display.createGlobal("wp_viewporter", 1, (viewporter) => {
  viewporter.implement({ get_viewport: (viewport) => viewport.implement({}) });
});
display.createGlobal("wl_output", 3, (output) => {
  output.send("geometry", 0, 0, 520, 290, 0, "qubes", "bench", 0);
  output.send("mode", 3, 1920, 1080, 60000);
  if (output.version >= 2) {
    output.send("scale", 1);
    output.send("done");
  }
});
display.createGlobal("xdg_wm_base", 3, (wmBase) => {
  wmBase.implement({
    create_positioner: (positioner) => positioner.implement({}),
    get_xdg_surface: (xdgSurface) => {
      xdgSurface.implement({
        get_toplevel: (toplevel) => {
          toplevel.implement({});
          toplevel.send("configure", 0, 0, new Uint8Array(0));
          xdgSurface.send("configure", display.nextSerial());
        },
        get_popup: (popup) => popup.implement({}),
      });
    },
    pong: () => undefined,
  });
});

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
