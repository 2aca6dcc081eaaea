import { describe, expect, it } from "vitest";

import * as native from "../../native/index.ts";
import { trackFds } from "../helpers/fds.ts";
import { READY_TIMEOUT_MS, finished, finishedAfterReady, spawnTs, withStartup, within } from "../helpers/processes.ts";

const track = trackFds();

describe("memfd", () => {
  it("creates a file of the asked size and resizes it", () => {
    const fd = track(native.memfdCreate("test", 3 * native.PAGE_SIZE));
    expect(native.fileSize(fd)).toBe(3 * native.PAGE_SIZE);
    native.resize(fd, native.PAGE_SIZE);
    expect(native.fileSize(fd)).toBe(native.PAGE_SIZE);
  });

  it("refuses to grow once sealed against growing, with EPERM from ftruncate", () => {
    const fd = track(native.memfdCreate("sealed", native.PAGE_SIZE));
    native.addSeals(fd, native.SEAL_GROW | native.SEAL_SHRINK);
    expect(native.getSeals(fd) & (native.SEAL_GROW | native.SEAL_SHRINK)).toBe(native.SEAL_GROW | native.SEAL_SHRINK);
    expect(() => native.resize(fd, 2 * native.PAGE_SIZE)).toThrow(
      expect.objectContaining({ code: "EPERM", syscall: "ftruncate" }),
    );
  });

  it("cannot be sealed when created without sealing", () => {
    const fd = track(native.memfdCreate("unsealable", native.PAGE_SIZE, { allowSealing: false }));
    expect(() => native.addSeals(fd, native.SEAL_GROW)).toThrow(expect.objectContaining({ code: "EPERM" }));
  });

  it("rejects oversize and malformed requests before they reach the kernel", () => {
    expect(() => native.memfdCreate("huge", 2 ** 47)).toThrow(RangeError);
    expect(() => native.memfdCreate("", 0)).toThrow(RangeError);
    expect(() => native.resize(-1, 10)).toThrow(RangeError);
    expect(() => native.binding.ftruncate(-1 as number, 10)).toThrow(
      expect.objectContaining({ code: "ERR_OUT_OF_RANGE" }),
    );
  });
});

describe("mmap", () => {
  it("maps the same pages twice: a write through one view is read through the other", () => {
    const fd = track(native.memfdCreate("twice", 2 * native.PAGE_SIZE));
    const a = native.mmap(fd, 0, 2 * native.PAGE_SIZE, { writable: true });
    const b = native.mmap(fd, native.PAGE_SIZE, native.PAGE_SIZE, { populate: true });
    new Uint8Array(a)[native.PAGE_SIZE + 7] = 0xab;
    expect(new Uint8Array(b)[7]).toBe(0xab);
    native.munmap(a);
    native.munmap(b);
  });

  it("counts what is mapped: memoryStats follows mmap, guarded mappings' slots and munmap", () => {
    const fd = track(native.memfdCreate("stats", 3 * native.PAGE_SIZE));
    const before = native.memoryStats();
    const plain = native.mmap(fd, 0, native.PAGE_SIZE);
    const guarded = native.mmap(fd, 0, 3 * native.PAGE_SIZE, { guardSigbus: true });
    expect(native.memoryStats()).toEqual({
      mappings: before.mappings + 2,
      mappedBytes: before.mappedBytes + 4 * native.PAGE_SIZE,
      guardSlotsInUse: before.guardSlotsInUse + 1,
    });
    native.munmap(guarded);
    expect(native.memoryStats().guardSlotsInUse).toBe(before.guardSlotsInUse);
    native.munmap(plain);
    expect(native.memoryStats()).toEqual(before);
  });

  it("detaches on munmap: views read as empty and the buffer says it is unmapped", () => {
    const fd = track(native.memfdCreate("detach", native.PAGE_SIZE));
    const buffer = native.mmap(fd, 0, native.PAGE_SIZE, { writable: true });
    const view = new Uint32Array(buffer);
    view[0] = 7;
    expect(native.isMapped(buffer)).toBe(true);
    native.munmap(buffer);
    expect(native.isMapped(buffer)).toBe(false);
    expect(buffer.byteLength).toBe(0);
    expect(view.length).toBe(0);
    expect(view[0]).toBeUndefined();
  });

  it("refuses a second munmap with EINVAL and a foreign buffer with a TypeError", () => {
    const fd = track(native.memfdCreate("twice-unmapped", native.PAGE_SIZE));
    const buffer = native.mmap(fd, 0, native.PAGE_SIZE);
    native.munmap(buffer);
    expect(() => native.munmap(buffer)).toThrow(expect.objectContaining({ code: "EINVAL", syscall: "munmap" }));
    expect(() => native.munmap(new ArrayBuffer(16))).toThrow(/not created by mmap/);
    expect(() => native.binding.munmap(new Uint8Array(4) as unknown as ArrayBuffer)).toThrow(TypeError);
  });

  it("reports a bad fd as EBADF from mmap", () => {
    expect(() => native.mmap(987654, 0, native.PAGE_SIZE)).toThrow(
      expect.objectContaining({
        code: "EBADF",
        syscall: "mmap",
        message: expect.stringContaining("mmap failed: EBADF"),
      }),
    );
  });

  it("rejects unaligned offsets and oversize lengths", () => {
    const fd = track(native.memfdCreate("bounds", native.PAGE_SIZE));
    expect(() => native.mmap(fd, 100, native.PAGE_SIZE)).toThrow(/multiple of/);
    expect(() => native.mmap(fd, 0, 0)).toThrow(RangeError);
    expect(() => native.mmap(fd, 0, 2 ** 32 + 4096)).toThrow(RangeError);
    expect(() => native.binding.mmap(fd, 100, 4096, false, false)).toThrow(
      expect.objectContaining({ code: "ERR_OUT_OF_RANGE" }),
    );
  });

  it(
    "gives unmapped memory back through the finalizer when a mapping is forgotten",
    { timeout: withStartup(40_000) },
    async () => {
      const child = spawnTs("test/native/peers/forgotten-mappings.ts", [], {}, ["--expose-gc"]);
      const result = await finishedAfterReady(child, 30_000);
      expect(result.stderr).toBe("");
      const report = JSON.parse(result.stdout) as { before: number; during: number; after: number };
      expect(report.during - report.before).toBeGreaterThanOrEqual(64);
      expect(report.after - report.before).toBeLessThan(8);
    },
  );
});

