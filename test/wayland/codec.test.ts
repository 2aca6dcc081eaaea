// The table-driven codec: every argument type encoded and decoded against
// bytes built by hand, hostile lengths refused without throwing, and
// decode(encode(m)) = m for random messages.
import fc from "fast-check";
import { describe, expect, it } from "vitest";

import { close, fileSize, memfdCreate } from "../../native/index.ts";
import {
  FdQueue,
  MessageWriter,
  compileInterface,
  decodeArgs,
  encodeMessage,
  type InterfaceSpec,
  type WireArg,
} from "../../wayland/index.ts";

/** A made-up interface whose one request carries every argument type. */
const everything = {
  name: "test_everything",
  version: 1,
  requests: [
    {
      name: "all",
      since: 1,
      args: [
        { name: "i", type: "int" },
        { name: "u", type: "uint" },
        { name: "f", type: "fixed" },
        { name: "s", type: "string" },
        { name: "ns", type: "string", nullable: true },
        { name: "o", type: "object", interface: "wl_surface" },
        { name: "no", type: "object", interface: "wl_surface", nullable: true },
        { name: "n", type: "new_id", interface: "wl_callback" },
        { name: "a", type: "array" },
        { name: "h", type: "fd" },
        { name: "un", type: "new_id" },
      ],
    },
  ],
  events: [],
  enums: {},
} as const satisfies InterfaceSpec;

const all = compileInterface(everything).requests[0]!;

/** Builds wire bytes word by word, independently of the encoder. */
class Builder {
  private words: number[] = [];
  u32(value: number): this {
    this.words.push(value >>> 0);
    return this;
  }
  /** A string as length (with NUL) then the padded bytes. */
  text(value: string): this {
    const bytes = [...Buffer.from(value, "utf8"), 0];
    return this.u32(bytes.length).raw(bytes);
  }
  raw(bytes: number[]): this {
    const padded = [...bytes];
    while (padded.length % 4 !== 0) padded.push(0);
    for (let i = 0; i < padded.length; i += 4) {
      this.words.push(
        ((padded[i]! | (padded[i + 1]! << 8) | (padded[i + 2]! << 16) | (padded[i + 3]! << 24)) >>> 0) as number,
      );
    }
    return this;
  }
  /** The message: header for (objectId, opcode) then the words. */
  message(objectId: number, opcode: number): Uint8Array {
    const bytes = new Uint8Array(8 + this.words.length * 4);
    const view = new DataView(bytes.buffer);
    view.setUint32(0, objectId, true);
    view.setUint32(4, ((bytes.length << 16) | opcode) >>> 0, true);
    this.words.forEach((word, i) => view.setUint32(8 + i * 4, word, true));
    return bytes;
  }
}

function decodeBody(bytes: Uint8Array, fds: number[] = []): ReturnType<typeof decodeArgs> {
  const queue = new FdQueue();
  queue.push(fds);
  return decodeArgs(all, bytes, new DataView(bytes.buffer, bytes.byteOffset), 8, bytes.length, queue);
}

const sample: WireArg[] = [
  -5,
  0xfffffffe,
  -1.5,
  "héllo",
  null,
  42,
  0,
  43,
  new Uint8Array([1, 2, 3, 4, 5]),
  7,
  { interface: "wl_seat", version: 7, id: 44 },
];

function sampleBytes(): Uint8Array {
  return new Builder()
    .u32(-5)
    .u32(0xfffffffe)
    .u32(-384)
    .text("héllo")
    .u32(0)
    .u32(42)
    .u32(0)
    .u32(43)
    .u32(5)
    .raw([1, 2, 3, 4, 5])
    .text("wl_seat")
    .u32(7)
    .u32(44)
    .message(9, 0);
}

