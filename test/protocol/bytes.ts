/**
 * A tiny little-endian byte builder for test fixtures, written independently
 * of protocol/'s encoder so that the tests do not check the encoder against
 * itself.
 */
export class ByteBuilder {
  private readonly bytes: number[] = [];

  /** Appends a uint32, little-endian (accepts -1 as 0xffffffff, like C). */
  u32(value: number): this {
    const v = value >>> 0;
    this.bytes.push(v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, (v >>> 24) & 0xff);
    return this;
  }

  /** Appends an int32, little-endian, two's complement. */
  i32(value: number): this {
    return this.u32(value | 0);
  }

  /** Appends a message header {type, window, untrusted_len}. */
  header(type: number, window: number, length: number): this {
    return this.u32(type).u32(window).u32(length);
  }

  /** Appends raw bytes. */
  raw(bytes: ArrayLike<number>): this {
    for (let i = 0; i < bytes.length; i++) this.bytes.push((bytes[i] as number) & 0xff);
    return this;
  }

  /** Appends an ASCII/UTF-8 string zero-padded to `size` bytes. */
  text(value: string, size: number): this {
    const encoded = new TextEncoder().encode(value);
    if (encoded.length > size) throw new Error(`fixture text longer than ${size}`);
    this.raw(encoded);
    return this.zeros(size - encoded.length);
  }

  /** Appends `count` zero bytes. */
  zeros(count: number): this {
    for (let i = 0; i < count; i++) this.bytes.push(0);
    return this;
  }

  /** Current length. */
  get length(): number {
    return this.bytes.length;
  }

  /** The bytes built so far. */
  build(): Uint8Array {
    return Uint8Array.from(this.bytes);
  }
}

/** A new builder. */
export function bytes(): ByteBuilder {
  return new ByteBuilder();
}

/** Parses space-separated hex such as the reference's example. */
export function fromHex(hex: string): Uint8Array {
  const clean = hex.replace(/[\s|]/g, "");
  const out = new Uint8Array(clean.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(clean.slice(i * 2, i * 2 + 2), 16);
  return out;
}

/** Concatenates byte arrays. */
export function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((sum, part) => sum + part.length, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

/** A zero-padded fixed char array holding `value` (for expected messages). */
export function fixedText(value: string, size: number): Uint8Array {
  const out = new Uint8Array(size);
  out.set(new TextEncoder().encode(value));
  return out;
}
