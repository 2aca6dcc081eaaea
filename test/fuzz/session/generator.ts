/**
 * The agent messages of the fuzz target `session`: a model of the session's
 * windows (as the agent knows them) and a generator of agent → daemon
 * messages that keeps most of them valid for that state, so that a session
 * lives for hundreds to thousands of messages and reaches the validator's
 * state rules (unmapped, docked, override-redirect, the configure handshake,
 * clipboard requests) and the registry's and host's handling, with field
 * values now and then at the protocol's edges (clamps and drops), and,
 * rarely, an attack: a mutated message, an unknown window, a duplicate or
 * empty CREATE, a dump of bogus, foreign, revoked or too few grant refs,
 * MFNDUMP, unknown types, daemon-only types, bad lengths, random bytes, a
 * clipboard too big. Bytes come from test/helpers/agent-peer.ts's builders
 * (the reference layouts, written independently of protocol/'s encoder) or
 * from corpus messages retargeted at a live window.
 */
import { HOSTILE_U32, mutate, type Random } from "../harness.ts";
import { agentMessage } from "../../helpers/agent-peer.ts";
import { bytes } from "../../protocol/bytes.ts";
import type { FuzzAgent } from "./agent.ts";
import { MESSAGE_CODES, type CorpusTemplates } from "./corpus.ts";

const V1_1 = 0x00010001;
const V1_2 = 0x00010002;
const V1_3 = 0x00010003;
/** Window ids the generator uses: a small range, so that ids are reused after DESTROY (issue 6914). */
const FIRST_ID = 0x00400001;
const ID_RANGE = 48;
/** More live windows than this and the generator stops creating (the WINDOW_LIMIT attack goes past on purpose). */
const MAX_LIVE = 32;
const TWO_31 = 0x80000000;
/** X cursor font glyphs are even numbers below 154. */
const GLYPHS = 77;

/** What the agent believes of one of its windows. */
interface WindowModel {
  readonly id: number;
  mapped: boolean;
  docked: boolean;
  /** The image of the last dump, or null. */
  image: { width: number; height: number } | null;
}

/** One generated message: its bytes and, for an attack, its name. */
export interface Generated {
  bytes: Uint8Array;
  attack: string | null;
}

type Kind =
  | "CREATE"
  | "MAP"
  | "UNMAP"
  | "DESTROY"
  | "CONFIGURE"
  | "SHMIMAGE"
  | "WINDOW_DUMP"
  | "WMNAME"
  | "WMCLASS"
  | "WINDOW_HINTS"
  | "WINDOW_FLAGS"
  | "CURSOR"
  | "DOCK"
  | "CLIPBOARD_DATA";

/** Weights of the valid messages (a SHMIMAGE storm is what agents send most). */
const WEIGHTS: ReadonlyArray<[Kind, number]> = [
  ["CREATE", 5],
  ["MAP", 6],
  ["UNMAP", 2],
  ["DESTROY", 3],
  ["CONFIGURE", 10],
  ["SHMIMAGE", 30],
  ["WINDOW_DUMP", 2],
  ["WMNAME", 5],
  ["WMCLASS", 2],
  ["WINDOW_HINTS", 4],
  ["WINDOW_FLAGS", 3],
  ["CURSOR", 4],
  ["DOCK", 1],
  ["CLIPBOARD_DATA", 1],
];
const TOTAL_WEIGHT = WEIGHTS.reduce((sum, [, weight]) => sum + weight, 0);

const ATTACKS = [
  "mutated",
  "unknown-window",
  "duplicate-create",
  "empty-create",
  "bogus-refs",
  "foreign-refs",
  "stale-refs",
  "too-few-refs",
  "huge-dump",
  "bad-dump-type",
  "mfndump",
  "unknown-type",
  "daemon-type",
  "bad-length",
  "huge-length",
  "random-bytes",
  "clipboard-too-big",
  "cut-header",
] as const;
export type Attack = (typeof ATTACKS)[number];

