/**
 * The Wayland wire format: one table-driven codec over the message schemas
 * of schema.ts, and a Connection that frames messages on a non-blocking
 * AF_UNIX socket with fds passed out of band (SCM_RIGHTS).
 *
 * Every length read from the wire is hostile: the header size is checked
 * against 8 ≤ size ≤ 4096 and 4-byte alignment before the body is touched,
 * and every string and array length against the bytes left in its message,
 * so a bad message is reported without reading past it.
 */
import {
  Poll,
  POLL_READABLE,
  POLL_WRITABLE,
  MAX_FDS_PER_MESSAGE,
  close as closeFd,
  dup,
  isSyscallError,
  recvmsg,
  sendmsg,
} from "../native/index.ts";
import { WaylandError } from "./errors.ts";
import type { InterfaceSpec, MessageSpec, UntypedNewId } from "./schema.ts";

/** The largest message libwayland sends or accepts, header included (bytes). */
export const MAX_MESSAGE_SIZE = 4096;
/** The size of a message header: object id, then size << 16 | opcode (bytes). */
export const HEADER_SIZE = 8;
/** The first object id of the server's range; ids below are the client's. */
export const SERVER_ID_START = 0xff000000;

// Argument type codes of a compiled signature: one byte per argument, so the codec switches on small integers.
/** int: signed 32-bit. */
export const ARG_INT = 0;
/** uint: unsigned 32-bit. */
export const ARG_UINT = 1;
/** fixed: signed 24.8, a number in JS. */
export const ARG_FIXED = 2;
/** string: length with NUL, bytes, padding; 0 length is null. */
export const ARG_STRING = 3;
/** object: an id, 0 for null. */
export const ARG_OBJECT = 4;
/** new_id with an interface in the XML: the new object's id. */
export const ARG_NEW_ID = 5;
/** array: length, bytes, padding. */
export const ARG_ARRAY = 6;
/** fd: no bytes in the message; the next fd received out of band (SCM_RIGHTS). */
export const ARG_FD = 7;
/** new_id without an interface (wl_registry.bind): interface string, version, id. */
export const ARG_NEW_ID_UNTYPED = 8;

/** A message schema prepared for the codec: argument types as small integers. */
export interface CompiledMessage {
  readonly spec: MessageSpec;
  readonly opcode: number;
  readonly types: Uint8Array;
  readonly nullable: readonly boolean[];
  /** The interface each object/new_id argument names (undefined when untyped). */
  readonly interfaces: ReadonlyArray<string | undefined>;
  /** Position of the new_id argument, or -1. */
  readonly newIdIndex: number;
}

/** An interface with its requests and events compiled, by opcode and by name. */
export interface CompiledInterface {
  readonly spec: InterfaceSpec;
  readonly requests: readonly CompiledMessage[];
  readonly events: readonly CompiledMessage[];
  readonly requestsByName: ReadonlyMap<string, CompiledMessage>;
  readonly eventsByName: ReadonlyMap<string, CompiledMessage>;
}

const typeCodes: Record<string, number> = {
  int: ARG_INT,
  uint: ARG_UINT,
  fixed: ARG_FIXED,
  string: ARG_STRING,
  object: ARG_OBJECT,
  new_id: ARG_NEW_ID,
  array: ARG_ARRAY,
  fd: ARG_FD,
};

function compileMessage(spec: MessageSpec, opcode: number): CompiledMessage {
  const types = new Uint8Array(spec.args.length);
  let newIdIndex = -1;
  spec.args.forEach((arg, index) => {
    let code = typeCodes[arg.type];
    if (code === undefined) throw new TypeError(`unknown argument type ${arg.type}`);
    if (code === ARG_NEW_ID) {
      newIdIndex = index;
      if (arg.interface === undefined) code = ARG_NEW_ID_UNTYPED;
    }
    types[index] = code;
  });
  return {
    spec,
    opcode,
    types,
    nullable: spec.args.map((arg) => arg.nullable === true),
    interfaces: spec.args.map((arg) => arg.interface),
    newIdIndex,
  };
}

const compiled = new WeakMap<InterfaceSpec, CompiledInterface>();

/** The compiled form of an interface (cached per table, so it is built once). */
export function compileInterface(spec: InterfaceSpec): CompiledInterface {
  let result = compiled.get(spec);
  if (result === undefined) {
    const requests = spec.requests.map(compileMessage);
    const events = spec.events.map(compileMessage);
    result = {
      spec,
      requests,
      events,
      requestsByName: new Map(requests.map((message) => [message.spec.name, message])),
      eventsByName: new Map(events.map((message) => [message.spec.name, message])),
    };
    compiled.set(spec, result);
  }
  return result;
}

