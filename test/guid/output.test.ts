/**
 * guid's bounded writer to an agent (OutputQueue) over a fake vchan whose
 * ring takes as many bytes as the test allows: what fits is written at once,
 * the rest waits in order across partial writes and `drain` events, a queue
 * past MAX_OUTPUT_QUEUE (upstream's 10 000 000 bytes) ends in one
 * "overflow", a throwing write in one "disconnected", and nothing is written
 * after either or after close(). The expected bytes come from the test's own
 * ByteBuilder, never from protocol/'s encoder.
 */
import { EventEmitter } from "node:events";

import fc from "fast-check";
import { describe, expect, it } from "vitest";

import { MAX_OUTPUT_QUEUE, OutputQueue, type OutputFailure } from "../../guid/output.ts";
import type { Message } from "../../protocol/index.ts";
import { VCHAN_CONNECTED, type Vchan, type VchanEvents, type VchanState } from "../../vchan/index.ts";
import { bytes, concat } from "../protocol/bytes.ts";

const VERSION_1_8 = 0x00010008;
/** MSG_MOTION, written out so the expected bytes do not come from protocol/. */
const MSG_MOTION = 126;

/**
 * A vchan whose write ring takes `space` bytes until the test frees more;
 * everything written is kept in order. Like a real vchan it never emits
 * inside a call: the test emits `drain` itself.
 */
class FakeVchan extends EventEmitter<VchanEvents> implements Vchan {
  readonly backend = "socket" as const;
  readonly role = "client" as const;
  readonly domain = 5;
  readonly port = 6000;
  readonly writeRingSize = 65536;
  readonly readRingSize = 65536;
  /** Bytes the ring takes now; each write lowers it by what it took. */
  space = Infinity;
  /** When set, write() throws it (the peer went away). */
  failWith: Error | null = null;
  /** Calls of write(), including those that took nothing. */
  writeCalls = 0;
  readonly #written: Uint8Array[] = [];

