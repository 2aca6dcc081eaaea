import fc from "fast-check";
import { describe, expect, it } from "vitest";

import {
  MAX_DECODER_BUFFER,
  MESSAGE_NAMES,
  MESSAGE_SCHEMAS,
  SessionValidator,
  StreamDecoder,
  encodeMessage,
  maySend,
  type DecodeResult,
  type Side,
} from "../../protocol/index.ts";
import { concat } from "./bytes.ts";
import { VERSIONS, conversation, messageOf } from "./arbitraries.ts";

function encodeAll(side: Side, version: number, messages: Parameters<typeof encodeMessage>[0][]): Uint8Array {
  return concat(...messages.map((m) => encodeMessage(m, { from: side, version, allowObsolete: true })));
}

/** Feeds `stream` cut at `cuts` and checks the memory bound after every chunk. */
function feedChecked(decoder: StreamDecoder, stream: Uint8Array, cuts: number[]): DecodeResult[] {
  const out: DecodeResult[] = [];
  const points = [...new Set(cuts.map((cut) => cut % (stream.length + 1)))].sort((a, b) => a - b);
  let at = 0;
  for (const point of [...points, stream.length]) {
    out.push(...decoder.push(stream.subarray(at, point)));
    at = point;
    expect(decoder.bufferedBytes).toBeLessThanOrEqual(MAX_DECODER_BUFFER);
  }
  return out;
}

describe("decode(encode(m)) = m", () => {
  for (const side of ["agent", "daemon"] as const) {
    for (const name of MESSAGE_NAMES) {
      const versions = VERSIONS.filter((version) => maySend(side, name, version));
      if (versions.length === 0) continue;
      it(`holds for ${name} from the ${side} at every version it exists in`, () => {
        fc.assert(
          fc.property(
            fc.constantFrom(...versions).chain((version) => fc.tuple(fc.constant(version), messageOf(name, version))),
            ([version, message]) => {
              const bytes = encodeMessage(message, { from: side, version, allowObsolete: true });
              const results = new StreamDecoder({ from: side, version }).push(bytes);
              expect(results).toEqual([{ ok: true, value: message, offset: 0 }]);
            },
          ),
          { numRuns: 60 },
        );
      });
    }
  }

  it("holds for streams of messages cut anywhere", () => {
    fc.assert(
      fc.property(conversation, fc.array(fc.nat(), { maxLength: 8 }), ({ side, version, messages }, cuts) => {
        const stream = encodeAll(side, version, messages);
        const results = feedChecked(new StreamDecoder({ from: side, version }), stream, cuts);
        expect(results.map((result) => (result.ok ? result.value : result.error.code))).toEqual(messages);
      }),
      { numRuns: 300 },
    );
  });
});

describe("hostile streams", () => {
  const sides = fc.constantFrom<Side>("agent", "daemon");

  it("random bytes never throw and never exceed the memory bound", () => {
    fc.assert(
      fc.property(
        sides,
        fc.constantFrom(...VERSIONS),
        fc.boolean(),
        fc.uint8Array({ maxLength: 2000 }),
        fc.array(fc.nat(), { maxLength: 10 }),
        (side, version, handshake, stream, cuts) => {
          const decoder = new StreamDecoder({ from: side, version, handshake });
          const validator = new SessionValidator({ screen: { width: 1920, height: 1080 }, version });
          for (const result of feedChecked(decoder, stream, cuts)) {
            if (result.ok && result.value.type !== "VERSION" && result.value.type !== "XCONF" && side === "agent") {
              validator.validate(result.value);
            }
          }
        },
      ),
      { numRuns: 500 },
    );
  });

  it("random headers followed by random bytes never throw and never exceed the memory bound", () => {
    const header = fc.tuple(
      fc.oneof(fc.integer({ min: 120, max: 152 }), fc.integer({ min: 0, max: 0xffffffff })),
      fc.integer({ min: 0, max: 0xffffffff }),
      fc.oneof(fc.integer({ min: 0, max: 300 }), fc.integer({ min: 0, max: 0xffffffff })),
    );
    fc.assert(
      fc.property(
        sides,
        fc.array(fc.tuple(header, fc.uint8Array({ maxLength: 64 })), { maxLength: 10 }),
        (side, parts) => {
          const stream = concat(
            ...parts.map(([[type, window, length], body]) => {
              const head = new Uint8Array(12);
              const view = new DataView(head.buffer);
              view.setUint32(0, type, true);
              view.setUint32(4, window, true);
              view.setUint32(8, length, true);
              return concat(head, body);
            }),
          );
          feedChecked(new StreamDecoder({ from: side }), stream, [1, 5, 13, 40]);
        },
      ),
      { numRuns: 500 },
    );
  });

  it("mutated valid streams never throw, never exceed the memory bound, and the validator never throws", () => {
    fc.assert(
      fc.property(
        conversation,
        fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 6 }),
        fc.array(fc.nat(), { maxLength: 6 }),
        ({ side, version, messages }, mutations, cuts) => {
          const stream = encodeAll(side, version, messages);
          if (stream.length === 0) return;
          for (const [at, value] of mutations) stream[at % stream.length] = value;
          const validator = new SessionValidator({ screen: { width: 1280, height: 800 }, version });
          for (const result of feedChecked(new StreamDecoder({ from: side, version }), stream, cuts)) {
            if (result.ok && side === "agent" && result.value.type !== "VERSION" && result.value.type !== "XCONF") {
              const verdict = validator.validate(result.value);
              expect(typeof verdict.ok).toBe("boolean");
            }
          }
        },
      ),
      { numRuns: 500 },
    );
  });

  it("every schema's fixed size matches the reference's table", () => {
    const sizes = Object.fromEntries(MESSAGE_NAMES.map((name) => [name, MESSAGE_SCHEMAS[name].fixedSize]));
    expect(sizes).toEqual({
      KEYPRESS: 20,
      BUTTON: 20,
      MOTION: 16,
      CROSSING: 28,
      FOCUS: 12,
      RESIZE: 8,
      CREATE: 24,
      DESTROY: 0,
      MAP: 8,
      UNMAP: 0,
      CONFIGURE: 20,
      MFNDUMP: 28,
      SHMIMAGE: 16,
      CLOSE: 0,
      EXECUTE: 255,
      CLIPBOARD_REQ: 0,
      CLIPBOARD_DATA: 0,
      WMNAME: 128,
      KEYMAP_NOTIFY: 32,
      DOCK: 0,
      WINDOW_HINTS: 36,
      WINDOW_FLAGS: 8,
      WMCLASS: 128,
      WINDOW_DUMP: 16,
      CURSOR: 4,
      WINDOW_DUMP_ACK: 0,
    });
  });
});
