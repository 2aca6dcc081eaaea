// The agent's compositor alone (no Qubes side) with real apps and our own
// clients: weston-simple-shm animates with prompt buffer release and its
// pixels reach the commit listener; a client of ours draws a known pattern
// and changes one 64×64 rectangle, and the commit carries exactly those
// pixels and that damage; hostile clients get the right protocol error and
// are cut off while weston-simple-shm keeps running.
import { describe, expect, it } from "vitest";

import type { ShellWindow, WindowCommit } from "../../compositor/index.ts";
import { rawExchange } from "../helpers/raw-wayland.ts";
import {
  ClientShmPool,
  ProtocolError,
  SHM_FORMAT_XRGB8888,
  connect,
  type ClientConnection,
} from "../../wayland/index.ts";
import {
  useCompositorUnderTest,
  startWestonSimpleShm,
  waitForFirstWindow,
  type CompositorUnderTest,
  type RunningApp,
} from "../helpers/apps.ts";
import { withStartup } from "../helpers/processes.ts";

let under: CompositorUnderTest;
const apps: RunningApp[] = [];
const clients: ClientConnection[] = [];

useCompositorUnderTest((started) => (under = started), apps, clients);

/** Resolves after `count` commits of `window`, each checked by `check`; frames are paced by frameDone as the Qubes side would. */
function commits(window: ShellWindow, count: number, check: (commit: WindowCommit) => void): Promise<void> {
  return new Promise((resolve, reject) => {
    let seen = 0;
    const remove = window.events.commit.add((commit) => {
      try {
        check(commit);
      } catch (error) {
        remove();
        reject(error as Error);
        return;
      }
      setImmediate(() => window.frameDone(seen * 16));
      if (++seen === count) {
        remove();
        resolve();
      }
    });
    window.frameDone(0);
  });
}

/** Checks weston-simple-shm's drawing: inside its 20-pixel padding, alpha is 0 exactly on the two diagonals (±6). */
function checkSimpleShmPixels(commit: WindowCommit): void {
  expect(commit.layers).toHaveLength(1);
  const layer = commit.layers[0]!;
  const { bytes, stride, width, height } = layer.pixels;
  expect([layer.x, layer.y, width, height]).toEqual([0, 0, 250, 250]);
  for (let y = 20; y < height - 20; y += 3) {
    for (let x = 20; x < width - 20; x += 3) {
      const alpha = bytes[y * stride + x * 4 + 3];
      const onCross = Math.abs(x - y) <= 6 || Math.abs(x + y - height) <= 6;
      if (alpha !== (onCross ? 0 : 0xff)) throw new Error(`pixel ${x},${y} has alpha ${alpha}`);
    }
  }
}

describe("weston-simple-shm on the agent's compositor", { timeout: withStartup(30_000) }, () => {
  it("animates for 150 frames, each commit with its pixels and its 210×210 damage, with no protocol error", async () => {
    const app = startWestonSimpleShm(under.display, { debug: true });
    apps.push(app);
    const window = await waitForFirstWindow(under.compositor, app, (w) => w.title === "simple-shm");
    expect(window.kind).toBe("toplevel");
    expect(window.pid).toBe(app.child.pid);
    let first = true;
    await commits(window, 150, (commit) => {
      checkSimpleShmPixels(commit);
      expect(commit.size).toEqual({ width: 250, height: 250 });
      if (first) {
        first = false;
      } else {
        expect(commit.resized).toBe(false);
        expect(commit.damage).toEqual([{ x: 20, y: 20, width: 210, height: 210 }]);
      }
    });
    const trace = app.stderr();
    expect(trace).toMatch(/wl_buffer@\d+\.release\(\)/);
    expect(trace).toMatch(/wl_callback@\d+\.done\(\d+\)/);
    expect(trace).not.toMatch(/wl_display@1\.error|protocol error/i);
    expect(app.child.exitCode).toBeNull();
  });

  it("keeps animating when nobody listens to commits (frame callbacks on the fallback clock)", async () => {
    const app = startWestonSimpleShm(under.display, { debug: true });
    apps.push(app);
    await waitForFirstWindow(under.compositor, app);
    await app.waitForStderr(/wl_callback@\d+\.done\(\d+\)/, 10_000, 30);
    expect(under.compositor.windows[0]?.mapped).toBe(true);
    expect(app.stderr()).not.toMatch(/wl_display@1\.error/);
  });
});

