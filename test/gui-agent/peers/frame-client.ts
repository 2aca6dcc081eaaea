/**
 * A Wayland client for the agent's copy and pacing tests, in a process of
 * its own so that drawing 400 MB costs the agent's process nothing. It
 * prints "ready" once connected, then reads commands on stdin and answers
 * on stdout:
 *
 * - `open W H`: maps a W×H toplevel titled "frame-client" (two buffers in
 *   one pool, both black) and prints `open`.
 * - `open-scaled W H`: maps instead a W×H toplevel whose one 2×2 buffer
 *   (pixels 0x0000ff, 0x00ff00 / 0xff0000, 0xffffff) is stretched by
 *   wp_viewport.set_destination, and prints `open` (it is buffer 0 for
 *   `commit`; `reverse` reverses its four pixels and prints `drawn`; do not
 *   `draw` it).
 * - `draw B GEN [X Y W H GEN2]`: fills buffer B with the pattern of
 *   generation GEN (the rectangle with generation GEN2) and prints `drawn`.
 * - `commit B X Y W H`: attaches buffer B, damages the rectangle, commits
 *   with a frame callback, prints `committed N`, later `done N` when the
 *   callback fires (N counts commits from 1); `released B` when the
 *   compositor gives a buffer back.
 * - `resize N MS`: commits N black frames of sizes from 400×300 to 1183×887
 *   (a new one each time), MS ms apart, whatever the compositor answers,
 *   then prints `resized`.
 * - `surfaces N`: creates N wl_surfaces and prints `surfaces` once the
 *   compositor has them all (a round trip).
 * - `quit`: disconnects and exits.
 *
 * The pattern and the sizes are in frame-pattern.ts, which the tests use too.
 */
import { createInterface } from "node:readline";

import { ClientShmPool, SHM_FORMAT_XRGB8888, connect, type Proxy } from "../../../wayland/index.ts";
import { framePixel, resizeSize } from "./frame-pattern.ts";

const RESIZE_MAX_BYTES = 1183 * 887 * 4;

