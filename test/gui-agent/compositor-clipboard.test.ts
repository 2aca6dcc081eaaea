// The clipboard through the compositor's ClipboardControl, with the real
// wl-clipboard tools. Without a data-control protocol (none is in this
// system's wayland-protocols), wl-copy and wl-paste map a 1×1 toplevel
// titled "wl-clipboard" and wait for keyboard focus, because the core
// protocol offers the selection only to the focused client and takes it
// only with an input serial: so each test focuses that window, as the Qubes
// side would after the daemon's FOCUS.
import { afterEach, beforeEach, describe, expect, it } from "vitest";

import { ClientShmPool, SHM_FORMAT_XRGB8888, connect, type ClientConnection } from "../../wayland/index.ts";
import {
  startCompositorUnderTest,
  startWlCopy,
  startWlPaste,
  waitForWindow,
  type CompositorUnderTest,
  type RunningApp,
} from "../helpers/apps.ts";

let under: CompositorUnderTest;
const apps: RunningApp[] = [];
const clients: ClientConnection[] = [];

beforeEach(async () => {
  under = await startCompositorUnderTest();
});

afterEach(async () => {
  for (const app of apps.splice(0)) await app.stop();
  for (const client of clients.splice(0)) client.destroy();
  under.destroy();
});

/** Focuses the app's wl-clipboard window once it is mapped. */
async function focusClipboardWindow(app: RunningApp): Promise<void> {
  const window = await waitForWindow(under.compositor, app, (w) => w.title === "wl-clipboard");
  expect(window.size).toEqual({ width: 1, height: 1 });
  under.compositor.seat.focus(window);
}

/** Resolves at the next selection change. */
function selectionChange(): Promise<void> {
  return new Promise((resolve) => {
    const remove = under.compositor.clipboard.events.change.add(() => {
      remove();
      resolve();
    });
  });
}

const text = "héllo ✓ from wl-copy, line 1\nline 2";

describe("clipboard", () => {
  it("reads wl-copy's text, whole or cut at the limit", async () => {
    expect(await under.compositor.clipboard.read(100)).toBeNull();
    const copy = startWlCopy(under.display, text);
    apps.push(copy);
    const changed = selectionChange();
    await focusClipboardWindow(copy);
    await changed;
    const whole = await under.compositor.clipboard.read(1000);
    expect(whole).not.toBeNull();
    expect(Buffer.from(whole!.data).toString("utf8")).toBe(text);
    expect(whole!.truncated).toBe(false);
    const cut = await under.compositor.clipboard.read(5);
    expect(cut).toEqual({ data: new Uint8Array(Buffer.from(text).subarray(0, 5)), truncated: true });
  });

  it("gives what set() holds to wl-paste, and ends wl-copy's ownership", async () => {
    const copy = startWlCopy(under.display, "older");
    apps.push(copy);
    const changed = selectionChange();
    await focusClipboardWindow(copy);
    await changed;
    under.compositor.clipboard.set(new Uint8Array(Buffer.from(text)));
    // wl-copy --foreground ends once its source is cancelled.
    expect((await copy.exited).code).toBe(0);
    const paste = startWlPaste(under.display);
    apps.push(paste);
    await focusClipboardWindow(paste);
    expect((await paste.exited).code).toBe(0);
    expect(paste.stdout()).toBe(text);
    expect(Buffer.from((await under.compositor.clipboard.read(1000))!.data).toString("utf8")).toBe(text);
  });

  it("reads nothing from a selection that offers no text type", async () => {
    const connection = await connect({ display: under.compositor.socketPath });
    clients.push(connection);
    const seat = connection.bind("wl_seat", 8);
    const manager = connection.bind("wl_data_device_manager", 3);
    const device = manager.request("get_data_device", seat);
    const source = manager.request("create_data_source");
    source.request("offer", "image/png");
    const changed = selectionChange();
    device.request("set_selection", source, 0);
    await changed;
    expect(await under.compositor.clipboard.read(100)).toBeNull();
  });

  it("offers the selection to the client that gets keyboard focus, before its enter", async () => {
    under.compositor.clipboard.set(new Uint8Array(Buffer.from("for the focused client")));
    const connection = await connect({ display: under.compositor.socketPath });
    clients.push(connection);
    const seat = connection.bind("wl_seat", 8);
    const keyboard = seat.request("get_keyboard");
    const device = connection.bind("wl_data_device_manager", 3).request("get_data_device", seat);
    const order: string[] = [];
    const mimeTypes: string[] = [];
    device.on("data_offer", (offer) => offer.on("offer", (mime) => mimeTypes.push(mime)));
    device.on("selection", (offer) => order.push(offer === null ? "selection null" : "selection"));
    keyboard.on("enter", () => order.push("enter"));
    const surface = connection.bind("wl_compositor", 5).request("create_surface");
    const xdgSurface = connection.bind("xdg_wm_base", 5).request("get_xdg_surface", surface);
    xdgSurface.request("get_toplevel");
    const configured = new Promise<number>((resolve) => xdgSurface.on("configure", resolve));
    surface.request("commit");
    xdgSurface.request("ack_configure", await configured);
    const pool = new ClientShmPool(connection.bind("wl_shm", 1), 4);
    surface.request("attach", pool.createBuffer(0, 1, 1, 4, SHM_FORMAT_XRGB8888).proxy, 0, 0);
    surface.request("commit");
    const window = await waitForWindow(under.compositor, null);
    await connection.roundtrip();
    expect(order).toEqual([]);
    under.compositor.seat.focus(window);
    await connection.roundtrip();
    expect(order).toEqual(["selection", "enter"]);
    expect(mimeTypes).toEqual(["text/plain;charset=utf-8", "text/plain", "UTF8_STRING", "STRING", "TEXT"]);
  });
});
