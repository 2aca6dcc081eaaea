/**
 * The 26 message types of the Qubes GUI protocol as data: one TypeScript shape
 * per message and one schema table that the codec and the decoder interpret
 * (qubes-gui-protocol.md 1.5 and 1.6). Field names are the upstream C struct
 * field names, so a trace reads like the C headers. The one exception: a body
 * field called `type` is renamed (`event_type` in input events, `dump_type` in
 * WINDOW_DUMP) because `type` names the message.
 *
 * Every value in a decoded message is untrusted: it is exactly what the peer
 * put on the wire. Only validate.ts turns agent messages into trusted values.
 */
import {
  MSG_BUTTON,
  MSG_CLIPBOARD_DATA,
  MSG_CLIPBOARD_REQ,
  MSG_CLOSE,
  MSG_CONFIGURE,
  MSG_CREATE,
  MSG_CROSSING,
  MSG_CURSOR,
  MSG_DESTROY,
  MSG_DOCK,
  MSG_EXECUTE,
  MSG_FOCUS,
  MSG_KEYMAP_NOTIFY,
  MSG_KEYPRESS,
  MSG_MAP,
  MSG_MFNDUMP,
  MSG_MOTION,
  MSG_RESIZE,
  MSG_SHMIMAGE,
  MSG_UNMAP,
  MSG_WINDOW_DUMP,
  MSG_WINDOW_DUMP_ACK,
  MSG_WINDOW_FLAGS,
  MSG_WINDOW_HINTS,
  MSG_WMCLASS,
  MSG_WMNAME,
  protocolVersion,
  VERSION_CURSOR,
  VERSION_DESTROY_ACK,
  VERSION_WINDOW_DUMP_ACK,
} from "./constants.ts";

/** Which side sends a message: the agent (in the domain) or the daemon (GUI domain). */
export type Side = "agent" | "daemon";

/** Fields every message has: the header's `window` (the agent's window id; 0 = none / screen). */
interface Header {
  /** VM-side window id the message is about (header field 2). */
  window: number;
}

/** KEYPRESS (124), daemon → agent, since 1.0: a key went down or up. */
export interface KeypressMessage extends Header {
  type: "KEYPRESS";
  /** X event type: 2 KeyPress, 3 KeyRelease (upstream field `type`). */
  event_type: number;
  /** Pointer position, window-relative. */
  x: number;
  y: number;
  /** X modifier/button mask. */
  state: number;
  /** X11 keycode (evdev code + 8). */
  keycode: number;
}

/** BUTTON (125), daemon → agent, since 1.0: a pointer button went down or up. */
export interface ButtonMessage extends Header {
  type: "BUTTON";
  /** X event type: 4 ButtonPress, 5 ButtonRelease (upstream field `type`). */
  event_type: number;
  x: number;
  y: number;
  state: number;
  /** X button number (1 left, 2 middle, 3 right, 4..7 wheel). */
  button: number;
}

/** MOTION (126), daemon → agent, since 1.0: the pointer moved (window-relative). */
export interface MotionMessage extends Header {
  type: "MOTION";
  x: number;
  y: number;
  state: number;
  is_hint: number;
}

/** CROSSING (127), daemon → agent, since 1.0: the pointer entered or left a window. */
export interface CrossingMessage extends Header {
  type: "CROSSING";
  /** X event type: 7 EnterNotify, 8 LeaveNotify (upstream field `type`). */
  event_type: number;
  x: number;
  y: number;
  state: number;
  mode: number;
  detail: number;
  focus: number;
}

/** FOCUS (128), daemon → agent, since 1.0: keyboard focus in or out. */
export interface FocusMessage extends Header {
  type: "FOCUS";
  /** X event type: 9 FocusIn, 10 FocusOut (upstream field `type`). */
  event_type: number;
  mode: number;
  detail: number;
}

/** RESIZE (129), obsolete daemon → agent; decoded only so it can be refused precisely, never sent. */
export interface ResizeMessage extends Header {
  type: "RESIZE";
  width: number;
  height: number;
}

