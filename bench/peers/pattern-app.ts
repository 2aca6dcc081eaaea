// The app side of the agent benchmark, in its own process: a 1920×1080
// pattern window on WAYLAND_DISPLAY. For each line "full N" or "small N" on
// stdin it commits that damage N times, each after the previous frame
// callback (the pacing of a real app), and then prints the N CLOCK_MONOTONIC
// times (ns) taken just before each commit, on one line. Nothing is printed
// while it runs, so the measured path carries no harness traffic.
import { createInterface } from "node:readline";

import { PatternClient } from "../../test/helpers/pattern-client.ts";

const display = process.env.WAYLAND_DISPLAY;
if (display === undefined) throw new Error("WAYLAND_DISPLAY is not set");
const client = await PatternClient.open(display, 1920, 1080, "bench");
process.stdout.write("ready\n");
for await (const line of createInterface({ input: process.stdin })) {
  const [kind, count] = line.split(" ");
  const rect = kind === "full" ? { x: 0, y: 0, width: 1920, height: 1080 } : { x: 700, y: 300, width: 64, height: 64 };
  const starts: bigint[] = [];
  for (let i = 0; i < Number(count); i++) {
    starts.push(process.hrtime.bigint());
    await client.commitPreparedAndWait(rect);
  }
  process.stdout.write(`${starts.join(" ")}\n`);
}
client.close();
