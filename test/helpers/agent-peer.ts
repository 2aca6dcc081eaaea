/**
 * A test peer standing in for a domain's GUI agent, a possibly hostile one:
 * the vchan server on port 6000 and a memfd grant table, the agent's half of
 * the handshake, and one builder per agent → daemon message. The builders
 * write the layouts of qubes-gui-protocol.md 1.6 with the independent
 * ByteBuilder, never protocol/'s encoder, so daemon tests see bytes our own
 * encoder did not produce, and `sendRaw` / `sendSplit` send anything at all.
 * What the daemon sends back is decoded with protocol/'s StreamDecoder and
 * kept in order; WINDOW_DUMP_ACK and DESTROY acks are counted, and a
 * CLIPBOARD_REQ may be answered automatically. Every wait is bounded and its
 * rejection names what never came.
 */
import * as native from "../../native/index.ts";
import { StreamDecoder, type Message, type MessageName, type MessageOf } from "../../protocol/index.ts";
import { MemfdGrantTable, type SharedPages } from "../../shm/index.ts";
import {
  VCHAN_CONNECTED,
  VCHAN_DISCONNECTED,
  VCHAN_WAITING,
  createVchanServer,
  type Vchan,
} from "../../vchan/index.ts";
import { bytes } from "../protocol/bytes.ts";

// Wire values written out here (not imported from protocol/), so these bytes stay independent of the code under test.
const MSG_CREATE = 130;
const MSG_DESTROY = 131;
const MSG_MAP = 132;
const MSG_UNMAP = 133;
const MSG_CONFIGURE = 134;
const MSG_SHMIMAGE = 136;
const MSG_CLIPBOARD_DATA = 140;
const MSG_WMNAME = 141;
const MSG_DOCK = 143;
const MSG_WINDOW_HINTS = 144;
const MSG_WINDOW_FLAGS = 145;
const MSG_WMCLASS = 146;
const MSG_WINDOW_DUMP = 147;
const MSG_CURSOR = 148;

/** The vchan port of the GUI protocol. */
const GUI_PORT = 6000;
/** The grant page size of the protocol (Xen's), in bytes. */
const GRANT_PAGE = 4096;
/** Most refs one WINDOW_DUMP may carry (MAX_GRANT_REFS_COUNT). */
const MAX_REFS = 98_304;
/** 1.4: the daemon answers the version word with the negotiated version before xconf. */
const VERSION_1_4 = 0x00010004;
/** 1.2: CLIPBOARD_DATA carries its length in `untrusted_len` (before: in `window`). */
const VERSION_1_2 = 0x00010002;
/** Default wait of every bounded wait here, in ms. */
const DEFAULT_TIMEOUT_MS = 15_000;
/** How many message types a timeout message lists. */
const RECENT_TYPES = 10;

/** XSizeHints bits that {@link agentMessage.windowHints} sets for the fields it is given. */
const P_MIN_SIZE = 16;
const P_MAX_SIZE = 32;
const P_RESIZE_INC = 64;
const P_BASE_SIZE = 256;

/** A field of a message: a boolean (0/1) or any u32, hostile values welcome. */
type Flag = boolean | number;

function flag(value: Flag | undefined): number {
  if (value === undefined) return 0;
  if (typeof value === "boolean") return value ? 1 : 0;
  return value;
}

/** `value` (UTF-8 text or raw bytes) zero-padded to `size` bytes; no NUL is added when it fills the field. */
function fixedField(value: string | Uint8Array, size: number, what: string): Uint8Array {
  const raw = typeof value === "string" ? new TextEncoder().encode(value) : value;
  if (raw.length > size) throw new RangeError(`${what} is ${raw.length} bytes; the field holds ${size}`);
  const out = new Uint8Array(size);
  out.set(raw);
  return out;
}

/** A window rectangle, root-relative for CREATE/CONFIGURE and window-relative for SHMIMAGE. */
export interface AgentRect {
  x: number;
  y: number;
  width: number;
  height: number;
}

/** The fields of a WINDOW_HINTS; unset numbers are 0. */
export interface AgentWindowHints {
  /** XSizeHints flags; default: PMinSize / PMaxSize / PResizeInc / PBaseSize for the pairs given. */
  flags?: number;
  minWidth?: number;
  minHeight?: number;
  maxWidth?: number;
  maxHeight?: number;
  widthInc?: number;
  heightInc?: number;
  baseWidth?: number;
  baseHeight?: number;
}

/**
 * Builders of every agent → daemon message as bytes, from the layouts of
 * qubes-gui-protocol.md 1.6 with the independent ByteBuilder; nothing is
 * sent. Why apart from {@link AgentPeer}: a test can cut, glue or corrupt the
 * bytes before it sends them with `sendRaw` or `sendSplit`.
 */
