/**
 * guid's token bucket (guid/rate-limit.ts), on a clock the test sets: a
 * burst at once, then the rate, with an overdraft paid back before anything
 * more may be spent.
 */
import { describe, expect, it } from "vitest";

import { RateLimit } from "../../guid/rate-limit.ts";

describe("RateLimit", () => {
  it("allows a burst at once, then nothing until the rate has refilled", () => {
    const limit = new RateLimit(100, 10, 0);
    for (let i = 0; i < 10; i++) {
      expect(limit.available(0)).toBe(true);
      limit.spend(1, 0);
    }
    expect(limit.available(0)).toBe(false);
    // 100 a second: one unit every 10 ms; waitMs says when there is more than none.
    expect(limit.waitMs(0)).toBe(10);
    expect(limit.available(5)).toBe(false);
    expect(limit.available(10.5)).toBe(true);
  });

  it("makes an overdraft wait until it is paid back", () => {
    const limit = new RateLimit(1000, 100, 0);
    limit.spend(600, 0);
    expect(limit.available(0)).toBe(false);
    // 500 units owed at 1000/s, then one more unit: 501 ms.
    expect(limit.waitMs(0)).toBe(501);
    expect(limit.available(500)).toBe(false);
    expect(limit.available(502)).toBe(true);
  });

  it("saves up no more than the burst, however long it was idle", () => {
    const limit = new RateLimit(10, 5, 0);
    expect(limit.available(3_600_000)).toBe(true);
    limit.spend(5, 3_600_000);
    expect(limit.available(3_600_000)).toBe(false);
  });

  it("refuses a rate that is not positive and a burst below one unit", () => {
    for (const [rate, burst] of [
      [0, 1],
      [1, 0],
      [1, 0.5],
      [-1, 1],
      [Number.NaN, 1],
    ] as const) {
      expect(() => new RateLimit(rate, burst)).toThrow(RangeError);
    }
  });
});
