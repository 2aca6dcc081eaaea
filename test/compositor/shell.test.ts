// xdg-shell as real apps use it on the agent's compositor: gtk3-demo's
// menus become popups of the right parent, placed by their positioner and
// kept on the output, dismissed by close(); foot follows the configure
// handshake and asks for server-side decorations; weston-simple-shm ends on
// close(); our own client's window-state requests, size hints and title
// changes reach the signals; wl_output re-announces a new size.
import { describe, expect, it } from "vitest";

import { createCompositor, type ShellWindow, type WindowRequest } from "../../compositor/index.ts";
import { compileKeymap } from "../../gui-agent/index.ts";
import { ClientShmPool, SHM_FORMAT_XRGB8888, connect, type ClientConnection, type Proxy } from "../../wayland/index.ts";
import {
  pressKey,
  useCompositorUnderTest,
  startApp,
  startFoot,
  startGtk3Demo,
  startWestonSimpleShm,
  startWev,
  waitForFirstWindow,
  waitForWindow,
  type CompositorUnderTest,
  type RunningApp,
} from "../helpers/apps.ts";
import { withStartup } from "../helpers/processes.ts";

let under: CompositorUnderTest;
const apps: RunningApp[] = [];
const clients: ClientConnection[] = [];

useCompositorUnderTest((started) => (under = started), apps, clients);

const KEY_ESC = 1;
const KEY_F10 = 68;

/** Paces every window's frames as the Qubes side would, so GTK keeps drawing. */
function paceFrames(): void {
  const pace = (window: ShellWindow): void => {
    window.events.commit.add(() => setImmediate(() => window.frameDone(Date.now())));
  };
  for (const window of under.compositor.windows) pace(window);
  under.compositor.events.newWindow.add(pace);
}

/** Resolves when `window` is destroyed. */
function destroyed(window: ShellWindow): Promise<void> {
  return new Promise((resolve) => window.events.destroy.add(() => resolve()));
}

describe("gtk3-demo menus", { timeout: withStartup(30_000) }, () => {
  it("opens its menu as a popup of the Menus window, placed below the menu bar item, closed by Escape", async () => {
    paceFrames();
    const app = startGtk3Demo(under.display, ["--run=menus"]);
    apps.push(app);
    const menus = await waitForFirstWindow(under.compositor, app, (w) => w.title === "Menus");
    expect(menus.kind).toBe("toplevel");
    expect(menus.appId).toBe("gtk3-demo");
    const main = await waitForWindow(under.compositor, app, (w) => w.title === "Application Class");
    expect(main.appId).toBe("gtk3-demo");
    under.compositor.seat.focus(menus);
    pressKey(under.compositor.seat, KEY_F10);
    const popup = await waitForWindow(under.compositor, app, (w) => w.kind === "popup");
    expect(popup.parent).toBe(menus);
    expect(popup.positioner).not.toBeNull();
    const anchor = popup.positioner!.anchorRect;
    // Anchored at the bottom-left of the menu item, growing down and right: it starts where the item ends.
    expect(popup.popupRect).toEqual({
      x: anchor.x,
      y: anchor.y + anchor.height,
      width: popup.positioner!.width,
      height: popup.positioner!.height,
    });
    expect(popup.size).toEqual({ width: popup.popupRect!.width, height: popup.popupRect!.height });
    // The grabbing popup has the keyboard: Escape closes the menu.
    const gone = destroyed(popup);
    pressKey(under.compositor.seat, KEY_ESC);
    await gone;
    expect(under.compositor.windows).not.toContain(popup);
    expect(app.child.exitCode).toBeNull();
  });

  it("keeps the menu on the screen when its window sits at the bottom, and close() dismisses it", async () => {
    paceFrames();
    const app = startGtk3Demo(under.display, ["--run=menus"]);
    apps.push(app);
    const menus = await waitForFirstWindow(under.compositor, app, (w) => w.title === "Menus");
    const screenY = 1080 - 90;
    menus.placeOnScreen(300, screenY);
    under.compositor.seat.focus(menus);
    pressKey(under.compositor.seat, KEY_F10);
    const popup = await waitForWindow(under.compositor, app, (w) => w.kind === "popup");
    const rect = popup.popupRect!;
    expect(screenY + rect.y).toBeGreaterThanOrEqual(0);
    expect(screenY + rect.y + rect.height).toBeLessThanOrEqual(1080);
    // Flipped above the anchor rather than below it.
    expect(rect.y + rect.height).toBeLessThanOrEqual(popup.positioner!.anchorRect.y);
    const gone = destroyed(popup);
    popup.close();
    await gone;
  });
});