/** CREATE (130), agent → daemon, since 1.0: a new (unmapped) window; `parent` is ignored by daemons. */
export interface CreateMessage extends Header {
  type: "CREATE";
  x: number;
  y: number;
  width: number;
  height: number;
  parent: number;
  override_redirect: number;
}

/** DESTROY (131), agent → daemon since 1.0; daemon → agent as acknowledgement since 1.5. */
export interface DestroyMessage extends Header {
  type: "DESTROY";
}

/** MAP (132), agent → daemon and daemon → agent, since 1.0 (daemon leaves `transient_for` as garbage). */
export interface MapMessage extends Header {
  type: "MAP";
  transient_for: number;
  override_redirect: number;
}

/** UNMAP (133), agent → daemon, since 1.0: the window is hidden. */
export interface UnmapMessage extends Header {
  type: "UNMAP";
}

/** CONFIGURE (134), both directions, since 1.0: position and size (root-relative). */
export interface ConfigureMessage extends Header {
  type: "CONFIGURE";
  x: number;
  y: number;
  width: number;
  height: number;
  override_redirect: number;
}

/** MFNDUMP (135), deprecated agent → daemon (≤ 1.1 path): machine frames of a window; refused, never sent. */
export interface MfndumpMessage extends Header {
  type: "MFNDUMP";
  shmid: number;
  width: number;
  height: number;
  bpp: number;
  off: number;
  num_mfn: number;
  domid: number;
  /** The frame list as it came (`(untrusted_len − 28) / 4` entries, whatever `num_mfn` says). */
  mfns: Uint32Array;
}

/** SHMIMAGE (136), agent → daemon, since 1.0: a window-relative rectangle to repaint from shared memory. */
export interface ShmimageMessage extends Header {
  type: "SHMIMAGE";
  x: number;
  y: number;
  width: number;
  height: number;
}

/** CLOSE (137), daemon → agent, since 1.0: the user asked to close the window. */
export interface CloseMessage extends Header {
  type: "CLOSE";
}

/** EXECUTE (138), obsolete (historically daemon → agent); decoded only to be refused, never sent. */
export interface ExecuteMessage extends Header {
  type: "EXECUTE";
  /** char[255] command, raw. */
  cmd: Uint8Array;
}

/** CLIPBOARD_REQ (139), daemon → agent, since 1.0: the user pressed the copy hotkey. */
export interface ClipboardReqMessage extends Header {
  type: "CLIPBOARD_REQ";
}

/**
 * CLIPBOARD_DATA (140), both directions, since 1.0: clipboard bytes. Before
 * 1.2 the length travels in `window` (which then is that length).
 */
export interface ClipboardDataMessage extends Header {
  type: "CLIPBOARD_DATA";
  data: Uint8Array;
}

/** WMNAME (141), agent → daemon, since 1.0: the title, char[128], NUL-terminated UTF-8, raw. */
export interface WmnameMessage extends Header {
  type: "WMNAME";
  data: Uint8Array;
}

/** KEYMAP_NOTIFY (142), daemon → agent, since 1.0 (window 0): 256-bit vector of held X keycodes. */
export interface KeymapNotifyMessage extends Header {
  type: "KEYMAP_NOTIFY";
  keys: Uint8Array;
}

/** DOCK (143), agent → daemon, since 1.0: make this (unmapped) window a tray icon. */
export interface DockMessage extends Header {
  type: "DOCK";
}

/** WINDOW_HINTS (144), agent → daemon, since 1.0: XSizeHints subset. */
export interface WindowHintsMessage extends Header {
  type: "WINDOW_HINTS";
  flags: number;
  min_width: number;
  min_height: number;
  max_width: number;
  max_height: number;
  width_inc: number;
  height_inc: number;
  base_width: number;
  base_height: number;
}

/** WINDOW_FLAGS (145), both directions, since 1.0: fullscreen / demands-attention / minimize changes. */
export interface WindowFlagsMessage extends Header {
  type: "WINDOW_FLAGS";
  flags_set: number;
  flags_unset: number;
}

