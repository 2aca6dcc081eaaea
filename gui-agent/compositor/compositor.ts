/**
 * The agent's Wayland compositor: a Display with every global real apps
 * need (surfaces, shm, output, xdg-shell, decorations, viewporter, seat,
 * data device), joined into the {@link AgentCompositor} the Qubes side
 * drives. Buffers are released as soon as the commit's listeners returned
 * (when the window is one surface), and frame callbacks wait for the Qubes
 * side's frameDone, or a 60 Hz fallback clock when nobody listens.
 */
import { Display, Signal, createShmGlobal } from "../../wayland/index.ts";
import { createActivationGlobal } from "./activation.ts";
import type { AgentCompositor, CompositorOptions, ShellWindow, Size } from "./api.ts";
import { DataDevices } from "./data-device.ts";
import { createOutputGlobals } from "./output.ts";
import { Seat } from "./seat.ts";
import { createSurfaceGlobals, placedSurfaces, treeSurfaces, type Surface } from "./surface.ts";
import { createShellGlobals, type ShellWindowImpl } from "./xdg-shell.ts";

/** Period of the fallback frame clock (frame callbacks nobody paces), in ms. */
const FALLBACK_FRAME_MS = 16;

/** A screen size made safe to announce: 1 ≤ width, height ≤ 32767 (an X screen's limit), integers. */
function screenSize(size: Size): Size {
  const side = (value: number): number =>
    Number.isFinite(value) ? Math.max(1, Math.min(32767, Math.trunc(value))) : 1;
  return { width: side(size.width), height: side(size.height) };
}

/**
 * Creates the compositor and listens on `options.socket`. Apps connect at
 * once; the Qubes side listens to `events.newWindow` and each window's
 * signals, and drives input and the clipboard. Throws (having freed
 * everything) when the socket is in use or cannot be made.
 */
export function createAgentCompositor(options: CompositorOptions): AgentCompositor {
  const display = new Display();
  const windows: ShellWindowImpl[] = [];
  const newWindow = new Signal<ShellWindow>();
  const shownSurfaces = new WeakSet<Surface>();
  const fallback = new Set<Surface>();
  let fallbackTimer: NodeJS.Timeout | null = null;
  let destroyed = false;

  const output = createOutputGlobals(display, screenSize(options.outputSize));
  createShmGlobal(display);

  const flushFallback = (): void => {
    fallbackTimer = null;
    const now = Date.now();
    const surfaces = [...fallback];
    fallback.clear();
    for (const surface of surfaces) if (!surface.destroyed) surface.fireFrameCallbacks(now);
  };
  const scheduleFallback = (surfaces: readonly Surface[]): void => {
    for (const surface of surfaces) if (surface.frameCallbacks.length > 0) fallback.add(surface);
    if (fallback.size > 0 && fallbackTimer === null && !destroyed) {
      fallbackTimer = setTimeout(flushFallback, FALLBACK_FRAME_MS);
    }
  };

  createSurfaceGlobals(display, {
    committed: (surface) => {
      const root = surface.root;
      const handler = root.destroyed ? null : root.roleHandler;
      const paced = handler !== null ? handler.treeCommitted(surface) : false;
      if (surface.client.destroyed) return;
      const tree = treeSurfaces(root);
      // One surface: its pixels were copied by the commit's listeners. Several: each layer stays
      // readable for the next commits of the window, until the app replaces its buffer.
      if (handler === null || placedSurfaces(root).length <= 1) for (const member of tree) member.releaseBuffer();
      // Nobody shows a surface without a shell role (a cursor, a surface not yet given a role): drop its damage.
      if (handler === null) for (const member of tree) member.damage = [];
      if (!paced) scheduleFallback(tree);
    },
    destroyed: (surface) => {
      fallback.delete(surface);
      seat.surfaceDestroyed(surface);
    },
  });

  createShellGlobals(display, {
    outputSize: () => output.size,
    windowCreated: (window) => {
      windows.push(window);
      newWindow.emit(window);
    },
    windowDestroyed: (window) => {
      const at = windows.indexOf(window);
      if (at >= 0) windows.splice(at, 1);
      seat.windowDestroyed(window);
    },
    windowStateChanged: () => seat.updateKeyboardFocus(),
    surfaceShown: (surface) => {
      if (shownSurfaces.has(surface)) return;
      shownSurfaces.add(surface);
      for (const wlOutput of output.resourcesOf(surface.client)) surface.resource.send("enter", wlOutput);
    },
  });

  createActivationGlobal(display);
  const dataDevices = new DataDevices(display);
  const seat: Seat = new Seat(display, options.keymap, {
    keyboardFocusClient: (client) => dataDevices.keyboardFocusClient(client),
    windows: () => windows,
  });

  display.events.client.add((client) => {
    client.events.destroy.add(() => {
      seat.clientDestroyed(client);
      dataDevices.clientDestroyed(client);
    });
  });
  if (options.onHandlerError !== undefined) {
    const report = options.onHandlerError;
    display.events.handlerError.add((failure) =>
      report({
        pid: failure.client.credentials.pid,
        request: `${failure.resource.interface.name}.${failure.request}`,
        error: failure.error,
      }),
    );
  }

  let socketPath: string;
  try {
    socketPath = display.addSocket(options.socket);
  } catch (error) {
    display.destroy();
    seat.destroy();
    throw error;
  }

  return {
    socketPath,
    windows,
    seat,
    clipboard: dataDevices,
    events: { newWindow },
    setOutputSize: (size: Size) => {
      output.setSize(screenSize(size));
    },
    destroy: () => {
      if (destroyed) return;
      destroyed = true;
      if (fallbackTimer !== null) clearTimeout(fallbackTimer);
      display.destroy();
      seat.destroy();
    },
  };
}
