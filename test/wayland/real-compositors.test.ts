// Our client side against real compositors: headless sway (wlroots) and
// headless weston each show an xdg_toplevel whose wl_shm buffer holds a known
// pattern, and a screenshot taken by the compositor's own tool has exactly
// that pattern at the window's position.
import { afterEach, describe, expect, it } from "vitest";

import { ClientShmPool, SHM_FORMAT_XRGB8888, connect, type ClientConnection } from "../../wayland/index.ts";
import {
  screenshotSway,
  screenshotWeston,
  startSway,
  startWeston,
  swayWindowRect,
  westonWindowRect,
  type RgbImage,
  type RunningCompositor,
} from "../helpers/compositors.ts";
import { withStartup } from "../helpers/processes.ts";

const WIDTH = 64;
const HEIGHT = 48;

/** The pattern's colour at (x, y): every pixel differs from its neighbours. */
function patternAt(x: number, y: number): [number, number, number] {
  return [(x * 4 + 1) & 0xff, (y * 5 + 2) & 0xff, ((x ^ y) * 3 + 7) & 0xff];
}

/**
 * Shows a WIDTH×HEIGHT toplevel with the pattern (answering every configure
 * with ack and a commit of the same buffer), then takes screenshots after
 * each presented frame until the pattern is on screen: compositors map a
 * window a few frames after its first buffer (sway's transactions, weston's
 * shell).
 */
async function showPattern(
  connection: ClientConnection,
  screenshot: () => Promise<RgbImage>,
): Promise<Array<{ x: number; y: number }>> {
  const compositor = connection.bind("wl_compositor", 4);
  const shm = connection.bind("wl_shm", 1);
  const wmBase = connection.bind("xdg_wm_base", 2);
  wmBase.on("ping", (serial) => wmBase.request("pong", serial));
  const surface = compositor.request("create_surface");
  const xdgSurface = wmBase.request("get_xdg_surface", surface);
  const toplevel = xdgSurface.request("get_toplevel");
  toplevel.request("set_app_id", "wayland-test");
  toplevel.request("set_title", "pattern");

  const stride = WIDTH * 4;
  const pool = new ClientShmPool(shm, stride * HEIGHT);
  const { proxy: buffer, bytes } = pool.createBuffer(0, WIDTH, HEIGHT, stride, SHM_FORMAT_XRGB8888);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (let y = 0; y < HEIGHT; y++) {
    for (let x = 0; x < WIDTH; x++) {
      const [r, g, b] = patternAt(x, y);
      view.setUint32(y * stride + x * 4, 0xff000000 | (r << 16) | (g << 8) | b, true);
    }
  }
  let configured!: () => void;
  const firstConfigure = new Promise<void>((resolve) => (configured = resolve));
  xdgSurface.on("configure", (serial) => {
    xdgSurface.request("ack_configure", serial);
    surface.request("attach", buffer, 0, 0);
    surface.request("damage_buffer", 0, 0, WIDTH, HEIGHT);
    surface.request("commit");
    configured();
  });
  surface.request("commit");
  await firstConfigure;
  for (let attempt = 0; attempt < 30; attempt++) {
    const presented = new Promise<void>((resolve) => surface.request("frame").on("done", () => resolve()));
    surface.request("damage_buffer", 0, 0, 1, 1);
    surface.request("commit");
    await presented;
    const found = findPattern(await screenshot());
    if (found.length > 0) return found;
  }
  return [];
}

/** Every top-left position where the whole pattern appears in the image. */
function findPattern(image: RgbImage): Array<{ x: number; y: number }> {
  const found: Array<{ x: number; y: number }> = [];
  const [r0, g0, b0] = patternAt(0, 0);
  for (let top = 0; top + HEIGHT <= image.height; top++) {
    for (let left = 0; left + WIDTH <= image.width; left++) {
      const at = (top * image.width + left) * 3;
      if (image.rgb[at] !== r0 || image.rgb[at + 1] !== g0 || image.rgb[at + 2] !== b0) continue;
      let same = true;
      for (let y = 0; y < HEIGHT && same; y++) {
        for (let x = 0; x < WIDTH; x++) {
          const p = ((top + y) * image.width + left + x) * 3;
          const [r, g, b] = patternAt(x, y);
          if (image.rgb[p] !== r || image.rgb[p + 1] !== g || image.rgb[p + 2] !== b) {
            same = false;
            break;
          }
        }
      }
      if (same) found.push({ x: left, y: top });
    }
  }
  return found;
}

// Each test waits for its compositor's socket (its readiness signal, as long as
// start-up takes), then runs short clients (grim, weston-screenshooter) whose
// runs are mostly start-up too: the guard covers both.
describe("our client on real compositors", { timeout: withStartup(60_000) }, () => {
  let running: RunningCompositor | undefined;
  let connection: ClientConnection | undefined;

  afterEach(async () => {
    connection?.destroy();
    connection = undefined;
    await running?.stop();
    running = undefined;
  });

  it("shows a wl_shm pattern in an xdg_toplevel on headless sway, exactly where sway says the window is", async () => {
    running = await startSway({ width: 640, height: 480 });
    connection = await connect({ display: running.socketPath });
    expect(connection.findGlobal("xdg_wm_base")).toBeDefined();
    const sway = running;
    const found = await showPattern(connection, () => screenshotSway(sway));
    const rect = await swayWindowRect(sway, "wayland-test");
    expect(rect).toMatchObject({ width: WIDTH, height: HEIGHT });
    expect(found).toEqual([{ x: rect?.x, y: rect?.y }]);
  });

  it("shows a wl_shm pattern in an xdg_toplevel on headless weston, exactly where weston's scene graph puts it", async () => {
    running = await startWeston({ width: 640, height: 480 });
    connection = await connect({ display: running.socketPath });
    const weston = running;
    const found = await showPattern(connection, () => screenshotWeston(weston));
    const rect = await westonWindowRect(weston, "wayland-test");
    expect(rect).toMatchObject({ width: WIDTH, height: HEIGHT });
    expect(found).toEqual([{ x: rect?.x, y: rect?.y }]);
  });
});
