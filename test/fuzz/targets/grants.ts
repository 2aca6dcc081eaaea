/**
 * Fuzz target `grants`: the GUI domain's side of the memfd grant table, as
 * guid uses it (one long-lived table; attach(domain) when a session starts,
 * map and unmap of refs for SHMIMAGE and WINDOW_DUMP, detach when it ends),
 * against hostile domains in this process that offer pools over the
 * rendezvous socket. A domain is either a real MemfdGrantTable (shares,
 * revocations, a process replaced by a new one) or a hand-made offer: the
 * pool and table memfds of a real agent's offer (the corpus) or generated,
 * mutated in every field (hello words and length, fd count, pool and table
 * sizes, seals, header, entries), with fds of other kinds (an eventfd, a
 * FIFO, a socket, a directory, /dev/null, a regular file), granters that say
 * nothing or hang up, and entries flipped, pools grown, truncated or sealed
 * against writing while we map.
 *
 * An oracle written here predicts each attach (accepted or refused) from what
 * the offer holds, and each map from the table entries it wrote: the exact
 * error code, or a mapping whose every page is the page of its ref (each page
 * is stamped with its ref). Reactions: `attached`, `mapped`, `refused` (and
 * `refused:CODE`), `waiting` (attach aborted, as guid's handshake timeout
 * does), `ended` (detach with live mappings: they are gone), `stale`
 * (an unmap of an unmapped mapping), `truncate-refused`, `late-offer` (a
 * loaded machine ran the offer timeout before the granter's answer: counted,
 * as the timeout's time had passed).
 */
import { constants as fsConstants, mkdtempSync, openSync, rmSync, writeFileSync } from "node:fs";
import { execFileSync } from "node:child_process";
import { tmpdir } from "node:os";
import path from "node:path";

import * as native from "../../../native/index.ts";
import {
  MAX_REFS_PER_MAP,
  MappedFramebuffer,
  MemfdGrantTable,
  ShmError,
  grantSocketPath,
  type GrantMapping,
  type SharedPages,
} from "../../../shm/index.ts";
import {
  HOSTILE_U32,
  Random,
  mutate,
  newStats,
  react,
  unexpected,
  type FuzzInstance,
  type FuzzStats,
  type FuzzTarget,
} from "../harness.ts";

// The pool format of shm/memfd.ts, written out here so the oracle does not share the code under test.
const PAGE = 4096;
const HELLO_MAGIC = 0x51475250;
const TABLE_MAGIC = 0x51474e54;
const FORMAT_VERSION = 1;
const HEADER_WORDS = 16;
const MAX_ENTRIES = 2 ** 24;
const MAX_TABLE_BYTES = Math.ceil((HEADER_WORDS * 4 + MAX_ENTRIES * 4) / PAGE) * PAGE;
const NEVER = 0;
const GRANTED = 1;
const REVOKED = 2;
const WRITABLE = 4;
const SEAL_SHRINK = 0x2;
const SEAL_GROW = 0x4;
const SEAL_WRITE = 0x8;
const SEAL_FUTURE_WRITE = 0x10;

/** The GUI domain (ours) and the hostile domains. */
const OURS = 0;
const DOMAINS = [1, 2, 3, 4, 5, 6];
const OTHER = 9;
/** Pages an honest domain may grant in all (keeps its table small). */
const HONEST_LIMIT = 4096;
/** How long a granter that accepts and says nothing may hold attach() (GRANT_TIMEOUT), in ms. */
const OFFER_TIMEOUT_MS = 50;
/** guid's bound on attach: a domain that never offers (or never listens) is given up on, in ms. */
const ATTACH_BOUND_MS = 2000;
const SILENT_BOUND_MS = 80;
/** How long one map() may take before it counts as unbounded, in ms. */
const CALL_BOUND_MS = 1000;

/** One hand-made offer: everything a granter controls. */
interface Offer {
  hello: Uint8Array;
  poolPages: number;
  poolSeals: number;
  tableBytes: number;
  tableSeals: number;
  /** The table's first words (header and entries) as the granter writes them. */
  words: Uint32Array;
  /** What is sent in place of the pool and table memfds. */
  poolKind: FdKind;
  tableKind: FdKind;
  fdCount: number;
  /** Accept and say nothing, or hang up at once, or never listen. */
  behaviour: "answer" | "silent" | "hang-up" | "absent";
}

type FdKind = "memfd" | "eventfd" | "fifo" | "socket" | "directory" | "null" | "file";

