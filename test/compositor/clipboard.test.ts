// The clipboard through the compositor's ClipboardControl, with the real
// wl-clipboard tools. Without a data-control protocol (none is in this
// system's wayland-protocols), wl-copy and wl-paste map a 1×1 toplevel
// titled "wl-clipboard" and wait for keyboard focus, because the core
// protocol offers the selection only to the focused client and takes it
// only with an input serial: so each test focuses that window, as the Qubes
// side would after the daemon's FOCUS. foot and gtk3-demo copy and paste
// with their own shortcuts, through the same selection.
import { readFileSync } from "node:fs";
import path from "node:path";

import { describe, expect, it } from "vitest";

import { close, sendmsg } from "../../native/index.ts";

import { ClientShmPool, SHM_FORMAT_XRGB8888, connect, type ClientConnection } from "../../wayland/index.ts";
import {
  KEY_LEFTCTRL,
  KEY_LEFTSHIFT,
  pressKey,
  useCompositorUnderTest,
  startFoot,
  startGtk3Demo,
  typeText,
  startWlCopy,
  startWlPaste,
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

/** Focuses the app's wl-clipboard window once it is mapped. */
async function focusClipboardWindow(app: RunningApp): Promise<void> {
  const window = await waitForFirstWindow(under.compositor, app, (w) => w.title === "wl-clipboard");
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

describe("clipboard", { timeout: withStartup(30_000) }, () => {
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

  it("stops reading a source that writes past the limit without waiting for it to close", async () => {
    const connection = await connect({ display: under.compositor.socketPath });
    clients.push(connection);
    const seat = connection.bind("wl_seat", 8);
    const manager = connection.bind("wl_data_device_manager", 3);
    const device = manager.request("get_data_device", seat);
    const source = manager.request("create_data_source");
    source.request("offer", "text/plain");
    const held: number[] = [];
    // A hostile source: 4096 bytes, and the fd is never closed.
    source.on("send", (_mime, fd) => {
      sendmsg(fd, new Uint8Array(4096).fill(0x61));
      held.push(fd);
    });
    const changed = selectionChange();
    device.request("set_selection", source, 0);
    await changed;
    const read = await under.compositor.clipboard.read(100);
    expect(read).toEqual({ data: new Uint8Array(100).fill(0x61), truncated: true });
    for (const fd of held) close(fd);
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

  it("gtk3-demo copies an entry's text with Ctrl+C and asks for what set() holds with Ctrl+V", async () => {
    const app = startGtk3Demo(under.display, ["--run=clipboard"], { debug: true });
    apps.push(app);
    under.compositor.events.newWindow.add((window) =>
      window.events.commit.add(() => setImmediate(() => window.frameDone(Date.now()))),
    );
    const window = await waitForFirstWindow(under.compositor, app, (w) => w.title === "Clipboard");
    const seat = under.compositor.seat;
    seat.focus(window);
    // The demo's first entry has the keyboard focus.
    typeText(seat, "typed in GTK");
    pressKey(seat, KEY_A, [KEY_LEFTCTRL]);
    const changed = selectionChange();
    pressKey(seat, KEY_C, [KEY_LEFTCTRL]);
    await changed;
    expect(Buffer.from((await under.compositor.clipboard.read(100))!.data).toString("utf8")).toBe("typed in GTK");
    // Ctrl+V asks for what set() holds, in the best text type (foot's test checks that pasted bytes land).
    under.compositor.clipboard.set(new Uint8Array(Buffer.from("from the Qubes side ✓")));
    const receives = (app.stderr().match(/-> wl_data_offer@\d+\.receive\(/g) ?? []).length;
    pressKey(seat, KEY_V, [KEY_LEFTCTRL]);
    const [receive] = await app.waitForStderr(/-> wl_data_offer@\d+\.receive\("[^"]*"/, 10_000, receives + 1);
    expect(receive).toMatch(/receive\("text\/plain;charset=utf-8"/);
  });

  it("foot copies a double-clicked word with Ctrl+Shift+C and pastes what set() holds with Ctrl+Shift+V", async () => {
    const app = startFoot(under.display, ["sh", "-c", "echo markertext; cat > out.txt"], {
      cwd: under.display.runtimeDir,
    });
    apps.push(app);
    const window = await waitForFirstWindow(under.compositor, app, (w) => w.appId === "foot");
    const commits: Array<() => void> = [];
    window.events.commit.add(() => {
      setImmediate(() => window.frameDone(Date.now()));
      for (const wake of commits.splice(0)) wake();
    });
    const nextCommit = (): Promise<void> => new Promise((resolve) => commits.push(resolve));
    window.frameDone(0);
    const seat = under.compositor.seat;
    seat.focus(window);
    // foot selects from its grid, which has the word once it read the shell's output: try at each new frame.
    let copied = "";
    await nextCommit();
    for (let attempt = 0; attempt < 20 && copied !== "markertext"; attempt++) {
      seat.pointerMove(window, 12, 10);
      for (let click = 0; click < 2; click++) {
        seat.pointerButton(BTN_LEFT, true);
        seat.pointerButton(BTN_LEFT, false);
      }
      // Either foot copies (the selection changes) or it had nothing to select yet and draws again.
      const settled = Promise.race([selectionChange(), nextCommit()]);
      pressKey(seat, KEY_C, [KEY_LEFTCTRL, KEY_LEFTSHIFT]);
      await settled;
      const read = await under.compositor.clipboard.read(100);
      copied = read === null ? "" : Buffer.from(read.data).toString("utf8");
    }
    expect(copied).toBe("markertext");
    under.compositor.clipboard.set(new Uint8Array(Buffer.from("pasted ✓ text")));
    pressKey(seat, KEY_V, [KEY_LEFTCTRL, KEY_LEFTSHIFT]);
    typeText(seat, "\n");
    pressKey(seat, KEY_D, [KEY_LEFTCTRL]);
    expect((await app.exited).code).toBe(0);
    expect(readFileSync(path.join(under.display.runtimeDir, "out.txt"), "utf8")).toBe("pasted ✓ text\n");
  });
});

const BTN_LEFT = 0x110;
const KEY_A = 30;
const KEY_C = 46;
const KEY_V = 47;
const KEY_D = 32;