  /** Everything written so far, in order. */
  get written(): Uint8Array {
    return concat(...this.#written);
  }

  /** Frees `bytes` of ring space and tells the writer, as the vchan does after the peer read. */
  free(bytes: number): void {
    this.space = bytes;
    this.emit("drain");
  }

  write(data: Uint8Array): number {
    this.writeCalls += 1;
    if (this.failWith !== null) throw this.failWith;
    const taken = Math.min(data.length, this.space);
    this.space -= taken;
    if (taken > 0) this.#written.push(data.slice(0, taken));
    return taken;
  }

  isOpen(): VchanState {
    return VCHAN_CONNECTED;
  }
  dataReady(): number {
    return 0;
  }
  bufferSpace(): number {
    return Number.isFinite(this.space) ? this.space : this.writeRingSize;
  }
  read(): number {
    return 0;
  }
  recv(): boolean {
    throw new Error("OutputQueue does not read");
  }
  send(): boolean {
    throw new Error("OutputQueue writes with write(), never send()");
  }
  whenConnected(): Promise<void> {
    return Promise.resolve();
  }
  close(): void {}
}

function motion(window: number, x: number, y: number): Message {
  return { type: "MOTION", window, x, y, state: 0, is_hint: 0 };
}

/** MOTION as the wire carries it (qubes-gui-protocol.md 1.6), built by hand. */
function motionBytes(window: number, x: number, y: number): Uint8Array {
  return bytes().header(MSG_MOTION, window, 16).i32(x).i32(y).u32(0).u32(0).build();
}

/** A writer on a fresh fake vchan, with the failures it reported. */
function setup(space = Infinity): { vchan: FakeVchan; output: OutputQueue; failures: OutputFailure[] } {
  const vchan = new FakeVchan();
  vchan.space = space;
  const failures: OutputFailure[] = [];
  const output = new OutputQueue(vchan, VERSION_1_8, (failure) => failures.push(failure));
  return { vchan, output, failures };
}

function pattern(length: number, seed: number): Uint8Array {
  const out = new Uint8Array(length);
  for (let i = 0; i < length; i++) out[i] = (seed + i * 7) & 0xff;
  return out;
}

describe("OutputQueue", () => {
  it("writes a message that fits at once, as the wire layout", () => {
    const { vchan, output, failures } = setup();
    output.send(motion(0x00400001, 10, -3));
    expect(vchan.written).toEqual(motionBytes(0x00400001, 10, -3));
    expect(output.queuedBytes).toBe(0);
    expect(failures).toEqual([]);
  });

  it("writes what fits, queues the rest and sends it on drain", () => {
    const { vchan, output, failures } = setup(10);
    output.send(motion(1, 1, 2));
    expect(vchan.written).toEqual(motionBytes(1, 1, 2).subarray(0, 10));
    expect(output.queuedBytes).toBe(28 - 10);
    vchan.free(100);
    expect(vchan.written).toEqual(motionBytes(1, 1, 2));
    expect(output.queuedBytes).toBe(0);
    expect(failures).toEqual([]);
  });

  it("keeps order: a message sent while others wait goes behind them even when the ring has room", () => {
    const { vchan, output } = setup(0);
    output.send(motion(1, 1, 1));
    vchan.space = 1000;
    output.send(motion(2, 2, 2));
    // No drain yet: writing the second now would put it before the first.
    expect(vchan.written).toEqual(new Uint8Array(0));
    expect(output.queuedBytes).toBe(56);
    vchan.free(1000);
    expect(vchan.written).toEqual(concat(motionBytes(1, 1, 1), motionBytes(2, 2, 2)));
  });

  it("keeps order across many partial writes and drains", () => {
    const { vchan, output } = setup(5);
    const expected: Uint8Array[] = [];
    for (let i = 0; i < 20; i++) {
      output.send(motion(i + 1, i, -i));
      expected.push(motionBytes(i + 1, i, -i));
    }
    let drains = 0;
    while (output.queuedBytes > 0) {
      vchan.free(3 + (drains % 11));
      drains += 1;
      if (drains > 1000) throw new Error(`the queue did not empty: ${output.queuedBytes} bytes left`);
    }
    expect(vchan.written).toEqual(concat(...expected));
  });

  it("stops at a drain that frees nothing and goes on at the next", () => {
    const { vchan, output } = setup(0);
    output.send(motion(7, 7, 7));
    vchan.free(0);
    expect(vchan.written).toEqual(new Uint8Array(0));
    expect(output.queuedBytes).toBe(28);
    vchan.free(28);
    expect(vchan.written).toEqual(motionBytes(7, 7, 7));
  });

  it("copies what it queues, so the caller may reuse its bytes", () => {
    const { vchan, output } = setup(2);
    const word = Uint8Array.of(8, 0, 1, 0);
    output.write(word);
    word.fill(0xee);
    vchan.free(10);
    expect(vchan.written).toEqual(Uint8Array.of(8, 0, 1, 0));
  });

  it("writes any chunking of the ring in order (property)", () => {
    fc.assert(
      fc.property(
        fc.array(fc.uint8Array({ minLength: 1, maxLength: 64 }), { maxLength: 20 }),
        fc.nat(64),
        fc.array(fc.integer({ min: 1, max: 50 }), { minLength: 1, maxLength: 20 }),
        (pieces, firstSpace, spaces) => {
          const { vchan, output, failures } = setup(firstSpace);
          for (const piece of pieces) output.write(piece);
          for (let i = 0; output.queuedBytes > 0; i++) vchan.free(spaces[i % spaces.length] as number);
          expect(vchan.written).toEqual(concat(...pieces));
          expect(failures).toEqual([]);
        },
      ),
    );
  });

  it("bounds the queue at upstream's 10 000 000 bytes", () => {
    expect(MAX_OUTPUT_QUEUE).toBe(10_000_000);
  });

  it("lets exactly MAX_OUTPUT_QUEUE bytes wait", () => {
    const { vchan, output, failures } = setup(0);
    output.write(new Uint8Array(MAX_OUTPUT_QUEUE));
    expect(output.queuedBytes).toBe(MAX_OUTPUT_QUEUE);
    expect(failures).toEqual([]);
    vchan.free(Infinity);
    expect(vchan.written.length).toBe(MAX_OUTPUT_QUEUE);
  });

  it("counts only the bytes that wait, not those the ring took", () => {
    const { output, failures } = setup(100);
    output.write(new Uint8Array(MAX_OUTPUT_QUEUE + 100));
    expect(output.queuedBytes).toBe(MAX_OUTPUT_QUEUE);
    expect(failures).toEqual([]);
  });

  it("reports overflow once past MAX_OUTPUT_QUEUE waiting bytes, then writes nothing", () => {
    const { vchan, output, failures } = setup(0);
    output.write(new Uint8Array(MAX_OUTPUT_QUEUE));
    output.send(motion(1, 0, 0));
    expect(failures).toEqual([{ kind: "overflow", queued: MAX_OUTPUT_QUEUE + 28 }]);
    expect(output.queuedBytes).toBe(0);
    const calls = vchan.writeCalls;
    output.send(motion(2, 0, 0));
    output.write(pattern(10, 1));
    vchan.free(Infinity);
    expect(vchan.writeCalls).toBe(calls);
    expect(vchan.written).toEqual(new Uint8Array(0));
    expect(failures).toHaveLength(1);
    expect(vchan.listenerCount("drain")).toBe(0);
  });

  it("reports disconnected once when write throws, then writes nothing", () => {
    const { vchan, output, failures } = setup();
    output.send(motion(1, 0, 0));
    vchan.failWith = new Error("VCHAN_DISCONNECTED");
    output.send(motion(2, 0, 0));
    expect(failures).toEqual([{ kind: "disconnected" }]);
    const calls = vchan.writeCalls;
    vchan.failWith = null;
    output.send(motion(3, 0, 0));
    vchan.free(Infinity);
    expect(vchan.writeCalls).toBe(calls);
    expect(vchan.written).toEqual(motionBytes(1, 0, 0));
    expect(failures).toHaveLength(1);
  });

  it("reports disconnected when write throws while the queue drains", () => {
    const { vchan, output, failures } = setup(4);
    output.send(motion(1, 0, 0));
    output.send(motion(2, 0, 0));
    vchan.failWith = new Error("VCHAN_DISCONNECTED");
    vchan.emit("drain");
    expect(failures).toEqual([{ kind: "disconnected" }]);
    expect(output.queuedBytes).toBe(0);
    vchan.failWith = null;
    vchan.free(Infinity);
    expect(vchan.written).toEqual(motionBytes(1, 0, 0).subarray(0, 4));
    expect(failures).toHaveLength(1);
  });

  it("sends nothing after close(), reports nothing and forgets the queue", () => {
    const { vchan, output, failures } = setup(3);
    output.send(motion(1, 0, 0));
    output.close();
    expect(output.queuedBytes).toBe(0);
    const calls = vchan.writeCalls;
    output.send(motion(2, 0, 0));
    output.write(pattern(5, 2));
    vchan.free(Infinity);
    expect(vchan.writeCalls).toBe(calls);
    expect(vchan.written).toEqual(motionBytes(1, 0, 0).subarray(0, 3));
    expect(failures).toEqual([]);
    expect(vchan.listenerCount("drain")).toBe(0);
    output.close();
  });
});
