import { describe, expect, it } from "vitest";

import {
  MAX_DECODER_BUFFER,
  MESSAGE_NAMES,
  MESSAGE_SCHEMAS,
  QUBES_MAX_MSG_WINDOW_DUMP_LEN,
  maySend,
  StreamDecoder,
  encodeMessage,
  protocolVersion,
  type DecodeResult,
  type Decoded,
  type Side,
} from "../../protocol/index.ts";
import { bytes, concat } from "./bytes.ts";
import { fixtures } from "./fixtures.ts";

function decodeChunks(from: Side, chunks: Uint8Array[], version?: number, handshake = false): DecodeResult[] {
  const decoder = new StreamDecoder({ from, version, handshake });
  const out: DecodeResult[] = [];
  for (const chunk of chunks) out.push(...decoder.push(chunk));
  return out;
}

function values(results: DecodeResult[]): Decoded[] {
  return results.map((result) => {
    if (!result.ok) throw new Error(`unexpected ${result.error.code}: ${result.error.message}`);
    return result.value;
  });
}

describe("fixtures", () => {
  it("cover all 26 message types", () => {
    const covered = new Set(fixtures.map((fixture) => fixture.message.type));
    for (const name of MESSAGE_NAMES) expect(covered.has(name), name).toBe(true);
    expect(MESSAGE_NAMES).toHaveLength(26);
  });

  it("the reference's CREATE example is 36 bytes", () => {
    expect(fixtures[0]?.bytes.length).toBe(36);
  });

  for (const [index, fixture] of fixtures.entries()) {
    // The next fixture of the same side and version, wrapping around (possibly the fixture itself).
    const sameStream = (other: (typeof fixtures)[number]) =>
      other.from === fixture.from && other.version === fixture.version;
    const next = fixtures.slice(index + 1).find(sameStream) ?? fixtures.find(sameStream);
    describe(fixture.name, () => {
      it("decodes to its fields", () => {
        expect(values(decodeChunks(fixture.from, [fixture.bytes], fixture.version))).toEqual([fixture.message]);
      });

      it("decodes split at every byte offset", () => {
        for (let cut = 0; cut <= fixture.bytes.length; cut++) {
          const chunks = [fixture.bytes.subarray(0, cut), fixture.bytes.subarray(cut)];
          expect(values(decodeChunks(fixture.from, chunks, fixture.version)), `cut at ${cut}`).toEqual([
            fixture.message,
          ]);
        }
      });

      it("decodes fed one byte at a time", () => {
        const chunks = Array.from(fixture.bytes, (_, i) => fixture.bytes.subarray(i, i + 1));
        expect(values(decodeChunks(fixture.from, chunks, fixture.version))).toEqual([fixture.message]);
      });

      if (next !== undefined) {
        it(`decodes glued to the next message (${next.name}) split at every byte offset`, () => {
          const stream = concat(fixture.bytes, next.bytes);
          for (let cut = 0; cut <= stream.length; cut++) {
            const results = decodeChunks(
              fixture.from,
              [stream.subarray(0, cut), stream.subarray(cut)],
              fixture.version,
            );
            expect(values(results), `cut at ${cut}`).toEqual([fixture.message, next.message]);
            expect(results.map((result) => result.offset)).toEqual([0, fixture.bytes.length]);
          }
        });
      }

      it("is what the encoder writes", () => {
        const message = fixture.message;
        if (message.type === "VERSION" || message.type === "XCONF") return;
        const encoded = encodeMessage(message, {
          from: fixture.from,
          version: fixture.version,
          allowObsolete: true,
        });
        expect(Buffer.from(encoded).toString("hex")).toBe(Buffer.from(fixture.bytes).toString("hex"));
      });
    });
  }
});

