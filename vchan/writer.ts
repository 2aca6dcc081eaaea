/**
 * A bounded, non-blocking writer on a vchan: it writes what the ring takes
 * now, keeps the rest in order, writes it as the peer reads (`drain`), and
 * gives up once more than `limit` bytes wait (a peer that stopped reading) or
 * the channel breaks. Both ends of the GUI protocol write this way: the
 * daemon may never block on a domain (upstream allows 10 MB, reference 4.9),
 * and the agent may never block its apps on a daemon.
 */
import type { Vchan } from "./types.ts";

/** Size of the chunks queued bytes are gathered in (a longer write gets a chunk of its own length). */
const QUEUE_CHUNK_BYTES = 64 * 1024;

/** Queued bytes: a chunk whose unsent part is bytes[start, end); more may be appended up to its length. */
interface QueuedChunk {
  readonly bytes: Uint8Array;
  start: number;
  end: number;
}

/** Why a {@link VchanWriter} gave up. */
export type WriterFailure = { kind: "overflow"; queued: number } | { kind: "disconnected" };

/** The writer; see the file comment. */
export class VchanWriter {
  readonly #vchan: Vchan;
  readonly #limit: number;
  readonly #onFailure: (failure: WriterFailure) => void;
  /** What waits, in order: the unsent bytes of each chunk are bytes[start, end). */
  readonly #queue: QueuedChunk[] = [];
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
    // Small messages share chunks: a copy of its own for each would cost several times its bytes.
    const tail = this.#queue[this.#queue.length - 1];
    if (tail !== undefined && tail.bytes.length - tail.end >= bytes.length) {
      tail.bytes.set(bytes, tail.end);
      tail.end += bytes.length;
    } else {
      const chunk = new Uint8Array(Math.max(QUEUE_CHUNK_BYTES, bytes.length));
      chunk.set(bytes);
      this.#queue.push({ bytes: chunk, start: 0, end: bytes.length });
    }
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
      const head = this.#queue[0] as QueuedChunk;
      let written: number;
      try {
        written = this.#vchan.write(head.bytes.subarray(head.start, head.end));
      } catch {
        this.#fail({ kind: "disconnected" });
        return;
      }
      this.#queued -= written;
      head.start += written;
      if (head.start < head.end) return;
      this.#queue.shift();
    }
  };
}
