/**
 * The trace tool's JSON form of messages: `type` without `MSG_`, then
 * `window`, then the body under the upstream struct's field names. It is
 * lossless, so `encode` of `decode`'s output gives back the same bytes:
 * char arrays print as text when they are clean UTF-8 followed by NULs, and
 * as `<field>_hex` (every byte) otherwise. `proxy` prints the same objects
 * with `time` and `from` in front, and events beside them; {@link captureLine}
 * reads either form back.
 */
import { MESSAGE_SCHEMAS, type Decoded, type MessageName, type MessageSchema, type Side } from "../index.ts";
import type { Result } from "../errors.ts";

/** One JSON object as printed on a trace line. */
export type JsonMessage = Record<string, unknown>;

const strictUtf8 = new TextDecoder("utf-8", { fatal: true });

function toHex(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("hex");
}

function charArrayToJson(out: JsonMessage, name: string, bytes: Uint8Array): void {
  const nul = bytes.indexOf(0);
  const end = nul === -1 ? bytes.length : nul;
  let clean = bytes.subarray(end).every((b) => b === 0);
  let text = "";
  if (clean) {
    try {
      text = strictUtf8.decode(bytes.subarray(0, end));
    } catch {
      clean = false;
    }
  }
  if (clean) out[name] = text;
  else out[`${name}_hex`] = toHex(bytes);
}

/** The JSON form of a decoded message or handshake structure. */
export function messageToJson(message: Decoded): JsonMessage {
  if (message.type === "VERSION" || message.type === "XCONF") return { ...message };
  const schema = MESSAGE_SCHEMAS[message.type] as MessageSchema;
  const fields = message as unknown as Record<string, unknown>;
  const out: JsonMessage = { type: message.type, window: message.window };
  for (const field of schema.fields) {
    const value = fields[field.name];
    if (field.kind !== "bytes") out[field.name] = value;
    else if (message.type === "KEYMAP_NOTIFY") out[field.name] = toHex(value as Uint8Array);
    else charArrayToJson(out, field.name, value as Uint8Array);
  }
  if (schema.tail !== null) {
    const tail = fields[schema.tail.name];
    if (tail instanceof Uint32Array) out[schema.tail.name] = Array.from(tail);
    else out[`${schema.tail.name}_base64`] = Buffer.from(tail as Uint8Array).toString("base64");
  }
  return out;
}

function isInteger(value: unknown, low: number, high: number): value is number {
  return typeof value === "number" && Number.isInteger(value) && value >= low && value <= high;
}

function parseHex(text: unknown, size: number | null): Uint8Array | null {
  if (typeof text !== "string" || !/^(?:[0-9a-fA-F]{2})*$/.test(text)) return null;
  if (size !== null && text.length !== size * 2) return null;
  return Uint8Array.from(Buffer.from(text, "hex"));
}

/**
 * Parses one JSON trace object back into a message. Every field must be
 * present with a value that fits; unknown keys are refused so typos show.
 */
