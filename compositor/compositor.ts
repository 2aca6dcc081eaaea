/**
 * The agent's Wayland compositor: a Display with every global real apps
 * need (surfaces, shm, output, xdg-shell, decorations, viewporter, seat,
 * data device), joined into the {@link Compositor} the Qubes side
 * drives. Buffers are released as soon as the commit's listeners returned
 * (when the window is one surface and no listener holds the commit), and
 * frame callbacks fire on the output's 60 Hz refresh clock once the Qubes
 * side called frameDone, while the window is shown.
 */
import { Display, Signal, createShmGlobal } from "../wayland/index.ts";
import { createActivationGlobal } from "./activation.ts";
import type { Compositor, CompositorOptions, ShellWindow, Size } from "./api.ts";
import { DataDevices } from "./data-device.ts";
import { FrameClock } from "./frame-clock.ts";
import { createOutputGlobals } from "./output.ts";
import { Seat } from "./seat.ts";
import type { ShellWindowImpl } from "./shell-window.ts";
import { createSurfaceGlobals, placedSurfaces, treeSurfaces, type Surface } from "./surface.ts";
import { createShellGlobals } from "./xdg-wm-base.ts";

/**
 * Creates the compositor and listens on `options.socket`. Apps connect at
 * once; the Qubes side listens to `events.newWindow` and each window's
 * signals, and drives input and the clipboard. Throws (having freed
 * everything) when the socket is in use or cannot be made.
 */
export function createCompositor(options: CompositorOptions): Compositor {
  const display = new Display();
  const windows: ShellWindowImpl[] = [];
  const newWindow = new Signal<ShellWindow>();
  const shownSurfaces = new WeakSet<Surface>();
  const clock = new FrameClock();
  let destroyed = false;

  const output = createOutputGlobals(display, options.outputSize);
  createShmGlobal(display);

  /** Puts the tree's frame callbacks on the refresh clock, unless its window still waits (for frameDone, or to be shown). */
  const scheduleFrames = (root: Surface): void => {
    const handler = root.destroyed ? null : root.roleHandler;
    if (handler !== null && !handler.framesMayFire) return;
    for (const member of treeSurfaces(root)) clock.schedule(member);
  };

  createSurfaceGlobals(display, {
    committed: (surface) => {
      const root = surface.root;
      const handler = root.destroyed ? null : root.roleHandler;
      if (handler !== null) handler.treeCommitted(surface);
      if (surface.client.destroyed) return;
      const tree = treeSurfaces(root);
      // One surface: its pixels were copied by the commit's listeners (unless one holds them for
      // later). Several: each layer stays readable for the next commits of the window, until the
      // app replaces its buffer.
      if (handler === null || (placedSurfaces(root).length <= 1 && !handler.buffersHeld)) {
        for (const member of tree) member.releaseBuffer();
      }
      // Nobody shows a surface without a shell role (a cursor, a surface not yet given a role): drop its damage.
      if (handler === null) for (const member of tree) member.damage = [];
      scheduleFrames(root);
    },
    destroyed: (surface) => {
      clock.cancel(surface);
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
    framesReady: (window) => scheduleFrames(window.surface),
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
  if (options.onClientEnded !== undefined) {
    const report = options.onClientEnded;
    display.events.disconnect.add((client) => {
      const error = client.error;
      if (error === undefined) return;
      report({ pid: client.credentials.pid, code: error.code, reason: error.message });
    });
  }
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
      output.setSize(size);
    },
    destroy: () => {
      if (destroyed) return;
      destroyed = true;
      clock.destroy();
      display.destroy();
      seat.destroy();
    },
  };
}
