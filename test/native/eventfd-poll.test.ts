import { describe, expect, it } from "vitest";

import * as native from "../../native/index.ts";
import { trackFds } from "../helpers/fds.ts";
import { finishedAfterReady, spawnTs, withStartup } from "../helpers/processes.ts";

const track = trackFds();

function nextEvent(poll: native.Poll, events = native.POLL_READABLE): Promise<number> {
  return new Promise((resolve) => {
    pending = resolve;
    poll.start(events);
  });
}
let pending: ((events: number) => void) | undefined;

describe("eventfd", () => {
  it("adds signals up and reads them back once", () => {
    const fd = track(native.eventfdCreate());
    expect(native.eventfdConsume(fd)).toBe(0);
    expect(native.eventfdSignal(fd)).toBe(true);
    expect(native.eventfdSignal(fd, 41)).toBe(true);
    expect(native.eventfdConsume(fd)).toBe(42);
    expect(native.eventfdConsume(fd)).toBe(0);
  });

  it("counts down by one in semaphore mode", () => {
    const fd = track(native.eventfdCreate({ initial: 2, semaphore: true }));
    expect(native.eventfdConsume(fd)).toBe(1);
    expect(native.eventfdConsume(fd)).toBe(1);
    expect(native.eventfdConsume(fd)).toBe(0);
  });

  it("reports a closed eventfd as EBADF from write and read", () => {
    const fd = native.eventfdCreate();
    native.close(fd);
    expect(() => native.eventfdSignal(fd)).toThrow(expect.objectContaining({ code: "EBADF", syscall: "write" }));
    expect(() => native.eventfdConsume(fd)).toThrow(expect.objectContaining({ code: "EBADF", syscall: "read" }));
  });

  it("never blocks, even on an eventfd someone made blocking: an empty counter reads as 0", () => {
    const fd = track(native.eventfdCreate());
    native.setNonBlocking(fd, false);
    expect(native.eventfdConsume(fd)).toBe(0);
    expect(native.eventfdSignal(fd, 2)).toBe(true);
    expect(native.eventfdConsume(fd)).toBe(2);
  });

  it("rejects values the counter cannot take", () => {
    const fd = track(native.eventfdCreate());
    expect(() => native.eventfdSignal(fd, 0)).toThrow(RangeError);
    expect(() => native.eventfdSignal(fd, 2 ** 60)).toThrow(RangeError);
    expect(() => native.eventfdCreate({ initial: -1 })).toThrow(RangeError);
  });
});

describe("Poll", () => {
  it("delivers readiness of an eventfd on the event loop, then again after the next signal", async () => {
    const fd = track(native.eventfdCreate());
    const poll = new native.Poll(fd, (error, events) => {
      expect(error).toBeNull();
      poll.stop();
      pending?.(events);
    });
    const first = nextEvent(poll);
    native.eventfdSignal(fd, 5);
    expect(await first).toBe(native.POLL_READABLE);
    expect(native.eventfdConsume(fd)).toBe(5);
    const second = nextEvent(poll);
    native.eventfdSignal(fd);
    expect(await second).toBe(native.POLL_READABLE);
    poll.close();
    expect(poll.closed).toBe(true);
  });

  it("runs promise jobs queued by its callback before the loop goes on", async () => {
    const fd = track(native.eventfdCreate());
    const order: string[] = [];
    await new Promise<void>((resolve) => {
      const poll = new native.Poll(fd, () => {
        poll.close();
        void Promise.resolve().then(() => order.push("microtask"));
        setImmediate(() => {
          order.push("immediate");
          resolve();
        });
      });
      poll.start(native.POLL_READABLE);
      native.eventfdSignal(fd);
    });
    expect(order).toEqual(["microtask", "immediate"]);
  });

  it("throws EBADF once closed, and close is idempotent", () => {
    const fd = track(native.eventfdCreate());
    const poll = new native.Poll(fd, () => undefined);
    poll.close();
    poll.close();
    expect(() => poll.start(native.POLL_READABLE)).toThrow(expect.objectContaining({ code: "EBADF" }));
    expect(() => poll.ref()).toThrow(expect.objectContaining({ code: "EBADF" }));
  });

  it("lets its callback, and the owner the callback closes over, be collected once closed", async () => {
    const gc = (globalThis as { gc?: () => void }).gc;
    expect(gc, "run with --expose-gc (vitest.config.ts sets it)").toBeDefined();
    const fd = track(native.eventfdCreate());
    const owners = (() => {
      // An owner that holds its poll, whose callback closes over the owner: a Connection's shape.
      const started = { poll: null as native.Poll | null };
      started.poll = new native.Poll(fd, () => void started);
      started.poll.start(native.POLL_READABLE);
      started.poll.close();
      const idle = { poll: null as native.Poll | null };
      idle.poll = new native.Poll(fd, () => void idle);
      idle.poll.close();
      return [new WeakRef(started), new WeakRef(idle)];
    })();
    // A WeakRef holds its target until the current job ends: collect on a later turn.
    await new Promise((resolve) => setImmediate(resolve));
    gc!();
    await new Promise((resolve) => setImmediate(resolve));
    expect(owners.map((owner) => owner.deref() === undefined)).toEqual([true, true]);
  });

  it("refuses a receiver that is not a Poll and arguments of the wrong type", () => {
    const fd = track(native.eventfdCreate());
    const poll = new native.Poll(fd, () => undefined);
    expect(() => poll.start.call({} as native.Poll, 1)).toThrow();
    expect(() => new native.Poll(fd, "nope" as unknown as () => void)).toThrow(TypeError);
    expect(() => new native.Poll(-1, () => undefined)).toThrow(RangeError);
    expect(() => poll.start(0)).toThrow(RangeError);
    poll.close();
  });

  it(
    "hands an exception thrown by its callback to uncaughtException instead of aborting",
    { timeout: withStartup(15_000) },
    async () => {
      const result = await finishedAfterReady(spawnTs("test/native/peers/poll-throws.ts"), 10_000);
      expect(result.stdout).toBe("caught: thrown in a poll callback\n");
      expect(result.code).toBe(0);
    },
  );

  it(
    "lets the process exit while an unref'd poll waits, and keeps it alive while ref'd",
    { timeout: withStartup(25_000, 2) },
    async () => {
      // Each run has 10 s from its ready line to its exit: an unref'd poll that kept it alive would hang there.
      const unref = await finishedAfterReady(spawnTs("test/native/peers/poll-ref.ts", ["unref"]), 10_000);
      expect(unref.code).toBe(0);
      expect(unref.stdout).toBe("exited\n");
      const ref = await finishedAfterReady(spawnTs("test/native/peers/poll-ref.ts", ["ref"]), 10_000);
      expect(ref.code).toBe(0);
      expect(ref.stdout).toBe("woken\nexited\n");
    },
  );
});
