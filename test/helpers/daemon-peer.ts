/**
 * A test peer standing in for the GUI daemon: our own protocol decoder and
 * grant mapping, driving an agent over a real vchan. It records every
 * message the agent sends, maps every WINDOW_DUMP (acknowledging it, and
 * every DESTROY, as a 1.8 daemon does, unless told to play one that never
 * acks dumps), and sends input and clipboard messages the way qubes-guid
 * would.
 */
import {
  QUBES_GUI_VCHAN_PORT,
  StreamDecoder,
  encodeMessage,
  encodeVersion,
  encodeXconf,
  makeXconf,
  negotiateVersion,
  type Message,
} from "../../protocol/index.ts";
import { MappedFramebuffer, createGrantTable, type GrantTable } from "../../shm/index.ts";
import { connectVchanClient, type Vchan, type VchanBackend } from "../../vchan/index.ts";

/** Options of {@link connectDaemonPeer}. */
export interface DaemonPeerOptions {
  /** The agent's domain id (vchan server, granter of framebuffers). */
  agentDomain: number;
  /** This peer's domain id (the GUI domain). */
  guiDomain: number;
  socketDir: string;
  backend?: VchanBackend;
  /** Screen size sent in xconf. */
  screen?: { width: number; height: number };
  /** Answer with this version instead of negotiating (for tests of old daemons). */
  version?: number;
  /** Acknowledge every WINDOW_DUMP (default true, as a 1.8 daemon does); false plays a daemon that never acks. */
  ackDumps?: boolean;
  /** Fault each framebuffer in when it is mapped (default true); false maps lazily, as guid does for the host. */
  populate?: boolean;
}

/** What the peer knows of one agent window. */
export interface PeerWindow {
  id: number;
  created: Extract<Message, { type: "CREATE" }>;
  mapped: boolean;
  title: string;
  resClass: string;
  resName: string;
  transientFor: number;
  overrideRedirect: boolean;
  x: number;
  y: number;
  width: number;
  height: number;
  framebuffer: MappedFramebuffer | null;
  destroyed: boolean;
}

function cString(bytes: Uint8Array): string {
  const end = bytes.indexOf(0);
  return new TextDecoder().decode(end < 0 ? bytes : bytes.subarray(0, end));
}

/** A connected daemon stand-in. */
export class DaemonPeer {
  /** Every message the agent sent, in order. */
  readonly received: Message[] = [];
  /** The raw bytes the agent sent after the handshake's version word. */
  readonly windows = new Map<number, PeerWindow>();
  readonly version: number;
  /** Whether WINDOW_DUMPs are acknowledged (a test may change it). */
  ackDumps: boolean;
  readonly #populate: boolean;
  readonly #vchan: Vchan;
  readonly #grants: GrantTable;
  readonly #agentDomain: number;
  readonly #decoder: StreamDecoder;
  readonly #waiters: Array<() => void> = [];
  readonly #listeners: Array<(message: Message) => void> = [];
  readonly #raw: Uint8Array[] = [];
  #closed = false;
  /** Any protocol error seen in the agent's bytes (a test asserts there is none). */
  readonly errors: string[] = [];

