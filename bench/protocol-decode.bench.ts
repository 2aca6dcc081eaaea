/**
 * Decode throughput of protocol/'s streaming decoder (table-driven, bounds
 * checked, one result object per message) on an agent → daemon SHMIMAGE
 * stream and on a mixed stream, beside a minimal hand-written DataView loop
 * that reads the same fields from the same bytes into the same objects, in
 * the same run. Target: the decoder at ≥ 0.5× the loop.
 */
import { StreamDecoder, encodeMessage, type DecodeHandler, type Message } from "../protocol/index.ts";
import { sample, stats, type BenchContext, type BenchRow } from "./lib.ts";

/** The same messages as wire bytes, with their count. */
interface Stream {
  name: string;
  bytes: Uint8Array;
  count: number;
}

function encodeStream(name: string, messages: Message[]): Stream {
  const parts = messages.map((message) => encodeMessage(message, { from: "agent" }));
  const bytes = new Uint8Array(parts.reduce((sum, part) => sum + part.length, 0));
  let at = 0;
  for (const part of parts) {
    bytes.set(part, at);
    at += part.length;
  }
  return { name, bytes, count: messages.length };
}

/** A repeating agent → daemon mix: mostly damage, some geometry, titles, flags, cursors, dumps. */
export function mixedMessages(count: number): Message[] {
  const title = new Uint8Array(128);
  title.set(new TextEncoder().encode("user@work: ~/src/qubes-gui-ts — vim"));
  const pattern: Message[] = [];
  for (let i = 0; i < 12; i++)
    pattern.push({ type: "SHMIMAGE", window: 0x400001, x: i * 16, y: i * 8, width: 64, height: 32 });
  pattern.push(
    { type: "CONFIGURE", window: 0x400001, x: 10, y: 20, width: 800, height: 600, override_redirect: 0 },
    { type: "CONFIGURE", window: 0x400002, x: -5, y: 0, width: 300, height: 200, override_redirect: 0 },
    { type: "WMNAME", window: 0x400001, data: title },
    { type: "WINDOW_FLAGS", window: 0x400001, flags_set: 2, flags_unset: 0 },
    { type: "CURSOR", window: 0x400001, cursor: 0x100 + 68 },
    { type: "MAP", window: 0x400002, transient_for: 0x400001, override_redirect: 0 },
    {
      type: "WINDOW_DUMP",
      window: 0x400001,
      dump_type: 0,
      width: 128,
      height: 128,
      bpp: 32,
      grant_refs: Uint32Array.from({ length: 16 }, (_, i) => 1000 + i),
    },
    {
      type: "WINDOW_HINTS",
      window: 0x400001,
      flags: 48,
      min_width: 100,
      min_height: 50,
      max_width: 1000,
      max_height: 800,
      width_inc: 0,
      height_inc: 0,
      base_width: 0,
      base_height: 0,
    },
  );
  return Array.from({ length: count }, (_, i) => pattern[i % pattern.length] as Message);
}

/** A stream of SHMIMAGE damage rectangles. */
export function shmimageMessages(count: number): Message[] {
  return Array.from({ length: count }, (_, i) => ({
    type: "SHMIMAGE" as const,
    window: 0x400001,
    x: i % 1024,
    y: i % 768,
    width: 64,
    height: 32,
  }));
}

/** Both decoders hand every message to this consumer, which keeps it: no object can be optimised away. */
let kept: unknown = null;
let consumed = 0;
function consume(message: unknown): void {
  kept = message;
  consumed++;
}

const handler: DecodeHandler = {
  message: (value) => consume(value),
  error: (error) => {
    throw new Error(error.toString());
  },
};

function decodeWithDecoder(bytes: Uint8Array, chunk: number): void {
  const decoder = new StreamDecoder({ from: "agent" });
  for (let at = 0; at < bytes.length; at += chunk) decoder.decode(bytes.subarray(at, at + chunk), handler);
}

/**
 * The baseline: what a minimal hand-written decoder of these messages does —
 * a DataView loop reading header and fields into a plain object per message,
 * copying char arrays and grant refs, with no framing checks.
 */