/** What a hostile domain is now, for the oracle. */
interface Granter {
  domain: number;
  /** The table entries as they are now (for the oracle), by ref. */
  entry: (ref: number) => number;
  /** Entries the table has (its file's size): refs ≥ this are out of range. */
  capacity: number;
  poolFd: number;
  tableView: Uint32Array | null;
  /** Pages the pool holds now. */
  poolPages: () => number;
  /** Whether the pool is sealed against writing (a writable map fails). */
  writeSealed: () => boolean;
  /** Refs worth asking for: granted ones, in runs. */
  runs: number[][];
  /** Refs whose page carries its stamp (the oracle checks those pages of a mapping). */
  stamped: Set<number>;
  release: Array<() => void>;
  /** A real table, when the domain is one, and the entries it wrote (its truth, by ref). */
  honest: MemfdGrantTable | null;
  states?: Map<number, number>;
  shares: SharedPages[];
}

function codeOf(error: unknown): string | null {
  return error instanceof ShmError ? error.code : null;
}

function stampOf(domain: number, ref: number): number {
  return ((domain * 0x9e3779b1) ^ (ref * 0x85ebca6b) ^ 0x5bd1e995) >>> 0;
}

class GrantsFuzzer {
  readonly stats: FuzzStats = newStats();
  readonly #random: Random;
  readonly #dir: string;
  readonly #fifo: string;
  readonly #file: string;
  readonly #offers: Uint8Array[];
  readonly #refLists: Uint32Array[];
  readonly #ours: MemfdGrantTable;
  #goal = 0;
  readonly #seen = new Set<string>();

  constructor(seed: number, corpus: readonly Uint8Array[], dir: string) {
    this.#random = new Random(seed);
    this.#dir = dir;
    this.#fifo = path.join(dir, "fifo");
    execFileSync("mkfifo", [this.#fifo]);
    this.#file = path.join(dir, "regular-file");
    writeFileSync(this.#file, new Uint8Array(PAGE));
    this.#offers = [];
    this.#refLists = [];
    for (const file of corpus) {
      const tag = String.fromCharCode(...file.subarray(0, 4));
      const body = file.slice(4);
      if (tag === "OFFR") this.#offers.push(body);
      else if (tag === "REFS") this.#refLists.push(new Uint32Array(body.buffer, 0, body.length >> 2));
    }
    this.#ours = new MemfdGrantTable({ domain: OURS, socketDir: dir, offerTimeoutMs: OFFER_TIMEOUT_MS });
  }

  close(): void {
    this.#ours.destroy();
  }

  async run(count: number): Promise<void> {
    this.#goal = this.stats.inputs + count;
    while (this.stats.inputs < this.#goal) {
      try {
        await this.#episode();
      } catch (error) {
        this.#unexpected(error, "episode");
      }
    }
  }

  #input(): boolean {
    this.stats.inputs += 1;
    return this.stats.inputs < this.#goal;
  }

  #unexpected(error: unknown, where: string): void {
    unexpected(this.stats, error, where);
    if (process.env.FUZZ_DEBUG === undefined) return;
    const text = `${where}: ${error instanceof Error ? error.message : String(error)}`.slice(0, 200);
    const key = text.replace(/\d+/g, "N");
    if (this.#seen.has(key)) return;
    this.#seen.add(key);
    process.stderr.write(`unexpected at input ${this.stats.inputs}: ${text}\n`);
  }

  #fail(message: string): void {
    this.#unexpected(new Error(message), "oracle");
  }

  #refused(code: string): void {
    react(this.stats, "refused");
    react(this.stats, `refused:${code}`);
  }

  // ---- one domain's session ----

  async #episode(): Promise<void> {
    const random = this.#random;
    const domain = random.pick(DOMAINS);
    // A map before the pool is attached: refused, as guid would if a dump came first.
    if (random.below(20) === 0) this.#map(null, domain, [0], false);
    const granter = random.below(2) === 0 ? this.#honestGranter(domain) : this.#craftedGranter(domain);
    try {
      const attached = await this.#attach(granter);
      this.#input();
      if (!attached) return;
      const live: GrantMapping[] = [];
      const steps = 4 + random.below(random.below(4) === 0 ? 200 : 30);
      for (let step = 0; step < steps; step++) {
        const roll = random.below(100);
        if (roll < 55) {
          const mapping = this.#map(granter, domain, this.#refs(granter), random.below(5) === 0);
          if (mapping !== null) live.push(mapping);
        } else if (roll < 62) this.#framebuffer(granter, domain);
        else if (roll < 75) {
          const mapping = live.splice(random.below(live.length + 1), 1)[0];
          if (mapping !== undefined) this.#unmap(mapping);
        } else if (roll < 88) this.#granterActs(granter);
        else if (roll < 91) this.#truncate(granter);
        else if (roll < 93 && live.length > 0) this.#unmapTwice(live.pop() as GrantMapping);
        else if (roll < 95) {
          // The domain's agent is replaced: the session ends (detach), and a new one offers a new pool.
          this.#detach(domain, live);
          return;
        } else await new Promise((resolve) => setImmediate(resolve));
        if (!this.#input()) break;
      }
      this.#detach(domain, live);
    } finally {
      for (const release of granter.release.splice(0).reverse()) {
        try {
          release();
        } catch (error) {
          this.#unexpected(error, "granter release");
        }
      }
      this.#ours.detach(domain);
    }
  }

