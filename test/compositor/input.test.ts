// Input injected through the compositor's SeatControl reaches real apps:
// wev prints the keys (with the keysyms our keymap gives them and the
// modifiers that follow Shift), pointer enter/motion/button/axis/leave at
// window coordinates, and keyboard leave; foot turns typed keys into a file
// through `cat`, and asks for a cursor when the pointer enters; a client of
// ours hides the cursor and is cut off for a cursor role on its toplevel.
import { readFileSync } from "node:fs";
import path from "node:path";

import { describe, expect, it } from "vitest";

import { ClientShmPool, SHM_FORMAT_XRGB8888, connect } from "../../wayland/index.ts";

import {
  KEY_LEFTCTRL,
  KEY_LEFTSHIFT,
  parseWevEvents,
  pressKey,
  useCompositorUnderTest,
  startFoot,
  startWev,
  typeText,
  waitForFirstWindow,
  waitForWindow,
  type CompositorUnderTest,
  type RunningApp,
} from "../helpers/apps.ts";
import { withStartup } from "../helpers/processes.ts";

let under: CompositorUnderTest;
const apps: RunningApp[] = [];

useCompositorUnderTest((started) => (under = started), apps);

/** evdev codes used below. */
const KEY_A = 30;
const KEY_D = 32;
const BTN_LEFT = 0x110;
const BTN_RIGHT = 0x111;

describe("wev", { timeout: withStartup(30_000) }, () => {
  it("prints the keys, modifiers, pointer events and focus changes injected through the seat", async () => {
    const app = startWev(under.display);
    apps.push(app);
    const window = await waitForFirstWindow(under.compositor, app, (w) => w.title === "wev");
    const seat = under.compositor.seat;
    seat.focus(window);
    expect(seat.focused).toBe(window);
    await app.waitForStdout(/wl_keyboard\] enter/);
    pressKey(seat, KEY_A);
    pressKey(seat, KEY_A, [KEY_LEFTSHIFT]);
    expect(seat.pressedKeys.size).toBe(0);
    seat.pointerMove(window, 10.5, 20);
    seat.pointerMove(window, 30, 40.25);
    seat.pointerButton(BTN_LEFT, true);
    seat.pointerButton(BTN_LEFT, false);
    seat.pointerButton(BTN_RIGHT, true);
    seat.pointerButton(BTN_RIGHT, false);
    seat.pointerAxis(0, 1);
    seat.pointerAxis(1, -2);
    seat.pointerLeave();
    seat.focus(null);
    await app.waitForStdout(/wl_keyboard\] leave/);

    const events = parseWevEvents(app.stdout());
    const keys = events.filter((e) => e.event === "key").map((e) => e.text.replace(/serial: \d+; time: \d+; /, ""));
    expect(keys).toEqual([
      expect.stringMatching(/^key: 38; state: 1 \(pressed\)\nsym: a\s+\(97\), utf8: 'a'$/),
      expect.stringMatching(/^key: 38; state: 0 \(released\)\nsym: a\s+\(97\)/),
      expect.stringMatching(/^key: 50; state: 1 \(pressed\)\nsym: Shift_L/),
      expect.stringMatching(/^key: 38; state: 1 \(pressed\)\nsym: A\s+\(65\), utf8: 'A'$/),
      expect.stringMatching(/^key: 38; state: 0 \(released\)\nsym: A/),
      expect.stringMatching(/^key: 50; state: 0 \(released\)\nsym: Shift_L/),
    ]);
    const depressed = events
      .filter((e) => e.interface === "wl_keyboard" && e.event === "modifiers")
      .map((e) => /depressed: (\w+)/.exec(e.text)?.[1]);
    expect(depressed).toEqual(["00000000", "00000001", "00000000"]);

    const pointer = events.filter((e) => e.interface === "wl_pointer" && e.event !== "frame");
    expect(pointer.map((e) => `${e.event}: ${e.text.replace(/(serial|time): \d+; /g, "")}`)).toEqual([
      "enter: surface: 3, x, y: 10.500000, 20.000000",
      "motion: x, y: 30.000000, 40.250000",
      "button: button: 272 (left), state: 1 (pressed)",
      "button: button: 272 (left), state: 0 (released)",
      "button: button: 273 (right), state: 1 (pressed)",
      "button: button: 273 (right), state: 0 (released)",
      "axis_source: 0 (wheel)",
      // wev prints axis_discrete under the name axis_stop.
      expect.stringMatching(/^axis_(stop|discrete|value120): axis: 0 \(vertical\), (discrete: 1|value120: 120)$/),
      "axis: axis: 0 (vertical), value: 15.000000",
      "axis_source: 0 (wheel)",
      expect.stringMatching(/^axis_(stop|discrete|value120): axis: 1 \(horizontal\), (discrete: -2|value120: -240)$/),
      "axis: axis: 1 (horizontal), value: -30.000000",
      "leave: surface: 3",
    ]);
    expect(seat.focused).toBeNull();
  });

  it("gets the modifiers of a key held before focus, and no keys while unfocused", async () => {
    const app = startWev(under.display);
    apps.push(app);
    const window = await waitForFirstWindow(under.compositor, app);
    const seat = under.compositor.seat;
    seat.key(KEY_A, true);
    seat.key(KEY_A, false);
    seat.key(KEY_LEFTSHIFT, true);
    seat.focus(window);
    await app.waitForStdout(/wl_keyboard\] modifiers[^\n]*\n\s+depressed: 00000001/);
    seat.key(KEY_LEFTSHIFT, false);
    await app.waitForStdout(/key: 50; state: 0/);
    expect(app.stdout()).not.toMatch(/key: 38/);
  });
});

