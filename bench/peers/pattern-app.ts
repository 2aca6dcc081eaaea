// The app side of the agent benchmark, in its own process: a 1920×1080
// pattern window on WAYLAND_DISPLAY; for each line "full" or "small" on stdin
// it commits that damage and prints the CLOCK_MONOTONIC time (ns) taken just
// before the commit.
import { createInterface } from "node:readline";

import { PatternClient } from "../../test/helpers/pattern-client.ts";

const display = process.env.WAYLAND_DISPLAY;
if (display === undefined) throw new Error("WAYLAND_DISPLAY is not set");
const client = await PatternClient.open(display, 1920, 1080, "bench");
process.stdout.write("ready\n");
for await (const line of createInterface({ input: process.stdin })) {
  const rect = line === "full" ? { x: 0, y: 0, width: 1920, height: 1080 } : { x: 700, y: 300, width: 64, height: 64 };
  const start = process.hrtime.bigint();
  await client.commitPrepared(rect);
  process.stdout.write(`${start}\n`);
}
client.close();
