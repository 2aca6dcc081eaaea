/**
 * The fuzz client's own Wayland bytes, built independently of wayland/'s
 * encoder: requests as a header and a list of parts (32-bit words, strings,
 * arrays) whose lengths and terminators a mutation may falsify, events read
 * back by their schema, and the corpus format that records a real client's
 * request bytes with where its fds went.
 */
import type { ArgSpec, InterfaceSpec } from "../../../wayland/index.ts";
import { concat } from "../harness.ts";

/** One part of a request body: a 32-bit word, or a string/array with its length word (both falsifiable). */
export type Part =
  | { kind: "word"; value: number }
  /** A string: its bytes without the NUL; `length` overrides the length word, `nul: false` drops the terminator. */
  | { kind: "string"; bytes: Uint8Array; length?: number; nul?: boolean }
  | { kind: "array"; bytes: Uint8Array; length?: number };

/** What kind of fd a request carries (made fresh when the request is written). */
export type FdSpec =
  /** A memfd of `size` bytes; `shrinkTo` (when set): the file is truncated to that size once the server has the pool. */
  | { kind: "memfd"; size: number; shrinkTo?: number }
  | { kind: "pipe-read" }
  | { kind: "pipe-write" }
  | { kind: "socket" }
  | { kind: "eventfd" }
  | { kind: "dev-null" };

/** One request as the fuzzer builds it: encoded by {@link encodeRequest}, possibly with a falsified header. */
export interface RawRequest {
  objectId: number;
  opcode: number;
  parts: Part[];
  /** fds carried (sent with the write that holds this request). */
  fds: FdSpec[];
  /** Overrides the size in the header (a lie about the length). */
  size?: number;
}

const encoder = new TextEncoder();

/** UTF-8 bytes of `text`. */
export function utf8(text: string): Uint8Array {
  return encoder.encode(text);
}

function partSize(part: Part): number {
  if (part.kind === "word") return 4;
  const length = part.kind === "string" ? part.bytes.length + (part.nul === false ? 0 : 1) : part.bytes.length;
  return 4 + ((length + 3) & ~3);
}

/** The request's bytes: header (id, size << 16 | opcode) and its parts, strings NUL-terminated and padded. */
export function encodeRequest(request: RawRequest): Uint8Array {
  let size = 8;
  for (const part of request.parts) size += partSize(part);
  const bytes = new Uint8Array(size);
  const view = new DataView(bytes.buffer);
  view.setUint32(0, request.objectId >>> 0, true);
  const headerSize = request.size ?? size;
  view.setUint32(4, (((headerSize & 0xffff) << 16) | (request.opcode & 0xffff)) >>> 0, true);
  let at = 8;
  for (const part of request.parts) {
    if (part.kind === "word") {
      view.setUint32(at, part.value >>> 0, true);
      at += 4;
      continue;
    }
    const real = part.kind === "string" ? part.bytes.length + (part.nul === false ? 0 : 1) : part.bytes.length;
    view.setUint32(at, (part.length ?? real) >>> 0, true);
    bytes.set(part.bytes, at + 4);
    at += partSize(part);
  }
  return bytes;
}

/** One event as received: object, opcode and body. */
export interface ReceivedEvent {
  objectId: number;
  opcode: number;
  body: Buffer;
}

/** A decoded event argument: a number (int, uint, fixed×256, object, new_id), a string, or bytes. */
export type EventValue = number | string | Uint8Array | null;

/**
 * Reads an event's arguments by its schema (fds travel out of band and read
 * as -1); null when the body does not match (a server bug the caller reports).
 */
export function decodeEvent(args: readonly ArgSpec[], body: Buffer): EventValue[] | null {
  const values: EventValue[] = [];
  let at = 0;
  for (const arg of args) {
    if (arg.type === "fd") {
      values.push(-1);
      continue;
    }
    if (at + 4 > body.length) return null;
    const word = body.readUInt32LE(at);
    at += 4;
    if (arg.type === "string" || arg.type === "array") {
      const padded = (word + 3) & ~3;
      if (padded > body.length - at) return null;
      if (arg.type === "string") values.push(word === 0 ? null : body.toString("utf8", at, at + word - 1));
      else values.push(new Uint8Array(body.subarray(at, at + word)));
      at += padded;
    } else {
      values.push(arg.type === "int" || arg.type === "fixed" ? word | 0 : word);
    }
  }
  return at === body.length ? values : null;
}

/** The index of request `name` of `spec` (its opcode); throws for a name the interface lacks (a fuzzer bug). */
export function opcodeOf(spec: InterfaceSpec, name: string): number {
  const opcode = spec.requests.findIndex((request) => request.name === name);
  if (opcode < 0) throw new TypeError(`${spec.name} has no request ${name}`);
  return opcode;
}

// ---- the corpus format ----

/** The first word of a capture file: "WLRQ" little-endian. */
export const CAPTURE_MAGIC = 0x51524c57;
/** Record kinds of a capture file (each record is three words, bytes records followed by their padded bytes). */
const RECORD_BYTES = 1;
const RECORD_FD = 2;

/** What kind of fd a real client sent, as recorded. */
export type CapturedFd = { kind: "file"; size: number } | { kind: "pipe" } | { kind: "other" };

/** One sendmsg of a real client: its bytes and the fds that came with them. */
export interface CapturedChunk {
  bytes: Uint8Array;
  fds: CapturedFd[];
}

/**
 * Encodes a capture: the magic word, then per chunk one record per fd
 * (kind 2: fd kind 0 file / 1 pipe / 2 other, size) and one bytes record
 * (kind 1: length, 0, then the bytes padded to 4).
 */
export function encodeCapture(chunks: readonly CapturedChunk[]): Uint8Array {
  const words: number[] = [CAPTURE_MAGIC];
  const parts: Uint8Array[] = [];
  const flushWords = (): void => {
    parts.push(new Uint8Array(new Uint32Array(words.splice(0)).buffer));
  };
  for (const chunk of chunks) {
    for (const fd of chunk.fds) {
      words.push(RECORD_FD, fd.kind === "file" ? 0 : fd.kind === "pipe" ? 1 : 2, fd.kind === "file" ? fd.size : 0);
    }
    words.push(RECORD_BYTES, chunk.bytes.length, 0);
    flushWords();
    const padded = new Uint8Array((chunk.bytes.length + 3) & ~3);
    padded.set(chunk.bytes);
    parts.push(padded);
  }
  flushWords();
  return concat(...parts);
}

/** Decodes a capture file; null when it is not one (a stray file in the corpus directory). */
export function decodeCapture(file: Uint8Array): CapturedChunk[] | null {
  if (file.length < 4 || file.length % 4 !== 0) return null;
  const view = new DataView(file.buffer, file.byteOffset, file.byteLength);
  if (view.getUint32(0, true) !== CAPTURE_MAGIC) return null;
  const chunks: CapturedChunk[] = [];
  let fds: CapturedFd[] = [];
  let at = 4;
  while (at + 12 <= file.length) {
    const kind = view.getUint32(at, true);
    const a = view.getUint32(at + 4, true);
    const b = view.getUint32(at + 8, true);
    at += 12;
    if (kind === RECORD_FD) {
      fds.push(a === 0 ? { kind: "file", size: b } : a === 1 ? { kind: "pipe" } : { kind: "other" });
    } else if (kind === RECORD_BYTES) {
      const padded = (a + 3) & ~3;
      if (padded > file.length - at) return null;
      chunks.push({ bytes: file.slice(at, at + a), fds });
      fds = [];
      at += padded;
    } else {
      return null;
    }
  }
  return at === file.length ? chunks : null;
}