describe("toplevels of real apps", { timeout: withStartup(30_000) }, () => {
  it("foot asks for server-side decorations and follows a configure to 800×600 through the ack", async () => {
    paceFrames();
    const app = startFoot(under.display, ["sh", "-c", "cat > /dev/null"]);
    apps.push(app);
    const window = await waitForFirstWindow(under.compositor, app, (w) => w.appId === "foot");
    const acked = new Promise<number>((resolve) => window.events.ackConfigure.add(resolve));
    const resized = new Promise<{ width: number; height: number }>((resolve) =>
      window.events.commit.add((commit) => {
        if (commit.resized) resolve(commit.size);
      }),
    );
    const serial = window.configure({ width: 800, height: 600 }, { activated: true });
    expect(await acked).toBe(serial);
    expect(await resized).toEqual({ width: 800, height: 600 });
    expect(window.size).toEqual({ width: 800, height: 600 });
    expect(app.stderr()).toMatch(/using SSD decorations/);
  });

  it("foot asks for activation (xdg-activation) when it rings the bell unfocused with bell.urgent", async () => {
    const requests: WindowRequest[] = [];
    const activated = new Promise<void>((resolve) =>
      under.compositor.events.newWindow.add((window) =>
        window.events.request.add((request) => {
          requests.push(request);
          if (request.kind === "activate") resolve();
        }),
      ),
    );
    const app = startFoot(under.display, ["sh", "-c", "printf '\\a'; cat"], { footOptions: ["bell.urgent=yes"] });
    apps.push(app);
    await activated;
    expect(requests).toContainEqual({ kind: "activate" });
  });

  it("weston-simple-shm ends when its window is closed", async () => {
    const app = startWestonSimpleShm(under.display);
    apps.push(app);
    const window = await waitForFirstWindow(under.compositor, app);
    const gone = destroyed(window);
    window.close();
    await gone;
    expect((await app.exited).code).toBe(0);
  });

  it("wayland-info sees every global with its version and the output's size", async () => {
    const app = startApp("wayland-info", [], under.display, { aptPackage: "wayland-utils" });
    apps.push(app);
    await app.exited;
    const out = app.stdout();
    for (const [name, version] of [
      ["wl_compositor", 5],
      ["wl_subcompositor", 1],
      ["wl_shm", 1],
      ["wl_output", 4],
      ["zxdg_output_manager_v1", 3],
      ["xdg_wm_base", 5],
      ["zxdg_decoration_manager_v1", 1],
      ["wp_viewporter", 1],
      ["wl_seat", 8],
      ["wl_data_device_manager", 3],
      ["xdg_activation_v1", 1],
    ] as const) {
      expect(out).toMatch(new RegExp(`interface: '${name}',\\s+version:\\s+${version},`));
    }
    expect(out).toMatch(/width: 1920 px, height: 1080 px, refresh: 60\.000 Hz/);
    expect(out).toMatch(/logical_width: 1920, logical_height: 1080/);
  });
});