/** WMCLASS (146), agent → daemon, since 1.1: WM_CLASS, class first (char[64] each, raw). */
export interface WmclassMessage extends Header {
  type: "WMCLASS";
  res_class: Uint8Array;
  res_name: Uint8Array;
}

/** WINDOW_DUMP (147), agent → daemon, since 1.2: the frame buffer as one grant reference per page. */
export interface WindowDumpMessage extends Header {
  type: "WINDOW_DUMP";
  /** Upstream field `type`; only 0 (grant refs) exists. */
  dump_type: number;
  width: number;
  height: number;
  bpp: number;
  /** `(untrusted_len − 16) / 4` references in page order. */
  grant_refs: Uint32Array;
}

/** CURSOR (148), agent → daemon, since 1.3: the cursor shape (0 or 0x100 + X font glyph). */
export interface CursorMessage extends Header {
  type: "CURSOR";
  cursor: number;
}

/** WINDOW_DUMP_ACK (149), daemon → agent, since 1.7: the oldest dump may be released. */
export interface WindowDumpAckMessage extends Header {
  type: "WINDOW_DUMP_ACK";
}

/** Any of the 26 protocol messages, as decoded (untrusted) or to be encoded. */
export type Message =
  | KeypressMessage
  | ButtonMessage
  | MotionMessage
  | CrossingMessage
  | FocusMessage
  | ResizeMessage
  | CreateMessage
  | DestroyMessage
  | MapMessage
  | UnmapMessage
  | ConfigureMessage
  | MfndumpMessage
  | ShmimageMessage
  | CloseMessage
  | ExecuteMessage
  | ClipboardReqMessage
  | ClipboardDataMessage
  | WmnameMessage
  | KeymapNotifyMessage
  | DockMessage
  | WindowHintsMessage
  | WindowFlagsMessage
  | WmclassMessage
  | WindowDumpMessage
  | CursorMessage
  | WindowDumpAckMessage;

/** A message's name without `MSG_`, e.g. `"CREATE"`. */
export type MessageName = Message["type"];

/** The message shape of one name. */
export type MessageOf<N extends MessageName> = Extract<Message, { type: N }>;

/** A message as it came from the other side: the naming marks that nothing in it is checked yet. */
export type UntrustedMessage = Message;

/** Handshake, agent → daemon then daemon → agent (from 1.4): a version word, no header. */
export interface VersionMessage {
  type: "VERSION";
  version: number;
}

/** Handshake, daemon → agent, since 1.0: the screen description `msg_xconf`, no header. */
export interface XconfMessage {
  type: "XCONF";
  /** Root width rounded up to a multiple of 8. */
  w: number;
  h: number;
  depth: number;
  /** Frame-buffer memory in KiB: `w·h·4/1024 + 1`. */
  mem: number;
}

/** A headerless handshake structure. */
export type HandshakeMessage = VersionMessage | XconfMessage;

/** Everything the stream decoder yields: handshake structures, then messages. */
export type Decoded = HandshakeMessage | Message;

/** Wire kind of one body field. */
export type FieldKind = "u32" | "i32" | "bytes";

/** One fixed body field of a schema. */
export interface FieldSpec<K extends string = string> {
  /** Upstream field name (as in the message shape). */
  readonly name: K;
  readonly kind: FieldKind;
  /** Byte size (4 for integers). */
  readonly size: number;
}

type BodyKey<N extends MessageName> = Exclude<keyof MessageOf<N>, "type" | "window">;

/** The schema of one message: the table the codec interprets. */
export interface MessageSchema<N extends MessageName = MessageName> {
  readonly name: N;
  /** Wire type, 124..149. */
  readonly code: number;
  /** Who may send it; `both` for CONFIGURE, MAP, CLIPBOARD_DATA, WINDOW_FLAGS, DESTROY. */
  readonly from: readonly Side[];
  /** Version word from which the sender may send it (0 = always). */
  readonly since: number;
  /** Never sent any more; decoded only so it can be refused by name. */
  readonly obsolete: boolean;
  /** Fixed fields in wire order. */
  readonly fields: readonly FieldSpec<BodyKey<N> & string>[];
  /** Byte size of the fixed fields. */
  readonly fixedSize: number;
  /** Variable tail after the fixed fields: u32 list, raw bytes, or none. */
  readonly tail: null | { readonly name: BodyKey<N> & string; readonly kind: "u32" | "u8" };
}

