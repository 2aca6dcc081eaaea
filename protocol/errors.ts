/**
 * The protocol's errors: one base class with a stable `code`, and one subclass
 * per reaction of the daemon (qubes-gui-protocol.md 4.1). They are returned in
 * results, never thrown at hostile input; throwing is kept for programmer
 * errors such as encoding a value that does not fit its field.
 */

/** How the receiving side reacts to a fault; the three reactions of upstream qubes-guid. */
export type Reaction = "clamp" | "drop" | "end-session";

/** Success or failure without exceptions, the return type of decoding and validation. */
export type Result<T, E = ProtocolError> = { ok: true; value: T } | { ok: false; error: E };

/**
 * Base of every protocol fault, with a stable machine-readable `code` so that
 * callers and tests branch on the code and never on the message text. It is a
 * value carried in results, never thrown, so it deliberately does not extend
 * Error: no stack trace is captured, and a hostile domain cannot make the
 * daemon pay for one per message.
 */
export abstract class ProtocolError {
  /** Stable identifier, e.g. `BAD_LENGTH`; never changes once published. */
  readonly code: string;
  /** What happened, for logs (contains only numbers and sanitised text, never raw domain strings). */
  readonly message: string;
  /** The class name, as Error has it. */
  readonly name: string;
  /** What the receiver does about it. */
  abstract readonly reaction: Reaction;

  constructor(code: string, message: string) {
    this.code = code;
    this.message = message;
    this.name = new.target.name;
  }

  /** `Name [CODE]: message`, for logs. */
  toString(): string {
    return `${this.name} [${this.code}]: ${this.message}`;
  }
}

/**
 * A value was out of range and has been clamped (or a field ignored) as
 * upstream does; the message still goes through. The message says what is now known.
 */
export class ClampNotice extends ProtocolError {
  /** Always "clamp": the message is used with the corrected value. */
  readonly reaction = "clamp" as const;
}

/**
 * The message is dropped whole and counted. `suspicious` marks upstream's
 * VERIFY cases (where qubes-guid asks the user whether to kill the domain);
 * the others are silent ignores such as a MAP of an already mapped window.
 */
export class DroppedMessage extends ProtocolError {
  /** Always "drop": the bytes are consumed, nothing else happens. */
  readonly reaction = "drop" as const;
  /** True for requests no well-behaved agent sends (upstream's VERIFY dialog). */
  readonly suspicious: boolean;

  constructor(code: string, message: string, suspicious: boolean) {
    super(code, message);
    this.suspicious = suspicious;
  }
}

/**
 * A protocol violation: the domain's session ends (upstream qubes-guid
 * exits). Only that domain is affected; it may reconnect.
 */
export class ProtocolViolation extends ProtocolError {
  /** Always "end-session". */
  readonly reaction = "end-session" as const;
}
