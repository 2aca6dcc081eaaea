/**
 * The fuzz target `session`'s agent: a hostile domain's side of one GUI
 * connection after another, on the real socket vchan and memfd grant
 * backends. It keeps a grant table with a few framebuffers painted with a
 * known pattern (kept across connections, as a real agent keeps its
 * buffers), serves the vchan for the daemon, does any handshake it is told
 * to (a good version word, a bogus one, a cut one, none), writes whatever
 * bytes it is given with flow control (a throttled daemon makes it wait,
 * never queue without bound), and decodes what the daemon sends with
 * protocol/'s StreamDecoder: a daemon byte that does not decode is the
 * daemon's bug and is reported. Every wait is bounded and its error names
 * what never came.
 */
import { StreamDecoder, type DecodeResult, type Message } from "../../../protocol/index.ts";
import { MemfdGrantTable, type SharedPages } from "../../../shm/index.ts";
import {
  VCHAN_CONNECTED,
  VCHAN_DISCONNECTED,
  VCHAN_WAITING,
  createVchanServer,
  type Vchan,
} from "../../../vchan/index.ts";

/** The vchan port of the GUI protocol. */
const GUI_PORT = 6000;
const PAGE = 4096;
/** 1.4: the daemon answers the version word with the negotiated version before xconf. */
const VERSION_1_4 = 0x00010004;
const OWN_MINOR = 8;

/** A framebuffer granted to the GUI domain: BGRX, stride width × 4, painted with {@link fuzzPixel}. */
export interface FuzzFramebuffer {
  readonly width: number;
  readonly height: number;
  readonly refs: readonly number[];
  readonly share: SharedPages;
}

/** The pattern of every framebuffer, as 0xRRGGBB: no two nearby pixels share it. */
export function fuzzPixel(x: number, y: number): number {
  return ((x * 7) & 0xff) | (((y * 5) & 0xff) << 8) | ((((x + y) * 3) & 0xff) << 16);
}

/** What the daemon sent on the current connection, as the lane needs it. */
export interface DaemonTraffic {
  /** CONFIGUREs of the daemon not yet answered, by window. */
  readonly configures: Map<number, { x: number; y: number; width: number; height: number }>;
  clipboardRequests: number;
  pastes: number;
  dumpAcks: number;
  destroyAcks: number;
  messages: number;
}

/** The version the daemon answers an agent's word with, or null when it refuses it (another major). */
export function expectedVersion(word: number): number | null {
  if (word >>> 16 !== 1) return null;
  return 0x00010000 | Math.min(word & 0xffff, OWN_MINOR);
}

/** One domain's agent for the fuzzer; see the file comment. */
export class FuzzAgent {
  readonly agentDomain: number;
  readonly guiDomain: number;
  readonly socketDir: string;
  readonly grants: MemfdGrantTable;
  readonly framebuffers: FuzzFramebuffer[] = [];
  /** Refs of pages granted to another domain than the daemon's: mapping them must be refused. */
  readonly foreignRefs: readonly number[];
  /** Refs of pages this agent revoked: mapping them must be refused. */
  readonly staleRefs: number[] = [];
  /** The version both sides speak on this connection, 0 before the handshake. */
  version = 0;
  traffic: DaemonTraffic = newTraffic();
  /** Errors in the daemon's bytes (a daemon bug); the first few. */
  readonly daemonErrors: string[] = [];
  #vchan: Vchan | null = null;
  #decoder: StreamDecoder | null = null;
  #queue: Uint8Array[] = [];
  #queued = 0;
  readonly #readBuffer = new Uint8Array(65536);
  readonly #waiters = new Set<() => void>();
  readonly #foreign: SharedPages;
  #destroyed = false;

