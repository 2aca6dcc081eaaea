/**
 * protocol/: the Qubes GUI protocol 1.8, byte-exact and pure (no I/O): wire
 * constants, message shapes and their schema table, the table-driven encoder,
 * the streaming decoder, version negotiation, and the validation layer that is
 * the daemon's trust boundary. gui-agent/ and guid/ build on this entry point.
 */
export * from "./constants.ts";
export { ClampNotice, DroppedMessage, ProtocolError, ProtocolViolation } from "./errors.ts";
export type { Reaction, Result } from "./errors.ts";
export { MESSAGE_NAMES, MESSAGE_SCHEMAS, bodySize, maySend, schemaFor, schemaForCode } from "./messages.ts";
export type {
  ButtonMessage,
  ClipboardDataMessage,
  ClipboardReqMessage,
  CloseMessage,
  ConfigureMessage,
  CreateMessage,
  CrossingMessage,
  CursorMessage,
  Decoded,
  DestroyMessage,
  DockMessage,
  ExecuteMessage,
  FieldKind,
  FieldSpec,
  FocusMessage,
  HandshakeMessage,
  KeymapNotifyMessage,
  KeypressMessage,
  MapMessage,
  Message,
  MessageName,
  MessageOf,
  MessageSchema,
  MfndumpMessage,
  MotionMessage,
  ResizeMessage,
  ShmimageMessage,
  Side,
  UnmapMessage,
  UntrustedMessage,
  VersionMessage,
  WindowDumpAckMessage,
  WindowDumpMessage,
  WindowFlagsMessage,
  WindowHintsMessage,
  WmclassMessage,
  WmnameMessage,
  XconfMessage,
} from "./messages.ts";
export {
  MessageEncoder,
  encodeInto,
  encodeMessage,
  encodeVersion,
  encodeXconf,
  encodedSize,
  readBody,
  readBodyOfType,
  readXconf,
} from "./codec.ts";
export type { EncodeOptions } from "./codec.ts";
export { MAX_DECODER_BUFFER, StreamDecoder } from "./decoder.ts";
export type { DecodeHandler, DecodeResult, DecoderOptions } from "./decoder.ts";
export { acceptDaemonVersion, makeXconf, negotiateVersion } from "./handshake.ts";
export type { Negotiation, ScreenSize } from "./handshake.ts";
export { sanitizeClassField, sanitizeTitle } from "./sanitize.ts";
export { wmclassField, wmnameData } from "./text.ts";
export { SessionValidator } from "./validate.ts";
export { FRAMEBUFFER_BYTES_PER_PIXEL, checkDumpGeometry, framebufferPages } from "./framebuffer.ts";
export type { DumpGeometry, DumpGeometryError } from "./framebuffer.ts";
export {
  offsetInWindow,
  sameRect,
  screenPoint,
  screenRect,
  screenRectFromVm,
  vmPoint,
  vmRect,
  windowPoint,
  windowRect,
} from "./geometry.ts";
export type {
  PlainPoint,
  PlainRect,
  ScreenPoint,
  ScreenRect,
  Size,
  VmPoint,
  VmRect,
  WindowPoint,
  WindowRect,
} from "./geometry.ts";
export type {
  KnownWindow,
  Trusted,
  TrustedCursorShape,
  TrustedMessage,
  TrustedOf,
  ValidationResult,
  ValidatorConfig,
  ValidatorCounters,
  WindowStateFlags,
} from "./validate.ts";
