/**
 * The streaming decoder: a state machine fed arbitrary chunks of one
 * direction's byte stream (one byte at a time or many messages at once) that
 * yields whole messages. Every length on the wire is hostile: it is bounded
 * for its type before a single body byte is kept, so the decoder never holds
 * more than one maximal message (QUBES_MAX_MSG_WINDOW_DUMP_LEN) and never
 * sizes a buffer from an unchecked number.
 */
import {
  MAX_CLIPBOARD_BUFFER_SIZE,
  MAX_CLIPBOARD_SIZE,
  MAX_GRANT_REFS_COUNT,
  MAX_MFN_COUNT,
  MSG_HEADER_SIZE,
  MSG_XCONF_SIZE,
  QUBES_GUID_PROTOCOL_VERSION,
  QUBES_MAX_MSG_WINDOW_DUMP_LEN,
  SHM_CMD_SIZE,
  VERSION_BIDIRECTIONAL_NEGOTIATION,
  VERSION_CLIPBOARD_LEN_IN_HEADER,
  VERSION_DESTROY_ACK,
  VERSION_LARGE_CLIPBOARD,
  VERSION_STRICT_LENGTHS,
  WINDOW_DUMP_HDR_SIZE,
  formatVersion,
} from "./constants.ts";
import { readBody, readBodyOfType, readXconf } from "./codec.ts";
import { ClampNotice, DroppedMessage, ProtocolViolation, type ProtocolError } from "./errors.ts";
import { acceptDaemonVersion, negotiateVersion } from "./handshake.ts";
import {
  MESSAGE_NAMES,
  MESSAGE_SCHEMAS,
  schemaForCode,
  type Decoded,
  type MessageSchema,
  type Side,
} from "./messages.ts";

/** Options of a {@link StreamDecoder}. */
export interface DecoderOptions {
  /** Whose bytes these are: `agent` (the daemon decodes) or `daemon` (the agent decodes). */
  from: Side;
  /**
   * The negotiated version; with `handshake`, the receiver's own version
   * instead (the daemon's maximum, or the version the agent sent). Default 1.8.
   */
  version?: number;
  /** The stream starts with the headerless handshake (version word, then xconf from the daemon). */
  handshake?: boolean;
}

/** One item the decoder yields: a message (maybe with a notice) or an error, with its stream offset. */
export type DecodeResult =
  | { ok: true; value: Decoded; offset: number; warning?: ClampNotice }
  | { ok: false; error: ProtocolError; offset: number };

/**
 * Receives what a decoder decodes, as soon as each item is complete; the
 * allocation-free alternative to {@link DecodeResult} objects.
 */
export interface DecodeHandler {
  /** A whole message (or handshake structure) starting at stream `offset`; `warning` when a length was tolerated. */
  message(value: Decoded, offset: number, warning: ClampNotice | undefined): void;
  /** A dropped item (decoding goes on) or a fatal error (decoding stops). */
  error(error: ProtocolError, offset: number): void;
}

/** Largest number of bytes a decoder ever buffers: one maximal message (WINDOW_DUMP, 393 244 bytes). */
export const MAX_DECODER_BUFFER = QUBES_MAX_MSG_WINDOW_DUMP_LEN;

const MAX_WINDOW_DUMP_BODY = WINDOW_DUMP_HDR_SIZE + MAX_GRANT_REFS_COUNT * 4;
const MAX_MFNDUMP_BODY = SHM_CMD_SIZE + MAX_MFN_COUNT * 4;

const enum State {
  Version,
  Xconf,
  Header,
  Body,
  Skip,
  Failed,
}

/** What the framing rules decide for one header. */
type Framing =
  | { kind: "read"; schema: MessageSchema; length: number; warning?: ClampNotice }
  | { kind: "skip"; length: number; error: DroppedMessage }
  | { kind: "fail"; error: ProtocolViolation };

/**
 * A decoder for one direction of one connection. Feed it chunks with
 * {@link StreamDecoder.push} (or {@link StreamDecoder.feed} with a callback);
 * after a fatal error it stops and yields nothing more.
 */
