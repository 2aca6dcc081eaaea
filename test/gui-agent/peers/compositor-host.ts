/**
 * The agent's compositor alone in a process of its own, run the way the
 * agent runs (node --import tsx), for tests of what clients cost it. Run
 * with --expose-gc. Prints `ready SOCKET` once it listens, then answers on
 * stdout each line on stdin:
 *
 * - `heap`: `heap BYTES`, the heap in use after two full collections.
 * - `quit`: ends.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { createInterface } from "node:readline";

import { createCompositor } from "../../../compositor/index.ts";
import { compileKeymap } from "../../../gui-agent/index.ts";

const gc = (globalThis as { gc?: () => void }).gc;
if (gc === undefined) throw new Error("run compositor-host.ts with --expose-gc");

const dir = mkdtempSync(path.join(tmpdir(), "compositor-host-"));
const compositor = createCompositor({
  socket: path.join(dir, "wayland-host"),
  outputSize: { width: 1920, height: 1080 },
  keymap: await compileKeymap(),
});
process.stdout.write(`ready ${compositor.socketPath}\n`);
for await (const line of createInterface({ input: process.stdin })) {
  if (line === "heap") {
    gc();
    gc();
    process.stdout.write(`heap ${process.memoryUsage().heapUsed}\n`);
  } else if (line === "quit") {
    break;
  }
}
compositor.destroy();
rmSync(dir, { recursive: true, force: true });
process.exit(0);
