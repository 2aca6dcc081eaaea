/**
 * Fuzzes protocol/'s stream decoder and session validator with random and
 * mutated messages: `node --import tsx scripts/fuzz-protocol.ts [count] [seed]`
 * (default 1,000,000 messages). Every message is either a valid encoding of a
 * random message of any type, side and version, then mutated (bytes flipped,
 * hostile lengths or types, truncation), or plain random bytes. Streams are
 * cut at random points. The run fails on any exception, on a decoder holding
 * more than one maximal message, or on heap growth past a bound; it prints
 * what it saw. The tests run a short version of {@link runFuzz}.
 */
import path from "node:path";
import { fileURLToPath } from "node:url";

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
} from "../protocol/index.ts";

/** What a fuzz run saw. */
export interface FuzzReport {
  /** Messages whose bytes reached a decoder (a session's fatal error discards the rest of its batch). */
  messages: number;
  /** Messages generated, fed or not. */
  generated: number;
  bytes: number;
  decoded: number;
  dropped: number;
  fatal: number;
  validated: number;
  rejectedByValidator: number;
  exceptions: number;
  firstException: string | null;
  maxBufferedBytes: number;
  maxFeedMs: number;
  peakHeapMB: number;
  seconds: number;
}

/** A small deterministic PRNG (xorshift32), so a failing seed can be replayed. */
class Random {
  private state: number;
  constructor(seed: number) {
    this.state = seed >>> 0 || 0x9e3779b9;
  }
  u32(): number {
    let x = this.state;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    this.state = x >>> 0;
    return this.state;
  }
  below(n: number): number {
    return this.u32() % n;
  }
  pick<T>(items: readonly T[]): T {
    return items[this.below(items.length)] as T;
  }
  bytes(n: number): Uint8Array {
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i++) out[i] = this.u32() & 0xff;
    return out;
  }
}

const HOSTILE_U32 = [0, 1, 0xffffffff, 0x80000000, 0x7fffffff, 16384, 16385, 6144, 6145, 0x100, 0x19a, 256000, 256001];
const VERSIONS = Array.from({ length: 9 }, (_, minor) => protocolVersion(1, minor));

function randomValue(random: Random, signed: boolean): number {
  const roll = random.below(4);
  const value = roll === 0 ? random.pick(HOSTILE_U32) : roll === 1 ? random.below(2048) : random.u32();
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

function mutate(random: Random, bytes: Uint8Array): Uint8Array {
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

/** Runs `count` fuzz messages from `seed` and reports; never throws (exceptions are counted). */
export function runFuzz(count: number, seed = 1): FuzzReport {
  const random = new Random(seed);
  const report: FuzzReport = {
    messages: 0,
    generated: 0,
    bytes: 0,
    decoded: 0,
    dropped: 0,
    fatal: 0,
    validated: 0,
    rejectedByValidator: 0,
    exceptions: 0,
    firstException: null,
    maxBufferedBytes: 0,
    maxFeedMs: 0,
    peakHeapMB: 0,
    seconds: 0,
  };
  const started = performance.now();
  let session = newSession(random);
  const handler: DecodeHandler = {
    message: (value) => {
      report.decoded++;
      if (session.side !== "agent" || value.type === "VERSION" || value.type === "XCONF") return;
      report.validated++;
      if (random.below(8) === 0) session.validator.noteClipboardRequested();
      if (!session.validator.validate(value).ok) report.rejectedByValidator++;
    },
    error: (error) => {
      if (error.reaction === "end-session") report.fatal++;
      else report.dropped++;
    },
  };
  while (report.messages < count) {
    // One batch is one connection: a new session, its handshake when it has one, then messages.
    session = newSession(random);
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
    for (let i = 0; i < batch; i++, report.generated++) {
      try {
        const encoded = encodeMessage(randomMessage(random, session.side, session.version), {
          from: session.side,
          version: session.version,
          allowObsolete: true,
          anyDirection: true,
        });
        parts.push(mutate(random, encoded));
      } catch (error) {
        report.exceptions++;
        report.firstException ??= `encoding: ${(error as Error).stack ?? String(error)}`;
      }
    }
    const stream = new Uint8Array(parts.reduce((sum, part) => sum + part.length, 0));
    let at = 0;
    for (const part of parts) {
      stream.set(part, at);
      at += part.length;
    }
    const starts: number[] = [];
    let start = 0;
    for (const part of parts) {
      starts.push(start);
      start += part.length;
    }
    let offset = 0;
    while (offset < stream.length) {
      const size = random.below(3) === 0 ? 1 + random.below(16) : 1 + random.below(8192);
      const chunk = stream.subarray(offset, offset + size);
      offset += chunk.length;
      const before = performance.now();
      try {
        session.decoder.decode(chunk, handler);
      } catch (error) {
        report.exceptions++;
        report.firstException ??= (error as Error).stack ?? String(error);
      }
      report.maxFeedMs = Math.max(report.maxFeedMs, performance.now() - before);
      report.maxBufferedBytes = Math.max(report.maxBufferedBytes, session.decoder.bufferedBytes);
      if (session.decoder.failed !== null) break;
    }
    const fedBytes = Math.min(offset, stream.length);
    report.bytes += fedBytes;
    report.messages += starts.slice(handshakeParts).filter((partStart) => partStart < fedBytes).length;
    if (report.generated % 65536 < batch) {
      report.peakHeapMB = Math.max(report.peakHeapMB, process.memoryUsage().heapUsed / 2 ** 20);
    }
  }
  report.peakHeapMB = Math.max(report.peakHeapMB, process.memoryUsage().heapUsed / 2 ** 20);
  report.seconds = (performance.now() - started) / 1000;
  return report;
}

/** Whether a report shows a failure: an exception or the decoder's memory bound exceeded. */
export function fuzzFailed(report: FuzzReport): boolean {
  return report.exceptions > 0 || report.maxBufferedBytes > MAX_DECODER_BUFFER;
}

if (process.argv[1] !== undefined && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const count = Number(process.argv[2] ?? 1_000_000);
  const seed = Number(process.argv[3] ?? 1);
  if (!Number.isInteger(count) || count <= 0 || !Number.isInteger(seed)) {
    process.stderr.write("usage: node --import tsx scripts/fuzz-protocol.ts [count] [seed]\n");
    process.exit(2);
  }
  const report = runFuzz(count, seed);
  process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
  const ok = !fuzzFailed(report) && report.peakHeapMB < 512;
  process.stdout.write(
    ok
      ? `ok: ${report.messages} messages, ${(report.bytes / 1e6).toFixed(1)} MB in ${report.seconds.toFixed(1)} s, ` +
          `no exception, decoder buffer ≤ ${report.maxBufferedBytes} B (bound ${MAX_DECODER_BUFFER}), ` +
          `longest feed ${report.maxFeedMs.toFixed(1)} ms, peak heap ${report.peakHeapMB.toFixed(0)} MiB\n`
      : "FAILED\n",
  );
  process.exit(ok ? 0 : 1);
}