describe("foot", { timeout: withStartup(30_000) }, () => {
  it("writes typed text into a file through `cat`, and Ctrl+D ends it", async () => {
    const app = startFoot(under.display, ["sh", "-c", "cat > out.txt"], { cwd: under.display.runtimeDir });
    apps.push(app);
    const window = await waitForFirstWindow(under.compositor, app, (w) => w.appId === "foot");
    expect(window.title).not.toBe("");
    window.events.commit.add(() => setImmediate(() => window.frameDone(Date.now())));
    const seat = under.compositor.seat;
    seat.focus(window);
    typeText(seat, "Hello, World! 1+1=2 ~/path_x\n");
    pressKey(seat, KEY_D, [KEY_LEFTCTRL]);
    const { code } = await app.exited;
    expect(code).toBe(0);
    expect(readFileSync(path.join(under.display.runtimeDir, "out.txt"), "utf8")).toBe("Hello, World! 1+1=2 ~/path_x\n");
  });

  it("asks for a cursor when the pointer enters its window", async () => {
    const app = startFoot(under.display, ["sh", "-c", "cat > /dev/null"], { cwd: under.display.runtimeDir });
    apps.push(app);
    const window = await waitForFirstWindow(under.compositor, app, (w) => w.appId === "foot");
    const cursor = new Promise<{ window: unknown; name: string | null }>((resolve) =>
      under.compositor.seat.events.cursor.add(resolve),
    );
    under.compositor.seat.pointerMove(window, 50, 50);
    expect(await cursor).toEqual({ window, name: "default" });
  });
});

describe("cursor requests of a client of ours", () => {
  it("hide the cursor with a null surface and cannot give a toplevel's surface the cursor role", async () => {
    const connection = await connect({ display: under.compositor.socketPath });
    const compositor = connection.bind("wl_compositor", 5);
    const pointer = connection.bind("wl_seat", 8).request("get_pointer");
    const surface = compositor.request("create_surface");
    const xdgSurface = connection.bind("xdg_wm_base", 5).request("get_xdg_surface", surface);
    xdgSurface.request("get_toplevel");
    const configured = new Promise<number>((resolve) => xdgSurface.on("configure", resolve));
    surface.request("commit");
    xdgSurface.request("ack_configure", await configured);
    const pool = new ClientShmPool(connection.bind("wl_shm", 1), 64 * 64 * 4);
    surface.request("attach", pool.createBuffer(0, 64, 64, 256, SHM_FORMAT_XRGB8888).proxy, 0, 0);
    surface.request("commit");
    const window = await waitForWindow(under.compositor, null);
    const entered = new Promise<number>((resolve) => pointer.on("enter", (serial) => resolve(serial)));
    under.compositor.seat.pointerMove(window, 3, 4);
    const serial = await entered;
    const cursors: Array<{ window: unknown; name: string | null }> = [];
    under.compositor.seat.events.cursor.add((cursor) => cursors.push(cursor));
    pointer.request("set_cursor", serial, compositor.request("create_surface"), 0, 0);
    pointer.request("set_cursor", serial, null, 0, 0);
    await connection.roundtrip();
    expect(cursors).toEqual([
      { window, name: "default" },
      { window, name: null },
    ]);
    const ended = new Promise<unknown>((resolve) => connection.events.error.add(resolve));
    pointer.request("set_cursor", serial, surface, 0, 0);
    expect(await ended).toMatchObject({ interfaceName: "wl_pointer", errorCode: 0 });
    connection.destroy();
  });
});