describe("SIGBUS guard", () => {
  it(
    "turns a read past a shrunk file into zeros and a faulted flag, with the process alive",
    { timeout: withStartup(15_000) },
    async () => {
      const result = await finishedAfterReady(spawnTs("test/native/peers/shrunk-file.ts", ["guard"]), 10_000);
      expect(result.stderr).toBe("");
      expect(JSON.parse(result.stdout)).toEqual({ before: 0xab, after: 0, faulted: true, zeros: true });
      expect(result.code).toBe(0);
    },
  );

  it(
    "leaves an unguarded mapping to the default: SIGBUS ends the process",
    { timeout: withStartup(15_000) },
    async () => {
      const result = await finishedAfterReady(spawnTs("test/native/peers/shrunk-file.ts", ["plain"]), 10_000);
      expect(result.signal).toBe("SIGBUS");
    },
  );

  it(
    "keeps guarding after the first fault: a second shrunk file also reads as zeros",
    { timeout: withStartup(15_000) },
    async () => {
      const result = await finishedAfterReady(spawnTs("test/native/peers/sigbus-cases.ts", ["twice"]), 10_000);
      expect(result.stdout).toBe("1 1\n");
      expect(result.code).toBe(0);
    },
  );

  it(
    "leaves a SIGBUS sent by a process its default effect (death), instead of dropping the guard",
    { timeout: withStartup(15_000) },
    async () => {
      const result = await finishedAfterReady(spawnTs("test/native/peers/sigbus-cases.ts", ["kill"]), 10_000);
      expect(result.stdout).toBe("");
      expect(result.signal).toBe("SIGBUS");
    },
  );

  it("has room for 16384 guarded mappings", () => {
    expect(native.SIGBUS_GUARD_SLOTS).toBe(16384);
  });

  it("refuses a guarded mapping when the guard table is full, instead of mapping it unguarded", () => {
    const fd = track(native.memfdCreate("many", native.PAGE_SIZE));
    const buffers: ArrayBuffer[] = [];
    let refused: unknown;
    try {
      for (let i = 0; i < native.SIGBUS_GUARD_SLOTS + 100 && refused === undefined; i++) {
        try {
          buffers.push(native.mmap(fd, 0, native.PAGE_SIZE, { guardSigbus: true }));
        } catch (error) {
          refused = error;
        }
      }
      expect(refused).toMatchObject({ code: "ENOMEM", syscall: "mmap (SIGBUS guard table full)" });
      expect(buffers.length).toBeLessThanOrEqual(native.SIGBUS_GUARD_SLOTS);
    } finally {
      for (const buffer of buffers) native.munmap(buffer);
    }
    const again = native.mmap(fd, 0, native.PAGE_SIZE, { guardSigbus: true });
    native.munmap(again);
  });

  it("refuses a length Node cannot hold (over 4 GiB) before mapping", () => {
    const fd = track(native.memfdCreate("huge", native.PAGE_SIZE));
    expect(() => native.binding.mmap(fd, 0, 2 ** 32 + 4096, false, false)).toThrow(
      expect.objectContaining({ code: "ERR_OUT_OF_RANGE" }),
    );
  });

  it("reports an intact guarded mapping as not faulted", () => {
    const fd = track(native.memfdCreate("intact", native.PAGE_SIZE));
    const buffer = native.mmap(fd, 0, native.PAGE_SIZE, { guardSigbus: true });
    expect(new Uint8Array(buffer)[0]).toBe(0);
    expect(native.mappingFaulted(buffer)).toBe(false);
    native.munmap(buffer);
    expect(native.mappingFaulted(buffer)).toBe(false);
  });
});