describe("codec", () => {
  it("encodes every argument type to the bytes libwayland puts on the wire", () => {
    const out = new MessageWriter(64);
    const fds: number[] = [];
    const size = encodeMessage(out, 9, all, sample, fds);
    expect(Buffer.from(out.bytes.subarray(0, out.length))).toEqual(Buffer.from(sampleBytes()));
    expect(size).toBe(out.length);
    expect(fds).toEqual([7]);
  });

  it("decodes every argument type from hand-built bytes, taking the fd from the queue", () => {
    expect(decodeBody(sampleBytes(), [7])).toEqual(sample);
  });

  it("encodes wl_fixed by rounding to 1/256 and decodes it back", () => {
    const fixed = compileInterface({
      name: "t",
      version: 1,
      requests: [{ name: "f", since: 1, args: [{ name: "v", type: "fixed" }] }],
      events: [],
      enums: {},
    }).requests[0]!;
    const out = new MessageWriter();
    encodeMessage(out, 1, fixed, [10.1], []);
    expect(new DataView(out.bytes.buffer).getInt32(8, true)).toBe(Math.round(10.1 * 256));
    const decoded = decodeArgs(fixed, out.bytes, out.view, 8, out.length, new FdQueue());
    expect(decoded).toEqual([Math.round(10.1 * 256) / 256]);
  });

  it.each([
    ["a string length of 2^32-1", 0xffffffff],
    ["a string length of 2^31", 0x80000000],
    ["a string length one past the message", 20],
  ])("refuses %s without reading past the message", (_name, length) => {
    const bytes = new Builder().u32(1).u32(2).u32(3).u32(length).u32(0x41414141).message(9, 0);
    expect(decodeBody(bytes)).toEqual({ error: "all: string argument 3 longer than the message" });
  });

  it("refuses an array length of 2^32-1", () => {
    const bytes = new Builder()
      .u32(1)
      .u32(2)
      .u32(3)
      .text("s")
      .u32(0)
      .u32(42)
      .u32(0)
      .u32(43)
      .u32(0xffffffff)
      .message(9, 0);
    expect(decodeBody(bytes)).toEqual({ error: "all: array argument 8 longer than the message" });
  });

  it("refuses a string without its NUL terminator", () => {
    const bytes = new Builder().u32(1).u32(2).u32(3).u32(4).raw([0x61, 0x62, 0x63, 0x64]).message(9, 0);
    expect(decodeBody(bytes)).toEqual({ error: "all: string argument 3 is not NUL-terminated" });
  });

  it("refuses null where the XML does not allow it: string, object, new_id", () => {
    const nullString = new Builder().u32(1).u32(2).u32(3).u32(0).message(9, 0);
    expect(decodeBody(nullString)).toEqual({ error: "all: argument 3 is a null string where none is allowed" });
    const nullObject = new Builder().u32(1).u32(2).u32(3).text("s").u32(0).u32(0).message(9, 0);
    expect(decodeBody(nullObject)).toEqual({ error: "all: argument 5 is a null object where none is allowed" });
    const nullNewId = new Builder().u32(1).u32(2).u32(3).text("s").u32(0).u32(5).u32(0).u32(0).message(9, 0);
    expect(decodeBody(nullNewId)).toEqual({ error: "all: argument 7 is a null object where none is allowed" });
  });

  it("refuses a message that ends early, one with trailing bytes, and one whose fd never came", () => {
    const short = new Builder().u32(1).u32(2).message(9, 0);
    expect(decodeBody(short)).toEqual({ error: "all: argument 2 past the end of the message" });
    const full = sampleBytes();
    const trailing = new Uint8Array(full.length + 4);
    trailing.set(full);
    new DataView(trailing.buffer).setUint32(4, ((trailing.length << 16) | 0) >>> 0, true);
    expect(decodeBody(trailing, [7])).toEqual({ error: "all: 4 bytes after the last argument" });
    expect(decodeBody(full, [])).toEqual({ error: "all: fd argument 9 missing" });
  });

  it("closes the fds a failed message had taken", () => {
    const fd = memfdCreate("taken", 4096);
    const full = sampleBytes();
    const cut = full.slice(0, full.length - 4);
    expect("error" in (decodeBody(cut, [fd]) as object)).toBe(true);
    expect(() => fileSize(fd)).toThrow(/EBADF/);
  });

  it("refuses to encode a message over 4096 bytes and leaves the buffer as it was", () => {
    const out = new MessageWriter(16);
    const big = [...sample];
    big[3] = "x".repeat(4096);
    const fds: number[] = [];
    expect(() => encodeMessage(out, 9, all, big, fds)).toThrow(RangeError);
    expect(out.length).toBe(0);
    expect(fds).toEqual([]);
  });

  it.each([
    ["an int above 2^31-1", 0, 2 ** 31],
    ["a uint of -1", 1, -1],
    ["a uint of 2^32", 1, 2 ** 32],
    ["a non-integer int", 0, 1.5],
  ])("throws on %s when encoding", (_name, index, value) => {
    const args = [...sample];
    args[index] = value;
    expect(() => encodeMessage(new MessageWriter(), 9, all, args, [])).toThrow(RangeError);
  });

  it("never throws on random bytes, whatever the fds", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), fc.nat(3), (body, fdCount) => {
        const bytes = new Uint8Array(8 + (body.length & ~3));
        bytes.set(body.subarray(0, bytes.length - 8), 8);
        const fds = Array.from({ length: fdCount }, () => memfdCreate("random", 0));
        const queue = new FdQueue();
        queue.push(fds);
        const result = decodeArgs(all, bytes, new DataView(bytes.buffer), 8, bytes.length, queue);
        if (Array.isArray(result)) close(result[9] as number);
        queue.destroy();
      }),
      { numRuns: 500 },
    );
  });

  it("decodes what it encodes for random argument values", () => {
    const values = fc.tuple(
      fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }),
      fc.integer({ min: 0, max: 2 ** 32 - 1 }),
      fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }).map((raw) => raw / 256),
      fc.string({ maxLength: 100 }).filter((text) => !text.includes("\0")),
      fc.option(fc.string({ maxLength: 50 }).filter((text) => !text.includes("\0"))),
      fc.integer({ min: 1, max: 2 ** 32 - 1 }),
      fc.option(fc.integer({ min: 1, max: 2 ** 32 - 1 })),
      fc.integer({ min: 1, max: 2 ** 32 - 1 }),
      fc.uint8Array({ maxLength: 300 }),
      fc.string({ minLength: 1, maxLength: 30 }).filter((text) => !text.includes("\0")),
    );
    fc.assert(
      fc.property(values, ([i, u, f, s, ns, o, no, n, a, name]) => {
        const args: WireArg[] = [i, u, f, s, ns, o, no ?? 0, n, a, 3, { interface: name, version: 2, id: 5 }];
        const out = new MessageWriter(16);
        const fds: number[] = [];
        encodeMessage(out, 9, all, args, fds);
        const queue = new FdQueue();
        queue.push(fds);
        const decoded = decodeArgs(all, out.bytes, out.view, 8, out.length, queue);
        const expected = [...args];
        expected[3] = Buffer.from(Buffer.from(s, "utf8")).toString("utf8");
        expected[4] = ns === null ? null : Buffer.from(ns, "utf8").toString("utf8");
        expected[9] = 3;
        expected[10] = { interface: Buffer.from(name, "utf8").toString("utf8"), version: 2, id: 5 };
        expect(decoded).toEqual(expected);
      }),
      { numRuns: 300 },
    );
  });
});
