/**
 * wayland/: the Wayland wire protocol in TypeScript, both ends, with
 * interface tables and typings generated from the official XML
 * (scripts/wayland-scanner.ts).
 *
 * Server side (gui-agent, qubes-gui-desktop): a Display, globals whose bind
 * handler implements the new resource's requests, events sent with typed
 * arguments. Objects a request creates (new_id) arrive as ready Resources.
 *
 * ```ts
 * const display = new Display();
 * display.createGlobal("wl_compositor", 5, (compositor) => {
 *   compositor.implement({
 *     create_surface: (surface) => {
 *       surface.events.destroy.add(() => forgetSurface(surface));
 *       surface.implement({
 *         attach: (buffer, x, y) => { ... },            // buffer: Resource<"wl_buffer"> | null
 *         frame: (callback) => pending.push(callback),   // later: callback.send("done", ms); callback.destroy()
 *         set_buffer_scale: (scale) => scale < 1 && surface.postError(wl_surface.enums.error.invalid_scale, "scale < 1"),
 *       });
 *     },
 *     create_region: (region) => region.implement({}),
 *   });
 * });
 * createShmGlobal(display);                            // wl_shm; shmBufferOf(bufferResource)?.bytes()
 * const name = display.addSocketAuto(runtimeDir);       // WAYLAND_DISPLAY for the apps
 * ```
 *
 * A request with no handler is ignored (a destructor still destroys), a
 * handler that throws ends that client with an implementation error, and
 * every malformed message ends its client only.
 * Each client is held to its own limits (DisplayOptions: objects, wl_shm
 * pools, fds, bytes mapped), and passing one ends it alone with a no_memory
 * error naming the limit (`client.error` is then a ClientLimitError;
 * `display.events.disconnect` tells every end and its reason). The work
 * done for one client per turn of the event loop is bounded, so that a
 * flooding client waits and the others do not.
 *
 * Client side (guid): connect, bind with version negotiation, typed
 * requests (a creating request returns the new Proxy) and event listeners.
 *
 * ```ts
 * const connection = await connect();                  // WAYLAND_DISPLAY / XDG_RUNTIME_DIR, globals known
 * const compositor = connection.bind("wl_compositor", 4);
 * const wmBase = connection.bind("xdg_wm_base", 2);
 * wmBase.on("ping", (serial) => wmBase.request("pong", serial));
 * const surface = compositor.request("create_surface");
 * const toplevel = wmBase.request("get_xdg_surface", surface).request("get_toplevel");
 * const pool = new ClientShmPool(connection.bind("wl_shm", 1), size);
 * await connection.roundtrip();                        // rejects with ProtocolError after wl_display.error
 * ```
 */
export { Client, Display, Global, Resource } from "./server.ts";
export type { BindHandler, ClientCharge, ClientLimits, ClientUsage, DisplayOptions, HandlerError } from "./server.ts";
export {
  DEFAULT_FLOOD_PAUSE_MS,
  DEFAULT_MAX_FDS_PER_CLIENT,
  DEFAULT_MAX_MAPPED_BYTES_PER_CLIENT,
  DEFAULT_MAX_MESSAGES_PER_TURN,
  DEFAULT_MAX_OBJECTS_PER_CLIENT,
  DEFAULT_MAX_POOLS_PER_CLIENT,
  DEFAULT_MAX_TURN_MS,
  DISPLAY_ERROR_IMPLEMENTATION,
  DISPLAY_ERROR_INVALID_METHOD,
  DISPLAY_ERROR_INVALID_OBJECT,
  DISPLAY_ERROR_NO_MEMORY,
} from "./server.ts";
export { ClientConnection, Proxy, connect, resolveDisplayPath } from "./client.ts";
export type { ConnectOptions, Created, GlobalInfo } from "./client.ts";
export { ClientLimitError, ProtocolError, WaylandError, describeLimit } from "./errors.ts";
export type { ClientLimitName, WaylandErrorCode } from "./errors.ts";
export { Signal } from "./signal.ts";
export { traceEnabled } from "./trace.ts";
export type { TraceSide } from "./trace.ts";
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
export type { ExistingPoolMemory } from "./shm.ts";
export {
  Connection,
  FLOOD_TURNS,
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
export { closeFd, createPipe, readPipe, writePipe } from "./pipe.ts";
export type { PipeFds, PipeRead } from "./pipe.ts";
