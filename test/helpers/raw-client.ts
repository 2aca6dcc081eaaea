/**
 * A raw Wayland client for tests of hostile peers: messages built by hand
 * (independently of wayland/'s encoder), written with fds as fast as the
 * socket takes them, and events collected as they come, with bounded waits
 * that say what never came.
 */
import {
  Poll,
  POLL_READABLE,
  POLL_WRITABLE,
  close,
  connect as connectSocket,
  recvmsg,
  sendmsg,
  socket,
  socketpair,
} from "../../native/index.ts";
import type { Client, Display } from "../../wayland/index.ts";

/** One argument of a hand-built message: a 32-bit word (int, uint, object or new_id id) or a string. */
export type RawArg = number | string;

/** Builds one message: header (object id, size << 16 | opcode) and the arguments, strings padded to 4 bytes. */
export function rawMessage(objectId: number, opcode: number, args: readonly RawArg[] = []): Uint8Array {
  let size = 8;
  for (const arg of args) size += typeof arg === "number" ? 4 : 4 + ((Buffer.byteLength(arg) + 1 + 3) & ~3);
  const bytes = new Uint8Array(size);
  const view = new DataView(bytes.buffer);
  view.setUint32(0, objectId >>> 0, true);
  view.setUint32(4, ((size << 16) | opcode) >>> 0, true);
  let at = 8;
  for (const arg of args) {
    if (typeof arg === "number") {
      view.setUint32(at, arg >>> 0, true);
      at += 4;
    } else {
      const text = Buffer.from(arg);
      view.setUint32(at, text.length + 1, true);
      bytes.set(text, at + 4);
      at += 4 + ((text.length + 1 + 3) & ~3);
    }
  }
  return bytes;
}

/** Several messages in one byte string. */
export function concatMessages(messages: readonly Uint8Array[]): Uint8Array {
  return new Uint8Array(Buffer.concat(messages));
}

/** One event received: the object, the opcode and the body (header excluded). */
export interface RawEvent {
  objectId: number;
  opcode: number;
  body: Buffer;
}

/** A wl_display.error as received: the object it names, the code and the message. */
export interface RawError {
  objectId: number;
  code: number;
  message: string;
}

/** A raw client on one end of a socket. */
export class RawClient {
  readonly fd: number;
  /** Events received so far, in order. */
  readonly events: RawEvent[] = [];
  /** True once the compositor hung up. */
  closed = false;
  private readonly poll: Poll;
  private input = Buffer.alloc(0);
  private readonly writes: Array<{ bytes: Uint8Array; fds: number[]; done: () => void; failed: (e: Error) => void }> =
    [];
  private readonly watchers = new Set<() => void>();
  private nextCallbackId = 0xfe000000;

  /** Adopts a connected socket fd (owned from now on). */
  constructor(fd: number) {
    this.fd = fd;
    this.poll = new Poll(fd, (status, events) => this.onPoll(status !== null, events));
    this.poll.start(POLL_READABLE);
  }

  /** Connects to a listening compositor socket. */
  static connect(socketPath: string): RawClient {
    const fd = socket("stream");
    connectSocket(fd, socketPath);
    return new RawClient(fd);
  }

  /** A client of `display` over a socketpair: the server's Client and the raw end. */
  static pair(display: Display): { client: Client; raw: RawClient } {
    const [serverEnd, clientEnd] = socketpair("stream");
    const client = display.addClient(serverEnd);
    return { client, raw: new RawClient(clientEnd) };
  }

  /**
   * Writes `bytes` with `fds` (sent with the first byte, so they arrive with
   * these bytes; the caller keeps its own fds) after the writes queued
   * before; resolves once all of it is in the socket.
   */
  write(bytes: Uint8Array, fds: readonly number[] = []): Promise<void> {
    return new Promise((done, failed) => {
      this.writes.push({ bytes, fds: [...fds], done, failed });
      this.flush();
    });
  }

  /** The names of the globals announced on registry `registryId`, by interface. */
  globals(registryId = 2): Map<string, number> {
    const names = new Map<string, number>();
    for (const event of this.events) {
      if (event.objectId !== registryId || event.opcode !== 0) continue;
      const length = event.body.readUInt32LE(4);
      names.set(event.body.subarray(8, 8 + length - 1).toString(), event.body.readUInt32LE(0));
    }
    return names;
  }

  /** The wl_display.error received, if any. */
  error(): RawError | undefined {
    const event = this.events.find((candidate) => candidate.objectId === 1 && candidate.opcode === 0);
    if (event === undefined) return undefined;
    const length = event.body.readUInt32LE(8);
    return {
      objectId: event.body.readUInt32LE(0),
      code: event.body.readUInt32LE(4),
      message: event.body.subarray(12, 12 + length - 1).toString(),
    };
  }