/**
 * One decoded or to-be-encoded argument: numbers for int, uint, fixed, fd and
 * object/new_id ids (0 = null object), strings (null for a null string),
 * bytes for arrays, and an {@link UntypedNewId} for untyped new_id.
 */
export type WireArg = number | string | null | Uint8Array | UntypedNewId;

/** Received fds waiting to be matched with the messages that carry them, in order. */
export class FdQueue {
  private fds: number[] = [];
  private head = 0;

  /** Number of fds waiting. */
  get length(): number {
    return this.fds.length - this.head;
  }

  /** Appends fds as they arrived on the socket. */
  push(fds: readonly number[]): void {
    for (const fd of fds) this.fds.push(fd);
  }

  /** Takes the oldest fd, or -1 when none is left. */
  shift(): number {
    if (this.head >= this.fds.length) return -1;
    const fd = this.fds[this.head++] as number;
    if (this.head > 64 && this.head * 2 > this.fds.length) {
      this.fds = this.fds.slice(this.head);
      this.head = 0;
    }
    return fd;
  }

  /** Closes and forgets every fd still waiting. */
  destroy(): void {
    for (let i = this.head; i < this.fds.length; i++) closeFd(this.fds[i] as number);
    this.fds = [];
    this.head = 0;
  }
}

const utf8 = new TextDecoder("utf-8", { fatal: false });
const utf8Encoder = new TextEncoder();

/** Why a message body could not be decoded: a description for the protocol error. */
export interface DecodeFailure {
  readonly error: string;
}

function decodeFailure(message: CompiledMessage, taken: number[] | undefined, why: string): DecodeFailure {
  if (taken !== undefined) for (const fd of taken) closeFd(fd);
  return { error: `${message.spec.name}: ${why}` };
}

/**
 * Decodes the arguments of one message whose body is bytes[start, end) (the
 * header excluded), taking fd arguments from `fds` in order. Never throws on
 * hostile bytes: a length that passes the end of the message, a string
 * without its NUL, a null where none is allowed, trailing bytes, or a
 * missing fd give a {@link DecodeFailure}. The fds taken before a failure
 * are closed.
 */
export function decodeArgs(
  message: CompiledMessage,
  bytes: Uint8Array,
  view: DataView,
  start: number,
  end: number,
  fds: FdQueue,
): WireArg[] | DecodeFailure {
  const types = message.types;
  const args: WireArg[] = new Array<WireArg>(types.length);
  let at = start;
  let taken: number[] | undefined;
  for (let i = 0; i < types.length; i++) {
    const type = types[i];
    if (type === ARG_FD) {
      const fd = fds.shift();
      if (fd < 0) return decodeFailure(message, taken, `fd argument ${i} missing`);
      (taken ??= []).push(fd);
      args[i] = fd;
      continue;
    }
    if (at + 4 > end) return decodeFailure(message, taken, `argument ${i} past the end of the message`);
    switch (type) {
      case ARG_INT:
        args[i] = view.getInt32(at, true);
        at += 4;
        break;
      case ARG_UINT:
        args[i] = view.getUint32(at, true);
        at += 4;
        break;
      case ARG_FIXED:
        args[i] = view.getInt32(at, true) / 256;
        at += 4;
        break;
      case ARG_OBJECT:
      case ARG_NEW_ID: {
        const id = view.getUint32(at, true);
        at += 4;
        if (id === 0 && (type === ARG_NEW_ID || message.nullable[i] !== true)) {
          return decodeFailure(message, taken, `argument ${i} is a null object where none is allowed`);
        }
        args[i] = id;
        break;
      }
      case ARG_STRING:
      case ARG_NEW_ID_UNTYPED: {
        const length = view.getUint32(at, true);
        at += 4;
        if (length === 0) {
          if (type === ARG_NEW_ID_UNTYPED || message.nullable[i] !== true) {
            return decodeFailure(message, taken, `argument ${i} is a null string where none is allowed`);
          }
          args[i] = null;
          break;
        }
        const padded = (length + 3) & ~3;
        if (length > end - at || padded > end - at)
          return decodeFailure(message, taken, `string argument ${i} longer than the message`);
        if (bytes[at + length - 1] !== 0)
          return decodeFailure(message, taken, `string argument ${i} is not NUL-terminated`);
        const text = utf8.decode(bytes.subarray(at, at + length - 1));
        at += padded;
        if (type === ARG_STRING) {
          args[i] = text;
          break;
        }
        if (at + 8 > end)
          return decodeFailure(message, taken, `untyped new_id argument ${i} past the end of the message`);
        const version = view.getUint32(at, true);
        const id = view.getUint32(at + 4, true);
        at += 8;
        if (id === 0) return decodeFailure(message, taken, `argument ${i} is a null new_id`);
        args[i] = { interface: text, version, id };
        break;
      }
      case ARG_ARRAY: {
        const length = view.getUint32(at, true);
        at += 4;
        const padded = (length + 3) & ~3;
        if (length > end - at || padded > end - at)
          return decodeFailure(message, taken, `array argument ${i} longer than the message`);
        args[i] = bytes.slice(at, at + length);
        at += padded;
        break;
      }
    }
  }
  if (at !== end) return decodeFailure(message, taken, `${end - at} bytes after the last argument`);
  return args;
}

