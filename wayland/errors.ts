/**
 * The error classes of wayland/: one base class with a stable string `code`,
 * so callers branch on codes rather than on message text.
 */

/** Stable codes of {@link WaylandError}. */
export type WaylandErrorCode =
  /** The peer broke the wire format or the protocol (bad framing, unknown object, bad argument). */
  | "protocol-error"
  /** The compositor sent wl_display.error: the connection is over. */
  | "server-error"
  /** The socket ended (EOF or a system call failed). */
  | "connection-closed"
  /** The peer stopped reading and the outgoing buffer passed its limit. */
  | "peer-not-reading"
  /** No compositor socket could be found or connected. */
  | "no-display"
  /** A server socket's path is served by another live compositor. */
  | "socket-in-use"
  /** A client passed one of its per-client limits (objects, wl_shm pools, fds, bytes mapped) and was ended. */
  | "limit-exceeded";

/** Base of every error wayland/ reports about a connection (not of programmer errors, which are TypeError/RangeError). */
export class WaylandError extends Error {
  /** A stable code to branch on. */
  readonly code: WaylandErrorCode;

  constructor(code: WaylandErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "WaylandError";
    this.code = code;
  }
}

/** A wl_display.error: on which object (id and interface) and with which interface error code. */
export class ProtocolError extends WaylandError {
  /** The object the error was posted on. */
  readonly objectId: number;
  /** That object's interface, when known. */
  readonly interfaceName: string;
  /** The interface's error enum value (wl_display.error.invalid_object = 0 ...). */
  readonly errorCode: number;

  constructor(
    code: "protocol-error" | "server-error",
    objectId: number,
    interfaceName: string,
    errorCode: number,
    message: string,
  ) {
    super(code, `${interfaceName}#${objectId}: error ${errorCode}: ${message}`);
    this.name = "ProtocolError";
    this.objectId = objectId;
    this.interfaceName = interfaceName;
    this.errorCode = errorCode;
  }
}

/** What a server counts per client against a limit (see DisplayOptions). */
export type ClientLimitName = "objects" | "pools" | "fds" | "mappedBytes";

/** The words a limit is told in, for errors and logs: "256 wl_shm pools". */
export function describeLimit(limit: ClientLimitName, max: number): string {
  switch (limit) {
    case "objects":
      return `${max} objects`;
    case "pools":
      return `${max} wl_shm pools`;
    case "fds":
      return `${max} fds`;
    case "mappedBytes":
      return `${max} bytes (${Math.floor(max / 1048576)} MiB) of mapped wl_shm pools`;
  }
}

/**
 * A client was ended for passing one of its per-client limits: which limit,
 * and its value. The client got wl_display.error no_memory with the same
 * message ("client exceeded its limit of 256 wl_shm pools").
 */
export class ClientLimitError extends WaylandError {
  /** The limit that was passed. */
  readonly limit: ClientLimitName;
  /** The limit's value (a count, or bytes for mappedBytes). */
  readonly max: number;

  constructor(limit: ClientLimitName, max: number) {
    super("limit-exceeded", `client exceeded its limit of ${describeLimit(limit, max)}`);
    this.name = "ClientLimitError";
    this.limit = limit;
    this.max = max;
  }
}
