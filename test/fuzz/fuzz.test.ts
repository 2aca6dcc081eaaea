/**
 * Every fuzz target of test/fuzz/targets/ at its short count: no exception
 * outside the expected reactions, no leak (fds, mappings, SIGBUS guard
 * slots, RSS, heap), every expected reaction reached. The long counts run
 * through `npm run fuzz -- TARGET --count N`.
 */
import { describe, expect, it } from "vitest";

import { describeReport, fuzzFailures, loadTarget, runTarget, targetNames } from "./harness.ts";

/** How long one target's short run may take on a loaded CI machine. */
const TARGET_TIMEOUT_MS = 180_000;

describe("fuzz targets (short counts; npm run fuzz for long ones)", () => {
  for (const name of targetNames()) {
    it(
      `${name}: hostile inputs end in the expected reactions, nothing leaks`,
      { timeout: TARGET_TIMEOUT_MS },
      async () => {
        const target = await loadTarget(name);
        const report = await runTarget(target, { count: target.testCount, seed: 1 });
        process.stdout.write(`${describeReport(report)}\n`);
        expect(fuzzFailures(report)).toEqual([]);
        expect(report.stats.inputs).toBeGreaterThanOrEqual(target.testCount);
      },
    );
  }

  it("has a target for every parser of untrusted bytes the issue names", () => {
    expect(targetNames()).toEqual(
      expect.arrayContaining(["config", "grants", "protocol", "session", "vchan-shm", "wayland", "websocket"]),
    );
  });
});
