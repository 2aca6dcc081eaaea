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
  MESSAGE_NAMES,
  MESSAGE_SCHEMAS,
  maySend,
  type Message,
  type MessageSchema,
  type Side,
  type VersionMessage,
  type XconfMessage,
} from "./messages.ts";

type BodyReader = (
  view: DataView,
  offset: number,
  length: number,
  window: number,
  copy: typeof copyBytes,
  readList: typeof readU32List,
) => Message;

const SAFE_NAME = /^[a-z][a-z_]*$/;

/**
 * Builds the reader of one schema from the table: a function that returns one
 * object literal with the fields at their fixed offsets, so every message
 * type gets a single stable object shape (what makes the decoder fast). The
 * generated source holds only numbers and field names from MESSAGE_SCHEMAS,
 * each checked against /^[a-z][a-z_]*$/; no wire data ever reaches it.
 */
function compileReader(schema: MessageSchema): BodyReader {
  const parts = [`type: ${JSON.stringify(schema.name)}`, "window: window"];
  let at = 0;
  for (const field of schema.fields) {
    if (!SAFE_NAME.test(field.name)) throw new Error(`bad field name in schema ${schema.name}`);
    const read =
      field.kind === "u32"
        ? `view.getUint32(offset + ${at}, true)`
        : field.kind === "i32"
          ? `view.getInt32(offset + ${at}, true)`
          : `copy(view, offset + ${at}, ${field.size})`;
    parts.push(`${field.name}: ${read}`);
    at += field.size;
  }
  if (schema.tail !== null) {
    if (!SAFE_NAME.test(schema.tail.name)) throw new Error(`bad tail name in schema ${schema.name}`);
    const read = schema.tail.kind === "u8" ? "copy" : "readList";
    parts.push(`${schema.tail.name}: ${read}(view, offset + ${at}, length - ${at})`);
  }
  return new Function(
    "view",
    "offset",
    "length",
    "window",
    "copy",
    "readList",
    `return { ${parts.join(", ")} };`,
  ) as BodyReader;
}

const readers: BodyReader[] = [];
for (const name of MESSAGE_NAMES) {
  const schema = MESSAGE_SCHEMAS[name] as MessageSchema;
  readers[schema.code] = compileReader(schema);
}

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
  return (readers[schema.code] as BodyReader)(view, offset, length, window, copyBytes, readU32List);
}

/**
 * Like {@link readBody} for a wire type whose framing the caller has already
 * checked; the decoder's fast path.
 */
export function readBodyOfType(code: number, window: number, view: DataView, offset: number, length: number): Message {
  return (readers[code] as BodyReader)(view, offset, length, window, copyBytes, readU32List);
}

function readU32List(view: DataView, at: number, bytes: number): Uint32Array {
  const count = bytes >>> 2;
  const list = new Uint32Array(count);
  for (let i = 0; i < count; i++) list[i] = view.getUint32(at + i * 4, true);
  return list;
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
  const wanted = schema.tail.kind === "u8" ? Uint8Array : Uint32Array;
  if (!(tail instanceof wanted)) throw new TypeError(`${schema.name}.${schema.tail.name} must be a ${wanted.name}`);
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
  if (typeof value !== "number" || value >>> 0 !== value) {
    throw new RangeError(`${what} must be an integer in 0..2^32-1, got ${String(value)}`);
  }
  return value;
}

type BodyWriter = (
  view: DataView,
  target: Uint8Array,
  at: number,
  message: Message,
  fail: (field: string, value: unknown) => never,
) => number;

/**
 * Builds the writer of one schema from the table, like {@link compileReader}:
 * straight-line stores at fixed offsets, each value range-checked first
 * (`v >>> 0 === v` for u32, `(v | 0) === v` for i32). Returns the offset after the body.
 */