export const agentMessage = {
  /** CREATE (130), since 1.0: 24-byte body x, y, width, height, parent, override_redirect. */
  create(id: number, window: AgentRect & { parent?: number; overrideRedirect?: Flag }): Uint8Array {
    return bytes()
      .header(MSG_CREATE, id, 24)
      .i32(window.x)
      .i32(window.y)
      .u32(window.width)
      .u32(window.height)
      .u32(window.parent ?? 0)
      .u32(flag(window.overrideRedirect))
      .build();
  },

  /** MAP (132), since 1.0: 8-byte body transient_for, override_redirect. */
  map(id: number, options: { transientFor?: number; overrideRedirect?: Flag } = {}): Uint8Array {
    return bytes()
      .header(MSG_MAP, id, 8)
      .u32(options.transientFor ?? 0)
      .u32(flag(options.overrideRedirect))
      .build();
  },

  /** UNMAP (133), since 1.0: no body. */
  unmap(id: number): Uint8Array {
    return bytes().header(MSG_UNMAP, id, 0).build();
  },

  /** DESTROY (131), since 1.0: no body; a ≥ 1.5 daemon answers with DESTROY for the same id. */
  destroy(id: number): Uint8Array {
    return bytes().header(MSG_DESTROY, id, 0).build();
  },

  /** CONFIGURE (134), since 1.0: 20-byte body x, y, width, height, override_redirect (ignored by daemons). */
  configure(id: number, rect: AgentRect & { overrideRedirect?: Flag }): Uint8Array {
    return bytes()
      .header(MSG_CONFIGURE, id, 20)
      .i32(rect.x)
      .i32(rect.y)
      .u32(rect.width)
      .u32(rect.height)
      .u32(flag(rect.overrideRedirect))
      .build();
  },

  /** SHMIMAGE (136), since 1.0: 16-byte body, a window-relative rectangle to repaint. */
  shmimage(id: number, rect: AgentRect): Uint8Array {
    return bytes().header(MSG_SHMIMAGE, id, 16).i32(rect.x).i32(rect.y).i32(rect.width).i32(rect.height).build();
  },

  /** WMNAME (141), since 1.0: char[128]; text is UTF-8, zero padded, unterminated when it fills all 128 bytes. */
  wmname(id: number, title: string | Uint8Array): Uint8Array {
    return bytes()
      .header(MSG_WMNAME, id, 128)
      .raw(fixedField(title, 128, "the title"))
      .build();
  },

  /** WMCLASS (146), since 1.1: res_class char[64], then res_name char[64]. */
  wmclass(id: number, resClass: string | Uint8Array, resName: string | Uint8Array): Uint8Array {
    return bytes()
      .header(MSG_WMCLASS, id, 128)
      .raw(fixedField(resClass, 64, "res_class"))
      .raw(fixedField(resName, 64, "res_name"))
      .build();
  },

  /** WINDOW_HINTS (144), since 1.0: 36-byte body of nine u32. */
  windowHints(id: number, hints: AgentWindowHints): Uint8Array {
    let flags = 0;
    if (hints.minWidth !== undefined || hints.minHeight !== undefined) flags |= P_MIN_SIZE;
    if (hints.maxWidth !== undefined || hints.maxHeight !== undefined) flags |= P_MAX_SIZE;
    if (hints.widthInc !== undefined || hints.heightInc !== undefined) flags |= P_RESIZE_INC;
    if (hints.baseWidth !== undefined || hints.baseHeight !== undefined) flags |= P_BASE_SIZE;
    return bytes()
      .header(MSG_WINDOW_HINTS, id, 36)
      .u32(hints.flags ?? flags)
      .u32(hints.minWidth ?? 0)
      .u32(hints.minHeight ?? 0)
      .u32(hints.maxWidth ?? 0)
      .u32(hints.maxHeight ?? 0)
      .u32(hints.widthInc ?? 0)
      .u32(hints.heightInc ?? 0)
      .u32(hints.baseWidth ?? 0)
      .u32(hints.baseHeight ?? 0)
      .build();
  },

  /** WINDOW_FLAGS (145), since 1.0: flags_set, flags_unset (1 fullscreen, 2 demands attention, 4 minimize). */
  windowFlags(id: number, set: number, unset: number): Uint8Array {
    return bytes().header(MSG_WINDOW_FLAGS, id, 8).u32(set).u32(unset).build();
  },

  /** CURSOR (148), since 1.3: one u32 (0, or 0x100 + an X font glyph). */
  cursor(id: number, value: number): Uint8Array {
    return bytes().header(MSG_CURSOR, id, 4).u32(value).build();
  },

  /** DOCK (143), since 1.0: no body; makes an unmapped window a tray icon. */
  dock(id: number): Uint8Array {
    return bytes().header(MSG_DOCK, id, 0).build();
  },

  /** WINDOW_DUMP (147), since 1.2: {type, width, height, bpp} then one u32 grant ref per page. */
  windowDump(
    id: number,
    width: number,
    height: number,
    refs: readonly number[],
    options: { dumpType?: number; bpp?: number } = {},
  ): Uint8Array {
    const builder = bytes()
      .header(MSG_WINDOW_DUMP, id, 16 + 4 * refs.length)
      .u32(options.dumpType ?? 0)
      .u32(width)
      .u32(height)
      .u32(options.bpp ?? 32);
    for (const ref of refs) builder.u32(ref);
    return builder.build();
  },

  /**
   * CLIPBOARD_DATA (140), since 1.0: the raw bytes; the length goes in
   * `untrusted_len` (window 0) from 1.2, before that in `window` as well.
   */
  clipboardData(data: Uint8Array, version = 0x00010008): Uint8Array {
    const window = version < VERSION_1_2 ? data.length : 0;
    return bytes().header(MSG_CLIPBOARD_DATA, window, data.length).raw(data).build();
  },
};

