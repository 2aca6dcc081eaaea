// Subsurfaces and viewports flattened into one window: weston-subsurfaces
// (sync and desync subsurfaces, one drawn with EGL on llvmpipe) and
// weston-scaler (viewport crop and scale), weston-terminal (viewporter, typed input) on the agent's compositor alone;
// then a client of ours checks the exact layers, positions, stacking order,
// desync damage, viewport resampling and subsurface removal.
import { readFileSync } from "node:fs";
import path from "node:path";

import { describe, expect, it } from "vitest";

import type { ShellWindow, WindowCommit } from "../../compositor/index.ts";
import { ClientShmPool, SHM_FORMAT_XRGB8888, connect, type ClientConnection, type Proxy } from "../../wayland/index.ts";
import {
  startApp,
  useCompositorUnderTest,
  startWestonTerminal,
  typeText,
  waitForFirstWindow,
  type CompositorUnderTest,
  type RunningApp,
} from "../helpers/apps.ts";
import { withStartup } from "../helpers/processes.ts";

let under: CompositorUnderTest;
const apps: RunningApp[] = [];
const clients: ClientConnection[] = [];

useCompositorUnderTest((started) => (under = started), apps, clients);

/** The 32-bit pixel at (x, y) of a layer. */
function pixelAt(commit: WindowCommit, layer: number, x: number, y: number): number {
  const { pixels } = commit.layers[layer]!;
  return new DataView(pixels.bytes.buffer, pixels.bytes.byteOffset).getUint32(y * pixels.stride + x * 4, true);
}

/** Collects a window's commits, pacing its frames. */
function recordCommits(window: ShellWindow): WindowCommit[] {
  const seen: WindowCommit[] = [];
  window.events.commit.add((commit) => {
    // Pixels are promised only during the signal; this client never rewrites a buffer, so they stay readable.
    seen.push({ ...commit, layers: commit.layers.map((layer) => ({ ...layer })) });
    setImmediate(() => window.frameDone(Date.now()));
  });
  return seen;
}

describe("weston-subsurfaces", { timeout: withStartup(30_000) }, () => {
  it("becomes one window of three layers whose desync subsurface commits damage only its own rectangle", async () => {
    const app = startApp("weston-subsurfaces", [], under.display, { aptPackage: "weston", debug: true });
    apps.push(app);
    const window = await waitForFirstWindow(under.compositor, app, (w) => w.appId.includes("sub-surface"));
    const commits: WindowCommit[] = [];
    const enough = new Promise<void>((resolve) => {
      window.events.commit.add((commit) => {
        commits.push({ ...commit, layers: commit.layers.map((layer) => ({ ...layer })) });
        setImmediate(() => window.frameDone(Date.now()));
        const placed = commit.layers.length === 3 && commit.layers.slice(1).every((layer) => layer.x > 0);
        if (commits.length >= 40 && placed) resolve();
      });
      window.frameDone(0);
    });
    await enough;
    const last = commits[commits.length - 1]!;
    expect(last.layers).toHaveLength(3);
    const [main, ...subs] = last.layers;
    expect([main!.x, main!.y]).toEqual([-32, -32]);
    for (const sub of subs) {
      expect(sub.x).toBeGreaterThan(0);
      expect(sub.x + sub.pixels.width).toBeLessThanOrEqual(last.size.width);
      expect(sub.y + sub.pixels.height).toBeLessThanOrEqual(last.size.height);
    }
    // Most commits are the animated (desync) subsurface alone: their damage lies within its rectangle.
    const top = subs[subs.length - 1]!;
    const inside = commits.filter((commit) =>
      commit.damage.every(
        (rect) =>
          rect.x >= top.x &&
          rect.y >= top.y &&
          rect.x + rect.width <= top.x + top.pixels.width &&
          rect.y + rect.height <= top.y + top.pixels.height,
      ),
    );
    expect(inside.length).toBeGreaterThanOrEqual(10);
    expect(app.stderr()).not.toMatch(/wl_display@1\.error/);
  });
});