/** A growable byte buffer that messages are encoded into. */
export class MessageWriter {
  /** The bytes; [0, length) are written. */
  bytes: Uint8Array;
  /** A view of `bytes`. */
  view: DataView;
  /** Bytes written so far. */
  length = 0;

  constructor(capacity = 16384) {
    this.bytes = new Uint8Array(capacity);
    this.view = new DataView(this.bytes.buffer);
  }

  /** Makes room for `extra` more bytes. */
  reserve(extra: number): void {
    if (this.length + extra <= this.bytes.length) return;
    let capacity = this.bytes.length * 2;
    while (capacity < this.length + extra) capacity *= 2;
    const grown = new Uint8Array(capacity);
    grown.set(this.bytes.subarray(0, this.length));
    this.bytes = grown;
    this.view = new DataView(grown.buffer);
  }

  /** Drops the first `count` bytes (sent ones), moving the rest to the front. */
  consume(count: number): void {
    if (count >= this.length) {
      this.length = 0;
      return;
    }
    this.bytes.copyWithin(0, count, this.length);
    this.length -= count;
  }
}

function badInt(message: CompiledMessage, index: number, value: unknown, min: number, max: number): never {
  const name = message.spec.args[index]?.name ?? String(index);
  throw new RangeError(`${message.spec.name}: ${name} must be an integer in ${min}..${max}, got ${String(value)}`);
}

function tooBig(message: CompiledMessage, fdsOut: number[], fdsBefore: number): never {
  fdsOut.length = fdsBefore;
  throw new RangeError(`${message.spec.name}: message larger than ${MAX_MESSAGE_SIZE} bytes`);
}

/** Writes a string argument (length with NUL, bytes, padding) at `at`; returns the next offset, or -1 past `limit`. */
function writeString(bytes: Uint8Array, view: DataView, at: number, limit: number, text: string): number {
  const length = Buffer.byteLength(text) + 1;
  const padded = (length + 3) & ~3;
  if (at + 4 + padded > limit) return -1;
  view.setUint32(at, length, true);
  at += 4;
  utf8Encoder.encodeInto(text, bytes.subarray(at, at + length - 1));
  bytes.fill(0, at + length - 1, at + padded);
  return at + padded;
}

/**
 * Encodes one message (header and arguments) at the end of `out`; fd
 * arguments are appended to `fdsOut` as given (the caller decides about
 * ownership). Objects and new_ids are ids here. Throws RangeError or
 * TypeError on a bad argument or a message over 4096 bytes (programmer
 * errors) and then writes nothing.
 */