describe("across two processes", () => {
  it(
    "shares a memfd and eventfds over a socket: each side sees the other's writes, eventfds wake both",
    { timeout: withStartup(15_000) },
    async () => {
      const { temporaryDirectory } = await import("../helpers/processes.ts");
      const tmp = temporaryDirectory();
      const socketPath = `${tmp.dir}/peer.sock`;
      const listener = track(native.listen("stream", socketPath));
      const child = spawnTs("test/native/peers/shared-memory-peer.ts", [socketPath]);
      const done = finished(child);

      // The child's connection is its readiness signal: start-up takes what the machine needs.
      const connection = await within(
        new Promise<number>((resolve) => {
          const poll = new native.Poll(listener, () => {
            const fd = native.accept(listener);
            if (fd === null) return;
            poll.close();
            resolve(track(fd));
          });
          poll.start(native.POLL_READABLE);
        }),
        READY_TIMEOUT_MS,
        "shared-memory-peer's connection (its readiness signal)",
      );

      const memfd = track(native.memfdCreate("shared", 2 * native.PAGE_SIZE));
      const wakeChild = track(native.eventfdCreate());
      const wakeParent = track(native.eventfdCreate());
      const shared = native.mmap(memfd, 0, 2 * native.PAGE_SIZE, { writable: true });
      const words = new Int32Array(shared);
      const page = new Uint8Array(shared, native.PAGE_SIZE, native.PAGE_SIZE);
      expect(native.sendmsg(connection, new Uint8Array([1]), [memfd, wakeChild, wakeParent])).toBe(1);

      const seen: Array<{ sum: number; reply: number }> = [];
      let expectedSum = 0;
      const pingPong = new Promise<void>((resolve, reject) => {
        let round = 0;
        const poll = new native.Poll(wakeParent, () => {
          native.eventfdConsume(wakeParent);
          try {
            if (round === 0) {
              // The child mapped the memfd and wrote its marker: no copy, the same pages.
              expect(Atomics.load(words, 3)).toBe(0x51554245);
            } else {
              seen.push({ sum: Atomics.load(words, 1), reply: Atomics.load(words, 2) });
            }
            if (round === 3) {
              poll.close();
              resolve();
              return;
            }
            round += 1;
            page.fill(round);
            expectedSum = round * native.PAGE_SIZE;
            Atomics.store(words, 0, round);
            native.eventfdSignal(wakeChild);
          } catch (error) {
            poll.close();
            reject(error as Error);
          }
        });
        poll.start(native.POLL_READABLE);
      });
      await within(pingPong, 10_000, "three rounds of ping-pong with the ready child");
      expect(seen).toEqual([
        { sum: 1 * native.PAGE_SIZE, reply: 1000 },
        { sum: 2 * native.PAGE_SIZE, reply: 2000 },
        { sum: 3 * native.PAGE_SIZE, reply: 3000 },
      ]);
      expect(expectedSum).toBe(3 * native.PAGE_SIZE);
      const result = await done;
      expect(result.stderr).toBe("");
      expect(result.code).toBe(0);
      native.munmap(shared);
      tmp.remove();
    },
  );
});