describe("weston-scaler", { timeout: withStartup(30_000) }, () => {
  // Its help text says what each mode shows: -b and -s a blue box (cropped, then scaled up or not), -d the
  // red box with a blue corner, squashed.
  it.each([
    ["-b", { width: 220, height: 308 }, 0x0000ff],
    ["-s", { width: 55, height: 77 }, 0x0000ff],
    ["-d", { width: 220, height: 308 }, 0xff0000],
  ] as const)(
    "%s: the layer has the window's size and the colour it should have in the middle",
    async (mode, size, centre) => {
      const app = startApp("weston-scaler", [mode], under.display, { aptPackage: "weston" });
      apps.push(app);
      const commit = await new Promise<WindowCommit>((resolve) => {
        under.compositor.events.newWindow.add((window) =>
          window.events.commit.add((c) => resolve({ ...c, layers: [...c.layers] })),
        );
      });
      expect(commit.size).toEqual(size);
      expect(commit.layers).toHaveLength(1);
      const layer = commit.layers[0]!;
      expect([layer.pixels.width, layer.pixels.height]).toEqual([size.width, size.height]);
      expect(pixelAt(commit, 0, size.width >> 1, size.height >> 1) & 0xffffff).toBe(centre);
    },
  );
});

describe("weston-terminal", { timeout: withStartup(30_000) }, () => {
  it("becomes a toplevel with its title and app id, and runs what is typed into it", async () => {
    const app = startWestonTerminal(under.display, ["--shell=/bin/sh"], {
      cwd: under.display.runtimeDir,
      env: { SHELL: "/bin/sh" },
    });
    apps.push(app);
    const window = await waitForFirstWindow(under.compositor, app, (w) => w.title !== "");
    expect([window.title, window.appId]).toEqual(["Wayland Terminal", "org.freedesktop.weston.wayland-terminal"]);
    window.events.commit.add(() => setImmediate(() => window.frameDone(Date.now())));
    under.compositor.seat.focus(window);
    typeText(under.compositor.seat, "echo typed-in-weston-terminal > wt.txt; exit\n");
    await app.exited;
    expect(readFileSync(path.join(under.display.runtimeDir, "wt.txt"), "utf8")).toBe("typed-in-weston-terminal\n");
  });
});