describe("a client of ours", () => {
  it("hears a new output size on the wl_output and xdg_output it bound", async () => {
    const connection = await connect({ display: under.compositor.socketPath });
    clients.push(connection);
    const output = connection.bind("wl_output", 4);
    const xdgOutput = connection.bind("zxdg_output_manager_v1", 3).request("get_xdg_output", output);
    const modes: string[] = [];
    output.on("mode", (_flags, width, height) => modes.push(`mode ${width}x${height}`));
    output.on("done", () => modes.push("done"));
    xdgOutput.on("logical_size", (width, height) => modes.push(`logical ${width}x${height}`));
    await connection.roundtrip();
    under.compositor.setOutputSize({ width: 1280, height: 720 });
    await connection.roundtrip();
    expect(modes).toEqual([
      "mode 1920x1080",
      "done",
      "logical 1920x1080",
      "done",
      "logical 1280x720",
      "mode 1280x720",
      "done",
    ]);
  });

  it("announces title, app id, size hints and window-state requests through the window's signals", async () => {
    const connection = await connect({ display: under.compositor.socketPath });
    clients.push(connection);
    const surface = connection.bind("wl_compositor", 5).request("create_surface");
    const xdgSurface = connection.bind("xdg_wm_base", 5).request("get_xdg_surface", surface);
    const toplevel = xdgSurface.request("get_toplevel");
    const window = await new Promise<ShellWindow>((resolve) => under.compositor.events.newWindow.add(resolve));
    const seen: string[] = [];
    window.events.title.add((w) => seen.push(`title ${w.title}`));
    window.events.appId.add((w) => seen.push(`appId ${w.appId}`));
    window.events.sizeHints.add((w) =>
      seen.push(`hints ${w.minSize.width}x${w.minSize.height} ${w.maxSize.width}x${w.maxSize.height}`),
    );
    window.events.request.add((request: WindowRequest) => seen.push(`request ${JSON.stringify(request)}`));
    toplevel.request("set_title", "Ünïcode ✓ title");
    toplevel.request("set_app_id", "org.example.Test");
    toplevel.request("set_min_size", 200, 100);
    toplevel.request("set_max_size", 0, 900);
    toplevel.request("set_fullscreen", null);
    toplevel.request("unset_fullscreen");
    toplevel.request("set_maximized");
    toplevel.request("set_minimized");
    toplevel.request("show_window_menu", connection.bind("wl_seat", 8), 0, 5, 6);
    surface.request("commit");
    await connection.roundtrip();
    expect(seen).toEqual([
      "title Ünïcode ✓ title",
      "appId org.example.Test",
      'request {"kind":"fullscreen","on":true}',
      'request {"kind":"fullscreen","on":false}',
      'request {"kind":"maximize","on":true}',
      'request {"kind":"minimize"}',
      'request {"kind":"windowMenu","x":5,"y":6}',
      "hints 200x100 0x900",
    ]);
    expect(window.mapped).toBe(false);
  });
});

/** A mapped xdg surface of our own: a toplevel, or a popup of `parent` placed by `positioner`. */
interface OurSurface {
  connection: ClientConnection;
  surface: Proxy<"wl_surface">;
  xdgSurface: Proxy<"xdg_surface">;
  popup: Proxy<"xdg_popup"> | null;
  window: ShellWindow;
  /** Popup configure events received: x, y, width, height. */
  popupConfigures: number[][];
}

async function ourSurface(
  connection: ClientConnection,
  size: { width: number; height: number },
  popupOf?: { parent: OurSurface; positioner: Proxy<"xdg_positioner">; grab: boolean },
): Promise<OurSurface> {
  const surface = connection.bind("wl_compositor", 5).request("create_surface");
  const xdgSurface = connection.bind("xdg_wm_base", 5).request("get_xdg_surface", surface);
  const created = new Promise<ShellWindow>((resolve) => {
    const remove = under.compositor.events.newWindow.add((window) => {
      remove();
      resolve(window);
    });
  });
  const popupConfigures: number[][] = [];
  let popup: Proxy<"xdg_popup"> | null = null;
  if (popupOf === undefined) {
    xdgSurface.request("get_toplevel");
  } else {
    popup = xdgSurface.request("get_popup", popupOf.parent.xdgSurface, popupOf.positioner);
    popup.on("configure", (x, y, width, height) => popupConfigures.push([x, y, width, height]));
    if (popupOf.grab) popup.request("grab", connection.bind("wl_seat", 8), 0);
  }
  const window = await created;
  const configured = new Promise<number>((resolve) => xdgSurface.on("configure", resolve));
  surface.request("commit");
  xdgSurface.request("ack_configure", await configured);
  const pool = new ClientShmPool(connection.bind("wl_shm", 1), size.width * size.height * 4);
  surface.request(
    "attach",
    pool.createBuffer(0, size.width, size.height, size.width * 4, SHM_FORMAT_XRGB8888).proxy,
    0,
    0,
  );
  surface.request("commit");
  await connection.roundtrip();
  expect(window.mapped).toBe(true);
  return { connection, surface, xdgSurface, popup, window, popupConfigures };
}

