/**
 * wl_output and zxdg_output_manager_v1: one output at (0, 0), scale 1, of
 * the size the daemon's screen has (xconf), announced again when it
 * changes, so apps size maximized and fullscreen windows and popups to it.
 */
import type { Client, Display, Resource } from "../wayland/index.ts";
import type { Size } from "./api.ts";

/** Millimetres per pixel at 96 dpi, for wl_output.geometry's physical size. */
const MM_PER_PIXEL = 25.4 / 96;

/** The output's refresh rate in mHz, as wl_output.mode says it: frame callbacks are paced to it. */
export const OUTPUT_REFRESH_MHZ = 60_000;

/** One refresh period of the output, in ms (16.67 at 60 Hz). */
export const FRAME_PERIOD_MS = 1_000_000 / OUTPUT_REFRESH_MHZ;

/**
 * The largest output announced: 16384×6144, the largest window the agent can
 * show (the Qubes GUI protocol's limit on a WINDOW_DUMP). A larger screen
 * would invite apps to make maximized and fullscreen windows that cannot be
 * shown; foot and GTK also fail outright on sizes near 32767.
 */
export const MAX_OUTPUT_SIZE: Size = { width: 16384, height: 6144 };

/**
 * The smallest output announced: 640×480 (VGA, the smallest screen a desktop
 * has). Apps derive font sizes and default window sizes from the output: a
 * 1×1 output gave foot a 0 px font (its DPI from a 0 mm screen).
 */
export const MIN_OUTPUT_SIZE: Size = { width: 640, height: 480 };

/** A size made safe to announce as the output's: integers in MIN_OUTPUT_SIZE..MAX_OUTPUT_SIZE (NaN becomes the minimum). */
export function clampOutputSize(size: Size): Size {
  const side = (value: number, min: number, max: number): number =>
    Number.isFinite(value) ? Math.max(min, Math.min(max, Math.trunc(value))) : min;
  // Now MIN_OUTPUT_SIZE ≤ width, height ≤ MAX_OUTPUT_SIZE.
  return {
    width: side(size.width, MIN_OUTPUT_SIZE.width, MAX_OUTPUT_SIZE.width),
    height: side(size.height, MIN_OUTPUT_SIZE.height, MAX_OUTPUT_SIZE.height),
  };
}

/** The output: its size, bound resources, and how to announce a new size. */
export interface Output {
  readonly size: Size;
  /** Sets the size (clamped by {@link clampOutputSize}); every bound wl_output and xdg_output hears the new mode. */
  setSize(size: Size): void;
  /** The wl_output resources a client bound (for wl_surface.enter). */
  resourcesOf(client: Client): Array<Resource<"wl_output">>;
}

/** Adds wl_output (version 4) and zxdg_output_manager_v1 (version 3) to `display`; sizes are clamped by {@link clampOutputSize}. */
export function createOutputGlobals(display: Display, initial: Size): Output {
  let size: Size = clampOutputSize(initial);
  const outputs = new Set<Resource<"wl_output">>();
  const xdgOutputs = new Set<{ resource: Resource<"zxdg_output_v1">; output: Resource<"wl_output"> }>();

  const sendMode = (output: Resource<"wl_output">): void => {
    // Flags: current | preferred; refresh in mHz.
    output.send("mode", 3, size.width, size.height, OUTPUT_REFRESH_MHZ);
  };
  // The physical size follows the pixel size (96 dpi): apps that size fonts by DPI see the same DPI at every size.
  const sendGeometry = (output: Resource<"wl_output">): void => {
    output.send(
      "geometry",
      0,
      0,
      Math.round(size.width * MM_PER_PIXEL),
      Math.round(size.height * MM_PER_PIXEL),
      0,
      "Qubes",
      "qubes-gui-agent",
      0,
    );
  };
  const sendDone = (output: Resource<"wl_output">): void => {
    if (output.version >= 2) output.send("done");
  };

  display.createGlobal("wl_output", 4, (output) => {
    outputs.add(output);
    output.events.destroy.add(() => outputs.delete(output));
    output.implement({ release: () => undefined });
    sendGeometry(output);
    sendMode(output);
    if (output.version >= 2) output.send("scale", 1);
    if (output.version >= 4) {
      output.send("name", "QUBES-1");
      output.send("description", "Qubes GUI agent screen");
    }
    sendDone(output);
  });

  display.createGlobal("zxdg_output_manager_v1", 3, (manager) => {
    manager.implement({
      destroy: () => undefined,
      get_xdg_output: (resource, output) => {
        const entry = { resource, output };
        xdgOutputs.add(entry);
        resource.events.destroy.add(() => xdgOutputs.delete(entry));
        resource.implement({ destroy: () => undefined });
        resource.send("logical_position", 0, 0);
        resource.send("logical_size", size.width, size.height);
        if (resource.version >= 2) {
          resource.send("name", "QUBES-1");
          resource.send("description", "Qubes GUI agent screen");
        }
        if (resource.version >= 3) sendDone(output);
        else resource.send("done");
      },
    });
  });

  return {
    get size() {
      return size;
    },
    setSize(requested: Size): void {
      const next = clampOutputSize(requested);
      if (next.width === size.width && next.height === size.height) return;
      size = next;
      for (const entry of xdgOutputs) {
        entry.resource.send("logical_size", size.width, size.height);
        if (entry.resource.version < 3) entry.resource.send("done");
      }
      for (const output of outputs) {
        sendGeometry(output);
        sendMode(output);
        sendDone(output);
      }
    },
    resourcesOf(client: Client): Array<Resource<"wl_output">> {
      return [...outputs].filter((output) => output.client === client);
    },
  };
}