describe("framing rules", () => {
  const create = (length: number) => bytes().header(130, 1, length).zeros(Math.max(0, length)).build();

  for (const length of [0, 23, 25, 0xffffffff]) {
    it(`rejects a CREATE whose length is ${length} at 1.8 and ends the session`, () => {
      const header = bytes().header(130, 1, length).build();
      const results = decodeChunks("agent", [header]);
      expect(results).toHaveLength(1);
      const [result] = results;
      expect(result?.ok).toBe(false);
      if (result?.ok === false) {
        expect(result.error.code).toBe("BAD_LENGTH");
        expect(result.error.reaction).toBe("end-session");
      }
    });
  }

  for (const side of ["agent", "daemon"] as const) {
    for (const name of MESSAGE_NAMES) {
      const schema = MESSAGE_SCHEMAS[name];
      if (schema.tail !== null || !schema.from.includes(side)) continue;
      const hostile = [schema.fixedSize + 1, schema.fixedSize - 1, 0x80000000, 0xffffffff, 0].filter(
        (length) => length >= 0 && length !== schema.fixedSize,
      );
      it(`ends the session on ${name} from the ${side} with untrusted_len ${hostile.join(", ")} at 1.6+`, () => {
        for (const length of hostile) {
          for (const version of [protocolVersion(1, 6), protocolVersion(1, 8)].filter((v) => maySend(side, name, v))) {
            const [result] = decodeChunks(side, [bytes().header(schema.code, 1, length).build()], version);
            expect(result?.ok === false && result.error.code, `length ${length}`).toBe("BAD_LENGTH");
          }
        }
      });
    }
  }

  it("reads a CREATE whose length is 23 as 24 bytes below 1.6, with a notice", () => {
    const stream = create(24);
    stream[8] = 23;
    const results = decodeChunks("agent", [stream], protocolVersion(1, 5));
    expect(results).toHaveLength(1);
    const [result] = results;
    expect(result?.ok).toBe(true);
    if (result?.ok === true) {
      expect(result.value.type).toBe("CREATE");
      expect(result.warning?.code).toBe("BAD_LENGTH");
      expect(result.warning?.reaction).toBe("clamp");
    }
  });

  it("stops after a fatal error and yields nothing more", () => {
    const decoder = new StreamDecoder({ from: "agent" });
    expect(decoder.push(bytes().header(130, 1, 23).build())).toHaveLength(1);
    expect(decoder.failed?.code).toBe("BAD_LENGTH");
    expect(decoder.push(fixtures[0]?.bytes ?? new Uint8Array())).toEqual([]);
  });

  for (const type of [0, 123, 150, 0x7fffffff, 0x80000000, 0xffffffff]) {
    it(`ends the session on unknown type ${type} from the agent`, () => {
      const [result] = decodeChunks("agent", [bytes().header(type, 1, 0).build()]);
      expect(result?.ok === false && result.error.code).toBe("UNKNOWN_TYPE");
      expect(result?.ok === false && result.error.reaction).toBe("end-session");
    });
  }

  it("skips an unknown type from the daemon by its length and goes on", () => {
    const stream = concat(bytes().header(200, 1, 5).zeros(5).build(), fixtures[1]?.bytes ?? new Uint8Array());
    for (let cut = 0; cut <= stream.length; cut++) {
      const results = decodeChunks("daemon", [stream.subarray(0, cut), stream.subarray(cut)]);
      expect(results).toHaveLength(2);
      expect(results[0]?.ok === false && results[0].error.reaction).toBe("drop");
      expect(results[1]?.ok && results[1].value.type).toBe("KEYPRESS");
    }
  });

  it("skips a 4 GiB unknown message from the daemon without buffering it", () => {
    const decoder = new StreamDecoder({ from: "daemon" });
    decoder.push(bytes().header(200, 1, 0xffffffff).build());
    decoder.push(new Uint8Array(65536));
    expect(decoder.bufferedBytes).toBe(0);
  });

  it("ends the session on KEYPRESS sent by the agent", () => {
    const [result] = decodeChunks("agent", [fixtures[1]?.bytes ?? new Uint8Array()]);
    expect(result?.ok === false && result.error.code).toBe("UNKNOWN_TYPE");
  });

  it("names EXECUTE as obsolete when the agent sends it", () => {
    const [result] = decodeChunks("agent", [bytes().header(138, 0, 255).zeros(255).build()]);
    expect(result?.ok === false && result.error.message).toMatch(/MSG_EXECUTE \(138\) is obsolete/);
  });

  it("skips WINDOW_DUMP_ACK from a daemon at 1.6", () => {
    const [result] = decodeChunks("daemon", [bytes().header(149, 1, 0).build()], protocolVersion(1, 6));
    expect(result?.ok === false && result.error.code).toBe("NOT_IN_VERSION");
  });

  it("skips a DESTROY acknowledgement from a daemon at 1.4", () => {
    const [result] = decodeChunks("daemon", [bytes().header(131, 1, 0).build()], protocolVersion(1, 4));
    expect(result?.ok === false && result.error.code).toBe("NOT_IN_VERSION");
  });

  for (const [length, code] of [
    [0, "DUMP_TOO_SHORT"],
    [12, "DUMP_TOO_SHORT"],
    [15, "DUMP_TOO_SHORT"],
    [17, "DUMP_BAD_LENGTH"],
    [QUBES_MAX_MSG_WINDOW_DUMP_LEN - 12 + 4, "DUMP_TOO_BIG"],
    [0x80000000, "DUMP_TOO_BIG"],
    [0xffffffff, "DUMP_TOO_BIG"],
  ] as const) {
    it(`ends the session on a WINDOW_DUMP whose length is ${length}`, () => {
      const [result] = decodeChunks("agent", [bytes().header(147, 1, length).build()]);
      expect(result?.ok === false && result.error.code).toBe(code);
      expect(result?.ok === false && result.error.reaction).toBe("end-session");
    });
  }

  it("decodes the largest WINDOW_DUMP (393 244 bytes) and buffers no more than it", () => {
    const refs = 98304;
    const builder = bytes()
      .header(147, 1, 16 + refs * 4)
      .u32(0)
      .u32(16384)
      .u32(6144)
      .u32(32);
    for (let i = 0; i < refs; i++) builder.u32(i);
    const stream = builder.build();
    expect(stream.length).toBe(393244);
    const decoder = new StreamDecoder({ from: "agent" });
    let peak = 0;
    const results: DecodeResult[] = [];
    for (let at = 0; at < stream.length; at += 1000) {
      results.push(...decoder.push(stream.subarray(at, at + 1000)));
      peak = Math.max(peak, decoder.bufferedBytes);
    }
    expect(peak).toBeLessThanOrEqual(MAX_DECODER_BUFFER);
    expect(results).toHaveLength(1);
    expect(results[0]?.ok && results[0].value.type === "WINDOW_DUMP" && results[0].value.grant_refs.length).toBe(refs);
  });

  for (const length of [27, 29, 0xffffffff]) {
    it(`ends the session on an MFNDUMP whose length is ${length}`, () => {
      const [result] = decodeChunks("agent", [bytes().header(135, 1, length).build()]);
      expect(result?.ok).toBe(false);
    });
  }

  it("accepts CLIPBOARD_DATA of 256 001 bytes at 1.8 (limit + 1 means too big)", () => {
    const [result] = decodeChunks("agent", [bytes().header(140, 1, 256001).zeros(256001).build()]);
    expect(result?.ok && result.value.type === "CLIPBOARD_DATA" && result.value.data.length).toBe(256001);
  });

  for (const [version, length] of [
    [protocolVersion(1, 8), 256002],
    [protocolVersion(1, 8), 0xffffffff],
    [protocolVersion(1, 7), 65001],
    [protocolVersion(1, 7), 0x80000000],
  ] as const) {
    it(`ends the session on CLIPBOARD_DATA of ${length} bytes at 1.${version & 0xffff}`, () => {
      const [result] = decodeChunks("agent", [bytes().header(140, 1, length).build()], version);
      expect(result?.ok === false && result.error.code).toBe("CLIPBOARD_TOO_BIG");
    });
  }

  it("takes the CLIPBOARD_DATA length from the window field before 1.2", () => {
    const hostile = bytes().header(140, 0xffffffff, 0).build();
    const [result] = decodeChunks("agent", [hostile], protocolVersion(1, 1));
    expect(result?.ok === false && result.error.code).toBe("CLIPBOARD_TOO_BIG");
  });
});

