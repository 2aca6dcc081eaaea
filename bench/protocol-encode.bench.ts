/**
 * Encode throughput of protocol/'s table-driven MessageEncoder (range-checks
 * every field, appends to its own buffer) on an agent → daemon SHMIMAGE stream and on a mixed stream, beside a
 * minimal hand-written DataView loop writing the same fields of the same
 * messages into the same buffer, in the same run.
 */
import { MessageEncoder, encodedSize, type Message } from "../protocol/index.ts";
import { mixedMessages, shmimageMessages } from "./protocol-decode.bench.ts";
import { sample, stats, type BenchContext, type BenchRow } from "./lib.ts";

function encodeWithEncoder(messages: Message[], encoder: MessageEncoder): number {
  encoder.clear();
  for (const message of messages) encoder.encode(message);
  return encoder.length;
}

/** The baseline: a hand-written DataView writer of these message types, no checks. */
function encodeByHand(messages: Message[], target: Uint8Array): number {
  const view = new DataView(target.buffer, target.byteOffset, target.byteLength);
  let at = 0;
  for (const m of messages) {
    const b = at + 12;
    let length: number;
    switch (m.type) {
      case "SHMIMAGE":
        view.setInt32(b, m.x, true);
        view.setInt32(b + 4, m.y, true);
        view.setUint32(b + 8, m.width, true);
        view.setUint32(b + 12, m.height, true);
        length = 16;
        view.setUint32(at, 136, true);
        break;
      case "CONFIGURE":
        view.setInt32(b, m.x, true);
        view.setInt32(b + 4, m.y, true);
        view.setUint32(b + 8, m.width, true);
        view.setUint32(b + 12, m.height, true);
        view.setUint32(b + 16, m.override_redirect, true);
        length = 20;
        view.setUint32(at, 134, true);
        break;
      case "WMNAME":
        target.set(m.data, b);
        length = 128;
        view.setUint32(at, 141, true);
        break;
      case "WINDOW_FLAGS":
        view.setUint32(b, m.flags_set, true);
        view.setUint32(b + 4, m.flags_unset, true);
        length = 8;
        view.setUint32(at, 145, true);
        break;
      case "CURSOR":
        view.setUint32(b, m.cursor, true);
        length = 4;
        view.setUint32(at, 148, true);
        break;
      case "MAP":
        view.setUint32(b, m.transient_for, true);
        view.setUint32(b + 4, m.override_redirect, true);
        length = 8;
        view.setUint32(at, 132, true);
        break;
      case "WINDOW_DUMP":
        view.setUint32(b, m.dump_type, true);
        view.setUint32(b + 4, m.width, true);
        view.setUint32(b + 8, m.height, true);
        view.setUint32(b + 12, m.bpp, true);
        for (let i = 0; i < m.grant_refs.length; i++) view.setUint32(b + 16 + i * 4, m.grant_refs[i] as number, true);
        length = 16 + m.grant_refs.length * 4;
        view.setUint32(at, 147, true);
        break;
      case "WINDOW_HINTS":
        view.setUint32(b, m.flags, true);
        view.setUint32(b + 4, m.min_width, true);
        view.setUint32(b + 8, m.min_height, true);
        view.setUint32(b + 12, m.max_width, true);
        view.setUint32(b + 16, m.max_height, true);
        view.setUint32(b + 20, m.width_inc, true);
        view.setUint32(b + 24, m.height_inc, true);
        view.setUint32(b + 28, m.base_width, true);
        view.setUint32(b + 32, m.base_height, true);
        length = 36;
        view.setUint32(at, 144, true);
        break;
      default:
        throw new Error(`baseline does not know ${m.type}`);
    }
    view.setUint32(at + 4, m.window, true);
    view.setUint32(at + 8, length, true);
    at = b + length;
  }
  return at;
}

function rows(name: string, messages: Message[], iterations: number): BenchRow[] {
  const size = messages.reduce((sum, message) => sum + encodedSize(message), 0);
  const encoder = new MessageEncoder({ from: "agent" }, size);
  const theirs = new Uint8Array(size);
  const warmup = Math.min(50, iterations);
  const encoderSamples = sample(() => void encodeWithEncoder(messages, encoder), iterations, warmup);
  const handSamples = sample(() => void encodeByHand(messages, theirs), iterations, warmup);
  if (Buffer.compare(encoder.bytes(), theirs) !== 0)
    throw new Error("the encoder and the baseline wrote different bytes");
  const perSecond = (samples: number[], amount: number) => stats(samples.map((us) => amount / (us / 1e6)));
  const label = `${name}, ${messages.length} messages, ${size} B`;
  return [
    {
      name: `encode ${label}, msg/s`,
      unit: "msg/s",
      value: perSecond(encoderSamples, messages.length),
      baseline: { name: "hand-written DataView loop", value: perSecond(handSamples, messages.length) },
      better: "higher",
      target: "≥ 0.5",
    },
    {
      name: `encode ${label}, MB/s`,
      unit: "MB/s",
      value: perSecond(encoderSamples, size / 1e6),
      baseline: { name: "hand-written DataView loop", value: perSecond(handSamples, size / 1e6) },
      better: "higher",
      target: "≥ 0.5",
    },
  ];
}

export default async function protocolEncode(context: BenchContext): Promise<BenchRow[]> {
  const count = context.smoke ? 2_000 : 20_000;
  const iterations = context.iterations(200, 5);
  return [
    ...rows("SHMIMAGE stream", shmimageMessages(count), iterations),
    ...rows("mixed stream", mixedMessages(count), iterations),
  ];
}
