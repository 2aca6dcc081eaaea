// The app of the desktop benchmark, in its own process: a Wayland client on
// wayland/'s client side that maps one WIDTH × HEIGHT xdg_toplevel (argv[2],
// argv[3]) of two XRGB8888 shm buffers on WAYLAND_DISPLAY and prints "ready"
// once its first frame callback has come. Then each stdin line is one update:
// "full" or "small X Y W H" (buffer pixels). For each it waits for the
// previous frame callback (the pacing of a real app) and for the next buffer
// to be free, brings that buffer up to date with the other one, fills the
// damaged rectangle with a new colour, takes the CLOCK_MONOTONIC time (ns)
// just before wl_surface.commit, commits with exactly that damage, and
// prints "commit <ns>". Drawing is before the clock starts.
import { createInterface } from "node:readline";

import { connect } from "../../wayland/index.ts";
import { bindGlobals, openToplevel, type ShmBuffer } from "./toplevel.ts";

interface Rect {
  x: number;
  y: number;
  width: number;
  height: number;
}

const width = Number(process.argv[2]);
const height = Number(process.argv[3]);
const display = process.env.WAYLAND_DISPLAY;
if (!(width > 0 && height > 0) || display === undefined) {
  throw new Error("usage: WAYLAND_DISPLAY=SOCKET damage-app.ts WIDTH HEIGHT");
}

const connection = await connect({ display });
const { surface, buffers } = await openToplevel(bindGlobals(connection), {
  title: "desktop bench",
  appId: "bench.damage",
  width,
  height,
});

let next = 0;
let generation = 0;
/** The rectangle the last commit changed: the other buffer lacks it. */
let lastRect: Rect | null = null;
/** Resolves when the last commit's frame callback is done. */
let frameDone: Promise<void> = Promise.resolve();

/** Draws the next buffer (up to date, `rect` in a new colour) and commits it damaged at `rect`; returns the commit time. */
async function update(rect: Rect): Promise<bigint> {
  await frameDone;
  const buffer = buffers[next] as ShmBuffer;
  const other = buffers[next ^ 1] as ShmBuffer;
  next ^= 1;
  if (buffer.busy) await new Promise<void>((resolve) => (buffer.onRelease = resolve));
  if (lastRect !== null) copyRect(other.words, buffer.words, lastRect);
  generation++;
  const colour = ((generation * 0x3b1d5f) ^ 0x406080) & 0xffffff;
  for (let y = rect.y; y < rect.y + rect.height; y++) {
    buffer.words.fill(colour, y * width + rect.x, y * width + rect.x + rect.width);
  }
  lastRect = rect;
  buffer.busy = true;
  surface.request("attach", buffer.proxy, 0, 0);
  surface.request("damage_buffer", rect.x, rect.y, rect.width, rect.height);
  frameDone = new Promise<void>((resolve) => surface.request("frame").on("done", () => resolve()));
  const start = process.hrtime.bigint();
  surface.request("commit");
  return start;
}

function copyRect(from: Uint32Array, to: Uint32Array, rect: Rect): void {
  for (let y = rect.y; y < rect.y + rect.height; y++) {
    const at = y * width + rect.x;
    to.set(from.subarray(at, at + rect.width), at);
  }
}

await update({ x: 0, y: 0, width, height });
await frameDone;
process.stdout.write("ready\n");
for await (const line of createInterface({ input: process.stdin })) {
  const [kind, ...numbers] = line.split(" ");
  const [x, y, w, h] = numbers.map(Number) as [number, number, number, number];
  const rect = kind === "full" ? { x: 0, y: 0, width, height } : { x, y, width: w, height: h };
  const start = await update(rect);
  process.stdout.write(`commit ${start}\n`);
}
// stdin ended: the benchmark is over.
connection.destroy();
