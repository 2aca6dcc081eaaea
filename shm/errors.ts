/**
 * The one error class of shm/: every failure carries a stable `code`, so a
 * caller (the daemon deciding to end a session, a test) branches on the code,
 * never on the message.
 */

/** The stable codes of {@link ShmError}. */
export type ShmErrorCode =
  /** The ref was never granted by that domain. */
  | "GRANT_NOT_GRANTED"
  /** The ref was granted once and has been revoked since. */
  | "GRANT_REVOKED"
  /** The ref is granted, but to another domain. */
  | "GRANT_WRONG_DOMAIN"
  /** A writable mapping of a ref granted read-only. */
  | "GRANT_READ_ONLY"
  /** The ref (or its page) lies outside the granting domain's table or pool. */
  | "GRANT_OUT_OF_RANGE"
  /** Sharing these pages would pass the domain's limit on granted pages. */
  | "GRANT_LIMIT"
  /** No pool of that domain is attached yet (memfd backend: call attach first). */
  | "GRANT_NO_PEER"
  /** The peer's pool or table is malformed (bad header, missing seals). */
  | "GRANT_BAD_POOL"
  /** memfd attach: the granter accepted on its pair socket but sent no pool offer in time. */
  | "GRANT_TIMEOUT"
  /** Shared pages or a mapping used after revoke/unmap, or given to the wrong table. */
  | "GRANT_STALE"
  /** Framebuffer geometry outside the protocol's limits, or too few refs for it. */
  | "FRAMEBUFFER_GEOMETRY"
  /** The backend cannot run on this machine (xen without /dev/xen). */
  | "BACKEND_NOT_AVAILABLE";

/** An error of shm/ with a stable {@link ShmErrorCode}. */
export class ShmError extends Error {
  /** Stable code; messages may change, codes do not. */
  readonly code: ShmErrorCode;

  constructor(code: ShmErrorCode, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "ShmError";
    this.code = code;
  }
}
