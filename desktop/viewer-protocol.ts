/**
 * The viewer's wire format (described in viewer.ts): the encoder of the
 * binary frames the server sends, and the validator of the JSON messages a
 * browser sends. Pure: no I/O. Every browser message is hostile; the
 * validator returns a result and never throws.
 */
import type { Rect } from "../compositor/index.ts";
import { evdevKeyOf } from "./keycodes.ts";

/** Bytes before the first rectangle of a binary frame: u32 seq, u32 rect count. */
export const FRAME_HEADER_BYTES = 8;
/** Bytes before each rectangle's pixels: u32 x, y, width, height. */
export const RECT_HEADER_BYTES = 16;

/** evdev button codes (linux/input-event-codes.h). */
export const BTN_LEFT = 0x110;
export const BTN_RIGHT = 0x111;
export const BTN_MIDDLE = 0x112;

/** Browser `MouseEvent.button` (0 main, 1 auxiliary, 2 secondary) → evdev code. */
const BUTTON_CODES: readonly number[] = [BTN_LEFT, BTN_MIDDLE, BTN_RIGHT];

/** The largest |coordinate| accepted before clamping: beyond it a message is not a slightly-outside pointer but garbage. */
const MAX_COORDINATE = 1 << 16;
/** The most wheel notches one message may carry. */
export const MAX_WHEEL_STEPS = 16;
/** The longest `KeyboardEvent.code` accepted (the longest known is 20 characters). */
const MAX_KEY_CODE_LENGTH = 32;

/**
 * A validated browser message. Coordinates are now integers with
 * 0 ≤ x < width and 0 ≤ y < height of the output the message was checked
 * against; codes are evdev codes.
 */
export type ViewerClientMessage =
  | { readonly type: "ack"; readonly seq: number }
  | { readonly type: "move"; readonly x: number; readonly y: number }
  | { readonly type: "leave" }
  | {
      readonly type: "button";
      readonly x: number;
      readonly y: number;
      readonly code: number;
      readonly pressed: boolean;
    }
  | { readonly type: "wheel"; readonly x: number; readonly y: number; readonly axis: 0 | 1; readonly steps: number }
  | { readonly type: "key"; readonly code: number; readonly pressed: boolean }
  | { readonly type: "releaseAll" };

/** What the validator says about one text message. */
export type ParseResult =
  | { readonly ok: true; readonly message: ViewerClientMessage }
  /** Valid JSON but not a message we take: dropped (log at debug), the connection stays. */
  | { readonly ok: false; readonly fatal: false; readonly reason: string }
  /** Not JSON at all: the client is broken or hostile and is disconnected. */
  | { readonly ok: false; readonly fatal: true; readonly reason: string };

function drop(reason: string): ParseResult {
  return { ok: false, fatal: false, reason };
}

/** A finite number within the plausible range, clamped to [0, size - 1] and floored; undefined otherwise. */
function coordinate(untrusted: unknown, size: number): number | undefined {
  if (typeof untrusted !== "number" || !Number.isFinite(untrusted)) return undefined;
  if (untrusted < -MAX_COORDINATE || untrusted > MAX_COORDINATE) return undefined;
  // Clamp: a drag may leave the canvas; now 0 ≤ value ≤ size - 1.
  return Math.min(Math.max(Math.floor(untrusted), 0), Math.max(size - 1, 0));
}

/**
 * Validates one text message from a browser against the current output
 * size. Never throws: unparsable text is fatal, anything else that is not
 * exactly a known message is dropped.
 */
