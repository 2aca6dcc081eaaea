/**
 * A private byte ring (power-of-two size, free-running u32 indices) for the
 * socket backend's local buffers, as qubes-core-vchan-socket keeps two rings
 * beside its socket: dataReady/bufferSpace report them.
 */

/** A single-owner FIFO of bytes. */
export class ByteRing {
  /** Capacity in bytes, a power of two. */
  readonly size: number;
  readonly #bytes: Uint8Array;
  /** Free-running byte counters (u32 arithmetic). */
  #head = 0;
  #tail = 0;

  constructor(size: number) {
    if (!Number.isInteger(size) || size < 1 || (size & (size - 1)) !== 0) {
      throw new RangeError(`ring size must be a power of two, got ${size}`);
    }
    this.size = size;
    this.#bytes = new Uint8Array(size);
  }

  /** Bytes held. */
  get length(): number {
    return (this.#tail - this.#head) >>> 0;
  }

  /** Bytes that fit. */
  get free(): number {
    return this.size - this.length;
  }

  /** Appends as much of `data` as fits; the count. */
  push(data: Uint8Array): number {
    const n = Math.min(data.length, this.free);
    const at = this.#tail & (this.size - 1);
    const first = Math.min(n, this.size - at);
    this.#bytes.set(data.subarray(0, first), at);
    if (n > first) this.#bytes.set(data.subarray(first, n), 0);
    this.#tail = (this.#tail + n) >>> 0;
    return n;
  }

  /** Moves up to `into.length` bytes out; the count. */
  shift(into: Uint8Array): number {
    const n = Math.min(into.length, this.length);
    const at = this.#head & (this.size - 1);
    const first = Math.min(n, this.size - at);
    into.set(this.#bytes.subarray(at, at + first), 0);
    if (n > first) into.set(this.#bytes.subarray(0, n - first), first);
    this.#head = (this.#head + n) >>> 0;
    return n;
  }

  /** The held bytes from the head, up to the ring's end (no copy). */
  readable(): Uint8Array {
    const at = this.#head & (this.size - 1);
    return this.#bytes.subarray(at, at + Math.min(this.length, this.size - at));
  }

  /** The free space after the tail, up to the ring's end (no copy). */
  writable(): Uint8Array {
    const at = this.#tail & (this.size - 1);
    return this.#bytes.subarray(at, at + Math.min(this.free, this.size - at));
  }

  /** Drops `n` bytes from the head (after they were sent from readable()). */
  consume(n: number): void {
    this.#head = (this.#head + n) >>> 0;
  }

  /** Adds `n` bytes at the tail (after they were received into writable()). */
  produce(n: number): void {
    this.#tail = (this.#tail + n) >>> 0;
  }
}

/** The smallest power of two ≥ max(n, floor). */
export function powerOfTwoAtLeast(n: number, floor: number): number {
  let size = floor;
  while (size < n) size *= 2;
  return size;
}
