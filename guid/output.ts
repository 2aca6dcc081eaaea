/**
 * The daemon's writer to one agent: never blocks, writes what the vchan ring
 * takes, queues the rest, and gives up on an agent that stops reading once
 * the queue passes upstream's bound (10 000 000 bytes, reference 4.9).
 */
import { MessageEncoder, type Message } from "../protocol/index.ts";
import type { Vchan } from "../vchan/index.ts";

/** Bytes queued for an agent before the daemon ends its session (upstream's limit). */
export const MAX_OUTPUT_QUEUE = 10_000_000;

/** Why an {@link OutputQueue} gave up. */
export type OutputFailure = { kind: "overflow"; queued: number } | { kind: "disconnected" };

/** A bounded, non-blocking message writer on one vchan. */
export class OutputQueue {
  readonly #vchan: Vchan;
  readonly #encoder: MessageEncoder;
  readonly #onFailure: (failure: OutputFailure) => void;
  readonly #limit: number;
  readonly #queue: Uint8Array[] = [];
  #queued = 0;
  #failed = false;
  /** Messages handed to {@link send} (for counters). */
  sent = 0;

  constructor(vchan: Vchan, version: number, onFailure: (failure: OutputFailure) => void, limit = MAX_OUTPUT_QUEUE) {
    this.#vchan = vchan;
    this.#encoder = new MessageEncoder({ from: "daemon", version });
    this.#onFailure = onFailure;
    this.#limit = limit;
    vchan.on("drain", this.#flush);
  }

  /** Bytes waiting for ring space. */
  get queuedBytes(): number {
    return this.#queued;
  }

  /** Encodes and writes one message; what does not fit waits. */
  send(message: Message): void {
    if (this.#failed) return;
    this.sent += 1;
    this.#encoder.encode(message);
    this.write(this.#encoder.bytes());
    this.#encoder.clear();
  }

  /** Writes raw bytes (the handshake's headerless words); `bytes` may be reused by the caller afterwards. */
  write(bytes: Uint8Array): void {
    if (this.#failed) return;
    if (this.#queue.length === 0) {
      let written: number;
      try {
        written = this.#vchan.write(bytes);
      } catch {
        this.#fail({ kind: "disconnected" });
        return;
      }
      if (written === bytes.length) return;
      bytes = bytes.subarray(written);
    }
    this.#queue.push(bytes.slice());
    this.#queued += bytes.length;
    if (this.#queued > this.#limit) this.#fail({ kind: "overflow", queued: this.#queued });
  }

  /** Stops writing and forgets the queue. */
  close(): void {
    this.#failed = true;
    this.#queue.length = 0;
    this.#queued = 0;
    this.#vchan.off("drain", this.#flush);
  }

  #fail(failure: OutputFailure): void {
    if (this.#failed) return;
    this.close();
    this.#onFailure(failure);
  }

  readonly #flush = (): void => {
    while (this.#queue.length > 0 && !this.#failed) {
      const head = this.#queue[0] as Uint8Array;
      let written: number;
      try {
        written = this.#vchan.write(head);
      } catch {
        this.#fail({ kind: "disconnected" });
        return;
      }
      this.#queued -= written;
      if (written < head.length) {
        this.#queue[0] = head.subarray(written);
        return;
      }
      this.#queue.shift();
    }
  };
}
