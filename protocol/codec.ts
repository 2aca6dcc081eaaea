/**
 * The table-driven codec: one reader and one writer that interpret
 * MESSAGE_SCHEMAS, instead of one parser per message type. Framing (how long a
 * body may be) is decided by the stream decoder before anything here runs; the
 * body reader trusts only the length it is handed.
 */
import {
  MSG_HEADER_SIZE,
  MSG_VERSION_SIZE,
  MSG_XCONF_SIZE,
  VERSION_CLIPBOARD_LEN_IN_HEADER,
  formatVersion,
  QUBES_GUID_PROTOCOL_VERSION,
} from "./constants.ts";
import {
  MESSAGE_SCHEMAS,
  maySend,
  type FieldSpec,
  type Message,
  type MessageSchema,
  type Side,
  type VersionMessage,
  type XconfMessage,
} from "./messages.ts";

/**
 * Reads a message body of exactly `length` bytes at `offset` of `view` into a
 * message of `schema`. `length` must already be checked: at least the fixed
 * size and, for a u32 tail, fixed size plus a multiple of 4. Byte fields are
 * copied, so the message does not keep the input alive.
 */
export function readBody(
  schema: MessageSchema,
  window: number,
  view: DataView,
  offset: number,
  length: number,
): Message {
  const message: Record<string, unknown> = { type: schema.name, window };
  const fields = schema.fields;
  let at = offset;
  for (let i = 0; i < fields.length; i++) {
    const field = fields[i] as FieldSpec;
    if (field.kind === "u32") message[field.name] = view.getUint32(at, true);
    else if (field.kind === "i32") message[field.name] = view.getInt32(at, true);
    else message[field.name] = copyBytes(view, at, field.size);
    at += field.size;
  }
  const tail = schema.tail;
  if (tail !== null) {
    const tailBytes = offset + length - at;
    if (tail.kind === "u8") {
      message[tail.name] = copyBytes(view, at, tailBytes);
    } else {
      const count = tailBytes >>> 2;
      const list = new Uint32Array(count);
      for (let i = 0; i < count; i++) list[i] = view.getUint32(at + i * 4, true);
      message[tail.name] = list;
    }
  }
  return message as unknown as Message;
}

function copyBytes(view: DataView, at: number, size: number): Uint8Array {
  return new Uint8Array(view.buffer, view.byteOffset + at, size).slice();
}

/** Options of the encoders. */
export interface EncodeOptions {
  /** The sending side; a message this side never sends is a programmer error. */
  from: Side;
  /** Negotiated version; decides CLIPBOARD_DATA framing and which messages exist. Default 1.8. */
  version?: number;
  /** Allow the obsolete RESIZE, EXECUTE and MFNDUMP (for test tools crafting hostile bytes only). */
  allowObsolete?: boolean;
  /** Skip the direction and version checks (for test tools crafting hostile bytes only). */
  anyDirection?: boolean;
}

function tailCount(message: Message, schema: MessageSchema): number {
  if (schema.tail === null) return 0;
  const tail = (message as unknown as Record<string, unknown>)[schema.tail.name];
  if (!(tail instanceof Uint8Array) && !(tail instanceof Uint32Array)) {
    throw new TypeError(`${schema.name}.${schema.tail.name} must be a typed array`);
  }
  return tail.length;
}

/** Bytes the whole message (header included) takes on the wire. */
export function encodedSize(message: Message): number {
  const schema = MESSAGE_SCHEMAS[message.type] as MessageSchema | undefined;
  if (schema === undefined) throw new TypeError(`unknown message type ${String(message.type)}`);
  const count = tailCount(message, schema);
  return (
    MSG_HEADER_SIZE + schema.fixedSize + (schema.tail === null ? 0 : schema.tail.kind === "u32" ? count * 4 : count)
  );
}

function checkU32(value: unknown, what: string): number {
  if (typeof value !== "number" || !Number.isInteger(value) || value < 0 || value > 0xffffffff) {
    throw new RangeError(`${what} must be an integer in 0..2^32-1, got ${String(value)}`);
  }
  return value;
}

function checkI32(value: unknown, what: string): number {
  if (typeof value !== "number" || !Number.isInteger(value) || value < -0x80000000 || value > 0x7fffffff) {
    throw new RangeError(`${what} must be an integer in -2^31..2^31-1, got ${String(value)}`);
  }
  return value;
}

/**
 * Writes `message` (header and body) at `offset` of `target` and returns the
 * offset after it; the caller sizes `target` with {@link encodedSize}. Throws on
 * programmer errors: a value that does not fit its field, a message the side
 * does not send (or not at this version), an obsolete message.
 */
