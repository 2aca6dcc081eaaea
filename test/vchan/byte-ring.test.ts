import fc from "fast-check";
import { describe, expect, it } from "vitest";

import { ByteRing } from "../../vchan/index.ts";

describe("the socket backend's local byte ring", () => {
  it("behaves as a bounded FIFO under any sequence of pushes and shifts (property)", () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.boolean(), fc.nat({ max: 300 })), { maxLength: 200 }), (operations) => {
        const ring = new ByteRing(256);
        const model: number[] = [];
        let next = 0;
        for (const [isPush, size] of operations) {
          if (isPush) {
            const data = Uint8Array.from({ length: size }, () => next++ & 0xff);
            const taken = ring.push(data);
            expect(taken).toBe(Math.min(size, 256 - model.length));
            model.push(...data.subarray(0, taken));
            next -= size - taken;
          } else {
            const into = new Uint8Array(size);
            const got = ring.shift(into);
            expect(got).toBe(Math.min(size, model.length));
            expect([...into.subarray(0, got)]).toEqual(model.splice(0, got));
          }
          expect(ring.length).toBe(model.length);
          expect(ring.free).toBe(256 - model.length);
        }
      }),
    );
  });

  it("refuses a size that is not a power of two", () => {
    expect(() => new ByteRing(1000)).toThrow(RangeError);
    expect(() => new ByteRing(0)).toThrow(RangeError);
  });
});