export class StreamDecoder {
  /** Whose bytes this decoder reads. */
  readonly from: Side;
  private currentVersion: number;
  private state: State;
  private readonly small = new Uint8Array(MSG_XCONF_SIZE);
  private readonly smallView = new DataView(this.small.buffer);
  private smallHave = 0;
  private body: Uint8Array | null = null;
  private bodyHave = 0;
  private schema: MessageSchema | null = null;
  private window = 0;
  private warning: ClampNotice | undefined;
  private skipLeft = 0;
  private position = 0;
  private messageStart = 0;
  private failure: ProtocolError | null = null;
  /** Per wire type: the exact body length the fast path may read without framing objects, or -1. */
  private fastLength = new Int32Array(256).fill(-1);

  constructor(options: DecoderOptions) {
    this.from = options.from;
    this.currentVersion = options.version ?? QUBES_GUID_PROTOCOL_VERSION;
    if (options.handshake === true) {
      this.state =
        options.from === "agent" || this.currentVersion >= VERSION_BIDIRECTIONAL_NEGOTIATION
          ? State.Version
          : State.Xconf;
    } else {
      this.state = State.Header;
    }
    this.computeFastPath();
  }

  /** Fixed-size types this side may send at this version take the fast path; the rest go through frame(). */
  private computeFastPath(): void {
    this.fastLength.fill(-1);
    for (const name of MESSAGE_NAMES) {
      const schema = MESSAGE_SCHEMAS[name] as MessageSchema;
      if (schema.tail !== null || !schema.from.includes(this.from)) continue;
      if (this.from === "daemon") {
        const since = schema.name === "DESTROY" ? VERSION_DESTROY_ACK : schema.since;
        if (this.currentVersion < since) continue;
      }
      this.fastLength[schema.code] = schema.fixedSize;
    }
  }

  /** The protocol version in force (after the handshake: the negotiated one). */
  get version(): number {
    return this.currentVersion;
  }

  /** The fatal error that stopped the decoder, or null while it runs. */
  get failed(): ProtocolError | null {
    return this.failure;
  }

  /** Bytes consumed so far (the stream offset of the next byte). */
  get offset(): number {
    return this.position;
  }

  /** Bytes held right now for an incomplete message; never above {@link MAX_DECODER_BUFFER}. */
  get bufferedBytes(): number {
    return this.smallHave + (this.body === null ? 0 : this.body.length);
  }

  /** True when no partial message is pending (the stream ends cleanly here). */
  get atBoundary(): boolean {
    return this.smallHave === 0 && this.body === null && this.skipLeft === 0 && this.state !== State.Failed;
  }

  /** Decodes what `chunk` completes and returns the results in stream order. */
  push(chunk: Uint8Array): DecodeResult[] {
    const out: DecodeResult[] = [];
    this.feed(chunk, (result) => out.push(result));
    return out;
  }

  /** Like {@link push} but hands each result to `sink` as soon as it is complete. */
  feed(chunk: Uint8Array, sink: (result: DecodeResult) => void): void {
    this.decode(chunk, {
      message: (value, offset, warning) =>
        sink(warning === undefined ? { ok: true, value, offset } : { ok: true, value, offset, warning }),
      error: (error, offset) => sink({ ok: false, error, offset }),
    });
  }