  constructor(options: {
    agentDomain: number;
    guiDomain: number;
    socketDir: string;
    sizes: ReadonlyArray<[number, number]>;
  }) {
    this.agentDomain = options.agentDomain;
    this.guiDomain = options.guiDomain;
    this.socketDir = options.socketDir;
    this.grants = new MemfdGrantTable({ domain: options.agentDomain, socketDir: options.socketDir });
    try {
      this.grants.offer(options.guiDomain);
      for (const [width, height] of options.sizes) this.framebuffers.push(this.#framebuffer(width, height));
      // Pages for a domain that is not the daemon's: the daemon may never map them.
      this.#foreign = this.grants.share(options.guiDomain + 1000, 2);
      this.foreignRefs = [...this.#foreign.refs];
      this.#retireOne(2);
    } catch (error) {
      this.grants.destroy();
      throw error;
    }
  }

  /** True while a daemon is connected and the connection was not ended. */
  get connected(): boolean {
    return this.#vchan !== null && this.#vchan.isOpen() === VCHAN_CONNECTED;
  }

  /** True once the daemon went away (or the agent hung up); false while waiting or connected. */
  get gone(): boolean {
    return this.#vchan === null || this.#vchan.isOpen() === VCHAN_DISCONNECTED;
  }

  /** Bytes waiting for room in the vchan. */
  get queued(): number {
    return this.#queued;
  }

  /** Serves the vchan for the next daemon connection (the previous one must be over). */
  listen(): void {
    if (this.#vchan !== null) throw new Error("the agent still serves a connection: hangUp() it first");
    this.traffic = newTraffic();
    this.version = 0;
    this.#decoder = null;
    const vchan = createVchanServer({
      backend: "socket",
      domain: this.guiDomain,
      port: GUI_PORT,
      ownDomain: this.agentDomain,
      socketDir: this.socketDir,
    });
    vchan.on("connect", this.#wake);
    vchan.on("data", this.#onData);
    vchan.on("drain", this.#onDrain);
    vchan.on("disconnect", this.#onDisconnect);
    this.#vchan = vchan;
  }

  /** Resolves once the daemon connected; rejects naming it after `timeoutMs`. */
  whenConnected(timeoutMs: number): Promise<void> {
    return this.#until(
      () => this.#vchan?.isOpen() !== VCHAN_WAITING,
      () => `no daemon connected to domain ${this.agentDomain}'s vchan within ${timeoutMs} ms`,
      timeoutMs,
    ).then(() => {
      if (!this.connected) throw new Error(`domain ${this.agentDomain}'s vchan closed before a daemon connected`);
    });
  }

  /**
   * Reads the daemon's half of the handshake for the version word `sent`
   * (the negotiated word from 1.4, then xconf), then decodes the daemon's
   * messages. Rejects when it never comes, or is not what 1.x says.
   */
  async receiveHandshake(sent: number, timeoutMs: number): Promise<{ width: number; height: number }> {
    const expected = expectedVersion(sent);
    if (expected === null) throw new Error(`version word 0x${sent.toString(16)} has no handshake to receive`);
    const deadline = performance.now() + timeoutMs;
    if (expected >= VERSION_1_4) {
      const word = await this.#readExactly(4, deadline, "the negotiated version word");
      const got = new DataView(word.buffer).getUint32(0, true);
      if (got !== expected) {
        throw new Error(
          `the daemon answered version 0x${sent.toString(16)} with 0x${got.toString(16)}, not 0x${expected.toString(16)}`,
        );
      }
    }
    const xconf = new DataView((await this.#readExactly(16, deadline, "xconf")).buffer);
    this.version = expected;
    this.#decoder = new StreamDecoder({ from: "daemon", version: expected });
    this.#onData();
    return { width: xconf.getUint32(0, true), height: xconf.getUint32(4, true) };
  }

  /** Writes `data` now or after what is queued; dropped once the daemon is gone. */
  send(data: Uint8Array): void {
    const vchan = this.#vchan;
    if (vchan === null || vchan.isOpen() !== VCHAN_CONNECTED) return;
    if (this.#queue.length === 0) {
      const written = vchan.write(data);
      if (written === data.length) return;
      data = data.subarray(written);
    }
    this.#queue.push(data);
    this.#queued += data.length;
  }

  /**
   * Resolves once at most `below` bytes wait for the vchan, or the daemon is
   * gone; rejects after `timeoutMs` naming how much the daemon left unread.
   */
  whenWritable(below: number, timeoutMs: number): Promise<void> {
    return this.#until(
      () => this.#queued <= below || this.gone,
      () => `the daemon read none of domain ${this.agentDomain}'s ${this.#queued} queued bytes for ${timeoutMs} ms`,
      timeoutMs,
    );
  }

  /** Resolves once the daemon hung up (or the agent did); rejects after `timeoutMs` naming it. */
  whenGone(timeoutMs: number): Promise<void> {
    return this.#until(
      () => this.gone,
      () => `the daemon did not hang up domain ${this.agentDomain}'s connection within ${timeoutMs} ms`,
      timeoutMs,
    );
  }

  /** Resolves once `check()` holds, re-checked on every daemon message; rejects with `what` after `timeoutMs`. */
  waitFor(check: () => boolean, what: () => string, timeoutMs: number): Promise<void> {
    return this.#until(check, what, timeoutMs);
  }

  /** Ends the connection (queued bytes are dropped; what was written stays readable for the daemon). */
  hangUp(): void {
    const vchan = this.#vchan;
    if (vchan === null) return;
    this.#vchan = null;
    vchan.off("connect", this.#wake);
    vchan.off("data", this.#onData);
    vchan.off("drain", this.#onDrain);
    vchan.off("disconnect", this.#onDisconnect);
    vchan.close();
    this.#queue = [];
    this.#queued = 0;
    this.#wake();
  }

  /** Revokes framebuffer `index` (its refs become stale) and grants a fresh one of the same size in its place. */
  replaceFramebuffer(index: number): void {
    const old = this.framebuffers[index] as FuzzFramebuffer;
    this.framebuffers[index] = this.#framebuffer(old.width, old.height);
    this.grants.revoke(old.share);
    this.staleRefs.push(...old.refs);
    if (this.staleRefs.length > 256) this.staleRefs.splice(0, this.staleRefs.length - 256);
  }

  /** Hangs up and destroys the grant table. Idempotent. */
  close(): void {
    if (this.#destroyed) return;
    this.#destroyed = true;
    this.hangUp();
    this.grants.destroy();
  }

  #framebuffer(width: number, height: number): FuzzFramebuffer {
    const pages = Math.ceil((width * height * 4) / PAGE);
    const share = this.grants.share(this.guiDomain, pages);
    const words = new Uint32Array(share.buffer, 0, width * height);
    for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) words[y * width + x] = fuzzPixel(x, y);
    return { width, height, refs: [...share.refs], share };
  }

  /** Grants `pages` and revokes them at once, so that there are stale refs from the start. */
  #retireOne(pages: number): void {
    const share = this.grants.share(this.guiDomain, pages);
    const refs = [...share.refs];
    this.grants.revoke(share);
    this.staleRefs.push(...refs);
  }

  readonly #wake = (): void => {
    for (const waiter of [...this.#waiters]) waiter();
  };

  readonly #onDrain = (): void => {
    const vchan = this.#vchan;
    while (vchan !== null && this.#queue.length > 0 && vchan.isOpen() === VCHAN_CONNECTED) {
      const head = this.#queue[0] as Uint8Array;
      const written = vchan.write(head);
      this.#queued -= written;
      if (written < head.length) {
        this.#queue[0] = head.subarray(written);
        break;
      }
      this.#queue.shift();
    }
    this.#wake();
  };

  readonly #onDisconnect = (): void => {
    this.#onData();
    this.#queue = [];
    this.#queued = 0;
    this.#wake();
  };

  readonly #onData = (): void => {
    const vchan = this.#vchan;
    const decoder = this.#decoder;
    if (vchan === null || decoder === null) {
      this.#wake();
      return;
    }
    for (;;) {
      const count = vchan.read(this.#readBuffer);
      if (count === 0) break;
      decoder.feed(this.#readBuffer.subarray(0, count), this.#onDecoded);
    }
    this.#wake();
  };

  readonly #onDecoded = (result: DecodeResult): void => {
    if (!result.ok) {
      if (this.daemonErrors.length < 4) this.daemonErrors.push(`at byte ${result.offset}: ${result.error.toString()}`);
      return;
    }
    this.#onMessage(result.value as Message);
  };

  #onMessage(message: Message): void {
    const traffic = this.traffic;
    traffic.messages += 1;
    switch (message.type) {
      case "CONFIGURE":
        traffic.configures.set(message.window, {
          x: message.x,
          y: message.y,
          width: message.width,
          height: message.height,
        });
        return;
      case "CLIPBOARD_REQ":
        traffic.clipboardRequests += 1;
        return;
      case "CLIPBOARD_DATA":
        traffic.pastes += 1;
        return;
      case "WINDOW_DUMP_ACK":
        traffic.dumpAcks += 1;
        return;
      case "DESTROY":
        traffic.destroyAcks += 1;
        return;
      default:
        return;
    }
  }

  #readExactly(count: number, deadline: number, what: string): Promise<Uint8Array> {
    const into = new Uint8Array(count);
    let got = false;
    return this.#until(
      () => {
        const vchan = this.#vchan;
        if (vchan === null) return true;
        if (vchan.dataReady() >= count) {
          got = vchan.recv(into);
          return got;
        }
        return vchan.isOpen() === VCHAN_DISCONNECTED;
      },
      () => `no ${what} from the daemon on domain ${this.agentDomain}'s vchan in time`,
      Math.max(1, deadline - performance.now()),
    ).then(() => {
      if (!got) throw new Error(`the daemon hung up domain ${this.agentDomain}'s vchan before sending its ${what}`);
      return into;
    });
  }

  #until(done: () => boolean, what: () => string, timeoutMs: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const check = (): void => {
        if (!done()) return;
        clearTimeout(timer);
        this.#waiters.delete(check);
        resolve();
      };
      const timer = setTimeout(() => {
        this.#waiters.delete(check);
        reject(new Error(what()));
      }, timeoutMs);
      this.#waiters.add(check);
      check();
    });
  }
}

function newTraffic(): DaemonTraffic {
  return { configures: new Map(), clipboardRequests: 0, pastes: 0, dumpAcks: 0, destroyAcks: 0, messages: 0 };
}