export function messageFromJson(json: unknown): Result<Decoded, string> {
  const fail = (reason: string): Result<Decoded, string> => ({ ok: false, error: reason });
  if (typeof json !== "object" || json === null || Array.isArray(json)) return fail("not a JSON object");
  const input = json as Record<string, unknown>;
  const type = input.type;
  if (typeof type !== "string") return fail('missing "type"');
  const used = new Set<string>(["type"]);
  const u32 = (name: string): number | string => {
    used.add(name);
    const value = input[name];
    return isInteger(value, 0, 0xffffffff) ? value : `"${name}" must be an integer in 0..4294967295`;
  };
  const i32 = (name: string): number | string => {
    used.add(name);
    const value = input[name];
    return isInteger(value, -0x80000000, 0x7fffffff)
      ? value
      : `"${name}" must be an integer in -2147483648..2147483647`;
  };
  const out: Record<string, unknown> = { type };
  const take = (name: string, value: unknown): string | null => {
    if (typeof value === "string") return value;
    out[name] = value;
    return null;
  };

  if (type === "VERSION" || type === "XCONF") {
    for (const name of type === "VERSION" ? ["version"] : ["w", "h", "depth", "mem"]) {
      const problem = take(name, u32(name));
      if (problem !== null) return fail(problem);
    }
  } else {
    if (!Object.hasOwn(MESSAGE_SCHEMAS, type)) return fail(`unknown message type "${type}"`);
    const schema = MESSAGE_SCHEMAS[type as MessageName] as MessageSchema;
    const problem = take("window", u32("window"));
    if (problem !== null) return fail(problem);
    for (const field of schema.fields) {
      if (field.kind === "u32" || field.kind === "i32") {
        const fieldProblem = take(field.name, field.kind === "u32" ? u32(field.name) : i32(field.name));
        if (fieldProblem !== null) return fail(fieldProblem);
        continue;
      }
      if (type === "KEYMAP_NOTIFY") {
        used.add(field.name);
        const keys = parseHex(input[field.name], field.size);
        if (keys === null) return fail(`"${field.name}" must be ${field.size * 2} hex digits`);
        out[field.name] = keys;
        continue;
      }
      const hexName = `${field.name}_hex`;
      if (input[hexName] !== undefined) {
        used.add(hexName);
        const raw = parseHex(input[hexName], field.size);
        if (raw === null) return fail(`"${hexName}" must be ${field.size * 2} hex digits`);
        out[field.name] = raw;
        continue;
      }
      used.add(field.name);
      const text = input[field.name];
      if (typeof text !== "string") return fail(`"${field.name}" must be a string (or "${hexName}")`);
      const encoded = new TextEncoder().encode(text);
      if (encoded.length > field.size) return fail(`"${field.name}" is longer than ${field.size} bytes`);
      const padded = new Uint8Array(field.size);
      padded.set(encoded);
      out[field.name] = padded;
    }
    if (schema.tail !== null && schema.tail.kind === "u32") {
      const name = schema.tail.name;
      used.add(name);
      const list = input[name];
      if (!Array.isArray(list) || !list.every((value) => isInteger(value, 0, 0xffffffff))) {
        return fail(`"${name}" must be an array of integers in 0..4294967295`);
      }
      out[name] = Uint32Array.from(list as number[]);
    } else if (schema.tail !== null) {
      const name = `${schema.tail.name}_base64`;
      used.add(name);
      const text = input[name];
      if (typeof text !== "string" || !/^[A-Za-z0-9+/]*={0,2}$/.test(text) || text.length % 4 !== 0) {
        return fail(`"${name}" must be base64`);
      }
      out[schema.tail.name] = Uint8Array.from(Buffer.from(text, "base64"));
    }
  }
  for (const key of Object.keys(input)) {
    if (!used.has(key)) return fail(`unexpected field "${key}" in ${type}`);
  }
  return { ok: true, value: out as unknown as Decoded };
}

/** What one line of a capture (decode's or proxy's output) holds for the direction being encoded. */
export type CaptureLine =
  /** A message of this direction, in decode's form (proxy's `time` and `from` removed), for messageFromJson. */
  | { kind: "message"; json: unknown }
  /** A proxy event (connected, closed) or a message of the other direction. */
  | { kind: "skip" }
  /** A place where proxy could not decode the bytes: they are not in the capture. */
  | { kind: "gap"; reason: string };

/**
 * Sorts one JSON line of a capture for `side`: decode's lines are messages;
 * proxy's lines are messages of either direction (`from`), events, or decode
 * errors. `time` is dropped; a `from` that is not agent or daemon is left in,
 * so messageFromJson names it.
 */
export function captureLine(json: unknown, side: Side): CaptureLine {
  if (typeof json !== "object" || json === null || Array.isArray(json)) return { kind: "message", json };
  const input = json as Record<string, unknown>;
  if (typeof input.event === "string") return { kind: "skip" };
  const { time: _time, from, ...rest } = input;
  if ((from === "agent" || from === "daemon") && from !== side) return { kind: "skip" };
  if (from === side && input.type === undefined && typeof input.error === "string") {
    const offset = typeof input.offset === "number" ? ` at offset ${input.offset}` : "";
    const reason = typeof input.reason === "string" ? `: ${input.reason}` : "";
    return { kind: "gap", reason: `${input.error}${offset}${reason}` };
  }
  return { kind: "message", json: from === undefined || from === side ? rest : { from, ...rest } };
}