export function encodeMessage(
  out: MessageWriter,
  objectId: number,
  message: CompiledMessage,
  args: readonly WireArg[],
  fdsOut: number[],
): number {
  const types = message.types;
  const count = types.length;
  if (args.length !== count) {
    throw new TypeError(`${message.spec.name} takes ${count} arguments, got ${args.length}`);
  }
  out.reserve(MAX_MESSAGE_SIZE);
  const bytes = out.bytes;
  const view = out.view;
  const start = out.length;
  const limit = start + MAX_MESSAGE_SIZE;
  let at = start + HEADER_SIZE;
  const fdsBefore = fdsOut.length;
  for (let i = 0; i < count; i++) {
    const value = args[i];
    const type = types[i];
    if (type !== ARG_FD && at + 4 > limit) tooBig(message, fdsOut, fdsBefore);
    switch (type) {
      case ARG_INT:
        if (typeof value !== "number" || (value | 0) !== value) badInt(message, i, value, -0x80000000, 0x7fffffff);
        view.setInt32(at, value, true);
        at += 4;
        break;
      case ARG_UINT:
        if (typeof value !== "number" || value >>> 0 !== value) badInt(message, i, value, 0, 0xffffffff);
        view.setUint32(at, value, true);
        at += 4;
        break;
      case ARG_FIXED:
        if (typeof value !== "number" || !Number.isFinite(value)) throw new RangeError("fixed must be a finite number");
        view.setInt32(at, Math.round(value * 256) | 0, true);
        at += 4;
        break;
      case ARG_OBJECT:
      case ARG_NEW_ID: {
        if (value === null || value === 0) {
          if (type === ARG_NEW_ID || message.nullable[i] !== true) {
            throw new TypeError(`${message.spec.name}: argument ${i} may not be null`);
          }
          view.setUint32(at, 0, true);
        } else {
          if (typeof value !== "number" || value >>> 0 !== value) badInt(message, i, value, 0, 0xffffffff);
          view.setUint32(at, value, true);
        }
        at += 4;
        break;
      }
      case ARG_STRING:
        if (value === null) {
          if (message.nullable[i] !== true) throw new TypeError(`${message.spec.name}: argument ${i} may not be null`);
          view.setUint32(at, 0, true);
          at += 4;
        } else if (typeof value === "string") {
          at = writeString(bytes, view, at, limit, value);
          if (at < 0) tooBig(message, fdsOut, fdsBefore);
        } else {
          throw new TypeError(`${message.spec.name}: argument ${i} must be a string`);
        }
        break;
      case ARG_NEW_ID_UNTYPED: {
        const newId = value as UntypedNewId;
        if (newId === null || typeof newId !== "object" || typeof newId.interface !== "string") {
          throw new TypeError(`${message.spec.name}: argument ${i} must be an untyped new_id`);
        }
        at = writeString(bytes, view, at, limit, newId.interface);
        if (at < 0 || at + 8 > limit) tooBig(message, fdsOut, fdsBefore);
        if (newId.version >>> 0 !== newId.version || newId.version < 1)
          badInt(message, i, newId.version, 1, 0xffffffff);
        if (newId.id >>> 0 !== newId.id || newId.id < 1) badInt(message, i, newId.id, 1, 0xffffffff);
        view.setUint32(at, newId.version, true);
        view.setUint32(at + 4, newId.id, true);
        at += 8;
        break;
      }
      case ARG_ARRAY: {
        if (!(value instanceof Uint8Array))
          throw new TypeError(`${message.spec.name}: argument ${i} must be a Uint8Array`);
        const padded = (value.byteLength + 3) & ~3;
        if (at + 4 + padded > limit) tooBig(message, fdsOut, fdsBefore);
        view.setUint32(at, value.byteLength, true);
        bytes.set(value, at + 4);
        bytes.fill(0, at + 4 + value.byteLength, at + 4 + padded);
        at += 4 + padded;
        break;
      }
      case ARG_FD:
        if (typeof value !== "number" || (value | 0) !== value || value < 0) badInt(message, i, value, 0, 0x7fffffff);
        fdsOut.push(value);
        break;
    }
  }
  const size = at - start;
  view.setUint32(start, objectId, true);
  view.setUint32(start + 4, ((size << 16) | message.opcode) >>> 0, true);
  out.length = at;
  return size;
}

function positiveOrInfinity(value: number | undefined, name: string): number {
  if (value === undefined) return Infinity;
  if (!(value > 0)) throw new RangeError(`${name} must be positive, got ${value}`);
  return value;
}

/** What a Connection tells its owner. */
export interface ConnectionHandler {
  /**
   * One complete message: the header was checked (8 ≤ size ≤ 4096, aligned);
   * the body is bytes[start, end). Return false to stop dispatching (the
   * owner destroyed the connection or wants to wait).
   */
  message(objectId: number, opcode: number, bytes: Uint8Array, view: DataView, start: number, end: number): boolean;
  /** The connection ended: EOF (error undefined), a framing error, a system call error, or back-pressure. */
  closed(error: WaylandError | undefined): void;
  /**
   * fds arrived: `queued` are now waiting for their messages. Return false
   * to stop reading (the owner ended the connection, e.g. for passing its
   * fd limit). Optional.
   */
  fdsReceived?(queued: number): boolean;
}