function positioner(connection: ClientConnection, anchorY: number): Proxy<"xdg_positioner"> {
  const created = connection.bind("xdg_wm_base", 5).request("create_positioner");
  created.request("set_size", 100, 50);
  created.request("set_anchor_rect", 10, anchorY, 20, 10);
  created.request("set_anchor", 6); // bottom_left
  created.request("set_gravity", 8); // bottom_right
  created.request("set_constraint_adjustment", 2 | 8); // slide_y, flip_y
  return created;
}

describe("windows and popups of a client of ours", () => {
  it("are repositioned on request, with the token, and kept on screen", async () => {
    const connection = await connect({ display: under.compositor.socketPath });
    clients.push(connection);
    const parent = await ourSurface(connection, { width: 300, height: 200 });
    parent.window.placeOnScreen(100, 100);
    const popup = await ourSurface(
      connection,
      { width: 100, height: 50 },
      {
        parent,
        positioner: positioner(connection, 20),
        grab: false,
      },
    );
    expect(popup.window.parent).toBe(parent.window);
    expect(popup.popupConfigures).toEqual([[10, 30, 100, 50]]);
    expect(popup.window.popupRect).toEqual({ x: 10, y: 30, width: 100, height: 50 });
    const tokens: number[] = [];
    popup.popup!.on("repositioned", (token) => tokens.push(token));
    const repositioned = new Promise<void>((resolve) => popup.window.events.reposition.add(() => resolve()));
    // Anchored 960 below the parent's top at screen y 100: below the anchor it would leave the screen, so it flips.
    popup.popup!.request("reposition", positioner(connection, 960), 7);
    await repositioned;
    await connection.roundtrip();
    expect(tokens).toEqual([7]);
    expect(popup.window.popupRect).toEqual({ x: 10, y: 910, width: 100, height: 50 });
    expect(popup.popupConfigures.at(-1)).toEqual([10, 910, 100, 50]);
  });

  it("unmap with a null buffer, and map again after a new initial commit and configure", async () => {
    const connection = await connect({ display: under.compositor.socketPath });
    clients.push(connection);
    const first = await ourSurface(connection, { width: 30, height: 20 });
    const events: string[] = [];
    first.window.events.map.add(() => events.push("map"));
    first.window.events.unmap.add(() => events.push("unmap"));
    first.window.events.commit.add((commit) => events.push(`commit ${commit.size.width}x${commit.size.height}`));
    first.surface.request("attach", null, 0, 0);
    first.surface.request("commit");
    await connection.roundtrip();
    expect(first.window.mapped).toBe(false);
    const configured = new Promise<number>((resolve) => first.xdgSurface.on("configure", resolve));
    first.surface.request("commit");
    const serial = await configured;
    first.xdgSurface.request("ack_configure", serial);
    const pool = new ClientShmPool(connection.bind("wl_shm", 1), 40 * 10 * 4);
    first.surface.request("attach", pool.createBuffer(0, 40, 10, 160, SHM_FORMAT_XRGB8888).proxy, 0, 0);
    first.surface.request("commit");
    await connection.roundtrip();
    expect(events).toEqual(["unmap", "map", "commit 40x10"]);
    expect(first.window.mapped).toBe(true);
    expect(under.compositor.windows).toContain(first.window);
  });

  it("are dismissed when their parent unmaps", async () => {
    const connection = await connect({ display: under.compositor.socketPath });
    clients.push(connection);
    const parent = await ourSurface(connection, { width: 300, height: 200 });
    const popup = await ourSurface(
      connection,
      { width: 100, height: 50 },
      {
        parent,
        positioner: positioner(connection, 20),
        grab: false,
      },
    );
    const done = new Promise<void>((resolve) => popup.popup!.on("popup_done", () => resolve()));
    const unmapped = new Promise<void>((resolve) => parent.window.events.unmap.add(() => resolve()));
    parent.surface.request("attach", null, 0, 0);
    parent.surface.request("commit");
    await unmapped;
    await done;
    expect(parent.window.mapped).toBe(false);
  });

  it("with a grab take the keyboard, and a click on another app's window dismisses them", async () => {
    const connection = await connect({ display: under.compositor.socketPath });
    clients.push(connection);
    const keyboard = connection.bind("wl_seat", 8).request("get_keyboard");
    const entered: number[] = [];
    keyboard.on("enter", (_serial, surface) => entered.push(surface.id));
    const parent = await ourSurface(connection, { width: 300, height: 200 });
    under.compositor.seat.focus(parent.window);
    const popup = await ourSurface(
      connection,
      { width: 100, height: 50 },
      {
        parent,
        positioner: positioner(connection, 20),
        grab: true,
      },
    );
    expect(under.compositor.seat.focused).toBe(parent.window);
    expect(entered).toHaveLength(2); // The parent, then the grabbing popup.

    const other = await connect({ display: under.compositor.socketPath });
    clients.push(other);
    const otherWindow = await ourSurface(other, { width: 50, height: 50 });
    const done = new Promise<void>((resolve) => popup.popup!.on("popup_done", () => resolve()));
    under.compositor.seat.pointerMove(otherWindow.window, 5, 5);
    under.compositor.seat.pointerButton(0x110, true);
    await done;
    await connection.roundtrip();
    expect(entered).toHaveLength(3); // Back to the parent.
  });
});