/** Options of {@link listenAgentPeer}. */
export interface AgentPeerOptions {
  /** This peer's domain id (the vchan server, the granter of framebuffers). */
  agentDomain: number;
  /** The GUI domain's id (the daemon's; the vchan client and grantee). */
  guiDomain: number;
  /** Rendezvous directory of the vchan and grant sockets. */
  socketDir: string;
  /** The version word sent in the handshake; default 0x00010008 (1.8). Any u32, hostile ones included. */
  version?: number;
  /** maxGrantedPages of the grant table (default: the table's own, 1 GiB). */
  grantPages?: number;
  /** Answer every CLIPBOARD_REQ with CLIPBOARD_DATA of these bytes; unset: leave requests unanswered. */
  answerClipboard?: Uint8Array | (() => Uint8Array);
}

/** The daemon's screen description from the handshake (msg_xconf). */
export interface AgentXconf {
  /** Root width in pixels, rounded up to a multiple of 8. */
  w: number;
  /** Root height in pixels. */
  h: number;
  /** Root depth in bits (24). */
  depth: number;
  /** Frame-buffer memory in KiB. */
  mem: number;
}

/**
 * A framebuffer granted to the GUI domain: BGRX pixels (byte 0 blue, 1 green,
 * 2 red, 3 unused), stride = width × 4, the image from byte 0 of the first
 * ref's page. Colours are 0xXXRRGGBB numbers (X normally 0).
 */
export interface AgentFramebuffer {
  /** Width in pixels. */
  readonly width: number;
  /** Height in pixels. */
  readonly height: number;
  /** Bytes per row: width × 4. */
  readonly stride: number;
  /** The grant refs in image page order, what a WINDOW_DUMP carries (a copy: changing it changes no grant). */
  readonly refs: number[];
  /** The image (stride × height bytes) in page order, a writable view of the shared pages; empty once revoked. */
  readonly pixels: Uint8Array;
  /** True when the refs are not one contiguous run of the pool. */
  readonly scattered: boolean;
  /** Paints the whole image with `rgb`. */
  fill(rgb: number): void;
  /** Paints a rectangle, which must lie inside the image. */
  fillRect(x: number, y: number, width: number, height: number, rgb: number): void;
  /** Paints one pixel, which must lie inside the image. */
  setPixel(x: number, y: number, rgb: number): void;
  /** The pixel at (x, y) as 0xXXRRGGBB. */
  pixel(x: number, y: number): number;
}

/** What the peer holds for one framebuffer: its shares, and for a scattered one the view over them. */
interface FramebufferPages {
  readonly shares: SharedPages[];
  /** The mmapRuns view presenting scattered pages in image order, or null (the share's own buffer is the view). */
  readonly view: ArrayBuffer | null;
}

function checkInteger(value: number, name: string, min: number, max: number): void {
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new RangeError(`${name} must be an integer in ${min}..${max}, got ${String(value)}`);
  }
}