/** Options of a {@link Connection}. */
export interface ConnectionOptions {
  /** Outgoing bytes allowed to wait for a peer that does not read; past it the connection ends. Default 4 MiB. */
  maxPendingBytes?: number;
  /**
   * Messages dispatched in one turn of the event loop. Past it the
   * connection stops reading and carries on in a later turn (setImmediate),
   * after the other connections' polls had theirs, so that one flooding peer
   * cannot starve them. Order is kept and nothing is dropped. Default
   * unbounded.
   */
  maxMessagesPerTurn?: number;
  /** Milliseconds of dispatching in one turn before yielding the same way (checked between messages). Default unbounded. */
  maxTurnMs?: number;
  /**
   * A peer that spent the whole budget of {@link FLOOD_TURNS} turns in a
   * row is flooding: its next turns wait this many ms (a timer) instead of
   * coming at once, so that it gets at most about half of a busy event loop
   * (and makes at most half of the garbage the others pay for), until a
   * turn finds its socket empty. Default 0: no wait.
   */
  floodPauseMs?: number;
}

/** Turns in a row that spent their whole budget, after which a peer counts as flooding (see ConnectionOptions.floodPauseMs). */
export const FLOOD_TURNS = 4;

/**
 * A Wayland byte stream over a connected non-blocking AF_UNIX socket that it
 * owns: reads into a buffer that survives partial messages, queues received
 * fds in order, frames messages, and writes queued messages with their fds
 * when the socket accepts them (polling for writable when it does not).
 */
export class Connection {
  /** The socket fd (owned: closed by destroy). */
  readonly fd: number;
  /** Received fds not yet taken by a decoded message. */
  readonly fds = new FdQueue();
  /** Outgoing bytes, [0, length) not yet sent. */
  readonly out = new MessageWriter();
  /** True once destroy() ran. */
  destroyed = false;

  private readonly handler: ConnectionHandler;
  private readonly maxPendingBytes: number;
  private readonly maxMessagesPerTurn: number;
  private readonly maxTurnMs: number;
  private readonly poll: Poll;
  private input = new Uint8Array(65536);
  private inputView = new DataView(this.input.buffer);
  private inputStart = 0;
  private inputEnd = 0;
  /** fds to send (owned, closed once sent) and the out offset of the message carrying each. */
  private outFds: number[] = [];
  private outFdOffsets: number[] = [];
  private flushQueued = false;
  /** A flush waits for the requests left from the last read (see holdsOutput). */
  private outputHeld = false;
  /** The events the poll handle watches now (0: stopped). */
  private polling = 0;
  /** Outgoing bytes wait for the socket to accept them. */
  private writeWanted = false;
  private dispatching = false;
  private referenced = true;
  /** Messages dispatched in the current turn, and when the turn's time is up (performance.now() ms). */
  private turnMessages = 0;
  private turnDeadline = Infinity;
  /** The turn's budget is spent: reading stopped until `resume` runs on a later turn. */
  private yielded = false;
  private resume: NodeJS.Immediate | NodeJS.Timeout | null = null;
  private readonly floodPauseMs: number;
  /** Turns in a row that ended with the budget spent (reset by a turn that empties the socket). */
  private busyTurns = 0;

  constructor(fd: number, handler: ConnectionHandler, options: ConnectionOptions = {}) {
    this.fd = fd;
    this.handler = handler;
    this.maxPendingBytes = options.maxPendingBytes ?? 4 * 1024 * 1024;
    this.maxMessagesPerTurn = positiveOrInfinity(options.maxMessagesPerTurn, "maxMessagesPerTurn");
    this.maxTurnMs = positiveOrInfinity(options.maxTurnMs, "maxTurnMs");
    this.floodPauseMs = options.floodPauseMs ?? 0;
    if (!(this.floodPauseMs >= 0)) throw new RangeError(`floodPauseMs must be ≥ 0, got ${options.floodPauseMs}`);
    this.poll = new Poll(fd, (error, events) => this.onPoll(error, events));
    this.updatePolling();
  }

  /** Bytes queued and not yet accepted by the socket. */
  get pendingBytes(): number {
    return this.out.length;
  }

  /** Lets the event loop exit while this connection is open (or keeps it alive again). */
  setRef(ref: boolean): void {
    this.referenced = ref;
    if (ref) {
      this.poll.ref();
      this.resume?.ref();
    } else {
      this.poll.unref();
      this.resume?.unref();
    }
  }

