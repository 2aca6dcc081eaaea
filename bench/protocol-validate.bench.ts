/**
 * The daemon's receive path per message: decode and validate an agent's
 * SHMIMAGE and mixed streams for mapped windows, beside decoding alone on the
 * same bytes in the same run, so the ratio is the cost of the trust boundary.
 */
import { SessionValidator, StreamDecoder, encodeMessage, type DecodeHandler, type Message } from "../protocol/index.ts";
import { mixedMessages, shmimageMessages } from "./protocol-decode.bench.ts";
import { sample, stats, type BenchContext, type BenchRow } from "./lib.ts";

function encodeAll(messages: Message[]): Uint8Array {
  const parts = messages.map((message) => encodeMessage(message, { from: "agent" }));
  const out = new Uint8Array(parts.reduce((sum, part) => sum + part.length, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

/** A validator whose session knows the two mapped windows the streams talk about. */
function session(): SessionValidator {
  const validator = new SessionValidator({ screen: { width: 1920, height: 1080 } });
  for (const window of [0x400001, 0x400002]) {
    validator.validate({
      type: "CREATE",
      window,
      x: 0,
      y: 0,
      width: 1200,
      height: 900,
      parent: 0,
      override_redirect: 0,
    });
    if (window === 0x400001) validator.validate({ type: "MAP", window, transient_for: 0, override_redirect: 0 });
  }
  return validator;
}

let accepted = 0;

function run(bytes: Uint8Array, validate: boolean): void {
  const decoder = new StreamDecoder({ from: "agent" });
  const validator = session();
  const handler: DecodeHandler = {
    message: (value) => {
      if (value.type === "VERSION" || value.type === "XCONF") return;
      if (!validate) {
        accepted++;
        return;
      }
      const verdict = validator.validate(value);
      if (verdict.ok) accepted++;
      // MAP of the already mapped window is dropped each round: part of the mix on purpose.
    },
    error: (error) => {
      throw new Error(error.toString());
    },
  };
  decoder.decode(bytes, handler);
}

export default async function protocolValidate(context: BenchContext): Promise<BenchRow[]> {
  const count = context.smoke ? 2_000 : 20_000;
  const iterations = context.iterations(200, 5);
  const rows: BenchRow[] = [];
  for (const [name, messages] of [
    [`SHMIMAGE stream, ${count} × 28 B`, shmimageMessages(count)],
    [`mixed stream, ${count} messages`, mixedMessages(count)],
  ] as const) {
    const bytes = encodeAll(messages);
    const warmup = Math.min(50, iterations);
    const both = sample(() => run(bytes, true), iterations, warmup);
    const decodeOnly = sample(() => run(bytes, false), iterations, warmup);
    const rate = (samples: number[]) => stats(samples.map((us) => count / (us / 1e6)));
    rows.push({
      name: `decode + validate ${name}, msg/s`,
      unit: "msg/s",
      value: rate(both),
      baseline: { name: "decode only, same bytes", value: rate(decodeOnly) },
      better: "higher",
    });
  }
  if (accepted === 0) throw new Error("nothing accepted");
  return rows;
}