/** The pattern our client draws: a distinct value per pixel, and its inverse inside the changed rectangle of version 2. */
function patternPixel(
  x: number,
  y: number,
  changed: { x: number; y: number; width: number; height: number } | null,
): number {
  const base = ((x & 0xff) | ((y & 0xff) << 8) | ((((x * 3 + y) >> 4) & 0xff) << 16)) >>> 0;
  const inside =
    changed !== null &&
    x >= changed.x &&
    y >= changed.y &&
    x < changed.x + changed.width &&
    y < changed.y + changed.height;
  return inside ? (~base & 0xffffff) >>> 0 : base;
}

function fillPattern(
  bytes: Uint8Array,
  width: number,
  height: number,
  changed: Parameters<typeof patternPixel>[2],
): void {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (let y = 0; y < height; y++)
    for (let x = 0; x < width; x++) view.setUint32((y * width + x) * 4, patternPixel(x, y, changed), true);
}

/** Checks that every pixel of the window (window coordinates) in `commit` is the pattern, reading layer 0. */
function checkPattern(
  commit: WindowCommit,
  geometry: { x: number; y: number },
  changed: Parameters<typeof patternPixel>[2],
): void {
  expect(commit.layers).toHaveLength(1);
  const layer = commit.layers[0]!;
  expect([layer.x + geometry.x, layer.y + geometry.y]).toEqual([0, 0]);
  const { bytes, stride } = layer.pixels;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (let y = 0; y < commit.size.height; y++) {
    for (let x = 0; x < commit.size.width; x++) {
      const bx = x + geometry.x;
      const by = y + geometry.y;
      const got = view.getUint32(by * stride + bx * 4, true) & 0xffffff;
      if (got !== patternPixel(bx, by, changed)) throw new Error(`window pixel ${x},${y} is ${got.toString(16)}`);
    }
  }
}

/** Our own client: a toplevel whose first buffer is the pattern, then a second buffer with one 64×64 rectangle changed. */
async function drawPattern(
  socketPath: string,
  size: { width: number; height: number },
  geometry: { x: number; y: number; width: number; height: number } | null,
  changed: { x: number; y: number; width: number; height: number },
): Promise<{ connection: ClientConnection; released: Promise<void> }> {
  const connection = await connect({ display: socketPath });
  clients.push(connection);
  const surface = connection.bind("wl_compositor", 5).request("create_surface");
  const shm = connection.bind("wl_shm", 1);
  const xdgSurface = connection.bind("xdg_wm_base", 5).request("get_xdg_surface", surface);
  const toplevel = xdgSurface.request("get_toplevel");
  toplevel.request("set_title", "pattern");
  toplevel.request("set_app_id", "test.pattern");
  if (geometry !== null)
    xdgSurface.request("set_window_geometry", geometry.x, geometry.y, geometry.width, geometry.height);
  const configured = new Promise<number>((resolve) => xdgSurface.on("configure", (serial) => resolve(serial)));
  surface.request("commit");
  xdgSurface.request("ack_configure", await configured);
  const bytesPerBuffer = size.width * size.height * 4;
  const pool = new ClientShmPool(shm, bytesPerBuffer * 2);
  const first = pool.createBuffer(0, size.width, size.height, size.width * 4, SHM_FORMAT_XRGB8888);
  const second = pool.createBuffer(bytesPerBuffer, size.width, size.height, size.width * 4, SHM_FORMAT_XRGB8888);
  fillPattern(first.bytes, size.width, size.height, null);
  fillPattern(second.bytes, size.width, size.height, changed);
  const released = new Promise<void>((resolve) => first.proxy.on("release", () => resolve()));
  surface.request("attach", first.proxy, 0, 0);
  surface.request("damage_buffer", 0, 0, size.width, size.height);
  surface.request("commit");
  await released;
  surface.request("attach", second.proxy, 0, 0);
  surface.request("damage_buffer", changed.x, changed.y, changed.width, changed.height);
  surface.request("commit");
  return { connection, released: new Promise<void>((resolve) => second.proxy.on("release", () => resolve())) };
}