  /** True while the connection waits for a later turn of the event loop to dispatch more (its turn's budget is spent). */
  get waitingForTurn(): boolean {
    return this.yielded;
  }

  /**
   * Queues one message; fds passed are dup'ed, so the caller keeps its own.
   * The write happens at the end of the current turn (or when the socket
   * drains), so a burst of messages goes out in one sendmsg.
   */
  send(objectId: number, message: CompiledMessage, args: readonly WireArg[]): void {
    if (this.destroyed) return;
    const offset = this.out.length;
    const fds: number[] = [];
    encodeMessage(this.out, objectId, message, args, fds);
    const duplicates: number[] = [];
    try {
      for (const fd of fds) duplicates.push(dup(fd));
    } catch (error) {
      // No fd to send (EBADF, EMFILE): take the message back whole.
      for (const fd of duplicates) closeFd(fd);
      this.out.length = offset;
      throw error;
    }
    for (const fd of duplicates) {
      this.outFds.push(fd);
      this.outFdOffsets.push(offset);
    }
    this.scheduleFlush();
  }

  /** Queues raw bytes (already framed) with fds, which become owned by the connection. For tests and tools. */
  sendRaw(bytes: Uint8Array, ownedFds: readonly number[] = []): void {
    if (this.destroyed) return;
    const offset = this.out.length;
    this.out.reserve(bytes.byteLength);
    this.out.bytes.set(bytes, offset);
    this.out.length += bytes.byteLength;
    for (const fd of ownedFds) {
      this.outFds.push(fd);
      this.outFdOffsets.push(offset);
    }
    this.scheduleFlush();
  }

  private scheduleFlush(): void {
    if (this.flushQueued) return;
    this.flushQueued = true;
    queueMicrotask(() => {
      this.flushQueued = false;
      if (this.holdsOutput()) {
        this.outputHeld = true;
        return;
      }
      this.flush();
    });
  }

  /**
   * While a turn ended with requests of one read still to dispatch, their
   * events wait for them: the peer then gets the answers to what it sent
   * together, as from a server that dispatches a whole read at once, and
   * cannot act on the first answers before the later ones are out (a client
   * that binds during its first roundtrip and adds listeners after it would
   * lose the events of its binds).
   */
  private holdsOutput(): boolean {
    if (!this.yielded || this.inputEnd - this.inputStart < HEADER_SIZE) return false;
    const size = this.inputView.getUint32(this.inputStart + 4, true) >>> 16;
    return this.inputEnd - this.inputStart >= size;
  }

  /** After a turn: writes the events held for it once nothing it read is left to dispatch. */
  private releaseOutput(): void {
    if (!this.outputHeld || this.holdsOutput()) return;
    this.outputHeld = false;
    this.scheduleFlush();
  }

  /** Writes what the socket accepts now; returns true when nothing is left. */
  flush(): boolean {
    if (this.destroyed) return false;
    // Bytes before `done` went out in this call; they are dropped from the buffer once, at the end.
    let done = 0;
    let fdsDone = 0;
    while (done < this.out.length) {
      let byteLimit = this.out.length;
      let fdCount = this.outFds.length - fdsDone;
      if (fdCount > MAX_FDS_PER_MESSAGE) {
        fdCount = MAX_FDS_PER_MESSAGE;
        // Stop before the message of the first fd that does not fit: its fds go with the next sendmsg.
        byteLimit = Math.max(this.outFdOffsets[fdsDone + MAX_FDS_PER_MESSAGE] as number, done + 1);
      }
      const fds = fdCount > 0 ? this.outFds.slice(fdsDone, fdsDone + fdCount) : undefined;
      let sent: number | null;
      try {
        sent = sendmsg(this.fd, this.out.bytes.subarray(done, byteLimit), fds);
      } catch (error) {
        this.dropSent(done, fdsDone);
        this.fail(new WaylandError("connection-closed", `sendmsg: ${(error as Error).message}`, { cause: error }));
        return false;
      }
      if (sent === null) break;
      if (fds !== undefined) {
        for (const fd of fds) closeFd(fd);
        fdsDone += fdCount;
      }
      done += sent;
    }
    this.dropSent(done, fdsDone);
    if (this.out.length > 0) {
      if (this.out.length > this.maxPendingBytes) {
        this.fail(new WaylandError("peer-not-reading", `peer stopped reading: ${this.out.length} bytes pending`));
        return false;
      }
      this.writeWanted = true;
      this.updatePolling();
      return false;
    }
    this.writeWanted = false;
    this.updatePolling();
    return true;
  }