function makeFramebuffer(
  width: number,
  height: number,
  refs: number[],
  buffer: ArrayBuffer,
  scattered: boolean,
): AgentFramebuffer {
  const stride = width * 4;
  const pixels = new Uint8Array(buffer, 0, stride * height);
  const checkPoint = (x: number, y: number): void => {
    checkInteger(x, "x", 0, width - 1);
    checkInteger(y, "y", 0, height - 1);
  };
  const fillRect = (x: number, y: number, w: number, h: number, rgb: number): void => {
    checkInteger(x, "x", 0, width);
    checkInteger(y, "y", 0, height);
    checkInteger(w, "width", 0, width - x);
    checkInteger(h, "height", 0, height - y);
    if (w === 0 || h === 0) return;
    const row = new Uint8Array(w * 4);
    const rowView = new DataView(row.buffer);
    for (let i = 0; i < w; i++) rowView.setUint32(i * 4, rgb >>> 0, true);
    for (let line = y; line < y + h; line++) pixels.set(row, line * stride + x * 4);
  };
  return {
    width,
    height,
    stride,
    refs,
    pixels,
    scattered,
    fill: (rgb) => fillRect(0, 0, width, height, rgb),
    fillRect,
    setPixel(x, y, rgb) {
      checkPoint(x, y);
      new DataView(pixels.buffer, pixels.byteOffset).setUint32(y * stride + x * 4, rgb >>> 0, true);
    },
    pixel(x, y) {
      checkPoint(x, y);
      return new DataView(pixels.buffer, pixels.byteOffset).getUint32(y * stride + x * 4, true);
    },
  };
}

/** Resolves on a later turn of the event loop, after a poll phase has run (so an in-process reader sees a piece alone). */
function nextLoopTurn(): Promise<void> {
  return new Promise((resolve) => setImmediate(() => setImmediate(resolve)));
}

/**
 * An agent stand-in serving one daemon at a time. Create it with
 * {@link listenAgentPeer}; call {@link AgentPeer.handshake}, then send
 * messages with the builders (each sends at once and returns its bytes).
 */
export class AgentPeer {
  /** The version word this peer sends in the handshake. */
  readonly version: number;
  /** This peer's grant table (kept across daemons, as a real agent keeps its framebuffers). */
  readonly grants: MemfdGrantTable;
  /** Answer to every CLIPBOARD_REQ, or undefined to leave requests unanswered; may be changed at any time. */
  answerClipboard: Uint8Array | (() => Uint8Array) | undefined;
  /** The version both sides speak after the handshake (the daemon's word from 1.4, else the one sent); null before. */
  negotiatedVersion: number | null = null;
  /** The daemon's xconf from the handshake; null before. */
  xconf: AgentXconf | null = null;
  /** Bytes a builder or send was asked to send after the daemon went away (dropped, as the peer is gone). */
  bytesDropped = 0;

  readonly #options: AgentPeerOptions;
  #vchan: Vchan;
  #decoder: StreamDecoder | null = null;
  #received: Message[] = [];
  #errors: string[] = [];
  #windowDumpAcks = 0;
  #destroyAcks = 0;
  /** Bytes waiting for room in the vchan, in order. */
  #queue: Uint8Array[] = [];
  /** The current daemon went away (or close() was called). */
  #closed = false;
  #destroyed = false;
  readonly #framebuffers = new Map<AgentFramebuffer, FramebufferPages>();
  readonly #waiters = new Set<() => void>();
  readonly #readBuffer = new Uint8Array(65536);
  readonly #onData = (): void => this.#read();
  readonly #onDrain = (): void => this.#flush();
  readonly #onDisconnect = (): void => {
    if (this.#decoder !== null) this.#read();
    this.#closed = true;
    this.#dropQueue();
    this.#wake();
  };

  /** @internal Use {@link listenAgentPeer}. */
  constructor(options: AgentPeerOptions) {
    this.#options = options;
    this.version = (options.version ?? 0x00010008) >>> 0;
    this.answerClipboard = options.answerClipboard;
    this.grants = new MemfdGrantTable({
      domain: options.agentDomain,
      socketDir: options.socketDir,
      ...(options.grantPages === undefined ? {} : { maxGrantedPages: options.grantPages }),
    });
    try {
      this.grants.offer(options.guiDomain);
      this.#vchan = this.#listen();
    } catch (error) {
      this.grants.destroy();
      throw error;
    }
  }

  /** Every message the current daemon sent after the handshake, in order (a new list after {@link relisten}). */
  get received(): readonly Message[] {
    return this.#received;
  }

  /** Decoding errors in the current daemon's bytes (a test of a well-behaved daemon asserts there is none). */
  get errors(): readonly string[] {
    return this.#errors;
  }

  /** WINDOW_DUMP_ACKs the current daemon sent. */
  get windowDumpAcks(): number {
    return this.#windowDumpAcks;
  }

  /** DESTROY acknowledgements the current daemon sent. */
  get destroyAcks(): number {
    return this.#destroyAcks;
  }

  /** True once the current daemon went away (or this peer was closed). */
  get closed(): boolean {
    return this.#closed;
  }

  /** The underlying vchan server (for a test that needs its state or ring sizes). */
  get vchan(): Vchan {
    return this.#vchan;
  }

