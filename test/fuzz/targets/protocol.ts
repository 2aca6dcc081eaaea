/**
 * Fuzz target `protocol`: protocol/'s stream decoder and session validator
 * alone, in this process, with random and mutated messages of any type,
 * side and version. Every message is either a valid encoding of a random
 * message, then mostly left valid (so that sessions live long enough to
 * reach the validator's state rules) or mutated (bytes flipped, hostile
 * lengths or types, truncation), or plain random bytes. Streams are cut at
 * random points; a batch is one connection. Reactions: `decoded`,
 * `clamp`/`drop`/`end-session` by the decoder, `rejected` by the validator.
 * A decoder holding more than one maximal message counts as unexpected.
 */
import {
  MAX_DECODER_BUFFER,
  MESSAGE_NAMES,
  MESSAGE_SCHEMAS,
  SessionValidator,
  StreamDecoder,
  encodeMessage,
  protocolVersion,
  type DecodeHandler,
  type Message,
  type MessageName,
  type Side,
} from "../../../protocol/index.ts";
import { Random, newStats, react, unexpected, type FuzzInstance, type FuzzTarget } from "../harness.ts";

const HOSTILE_FIELDS = [
  0, 1, 0xffffffff, 0x80000000, 0x7fffffff, 16384, 16385, 6144, 6145, 0x100, 0x19a, 256000, 256001,
];
const VERSIONS = Array.from({ length: 9 }, (_, minor) => protocolVersion(1, minor));

function randomValue(random: Random, signed: boolean): number {
  const roll = random.below(4);
  const value = roll === 0 ? random.pick(HOSTILE_FIELDS) : roll === 1 ? random.below(2048) : random.u32();
  return signed ? value | 0 : value >>> 0;
}

const SENT_BY: Record<Side, readonly MessageName[]> = {
  agent: MESSAGE_NAMES.filter((name) => MESSAGE_SCHEMAS[name].from.includes("agent")),
  daemon: MESSAGE_NAMES.filter((name) => MESSAGE_SCHEMAS[name].from.includes("daemon")),
};

function randomMessage(random: Random, side: Side, version: number): Message {
  const roll = random.below(40);
  const name = roll < 6 ? "CREATE" : roll < 38 ? random.pick(SENT_BY[side]) : random.pick(MESSAGE_NAMES);
  const schema = MESSAGE_SCHEMAS[name];
  const message: Record<string, unknown> = {
    type: name,
    window: random.below(5) === 0 ? random.u32() : random.below(4),
  };
  for (const field of schema.fields) {
    message[field.name] = field.kind === "bytes" ? random.bytes(field.size) : randomValue(random, field.kind === "i32");
  }
  if (schema.tail !== null) {
    const big = random.below(20000) === 0;
    if (schema.tail.kind === "u8") {
      message[schema.tail.name] = random.bytes(big ? 256001 : random.below(600));
    } else {
      const count = big ? 98304 : random.below(80);
      const list = new Uint32Array(count);
      for (let i = 0; i < count; i++) list[i] = random.u32();
      message[schema.tail.name] = list;
    }
  }
  if (name === "CLIPBOARD_DATA" && version < protocolVersion(1, 2)) {
    message.window = (message.data as Uint8Array).length;
  }
  return message as unknown as Message;
}

function mutateMessage(random: Random, bytes: Uint8Array): Uint8Array {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  // Most messages stay valid so that sessions live long enough to reach the validator's state rules.
  switch (random.below(12) === 0 ? 1 + random.below(5) : 0) {
    case 0:
      return bytes;
    case 1: {
      const flips = 1 + random.below(4);
      for (let i = 0; i < flips; i++) bytes[random.below(bytes.length)] = random.u32() & 0xff;
      return bytes;
    }
    case 2: {
      const length = view.getUint32(8, true);
      const lengths = [0, 0xffffffff, 0x80000000, length + 1, length - 1, length + 4, random.u32()];
      view.setUint32(8, random.pick(lengths) >>> 0, true);
      return bytes;
    }
    case 3:
      view.setUint32(0, random.below(2) === 0 ? 120 + random.below(34) : random.u32(), true);
      return bytes;
    case 4:
      return bytes.subarray(0, random.below(bytes.length));
    default:
      return random.bytes(random.below(64));
  }
}

interface Session {
  side: Side;
  version: number;
  handshake: boolean;
  decoder: StreamDecoder;
  validator: SessionValidator;
}