  /** Forgets the first `bytes` bytes and `fdCount` fds (sent, and the fds already closed). */
  private dropSent(bytes: number, fdCount: number): void {
    if (bytes === 0 && fdCount === 0) return;
    this.out.consume(bytes);
    this.outFds.splice(0, fdCount);
    this.outFdOffsets.splice(0, fdCount);
    for (let i = 0; i < this.outFdOffsets.length; i++) {
      this.outFdOffsets[i] = Math.max(0, (this.outFdOffsets[i] as number) - bytes);
    }
  }

  /** Watches for readable unless the turn's budget is spent, and for writable while bytes wait. */
  private updatePolling(): void {
    if (this.destroyed) return;
    const events = (this.yielded ? 0 : POLL_READABLE) | (this.writeWanted ? POLL_WRITABLE : 0);
    if (this.polling === events) return;
    this.polling = events;
    if (events === 0) this.poll.stop();
    else this.poll.start(events);
  }

  private onPoll(error: Error | null, events: number): void {
    try {
      this.handlePoll(error, events);
    } catch (thrown) {
      // A listener threw: report it as an uncaught exception of its own, not through the addon's callback.
      queueMicrotask(() => {
        throw thrown;
      });
    }
  }

  private handlePoll(error: Error | null, events: number): void {
    if (this.destroyed) return;
    if (error !== null) {
      this.fail(new WaylandError("connection-closed", `poll: ${error.message}`, { cause: error }));
      return;
    }
    if ((events & POLL_WRITABLE) !== 0) {
      if (this.holdsOutput()) {
        // Held for the requests left from the last read: written once they are dispatched.
        this.outputHeld = true;
        this.writeWanted = false;
        this.updatePolling();
      } else {
        this.flush();
      }
    }
    if ((events & POLL_READABLE) !== 0 && !this.yielded) {
      this.startTurn();
      this.read();
      this.releaseOutput();
    }
  }

  private startTurn(): void {
    this.turnMessages = 0;
    this.turnDeadline = this.maxTurnMs === Infinity ? Infinity : performance.now() + this.maxTurnMs;
  }

  /** True once this turn dispatched its share (messages or time). */
  private turnSpent(): boolean {
    return (
      this.turnMessages >= this.maxMessagesPerTurn ||
      (this.turnDeadline !== Infinity && performance.now() >= this.turnDeadline)
    );
  }

  /**
   * Stops reading for this turn and carries on in a later one: setImmediate
   * runs after this turn's poll phase, where the other connections that were
   * ready got their share, and the next turn's poll waits for it. A peer
   * that keeps spending its budget waits `floodPauseMs` more.
   */
  private yieldTurn(): void {
    this.yielded = true;
    this.busyTurns += 1;
    this.updatePolling();
    if (this.resume !== null) return;
    const resume = (): void => {
      this.resume = null;
      if (this.destroyed) return;
      this.yielded = false;
      this.startTurn();
      try {
        this.read();
        this.releaseOutput();
      } catch (thrown) {
        queueMicrotask(() => {
          throw thrown;
        });
      }
      this.updatePolling();
    };
    this.resume =
      this.floodPauseMs > 0 && this.busyTurns >= FLOOD_TURNS
        ? setTimeout(resume, this.floodPauseMs)
        : setImmediate(resume);
    if (!this.referenced) this.resume.unref();
  }

  /**
   * Dispatches the complete messages already read, then reads what is there
   * and dispatches it, until the socket is empty or the turn's budget is
   * spent (then a later turn carries on, see {@link yieldTurn}).
   */
  private read(): void {
    // Messages an earlier turn read and left go first: order is the peer's.
    if (!this.dispatch(true) || this.yielded) return;
    for (let reads = 0; reads < 16 && !this.destroyed; reads++) {
      if (this.turnSpent()) {
        this.yieldTurn();
        return;
      }
      if (this.inputStart > 0 && this.inputStart === this.inputEnd) {
        this.inputStart = this.inputEnd = 0;
      }
      if (this.input.length - this.inputEnd < MAX_MESSAGE_SIZE) {
        this.input.copyWithin(0, this.inputStart, this.inputEnd);
        this.inputEnd -= this.inputStart;
        this.inputStart = 0;
      }
      let received;
      try {
        received = recvmsg(this.fd, this.input.subarray(this.inputEnd), MAX_FDS_PER_MESSAGE);
      } catch (error) {
        const reason = isSyscallError(error, "EMSGSIZE") ? "too many fds" : (error as Error).message;
        this.fail(new WaylandError("connection-closed", `recvmsg: ${reason}`, { cause: error }));
        return;
      }
      if (received === null) {
        this.busyTurns = 0;
        return;
      }
      this.fds.push(received.fds);
      if (received.fds.length > 0 && this.handler.fdsReceived !== undefined) {
        if (!this.handler.fdsReceived(this.fds.length) || this.destroyed) return;
      }
      if (received.bytes === 0) {
        this.fail(undefined);
        return;
      }
      this.inputEnd += received.bytes;
      if (!this.dispatch(true) || this.yielded) return;
      // What is left belongs to an incomplete message, which cannot carry this many fds: someone is
      // sending fds without messages to hold them, to exhaust ours.
      if (this.fds.length > MAX_FDS_PER_MESSAGE) {
        this.fail(new WaylandError("protocol-error", `${this.fds.length} fds received without their messages`));
        return;
      }
    }
  }