async function main(): Promise<void> {
  const socketPath = process.argv[2];
  if (socketPath === undefined) throw new Error("usage: frame-client.ts SOCKET");
  const connection = await connect({ display: socketPath });
  const compositor = connection.bind("wl_compositor", 4);
  const shm = connection.bind("wl_shm", 1);
  const wmBase = connection.bind("xdg_wm_base", 2);
  wmBase.on("ping", (serial) => wmBase.request("pong", serial));
  const surface = compositor.request("create_surface");
  const xdgSurface = wmBase.request("get_xdg_surface", surface);
  const toplevel = xdgSurface.request("get_toplevel");
  toplevel.request("set_title", "frame-client");
  xdgSurface.on("configure", (serial) => xdgSurface.request("ack_configure", serial));

  let width = 0;
  let height = 0;
  let buffers: Array<{ proxy: Proxy<"wl_buffer">; pixels: Uint32Array }> = [];
  let commits = 0;
  const say = (line: string): void => void process.stdout.write(`${line}\n`);

  const commit = (proxy: Proxy<"wl_buffer">, x: number, y: number, w: number, h: number): number => {
    const id = ++commits;
    surface.request("attach", proxy, 0, 0);
    surface.request("damage_buffer", x, y, w, h);
    surface.request("frame").on("done", () => say(`done ${id}`));
    surface.request("commit");
    connection.flush();
    return id;
  };

  const open = async (w: number, h: number): Promise<void> => {
    width = w;
    height = h;
    const configured = new Promise<void>((resolve) => xdgSurface.on("configure", () => resolve()));
    surface.request("commit");
    await configured;
    const bytes = w * h * 4;
    const pool = new ClientShmPool(shm, bytes * 2);
    buffers = [0, 1].map((index) => {
      const created = pool.createBuffer(index * bytes, w, h, w * 4, SHM_FORMAT_XRGB8888);
      created.proxy.on("release", () => say(`released ${index}`));
      return { proxy: created.proxy, pixels: new Uint32Array(created.bytes.buffer, created.bytes.byteOffset, w * h) };
    });
    commit((buffers[0] as (typeof buffers)[0]).proxy, 0, 0, w, h);
    await connection.roundtrip();
  };

  const openScaled = async (w: number, h: number): Promise<void> => {
    width = w;
    height = h;
    const configured = new Promise<void>((resolve) => xdgSurface.on("configure", () => resolve()));
    surface.request("commit");
    await configured;
    const pool = new ClientShmPool(shm, 2 * 2 * 4);
    const created = pool.createBuffer(0, 2, 2, 8, SHM_FORMAT_XRGB8888);
    const pixels = new Uint32Array(created.bytes.buffer, created.bytes.byteOffset, 4);
    pixels.set([0x0000ff, 0x00ff00, 0xff0000, 0xffffff]);
    buffers = [{ proxy: created.proxy, pixels }];
    connection.bind("wp_viewporter", 1).request("get_viewport", surface).request("set_destination", w, h);
    commit(created.proxy, 0, 0, 2, 2);
    await connection.roundtrip();
  };

  const draw = (index: number, gen: number, rect: number[] | null, gen2: number): void => {
    const pixels = (buffers[index] as (typeof buffers)[0]).pixels;
    for (let y = 0; y < height; y++) {
      const row = y * width;
      for (let x = 0; x < width; x++) pixels[row + x] = framePixel(x, y, gen);
    }
    if (rect !== null) {
      const [rx, ry, rw, rh] = rect as [number, number, number, number];
      for (let y = ry; y < ry + rh; y++)
        for (let x = rx; x < rx + rw; x++) pixels[y * width + x] = framePixel(x, y, gen2);
    }
  };

  const resize = async (count: number, gapMs: number): Promise<void> => {
    const pool = new ClientShmPool(shm, RESIZE_MAX_BYTES * 2);
    const busy = [false, false];
    for (let i = 0; i < count; i++) {
      const { width: w, height: h } = resizeSize(i);
      const slot = busy[0] === true ? 1 : 0;
      const created = pool.createBuffer(slot * RESIZE_MAX_BYTES, w, h, w * 4, SHM_FORMAT_XRGB8888);
      busy[slot] = true;
      created.proxy.on("release", () => {
        busy[slot] = false;
        created.proxy.request("destroy");
      });
      surface.request("attach", created.proxy, 0, 0);
      surface.request("damage_buffer", 0, 0, w, h);
      surface.request("commit");
      connection.flush();
      await new Promise((resolve) => setTimeout(resolve, gapMs));
    }
    await connection.roundtrip();
  };

  say("ready");
  const lines = createInterface({ input: process.stdin });
  for await (const line of lines) {
    const [command, ...args] = line.split(" ");
    const numbers = args.map(Number);
    if (command === "open") {
      await open(numbers[0] as number, numbers[1] as number);
      say("open");
    } else if (command === "open-scaled") {
      await openScaled(numbers[0] as number, numbers[1] as number);
      say("open");
    } else if (command === "reverse") {
      (buffers[0] as (typeof buffers)[0]).pixels.reverse();
      say("drawn");
    } else if (command === "draw") {
      draw(
        numbers[0] as number,
        numbers[1] as number,
        numbers.length >= 7 ? numbers.slice(2, 6) : null,
        numbers[6] ?? 0,
      );
      say("drawn");
    } else if (command === "commit") {
      const [index, x, y, w, h] = numbers as [number, number, number, number, number];
      say(`committed ${commit((buffers[index] as (typeof buffers)[0]).proxy, x, y, w, h)}`);
    } else if (command === "resize") {
      await resize(numbers[0] as number, numbers[1] as number);
      say("resized");
    } else if (command === "surfaces") {
      for (let i = 0; i < (numbers[0] as number); i++) {
        compositor.request("create_surface");
        if (i % 1000 === 999) await connection.roundtrip();
      }
      await connection.roundtrip();
      say("surfaces");
    } else if (command === "quit") {
      break;
    }
  }
  connection.destroy();
  process.exit(0);
}

main().catch((error: unknown) => {
  process.stderr.write(`${String((error as Error).stack ?? error)}\n`);
  process.exit(1);
});