describe("a client of ours with a subsurface", () => {
  /** Fills a buffer with `value(x, y)`. */
  function fill(bytes: Uint8Array, width: number, height: number, value: (x: number, y: number) => number): void {
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    for (let y = 0; y < height; y++)
      for (let x = 0; x < width; x++) view.setUint32((y * width + x) * 4, value(x, y), true);
  }

  it("flattens position, stacking, desync damage, viewport scaling and removal into the window's commits", async () => {
    const connection = await connect({ display: under.compositor.socketPath });
    clients.push(connection);
    const compositor = connection.bind("wl_compositor", 5);
    const shm = connection.bind("wl_shm", 1);
    const pool = new ClientShmPool(shm, 1 << 20);
    let offset = 0;
    const buffer = (width: number, height: number, value: (x: number, y: number) => number): Proxy<"wl_buffer"> => {
      const created = pool.createBuffer(offset, width, height, width * 4, SHM_FORMAT_XRGB8888);
      offset += width * height * 4;
      fill(created.bytes, width, height, value);
      return created.proxy;
    };
    const windowReady = new Promise<ShellWindow>((resolve) => under.compositor.events.newWindow.add(resolve));
    const parent = compositor.request("create_surface");
    const xdgSurface = connection.bind("xdg_wm_base", 5).request("get_xdg_surface", parent);
    xdgSurface.request("get_toplevel");
    const configured = new Promise<number>((resolve) => xdgSurface.on("configure", resolve));
    parent.request("commit");
    xdgSurface.request("ack_configure", await configured);
    parent.request(
      "attach",
      buffer(200, 100, () => 0xff0000),
      0,
      0,
    );
    parent.request("commit");
    const window = await windowReady;
    const commits = recordCommits(window);
    await connection.roundtrip();

    const child = compositor.request("create_surface");
    const subsurface = connection.bind("wl_subcompositor", 1).request("get_subsurface", child, parent);
    subsurface.request("set_position", 150, 80);
    child.request(
      "attach",
      buffer(40, 30, (x, y) => (x << 8) | y),
      0,
      0,
    );
    child.request("commit");
    await connection.roundtrip();
    expect(commits).toHaveLength(1); // Synchronized: cached until the parent commits.
    parent.request("commit");
    await connection.roundtrip();
    let last = commits[commits.length - 1]!;
    expect(last.size).toEqual({ width: 200, height: 110 });
    expect(last.resized).toBe(true);
    expect(last.layers.map((l) => [l.x, l.y, l.pixels.width, l.pixels.height])).toEqual([
      [0, 0, 200, 100],
      [150, 80, 40, 30],
    ]);
    expect(pixelAt(last, 1, 7, 9) & 0xffffff).toBe((7 << 8) | 9);

    subsurface.request("place_below", parent);
    parent.request("commit");
    await connection.roundtrip();
    last = commits[commits.length - 1]!;
    expect(last.layers.map((l) => [l.x, l.y])).toEqual([
      [150, 80],
      [0, 0],
    ]);

    subsurface.request("set_desync");
    child.request(
      "attach",
      buffer(40, 30, () => 0x0000ff),
      0,
      0,
    );
    child.request("damage_buffer", 0, 0, 10, 10);
    child.request("commit");
    await connection.roundtrip();
    last = commits[commits.length - 1]!;
    expect(last.resized).toBe(false);
    expect(last.damage).toEqual([{ x: 150, y: 80, width: 10, height: 10 }]);
    expect(pixelAt(last, 0, 0, 0) & 0xffffff).toBe(0x0000ff);

    // A viewport: source (10, 5) 20×15 of a pattern buffer, shown at 40×30 (scaled 2×, the same size as before).
    const viewport = connection.bind("wp_viewporter", 1).request("get_viewport", child);
    viewport.request("set_source", 10, 5, 20, 15);
    viewport.request("set_destination", 40, 30);
    child.request(
      "attach",
      buffer(40, 30, (x, y) => (x << 8) | y),
      0,
      0,
    );
    child.request("damage", 0, 0, 40, 20);
    child.request("commit");
    await connection.roundtrip();
    last = commits[commits.length - 1]!;
    expect([last.layers[0]!.pixels.width, last.layers[0]!.pixels.height]).toEqual([40, 30]);
    for (const [x, y] of [
      [0, 0],
      [1, 1],
      [2, 0],
      [39, 29],
    ] as const) {
      expect(pixelAt(last, 0, x, y) & 0xffffff).toBe(((10 + (x >> 1)) << 8) | (5 + (y >> 1)));
    }
    expect(last.damage).toEqual([{ x: 150, y: 80, width: 40, height: 20 }]);

    subsurface.request("destroy");
    parent.request("commit");
    await connection.roundtrip();
    last = commits[commits.length - 1]!;
    expect(last.size).toEqual({ width: 200, height: 100 });
    expect(last.layers).toHaveLength(1);
    expect(last.resized).toBe(true);
  });

  it("resamples only the rectangle a consumer reads of a scaled surface, then the rest when all bytes are read", async () => {
    const connection = await connect({ display: under.compositor.socketPath });
    clients.push(connection);
    const compositor = connection.bind("wl_compositor", 5);
    const pool = new ClientShmPool(connection.bind("wl_shm", 1), 2 * 80 * 60 * 4);
    const windowReady = new Promise<ShellWindow>((resolve) => under.compositor.events.newWindow.add(resolve));
    const surface = compositor.request("create_surface");
    const xdgSurface = connection.bind("xdg_wm_base", 5).request("get_xdg_surface", surface);
    xdgSurface.request("get_toplevel");
    const configured = new Promise<number>((resolve) => xdgSurface.on("configure", resolve));
    surface.request("commit");
    xdgSurface.request("ack_configure", await configured);
    // Buffer scale 2: an 80×60 buffer is a 40×30 surface.
    surface.request("set_buffer_scale", 2);
    const first = pool.createBuffer(0, 80, 60, 320, SHM_FORMAT_XRGB8888);
    fill(first.bytes, 80, 60, (x, y) => (x << 8) | y);
    surface.request("attach", first.proxy, 0, 0);
    surface.request("commit");
    const window = await windowReady;
    /** What a consumer reads during the signal: the words of the scratch after rows(), then after bytes. */
    const reads: Array<{ afterRows: Uint32Array; afterAll: Uint32Array; stride: number }> = [];
    window.events.commit.add((commit) => {
      const pixels = commit.layers[0]!.pixels;
      const words = (bytes: Uint8Array): Uint32Array =>
        new Uint32Array(bytes.slice(0, pixels.stride * pixels.height).buffer);
      const afterRows = words(pixels.rows(10, 5, 20, 6));
      reads.push({ afterRows, afterAll: words(pixels.bytes), stride: pixels.stride });
      setImmediate(() => window.frameDone(Date.now()));
    });
    const second = pool.createBuffer(80 * 60 * 4, 80, 60, 320, SHM_FORMAT_XRGB8888);
    fill(second.bytes, 80, 60, (x, y) => 0x1000000 | (x << 8) | y);
    surface.request("attach", second.proxy, 0, 0);
    surface.request("damage_buffer", 40, 20, 12, 10);
    surface.request("commit");
    await connection.roundtrip();
    // The window's first commit may be heard too (all of it read then): the last read is the damaged one's.
    expect(reads.length).toBeGreaterThanOrEqual(1);
    const { afterRows, afterAll, stride } = reads.at(-1)!;
    expect(stride).toBe(40 * 4);
    const at = (words: Uint32Array, x: number, y: number): number => words[y * 40 + x]! & 0x1ffffff;
    // Nearest neighbour at pixel centres: surface (x, y) reads buffer (2x + 1, 2y + 1).
    const fresh = (x: number, y: number): number => 0x1000000 | ((2 * x + 1) << 8) | (2 * y + 1);
    for (let y = 0; y < 30; y++) {
      for (let x = 0; x < 40; x++) {
        const inside = x >= 20 && x < 26 && y >= 10 && y < 15;
        // Inside: the new buffer's pixels; outside: not resampled for this commit (the older pixels, or zeros).
        if (inside) expect(at(afterRows, x, y), `(${x}, ${y}) after rows()`).toBe(fresh(x, y));
        else expect(at(afterRows, x, y) & 0x1000000, `(${x}, ${y}) after rows()`).toBe(0);
        expect(at(afterAll, x, y), `(${x}, ${y}) after bytes`).toBe(fresh(x, y));
      }
    }
  });

  it("damages where a subsurface was when it hides, the whole window when the geometry moves, and merges many rectangles", async () => {
    const connection = await connect({ display: under.compositor.socketPath });
    clients.push(connection);
    const compositor = connection.bind("wl_compositor", 5);
    const pool = new ClientShmPool(connection.bind("wl_shm", 1), 200 * 100 * 4 + 20 * 20 * 4);
    const windowReady = new Promise<ShellWindow>((resolve) => under.compositor.events.newWindow.add(resolve));
    const parent = compositor.request("create_surface");
    const xdgSurface = connection.bind("xdg_wm_base", 5).request("get_xdg_surface", parent);
    xdgSurface.request("get_toplevel");
    const configured = new Promise<number>((resolve) => xdgSurface.on("configure", resolve));
    parent.request("commit");
    xdgSurface.request("ack_configure", await configured);
    const child = compositor.request("create_surface");
    const subsurface = connection.bind("wl_subcompositor", 1).request("get_subsurface", child, parent);
    subsurface.request("set_position", 10, 10);
    subsurface.request("set_desync");
    child.request("attach", pool.createBuffer(200 * 100 * 4, 20, 20, 80, SHM_FORMAT_XRGB8888).proxy, 0, 0);
    child.request("commit");
    parent.request("attach", pool.createBuffer(0, 200, 100, 800, SHM_FORMAT_XRGB8888).proxy, 0, 0);
    parent.request("commit");
    const commits = recordCommits(await windowReady);
    await connection.roundtrip();
    expect(commits.at(-1)!.layers).toHaveLength(2);
    child.request("attach", null, 0, 0);
    child.request("commit");
    await connection.roundtrip();
    expect(commits.at(-1)!.layers).toHaveLength(1);
    expect(commits.at(-1)!.damage).toEqual([{ x: 10, y: 10, width: 20, height: 20 }]);
    xdgSurface.request("set_window_geometry", 5, 0, 195, 100);
    parent.request("damage", 0, 0, 1, 1);
    parent.request("commit");
    await connection.roundtrip();
    expect(commits.at(-1)!.damage).toEqual([{ x: 0, y: 0, width: 195, height: 100 }]);
    xdgSurface.request("set_window_geometry", 0, 0, 195, 100);
    parent.request("damage", 0, 0, 1, 1);
    parent.request("commit");
    await connection.roundtrip();
    expect(commits.at(-1)!.resized).toBe(false);
    expect(commits.at(-1)!.damage).toEqual([{ x: 0, y: 0, width: 195, height: 100 }]);
    // Past 64 rectangles in one commit, damage is merged into bounding boxes: at most 64, covering all.
    for (let i = 0; i < 100; i++) parent.request("damage", 10 + i, 20 + (i % 3), 1, 1);
    parent.request("commit");
    await connection.roundtrip();
    const damage = commits.at(-1)!.damage;
    expect(damage.length).toBeLessThanOrEqual(64);
    for (let i = 0; i < 100; i++) {
      const [x, y] = [10 + i, 20 + (i % 3)];
      expect(damage.some((r) => x >= r.x && y >= r.y && x < r.x + r.width && y < r.y + r.height)).toBe(true);
    }
    expect(damage.every((r) => r.x >= 10 && r.y >= 20 && r.x + r.width <= 110 && r.y + r.height <= 23)).toBe(true);
  });
});