  /** Feeds bytes as if read from the socket (for tests of framing); returns false once stopped. */
  receiveForTest(bytes: Uint8Array, fds: readonly number[] = []): boolean {
    this.fds.push(fds);
    if (this.input.length - this.inputEnd < bytes.length) {
      const grown = new Uint8Array(this.inputEnd + bytes.length + MAX_MESSAGE_SIZE);
      grown.set(this.input.subarray(0, this.inputEnd));
      this.input = grown;
      this.inputView = new DataView(grown.buffer);
    }
    this.input.set(bytes, this.inputEnd);
    this.inputEnd += bytes.length;
    return this.dispatch(false);
  }

  /**
   * Dispatches complete messages in order; with `budgeted`, only while the
   * turn's budget lasts (then it yields the turn). False once stopped.
   */
  private dispatch(budgeted: boolean): boolean {
    if (this.dispatching) return true;
    this.dispatching = true;
    try {
      while (!this.destroyed && this.inputEnd - this.inputStart >= HEADER_SIZE) {
        if (budgeted && this.turnSpent()) {
          this.yieldTurn();
          return true;
        }
        const start = this.inputStart;
        const objectId = this.inputView.getUint32(start, true);
        const word = this.inputView.getUint32(start + 4, true);
        const size = word >>> 16;
        if (size < HEADER_SIZE || size > MAX_MESSAGE_SIZE || size % 4 !== 0) {
          this.fail(new WaylandError("protocol-error", `bad message size ${size} for object ${objectId}`));
          return false;
        }
        if (this.inputEnd - start < size) break;
        this.inputStart = start + size;
        this.turnMessages += 1;
        const more = this.handler.message(
          objectId,
          word & 0xffff,
          this.input,
          this.inputView,
          start + HEADER_SIZE,
          start + size,
        );
        if (!more) return false;
      }
      return !this.destroyed;
    } finally {
      this.dispatching = false;
    }
  }

  /** One last best-effort write of queued bytes, errors ignored (the connection is ending). */
  private sendWhatFits(): void {
    try {
      while (this.out.length > 0) {
        const fdCount = Math.min(this.outFds.length, MAX_FDS_PER_MESSAGE);
        const fds = fdCount > 0 ? this.outFds.slice(0, fdCount) : undefined;
        const sent = sendmsg(this.fd, this.out.bytes.subarray(0, this.out.length), fds);
        if (sent === null) return;
        this.out.consume(sent);
        if (fds !== undefined) {
          for (const fd of fds) closeFd(fd);
          this.outFds.splice(0, fdCount);
          this.outFdOffsets.splice(0, fdCount);
        }
      }
    } catch {
      // The peer is gone; nothing more can reach it.
    }
  }

  private fail(error: WaylandError | undefined): void {
    if (this.destroyed) return;
    this.destroy();
    this.handler.closed(error);
  }

  /**
   * Closes the socket, the poll handle and every fd still queued either way.
   * Queued outgoing bytes are tried once first, so a protocol error posted
   * just before reaches the peer.
   */
  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    if (this.resume !== null) {
      clearImmediate(this.resume as NodeJS.Immediate);
      clearTimeout(this.resume as NodeJS.Timeout);
    }
    this.resume = null;
    this.sendWhatFits();
    this.poll.close();
    closeFd(this.fd);
    this.fds.destroy();
    for (const fd of this.outFds) closeFd(fd);
    this.outFds = [];
    this.outFdOffsets = [];
  }
}
