/**
 * wayland/: the Wayland wire protocol in TypeScript, both ends.
 *
 * - Server (gui-agent, qubes-gui-desktop): `new Display()`, `createGlobal`,
 *   `addSocket`; resources get typed handlers with `implement` and send
 *   events with `send`.
 * - Client (guid): `await connect()`, `bind`, `proxy.request`, `proxy.on`,
 *   `roundtrip`.
 * - Both: interface tables generated from the protocol XML, the codec and
 *   connection, wl_shm pools and keymaps.
 */
export { Client, Display, Global, Resource } from "./server.ts";
export type { BindHandler, DisplayOptions, HandlerError } from "./server.ts";
export {
  DISPLAY_ERROR_IMPLEMENTATION,
  DISPLAY_ERROR_INVALID_METHOD,
  DISPLAY_ERROR_INVALID_OBJECT,
  DISPLAY_ERROR_NO_MEMORY,
} from "./server.ts";
export { ClientConnection, Proxy, connect, resolveDisplayPath } from "./client.ts";
export type { ConnectOptions, Created, GlobalInfo } from "./client.ts";
export { ProtocolError, WaylandError } from "./errors.ts";
export type { WaylandErrorCode } from "./errors.ts";
export { Signal } from "./signal.ts";
export {
  BYTES_PER_PIXEL,
  ClientShmPool,
  SHM_FORMAT_ARGB8888,
  SHM_FORMAT_XRGB8888,
  ShmBuffer,
  ShmPool,
  createKeymapFd,
  createShmGlobal,
  readKeymap,
  shmBufferOf,
} from "./shm.ts";
export {
  Connection,
  FdQueue,
  HEADER_SIZE,
  MAX_MESSAGE_SIZE,
  MessageWriter,
  SERVER_ID_START,
  compileInterface,
  decodeArgs,
  encodeMessage,
} from "./wire.ts";
export type {
  CompiledInterface,
  CompiledMessage,
  ConnectionHandler,
  ConnectionOptions,
  DecodeFailure,
  WireArg,
} from "./wire.ts";
export type {
  ArgSpec,
  ArgType,
  Args,
  ClientRequestsOf,
  EventsOf,
  InterfaceSpec,
  MessageSpec,
  Ref,
  RequestHandlers,
  RequestsOf,
  Side,
  UntypedNewId,
} from "./schema.ts";
export * from "./protocols/all.generated.ts";
export { createPipe, readPipe } from "./pipe.ts";
export type { PipeFds, PipeRead } from "./pipe.ts";