export function parseClientMessage(untrustedText: string, width: number, height: number): ParseResult {
  let untrusted: unknown;
  try {
    untrusted = JSON.parse(untrustedText);
  } catch {
    return { ok: false, fatal: true, reason: "not JSON" };
  }
  if (typeof untrusted !== "object" || untrusted === null || Array.isArray(untrusted)) return drop("not an object");
  const fields = untrusted as Record<string, unknown>;
  const type = fields.type;
  switch (type) {
    case "ack": {
      const seq = fields.seq;
      if (typeof seq !== "number" || !Number.isInteger(seq) || seq < 0 || seq > 0xffffffff) return drop("bad seq");
      return { ok: true, message: { type, seq } };
    }
    case "move": {
      const x = coordinate(fields.x, width);
      const y = coordinate(fields.y, height);
      if (x === undefined || y === undefined) return drop("bad coordinates");
      return { ok: true, message: { type, x, y } };
    }
    case "leave":
    case "releaseAll":
      return { ok: true, message: { type } };
    case "button": {
      const x = coordinate(fields.x, width);
      const y = coordinate(fields.y, height);
      if (x === undefined || y === undefined) return drop("bad coordinates");
      const button = fields.button;
      const code = typeof button === "number" && Number.isInteger(button) ? BUTTON_CODES[button] : undefined;
      if (code === undefined) return drop("bad button");
      if (typeof fields.pressed !== "boolean") return drop("bad pressed");
      return { ok: true, message: { type, x, y, code, pressed: fields.pressed } };
    }
    case "wheel": {
      const x = coordinate(fields.x, width);
      const y = coordinate(fields.y, height);
      if (x === undefined || y === undefined) return drop("bad coordinates");
      const axis = fields.axis;
      if (axis !== 0 && axis !== 1) return drop("bad axis");
      const steps = fields.steps;
      if (typeof steps !== "number" || !Number.isInteger(steps) || steps === 0 || Math.abs(steps) > MAX_WHEEL_STEPS) {
        return drop("bad steps");
      }
      return { ok: true, message: { type, x, y, axis, steps } };
    }
    case "key": {
      const name = fields.code;
      if (typeof name !== "string" || name.length > MAX_KEY_CODE_LENGTH) return drop("bad key code");
      const code = evdevKeyOf(name);
      if (code === undefined) return drop("unknown key code");
      if (typeof fields.pressed !== "boolean") return drop("bad pressed");
      return { ok: true, message: { type, code, pressed: fields.pressed } };
    }
    default:
      return drop("unknown type");
  }
}

/** The bytes a frame of `rects` takes on the wire. */
export function frameSize(rects: readonly Rect[]): number {
  let size = FRAME_HEADER_BYTES;
  for (const rect of rects) size += RECT_HEADER_BYTES + rect.width * rect.height * 4;
  return size;
}

/**
 * Encodes a binary frame: `seq`, then each rectangle with its rows copied
 * out of `pixels` (BGRX, `stride` bytes per row). The rectangles must lie
 * inside the buffer (the caller clipped them to the output).
 */
export function encodeFrame(seq: number, rects: readonly Rect[], pixels: Buffer, stride: number): Buffer {
  const frame = Buffer.allocUnsafe(frameSize(rects));
  frame.writeUInt32LE(seq >>> 0, 0);
  frame.writeUInt32LE(rects.length, 4);
  let offset = FRAME_HEADER_BYTES;
  for (const rect of rects) {
    frame.writeUInt32LE(rect.x, offset);
    frame.writeUInt32LE(rect.y, offset + 4);
    frame.writeUInt32LE(rect.width, offset + 8);
    frame.writeUInt32LE(rect.height, offset + 12);
    offset += RECT_HEADER_BYTES;
    const rowBytes = rect.width * 4;
    const start = rect.y * stride + rect.x * 4;
    if (rowBytes === stride) {
      // Whole rows: one contiguous copy.
      pixels.copy(frame, offset, start, start + rowBytes * rect.height);
      offset += rowBytes * rect.height;
    } else {
      for (let row = 0; row < rect.height; row++) {
        const from = start + row * stride;
        pixels.copy(frame, offset, from, from + rowBytes);
        offset += rowBytes;
      }
    }
  }
  return frame;
}
