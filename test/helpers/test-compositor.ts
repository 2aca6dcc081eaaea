/**
 * A small compositor built on wayland/'s server side, for tests that run
 * real libwayland clients against it: wl_compositor, wl_shm, wl_output and
 * xdg_wm_base, enough for weston-simple-shm and wayland-info. Commits are
 * counted and buffers released at once; frame callbacks fire on the next
 * turn of the event loop.
 */
import { close } from "../../native/index.ts";
import {
  Display,
  Signal,
  createKeymapFd,
  createShmGlobal,
  shmBufferOf,
  wl_keyboard,
  wl_seat,
  type Resource,
} from "../../wayland/index.ts";

/** A keymap libxkbcommon compiles from xkb-data's evdev rules (US layout). */
const KEYMAP = `xkb_keymap {
  xkb_keycodes { include "evdev+aliases(qwerty)" };
  xkb_types { include "complete" };
  xkb_compat { include "complete" };
  xkb_symbols { include "pc+us+inet(evdev)" };
};`;

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
  display.createGlobal("wl_subcompositor", 1, (subcompositor) => {
    subcompositor.implement({
      get_subsurface: (subsurface) => subsurface.implement({}),
    });
  });
  display.createGlobal("wl_seat", 7, (seat) => {
    seat.implement({
      get_keyboard: (keyboard) => {
        keyboard.implement({});
        const { fd, size } = createKeymapFd(KEYMAP);
        keyboard.send("keymap", wl_keyboard.enums.keymap_format.xkb_v1, fd, size);
        close(fd);
        if (keyboard.version >= 4) keyboard.send("repeat_info", 25, 600);
      },
      get_pointer: (pointer) => pointer.implement({}),
      get_touch: (touch) => touch.implement({}),
    });
    seat.send("capabilities", wl_seat.enums.capability.pointer | wl_seat.enums.capability.keyboard);
    if (seat.version >= 2) seat.send("name", "seat0");
  });
  display.createGlobal("wl_data_device_manager", 3, (manager) => {
    manager.implement({
      create_data_source: (source) => source.implement({}),
      get_data_device: (device) => device.implement({}),
    });
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