  #detach(domain: number, live: GrantMapping[]): void {
    try {
      this.#ours.detach(domain);
    } catch (error) {
      this.#unexpected(error, "detach");
      return;
    }
    if (live.length > 0) {
      if (live.some((mapping) => mapping.buffer.byteLength !== 0)) this.#fail("a mapping outlived detach()");
      react(this.stats, "ended");
    }
    live.length = 0;
  }

  /** attach() as guid calls it, bounded by an abort; checks the outcome against the offer. */
  async #attach(granter: Granter & { expect?: "attach" | "refuse" | "wait" }): Promise<boolean> {
    const abort = new AbortController();
    const reason = new Error("the fuzzer's attach bound passed");
    const bound = granter.expect === "wait" ? SILENT_BOUND_MS : ATTACH_BOUND_MS;
    const timer = setTimeout(() => abort.abort(reason), bound);
    const started = performance.now();
    try {
      await this.#ours.attach(granter.domain, { signal: abort.signal });
    } catch (error) {
      const code = codeOf(error);
      if (error === reason) {
        if (granter.expect !== "wait") this.#fail(`attach waited ${bound} ms for a granter that answered`);
        react(this.stats, "waiting");
      } else if (code !== null) {
        // A loaded machine can run the offer's timer before the granter's accept: that is the timeout's
        // job once its time has passed. Before then, or for another code, it is a wrong refusal.
        const late = code === "GRANT_TIMEOUT" && performance.now() - started >= OFFER_TIMEOUT_MS;
        if (late && granter.expect !== "wait") react(this.stats, "late-offer");
        else if (granter.expect === "attach" || (code === "GRANT_TIMEOUT" && granter.expect !== "wait")) {
          this.#fail(`attach refused an acceptable offer: ${(error as Error).message}`);
        }
        this.#refused(code);
      } else {
        this.#unexpected(error, "attach");
      }
      return false;
    } finally {
      clearTimeout(timer);
    }
    if (granter.expect !== "attach") this.#fail(`attach took an offer the oracle refuses (${granter.expect})`);
    react(this.stats, "attached");
    return true;
  }

  // ---- granters ----

  /** A real domain: a MemfdGrantTable that shares stamped pages, some writable, some not. */
  #honestGranter(domain: number): Granter & { expect: "attach" } {
    const random = this.#random;
    const table = new MemfdGrantTable({ domain, socketDir: this.#dir, maxGrantedPages: HONEST_LIMIT });
    const state = new Map<number, number>();
    const granter: Granter & { expect: "attach" } = {
      domain,
      expect: "attach",
      entry: (ref) => state.get(ref) ?? NEVER,
      states: state,
      capacity: (Math.ceil((HEADER_WORDS * 4 + HONEST_LIMIT * 4) / PAGE) * PAGE) / 4 - HEADER_WORDS,
      poolFd: -1,
      tableView: null,
      poolPages: () => (granter.poolFd < 0 ? 0 : Math.floor(native.fileSize(granter.poolFd) / PAGE)),
      writeSealed: () => false,
      runs: [],
      stamped: new Set(),
      release: [() => table.destroy()],
      honest: table,
      shares: [],
    };
    table.offer(OURS);
    const shares = 1 + random.below(6);
    for (let i = 0; i < shares; i++) this.#honestShare(granter);
    // Pages granted to another domain live in another pool: never reachable from ours.
    if (random.below(3) === 0) table.share(OTHER, 1 + random.below(4));
    return granter;
  }

  #honestShare(granter: Granter): void {
    const table = granter.honest as MemfdGrantTable;
    const random = this.#random;
    const writable = random.below(2) === 0;
    let shared: SharedPages;
    try {
      shared = table.share(OURS, 1 + random.below(random.below(8) === 0 ? 256 : 16), { writable });
    } catch (error) {
      if (codeOf(error) !== "GRANT_LIMIT") this.#unexpected(error, "honest share");
      return;
    }
    granter.poolFd = shared.contiguous.fd;
    granter.shares.push(shared);
    const words = new Uint32Array(shared.buffer);
    shared.refs.forEach((ref, i) => {
      words[(i * PAGE) / 4] = stampOf(granter.domain, ref);
      granter.stamped.add(ref);
      granter.states?.set(ref, GRANTED | (writable ? WRITABLE : 0) | (OURS << 16));
    });
    granter.runs.push([...shared.refs]);
  }

  /** A hand-made offer: a real agent's (the corpus) or a generated one, mutated. */
  #craftedGranter(domain: number): Granter & { expect: "attach" | "refuse" | "wait" } {
    const random = this.#random;
    const offer = this.#offer(domain);
    const release: Array<() => void> = [];
    const made: number[] = [];
    release.push(() => {
      for (const fd of made) native.close(fd);
    });
    const own = (fd: number): number => {
      made.push(fd);
      return fd;
    };
    const kind = (what: FdKind, size: number): number => {
      switch (what) {
        case "memfd":
          return own(native.memfdCreate("fuzz-grant", size));
        case "eventfd":
          return own(native.eventfdCreate());
        case "fifo":
          return own(openSync(this.#fifo, fsConstants.O_RDWR | fsConstants.O_NONBLOCK));
        case "socket": {
          const [a, b] = native.socketpair("stream");
          own(b);
          return own(a);
        }
        case "directory":
          return own(openSync(this.#dir, fsConstants.O_RDONLY | fsConstants.O_DIRECTORY));
        case "null":
          return own(openSync("/dev/null", fsConstants.O_RDWR));
        default:
          return own(openSync(this.#file, fsConstants.O_RDWR));
      }
    };
    const poolFd = kind(offer.poolKind, offer.poolPages * PAGE);
    const tableFd = kind(offer.tableKind, offer.tableBytes);
    let tableView: Uint32Array | null = null;
    const stamped = new Set<number>();
    if (offer.tableKind === "memfd") {
      const wanted = Math.ceil(Math.max(offer.words.byteLength, 1) / PAGE) * PAGE;
      const viewBytes = Math.floor(Math.min(wanted, offer.tableBytes) / PAGE) * PAGE;
      if (viewBytes >= PAGE) {
        const buffer = native.mmap(tableFd, 0, viewBytes, { writable: true });
        release.push(() => native.munmap(buffer));
        tableView = new Uint32Array(buffer);
        tableView.set(offer.words.subarray(0, tableView.length));
      }
      offer.tableSeals = this.#seal(tableFd, offer.tableSeals);
    }
    if (offer.poolKind === "memfd") {
      const pages = Math.min(offer.poolPages, 64);
      if (pages > 0) {
        const buffer = native.mmap(poolFd, 0, pages * PAGE, { writable: true });
        const words = new Uint32Array(buffer);
        for (let ref = 0; ref < pages; ref++) {
          words[(ref * PAGE) / 4] = stampOf(domain, ref);
          stamped.add(ref);
        }
        native.munmap(buffer);
      }
      offer.poolSeals = this.#seal(poolFd, offer.poolSeals);
    }
    const fds = [poolFd, tableFd, own(native.eventfdCreate())].slice(0, offer.fdCount);
    const expect = this.#predictAttach(domain, offer);
    if (offer.behaviour !== "absent") {
      const socketPath = grantSocketPath(this.#dir, domain, OURS);
      const listenFd = native.listen("stream", socketPath, 4);
      const held: number[] = [];
      const poll = new native.Poll(listenFd, () => {
        for (;;) {
          const connection = native.accept(listenFd);
          if (connection === null) return;
          if (offer.behaviour === "silent") {
            held.push(connection);
            continue;
          }
          try {
            if (offer.behaviour === "answer") native.sendmsg(connection, offer.hello, fds);
          } catch {
            // The mapper went away.
          } finally {
            native.close(connection);
          }
        }
      });
      poll.start(native.POLL_READABLE);
      release.push(() => {
        poll.close();
        native.close(listenFd);
        for (const fd of held) native.close(fd);
        rmSync(socketPath, { force: true });
      });
    }
    const capacity = Math.min(Math.floor(offer.tableBytes / 4) - HEADER_WORDS, MAX_ENTRIES);
    const runs: number[][] = [];
    for (let ref = 0; ref < Math.min(offer.words.length - HEADER_WORDS, 1100); ref++) {
      const state = (offer.words[HEADER_WORDS + ref] as number) & 3;
      if (state !== NEVER) runs.push([ref]);
    }
    // A real dump's refs (the corpus), asked of this granter too now and then.
    if (this.#refLists.length > 0 && random.below(4) === 0) runs.push([...random.pick(this.#refLists).subarray(2)]);
    return {
      domain,
      expect,
      entry: (ref) =>
        tableView !== null && HEADER_WORDS + ref < tableView.length ? (tableView[HEADER_WORDS + ref] as number) : 0,
      capacity,
      poolFd,
      tableView,
      poolPages: () => Math.floor(native.fileSize(poolFd) / PAGE),
      writeSealed: () => (native.getSeals(poolFd) & (SEAL_WRITE | SEAL_FUTURE_WRITE)) !== 0,
      runs,
      stamped,
      release,
      honest: null,
      shares: [],
    };
  }

  /** Adds `seals` as far as the kernel lets it (F_SEAL_WRITE needs no writable mapping); the seals now on `fd`. */
  #seal(fd: number, seals: number): number {
    try {
      native.addSeals(fd, seals);
    } catch {
      // EBUSY or EPERM: the seals that did hold are read back.
    }
    return native.getSeals(fd);
  }

  /** An offer: the corpus's real one mutated, or one generated with hostile fields. */
  #offer(domain: number): Offer {
    const random = this.#random;
    let offer: Offer;
    if (this.#offers.length > 0 && random.below(2) === 0) {
      const file = random.pick(this.#offers);
      offer = this.#parseOffer(random.below(3) === 0 ? file : mutate(random, file));
    } else {
      const entries = random.pick([1, 4, 16, 200, 1008]);
      const words = new Uint32Array(HEADER_WORDS + entries);
      words.set([TABLE_MAGIC, FORMAT_VERSION, domain, OURS, entries]);
      for (let ref = 0; ref < entries; ref++) {
        const roll = random.below(10);
        words[HEADER_WORDS + ref] =
          roll < 5
            ? GRANTED | (random.below(2) === 0 ? WRITABLE : 0) | (OURS << 16)
            : roll < 6
              ? GRANTED | (OTHER << 16)
              : roll < 7
                ? REVOKED | (OURS << 16)
                : roll < 8
                  ? 3 | (OURS << 16)
                  : roll < 9
                    ? NEVER
                    : random.u32();
      }
      offer = {
        hello: new Uint8Array(new Uint32Array([HELLO_MAGIC, FORMAT_VERSION, domain, OURS]).buffer),
        poolPages: random.pick([0, 1, 4, entries, entries + 1, 256]),
        poolSeals: SEAL_SHRINK,
        tableBytes: Math.ceil((words.byteLength + 1) / PAGE) * PAGE,
        tableSeals: SEAL_SHRINK | SEAL_GROW,
        words,
        poolKind: "memfd",
        tableKind: "memfd",
        fdCount: 2,
        behaviour: "answer",
      };
    }
    // Hostile fields, one or two at a time, so that most offers stay close to acceptable.
    const changes = random.below(3);
    for (let i = 0; i < changes; i++) {
      switch (random.below(12)) {
        case 0:
          offer.poolSeals = random.pick([0, SEAL_GROW, SEAL_SHRINK | SEAL_FUTURE_WRITE, SEAL_SHRINK | SEAL_WRITE]);
          break;
        case 1:
          offer.tableSeals = random.pick([0, SEAL_GROW, SEAL_SHRINK]);
          break;
        case 2:
          offer.tableBytes = random.pick([
            0,
            64,
            67,
            68,
            PAGE - 1,
            PAGE + 1,
            MAX_TABLE_BYTES,
            MAX_TABLE_BYTES + PAGE,
            2 ** 32 + PAGE,
          ]);
          break;
        case 3:
          offer.poolPages = random.pick([0, 1, 1009, 2 ** 24, 2 ** 24 + 1, 2 ** 30]);
          break;
        case 4:
          offer.poolKind = random.pick<FdKind>(["eventfd", "fifo", "socket", "directory", "null", "file"]);
          break;
        case 5:
          offer.tableKind = random.pick<FdKind>(["eventfd", "fifo", "socket", "directory", "null", "file"]);
          break;
        case 6:
          offer.fdCount = random.pick([0, 1, 3]);
          break;
        case 7:
          offer.hello = mutate(random, offer.hello);
          if (offer.hello.length === 0) offer.hello = new Uint8Array(1);
          break;
        case 8:
          offer.behaviour = random.pick<Offer["behaviour"]>(["silent", "hang-up", "absent"]);
          break;
        case 9:
          offer.words[random.below(5)] = random.pick(HOSTILE_U32);
          break;
        default: {
          const words = new Uint8Array(offer.words.buffer, offer.words.byteOffset, offer.words.byteLength);
          const bytes = mutate(random, words).slice(0, 4 * 2048);
          offer.words = new Uint32Array(bytes.buffer, 0, bytes.length >> 2);
        }
      }
    }
    return offer;
  }

  /** Reads an offer file: hello, pool pages and seals, table bytes and seals, the table's words. */
  #parseOffer(bytes: Uint8Array): Offer {
    const padded = new Uint8Array(Math.max(36, (bytes.length + 3) & ~3));
    padded.set(bytes);
    const view = new DataView(padded.buffer);
    const count = Math.min(view.getUint32(32, true), (padded.length - 36) >> 2, 8192);
    return {
      hello: padded.slice(0, 16),
      poolPages: Math.min(view.getUint32(16, true), 2 ** 30),
      poolSeals: view.getUint32(20, true) & 0x1f,
      tableBytes: Math.min(view.getUint32(24, true), 2 ** 33),
      tableSeals: view.getUint32(28, true) & 0x1f,
      words: new Uint32Array(padded.buffer.slice(36, 36 + 4 * count)),
      poolKind: "memfd",
      tableKind: "memfd",
      fdCount: 2,
      behaviour: "answer",
    };
  }

  /** What attach() must do with `offer`: shm/memfd.ts's rules, stated again here. */
  #predictAttach(domain: number, offer: Offer): "attach" | "refuse" | "wait" {
    if (offer.behaviour === "absent" || offer.behaviour === "silent") return "wait";
    if (offer.behaviour === "hang-up") return "refuse";
    if (offer.hello.length < 16 || offer.fdCount !== 2) return "refuse";
    const hello = new DataView(offer.hello.buffer, offer.hello.byteOffset, 16);
    const words = [0, 4, 8, 12].map((at) => hello.getUint32(at, true));
    if (words[0] !== HELLO_MAGIC || words[1] !== FORMAT_VERSION || words[2] !== domain || words[3] !== OURS) {
      return "refuse";
    }
    if (offer.poolKind !== "memfd" || offer.tableKind !== "memfd") return "refuse";
    if ((offer.poolSeals & SEAL_SHRINK) === 0 || (offer.tableSeals & SEAL_SHRINK) === 0) return "refuse";
    if (
      offer.tableBytes < HEADER_WORDS * 4 + 4 ||
      offer.tableBytes % PAGE !== 0 ||
      offer.tableBytes > MAX_TABLE_BYTES
    ) {
      return "refuse";
    }
    const capacity = Math.min(offer.tableBytes / 4 - HEADER_WORDS, MAX_ENTRIES);
    if (offer.poolPages > capacity) return "refuse";
    if (offer.words[0] !== TABLE_MAGIC || offer.words[1] !== FORMAT_VERSION) return "refuse";
    // A longer hello is a stream's: its first 16 bytes are the offer.
    return "attach";
  }

  // ---- maps ----

  /** A list of refs: granted runs, scattered, repeated, revoked, never granted, out of range, malformed. */
  #refs(granter: Granter): number[] {
    const random = this.#random;
    const run = (): number[] => (granter.runs.length > 0 ? [...random.pick(granter.runs)] : [random.below(8)]);
    switch (random.below(12)) {
      case 0:
      case 1:
      case 2:
        return run();
      case 3: {
        const list = run();
        return list.slice(random.below(list.length), 1 + random.below(list.length));
      }
      case 4:
        return [...run(), ...run()].sort(() => (random.below(2) === 0 ? -1 : 1));
      case 5: {
        const list = run();
        return [...list, list[0] as number];
      }
      case 6:
        return run().reverse();
      case 7:
        return [
          random.pick([
            granter.capacity,
            granter.capacity - 1,
            granter.poolPages(),
            -1,
            0.5,
            Number.NaN,
            2 ** 32,
            random.u32(),
          ]),
        ];
      case 8:
        return random.below(50) === 0 ? [] : [...run(), random.pick(HOSTILE_U32)];
      case 9:
        return random.below(200) === 0 ? new Array<number>(MAX_REFS_PER_MAP + 1).fill(0) : [random.below(2048)];
      default:
        return Array.from({ length: 1 + random.below(6) }, () => random.below(Math.max(1, granter.capacity + 2)));
    }
  }

  /** The error map() must throw for these refs, or null when it must map them. */
  #predictMap(granter: Granter | null, refs: readonly number[], writable: boolean): string | null {
    if (granter === null) return "GRANT_NO_PEER";
    if (refs.length < 1 || refs.length > MAX_REFS_PER_MAP) return "GRANT_OUT_OF_RANGE";
    const poolPages = granter.poolPages();
    for (const ref of refs) {
      if (!Number.isInteger(ref) || ref < 0 || ref >= granter.capacity) return "GRANT_OUT_OF_RANGE";
      const entry = granter.entry(ref);
      const state = entry & 3;
      if (state === NEVER) return "GRANT_NOT_GRANTED";
      if (state === REVOKED) return "GRANT_REVOKED";
      if (state !== GRANTED) return "GRANT_BAD_POOL";
      if (entry >>> 16 !== OURS) return "GRANT_WRONG_DOMAIN";
      if (writable && (entry & WRITABLE) === 0) return "GRANT_READ_ONLY";
      if (ref >= poolPages) return "GRANT_OUT_OF_RANGE";
    }
    if (writable && granter.writeSealed()) return "GRANT_BAD_POOL";
    return null;
  }

  #map(granter: Granter | null, domain: number, refs: number[], writable: boolean): GrantMapping | null {
    const expected = this.#predictMap(granter, refs, writable);
    let mapping: GrantMapping;
    const started = performance.now();
    try {
      mapping = this.#ours.map(domain, refs, { writable, populate: this.#random.below(4) === 0 && refs.length <= 256 });
    } catch (error) {
      const code = codeOf(error);
      if (code === null) this.#unexpected(error, "map");
      else {
        if (code !== expected)
          this.#fail(`map of [${refs.slice(0, 4).join(",")}…] threw ${code}, the oracle says ${expected ?? "map"}`);
        this.#refused(code);
      }
      return null;
    } finally {
      const ms = performance.now() - started;
      if (ms > CALL_BOUND_MS)
        this.#unexpected(new Error(`map of ${refs.length} refs took ${ms.toFixed(0)} ms`), "bound");
    }
    if (expected !== null) this.#fail(`map of [${refs.slice(0, 4).join(",")}…] mapped; the oracle says ${expected}`);
    this.#checkMapping(granter as Granter, domain, mapping, refs, writable);
    react(this.stats, "mapped");
    if (this.#random.below(3) !== 0) {
      this.#unmap(mapping);
      return null;
    }
    return mapping;
  }

  /** Every page of the mapping is its ref's page: sampled pages carry their ref's stamp. */
  #checkMapping(granter: Granter, domain: number, mapping: GrantMapping, refs: number[], writable: boolean): void {
    if (mapping.buffer.byteLength !== refs.length * PAGE) {
      this.#fail(`a mapping of ${refs.length} refs is ${mapping.buffer.byteLength} bytes`);
      return;
    }
    const words = new Uint32Array(mapping.buffer);
    const samples = Math.min(refs.length, 8);
    for (let s = 0; s < samples; s++) {
      const i = s === 0 ? 0 : this.#random.below(refs.length);
      const ref = refs[i] as number;
      if (!granter.stamped.has(ref)) continue;
      const stamp = words[(i * PAGE) / 4];
      if (stamp !== stampOf(domain, ref)) {
        this.#fail(`page ${i} of a mapping shows ${stamp}, not the stamp of ref ${ref}`);
        return;
      }
    }
    if (writable) {
      // A write through the mapping is a write to the granter's page (a view, no copy).
      const at = refs.length - 1;
      words[(at * PAGE) / 4 + 1] = 0xc0ffee;
      const back = native.mmap(granter.poolFd, (refs[at] as number) * PAGE, PAGE);
      const seen = new Uint32Array(back)[1];
      native.munmap(back);
      if (seen !== 0xc0ffee) this.#fail("a write through a writable mapping did not reach the granter's page");
    }
  }

  #unmap(mapping: GrantMapping): void {
    try {
      this.#ours.unmap(mapping);
    } catch (error) {
      this.#unexpected(error, "unmap");
    }
    if (mapping.buffer.byteLength !== 0) this.#fail("a mapping still has bytes after unmap()");
  }

  #unmapTwice(mapping: GrantMapping): void {
    this.#unmap(mapping);
    try {
      this.#ours.unmap(mapping);
      this.#fail("a second unmap() of one mapping did not throw");
    } catch (error) {
      if (codeOf(error) === "GRANT_STALE") react(this.stats, "stale");
      else this.#unexpected(error, "unmap twice");
    }
  }

  /** A WINDOW_DUMP's framebuffer, as guid/images.ts maps it (read-only, not populated). */
  #framebuffer(granter: Granter, domain: number): void {
    const random = this.#random;
    const list = this.#refLists.length > 0 && random.below(3) === 0 ? random.pick(this.#refLists) : null;
    const refs = list !== null ? [...list.subarray(2)] : this.#refs(granter);
    const pages = Math.max(1, refs.length);
    let width = list !== null ? (list[0] as number) : random.pick([1, 64, 1024, 16384, 16385, 0, 0xffffffff]);
    let height = list !== null ? (list[1] as number) : Math.max(1, Math.floor((pages * PAGE) / 4 / Math.max(width, 1)));
    if (random.below(8) === 0) [width, height] = [random.pick(HOSTILE_U32), random.pick(HOSTILE_U32)];
    let framebuffer: MappedFramebuffer;
    try {
      framebuffer = new MappedFramebuffer(this.#ours, domain, width, height, refs, { populate: false });
    } catch (error) {
      const code = codeOf(error);
      if (code === null) this.#unexpected(error, "framebuffer");
      else {
        const expected = this.#predictMap(granter, refs, false);
        if (code !== "FRAMEBUFFER_GEOMETRY" && code !== expected) {
          this.#fail(`a framebuffer's map threw ${code}, the oracle says ${expected ?? "map"}`);
        }
        this.#refused(code);
      }
      return;
    }
    const expected = this.#predictMap(granter, refs, false);
    if (expected !== null) this.#fail(`a framebuffer mapped refs the oracle refuses (${expected})`);
    if (framebuffer.pixels.byteLength !== width * height * 4)
      this.#fail("a framebuffer's pixels are not width × height × 4");
    react(this.stats, "mapped");
    framebuffer.unmap();
  }

  // ---- what a granter does meanwhile ----

  #granterActs(granter: Granter): void {
    const random = this.#random;
    if (granter.honest !== null) {
      const table = granter.honest;
      if (granter.shares.length > 0 && random.below(2) === 0) {
        const shared = granter.shares.splice(random.below(granter.shares.length), 1)[0] as SharedPages;
        table.revoke(shared);
        for (const ref of shared.refs) granter.states?.set(ref, REVOKED | (OURS << 16));
        granter.runs = granter.runs.filter((run) => !run.includes(shared.refs[0] as number));
        granter.runs.push([...shared.refs]);
      } else this.#honestShare(granter);
      return;
    }
    const view = granter.tableView;
    switch (random.below(4)) {
      case 0:
      case 1:
        // An entry flipped under the mapper: the oracle reads the new value.
        if (view !== null && view.length > HEADER_WORDS) {
          const ref = random.below(Math.min(view.length - HEADER_WORDS, 1100));
          view[HEADER_WORDS + ref] = random.pick([
            GRANTED | (OURS << 16),
            GRANTED | WRITABLE | (OURS << 16),
            REVOKED | (OURS << 16),
            GRANTED | (OTHER << 16),
            3,
            random.u32(),
          ]);
        }
        return;
      case 2:
        // The pool grows (allowed: sealed only against shrinking).
        try {
          native.resize(granter.poolFd, native.fileSize(granter.poolFd) + PAGE * (1 + random.below(4)));
        } catch {
          // Not a memfd, or sealed against growing: nothing changed.
        }
        return;
      default:
        try {
          native.addSeals(granter.poolFd, SEAL_FUTURE_WRITE);
        } catch {
          // Not a memfd, or sealed against sealing.
        }
    }
  }

  /** The granter shrinks its pool under our mappings: refused by the seal attach() required. */
  #truncate(granter: Granter): void {
    if (granter.poolFd < 0) return;
    let size: number;
    try {
      size = native.fileSize(granter.poolFd);
    } catch {
      return;
    }
    if (size < PAGE) return;
    try {
      native.resize(granter.poolFd, this.#random.pick([0, size - PAGE]));
      this.#fail("the granter shrank a pool that attach() accepted");
    } catch (error) {
      if (native.isSyscallError(error, "EPERM")) react(this.stats, "truncate-refused");
      else this.#unexpected(error, "truncate");
    }
  }
}

