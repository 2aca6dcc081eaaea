/**
 * xdg_wm_base (version 5), xdg_positioner and the xdg_surface requests:
 * positioners built up and checked, ping/pong, xdg_surfaces created on
 * surfaces without another role, and each xdg_surface given its role object
 * once (a {@link ToplevelWindow} or a {@link PopupWindow}), with the role
 * checks and protocol errors of that step. The roles live in toplevel.ts
 * and popup.ts, what both share in shell-window.ts and xdg-surface.ts.
 */
import { xdg_positioner, xdg_surface, xdg_wm_base, type Display, type Resource } from "../wayland/index.ts";
import { implementPopup, PopupWindow, type PlacedPositioner } from "./popup.ts";
import { defaultPositioner, type PositionerState } from "./positioner.ts";
import type { ShellContext, ShellWindowImpl } from "./shell-window.ts";
import { surfaceOf, type Surface, type SurfaceRoleHandler } from "./surface.ts";
import { createDecorationGlobal, implementToplevel, ToplevelWindow } from "./toplevel.ts";
import { clampCoordinate, MAX_EDGE, XdgSurfaceState } from "./xdg-surface.ts";

/** What an xdg_positioner holds: its state, and which of the requests a complete positioner needs came. */
interface PositionerData {
  state: PositionerState;
  flags: { size: boolean; anchorRect: boolean; reactive: boolean };
}

/** What an xdg_surface's data gives: its role object's window, once it has one. */
interface XdgSurfaceData {
  window(): ShellWindowImpl | null;
}

/** Creates xdg_wm_base (version 5) and zxdg_decoration_manager_v1 on `display`. */
export function createShellGlobals(display: Display, context: ShellContext): void {
  let nextId = 1;

  display.createGlobal("xdg_wm_base", 5, (wmBase) => {
    const surfaces = new Set<Resource<"xdg_surface">>();
    const wmErrors = xdg_wm_base.enums.error;
    wmBase.implement({
      destroy() {
        if (surfaces.size > 0) wmBase.postError(wmErrors.defunct_surfaces, "xdg_wm_base destroyed before its surfaces");
      },
      pong() {},
      create_positioner(resource) {
        implementPositioner(resource);
      },
      get_xdg_surface(resource, surfaceResource) {
        const surface = surfaceOf(surfaceResource);
        if (surface.role !== null && surface.role !== "xdg_toplevel" && surface.role !== "xdg_popup") {
          wmBase.postError(wmErrors.role, `wl_surface@${surfaceResource.id} already has the role ${surface.role}`);
          return;
        }
        if (surface.roleHandler !== null || surface.hasContent) {
          wmBase.postError(
            wmErrors.invalid_surface_state,
            `wl_surface@${surfaceResource.id} already has an xdg_surface or a buffer`,
          );
          return;
        }
        surfaces.add(resource);
        resource.events.destroy.add(() => surfaces.delete(resource));
        implementXdgSurface(resource, surface, wmBase);
      },
    });
  });

  createDecorationGlobal(display);

  function implementXdgSurface(
    resource: Resource<"xdg_surface">,
    surface: Surface,
    wmBase: Resource<"xdg_wm_base">,
  ): void {
    const errors = xdg_surface.enums.error;
    const xdg = new XdgSurfaceState(resource);
    const readPositioner = (positioner: Resource<"xdg_positioner">): PlacedPositioner | null =>
      completePositioner(wmBase, positioner);
    let window: ShellWindowImpl | null = null;
    // Until a role object exists, the surface's commits come here: committing without a role is an error.
    const unconstructed: SurfaceRoleHandler = {
      treeCommitted(from) {
        if (from === surface) resource.postError(errors.not_constructed, "commit before get_toplevel or get_popup");
      },
      framesMayFire: true,
      buffersHeld: false,
    };
    surface.roleHandler = unconstructed;
    /** Whether the surface may take `role` now: false after already_constructed or a role error. */
    const mayConstruct = (role: "xdg_toplevel" | "xdg_popup"): boolean => {
      if (window !== null) {
        resource.postError(errors.already_constructed, "the xdg_surface already has a role object");
        return false;
      }
      if (surface.role !== null && surface.role !== role) {
        wmBase.postError(xdg_wm_base.enums.error.role, `the surface has the role ${surface.role}`);
        return false;
      }
      surface.role = role;
      return true;
    };
    const data: XdgSurfaceData = { window: () => window };
    resource.data = data;
    resource.implement({
      destroy() {
        if (window !== null && !window.destroyed) {
          resource.postError(errors.defunct_role_object, "xdg_surface destroyed before its role object");
        }
      },
      get_toplevel(toplevelResource) {
        if (!mayConstruct("xdg_toplevel")) return;
        const toplevel = new ToplevelWindow(nextId++, surface, xdg, toplevelResource, display, context);
        window = toplevel;
        surface.roleHandler = toplevel;
        implementToplevel(toplevelResource, toplevel);
        context.windowCreated(toplevel);
      },
      get_popup(popupResource, parentResource, positioner) {
        if (parentResource === null) {
          wmBase.postError(
            xdg_wm_base.enums.error.invalid_popup_parent,
            "a popup needs a parent xdg_surface here (no other shell protocol is offered)",
          );
          return;
        }
        const parentWindow = (parentResource.data as XdgSurfaceData).window();
        if (parentWindow === null || parentWindow.destroyed) {
          wmBase.postError(xdg_wm_base.enums.error.invalid_popup_parent, "the parent xdg_surface has no role object");
          return;
        }
        const placed = readPositioner(positioner);
        if (placed === null) return;
        if (!mayConstruct("xdg_popup")) return;
        const popup = new PopupWindow(nextId++, surface, xdg, popupResource, parentWindow, placed, display, context);
        window = popup;
        surface.roleHandler = popup;
        implementPopup(popupResource, popup, wmBase, readPositioner);
        context.windowCreated(popup);
      },
      set_window_geometry(x, y, width, height) {
        xdg.setWindowGeometry(x, y, width, height);
      },
      ack_configure(serial) {
        if (window === null) {
          resource.postError(errors.not_constructed, "ack_configure before get_toplevel or get_popup");
          return;
        }
        window.ackConfigure(serial);
      },
    });
    resource.events.destroy.add(() => {
      if (surface.roleHandler === unconstructed) surface.roleHandler = null;
      window?.destroy();
    });
    surface.resource.events.destroy.add(() => window?.destroy());
  }
}