describe("the compositor", { timeout: withStartup(30_000) }, () => {
  it("refuses a socket another compositor listens on, and frees what it made", async () => {
    const keymap = await compileKeymap();
    expect(() =>
      createCompositor({ socket: under.compositor.socketPath, outputSize: { width: 640, height: 480 }, keymap }),
    ).toThrow(/in use/);
    const app = startWestonSimpleShm(under.display);
    apps.push(app);
    await waitForFirstWindow(under.compositor, app);
  });
});

describe("values from the Qubes side", { timeout: withStartup(30_000) }, () => {
  it("are clamped, never thrown on: NaN and huge sizes, positions, coordinates and codes", async () => {
    const app = startWev(under.display);
    apps.push(app);
    const window = await waitForFirstWindow(under.compositor, app);
    const seat = under.compositor.seat;
    expect(() => {
      window.configure({ width: Number.NaN, height: 1e12 }, { activated: true });
      window.placeOnScreen(Number.NaN, Number.POSITIVE_INFINITY);
      under.compositor.setOutputSize({ width: 0, height: Number.NaN });
      seat.focus(window);
      seat.key(-1, true);
      seat.key(2 ** 32, true);
      seat.setModifiers(-1, 2 ** 40, Number.NaN, 0);
      seat.pointerMove(window, Number.NaN, 1);
      seat.pointerMove(window, 1e9, -1e9);
      seat.pointerMove(window, 5, 5);
      seat.pointerButton(2 ** 31, true);
      seat.pointerAxis(7, 1);
      seat.pointerAxis(0, Number.NaN);
      seat.pointerAxis(0, 1e6);
    }).not.toThrow();
    await app.waitForStdout(/xdg_toplevel\] configure: width: 0; height: 32767/);
    await app.waitForStdout(/wl_pointer\] enter: serial: \d+; surface: \d+, x, y: 5\.0+, 5\.0+/);
    // 10^6 wheel steps are taken as 100.
    await app.waitForStdout(/wl_pointer\] axis: time: \d+; axis: 0 \(vertical\), value: 1500\.0+/);
    expect(app.stdout()).not.toMatch(/wl_pointer\] button|wl_keyboard\] key:/);
    expect(app.child.exitCode).toBeNull();
  });
});
