/**
 * The daemon's counters: what tests and benchmarks read (SIGUSR1 and the exit
 * print them as one JSON line), so a test can assert "the daemon copied 0
 * bytes" from the running program.
 */

/** Counters of one guid process, all sessions together. */
export interface GuidCounters {
  /** Sessions whose handshake finished. */
  sessions: number;
  /** Sessions that ended (agent gone, protocol violation, or shutdown). */
  sessionsEnded: number;
  /** Agent → daemon messages decoded. */
  messages: number;
  /** Daemon → agent messages sent (queued). */
  messagesSent: number;
  /** Messages dropped by the validator (drop-and-count), upstream's VERIFY cases included. */
  dropped: number;
  /** Of those, upstream's VERIFY cases (requests no well-behaved agent sends). */
  suspicious: number;
  /** Values clamped by the validator (the message went through corrected). */
  clamped: number;
  /** Content commits on the host compositor. */
  frames: number;
  /** Times the throttle paused reading a session (the agent sent past SESSION_MESSAGE_RATE or SESSION_BYTE_RATE). */
  throttled: number;
  /** MAPs whose host window waited for HOST_WINDOW_RATE (an UNMAP before its turn means none was made). */
  mapsDeferred: number;
  /** Resizes merged into the next host frame's (CONFIGURE storms reach the host once a frame). */
  resizesCoalesced: number;
  /** WINDOW_DUMPs handled. */
  dumps: number;
  /** Images the host reads straight from the domain's pages. */
  zeroCopyImages: number;
  /** Images the daemon copies into a buffer of its own. */
  copiedImages: number;
  /** Bytes of grant mappings made. */
  bytesMapped: number;
  /** Bytes the daemon copied (the copy path only). */
  bytesCopied: number;
  /** Clipboard copies taken in, pastes sent, and pastes the policy or a guard refused. */
  clipboardCopies: number;
  clipboardPastes: number;
  clipboardRefused: number;
}

/** A zeroed set of counters. */
export function createCounters(): GuidCounters {
  return {
    sessions: 0,
    sessionsEnded: 0,
    messages: 0,
    messagesSent: 0,
    dropped: 0,
    suspicious: 0,
    clamped: 0,
    frames: 0,
    throttled: 0,
    mapsDeferred: 0,
    resizesCoalesced: 0,
    dumps: 0,
    zeroCopyImages: 0,
    copiedImages: 0,
    bytesMapped: 0,
    bytesCopied: 0,
    clipboardCopies: 0,
    clipboardPastes: 0,
    clipboardRefused: 0,
  };
}
