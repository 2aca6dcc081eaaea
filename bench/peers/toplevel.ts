// What the benchmark apps share: an xdg_toplevel taken through its first
// configure, over two XRGB8888 shm buffers whose releases are tracked (a
// real app's double buffering). Each app draws and commits in its own way.
import { ClientShmPool, SHM_FORMAT_XRGB8888, type ClientConnection, type Proxy } from "../../wayland/index.ts";

/** One of the two buffers of a toplevel. */
export interface ShmBuffer {
  readonly proxy: Proxy<"wl_buffer">;
  /** The buffer's pixels as 0x00RRGGBB words, row-major, stride width. */
  readonly words: Uint32Array;
  /** Attached and not yet released by the compositor. */
  busy: boolean;
  /** Wakes a wait for its release (called once, then cleared). */
  onRelease: (() => void) | null;
}

/** The globals an app binds once, for all its windows. */
export interface AppGlobals {
  readonly compositor: Proxy<"wl_compositor">;
  readonly shm: Proxy<"wl_shm">;
  readonly wmBase: Proxy<"xdg_wm_base">;
}

export function bindGlobals(connection: ClientConnection): AppGlobals {
  const wmBase = connection.bind("xdg_wm_base", 2);
  wmBase.on("ping", (serial) => wmBase.request("pong", serial));
  return { compositor: connection.bind("wl_compositor", 4), shm: connection.bind("wl_shm", 1), wmBase };
}

/** A configured toplevel (nothing attached yet) and its two buffers. */
export interface Toplevel {
  readonly surface: Proxy<"wl_surface">;
  readonly buffers: [ShmBuffer, ShmBuffer];
}

/** Opens a `width` × `height` toplevel: acks its first configure (and every later one) and makes its buffers. */
export async function openToplevel(
  globals: AppGlobals,
  options: { title: string; appId: string; width: number; height: number },
): Promise<Toplevel> {
  const { width, height } = options;
  const surface = globals.compositor.request("create_surface");
  const xdgSurface = globals.wmBase.request("get_xdg_surface", surface);
  const toplevel = xdgSurface.request("get_toplevel");
  toplevel.request("set_title", options.title);
  toplevel.request("set_app_id", options.appId);
  const configured = new Promise<number>((resolve) => xdgSurface.on("configure", (serial) => resolve(serial)));
  surface.request("commit");
  xdgSurface.request("ack_configure", await configured);
  xdgSurface.on("configure", (serial) => xdgSurface.request("ack_configure", serial));
  const frameBytes = width * height * 4;
  const pool = new ClientShmPool(globals.shm, frameBytes * 2);
  const buffers = [0, 1].map((index): ShmBuffer => {
    const created = pool.createBuffer(index * frameBytes, width, height, width * 4, SHM_FORMAT_XRGB8888);
    const words = new Uint32Array(created.bytes.buffer, created.bytes.byteOffset, width * height);
    const buffer: ShmBuffer = { proxy: created.proxy, words, busy: false, onRelease: null };
    created.proxy.on("release", () => {
      buffer.busy = false;
      const wake = buffer.onRelease;
      buffer.onRelease = null;
      wake?.();
    });
    return buffer;
  }) as [ShmBuffer, ShmBuffer];
  return { surface, buffers };
}