function decodeByHand(bytes: Uint8Array): void {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let at = 0;
  while (at + 12 <= bytes.length) {
    const type = view.getUint32(at, true);
    const window = view.getUint32(at + 4, true);
    const length = view.getUint32(at + 8, true);
    const b = at + 12;
    let message: unknown;
    switch (type) {
      case 136:
        message = {
          window,
          x: view.getInt32(b, true),
          y: view.getInt32(b + 4, true),
          width: view.getUint32(b + 8, true),
          height: view.getUint32(b + 12, true),
        };
        break;
      case 134:
        message = {
          window,
          x: view.getInt32(b, true),
          y: view.getInt32(b + 4, true),
          width: view.getUint32(b + 8, true),
          height: view.getUint32(b + 12, true),
          override_redirect: view.getUint32(b + 16, true),
        };
        break;
      case 141:
        message = { window, data: bytes.slice(b, b + 128) };
        break;
      case 145:
        message = { window, flags_set: view.getUint32(b, true), flags_unset: view.getUint32(b + 4, true) };
        break;
      case 148:
        message = { window, cursor: view.getUint32(b, true) };
        break;
      case 132:
        message = { window, transient_for: view.getUint32(b, true), override_redirect: view.getUint32(b + 4, true) };
        break;
      case 147: {
        const refs = new Uint32Array((length - 16) >>> 2);
        for (let i = 0; i < refs.length; i++) refs[i] = view.getUint32(b + 16 + i * 4, true);
        message = {
          window,
          dump_type: view.getUint32(b, true),
          width: view.getUint32(b + 4, true),
          height: view.getUint32(b + 8, true),
          bpp: view.getUint32(b + 12, true),
          grant_refs: refs,
        };
        break;
      }
      case 144:
        message = {
          window,
          flags: view.getUint32(b, true),
          min_width: view.getUint32(b + 4, true),
          min_height: view.getUint32(b + 8, true),
          max_width: view.getUint32(b + 12, true),
          max_height: view.getUint32(b + 16, true),
          width_inc: view.getUint32(b + 20, true),
          height_inc: view.getUint32(b + 24, true),
          base_width: view.getUint32(b + 28, true),
          base_height: view.getUint32(b + 32, true),
        };
        break;
      default:
        throw new Error(`baseline does not know type ${type}`);
    }
    consume(message);
    at = b + length;
  }
}

function rows(stream: Stream, iterations: number): BenchRow[] {
  const whole = stream.bytes.length;
  const decoderSamples = sample(() => decodeWithDecoder(stream.bytes, whole), iterations, Math.min(50, iterations));
  const handSamples = sample(() => decodeByHand(stream.bytes), iterations, Math.min(50, iterations));
  const chunkedSamples = sample(() => decodeWithDecoder(stream.bytes, 4096), iterations, Math.min(50, iterations));
  const perSecond = (samples: number[], amount: number) => stats(samples.map((us) => amount / (us / 1e6)));
  const mb = whole / 1e6;
  const chunked = perSecond(chunkedSamples, stream.count);
  return [
    {
      name: `decode ${stream.name}, msg/s`,
      unit: "msg/s",
      value: perSecond(decoderSamples, stream.count),
      baseline: { name: "hand-written DataView loop", value: perSecond(handSamples, stream.count) },
      better: "higher",
      target: "≥ 0.5",
      notes: [`fed in 4096-byte chunks (one vchan ring): median ${chunked.median.toExponential(3)} msg/s`],
    },
    {
      name: `decode ${stream.name}, MB/s`,
      unit: "MB/s",
      value: perSecond(decoderSamples, mb),
      baseline: { name: "hand-written DataView loop", value: perSecond(handSamples, mb) },
      better: "higher",
      target: "≥ 0.5",
    },
  ];
}

export default async function protocolDecode(context: BenchContext): Promise<BenchRow[]> {
  const count = context.smoke ? 2_000 : 20_000;
  const iterations = context.iterations(200, 5);
  const shm = encodeStream(`SHMIMAGE stream, ${count} × 28 B`, shmimageMessages(count));
  const mixedBytes = encodeStream("mixed stream", mixedMessages(count));
  mixedBytes.name = `mixed stream, ${count} messages, ${mixedBytes.bytes.length} B`;
  const out = [...rows(shm, iterations), ...rows(mixedBytes, iterations)];
  if (kept === null || consumed === 0) throw new Error("nothing decoded");
  return out;
}
