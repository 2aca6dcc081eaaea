// The app of the waypipe comparison, in its own process: a Wayland client on
// wayland/'s client side that maps one WIDTH × HEIGHT xdg_toplevel (argv[2],
// argv[3]) of two XRGB8888 shm buffers on WAYLAND_DISPLAY and redraws the
// whole window as fast as its frame callbacks allow: at each callback it
// takes the free buffer (waiting for its release if need be), draws the next
// frame, commits it with full-window damage and asks for the next callback.
//
// The content is the same for every forwarder: a document-like image (light
// background, rows of dark "text" pixels, a few coloured blocks), scrolled by
// 8 rows a frame, so every pixel of every frame is new to a forwarder that
// diffs against the last frame, and compresses as a GUI's pixels do rather
// than as one solid colour. Drawing is two TypedArray copies, before the
// clock starts. The first pixel carries the frame number (24 bits), which
// the host compositor reads at its commit.
//
// It takes the CLOCK_MONOTONIC time (ns) just before each wl_surface.commit.
// On SIGUSR2 it writes "SEQ,NS" lines of every commit so far to the file
// argv[4] (written whole, then renamed into place), so nothing of the
// harness runs on the measured path.
import { renameSync, writeFileSync } from "node:fs";

import { connect } from "../../wayland/index.ts";
import { bindGlobals, openToplevel, type ShmBuffer } from "./toplevel.ts";

const width = Number(process.argv[2]);
const height = Number(process.argv[3]);
const stampsPath = process.argv[4];
const display = process.env.WAYLAND_DISPLAY;
if (!(width > 0 && height > 0) || stampsPath === undefined || display === undefined) {
  throw new Error("usage: WAYLAND_DISPLAY=SOCKET flood-app.ts WIDTH HEIGHT STAMPS_FILE");
}

/** The document: `height` rows, drawn once; frame n shows it scrolled by 8n rows. */
function documentImage(): Uint32Array {
  const image = new Uint32Array(width * height).fill(0xf4f4f0);
  let state = 0x12345678;
  const random = (): number => {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    return state >>> 0;
  };
  for (let y = 0; y < height; y++) {
    const line = y % 20;
    if (line < 3 || line > 14) continue;
    const row = y * width;
    for (let x = 16; x < width - 16; x++) {
      // Words of glyph-like pixels with gaps, as lines of text.
      if (((x >> 6) & 7) === 7) continue;
      if ((random() & 3) === 0) image[row + x] = 0x202428;
    }
  }
  for (let block = 0; block < 6; block++) {
    const bx = (random() % Math.max(1, width - 200)) >>> 0;
    const by = (random() % Math.max(1, height - 120)) >>> 0;
    const colour = random() & 0xffffff;
    for (let y = by; y < Math.min(height, by + 120); y++)
      image.fill(colour, y * width + bx, y * width + Math.min(width, bx + 200));
  }
  return image;
}

const connection = await connect({ display });
const { surface, buffers } = await openToplevel(bindGlobals(connection), {
  title: "waypipe bench",
  appId: "bench.flood",
  width,
  height,
});
const image = documentImage();

/** Commit times (ns) by frame number. */
const commits: bigint[] = [];
let next = 0;

process.on("SIGUSR2", () => {
  const lines = commits.map((ns, seq) => `${seq},${ns}`);
  writeFileSync(`${stampsPath}.part`, `${lines.join("\n")}\n`);
  renameSync(`${stampsPath}.part`, stampsPath);
});

for (let seq = 0; ; seq++) {
  const buffer = buffers[next] as ShmBuffer;
  next ^= 1;
  if (buffer.busy) await new Promise<void>((resolve) => (buffer.onRelease = resolve));
  const scroll = ((seq * 8) % height) * width;
  buffer.words.set(image.subarray(scroll), 0);
  buffer.words.set(image.subarray(0, scroll), image.length - scroll);
  buffer.words[0] = seq & 0xffffff;
  buffer.busy = true;
  surface.request("attach", buffer.proxy, 0, 0);
  surface.request("damage_buffer", 0, 0, width, height);
  const frameDone = new Promise<void>((resolve) => surface.request("frame").on("done", () => resolve()));
  commits[seq] = process.hrtime.bigint();
  surface.request("commit");
  await frameDone;
}