function compileWriter(schema: MessageSchema): BodyWriter {
  const lines = ["let v;"];
  let at = 0;
  for (const field of schema.fields) {
    const name = field.name;
    if (!SAFE_NAME.test(name)) throw new Error(`bad field name in schema ${schema.name}`);
    if (field.kind === "u32") {
      lines.push(`v = m.${name}; if (v >>> 0 !== v) fail("${name}", v); view.setUint32(at + ${at}, v, true);`);
    } else if (field.kind === "i32") {
      lines.push(`v = m.${name}; if ((v | 0) !== v) fail("${name}", v); view.setInt32(at + ${at}, v, true);`);
    } else {
      lines.push(
        `v = m.${name}; if (!(v instanceof Uint8Array) || v.length > ${field.size}) fail("${name}", v);`,
        `target.set(v, at + ${at}); target.fill(0, at + ${at} + v.length, at + ${at + field.size});`,
      );
    }
    at += field.size;
  }
  if (schema.tail === null) {
    lines.push(`return at + ${at};`);
  } else if (schema.tail.kind === "u8") {
    lines.push(`v = m.${schema.tail.name}; target.set(v, at + ${at}); return at + ${at} + v.length;`);
  } else {
    lines.push(
      `v = m.${schema.tail.name}; let p = at + ${at};`,
      "for (let i = 0; i < v.length; i++, p += 4) view.setUint32(p, v[i], true);",
      "return p;",
    );
  }
  return new Function("view", "target", "at", "m", "fail", lines.join("\n")) as BodyWriter;
}

const writers: BodyWriter[] = [];
for (const name of MESSAGE_NAMES) {
  const schema = MESSAGE_SCHEMAS[name] as MessageSchema;
  writers[schema.code] = compileWriter(schema);
}

function failField(schema: MessageSchema): (field: string, value: unknown) => never {
  return (field, value) => {
    throw new RangeError(`${schema.name}.${field} does not fit its field: ${String(value)}`);
  };
}
const failers: Array<(field: string, value: unknown) => never> = [];
for (const name of MESSAGE_NAMES)
  failers[MESSAGE_SCHEMAS[name].code] = failField(MESSAGE_SCHEMAS[name] as MessageSchema);

/** Which wire types an encoder with these options may write (index = type code). */
function allowedTypes(options: EncodeOptions): Uint8Array {
  const version = options.version ?? QUBES_GUID_PROTOCOL_VERSION;
  const allowed = new Uint8Array(256);
  for (const name of MESSAGE_NAMES) {
    const schema = MESSAGE_SCHEMAS[name];
    if (schema.obsolete && options.allowObsolete !== true) continue;
    if (options.anyDirection !== true && !maySend(options.from, name, version)) continue;
    allowed[schema.code] = 1;
  }
  return allowed;
}

const schemaByName = new Map<string, MessageSchema>(
  MESSAGE_NAMES.map((name) => [name, MESSAGE_SCHEMAS[name] as MessageSchema]),
);

function schemaOf(message: Message): MessageSchema {
  const schema = schemaByName.get(message.type);
  if (schema === undefined) throw new TypeError(`unknown message type ${String(message.type)}`);
  return schema;
}

function refuse(schema: MessageSchema, options: EncodeOptions): never {
  const version = options.version ?? QUBES_GUID_PROTOCOL_VERSION;
  if (schema.obsolete && options.allowObsolete !== true)
    throw new TypeError(`MSG_${schema.name} is obsolete and never sent`);
  throw new TypeError(`the ${options.from} does not send MSG_${schema.name} at protocol ${formatVersion(version)}`);
}

/** Writes header and body at `offset`; `target` must have room for `bodyLength` + 12 bytes. */
function writeMessage(
  schema: MessageSchema,
  message: Message,
  view: DataView,
  target: Uint8Array,
  offset: number,
  bodyLength: number,
  version: number,
): number {
  let window = message.window;
  if (window >>> 0 !== window) throw new RangeError(`${schema.name}.window does not fit its field: ${String(window)}`);
  // Before 1.2 the length travels in `window`; we also keep it in untrusted_len, which old readers ignore.
  if (schema.tail?.kind === "u8" && version < VERSION_CLIPBOARD_LEN_IN_HEADER) window = bodyLength;
  view.setUint32(offset, schema.code, true);
  view.setUint32(offset + 4, window, true);
  view.setUint32(offset + 8, bodyLength, true);
  const code = schema.code;
  return (writers[code] as BodyWriter)(view, target, offset + MSG_HEADER_SIZE, message, failers[code] as never);
}

