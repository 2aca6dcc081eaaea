// Maps 100 buffers, forgets them, collects garbage and reports how many
// memfd mappings /proc/self/maps shows before, during and after (JSON on stdout).
import { readFileSync } from "node:fs";
import { setImmediate as nextTurn } from "node:timers/promises";

import * as native from "../../../native/index.ts";

// The readiness signal: start-up is over, and the test's clock starts here.
process.stdout.write("ready\n");

const gc = (globalThis as { gc?: () => void }).gc;
if (gc === undefined) throw new Error("run with --expose-gc");

function mappings(): number {
  return readFileSync("/proc/self/maps", "utf8")
    .split("\n")
    .filter((line) => line.includes("/memfd:forgotten")).length;
}

const before = mappings();
const fd = native.memfdCreate("forgotten", 1 << 20);
let buffers: ArrayBuffer[] = [];
for (let i = 0; i < 100; i++) buffers.push(native.mmap(fd, 0, 1 << 20));
const during = mappings();
buffers = [];
let after = during;
for (let attempt = 0; attempt < 200 && after - before >= 8; attempt++) {
  gc();
  await nextTurn();
  after = mappings();
}
native.close(fd);
process.stdout.write(JSON.stringify({ before, during, after }));