/** Options of a {@link SessionGenerator}. */
export interface GeneratorOptions {
  /** The negotiated version. */
  version: number;
  /** One message in this many is an attack. */
  attackOneIn: number;
  /** One field set in this many takes values at the protocol's edges. */
  edgeOneIn: number;
}

/** The model of one connection's windows and the messages it generates; see the file comment. */
export class SessionGenerator {
  readonly #random: Random;
  readonly #agent: FuzzAgent;
  readonly #corpus: CorpusTemplates;
  readonly #options: GeneratorOptions;
  readonly #windows = new Map<number, WindowModel>();
  /** The live ids, for a uniform pick (swap-removed). */
  readonly #ids: number[] = [];
  /** Ids the generator must leave alone (a window the lane is clicking on). */
  readonly reserved = new Set<number>();
  /** The daemon asked for the clipboard and no answer went yet. */
  clipboardRequested = false;

  constructor(random: Random, agent: FuzzAgent, corpus: CorpusTemplates, options: GeneratorOptions) {
    this.#random = random;
    this.#agent = agent;
    this.#corpus = corpus;
    this.#options = options;
  }

  /** Live windows, as the agent believes. */
  get windowCount(): number {
    return this.#windows.size;
  }

  /** The next message: mostly valid for the model, sometimes at the edges, rarely an attack. */
  next(): Generated {
    const random = this.#random;
    if (random.oneIn(this.#options.attackOneIn)) {
      const attack = random.pick(ATTACKS);
      return { bytes: this.attack(attack), attack };
    }
    return { bytes: this.#valid(), attack: null };
  }

  /** The bytes of one attack (the model changes as the daemon would see it, where it matters). */
  attack(attack: Attack): Uint8Array {
    const random = this.#random;
    const id = this.#pickId();
    switch (attack) {
      case "mutated":
        return mutate(random, this.#valid(), this.#corpus.any(random));
      case "unknown-window":
        return this.#forWindow(this.#unusedId(), random.pick(["MAP", "CONFIGURE", "SHMIMAGE", "WMNAME", "DESTROY"]));
      case "duplicate-create":
        return id === null ? this.#valid() : agentMessage.create(id, { x: 0, y: 0, width: 10, height: 10 });
      case "empty-create": {
        const fresh = this.#unusedId();
        return agentMessage.create(fresh, {
          x: 0,
          y: 0,
          width: random.oneIn(2) ? 0 : 5,
          height: random.oneIn(2) ? 5 : 0,
        });
      }
      case "bogus-refs":
        return id === null
          ? this.#valid()
          : agentMessage.windowDump(id, 16, 16, [random.u32(), random.u32(), random.u32(), random.u32()]);
      case "foreign-refs":
        return id === null ? this.#valid() : agentMessage.windowDump(id, 16, 16, [...this.#agent.foreignRefs]);
      case "stale-refs": {
        if (id === null) return this.#valid();
        const stale = this.#agent.staleRefs;
        const start = random.below(Math.max(1, stale.length - 1));
        return agentMessage.windowDump(id, 16, 16, stale.slice(start, start + 2));
      }
      case "too-few-refs": {
        if (id === null) return this.#valid();
        const framebuffer = random.pick(this.#agent.framebuffers);
        return agentMessage.windowDump(id, framebuffer.width + 64, framebuffer.height + 64, framebuffer.refs);
      }
      case "huge-dump":
        return id === null
          ? this.#valid()
          : agentMessage.windowDump(id, random.pick([16385, 0xffffffff, 0x80000000]), 6145, [1, 2]);
      case "bad-dump-type": {
        if (id === null) return this.#valid();
        const framebuffer = random.pick(this.#agent.framebuffers);
        return agentMessage.windowDump(id, framebuffer.width, framebuffer.height, framebuffer.refs, {
          dumpType: 1 + random.below(4),
        });
      }
      case "mfndump":
        return bytes()
          .header(MESSAGE_CODES.MFNDUMP, id ?? FIRST_ID, 16)
          .u32(64)
          .u32(64)
          .u32(24)
          .u32(0)
          .build();
      case "unknown-type": {
        // Past MSG_MAX or below MSG_MIN, with a sane length: dropped whole, the stream stays in sync.
        const type = random.oneIn(2) ? 150 + random.below(100) : random.below(123);
        const length = random.below(64);
        return bytes()
          .header(type, id ?? 0, length)
          .raw(random.bytes(length))
          .build();
      }
      case "daemon-type": {
        const type = random.pick([124, 125, 126, 127, 128, 129, 137, 138, 139, 142, 149]);
        return bytes()
          .header(type, id ?? 0, 0)
          .build();
      }
      case "bad-length": {
        const message = this.#valid();
        const view = new DataView(message.buffer, message.byteOffset, message.byteLength);
        const length = view.getUint32(8, true);
        view.setUint32(8, random.pick([length + 1, length - 1, length + 4, 0, length * 2]) >>> 0, true);
        return message;
      }
      case "huge-length":
        return bytes()
          .header(random.pick([130, 136, 140, 141, 147]), id ?? 0, random.pick(HOSTILE_U32))
          .build();
      case "random-bytes":
        return random.bytes(1 + random.below(96));
      case "clipboard-too-big":
        return agentMessage.clipboardData(new Uint8Array(256002 + random.below(64)), this.#options.version);
      case "cut-header":
        return this.#valid().subarray(0, 1 + random.below(11));
    }
  }

  /** A valid CLIPBOARD_DATA answer (or, one time in `hostileOneIn`, an oversized one) for a CLIPBOARD_REQ. */
  clipboardAnswer(hostileOneIn: number): Uint8Array {
    const random = this.#random;
    this.clipboardRequested = false;
    if (random.oneIn(hostileOneIn)) {
      // Over the default max_clipboard_size (64000), within the protocol's 256000: dropped, clipboard cleared.
      return agentMessage.clipboardData(new Uint8Array(64001 + random.below(1000)).fill(0x41), this.#options.version);
    }
    const length = random.oneIn(8) ? 0 : 1 + random.below(200);
    const data = new Uint8Array(length);
    for (let i = 0; i < length; i++) data[i] = 0x20 + random.below(95);
    return agentMessage.clipboardData(data, this.#options.version);
  }

  /** Creates, maps and dumps window `id` (a framebuffer's whole image), for the lane to click on; the bytes. */
  showWindow(id: number, framebufferIndex: number, title: string, position: { x: number; y: number }): Uint8Array[] {
    const framebuffer = this.#agent.framebuffers[framebufferIndex];
    if (framebuffer === undefined) throw new Error(`no framebuffer ${framebufferIndex}`);
    const rect = { x: position.x, y: position.y, width: framebuffer.width, height: framebuffer.height };
    this.#add(id);
    const model = this.#windows.get(id) as WindowModel;
    model.mapped = true;
    model.image = { width: framebuffer.width, height: framebuffer.height };
    const out = [agentMessage.create(id, rect), agentMessage.wmclass(id, "FuzzCheck", "fuzzcheck")];
    out.push(agentMessage.wmname(id, title), agentMessage.map(id));
    out.push(agentMessage.windowDump(id, framebuffer.width, framebuffer.height, framebuffer.refs));
    out.push(agentMessage.shmimage(id, { x: 0, y: 0, width: framebuffer.width, height: framebuffer.height }));
    return out;
  }

  /** Takes note of messages sent from elsewhere (a corpus replay), so that the model follows what the daemon saw. */
  observe(message: Uint8Array): void {
    if (message.length < 12) return;
    const view = new DataView(message.buffer, message.byteOffset, message.byteLength);
    const type = view.getUint32(0, true);
    const id = view.getUint32(4, true);
    switch (type) {
      case MESSAGE_CODES.CREATE:
        this.#add(id);
        return;
      case MESSAGE_CODES.DESTROY:
        this.#remove(id);
        return;
      case MESSAGE_CODES.MAP: {
        const window = this.#windows.get(id);
        if (window !== undefined && !window.docked) window.mapped = true;
        return;
      }
      case MESSAGE_CODES.UNMAP: {
        const window = this.#windows.get(id);
        if (window !== undefined && !window.docked) window.mapped = false;
        return;
      }
      case MESSAGE_CODES.DOCK: {
        const window = this.#windows.get(id);
        if (window !== undefined && !window.mapped) window.docked = true;
        return;
      }
      default:
        return;
    }
  }

  /** A WINDOW_DUMP of `message` (from a corpus) with its refs and size replaced by one of the agent's framebuffers. */
  regrant(message: Uint8Array): Uint8Array {
    const view = new DataView(message.buffer, message.byteOffset, message.byteLength);
    const id = view.getUint32(4, true);
    const framebuffer = this.#random.pick(this.#agent.framebuffers);
    const window = this.#windows.get(id);
    if (window !== undefined) window.image = { width: framebuffer.width, height: framebuffer.height };
    return agentMessage.windowDump(id, framebuffer.width, framebuffer.height, framebuffer.refs);
  }

  // ---- valid messages ----

  #valid(): Uint8Array {
    const random = this.#random;
    let roll = random.below(TOTAL_WEIGHT);
    let kind: Kind = "SHMIMAGE";
    for (const [name, weight] of WEIGHTS) {
      if (roll < weight) {
        kind = name;
        break;
      }
      roll -= weight;
    }
    if (kind === "CREATE" || this.#windows.size === 0) return this.#create();
    const id = this.#pickId();
    if (id === null) return this.#create();
    const window = this.#windows.get(id) as WindowModel;
    const version = this.#options.version;
    if ((kind === "CURSOR" && version < V1_3) || (kind === "WINDOW_DUMP" && version < V1_2)) kind = "SHMIMAGE";
    if (kind === "WMCLASS" && version < V1_1) kind = "WMNAME";
    // Most messages of a type come from a real session's bytes when the corpus has that type.
    if (kind !== "WINDOW_DUMP" && kind !== "DESTROY" && kind !== "CLIPBOARD_DATA" && random.oneIn(4)) {
      const template = this.#corpus.template(random, kind);
      if (template !== null) {
        const out = new Uint8Array(template);
        new DataView(out.buffer).setUint32(4, id, true);
        this.observe(out);
        return out;
      }
    }
    return this.#build(kind, window);
  }

  #build(kind: Kind, window: WindowModel): Uint8Array {
    const random = this.#random;
    const edge = random.oneIn(this.#options.edgeOneIn);
    const id = window.id;
    switch (kind) {
      case "MAP": {
        if (window.mapped || window.docked) {
          // Mostly an UNMAP first; sometimes the MAP anyway (dropped: already mapped / docked).
          if (!random.oneIn(8)) return this.#build(window.docked ? "SHMIMAGE" : "UNMAP", window);
        }
        const transientFor = random.oneIn(4) ? (this.#pickId() ?? 0) : edge ? random.u32() : 0;
        const overrideRedirect = edge ? random.pick(HOSTILE_U32) : random.oneIn(6) ? 1 : 0;
        this.#afterValid("MAP", window);
        return agentMessage.map(id, { transientFor, overrideRedirect });
      }
      case "UNMAP":
        this.#afterValid("UNMAP", window);
        return agentMessage.unmap(id);
      case "DESTROY":
        this.#remove(id);
        return agentMessage.destroy(id);
      case "CONFIGURE": {
        const pending = this.#agent.traffic.configures.get(id);
        if (pending !== undefined && !random.oneIn(4)) {
          this.#agent.traffic.configures.delete(id);
          return agentMessage.configure(id, pending);
        }
        return agentMessage.configure(id, { ...this.#rect(edge), overrideRedirect: random.oneIn(10) ? 1 : 0 });
      }
      case "SHMIMAGE": {
        if (edge) {
          return agentMessage.shmimage(id, {
            x: random.pick(HOSTILE_U32) | 0,
            y: random.below(64) - 8,
            width: random.pick(HOSTILE_U32) | 0,
            height: random.below(300),
          });
        }
        const image = window.image ?? { width: 64, height: 64 };
        const x = random.below(image.width);
        const y = random.below(image.height);
        return agentMessage.shmimage(id, {
          x,
          y,
          width: 1 + random.below(image.width - x),
          height: 1 + random.below(image.height - y),
        });
      }
      case "WINDOW_DUMP": {
        const agent = this.#agent;
        if (random.oneIn(12)) {
          window.image = null;
          return agentMessage.windowDump(id, 0, 0, random.oneIn(3) ? [1, 2] : []);
        }
        if (random.oneIn(200)) {
          // A fresh grant in place of an old one: the old refs go stale, as when an agent reallocates.
          agent.replaceFramebuffer(random.below(agent.framebuffers.length));
        }
        const framebuffer = random.pick(agent.framebuffers);
        window.image = { width: framebuffer.width, height: framebuffer.height };
        // Refs in reverse are still the window's own pages, just not one run: guid's copy path.
        const refs =
          framebuffer.refs.length > 1 && random.oneIn(8) ? [...framebuffer.refs].reverse() : framebuffer.refs;
        return agentMessage.windowDump(id, framebuffer.width, framebuffer.height, refs, {
          bpp: random.oneIn(16) ? 24 : 32,
        });
      }
      case "WMNAME":
        return agentMessage.wmname(id, this.#text(128, edge));
      case "WMCLASS":
        return agentMessage.wmclass(id, this.#text(64, edge), this.#text(64, edge));
      case "WINDOW_HINTS": {
        const value = (): number => (edge ? random.pick(HOSTILE_U32) : random.below(400));
        return agentMessage.windowHints(id, {
          flags: edge ? random.u32() : random.pick([0, 16, 32, 48, 64, 256, 16 | 32 | 64 | 256, 8, 16 | 1]),
          minWidth: value(),
          minHeight: value(),
          maxWidth: value() + 100,
          maxHeight: value() + 100,
          widthInc: random.below(16),
          heightInc: random.below(16),
          baseWidth: value(),
          baseHeight: value(),
        });
      }
      case "WINDOW_FLAGS": {
        const flags = [0, 1, 2, 4, 3, 7];
        return agentMessage.windowFlags(
          id,
          edge ? random.pick(HOSTILE_U32) : random.pick(flags),
          edge ? random.pick(HOSTILE_U32) : random.pick(flags),
        );
      }
      case "CURSOR":
        return agentMessage.cursor(
          id,
          edge
            ? random.pick(HOSTILE_U32)
            : random.oneIn(5)
              ? 0
              : 0x100 + 2 * random.below(GLYPHS) + (random.oneIn(20) ? 1 : 0),
        );
      case "DOCK":
        if (window.mapped) return this.#build("SHMIMAGE", window);
        window.docked = true;
        return agentMessage.dock(id);
      case "CLIPBOARD_DATA": {
        // Unsolicited unless the daemon asked: dropped (CLIPBOARD_UNREQUESTED).
        if (this.clipboardRequested) return this.clipboardAnswer(4);
        return agentMessage.clipboardData(random.bytes(random.below(64)), this.#options.version);
      }
      case "CREATE":
        return this.#create();
    }
  }

  #afterValid(kind: Kind, window: WindowModel): void {
    if (kind === "MAP" && !window.docked) window.mapped = true;
    else if (kind === "UNMAP" && !window.docked) window.mapped = false;
  }

  #create(): Uint8Array {
    const random = this.#random;
    if (this.#windows.size >= MAX_LIVE) {
      const id = this.#pickId();
      if (id !== null) return this.#build("DESTROY", this.#windows.get(id) as WindowModel);
    }
    const id = this.#unusedId();
    const edge = random.oneIn(this.#options.edgeOneIn);
    let rect = this.#rect(false);
    if (edge) {
      const size = (): number => {
        const value = random.pick(HOSTILE_U32);
        return value === 0 ? 1 : value;
      };
      rect = { x: random.pick(HOSTILE_U32) | 0, y: random.pick(HOSTILE_U32) | 0, width: size(), height: size() };
    }
    const overrideRedirect = edge ? random.pick(HOSTILE_U32) : random.oneIn(8) ? 1 : 0;
    // A size of 2^31 or more is dropped (CREATE_NEGATIVE_SIZE): no window then.
    if (rect.width >>> 0 < TWO_31 && rect.height >>> 0 < TWO_31) this.#add(id);
    return agentMessage.create(id, { ...rect, overrideRedirect });
  }

  #rect(edge: boolean): { x: number; y: number; width: number; height: number } {
    const random = this.#random;
    if (edge) {
      return {
        x: random.pick(HOSTILE_U32) | 0,
        y: random.pick(HOSTILE_U32) | 0,
        width: random.pick(HOSTILE_U32),
        height: random.pick(HOSTILE_U32),
      };
    }
    return {
      x: random.below(1400) - 100,
      y: random.below(900) - 100,
      width: 1 + random.below(random.oneIn(20) ? 1400 : 200),
      height: 1 + random.below(random.oneIn(20) ? 900 : 150),
    };
  }

  /** A title or class: printable ASCII mostly; at the edges control bytes, bad UTF-8 or a full field without NUL. */
  #text(size: number, edge: boolean): Uint8Array {
    const random = this.#random;
    if (edge) return random.bytes(random.oneIn(3) ? size : random.below(size));
    const length = random.below(Math.min(size, 40));
    const out = new Uint8Array(length);
    for (let i = 0; i < length; i++) out[i] = 0x20 + random.below(95);
    return out;
  }

  /** A message of type `kind` for `id` (an attack: the id is not live). */
  #forWindow(id: number, kind: "MAP" | "CONFIGURE" | "SHMIMAGE" | "WMNAME" | "DESTROY"): Uint8Array {
    switch (kind) {
      case "MAP":
        return agentMessage.map(id);
      case "CONFIGURE":
        return agentMessage.configure(id, { x: 0, y: 0, width: 10, height: 10 });
      case "SHMIMAGE":
        return agentMessage.shmimage(id, { x: 0, y: 0, width: 1, height: 1 });
      case "WMNAME":
        return agentMessage.wmname(id, "ghost");
      case "DESTROY":
        return agentMessage.destroy(id);
    }
  }

  #pickId(): number | null {
    const ids = this.#ids;
    for (let tries = 0; tries < 4 && ids.length > 0; tries++) {
      const id = ids[this.#random.below(ids.length)] as number;
      if (!this.reserved.has(id)) return id;
    }
    return null;
  }

  #unusedId(): number {
    for (let tries = 0; ; tries++) {
      // Past the small range only when a replay filled it.
      const id = FIRST_ID + this.#random.below(tries < 64 ? ID_RANGE : 0x100000);
      if (!this.#windows.has(id) && !this.reserved.has(id)) return id;
    }
  }

  #add(id: number): void {
    if (this.#windows.has(id)) return;
    this.#windows.set(id, { id, mapped: false, docked: false, image: null });
    this.#ids.push(id);
  }

  #remove(id: number): void {
    if (!this.#windows.delete(id)) return;
    const at = this.#ids.indexOf(id);
    const last = this.#ids.pop() as number;
    if (at < this.#ids.length) this.#ids[at] = last;
  }
}