const u32 = <K extends string>(name: K): FieldSpec<K> => ({ name, kind: "u32", size: 4 });
const i32 = <K extends string>(name: K): FieldSpec<K> => ({ name, kind: "i32", size: 4 });
const bytes = <K extends string>(name: K, size: number): FieldSpec<K> => ({ name, kind: "bytes", size });

function schema<N extends MessageName>(
  name: N,
  code: number,
  from: readonly Side[],
  since: number,
  fields: readonly FieldSpec<BodyKey<N> & string>[],
  tail: MessageSchema<N>["tail"] = null,
  obsolete = false,
): MessageSchema<N> {
  const fixedSize = fields.reduce((sum, field) => sum + field.size, 0);
  return Object.freeze({ name, code, from: Object.freeze([...from]), since, obsolete, fields, fixedSize, tail });
}

const AGENT: readonly Side[] = ["agent"];
const DAEMON: readonly Side[] = ["daemon"];
const BOTH: readonly Side[] = ["agent", "daemon"];
const V1_0 = protocolVersion(1, 0);
const V1_1 = protocolVersion(1, 1);
const V1_2 = protocolVersion(1, 2);

/** The schema table, by message name (section 1.6 of the reference, byte for byte). */
export const MESSAGE_SCHEMAS: { readonly [N in MessageName]: MessageSchema<N> } = {
  KEYPRESS: schema("KEYPRESS", MSG_KEYPRESS, DAEMON, V1_0, [
    u32("event_type"),
    i32("x"),
    i32("y"),
    u32("state"),
    u32("keycode"),
  ]),
  BUTTON: schema("BUTTON", MSG_BUTTON, DAEMON, V1_0, [
    u32("event_type"),
    i32("x"),
    i32("y"),
    u32("state"),
    u32("button"),
  ]),
  MOTION: schema("MOTION", MSG_MOTION, DAEMON, V1_0, [i32("x"), i32("y"), u32("state"), u32("is_hint")]),
  CROSSING: schema("CROSSING", MSG_CROSSING, DAEMON, V1_0, [
    u32("event_type"),
    i32("x"),
    i32("y"),
    u32("state"),
    u32("mode"),
    u32("detail"),
    u32("focus"),
  ]),
  FOCUS: schema("FOCUS", MSG_FOCUS, DAEMON, V1_0, [u32("event_type"), u32("mode"), u32("detail")]),
  RESIZE: schema("RESIZE", MSG_RESIZE, DAEMON, V1_0, [u32("width"), u32("height")], null, true),
  CREATE: schema("CREATE", MSG_CREATE, AGENT, V1_0, [
    i32("x"),
    i32("y"),
    u32("width"),
    u32("height"),
    u32("parent"),
    u32("override_redirect"),
  ]),
  DESTROY: schema("DESTROY", MSG_DESTROY, BOTH, V1_0, []),
  MAP: schema("MAP", MSG_MAP, BOTH, V1_0, [u32("transient_for"), u32("override_redirect")]),
  UNMAP: schema("UNMAP", MSG_UNMAP, AGENT, V1_0, []),
  CONFIGURE: schema("CONFIGURE", MSG_CONFIGURE, BOTH, V1_0, [
    i32("x"),
    i32("y"),
    u32("width"),
    u32("height"),
    u32("override_redirect"),
  ]),
  MFNDUMP: schema(
    "MFNDUMP",
    MSG_MFNDUMP,
    AGENT,
    V1_0,
    [u32("shmid"), u32("width"), u32("height"), u32("bpp"), u32("off"), u32("num_mfn"), u32("domid")],
    { name: "mfns", kind: "u32" },
    true,
  ),
  SHMIMAGE: schema("SHMIMAGE", MSG_SHMIMAGE, AGENT, V1_0, [i32("x"), i32("y"), u32("width"), u32("height")]),
  CLOSE: schema("CLOSE", MSG_CLOSE, DAEMON, V1_0, []),
  EXECUTE: schema("EXECUTE", MSG_EXECUTE, DAEMON, V1_0, [bytes("cmd", 255)], null, true),
  CLIPBOARD_REQ: schema("CLIPBOARD_REQ", MSG_CLIPBOARD_REQ, DAEMON, V1_0, []),
  CLIPBOARD_DATA: schema("CLIPBOARD_DATA", MSG_CLIPBOARD_DATA, BOTH, V1_0, [], { name: "data", kind: "u8" }),
  WMNAME: schema("WMNAME", MSG_WMNAME, AGENT, V1_0, [bytes("data", 128)]),
  KEYMAP_NOTIFY: schema("KEYMAP_NOTIFY", MSG_KEYMAP_NOTIFY, DAEMON, V1_0, [bytes("keys", 32)]),
  DOCK: schema("DOCK", MSG_DOCK, AGENT, V1_0, []),
  WINDOW_HINTS: schema("WINDOW_HINTS", MSG_WINDOW_HINTS, AGENT, V1_0, [
    u32("flags"),
    u32("min_width"),
    u32("min_height"),
    u32("max_width"),
    u32("max_height"),
    u32("width_inc"),
    u32("height_inc"),
    u32("base_width"),
    u32("base_height"),
  ]),
  WINDOW_FLAGS: schema("WINDOW_FLAGS", MSG_WINDOW_FLAGS, BOTH, V1_0, [u32("flags_set"), u32("flags_unset")]),
  WMCLASS: schema("WMCLASS", MSG_WMCLASS, AGENT, V1_1, [bytes("res_class", 64), bytes("res_name", 64)]),
  WINDOW_DUMP: schema(
    "WINDOW_DUMP",
    MSG_WINDOW_DUMP,
    AGENT,
    V1_2,
    [u32("dump_type"), u32("width"), u32("height"), u32("bpp")],
    { name: "grant_refs", kind: "u32" },
  ),
  CURSOR: schema("CURSOR", MSG_CURSOR, AGENT, VERSION_CURSOR, [u32("cursor")]),
  WINDOW_DUMP_ACK: schema("WINDOW_DUMP_ACK", MSG_WINDOW_DUMP_ACK, DAEMON, VERSION_WINDOW_DUMP_ACK, []),
};