  /** Resolves once a daemon connected; rejects after `timeoutMs` with "no daemon connected within N ms". */
  whenConnected(timeoutMs = DEFAULT_TIMEOUT_MS): Promise<void> {
    const vchan = this.#vchan;
    if (vchan.isOpen() === VCHAN_CONNECTED) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        vchan.off("connect", onConnect);
        reject(new Error(`no daemon connected within ${timeoutMs} ms`));
      }, timeoutMs);
      const onConnect = (): void => {
        clearTimeout(timer);
        resolve();
      };
      if (vchan.isOpen() === VCHAN_DISCONNECTED) {
        clearTimeout(timer);
        reject(new Error("the vchan is closed: no daemon can connect (relisten() serves it again)"));
        return;
      }
      vchan.once("connect", onConnect);
    });
  }

  /**
   * The agent's half of the handshake: waits for a daemon, sends the version
   * word, then reads the daemon's answer ({@link receiveHandshake}). Rejects
   * naming the step that never came, within `timeoutMs` overall.
   */
  async handshake(timeoutMs = DEFAULT_TIMEOUT_MS): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    await this.whenConnected(timeoutMs);
    this.sendRaw(bytes().u32(this.version).build());
    await this.#receiveHandshake(deadline, timeoutMs);
  }

  /**
   * The second half of {@link handshake}, for a test that sent a version word
   * itself (split, say): reads the negotiated version (when the configured
   * `version` is ≥ 1.4) and the 16-byte xconf, then decodes everything after
   * them as daemon messages.
   */
  receiveHandshake(timeoutMs = DEFAULT_TIMEOUT_MS): Promise<void> {
    return this.#receiveHandshake(Date.now() + timeoutMs, timeoutMs);
  }

  async #receiveHandshake(deadline: number, reportedMs: number): Promise<void> {
    let negotiated = this.version;
    if (this.version >= VERSION_1_4) {
      const word = await this.#readExactly(4, deadline, reportedMs, "version word");
      negotiated = new DataView(word.buffer).getUint32(0, true);
    }
    const body = await this.#readExactly(16, deadline, reportedMs, "xconf");
    const view = new DataView(body.buffer);
    this.negotiatedVersion = negotiated;
    this.xconf = {
      w: view.getUint32(0, true),
      h: view.getUint32(4, true),
      depth: view.getUint32(8, true),
      mem: view.getUint32(12, true),
    };
    this.#decoder = new StreamDecoder({ from: "daemon", version: negotiated });
    this.#vchan.on("data", this.#onData);
    this.#read();
  }

  /** Sends CREATE; see {@link agentMessage.create}. */
  create(id: number, window: AgentRect & { parent?: number; overrideRedirect?: Flag }): Uint8Array {
    return this.sendRaw(agentMessage.create(id, window));
  }

  /** Sends MAP; see {@link agentMessage.map}. */
  map(id: number, options: { transientFor?: number; overrideRedirect?: Flag } = {}): Uint8Array {
    return this.sendRaw(agentMessage.map(id, options));
  }

  /** Sends UNMAP. */
  unmap(id: number): Uint8Array {
    return this.sendRaw(agentMessage.unmap(id));
  }

  /** Sends DESTROY. */
  destroy(id: number): Uint8Array {
    return this.sendRaw(agentMessage.destroy(id));
  }

  /** Sends CONFIGURE. */
  configure(id: number, rect: AgentRect & { overrideRedirect?: Flag }): Uint8Array {
    return this.sendRaw(agentMessage.configure(id, rect));
  }

  /** Sends SHMIMAGE. */
  shmimage(id: number, rect: AgentRect): Uint8Array {
    return this.sendRaw(agentMessage.shmimage(id, rect));
  }

  /** Sends WMNAME; see {@link agentMessage.wmname}. */
  wmname(id: number, title: string | Uint8Array): Uint8Array {
    return this.sendRaw(agentMessage.wmname(id, title));
  }

  /** Sends WMCLASS (class first, then name). */
  wmclass(id: number, resClass: string | Uint8Array, resName: string | Uint8Array): Uint8Array {
    return this.sendRaw(agentMessage.wmclass(id, resClass, resName));
  }

  /** Sends WINDOW_HINTS; see {@link agentMessage.windowHints}. */
  windowHints(id: number, hints: AgentWindowHints): Uint8Array {
    return this.sendRaw(agentMessage.windowHints(id, hints));
  }

  /** Sends WINDOW_FLAGS. */
  windowFlags(id: number, set: number, unset: number): Uint8Array {
    return this.sendRaw(agentMessage.windowFlags(id, set, unset));
  }

  /** Sends CURSOR. */
  cursor(id: number, value: number): Uint8Array {
    return this.sendRaw(agentMessage.cursor(id, value));
  }

  /** Sends DOCK. */
  dock(id: number): Uint8Array {
    return this.sendRaw(agentMessage.dock(id));
  }

  /** Sends WINDOW_DUMP of `refs` (usually a framebuffer's). */
  windowDump(
    id: number,
    width: number,
    height: number,
    refs: readonly number[],
    options: { dumpType?: number; bpp?: number } = {},
  ): Uint8Array {
    return this.sendRaw(agentMessage.windowDump(id, width, height, refs, options));
  }

  /** Sends CLIPBOARD_DATA in the form of the negotiated version (1.8 before the handshake). */
  clipboardData(data: Uint8Array): Uint8Array {
    return this.sendRaw(agentMessage.clipboardData(data, this.negotiatedVersion ?? 0x00010008));
  }

  /**
   * Sends any bytes as they are (malformed input welcome), after what is
   * still queued. Throws when no daemon connected yet; after the daemon went
   * away the bytes are dropped and counted in {@link bytesDropped}.
   */
  sendRaw(data: Uint8Array): Uint8Array {
    const state = this.#vchan.isOpen();
    if (state === VCHAN_WAITING) {
      throw new Error("no daemon is connected yet: await handshake() or whenConnected() before sending");
    }
    if (state !== VCHAN_CONNECTED || this.#closed) {
      this.bytesDropped += data.length;
      return data;
    }
    if (this.#queue.length > 0) {
      this.#queue.push(data.slice());
      return data;
    }
    const written = this.#vchan.write(data);
    if (written < data.length) this.#queue.push(data.slice(written));
    return data;
  }

  /**
   * Sends `data` in pieces of `chunkSizes` bytes (the rest, if any, as a last
   * piece), each handed to the vchan whole and followed by event-loop turns
   * (and `delayMs` more), so the daemon reads the pieces apart.
   */
  async sendSplit(data: Uint8Array, chunkSizes: readonly number[], options: { delayMs?: number } = {}): Promise<void> {
    const pieces: Uint8Array[] = [];
    let at = 0;
    for (const size of chunkSizes) {
      checkInteger(size, "a chunk size", 1, data.length - at);
      pieces.push(data.subarray(at, at + size));
      at += size;
    }
    if (at < data.length) pieces.push(data.subarray(at));
    for (const [index, piece] of pieces.entries()) {
      this.sendRaw(piece);
      if (index === pieces.length - 1) break;
      await this.whenSent();
      await nextLoopTurn();
      if (options.delayMs !== undefined && options.delayMs > 0) {
        await new Promise((resolve) => setTimeout(resolve, options.delayMs));
      }
    }
  }

  /** Resolves once every queued byte was handed to the vchan (or dropped with the daemon); bounded by `timeoutMs`. */
  whenSent(timeoutMs = DEFAULT_TIMEOUT_MS): Promise<void> {
    return this.#until(
      () => this.#queue.length === 0,
      () => {
        const queued = this.#queue.reduce((sum, part) => sum + part.length, 0);
        return new Error(`the daemon did not take ${queued} queued bytes within ${timeoutMs} ms`);
      },
      timeoutMs,
    );
  }

  /**
   * A framebuffer of width × height granted to the GUI domain. With
   * `scattered`, its refs are not one contiguous run of the pool (two shares,
   * the later-placed one listed first; at least 2 pages) while `pixels` still
   * shows the image in page order through one view of both.
   */
  framebuffer(width: number, height: number, options: { scattered?: boolean } = {}): AgentFramebuffer {
    this.#checkAlive();
    if (native.PAGE_SIZE !== GRANT_PAGE) {
      throw new Error(`framebuffers need ${GRANT_PAGE}-byte pages; this host's are ${native.PAGE_SIZE}`);
    }
    checkInteger(width, "width", 1, 16384);
    checkInteger(height, "height", 1, 16384);
    const needed = Math.ceil((width * height * 4) / GRANT_PAGE);
    checkInteger(needed, "the page count", 1, MAX_REFS);
    const gui = this.#options.guiDomain;
    if (options.scattered !== true) {
      const shared = this.grants.share(gui, needed);
      const framebuffer = makeFramebuffer(width, height, [...shared.refs], shared.buffer, false);
      this.#framebuffers.set(framebuffer, { shares: [shared], view: null });
      return framebuffer;
    }
    // One ref is always a run: a scattered framebuffer has at least two pages.
    const pages = Math.max(2, needed);
    const a = this.grants.share(gui, Math.ceil(pages / 2));
    let b: SharedPages;
    try {
      b = this.grants.share(gui, Math.floor(pages / 2));
    } catch (error) {
      this.grants.revoke(a);
      throw error;
    }
    // The share placed higher in the pool comes first, so refs[first.pages] < refs[0]: never one run.
    const [first, second] = (a.refs[0] as number) > (b.refs[0] as number) ? [a, b] : [b, a];
    let view: ArrayBuffer;
    try {
      if (first.contiguous.fd !== second.contiguous.fd) throw new Error("the two shares lie in different pools");
      view = native.mmapRuns(
        first.contiguous.fd,
        [
          { offset: first.contiguous.offset, length: first.contiguous.length },
          { offset: second.contiguous.offset, length: second.contiguous.length },
        ],
        { writable: true },
      );
    } catch (error) {
      this.grants.revoke(a);
      this.grants.revoke(b);
      throw error;
    }
    const framebuffer = makeFramebuffer(width, height, [...first.refs, ...second.refs], view, true);
    this.#framebuffers.set(framebuffer, { shares: [first, second], view });
    return framebuffer;
  }

  /** Revokes a framebuffer's pages now, whatever dumps are in flight (a hostile agent may); its pixels empty. */
  revoke(framebuffer: AgentFramebuffer): void {
    const pages = this.#framebuffers.get(framebuffer);
    if (pages === undefined) throw new Error("this framebuffer is not live in this peer (revoked already?)");
    this.#framebuffers.delete(framebuffer);
    if (pages.view !== null) native.munmapRuns(pages.view);
    for (const shared of pages.shares) this.grants.revoke(shared);
  }

  /** Messages of one type the current daemon sent, optionally for one window. */
  messages<T extends MessageName>(type: T, window?: number): Array<MessageOf<T>> {
    return this.#received.filter(
      (m): m is MessageOf<T> => m.type === type && (window === undefined || m.window === window),
    );
  }

  /**
   * Resolves with `predicate`'s value once it is neither undefined, null nor
   * false (checked now and after every message); rejects after `timeoutMs`
   * with "timed out after N ms waiting for <what>; received: <last types>",
   * or as soon as the daemon went away with the predicate still unmet.
   */
  waitFor<T>(predicate: () => T | undefined | null | false, what: string, timeoutMs = DEFAULT_TIMEOUT_MS): Promise<T> {
    return new Promise((resolve, reject) => {
      const finish = (error: Error | null, value?: T): void => {
        clearTimeout(timer);
        this.#waiters.delete(check);
        if (error === null) resolve(value as T);
        else reject(error);
      };
      const check = (): void => {
        const value = predicate();
        if (value !== undefined && value !== null && value !== false) finish(null, value);
        else if (this.#closed) {
          finish(new Error(`the daemon went away while waiting for ${what}; received: ${this.#recentTypes()}`));
        }
      };
      const timer = setTimeout(
        () =>
          finish(new Error(`timed out after ${timeoutMs} ms waiting for ${what}; received: ${this.#recentTypes()}`)),
        timeoutMs,
      );
      this.#waiters.add(check);
      check();
    });
  }

  /** The first message of `type` (for `window`, when given) the current daemon sent; see {@link waitFor}. */
  waitForMessage<T extends MessageName>(
    type: T,
    window?: number,
    timeoutMs = DEFAULT_TIMEOUT_MS,
  ): Promise<MessageOf<T>> {
    const what = window === undefined ? `a ${type}` : `a ${type} for window ${window}`;
    return this.waitFor(() => this.messages(type, window)[0], what, timeoutMs);
  }

  /** Resolves once the current daemon went away; rejects after `timeoutMs` with "the daemon did not disconnect within N ms". */
  whenDisconnected(timeoutMs = DEFAULT_TIMEOUT_MS): Promise<void> {
    return this.#until(
      () => this.#closed,
      () => new Error(`the daemon did not disconnect within ${timeoutMs} ms; received: ${this.#recentTypes()}`),
      timeoutMs,
    );
  }

  /**
   * Serves the vchan again after the daemon went away (a new server on the
   * same path), keeping the grant table and its framebuffers, as a real
   * agent does between daemons. The handshake, `received`, counts and errors
   * start afresh; call {@link handshake} again.
   */
  relisten(): void {
    this.#checkAlive();
    if (this.#vchan.isOpen() === VCHAN_CONNECTED && !this.#closed) {
      throw new Error("the daemon is still connected: relisten() serves the next one after it went away");
    }
    this.#release(this.#vchan);
    this.#decoder = null;
    this.#received = [];
    this.#errors = [];
    this.#windowDumpAcks = 0;
    this.#destroyAcks = 0;
    this.#queue = [];
    this.negotiatedVersion = null;
    this.xconf = null;
    this.#closed = false;
    this.#vchan = this.#listen();
  }

  /** Closes the vchan (bytes still queued are dropped), unmaps every framebuffer view and destroys the grant table. */
  close(): void {
    if (this.#destroyed) return;
    this.#destroyed = true;
    this.#release(this.#vchan);
    for (const pages of this.#framebuffers.values()) {
      if (pages.view !== null) native.munmapRuns(pages.view);
    }
    this.#framebuffers.clear();
    this.grants.destroy();
    this.#closed = true;
    this.#dropQueue();
    this.#wake();
  }

  #listen(): Vchan {
    const vchan = createVchanServer({
      backend: "socket",
      domain: this.#options.guiDomain,
      port: GUI_PORT,
      ownDomain: this.#options.agentDomain,
      socketDir: this.#options.socketDir,
    });
    vchan.on("disconnect", this.#onDisconnect);
    vchan.on("drain", this.#onDrain);
    return vchan;
  }

  #release(vchan: Vchan): void {
    vchan.off("data", this.#onData);
    vchan.off("drain", this.#onDrain);
    vchan.off("disconnect", this.#onDisconnect);
    vchan.close();
  }

  #checkAlive(): void {
    if (this.#destroyed) throw new Error("this agent peer was closed");
  }

  /** Reads exactly `count` handshake bytes by `deadline`. */
  #readExactly(count: number, deadline: number, reportedMs: number, what: string): Promise<Uint8Array> {
    const vchan = this.#vchan;
    const into = new Uint8Array(count);
    return new Promise((resolve, reject) => {
      const finish = (error: Error | null): void => {
        clearTimeout(timer);
        vchan.off("data", tryRead);
        vchan.off("disconnect", onGone);
        if (error === null) resolve(into);
        else reject(error);
      };
      const tryRead = (): boolean => {
        if (vchan.dataReady() < count) return false;
        vchan.recv(into);
        finish(null);
        return true;
      };
      const onGone = (): void => {
        if (!tryRead()) finish(new Error(`the daemon disconnected before sending its ${what}`));
      };
      const timer = setTimeout(
        () => finish(new Error(`no ${what} from the daemon within ${reportedMs} ms`)),
        Math.max(1, deadline - Date.now()),
      );
      vchan.on("data", tryRead);
      vchan.on("disconnect", onGone);
      if (!tryRead() && vchan.isOpen() === VCHAN_DISCONNECTED) onGone();
    });
  }

  /** Resolves when `done()` holds (checked now and on every wake), else rejects with `timeoutError()` after `timeoutMs`. */
  #until(done: () => boolean, timeoutError: () => Error, timeoutMs: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const check = (): void => {
        if (!done()) return;
        clearTimeout(timer);
        this.#waiters.delete(check);
        resolve();
      };
      const timer = setTimeout(() => {
        this.#waiters.delete(check);
        reject(timeoutError());
      }, timeoutMs);
      this.#waiters.add(check);
      check();
    });
  }

  #wake(): void {
    for (const waiter of [...this.#waiters]) waiter();
  }

  #recentTypes(): string {
    if (this.#received.length === 0) return "nothing";
    const types = this.#received.slice(-RECENT_TYPES).map((m) => m.type);
    const more = this.#received.length > RECENT_TYPES ? "… " : "";
    return `${more}${types.join(" ")}`;
  }

  #flush(): void {
    while (this.#queue.length > 0) {
      if (this.#vchan.isOpen() !== VCHAN_CONNECTED) {
        this.#dropQueue();
        break;
      }
      const head = this.#queue[0] as Uint8Array;
      const written = this.#vchan.write(head);
      if (written < head.length) {
        this.#queue[0] = head.subarray(written);
        break;
      }
      this.#queue.shift();
    }
    this.#wake();
  }

  #dropQueue(): void {
    for (const part of this.#queue) this.bytesDropped += part.length;
    this.#queue = [];
  }

  #read(): void {
    const decoder = this.#decoder;
    if (decoder === null) return;
    const buffer = this.#readBuffer;
    for (;;) {
      const count = this.#vchan.read(buffer);
      if (count === 0) break;
      for (const result of decoder.push(buffer.subarray(0, count))) {
        if (!result.ok) {
          this.#errors.push(`at byte ${result.offset}: ${result.error.message}`);
          continue;
        }
        const value = result.value;
        if (value.type === "VERSION" || value.type === "XCONF") continue;
        this.#onMessage(value);
      }
    }
    this.#wake();
  }

  #onMessage(message: Message): void {
    this.#received.push(message);
    switch (message.type) {
      case "WINDOW_DUMP_ACK":
        this.#windowDumpAcks += 1;
        return;
      case "DESTROY":
        this.#destroyAcks += 1;
        return;
      case "CLIPBOARD_REQ": {
        const answer = this.answerClipboard;
        if (answer !== undefined) this.clipboardData(typeof answer === "function" ? answer() : answer);
        return;
      }
      default:
        return;
    }
  }
}

/**
 * Starts an agent stand-in: a vchan server (socket backend) for the GUI
 * domain on port 6000 and a memfd grant table offered to the GUI domain at
 * once. Returns before any daemon connects; call `handshake()` next.
 */
export async function listenAgentPeer(options: AgentPeerOptions): Promise<AgentPeer> {
  return new AgentPeer(options);
}
