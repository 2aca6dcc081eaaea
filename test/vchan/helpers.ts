/** Shared pieces of the vchan tests: the backends this machine runs, a byte pattern, and event waits. */
import { once } from "node:events";

import type { Vchan, VchanBackend } from "../../vchan/index.ts";

/** The vchan backends every behaviour test runs on here (xen only where /dev/xen exists: never in CI). */
export const runnableBackends: VchanBackend[] = ["socket", "shm"];

/** Period of the test pattern: a prime, so a dropped, repeated or reordered byte shows. */
const PERIOD = 251;
const source = new Uint8Array(PERIOD * 4096 + 65536);
for (let i = 0; i < source.length; i++) source[i] = (i % PERIOD) ^ 0x5a;

/** The pattern's bytes [offset, offset + length), as a view (length ≤ 64 KiB + 1 MiB). */
export function pattern(offset: number, length: number): Uint8Array {
  const start = offset % PERIOD;
  return source.subarray(start, start + length);
}

/** True when `bytes` equal the pattern at `offset`. */
export function matchesPattern(bytes: Uint8Array, offset: number): boolean {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length).equals(pattern(offset, bytes.length));
}

/** Reads until `total` bytes arrived (waiting on `data` events), checking them against the pattern from `offset`. */
export async function readPattern(vchan: Vchan, total: number, offset = 0, chunk = 65536): Promise<void> {
  const buffer = new Uint8Array(chunk);
  let got = 0;
  while (got < total) {
    const n = vchan.read(buffer.subarray(0, Math.min(chunk, total - got)));
    if (n === 0) {
      if (vchan.dataReady() > 0) continue;
      await once(vchan, "data");
      continue;
    }
    if (!matchesPattern(buffer.subarray(0, n), offset + got))
      throw new Error(`pattern mismatch at byte ${offset + got}`);
    got += n;
  }
}

/** Writes `total` pattern bytes, waiting on `drain` whenever the ring is full. */
export async function writePattern(vchan: Vchan, total: number, offset = 0, chunk = 65536): Promise<void> {
  let sent = 0;
  while (sent < total) {
    const n = vchan.write(pattern(offset + sent, Math.min(chunk, total - sent)));
    sent += n;
    if (n === 0) await once(vchan, "drain");
  }
}