describe("a client of ours with a known pattern", () => {
  const changed = { x: 100, y: 200, width: 64, height: 64 };

  it.each([
    ["without window geometry", null],
    ["with a window geometry inside the buffer", { x: 10, y: 20, width: 610, height: 420 }],
  ] as const)("delivers the exact pixels and one 64×64 damage rectangle (%s)", async (_name, geometry) => {
    const size = { width: 640, height: 480 };
    const origin = geometry ?? { x: 0, y: 0, width: size.width, height: size.height };
    const seen: Array<{ damage: readonly unknown[]; resized: boolean; size: unknown }> = [];
    const done = new Promise<void>((resolve, reject) => {
      under.compositor.events.newWindow.add((window) => {
        window.events.commit.add((commit) => {
          try {
            checkPattern(commit, origin, seen.length === 0 ? null : changed);
          } catch (error) {
            reject(error as Error);
          }
          seen.push({ damage: commit.damage, resized: commit.resized, size: commit.size });
          if (seen.length === 2) resolve();
        });
      });
    });
    const { released } = await drawPattern(under.compositor.socketPath, size, geometry, changed);
    await done;
    await released;
    const window = under.compositor.windows[0]!;
    expect([window.title, window.appId]).toEqual(["pattern", "test.pattern"]);
    expect(seen).toEqual([
      {
        damage: [{ x: 0, y: 0, width: origin.width, height: origin.height }],
        resized: true,
        size: { width: origin.width, height: origin.height },
      },
      {
        damage: [{ x: changed.x - origin.x, y: changed.y - origin.y, width: 64, height: 64 }],
        resized: false,
        size: { width: origin.width, height: origin.height },
      },
    ]);
  });
});

