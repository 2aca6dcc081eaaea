/**
 * Wayland codec, a typical frame's requests (wl_surface attach,
 * damage_buffer, frame, commit): marshal and unmarshal rates of the
 * table-driven codec beside a hand-written DataView loop over the same
 * bytes, measured in the same run.
 */
import { stats, type BenchContext, type BenchRow } from "./lib.ts";
import {
  FdQueue,
  HEADER_SIZE,
  MessageWriter,
  compileInterface,
  decodeArgs,
  encodeMessage,
  wl_surface,
  type CompiledMessage,
} from "../wayland/index.ts";

const FRAMES_PER_BATCH = 1000;
const MESSAGES_PER_BATCH = FRAMES_PER_BATCH * 4;
const SURFACE_ID = 3;

const surface = compileInterface(wl_surface);
function request(name: string): CompiledMessage {
  const found = surface.requests.find((message) => message.spec.name === name);
  if (found === undefined) throw new Error(`no request ${name}`);
  return found;
}
const attach = request("attach");
const damageBuffer = request("damage_buffer");
const frame = request("frame");
const commit = request("commit");

/** Marshals one batch with the codec; returns the byte count. */
function marshalCodec(out: MessageWriter, fds: number[]): number {
  out.length = 0;
  for (let i = 0; i < FRAMES_PER_BATCH; i++) {
    encodeMessage(out, SURFACE_ID, attach, [7, 0, 0], fds);
    encodeMessage(out, SURFACE_ID, damageBuffer, [0, 0, 64, i & 0xff], fds);
    encodeMessage(out, SURFACE_ID, frame, [8 + i], fds);
    encodeMessage(out, SURFACE_ID, commit, [], fds);
  }
  return out.length;
}

/** The same bytes written by hand with a DataView. */
function marshalByHand(view: DataView): number {
  let at = 0;
  for (let i = 0; i < FRAMES_PER_BATCH; i++) {
    view.setUint32(at, SURFACE_ID, true);
    view.setUint32(at + 4, (20 << 16) | 1, true);
    view.setUint32(at + 8, 7, true);
    view.setInt32(at + 12, 0, true);
    view.setInt32(at + 16, 0, true);
    at += 20;
    view.setUint32(at, SURFACE_ID, true);
    view.setUint32(at + 4, (24 << 16) | 9, true);
    view.setInt32(at + 8, 0, true);
    view.setInt32(at + 12, 0, true);
    view.setInt32(at + 16, 64, true);
    view.setInt32(at + 20, i & 0xff, true);
    at += 24;
    view.setUint32(at, SURFACE_ID, true);
    view.setUint32(at + 4, (12 << 16) | 3, true);
    view.setUint32(at + 8, 8 + i, true);
    at += 12;
    view.setUint32(at, SURFACE_ID, true);
    view.setUint32(at + 4, (8 << 16) | 6, true);
    at += 8;
  }
  return at;
}

/** Frames and decodes every message of the batch with the codec; returns a checksum. */
function unmarshalCodec(bytes: Uint8Array, view: DataView, length: number, fds: FdQueue): number {
  let sum = 0;
  for (let at = 0; at < length;) {
    const word = view.getUint32(at + 4, true);
    const size = word >>> 16;
    const message = surface.requests[word & 0xffff];
    if (message === undefined || size < HEADER_SIZE) throw new Error("bad fixture");
    const args = decodeArgs(message, bytes, view, at + HEADER_SIZE, at + size, fds);
    if (!Array.isArray(args)) throw new Error(args.error);
    sum += args.length;
    at += size;
  }
  return sum;
}

/** The same framing and field reads by hand, one switch case per opcode. */
function unmarshalByHand(view: DataView, length: number): number {
  let sum = 0;
  for (let at = 0; at < length;) {
    const word = view.getUint32(at + 4, true);
    const size = word >>> 16;
    if (size < HEADER_SIZE || at + size > length) throw new Error("bad fixture");
    switch (word & 0xffff) {
      case 1:
        sum += view.getUint32(at + 8, true) + view.getInt32(at + 12, true) + view.getInt32(at + 16, true) > -1 ? 3 : 0;
        break;
      case 9:
        sum +=
          view.getInt32(at + 8, true) +
            view.getInt32(at + 12, true) +
            view.getInt32(at + 16, true) +
            view.getInt32(at + 20, true) >
          -1
            ? 4
            : 0;
        break;
      case 3:
        sum += view.getUint32(at + 8, true) > 0 ? 1 : 0;
        break;
      case 6:
        break;
      default:
        throw new Error("bad fixture");
    }
    at += size;
  }
  return sum;
}

/** Messages per second of each batch run, after warm-up. */
function rates(run: () => number, batches: number): number[] {
  for (let i = 0; i < Math.min(50, batches); i++) run();
  const out: number[] = [];
  for (let i = 0; i < batches; i++) {
    const start = process.hrtime.bigint();
    run();
    const seconds = Number(process.hrtime.bigint() - start) / 1e9;
    out.push(MESSAGES_PER_BATCH / seconds);
  }
  return out;
}

/** The case: its rows, each beside the hand-written or raw baseline measured in the same run. */
export default async function bench(context: BenchContext): Promise<BenchRow[]> {
  const batches = context.iterations(400, 5);
  const out = new MessageWriter(64 * 1024);
  const fds: number[] = [];
  const byHand = new Uint8Array(64 * 1024);
  const byHandView = new DataView(byHand.buffer);

  const length = marshalCodec(out, fds);
  if (
    marshalByHand(byHandView) !== length ||
    Buffer.compare(out.bytes.subarray(0, length), byHand.subarray(0, length)) !== 0
  ) {
    throw new Error("the codec and the hand-written loop disagree on the bytes");
  }
  const marshal = stats(rates(() => marshalCodec(out, fds), batches));
  const marshalHand = stats(rates(() => marshalByHand(byHandView), batches));

  const fixture = out.bytes.slice(0, length);
  const fixtureView = new DataView(fixture.buffer);
  const queue = new FdQueue();
  const unmarshal = stats(rates(() => unmarshalCodec(fixture, fixtureView, length, queue), batches));
  const unmarshalHand = stats(rates(() => unmarshalByHand(fixtureView, length), batches));

  const notes = [`${FRAMES_PER_BATCH} frames × 4 messages per batch, ${length / FRAMES_PER_BATCH} bytes per frame`];
  return [
    {
      name: "marshal wl_surface frame (attach, damage_buffer, frame, commit)",
      unit: "msg/s",
      value: marshal,
      baseline: { name: "hand-written DataView loop, same bytes", value: marshalHand },
      better: "higher",
      target: "≥ 0.1",
      notes,
    },
    {
      name: "unmarshal wl_surface frame (attach, damage_buffer, frame, commit)",
      unit: "msg/s",
      value: unmarshal,
      baseline: { name: "hand-written DataView loop, same bytes", value: unmarshalHand },
      better: "higher",
      target: "≥ 0.1",
      notes,
    },
  ];
}