function newSession(random: Random): Session {
  const side: Side = random.below(2) === 0 ? "agent" : "daemon";
  const version = random.pick(VERSIONS);
  const handshake = random.below(10) === 0;
  return {
    side,
    version,
    handshake,
    decoder: new StreamDecoder({ from: side, version, handshake }),
    validator: new SessionValidator({
      screen: { width: 1920, height: 1080 },
      version,
      allowUtf8Titles: random.below(2) === 0,
      maxClipboardSize: random.pick([256, 64000, 256000]),
      overrideRedirect: random.below(4) === 0 ? "disabled" : "allow",
      allowFullscreen: random.below(2) === 0,
    }),
  };
}

/** Feeds one connection's worth of messages (a batch) and counts what happened; returns the messages fed. */
function feedBatch(random: Random, stats: ReturnType<typeof newStats>): number {
  const session = newSession(random);
  const handler: DecodeHandler = {
    message: (value) => {
      react(stats, "decoded");
      if (session.side !== "agent" || value.type === "VERSION" || value.type === "XCONF") return;
      if (random.below(8) === 0) session.validator.noteClipboardRequested();
      const checked = session.validator.validate(value);
      react(stats, checked.ok ? "validated" : "rejected");
    },
    error: (error) => react(stats, error.reaction),
  };
  const batch = 1 + random.below(64);
  const parts: Uint8Array[] = [];
  if (session.handshake) {
    const word = random.below(8) === 0 ? random.u32() : session.version;
    const handshake = new DataView(new ArrayBuffer(session.side === "agent" ? 4 : 20));
    handshake.setUint32(0, word, true);
    if (session.side === "daemon") {
      handshake.setUint32(4, 1280, true);
      handshake.setUint32(8, 800, true);
      handshake.setUint32(12, 24, true);
      handshake.setUint32(16, 4001, true);
    }
    parts.push(
      new Uint8Array(
        handshake.buffer,
        0,
        session.side === "daemon" && session.version < protocolVersion(1, 4) ? 16 : handshake.byteLength,
      ),
    );
  }
  const handshakeParts = parts.length;
  for (let i = 0; i < batch; i++) {
    try {
      const encoded = encodeMessage(randomMessage(random, session.side, session.version), {
        from: session.side,
        version: session.version,
        allowObsolete: true,
        anyDirection: true,
      });
      parts.push(mutateMessage(random, encoded));
    } catch (error) {
      unexpected(stats, error, "encoding");
    }
  }
  const starts: number[] = [];
  let length = 0;
  for (const part of parts) {
    starts.push(length);
    length += part.length;
  }
  const stream = new Uint8Array(length);
  parts.forEach((part, i) => stream.set(part, starts[i] as number));
  let offset = 0;
  while (offset < stream.length) {
    const size = random.below(3) === 0 ? 1 + random.below(16) : 1 + random.below(8192);
    const chunk = stream.subarray(offset, offset + size);
    offset += chunk.length;
    try {
      session.decoder.decode(chunk, handler);
    } catch (error) {
      unexpected(stats, error, "decode");
    }
    if (session.decoder.bufferedBytes > MAX_DECODER_BUFFER) {
      unexpected(stats, new Error(`the decoder holds ${session.decoder.bufferedBytes} bytes`), "bound");
    }
    const peak = Math.max(Number(stats.notes.maxBufferedBytes ?? 0), session.decoder.bufferedBytes);
    stats.notes.maxBufferedBytes = peak;
    if (session.decoder.failed !== null) break;
  }
  const fedBytes = Math.min(offset, stream.length);
  stats.bytes += fedBytes;
  // A session's fatal error discards the rest of its batch: only what reached the decoder counts.
  return starts.slice(handshakeParts).filter((start) => start < fedBytes).length;
}

export const target: FuzzTarget = {
  name: "protocol",
  summary: "protocol/'s stream decoder and session validator, every message type, side and version",
  unit: "messages",
  testCount: 60_000,
  expectReactions: ["decoded", "drop", "end-session", "validated", "rejected"],
  open({ seed }): Promise<FuzzInstance> {
    const random = new Random(seed);
    const stats = newStats();
    return Promise.resolve({
      stats,
      run(count: number): Promise<void> {
        const goal = stats.inputs + count;
        while (stats.inputs < goal) stats.inputs += feedBatch(random, stats);
        return Promise.resolve();
      },
      close: () => Promise.resolve(),
    });
  },
};