export function encodeInto(message: Message, target: Uint8Array, offset: number, options: EncodeOptions): number {
  const schema = MESSAGE_SCHEMAS[message.type] as MessageSchema | undefined;
  if (schema === undefined) throw new TypeError(`unknown message type ${String(message.type)}`);
  const version = options.version ?? QUBES_GUID_PROTOCOL_VERSION;
  if (schema.obsolete && options.allowObsolete !== true) {
    throw new TypeError(`MSG_${schema.name} is obsolete and never sent`);
  }
  if (options.anyDirection !== true && !maySend(options.from, schema.name, version)) {
    throw new TypeError(`the ${options.from} does not send MSG_${schema.name} at protocol ${formatVersion(version)}`);
  }
  const fields = message as unknown as Record<string, unknown>;
  const count = tailCount(message, schema);
  const bodyLength = schema.fixedSize + (schema.tail === null ? 0 : schema.tail.kind === "u32" ? count * 4 : count);
  if (offset < 0 || offset + MSG_HEADER_SIZE + bodyLength > target.length) {
    throw new RangeError(`encoding MSG_${schema.name} needs ${MSG_HEADER_SIZE + bodyLength} bytes at ${offset}`);
  }
  const view = new DataView(target.buffer, target.byteOffset, target.byteLength);
  let window = checkU32(message.window, `${schema.name}.window`);
  // Before 1.2 the length travels in `window`; we also keep it in untrusted_len, which old readers ignore.
  if (schema.name === "CLIPBOARD_DATA" && version < VERSION_CLIPBOARD_LEN_IN_HEADER) window = bodyLength;
  view.setUint32(offset, schema.code, true);
  view.setUint32(offset + 4, window, true);
  view.setUint32(offset + 8, bodyLength, true);
  let at = offset + MSG_HEADER_SIZE;
  for (const field of schema.fields) {
    const value = fields[field.name];
    if (field.kind === "u32") view.setUint32(at, checkU32(value, `${schema.name}.${field.name}`), true);
    else if (field.kind === "i32") view.setInt32(at, checkI32(value, `${schema.name}.${field.name}`), true);
    else {
      if (!(value instanceof Uint8Array) || value.length > field.size) {
        throw new RangeError(`${schema.name}.${field.name} must be a Uint8Array of at most ${field.size} bytes`);
      }
      target.set(value, at);
      target.fill(0, at + value.length, at + field.size);
    }
    at += field.size;
  }
  if (schema.tail !== null) {
    const tail = fields[schema.tail.name];
    if (tail instanceof Uint8Array) {
      target.set(tail, at);
      at += tail.length;
    } else if (tail instanceof Uint32Array) {
      for (let i = 0; i < tail.length; i++, at += 4) view.setUint32(at, tail[i] as number, true);
    }
  }
  return at;
}

/** Encodes one message into a new buffer of exactly its wire size (see {@link encodeInto}). */
export function encodeMessage(message: Message, options: EncodeOptions): Uint8Array {
  const out = new Uint8Array(encodedSize(message));
  encodeInto(message, out, 0, options);
  return out;
}

/** Encodes a handshake version word (4 bytes, no header). */
export function encodeVersion(message: VersionMessage | number): Uint8Array {
  const version = typeof message === "number" ? message : message.version;
  const out = new Uint8Array(MSG_VERSION_SIZE);
  new DataView(out.buffer).setUint32(0, checkU32(version, "version"), true);
  return out;
}

/** Encodes the handshake `msg_xconf` (16 bytes, no header). */
export function encodeXconf(xconf: XconfMessage): Uint8Array {
  const out = new Uint8Array(MSG_XCONF_SIZE);
  const view = new DataView(out.buffer);
  view.setUint32(0, checkU32(xconf.w, "xconf.w"), true);
  view.setUint32(4, checkU32(xconf.h, "xconf.h"), true);
  view.setUint32(8, checkU32(xconf.depth, "xconf.depth"), true);
  view.setUint32(12, checkU32(xconf.mem, "xconf.mem"), true);
  return out;
}

/** Reads a 16-byte `msg_xconf` at `offset`. */
export function readXconf(view: DataView, offset: number): XconfMessage {
  return {
    type: "XCONF",
    w: view.getUint32(offset, true),
    h: view.getUint32(offset + 4, true),
    depth: view.getUint32(offset + 8, true),
    mem: view.getUint32(offset + 12, true),
  };
}
