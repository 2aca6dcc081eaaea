// The globals of the benchmarks' stand-in host compositors (host-compositor.ts,
// paced-host.ts): the least guid and waypipe run on. wl_compositor hands its
// surfaces to the host's own `implementSurface` (where each host stamps and
// paces); the rest accept their requests and do nothing.
import { createShmGlobal, type Display, type Resource } from "../../wayland/index.ts";

/** The one output a stand-in host announces. */
export interface StandInOutput {
  width: number;
  height: number;
  /** Physical size, millimetres. */
  mmWidth: number;
  mmHeight: number;
  /** Refresh rate in mHz. */
  refreshMHz: number;
}

export function createStandInGlobals(
  display: Display,
  output: StandInOutput,
  implementSurface: (surface: Resource<"wl_surface">) => void,
): void {
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
  display.createGlobal("wl_output", 3, (resource) => {
    resource.send("geometry", 0, 0, output.mmWidth, output.mmHeight, 0, "qubes", "bench", 0);
    resource.send("mode", 3, output.width, output.height, output.refreshMHz);
    if (resource.version >= 2) {
      resource.send("scale", 1);
      resource.send("done");
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
}
