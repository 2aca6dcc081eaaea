/**
 * The one error class of vchan/: every failure carries a stable `code`, so a
 * caller decides (reconnect, end the session) on the code, never on the
 * message.
 */

/** The stable codes of {@link VchanError}. */
export type VchanErrorCode =
  /** write/send on a channel that is not connected (libvchan returns -1). */
  | "VCHAN_DISCONNECTED"
  /** send/recv of more bytes than the ring can ever hold (libvchan returns -1). */
  | "VCHAN_TOO_LARGE"
  /** The peer's setup data is malformed (ring orders, grant refs, rendezvous message). */
  | "VCHAN_BAD_PEER"
  /** The backend cannot run on this machine (xen without /dev/xen, or built without libxenvchan). */
  | "BACKEND_NOT_AVAILABLE";

/** An error of vchan/ with a stable {@link VchanErrorCode}. */
export class VchanError extends Error {
  /** Stable code; messages may change, codes do not. */
  readonly code: VchanErrorCode;

  constructor(code: VchanErrorCode, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "VchanError";
    this.code = code;
  }
}
