/**
 * A bounded, non-blocking writer on a vchan: it writes what the ring takes
 * now, keeps the rest in order, writes it as the peer reads (`drain`), and
 * gives up once more than `limit` bytes wait (a peer that stopped reading) or
 * the channel breaks. Both ends of the GUI protocol write this way: the
 * daemon may never block on a domain (upstream allows 10 MB, reference 4.9),
 * and the agent may never block its apps on a daemon.
 */
import type { Vchan } from "./types.ts";

/** Why a {@link VchanWriter} gave up. */
export type WriterFailure = { kind: "overflow"; queued: number } | { kind: "disconnected" };

/** The writer; see the file comment. */
export class VchanWriter {
  readonly #vchan: Vchan;
  readonly #limit: number;
  readonly #onFailure: (failure: WriterFailure) => void;
  readonly #queue: Uint8Array[] = [];
  #queued = 0;
  #closed = false;

  /** Writes on `vchan`; `onFailure` is called once, when the writer gives up (it is closed by then). */
  constructor(vchan: Vchan, limit: number, onFailure: (failure: WriterFailure) => void) {
    if (!Number.isInteger(limit) || limit < 0) throw new RangeError(`limit must be a byte count, got ${limit}`);
    this.#vchan = vchan;
    this.#limit = limit;
    this.#onFailure = onFailure;
    vchan.on("drain", this.#flush);
  }

  /** Bytes waiting for ring space. */
  get queuedBytes(): number {
    return this.#queued;
  }

  /** True once closed or failed: nothing more is written. */
  get closed(): boolean {
    return this.#closed;
  }

  /** Writes `bytes` after what waits; what does not fit is copied, so the caller may reuse `bytes`. */
  write(bytes: Uint8Array): void {
    if (this.#closed) return;
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

  /** Stops writing and forgets what waits. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#queue.length = 0;
    this.#queued = 0;
    this.#vchan.off("drain", this.#flush);
  }

  #fail(failure: WriterFailure): void {
    if (this.#closed) return;
    this.close();
    this.#onFailure(failure);
  }

  readonly #flush = (): void => {
    while (this.#queue.length > 0 && !this.#closed) {
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
