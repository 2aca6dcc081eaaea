import { describe, expect, it } from "vitest";

import * as native from "../../native/index.ts";
import { finishedAfterReady, spawnTs, withStartup } from "../helpers/processes.ts";

/** A buffer whose byte i is i mod 251 (no two nearby rows alike). */
function numbered(length: number): Uint8Array {
  return Uint8Array.from({ length }, (_, i) => i % 251);
}

/** The same copy, row by row in JS: what copyRect must equal. */
function copyByRows(
  source: native.StridedBytes,
  target: native.StridedBytes,
  rowBytes: number,
  rows: number,
): Uint8Array {
  const out = target.bytes.slice();
  for (let row = 0; row < rows; row++) {
    const from = source.offset + row * source.stride;
    out.set(source.bytes.subarray(from, from + rowBytes), target.offset + row * target.stride);
  }
  return out;
}

describe("copyRect", () => {
  it("copies a rectangle narrower than both strides, leaving the bytes beside it alone", () => {
    const source = { bytes: numbered(40 * 30), offset: 3 * 40 + 8, stride: 40 };
    const target = { bytes: new Uint8Array(64 * 20).fill(0xee), offset: 2 * 64 + 4, stride: 64 };
    const expected = copyByRows(source, target, 12, 5);
    expect(native.copyRect(source, target, 12, 5)).toBe(60);
    expect(target.bytes).toEqual(expected);
  });

  it("copies whole rows of equal stride as one block, up to the last byte of both buffers", () => {
    const source = { bytes: numbered(16 * 8), offset: 16, stride: 16 };
    const target = { bytes: new Uint8Array(16 * 7), offset: 0, stride: 16 };
    expect(native.copyRect(source, target, 16, 7)).toBe(112);
    expect(target.bytes).toEqual(source.bytes.subarray(16));
  });

  it("reads and writes through views at an offset into their ArrayBuffer", () => {
    const backing = numbered(1000);
    const source = { bytes: backing.subarray(100, 300), offset: 10, stride: 20 };
    const target = { bytes: new Uint8Array(500).subarray(50, 250), offset: 0, stride: 8 };
    const expected = copyByRows(source, target, 8, 9);
    native.copyRect(source, target, 8, 9);
    expect(target.bytes).toEqual(expected);
  });

  it("copies nothing for zero rows or zero-byte rows", () => {
    const target = { bytes: new Uint8Array(8), offset: 0, stride: 4 };
    expect(native.copyRect({ bytes: numbered(8), offset: 0, stride: 4 }, target, 0, 2)).toBe(0);
    expect(native.copyRect({ bytes: numbered(8), offset: 0, stride: 4 }, target, 4, 0)).toBe(0);
    expect(target.bytes).toEqual(new Uint8Array(8));
  });

  it("rejects a rectangle that runs one byte past either buffer, in TS and again in C++", () => {
    const source = { bytes: numbered(100), offset: 0, stride: 10 };
    const target = { bytes: new Uint8Array(100), offset: 0, stride: 10 };
    expect(() => native.copyRect({ ...source, offset: 1 }, target, 10, 10)).toThrow(RangeError);
    expect(() => native.copyRect(source, { ...target, offset: 1 }, 10, 10)).toThrow(RangeError);
    expect(() => native.binding.copyRect(source.bytes, 1, 10, target.bytes, 0, 10, 10, 10)).toThrow(
      expect.objectContaining({ code: "ERR_OUT_OF_RANGE" }),
    );
    expect(() => native.binding.copyRect(source.bytes, 0, 10, target.bytes, 1, 10, 10, 10)).toThrow(
      expect.objectContaining({ code: "ERR_OUT_OF_RANGE" }),
    );
    expect(target.bytes).toEqual(new Uint8Array(100));
  });

  it("rejects a row longer than a stride, and hostile figures (-1, 2^31, 2^32-1, NaN, 1.5)", () => {
    const source = { bytes: numbered(100), offset: 0, stride: 10 };
    const target = { bytes: new Uint8Array(100), offset: 0, stride: 10 };
    expect(() => native.copyRect(source, { ...target, stride: 5 }, 10, 2)).toThrow(RangeError);
    expect(() => native.binding.copyRect(source.bytes, 0, 5, target.bytes, 0, 10, 10, 2)).toThrow(
      expect.objectContaining({ code: "ERR_OUT_OF_RANGE" }),
    );
    for (const bad of [-1, 2 ** 31, 2 ** 32 - 1, Number.NaN, 1.5]) {
      expect(() => native.copyRect(source, target, bad, 1)).toThrow(RangeError);
      expect(() => native.copyRect(source, target, 1, bad)).toThrow(RangeError);
      expect(() => native.copyRect({ ...source, offset: bad }, target, 1, 1)).toThrow(RangeError);
      expect(() => native.copyRect(source, { ...target, stride: bad }, 1, 2)).toThrow(RangeError);
      expect(() => native.binding.copyRect(source.bytes, bad, 10, target.bytes, 0, 10, 1, 1)).toThrow();
      expect(() => native.binding.copyRect(source.bytes, 0, 10, target.bytes, 0, 10, 1, bad)).toThrow();
    }
    expect(target.bytes).toEqual(new Uint8Array(100));
  });

  it("rejects buffers that are not Uint8Arrays", () => {
    const target = { bytes: new Uint8Array(16), offset: 0, stride: 4 };
    const words = new Uint32Array(4) as unknown as Uint8Array;
    expect(() => native.copyRect({ bytes: words, offset: 0, stride: 4 }, target, 4, 1)).toThrow(TypeError);
    expect(() => native.binding.copyRect(words, 0, 4, target.bytes, 0, 4, 4, 1)).toThrow(
      expect.objectContaining({ code: "ERR_INVALID_ARG_TYPE" }),
    );
  });

  it(
    "reads zeros from a guarded mapping whose file shrank, with the faulted flag set and the process alive",
    { timeout: withStartup(15_000) },
    async () => {
      const result = await finishedAfterReady(spawnTs("test/native/peers/shrunk-file.ts", ["guard", "rect"]), 10_000);
      expect(result.stderr).toBe("");
      expect(JSON.parse(result.stdout)).toEqual({ before: 0xab, after: 0, faulted: true, zeros: true });
      expect(result.code).toBe(0);
    },
  );
});
