/**
 * The daemon's writer to one agent: messages encoded at the negotiated
 * version onto a {@link VchanWriter} that never blocks and gives up on an
 * agent that stops reading once more than upstream's 10 000 000 bytes wait
 * (reference 4.9).
 */
import { MessageEncoder, type Message } from "../protocol/index.ts";
import { VchanWriter, type Vchan, type WriterFailure } from "../vchan/index.ts";

/** Bytes queued for an agent before the daemon ends its session (upstream's limit). */
export const MAX_OUTPUT_QUEUE = 10_000_000;

/** Why an {@link OutputQueue} gave up. */
export type OutputFailure = WriterFailure;

/** A bounded, non-blocking message writer on one vchan. */
export class OutputQueue {
  readonly #writer: VchanWriter;
  readonly #encoder: MessageEncoder;

  constructor(vchan: Vchan, version: number, onFailure: (failure: OutputFailure) => void, limit = MAX_OUTPUT_QUEUE) {
    this.#writer = new VchanWriter(vchan, limit, onFailure);
    this.#encoder = new MessageEncoder({ from: "daemon", version });
  }

  /** Bytes waiting for ring space. */
  get queuedBytes(): number {
    return this.#writer.queuedBytes;
  }

  /** Encodes and writes one message; what does not fit waits. */
  send(message: Message): void {
    if (this.#writer.closed) return;
    this.#encoder.encode(message);
    this.#writer.write(this.#encoder.bytes());
    this.#encoder.clear();
  }

  /** Writes raw bytes (the handshake's headerless words); `bytes` may be reused by the caller afterwards. */
  write(bytes: Uint8Array): void {
    this.#writer.write(bytes);
  }

  /** Stops writing and forgets the queue. */
  close(): void {
    this.#writer.close();
  }
}
