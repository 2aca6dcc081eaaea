/**
 * xdg_activation_v1: apps ask for activation tokens and use them to ask for
 * a window to be activated (raised and focused). The agent cannot take
 * focus on the user's screen, so an activation becomes a window request the
 * Qubes side may show as demands-attention (foot does this on a bell with
 * bell.urgent, GTK on gtk_window_present).
 */
import { randomUUID } from "node:crypto";

import { xdg_activation_token_v1, type Display } from "../wayland/index.ts";
import { surfaceOf } from "./surface.ts";
import { ShellWindowImpl } from "./shell-window.ts";

/** Tokens remembered at once; the oldest are forgotten first (an app cannot grow the set without bound). */
const MAX_TOKENS = 256;

/** Adds the xdg_activation_v1 global (version 1) to `display`. */
export function createActivationGlobal(display: Display): void {
  const tokens = new Set<string>();
  display.createGlobal("xdg_activation_v1", 1, (activation) => {
    activation.implement({
      destroy: () => undefined,
      get_activation_token: (token) => {
        let committed = false;
        token.implement({
          set_serial: () => undefined,
          set_app_id: () => undefined,
          set_surface: () => undefined,
          destroy: () => undefined,
          commit: () => {
            if (committed) {
              token.postError(xdg_activation_token_v1.enums.error.already_used, "the token was already committed");
              return;
            }
            committed = true;
            const value = randomUUID();
            tokens.add(value);
            if (tokens.size > MAX_TOKENS) tokens.delete(tokens.values().next().value as string);
            token.send("done", value);
          },
        });
      },
      activate: (value, surfaceResource) => {
        // Tokens are single-use; one we never gave out is ignored, as the protocol allows.
        if (!tokens.delete(value)) return;
        const window = surfaceOf(surfaceResource).roleHandler;
        if (window instanceof ShellWindowImpl && !window.destroyed) window.events.request.emit({ kind: "activate" });
      },
    });
  });
}