/** All message names in wire order (124..149). */
export const MESSAGE_NAMES: readonly MessageName[] = Object.freeze(
  (Object.keys(MESSAGE_SCHEMAS) as MessageName[]).sort((a, b) => MESSAGE_SCHEMAS[a].code - MESSAGE_SCHEMAS[b].code),
);

const byCode: (MessageSchema | undefined)[] = [];
for (const name of MESSAGE_NAMES) byCode[MESSAGE_SCHEMAS[name].code] = MESSAGE_SCHEMAS[name] as MessageSchema;

/** The schema of a wire type, or undefined for a value that is no message (hostile input allowed). */
export function schemaForCode(code: number): MessageSchema | undefined {
  return code >= 124 && code <= 149 ? byCode[code] : undefined;
}

/** The schema of a message name. */
export function schemaFor<N extends MessageName>(name: N): MessageSchema<N> {
  return MESSAGE_SCHEMAS[name];
}

/** Whether `side` may send `name` at protocol `version` (the daemon's DESTROY ack needs 1.5). */
export function maySend(side: Side, name: MessageName, version: number): boolean {
  const schema = MESSAGE_SCHEMAS[name];
  if (!schema.from.includes(side)) return false;
  if (side === "daemon" && name === "DESTROY") return version >= VERSION_DESTROY_ACK;
  return version >= schema.since;
}

/** Body bytes of a message with `tailCount` tail elements (grant refs, frames, clipboard bytes). */
export function bodySize(schema: MessageSchema, tailCount = 0): number {
  if (schema.tail === null) return schema.fixedSize;
  return schema.fixedSize + tailCount * (schema.tail.kind === "u32" ? 4 : 1);
}
