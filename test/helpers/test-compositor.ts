/**
 * A small compositor built on wayland/'s server side, for tests that run
 * real libwayland clients against it: wl_compositor, wl_shm, wl_output and
 * xdg_wm_base, enough for weston-simple-shm and wayland-info. Commits are
 * counted and buffers released at once; frame callbacks fire on the next
 * turn of the event loop.
 */
import { Display, Signal, createShmGlobal, shmBufferOf, type Resource } from "../../wayland/index.ts";

/** One committed frame: which surface, and the buffer's size if one was attached. */
export interface CommittedFrame {
  surface: Resource<"wl_surface">;
  width: number;
  height: number;
  /** The first pixel's 32-bit value, read from the client's pool. */
  firstPixel: number;
}

/** The test compositor: its display, counters, and a signal per commit. */
export interface TestCompositor {
  display: Display;
  socketPath: string;
  /** Commits that carried a buffer. */
  frames: number;
  events: { commit: Signal<CommittedFrame> };
  destroy(): void;
}

/** Starts a test compositor listening on `socketPath` (absolute). */
export function createTestCompositor(socketPath: string): TestCompositor {
  const display = new Display();
  const commit = new Signal<CommittedFrame>();
  const state: TestCompositor = {
    display,
    socketPath: display.addSocket(socketPath),
    frames: 0,
    events: { commit },
    destroy: () => display.destroy(),
  };

  display.createGlobal("wl_compositor", 5, (compositor) => {
    compositor.implement({
      create_surface: (surface) => implementSurface(surface),
      create_region: (region) => region.implement({}),
    });
  });
  createShmGlobal(display);
  display.createGlobal("wl_output", 4, (output) => {
    output.send("geometry", 0, 0, 300, 200, 0, "qubes", "test", 0);
    output.send("mode", 3, 1024, 768, 60000);
    if (output.version >= 2) output.send("scale", 1);
    if (output.version >= 4) {
      output.send("name", "TEST-1");
      output.send("description", "test compositor output");
    }
    if (output.version >= 2) output.send("done");
  });
  display.createGlobal("xdg_wm_base", 5, (wmBase) => {
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
        const buffer = pending;
        pending = null;
        if (buffer !== null) {
          const shm = shmBufferOf(buffer);
          const bytes = shm?.bytes();
          const firstPixel =
            bytes !== undefined && bytes.length >= 4
              ? new DataView(bytes.buffer, bytes.byteOffset).getUint32(0, true)
              : 0;
          state.frames += 1;
          commit.emit({ surface, width: shm?.width ?? 0, height: shm?.height ?? 0, firstPixel });
          buffer.send("release");
        }
        const done = callbacks;
        callbacks = [];
        if (done.length > 0) {
          setImmediate(() => {
            for (const callback of done) {
              callback.send("done", Date.now() >>> 0);
              callback.destroy();
            }
          });
        }
      },
    });
  }

  return state;
}