/** A hostile or buggy client's requests, the interface the error is posted on, and its code. */
const hostile: Array<[string, (c: ClientConnection) => void | Promise<void>, string, number]> = [
  [
    "attaches a buffer before the initial configure",
    (c) => {
      const surface = c.bind("wl_compositor", 5).request("create_surface");
      c.bind("xdg_wm_base", 5).request("get_xdg_surface", surface).request("get_toplevel");
      const pool = new ClientShmPool(c.bind("wl_shm", 1), 64 * 64 * 4);
      surface.request("attach", pool.createBuffer(0, 64, 64, 256, SHM_FORMAT_XRGB8888).proxy, 0, 0);
      surface.request("commit");
    },
    "xdg_surface",
    3,
  ],
  [
    "acks a configure serial it was never sent",
    (c) => {
      const surface = c.bind("wl_compositor", 5).request("create_surface");
      const xdgSurface = c.bind("xdg_wm_base", 5).request("get_xdg_surface", surface);
      xdgSurface.request("get_toplevel");
      surface.request("commit");
      xdgSurface.request("ack_configure", 0xfffffff0);
    },
    "xdg_surface",
    4,
  ],
  [
    "makes a popup from a positioner without a size",
    (c) => {
      const compositor = c.bind("wl_compositor", 5);
      const wm = c.bind("xdg_wm_base", 5);
      const parent = wm.request("get_xdg_surface", compositor.request("create_surface"));
      parent.request("get_toplevel");
      const positioner = wm.request("create_positioner");
      positioner.request("set_anchor_rect", 0, 0, 10, 10);
      wm.request("get_xdg_surface", compositor.request("create_surface")).request("get_popup", parent, positioner);
    },
    "xdg_wm_base",
    5,
  ],
  [
    "sets a viewport destination of 16385×1, wider than the largest output",
    (c) => {
      const surface = c.bind("wl_compositor", 5).request("create_surface");
      c.bind("wp_viewporter", 1).request("get_viewport", surface).request("set_destination", 16385, 1);
    },
    "wp_viewport",
    0,
  ],
  [
    "sets a positioner size of 0×5",
    (c) => c.bind("xdg_wm_base", 5).request("create_positioner").request("set_size", 0, 5),
    "xdg_positioner",
    0,
  ],
  [
    "sets a window geometry of width 0",
    (c) => {
      const surface = c.bind("wl_compositor", 5).request("create_surface");
      c.bind("xdg_wm_base", 5).request("get_xdg_surface", surface).request("set_window_geometry", 0, 0, 0, 10);
    },
    "xdg_surface",
    5,
  ],
  [
    "gives a subsurface the xdg role",
    (c) => {
      const compositor = c.bind("wl_compositor", 5);
      const child = compositor.request("create_surface");
      c.bind("wl_subcompositor", 1).request("get_subsurface", child, compositor.request("create_surface"));
      c.bind("xdg_wm_base", 5).request("get_xdg_surface", child);
    },
    "xdg_wm_base",
    0,
  ],
  [
    "sets a min size above its max size",
    (c) => {
      const surface = c.bind("wl_compositor", 5).request("create_surface");
      const toplevel = c.bind("xdg_wm_base", 5).request("get_xdg_surface", surface).request("get_toplevel");
      toplevel.request("set_max_size", 100, 100);
      toplevel.request("set_min_size", 200, 50);
      surface.request("commit");
    },
    "xdg_toplevel",
    2,
  ],
  [
    "commits an xdg_surface without a role object",
    (c) => {
      const surface = c.bind("wl_compositor", 5).request("create_surface");
      c.bind("xdg_wm_base", 5).request("get_xdg_surface", surface);
      surface.request("commit");
    },
    "xdg_surface",
    1,
  ],
  [
    "destroys its xdg_surface before the toplevel",
    (c) => {
      const surface = c.bind("wl_compositor", 5).request("create_surface");
      const xdgSurface = c.bind("xdg_wm_base", 5).request("get_xdg_surface", surface);
      xdgSurface.request("get_toplevel");
      xdgSurface.request("destroy");
    },
    "xdg_surface",
    6,
  ],
  [
    "builds a region of more than 4096 rectangles",
    (c) => {
      const region = c.bind("wl_compositor", 5).request("create_region");
      for (let i = 0; i <= 4096; i++) region.request("add", i, 0, 1, 1);
    },
    "wl_display",
    2,
  ],
  [
    "nests subsurfaces 40 deep",
    (c) => {
      const compositor = c.bind("wl_compositor", 5);
      const subcompositor = c.bind("wl_subcompositor", 1);
      let parent = compositor.request("create_surface");
      for (let i = 0; i < 40; i++) {
        const child = compositor.request("create_surface");
        subcompositor.request("get_subsurface", child, parent);
        parent = child;
      }
    },
    "wl_subcompositor",
    0,
  ],
  [
    "commits an activation token twice",
    (c) => {
      const token = c.bind("xdg_activation_v1", 1).request("get_activation_token");
      token.request("commit");
      token.request("commit");
    },
    "xdg_activation_token_v1",
    0,
  ],
  [
    "sets a buffer scale of 0",
    (c) => c.bind("wl_compositor", 5).request("create_surface").request("set_buffer_scale", 0),
    "wl_surface",
    0,
  ],
];

/**
 * Runs `act` on a fresh connection and waits for the connection's end. No
 * roundtrip follows the failing request: requests the compositor never read
 * would make the kernel reset the socket, and the client could see the reset
 * before the error event.
 */
async function expectProtocolError(
  socketPath: string,
  act: (c: ClientConnection) => void | Promise<void>,
  interfaceName: string,
  errorCode: number,
): Promise<void> {
  const connection = await connect({ display: socketPath });
  clients.push(connection);
  const ended = new Promise<unknown>((resolve) => connection.events.error.add(resolve));
  await act(connection);
  const error = await ended;
  expect(error).toBeInstanceOf(ProtocolError);
  expect(error).toMatchObject({ code: "server-error", interfaceName, errorCode });
}