function bodyLengthOf(schema: MessageSchema, message: Message): number {
  return schema.tail === null ? schema.fixedSize : encodedSize(message) - MSG_HEADER_SIZE;
}

/**
 * Writes `message` (header and body) at `offset` of `target` and returns the
 * offset after it; the caller sizes `target` with {@link encodedSize}. Throws on
 * programmer errors: a value that does not fit its field, a message the side
 * does not send (or not at this version), an obsolete message. For streams of
 * messages, {@link MessageEncoder} is faster.
 */
export function encodeInto(message: Message, target: Uint8Array, offset: number, options: EncodeOptions): number {
  const schema = schemaOf(message);
  if (allowedTypes(options)[schema.code] !== 1) refuse(schema, options);
  const bodyLength = bodyLengthOf(schema, message);
  if (!Number.isInteger(offset) || offset < 0 || offset + MSG_HEADER_SIZE + bodyLength > target.length) {
    throw new RangeError(`encoding MSG_${schema.name} needs ${MSG_HEADER_SIZE + bodyLength} bytes at ${offset}`);
  }
  const view = new DataView(target.buffer, target.byteOffset, target.byteLength);
  return writeMessage(
    schema,
    message,
    view,
    target,
    offset,
    bodyLength,
    options.version ?? QUBES_GUID_PROTOCOL_VERSION,
  );
}

/**
 * An encoder for one side of one connection: appends messages to its own
 * growing buffer, checked against the side and version once per type instead
 * of once per call. What gui-agent and guid use to build what they write.
 */
export class MessageEncoder {
  private readonly options: EncodeOptions;
  private readonly version: number;
  private readonly allowed: Uint8Array;
  private buffer: Uint8Array;
  private view: DataView;
  private used = 0;

  constructor(options: EncodeOptions, initialCapacity = 1 << 16) {
    this.options = { ...options };
    this.version = options.version ?? QUBES_GUID_PROTOCOL_VERSION;
    this.allowed = allowedTypes(options);
    this.buffer = new Uint8Array(Math.max(64, initialCapacity));
    this.view = new DataView(this.buffer.buffer);
  }

  /** Appends one message; throws on programmer errors as {@link encodeInto} does (nothing is appended then). */
  encode(message: Message): this {
    const schema = schemaOf(message);
    if (this.allowed[schema.code] !== 1) refuse(schema, this.options);
    const bodyLength = bodyLengthOf(schema, message);
    const needed = this.used + MSG_HEADER_SIZE + bodyLength;
    if (needed > this.buffer.length) this.grow(needed);
    const end = writeMessage(schema, message, this.view, this.buffer, this.used, bodyLength, this.version);
    this.used = end;
    return this;
  }

  /** Bytes encoded so far. */
  get length(): number {
    return this.used;
  }

  /** A view of the bytes encoded so far; valid until the next encode or clear. */
  bytes(): Uint8Array {
    return this.buffer.subarray(0, this.used);
  }

  /** Returns a copy of the bytes encoded so far and starts over. */
  take(): Uint8Array {
    const out = this.buffer.slice(0, this.used);
    this.used = 0;
    return out;
  }

  /** Forgets the bytes encoded so far (the buffer is reused). */
  clear(): void {
    this.used = 0;
  }

  private grow(needed: number): void {
    const next = new Uint8Array(Math.max(needed, this.buffer.length * 2));
    next.set(this.buffer.subarray(0, this.used));
    this.buffer = next;
    this.view = new DataView(next.buffer);
  }
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
