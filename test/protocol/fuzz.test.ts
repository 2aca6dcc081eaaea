import { describe, expect, it } from "vitest";

import { MAX_DECODER_BUFFER } from "../../protocol/index.ts";
import { fuzzFailed, runFuzz } from "../../scripts/fuzz-protocol.ts";

describe("fuzz (short version of scripts/fuzz-protocol.ts)", () => {
  for (const seed of [1, 2]) {
    it(`30 000 random and mutated messages (seed ${seed}) never throw and stay within the memory bound`, () => {
      const report = runFuzz(30_000, seed);
      expect(report.firstException).toBeNull();
      expect(report.exceptions).toBe(0);
      expect(report.maxBufferedBytes).toBeLessThanOrEqual(MAX_DECODER_BUFFER);
      expect(fuzzFailed(report)).toBe(false);
      expect(report.messages).toBeGreaterThanOrEqual(30_000);
      // Every reaction was reached: decoded, dropped, session ended, validated.
      expect(report.decoded).toBeGreaterThan(0);
      expect(report.dropped).toBeGreaterThan(0);
      expect(report.fatal).toBeGreaterThan(0);
      expect(report.validated).toBeGreaterThan(0);
      expect(report.maxFeedMs).toBeLessThan(1000);
    });
  }
});