  constructor(
    vchan: Vchan,
    grants: GrantTable,
    agentDomain: number,
    version: number,
    versionWord: Uint8Array,
    options: { ackDumps?: boolean; populate?: boolean } = {},
  ) {
    this.ackDumps = options.ackDumps ?? true;
    this.#populate = options.populate ?? true;
    this.#vchan = vchan;
    this.#grants = grants;
    this.#agentDomain = agentDomain;
    this.version = version;
    this.#decoder = new StreamDecoder({ from: "agent", version });
    this.#raw.push(versionWord.slice());
    vchan.on("data", () => this.#read());
    vchan.on("disconnect", () => {
      this.#read();
      this.#closed = true;
      this.#wake();
    });
    this.#read();
  }

  /** True once the agent closed the vchan. */
  get closed(): boolean {
    return this.#closed;
  }

  /** Sends a daemon → agent message. */
  send(message: Message): void {
    const bytes = encodeMessage(message, { from: "daemon", version: this.version });
    let offset = 0;
    while (offset < bytes.length) {
      const written = this.#vchan.write(bytes.subarray(offset));
      if (written === 0) throw new Error("the agent stopped reading");
      offset += written;
    }
  }

  /** Resolves when `predicate` holds over what was received (checked after every message); rejects after `timeoutMs`. */
  waitFor<T>(predicate: () => T | undefined | false, what: string, timeoutMs = 15_000): Promise<T> {
    return new Promise((resolve, reject) => {
      const check = (): boolean => {
        const value = predicate();
        if (value !== undefined && value !== false) {
          clearTimeout(timer);
          resolve(value);
          return true;
        }
        if (this.#closed) {
          clearTimeout(timer);
          reject(new Error(`the agent closed the vchan while waiting for ${what}`));
          return true;
        }
        return false;
      };
      const timer = setTimeout(() => {
        const index = this.#waiters.indexOf(waiter);
        if (index >= 0) this.#waiters.splice(index, 1);
        reject(new Error(`timed out waiting for ${what}; received: ${this.received.map((m) => m.type).join(" ")}`));
      }, timeoutMs);
      const waiter = (): void => {
        if (check()) {
          const index = this.#waiters.indexOf(waiter);
          if (index >= 0) this.#waiters.splice(index, 1);
        }
      };
      if (!check()) this.#waiters.push(waiter);
    });
  }

  /** The first window whose title matches, once it is mapped with a framebuffer. */
  waitForWindow(match: (window: PeerWindow) => boolean, what: string, timeoutMs?: number): Promise<PeerWindow> {
    return this.waitFor(
      () => [...this.windows.values()].find((w) => !w.destroyed && w.mapped && w.framebuffer !== null && match(w)),
      what,
      timeoutMs,
    );
  }

  /** Messages of one type received so far, optionally for one window. */
  messages<T extends Message["type"]>(type: T, window?: number): Array<Extract<Message, { type: T }>> {
    return this.received.filter(
      (m): m is Extract<Message, { type: T }> => m.type === type && (window === undefined || m.window === window),
    );
  }

  /** Calls `listener` with every agent message as soon as it is decoded (for benchmarks: no scans). */
  listen(listener: (message: Message) => void): void {
    this.#listeners.push(listener);
  }

  /** Every byte the agent wrote, from its version word on. */
  rawBytes(): Uint8Array {
    return Buffer.concat(this.#raw);
  }

  /** The BGRX pixel at (x, y) of a window's framebuffer, as 0xXXRRGGBB. */
  pixel(window: PeerWindow, x: number, y: number): number {
    const fb = window.framebuffer;
    if (fb === null) throw new Error(`window ${window.id} has no framebuffer`);
    return new DataView(fb.pixels.buffer, fb.pixels.byteOffset).getUint32((y * fb.width + x) * 4, true);
  }

  /** Closes the vchan (the daemon "goes away") and unmaps every framebuffer. */
  close(): void {
    for (const window of this.windows.values()) {
      window.framebuffer?.unmap();
      window.framebuffer = null;
    }
    this.#closed = true;
    this.#vchan.close();
    this.#grants.destroy();
  }

  #wake(): void {
    for (const waiter of [...this.#waiters]) waiter();
  }

  #read(): void {
    const buffer = new Uint8Array(65536);
    while (this.#vchan.dataReady() > 0) {
      const count = this.#vchan.read(buffer);
      if (count === 0) break;
      this.#raw.push(buffer.slice(0, count));
      for (const result of this.#decoder.push(buffer.subarray(0, count))) {
        if (!result.ok) {
          this.errors.push(`at byte ${result.offset}: ${result.error.message}`);
          continue;
        }
        if (result.value.type === "VERSION" || result.value.type === "XCONF") continue;
        this.#onMessage(result.value);
      }
    }
    this.#wake();
  }

  #onMessage(message: Message): void {
    this.received.push(message);
    for (const listener of this.#listeners) listener(message);
    const window = this.windows.get(message.window);
    switch (message.type) {
      case "CREATE":
        this.windows.set(message.window, {
          id: message.window,
          created: message,
          mapped: false,
          title: "",
          resClass: "",
          resName: "",
          transientFor: 0,
          overrideRedirect: message.override_redirect !== 0,
          x: message.x,
          y: message.y,
          width: message.width,
          height: message.height,
          framebuffer: null,
          destroyed: false,
        });
        return;
      case "DESTROY":
        if (window !== undefined) {
          window.destroyed = true;
          window.framebuffer?.unmap();
          window.framebuffer = null;
        }
        this.send({ type: "DESTROY", window: message.window });
        return;
      default:
        break;
    }
    if (window === undefined) {
      this.errors.push(`${message.type} for unknown window ${message.window}`);
      return;
    }
    switch (message.type) {
      case "MAP":
        window.mapped = true;
        window.transientFor = message.transient_for;
        window.overrideRedirect = message.override_redirect !== 0;
        return;
      case "UNMAP":
        window.mapped = false;
        return;
      case "WMNAME":
        window.title = cString(message.data);
        return;
      case "WMCLASS":
        window.resClass = cString(message.res_class);
        window.resName = cString(message.res_name);
        return;
      case "CONFIGURE":
        window.x = message.x;
        window.y = message.y;
        window.width = message.width;
        window.height = message.height;
        return;
      case "WINDOW_DUMP":
        window.framebuffer?.unmap();
        window.framebuffer = new MappedFramebuffer(
          this.#grants,
          this.#agentDomain,
          message.width,
          message.height,
          Array.from(message.grant_refs),
          { populate: this.#populate },
        );
        if (this.ackDumps) this.send({ type: "WINDOW_DUMP_ACK", window: message.window });
        return;
      default:
        return;
    }
  }
}

/**
 * Connects to an agent as its daemon: vchan client on port 6000, the
 * daemon's half of the handshake, and the grant table attached to the
 * agent's pool.
 */
export async function connectDaemonPeer(options: DaemonPeerOptions): Promise<DaemonPeer> {
  const vchan = await connectVchanClient({
    backend: options.backend ?? "socket",
    domain: options.agentDomain,
    ownDomain: options.guiDomain,
    port: QUBES_GUI_VCHAN_PORT,
    socketDir: options.socketDir,
  });
  // The agent's version word comes first.
  const word = new Uint8Array(4);
  await new Promise<void>((resolve, reject) => {
    const tryRead = (): void => {
      if (vchan.dataReady() >= 4) {
        vchan.off("data", tryRead);
        vchan.recv(word);
        resolve();
      }
    };
    vchan.on("data", tryRead);
    vchan.once("disconnect", () => reject(new Error("the agent closed the vchan during the handshake")));
    tryRead();
  });
  const agentVersion = new DataView(word.buffer).getUint32(0, true);
  const negotiated = negotiateVersion(agentVersion);
  if (!negotiated.ok) throw negotiated.error;
  const version = options.version ?? negotiated.value.version;
  vchan.write(encodeVersion(version));
  vchan.write(encodeXconf(makeXconf(options.screen ?? { width: 1920, height: 1080 })));
  const grants = createGrantTable({ backend: "memfd", domain: options.guiDomain, socketDir: options.socketDir });
  await grants.attach(options.agentDomain);
  return new DaemonPeer(vchan, grants, options.agentDomain, version, word, options);
}