  /** Decodes what `chunk` completes, calling `handler` for each item in stream order. */
  decode(chunk: Uint8Array, handler: DecodeHandler): void {
    const view = new DataView(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    const end = chunk.length;
    const fastLength = this.fastLength;
    let at = 0;
    while (at < end) {
      switch (this.state) {
        case State.Failed:
          this.position += at;
          return;
        case State.Header: {
          // Fast path: whole fixed-size messages of the expected length, straight from the chunk.
          while (this.smallHave === 0 && end - at >= MSG_HEADER_SIZE) {
            const code = view.getUint32(at, true);
            const length = view.getUint32(at + 8, true);
            if (code > 255 || fastLength[code] !== length || end - at - MSG_HEADER_SIZE < length) break;
            const value = readBodyOfType(code, view.getUint32(at + 4, true), view, at + MSG_HEADER_SIZE, length);
            handler.message(value, this.position + at, undefined);
            at += MSG_HEADER_SIZE + length;
          }
          if (at >= end) break;
          if (this.smallHave === 0 && end - at >= MSG_HEADER_SIZE) {
            this.messageStart = this.position + at;
            const framing = this.frame(
              view.getUint32(at, true),
              view.getUint32(at + 4, true),
              view.getUint32(at + 8, true),
            );
            at += MSG_HEADER_SIZE;
            if (framing.kind === "read" && end - at >= framing.length) {
              const value = readBody(framing.schema, this.window, view, at, framing.length);
              at += framing.length;
              handler.message(value, this.messageStart, framing.warning);
            } else {
              this.begin(framing, handler);
            }
            break;
          }
          const take = Math.min(MSG_HEADER_SIZE - this.smallHave, end - at);
          if (this.smallHave === 0) this.messageStart = this.position + at;
          this.small.set(chunk.subarray(at, at + take), this.smallHave);
          this.smallHave += take;
          at += take;
          if (this.smallHave === MSG_HEADER_SIZE) {
            this.smallHave = 0;
            const v = this.smallView;
            this.begin(this.frame(v.getUint32(0, true), v.getUint32(4, true), v.getUint32(8, true)), handler);
          }
          break;
        }
        case State.Body: {
          const body = this.body as Uint8Array;
          const take = Math.min(body.length - this.bodyHave, end - at);
          body.set(chunk.subarray(at, at + take), this.bodyHave);
          this.bodyHave += take;
          at += take;
          if (this.bodyHave === body.length) this.finishBody(handler);
          break;
        }
        case State.Skip: {
          const take = Math.min(this.skipLeft, end - at);
          this.skipLeft -= take;
          at += take;
          if (this.skipLeft === 0) this.state = State.Header;
          break;
        }
        case State.Version:
        case State.Xconf: {
          const need = this.state === State.Version ? 4 : MSG_XCONF_SIZE;
          if (this.smallHave === 0) this.messageStart = this.position + at;
          const take = Math.min(need - this.smallHave, end - at);
          this.small.set(chunk.subarray(at, at + take), this.smallHave);
          this.smallHave += take;
          at += take;
          if (this.smallHave === need) {
            this.smallHave = 0;
            this.handshakeStep(handler);
          }
          break;
        }
      }
    }
    this.position += end;
  }

  private handshakeStep(handler: DecodeHandler): void {
    const offset = this.messageStart;
    if (this.state === State.Xconf) {
      handler.message(readXconf(this.smallView, 0), offset, undefined);
      this.state = State.Header;
      return;
    }
    const word = this.smallView.getUint32(0, true);
    // Negotiate first, so that `version` is already the negotiated one while the VERSION item is handled.
    const outcome =
      this.from === "agent"
        ? negotiateVersion(word, this.currentVersion)
        : acceptDaemonVersion(word, this.currentVersion);
    if (outcome.ok) {
      this.currentVersion = typeof outcome.value === "number" ? outcome.value : outcome.value.version;
      this.computeFastPath();
      this.state = this.from === "agent" ? State.Header : State.Xconf;
    }
    handler.message({ type: "VERSION", version: word }, offset, undefined);
    if (!outcome.ok) this.fail(outcome.error, handler);
  }

  private begin(framing: Framing, handler: DecodeHandler): void {
    if (framing.kind === "fail") return this.fail(framing.error, handler);
    if (framing.kind === "skip") {
      handler.error(framing.error, this.messageStart);
      this.skipLeft = framing.length;
      this.state = framing.length === 0 ? State.Header : State.Skip;
      return;
    }
    this.schema = framing.schema;
    this.warning = framing.warning;
    // framing.length is bounded by frame(): at most one maximal message.
    this.body = new Uint8Array(framing.length);
    this.bodyHave = 0;
    this.state = State.Body;
    if (framing.length === 0) this.finishBody(handler);
  }

  private finishBody(handler: DecodeHandler): void {
    const body = this.body as Uint8Array;
    const schema = this.schema as MessageSchema;
    const value = readBody(schema, this.window, new DataView(body.buffer), 0, body.length);
    this.body = null;
    this.schema = null;
    this.state = State.Header;
    const warning = this.warning;
    this.warning = undefined;
    handler.message(value, this.messageStart, warning);
  }

  private fail(error: ProtocolViolation, handler: DecodeHandler): void {
    this.failure = error;
    this.state = State.Failed;
    this.body = null;
    this.smallHave = 0;
    handler.error(error, this.messageStart);
  }

  /** The framing rules of one header: which schema, how many body bytes, or why not. */
  private frame(code: number, window: number, untrustedLen: number): Framing {
    this.window = window;
    const schema = schemaForCode(code);
    const version = this.currentVersion;
    if (schema === undefined || !schema.from.includes(this.from)) {
      const what = schema === undefined ? `unknown message type ${code}` : `MSG_${schema.name} (${code})`;
      const obsolete = schema?.obsolete === true ? " is obsolete and" : "";
      const reason = schema === undefined ? what : `${what}${obsolete} is not sent by the ${this.from}`;
      if (this.from === "agent") return { kind: "fail", error: new ProtocolViolation("UNKNOWN_TYPE", reason) };
      return { kind: "skip", length: untrustedLen, error: new DroppedMessage("UNKNOWN_TYPE", reason, false) };
    }
    if (this.from === "daemon") {
      const since = schema.name === "DESTROY" ? VERSION_DESTROY_ACK : schema.since;
      if (version < since) {
        return {
          kind: "skip",
          length: untrustedLen,
          error: new DroppedMessage(
            "NOT_IN_VERSION",
            `MSG_${schema.name} is not sent by a daemon at protocol ${formatVersion(version)}`,
            false,
          ),
        };
      }
    }
    if (schema.tail === null) {
      if (untrustedLen === schema.fixedSize) return { kind: "read", schema, length: untrustedLen };
      const reason = `MSG_${schema.name} with untrusted_len ${untrustedLen}, expected ${schema.fixedSize}`;
      if (version >= VERSION_STRICT_LENGTHS) {
        return { kind: "fail", error: new ProtocolViolation("BAD_LENGTH", reason) };
      }
      return {
        kind: "read",
        schema,
        length: schema.fixedSize,
        warning: new ClampNotice(
          "BAD_LENGTH",
          `${reason}; tolerated below 1.6: now ${schema.fixedSize} body bytes are read, as upstream does`,
        ),
      };
    }
    if (schema.name === "CLIPBOARD_DATA") {
      const length = version < VERSION_CLIPBOARD_LEN_IN_HEADER ? window : untrustedLen;
      const limit = version >= VERSION_LARGE_CLIPBOARD ? MAX_CLIPBOARD_BUFFER_SIZE + 1 : MAX_CLIPBOARD_SIZE;
      if (length > limit) {
        return {
          kind: "fail",
          error: new ProtocolViolation(
            "CLIPBOARD_TOO_BIG",
            `MSG_CLIPBOARD_DATA of ${length} bytes exceeds ${limit} at protocol ${formatVersion(version)}`,
          ),
        };
      }
      return { kind: "read", schema, length };
    }
    const [minimum, maximum] =
      schema.name === "WINDOW_DUMP" ? [WINDOW_DUMP_HDR_SIZE, MAX_WINDOW_DUMP_BODY] : [SHM_CMD_SIZE, MAX_MFNDUMP_BODY];
    if (untrustedLen < minimum) {
      return {
        kind: "fail",
        error: new ProtocolViolation(
          "DUMP_TOO_SHORT",
          `MSG_${schema.name} with untrusted_len ${untrustedLen}, less than ${minimum}`,
        ),
      };
    }
    if (untrustedLen > maximum) {
      return {
        kind: "fail",
        error: new ProtocolViolation(
          "DUMP_TOO_BIG",
          `MSG_${schema.name} with untrusted_len ${untrustedLen}, more than ${maximum}`,
        ),
      };
    }
    if (untrustedLen % 4 !== 0) {
      return {
        kind: "fail",
        error: new ProtocolViolation(
          "DUMP_BAD_LENGTH",
          `MSG_${schema.name} with untrusted_len ${untrustedLen}, not a multiple of 4`,
        ),
      };
    }
    return { kind: "read", schema, length: untrustedLen };
  }
}