export const target: FuzzTarget = {
  name: "grants",
  summary:
    "the GUI domain's memfd grant table (attach, map, unmap, detach) against hostile domains' pool offers and tables",
  unit: "requests",
  testCount: 10_000,
  expectReactions: [
    "attached",
    "mapped",
    "waiting",
    "ended",
    "stale",
    "truncate-refused",
    "refused:GRANT_NO_PEER",
    "refused:GRANT_NOT_GRANTED",
    "refused:GRANT_REVOKED",
    "refused:GRANT_WRONG_DOMAIN",
    "refused:GRANT_READ_ONLY",
    "refused:GRANT_OUT_OF_RANGE",
    "refused:GRANT_BAD_POOL",
    "refused:GRANT_TIMEOUT",
    "refused:FRAMEBUFFER_GEOMETRY",
  ],
  async open({ seed, corpus }): Promise<FuzzInstance> {
    const dir = mkdtempSync(path.join(tmpdir(), "qubes-fuzz-grants-"));
    const fuzzer = new GrantsFuzzer(seed, corpus, dir);
    return {
      stats: fuzzer.stats,
      run: (count) => fuzzer.run(count),
      close: () => {
        fuzzer.close();
        rmSync(dir, { recursive: true, force: true });
        return Promise.resolve();
      },
    };
  },
};
