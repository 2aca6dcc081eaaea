import { afterEach, describe, expect, it } from "vitest";

import * as native from "../../native/index.ts";

const PAGE = native.PAGE_SIZE;
const fds: number[] = [];
afterEach(() => {
  for (const fd of fds.splice(0)) native.close(fd);
});

describe("mmapRuns: scattered page runs as one view", () => {
  it("places the runs side by side in the order given, sharing the file's pages", () => {
    const fd = native.memfdCreate("runs", 4 * PAGE);
    fds.push(fd);
    const whole = native.mmap(fd, 0, 4 * PAGE, { writable: true });
    const bytes = new Uint8Array(whole);
    for (let page = 0; page < 4; page++) bytes[page * PAGE] = page + 1;
    const view = native.mmapRuns(fd, [
      { offset: 3 * PAGE, length: PAGE },
      { offset: 0, length: 2 * PAGE },
    ]);
    const seen = new Uint8Array(view);
    expect(seen.length).toBe(3 * PAGE);
    expect([seen[0], seen[PAGE], seen[2 * PAGE]]).toEqual([4, 1, 2]);
    bytes[PAGE] = 9;
    expect(seen[2 * PAGE]).toBe(9);
    native.munmapRuns(view);
    expect(view.byteLength).toBe(0);
    expect(() => native.munmapRuns(view)).toThrow(expect.objectContaining({ code: "EINVAL", syscall: "munmap" }));
    native.munmap(whole);
  });

  it("refuses unaligned runs, an empty list and buffers it did not make", () => {
    const fd = native.memfdCreate("runs-bad", PAGE);
    fds.push(fd);
    expect(() => native.mmapRuns(fd, [{ offset: 1, length: PAGE }])).toThrow(RangeError);
    expect(() => native.mmapRuns(fd, [{ offset: 0, length: PAGE + 1 }])).toThrow(RangeError);
    expect(() => native.mmapRuns(fd, [])).toThrow(RangeError);
    expect(() => native.binding.mmapRuns(fd, [0], [1], false, false)).toThrow(
      expect.objectContaining({ code: "ERR_OUT_OF_RANGE" }),
    );
    expect(() => native.munmapRuns(new ArrayBuffer(8))).toThrow(TypeError);
    const plain = native.mmap(fd, 0, PAGE);
    expect(() => native.munmapRuns(plain)).toThrow(TypeError);
    native.munmap(plain);
  });

  it("names mmap and the errno when the kernel refuses a run", () => {
    expect(() => native.mmapRuns(1_000_000, [{ offset: 0, length: PAGE }])).toThrow(
      expect.objectContaining({ code: "EBADF", syscall: "mmap" }),
    );
  });
});
