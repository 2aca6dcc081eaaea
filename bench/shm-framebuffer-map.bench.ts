/**
 * Mapping a 1920×1080 framebuffer granted by another process (memfd
 * backend), as the daemon does once per WINDOW_DUMP: map (with populate) and
 * unmap, beside one copy of the same frame (TypedArray.set, as fast as
 * memcpy), which is what a copying design would pay per frame. The notes
 * show the daemon's counters over many frames drawn by the granter: one map
 * per WINDOW_DUMP and zero bytes copied.
 *
 * Run as a script, this file is the granting peer:
 * `shm-framebuffer-map.bench.ts granter DIR`; it prints its refs, then paints
 * a frame per line it reads on stdin ("paint") and answers "painted".
 */
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";

import { Framebuffer, MappedFramebuffer, MemfdGrantTable } from "../shm/index.ts";
import { stats, type BenchContext, type BenchRow } from "./lib.ts";

const here = fileURLToPath(import.meta.url);
const WIDTH = 1920;
const HEIGHT = 1080;
const FRAME_BYTES = WIDTH * HEIGHT * 4;

/** The granting peer (domain 1 → domain 2). */
async function granter(socketDir: string): Promise<void> {
  const table = new MemfdGrantTable({ domain: 1, socketDir });
  const framebuffer = new Framebuffer(table, 2, WIDTH, HEIGHT);
  framebuffer.pixels.fill(0x40);
  process.stdout.write(`${JSON.stringify(framebuffer.refs)}\n`);
  let frame = 0;
  for await (const line of createInterface({ input: process.stdin })) {
    if (line !== "paint") break;
    frame += 1;
    // A damaged 256×256 rectangle per frame, as an app's commit would bring.
    for (let y = 0; y < 256; y++) framebuffer.pixels.fill(frame & 0xff, y * WIDTH * 4, (y * WIDTH + 256) * 4);
    process.stdout.write("painted\n");
  }
  table.destroy();
  process.stdin.destroy();
}

/** The benchmark case. */
export default async function framebufferMap(context: BenchContext): Promise<BenchRow[]> {
  const socketDir = mkdtempSync(path.join(tmpdir(), "bench-shm-"));
  const child = spawn(process.execPath, ["--import", "tsx", here, "granter", socketDir], {
    stdio: ["pipe", "pipe", "inherit"],
  });
  const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  const next = async (): Promise<string> => {
    const result = await lines.next();
    if (result.done === true) throw new Error("the granter ended early");
    return result.value;
  };
  const gui = new MemfdGrantTable({ domain: 2, socketDir });
  try {
    const refs = JSON.parse(await next()) as number[];
    await gui.attach(1);
    const iterations = context.iterations(300, 10);
    // One WINDOW_DUMP each: map with populate, unmap.
    const mapSamples: number[] = [];
    for (let i = 0; i < iterations + 10; i++) {
      const start = process.hrtime.bigint();
      const mapped = new MappedFramebuffer(gui, 1, WIDTH, HEIGHT, refs);
      mapped.unmap();
      if (i >= 10) mapSamples.push(Number(process.hrtime.bigint() - start) / 1000);
    }
    // A copying design: one copy of the whole frame per frame.
    const source = new MappedFramebuffer(gui, 1, WIDTH, HEIGHT, refs);
    const copy = new Uint8Array(FRAME_BYTES);
    const copySamples: number[] = [];
    for (let i = 0; i < iterations + 10; i++) {
      const start = process.hrtime.bigint();
      copy.set(source.pixels);
      if (i >= 10) copySamples.push(Number(process.hrtime.bigint() - start) / 1000);
    }
    source.unmap();
    // Frames after one WINDOW_DUMP: the granter paints, the daemon's one mapping shows it.
    const before = { ...gui.counters };
    const mapped = new MappedFramebuffer(gui, 1, WIDTH, HEIGHT, refs);
    const frames = context.iterations(100, 5);
    let seen = 0;
    for (let frame = 1; frame <= frames; frame++) {
      child.stdin.write("paint\n");
      if ((await next()) !== "painted") throw new Error("the granter did not paint");
      if (mapped.pixels[0] === (frame & 0xff)) seen += 1;
    }
    mapped.unmap();
    const maps = gui.counters.maps - before.maps;
    const copied = gui.counters.bytesCopied - before.bytesCopied;
    child.stdin.end();
    return [
      {
        name: "map + unmap a 1920x1080 framebuffer of another process, one WINDOW_DUMP (memfd, populate)",
        unit: "µs",
        value: stats(mapSamples),
        baseline: { name: "copy of one 1920x1080 frame (TypedArray.set)", value: stats(copySamples) },
        better: "lower",
        notes: [
          `${frames} frames drawn by the granter after one WINDOW_DUMP: ${maps} map, ${gui.counters.mmapCalls - before.mmapCalls} mmap, ${copied} bytes copied by the daemon, ${seen}/${frames} frames seen through the one mapping`,
        ],
      },
    ];
  } finally {
    gui.destroy();
    child.kill();
    rmSync(socketDir, { recursive: true, force: true });
  }
}

if (process.argv[1] !== undefined && path.resolve(process.argv[1]) === here && process.argv[2] === "granter") {
  await granter(process.argv[3] as string);
}