describe("hostile and buggy clients", { timeout: withStartup(30_000) }, () => {
  it.each(hostile)("a client that %s gets a protocol error", async (_name, act, interfaceName, errorCode) => {
    await expectProtocolError(under.compositor.socketPath, act, interfaceName, errorCode);
  });

  it("cuts off each hostile client while weston-simple-shm keeps animating", async () => {
    const app = startWestonSimpleShm(under.display, { debug: true });
    apps.push(app);
    const window = await waitForFirstWindow(under.compositor, app);
    const running = commits(window, 60, () => undefined);
    for (const [, act, interfaceName, errorCode] of hostile) {
      await expectProtocolError(under.compositor.socketPath, act, interfaceName, errorCode);
    }
    await running;
    await commits(window, 20, checkSimpleShmPixels);
    expect(app.stderr()).not.toMatch(/wl_display@1\.error/);
    expect(under.compositor.windows.filter((w) => w.title === "simple-shm")).toHaveLength(1);
  });

  it("answers raw bytes that set a positioner size of 0×5 with wl_display.error on the positioner, and hangs up", async () => {
    const xdgWmBase = [...(await globalsOf(under.compositor.socketPath))].find(([, name]) => name === "xdg_wm_base");
    expect(xdgWmBase).toBeDefined();
    const name = xdgWmBase![0];
    // get_registry(2); bind(name, "xdg_wm_base", 5, 3); create_positioner(4); set_size(0, 5) on 4.
    const bytes = Buffer.concat([
      rawMessage(1, 1, [2]),
      rawMessage(2, 0, [name, 12, ...stringWords("xdg_wm_base"), 5, 3]),
      rawMessage(3, 1, [4]),
      rawMessage(4, 1, [0, 5]),
    ]);
    const { received, closed } = await rawExchange(under.compositor.socketPath, bytes);
    expect(closed).toBe(true);
    const errors = displayErrors(received);
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatchObject({ object: 4, code: 0 });
  });
});

/** The globals (name → interface) a fresh client of ours sees. */
async function globalsOf(socketPath: string): Promise<Map<number, string>> {
  const connection = await connect({ display: socketPath });
  const globals = new Map([...connection.globals.values()].map((info) => [info.name, info.interface]));
  connection.destroy();
  return globals;
}

/** One message built by hand, independently of our encoder: header, then 32-bit words. */
function rawMessage(objectId: number, opcode: number, words: number[]): Uint8Array {
  const bytes = new Uint8Array(8 + words.length * 4);
  const view = new DataView(bytes.buffer);
  view.setUint32(0, objectId, true);
  view.setUint32(4, ((bytes.length << 16) | opcode) >>> 0, true);
  words.forEach((word, i) => view.setUint32(8 + i * 4, word >>> 0, true));
  return bytes;
}

/** A string argument's body (NUL-terminated, padded to 4 bytes) as 32-bit words; its length word comes first. */
function stringWords(text: string): number[] {
  const bytes = new Uint8Array(Math.ceil((text.length + 1) / 4) * 4);
  bytes.set(Buffer.from(text, "latin1"));
  const view = new DataView(bytes.buffer);
  return Array.from({ length: bytes.length / 4 }, (_, i) => view.getUint32(i * 4, true));
}

/** The wl_display.error events in a byte stream. */
function displayErrors(bytes: Uint8Array): Array<{ object: number; code: number; text: string }> {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const errors: Array<{ object: number; code: number; text: string }> = [];
  for (let at = 0; at + 8 <= bytes.length;) {
    const size = view.getUint32(at + 4, true) >>> 16;
    if (size < 8) break;
    if (view.getUint32(at, true) === 1 && (view.getUint32(at + 4, true) & 0xffff) === 0) {
      const length = view.getUint32(at + 16, true);
      errors.push({
        object: view.getUint32(at + 8, true),
        code: view.getUint32(at + 12, true),
        text: Buffer.from(bytes.subarray(at + 20, at + 20 + length - 1)).toString("utf8"),
      });
    }
    at += size;
  }
  return errors;
}