  /** Sends wl_display.sync; resolves when its done came ("answered") or the compositor hung up first ("closed"). */
  async sync(what: string, timeoutMs = 20_000): Promise<"answered" | "closed"> {
    const id = this.nextCallbackId++;
    const answered = this.waitFor(
      (event) => event.objectId === id,
      `${what}: the sync's done or a hang-up`,
      timeoutMs,
      true,
    );
    await this.write(rawMessage(1, 0, [id])).catch(() => undefined);
    return (await answered) === null ? "closed" : "answered";
  }

  /** Gets a registry at id 2, waits for the globals, and binds `interfaces` at ids 3, 4 ... (at version 1 unless given). */
  async bindGlobals(interfaces: ReadonlyArray<string | [string, number]>): Promise<number[]> {
    await this.write(rawMessage(1, 1, [2]));
    await this.sync("the globals");
    const names = this.globals();
    const ids: number[] = [];
    const messages = interfaces.map((entry, index) => {
      const [name, version] = typeof entry === "string" ? [entry, 1] : entry;
      const global = names.get(name);
      if (global === undefined) throw new Error(`the compositor has no ${name}`);
      ids.push(3 + index);
      return rawMessage(2, 0, [global, name, version, 3 + index]);
    });
    await this.write(concatMessages(messages));
    return ids;
  }

  /**
   * Resolves with the first event (from the start) that matches, or null
   * when the compositor hung up first and `orClose`; rejects naming `what`
   * after `timeoutMs`.
   */
  waitFor(
    match: (event: RawEvent) => boolean,
    what: string,
    timeoutMs = 20_000,
    orClose = false,
  ): Promise<RawEvent | null> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => finish(new Error(`${what} never came within ${timeoutMs} ms`)), timeoutMs);
      const check = (): void => {
        const event = this.events.find(match);
        if (event !== undefined) finish(undefined, event);
        else if (this.closed) {
          if (orClose) finish(undefined, null);
          else finish(new Error(`the compositor hung up before ${what} (error: ${JSON.stringify(this.error())})`));
        }
      };
      const finish = (error?: Error, event?: RawEvent | null): void => {
        clearTimeout(timer);
        this.watchers.delete(check);
        if (error !== undefined) reject(error);
        else resolve(event ?? null);
      };
      this.watchers.add(check);
      check();
    });
  }

  /** Resolves once the compositor hung up; rejects naming `what` after `timeoutMs`. */
  waitForClose(what: string, timeoutMs = 20_000): Promise<void> {
    return this.waitFor(() => false, what, timeoutMs, true).then(() => undefined);
  }

  /** Closes the socket. */
  destroy(): void {
    if (!this.poll.closed) this.poll.close();
    if (!this.closed) {
      this.closed = true;
      close(this.fd);
    }
    for (const write of this.writes.splice(0)) write.failed(new Error("the raw client was destroyed"));
  }

  private flush(): void {
    while (this.writes.length > 0 && !this.closed) {
      const write = this.writes[0]!;
      let sent: number | null;
      try {
        sent = sendmsg(this.fd, write.bytes, write.fds.length > 0 ? write.fds : undefined);
      } catch (error) {
        this.writes.shift();
        write.failed(error as Error);
        continue;
      }
      if (sent === null) break;
      write.fds = [];
      write.bytes = write.bytes.subarray(sent);
      if (write.bytes.length === 0) {
        this.writes.shift();
        write.done();
      }
    }
    if (!this.poll.closed) this.poll.start(this.writes.length > 0 ? POLL_READABLE | POLL_WRITABLE : POLL_READABLE);
  }

  private onPoll(failed: boolean, events: number): void {
    if ((events & POLL_WRITABLE) !== 0) this.flush();
    if ((events & POLL_READABLE) !== 0 || failed) this.read();
  }

  private read(): void {
    const buffer = new Uint8Array(65536);
    for (;;) {
      let got;
      try {
        got = recvmsg(this.fd, buffer, 253);
      } catch {
        got = { bytes: 0, fds: [] };
      }
      if (got === null) break;
      for (const fd of got.fds) close(fd);
      if (got.bytes === 0) {
        this.poll.close();
        close(this.fd);
        this.closed = true;
        for (const write of this.writes.splice(0)) write.failed(new Error("the compositor hung up"));
        break;
      }
      this.input = Buffer.concat([this.input, buffer.subarray(0, got.bytes)]);
      while (this.input.length >= 8) {
        const size = this.input.readUInt32LE(4) >>> 16;
        if (size < 8 || this.input.length < size) break;
        this.events.push({
          objectId: this.input.readUInt32LE(0),
          opcode: this.input.readUInt32LE(4) & 0xffff,
          body: Buffer.from(this.input.subarray(8, size)),
        });
        this.input = this.input.subarray(size);
      }
    }
    for (const watcher of [...this.watchers]) watcher();
  }
}