/** Implements an xdg_positioner: each request checked as it comes, the whole positioner when a popup uses it. */
function implementPositioner(resource: Resource<"xdg_positioner">): void {
  const state = defaultPositioner();
  const flags = { size: false, anchorRect: false, reactive: false };
  const data: PositionerData = { state, flags };
  resource.data = data;
  const invalid = xdg_positioner.enums.error.invalid_input;
  resource.implement({
    destroy() {},
    set_size(width, height) {
      if (width <= 0 || height <= 0 || width > MAX_EDGE || height > MAX_EDGE) {
        resource.postError(invalid, `invalid size ${width}x${height}`);
        return;
      }
      state.width = width;
      state.height = height;
      flags.size = true;
    },
    set_anchor_rect(x, y, width, height) {
      if (width < 0 || height < 0 || width > MAX_EDGE || height > MAX_EDGE) {
        resource.postError(invalid, `invalid anchor rect ${width}x${height}`);
        return;
      }
      state.anchorRect = { x: clampCoordinate(x), y: clampCoordinate(y), width, height };
      flags.anchorRect = true;
    },
    set_anchor(anchor) {
      if (anchor > 8) {
        resource.postError(invalid, `invalid anchor ${anchor}`);
        return;
      }
      state.anchor = anchor;
    },
    set_gravity(gravity) {
      if (gravity > 8) {
        resource.postError(invalid, `invalid gravity ${gravity}`);
        return;
      }
      state.gravity = gravity;
    },
    set_constraint_adjustment(adjustment) {
      state.constraintAdjustment = adjustment & 0x3f;
    },
    set_offset(x, y) {
      state.offsetX = clampCoordinate(x);
      state.offsetY = clampCoordinate(y);
    },
    set_reactive() {
      flags.reactive = true;
    },
    set_parent_size() {},
    set_parent_configure() {},
  });
}

/** A copy of the positioner's state, or null (after an invalid_positioner error) when it is incomplete. */
function completePositioner(
  wmBase: Resource<"xdg_wm_base">,
  positioner: Resource<"xdg_positioner">,
): PlacedPositioner | null {
  const data = positioner.data as PositionerData;
  if (!data.flags.size || !data.flags.anchorRect) {
    wmBase.postError(xdg_wm_base.enums.error.invalid_positioner, "the positioner has no size or no anchor rectangle");
    return null;
  }
  return { state: { ...data.state, anchorRect: { ...data.state.anchorRect } }, reactive: data.flags.reactive };
}