describe("handshake", () => {
  it("negotiates 1.8 from an agent's version word and then decodes messages", () => {
    const stream = concat(Uint8Array.of(8, 0, 1, 0), fixtures[0]?.bytes ?? new Uint8Array());
    for (let cut = 0; cut <= stream.length; cut++) {
      const decoder = new StreamDecoder({ from: "agent", handshake: true });
      const results = [...decoder.push(stream.subarray(0, cut)), ...decoder.push(stream.subarray(cut))];
      expect(values(results)).toEqual([{ type: "VERSION", version: 0x00010008 }, fixtures[0]?.message]);
      expect(decoder.version).toBe(0x00010008);
    }
  });

  it("negotiates down to 1.3 with a 1.3 agent", () => {
    const decoder = new StreamDecoder({ from: "agent", handshake: true });
    decoder.push(Uint8Array.of(3, 0, 1, 0));
    expect(decoder.version).toBe(0x00010003);
  });

  it("negotiates a 1.9 agent down to 1.8", () => {
    const decoder = new StreamDecoder({ from: "agent", handshake: true });
    decoder.push(Uint8Array.of(9, 0, 1, 0));
    expect(decoder.version).toBe(0x00010008);
  });

  for (const [word, code] of [
    [0x00000008, "AGENT_OUTDATED"],
    [0x00020000, "DAEMON_TOO_OLD"],
    [0xffffffff, "DAEMON_TOO_OLD"],
  ] as const) {
    it(`refuses agent version 0x${word.toString(16)} with ${code}`, () => {
      const decoder = new StreamDecoder({ from: "agent", handshake: true });
      const results = decoder.push(bytes().u32(word).build());
      expect(results[1]?.ok === false && results[1].error.code).toBe(code);
    });
  }

  it("reads the daemon's version word and xconf, then messages", () => {
    const stream = concat(
      bytes().u32(0x00010008).u32(1280).u32(800).u32(24).u32(4001).build(),
      fixtures[1]?.bytes ?? new Uint8Array(),
    );
    for (let cut = 0; cut <= stream.length; cut++) {
      const results = decodeChunks("daemon", [stream.subarray(0, cut), stream.subarray(cut)], undefined, true);
      expect(values(results)).toEqual([
        { type: "VERSION", version: 0x00010008 },
        { type: "XCONF", w: 1280, h: 800, depth: 24, mem: 4001 },
        fixtures[1]?.message,
      ]);
    }
  });

  it("expects only xconf from a daemon when the agent is 1.3", () => {
    const stream = bytes().u32(1280).u32(800).u32(24).u32(4001).build();
    const results = decodeChunks("daemon", [stream], protocolVersion(1, 3), true);
    expect(values(results)).toEqual([{ type: "XCONF", w: 1280, h: 800, depth: 24, mem: 4001 }]);
  });

  for (const word of [0x00010003, 0x00010009, 0x00020004, 0]) {
    it(`the agent refuses a daemon answer of 0x${word.toString(16)}`, () => {
      const results = decodeChunks("daemon", [bytes().u32(word).build()], undefined, true);
      expect(results[1]?.ok === false && results[1].error.code).toBe("VERSION_MISMATCH");
    });
  }
});

describe("handshake order", () => {
  it("the negotiated version is in force while the VERSION item is handled", () => {
    const decoder = new StreamDecoder({ from: "agent", handshake: true });
    const seen: number[] = [];
    decoder.decode(Uint8Array.of(5, 0, 1, 0), {
      message: () => seen.push(decoder.version),
      error: () => undefined,
    });
    expect(seen).toEqual([0x00010005]);
  });
});
