/**
 * Fuzz target `vchan-shm`: a real vchan/shm.ts endpoint, server or client,
 * against a hostile peer in this process that maps the same control page and
 * rings. The peer writes hostile values into every control word (indices out
 * of range, backwards, a ring or more ahead; orders, live bytes, notify bits,
 * grant refs), writes and consumes ring bytes honestly in between (so the
 * channel reaches deep states: wrapped rings, full rings, recovery after a
 * lie), kicks and drains the eventfds, fills their counters, clears O_NONBLOCK
 * on the shared descriptions, sends bytes and fds on the rendezvous socket,
 * tries to truncate the pool, and closes at random. As a server, the peer
 * also sends the rendezvous of vchan/shm.ts mutated: bad magic, version, ref
 * and length, too few or too many fds, fds of other kinds (a socket, a memfd,
 * a FIFO, a directory, /dev/null, a semaphore eventfd, one eventfd twice),
 * hostile orders and ring refs, a read-only or write-sealed pool, silence.
 *
 * An oracle written here, independent of vchan/, predicts every read, recv,
 * write and send of our side from what the peer wrote: the exact count, the
 * exact bytes (a read delivers the ring's bytes at our own index and nothing
 * else; a write changes the ring only where it may), the published index.
 * Every call is timed (a call that blocks or spins fails the run). Reactions:
 * `connected`, `refused` (and `refused:CODE`), `waiting` (a client aborted
 * while the server said nothing), `read`, `wrapped` (a read or write across
 * the ring's end), `wrote`, `stalled` (a lying index: nothing to read or no
 * space), `too-large`, `not-connected`, `drain`, `ended` (the peer closed or
 * was counted gone), `truncate-refused`.
 */
import { execFileSync } from "node:child_process";
import { constants as fsConstants, mkdtempSync, openSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";

import * as native from "../../../native/index.ts";
import {
  MemfdGrantTable,
  ShmError,
  connectWhenListening,
  whenReadable,
  type GrantMapping,
  type SharedPages,
} from "../../../shm/index.ts";
import {
  VCHAN_CONNECTED,
  VchanError,
  connectShmClient,
  createShmServer,
  shmVchanSocketPath,
  type Vchan,
} from "../../../vchan/index.ts";
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
import { within } from "../../helpers/processes.ts";

// The control page's layout and the rendezvous message, written out here
// (not imported from vchan/) so the oracle does not share the code under test.
const LEFT_CONS = 0;
const LEFT_PROD = 4;
const RIGHT_CONS = 8;
const RIGHT_PROD = 12;
const LEFT_ORDER = 16;
const RIGHT_ORDER = 18;
const CLI_LIVE = 20;
const SRV_LIVE = 21;
const CLI_NOTIFY = 22;
const SRV_NOTIFY = 23;
const GRANTS = 24;
const PAGE = 4096;
const MAX_GRANTS = (PAGE - GRANTS) / 4;
const HELLO_MAGIC = 0x51565348;
const HELLO_VERSION = 1;
/** F_SEAL_FUTURE_WRITE: no new writable mappings (native/ names only the seals shm/ uses). */
const SEAL_FUTURE_WRITE = 0x10;

/** Domain ids: ours (the GUI domain) and the hostile peer's. */
const OURS = 0;
const PEER = 7;
/** How long a call on our side may take before it counts as blocking or spinning, in ms. */
const CALL_BOUND_MS = 500;
/** Bound of every wait for an event the peer caused, in ms. */
const EVENT_BOUND_MS = 3000;
/** How long a client waits for a server that sends nothing before the fuzzer aborts it, in ms. */
const SILENT_WAIT_MS = 25;

/** Corpus files are tagged by their first four bytes. */
const TAG_CTRL = "CTRL";
const TAG_RING = "RING";
const TAG_HELO = "HELO";

interface Corpus {
  ctrl: Uint8Array[];
  ring: Uint8Array[];
  hello: Uint8Array[];
}

function splitCorpus(files: readonly Uint8Array[]): Corpus {
  const corpus: Corpus = { ctrl: [], ring: [], hello: [] };
  for (const file of files) {
    const tag = String.fromCharCode(...file.subarray(0, 4));
    const body = file.subarray(4);
    if (tag === TAG_CTRL) corpus.ctrl.push(body);
    else if (tag === TAG_RING) corpus.ring.push(body);
    else if (tag === TAG_HELO) corpus.hello.push(body);
  }
  return corpus;
}

/** Independent check of a ring-order pair, as libxenvchan's client accepts them. */
function ordersValid(left: number, right: number): boolean {
  if (left < 10 || left > 20 || right < 10 || right > 20) return false;
  if (left === right && left < 12) return false;
  return ringPages(left) + ringPages(right) <= MAX_GRANTS;
}

/** Pages of a ring of `order` outside the control page (0 for 10 and 11). */
function ringPages(order: number): number {
  return order < 12 ? 0 : 2 ** (order - 12);
}

/**
 * One ring as the peer sees it: its pages (or its slice of the control page)
 * in order. Reads and writes wrap at the ring's size.
 */
class RingView {
  readonly size: number;
  readonly #chunks: Uint8Array[];
  readonly #chunk: number;

  /** `chunks`: the ring's pages in order (each `chunk` bytes: a page, or the whole ring when it is smaller). */
  constructor(chunks: Uint8Array[], size: number, chunk = Math.min(size, PAGE)) {
    this.#chunks = chunks;
    this.size = size;
    this.#chunk = chunk;
  }

  /** The `n` bytes from free-running index `from`, wrapping. */
  read(from: number, n: number): Uint8Array {
    const out = new Uint8Array(n);
    let done = 0;
    while (done < n) {
      const at = ((from + done) >>> 0) & (this.size - 1);
      const chunk = this.#chunks[Math.floor(at / this.#chunk)] as Uint8Array;
      const offset = at % this.#chunk;
      const take = Math.min(n - done, this.#chunk - offset);
      out.set(chunk.subarray(offset, offset + take), done);
      done += take;
    }
    return out;
  }

  write(from: number, data: Uint8Array): void {
    let done = 0;
    while (done < data.length) {
      const at = ((from + done) >>> 0) & (this.size - 1);
      const chunk = this.#chunks[Math.floor(at / this.#chunk)] as Uint8Array;
      const offset = at % this.#chunk;
      const take = Math.min(data.length - done, this.#chunk - offset);
      chunk.set(data.subarray(done, done + take), offset);
      done += take;
    }
  }
}

/** The offsets of one side's words, for the side our endpoint plays. */
interface Words {
  readCons: number;
  readProd: number;
  writeCons: number;
  writeProd: number;
  ownLive: number;
  peerLive: number;
}

const AS_SERVER: Words = {
  readCons: LEFT_CONS,
  readProd: LEFT_PROD,
  writeCons: RIGHT_CONS,
  writeProd: RIGHT_PROD,
  ownLive: SRV_LIVE,
  peerLive: CLI_LIVE,
};
const AS_CLIENT: Words = {
  readCons: RIGHT_CONS,
  readProd: RIGHT_PROD,
  writeCons: LEFT_CONS,
  writeProd: LEFT_PROD,
  ownLive: CLI_LIVE,
  peerLive: SRV_LIVE,
};

/** A connected (or waiting) channel: our endpoint, and everything the peer holds. */
interface Channel {
  ours: Vchan;
  role: "server" | "client";
  words: Words;
  /** The control page as the peer sees it. */
  ctrl: Uint8Array;
  ctrl32: Uint32Array;
  /** The ring our side reads (the peer writes) and the one it writes. */
  inbound: RingView;
  outbound: RingView;
  /** Whether the rings share pages with each other or with the control page (a hostile server's refs). */
  aliased: boolean;
  /** Our side's true indices, tracked from what it did. */
  ourReadCons: number;
  ourWriteProd: number;
  /** The peer's own indices while it is honest. */
  peerProd: number;
  peerCons: number;
  /** The eventfd our side waits on (the peer signals it) and the one it kicks (the peer drains it). */
  waitFd: number;
  kickFd: number;
  /** The peer's end of the rendezvous connection, -1 once it closed it. */
  socketFd: number;
  /** The pool's fd as the peer holds it (for truncation attempts). */
  poolFd: number;
  closedByUs: boolean;
  disconnected: boolean;
  /** The eventfds whose shared description the peer made blocking. */
  blocking: Set<number>;
  /** Resolves when our side emits `disconnect`. */
  whenDisconnected: Promise<void>;
  /** Releases the peer's side, in reverse order of taking. */
  release: Array<() => void>;
}

const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

function codeOf(error: unknown): string | null {
  if (error instanceof VchanError || error instanceof ShmError) return error.code;
  return null;
}

/** The fuzzing state shared by every episode of one opened target. */
class VchanShmFuzzer {
  readonly stats: FuzzStats = newStats();
  readonly #random: Random;
  readonly #corpus: Corpus;
  readonly #dir: string;
  readonly #fifo: string;
  #episode = 0;
  /** Inputs at which the current run stops. */
  #goal = 0;

  constructor(seed: number, corpus: Corpus, dir: string) {
    this.#random = new Random(seed);
    this.#corpus = corpus;
    this.#dir = dir;
    this.#fifo = path.join(dir, "fifo");
    execFileSync("mkfifo", [this.#fifo]);
  }

  async run(count: number): Promise<void> {
    this.#goal = this.stats.inputs + count;
    while (this.stats.inputs < this.#goal) {
      try {
        await this.#runEpisode();
      } catch (error) {
        this.#unexpected(error, "episode");
      }
    }
  }

  /** Counts one input; false once the run's count is reached. */
  #input(bytes = 0): boolean {
    this.stats.inputs += 1;
    this.stats.bytes += bytes;
    return this.stats.inputs < this.#goal;
  }

  #note(name: string, value: number): void {
    const old = this.stats.notes[name];
    this.stats.notes[name] = typeof old === "number" ? Math.max(old, value) : value;
  }

  /** Runs `call` on our side, timed; a call that takes too long counts as unexpected. */
  #timed<T>(what: string, call: () => T): T {
    const started = performance.now();
    try {
      return call();
    } finally {
      const ms = performance.now() - started;
      this.#note("slowestCallMs", Math.round(ms * 10) / 10);
      if (ms > CALL_BOUND_MS) this.#unexpected(new Error(`${what} took ${ms.toFixed(0)} ms`), "bound");
    }
  }

  /** Adds the time since `started` to the note `name` (where a run's time goes). */
  #spend(name: string, started: number): void {
    const old = this.stats.notes[name];
    this.stats.notes[name] = Math.round((typeof old === "number" ? old : 0) + performance.now() - started);
  }

  /** Counts an exception outside the reactions (FUZZ_DEBUG=1 also prints each new kind of it). */
  #unexpected(error: unknown, where: string): void {
    unexpected(this.stats, error, where);
    if (process.env.FUZZ_DEBUG === undefined) return;
    const text = `${where}: ${error instanceof Error ? error.message : String(error)}`.slice(0, 160);
    const key = text.replace(/\d+/g, "N");
    if (this.#seen.has(key)) return;
    this.#seen.add(key);
    process.stderr.write(`unexpected at input ${this.stats.inputs}: ${text}\n`);
  }

  readonly #seen = new Set<string>();

  #fail(message: string): void {
    this.#unexpected(new Error(message), "oracle");
  }

  async #runEpisode(): Promise<void> {
    this.#episode += 1;
    const port = 7000 + (this.#episode % 512);
    const started = performance.now();
    const role = this.#random.below(2) === 0 ? "server" : "client";
    const channel = role === "server" ? await this.#asServer(port) : await this.#asClient(port);
    this.#spend(`${role}SetupMs`, started);
    if (channel === null) return;
    try {
      const stepping = performance.now();
      await this.#steps(channel);
      this.#spend("stepsMs", stepping);
      const finishing = performance.now();
      await this.#finish(channel);
      this.#spend("finishMs", finishing);
    } finally {
      this.#closeOurs(channel);
      for (const release of channel.release.splice(0).reverse()) {
        try {
          release();
        } catch (error) {
          this.#unexpected(error, "peer release");
        }
      }
    }
  }

  #closeOurs(channel: Channel): void {
    if (channel.closedByUs) return;
    channel.closedByUs = true;
    try {
      this.#timed("close()", () => channel.ours.close());
    } catch (error) {
      this.#unexpected(error, "close()");
    }
  }

  /** Listeners of our endpoint's events: a reader as a real consumer is, checked by the oracle. */
  #listen(channel: Channel): void {
    const ours = channel.ours;
    let resolveDisconnect: () => void = () => undefined;
    channel.whenDisconnected = new Promise((resolve) => {
      resolveDisconnect = resolve;
    });
    ours.on("data", () => {
      try {
        if (!channel.closedByUs && this.#random.below(2) === 0) this.#ourRead(channel, "data");
      } catch (error) {
        this.#unexpected(error, "data handler");
      }
    });
    ours.on("drain", () => react(this.stats, "drain"));
    ours.on("disconnect", () => {
      channel.disconnected = true;
      resolveDisconnect();
    });
  }

  // ---- our endpoint as the server; the peer a hostile client ----

  async #asServer(port: number): Promise<Channel | null> {
    const random = this.#random;
    const sizes = [0, 1, 1024, 1025, 2048, 4096, 8192, 16384, 65536];
    const server = createShmServer({
      domain: PEER,
      ownDomain: OURS,
      port,
      socketDir: this.#dir,
      readMin: random.pick(sizes),
      writeMin: random.pick(sizes),
    });
    const release: Array<() => void> = [];
    const channel = { ours: server, role: "server", closedByUs: false, release, socketFd: -1 } as unknown as Channel;
    this.#listen(channel);
    let ok = false;
    try {
      const table = new MemfdGrantTable({
        domain: PEER,
        socketDir: this.#dir,
        poolName: `vchan-${port}`,
        maxGrantedPages: 64,
      });
      release.push(() => table.destroy());
      const fd = await within(
        connectWhenListening(shmVchanSocketPath(this.#dir, OURS, PEER, port)),
        EVENT_BOUND_MS,
        "a connection to our vchan server's socket",
      );
      release.push(() => {
        if (channel.socketFd >= 0) native.close(channel.socketFd);
      });
      channel.socketFd = fd;
      this.#input();
      if (random.below(30) === 0) {
        // A client that hangs up before anything else: the server ends, it does not wait forever.
        native.close(fd);
        channel.socketFd = -1;
        await within(channel.whenDisconnected, EVENT_BOUND_MS, "our server's disconnect after its client hung up");
        react(this.stats, "ended");
        return null;
      }
      if (random.below(20) === 0) this.#garbageOnSocket(channel, false);
      await within(table.attach(OURS), EVENT_BOUND_MS, "our server's grant pool offer");
      await within(whenReadable(fd), EVENT_BOUND_MS, "our server's rendezvous message");
      const hello = new Uint8Array(16);
      const received = native.recvmsg(fd, hello, 2);
      if (received === null || received.bytes !== 16 || received.fds.length !== 2) {
        for (const extra of received?.fds ?? []) native.close(extra);
        this.#fail(`our server sent a malformed rendezvous message (${received?.bytes ?? "nothing"})`);
        return null;
      }
      const [serverToClient, clientToServer] = received.fds as [number, number];
      release.push(() => {
        native.close(serverToClient);
        native.close(clientToServer);
      });
      const words = new Uint32Array(hello.buffer);
      if (words[0] !== HELLO_MAGIC || words[1] !== HELLO_VERSION) this.#fail("our server's hello has a bad magic");
      const ctrlMapping = table.map(OURS, [words[2] as number], { writable: true });
      const ctrl = new Uint8Array(ctrlMapping.buffer);
      const view = new DataView(ctrlMapping.buffer);
      const left = view.getUint16(LEFT_ORDER, true);
      const right = view.getUint16(RIGHT_ORDER, true);
      if (!ordersValid(left, right)) {
        this.#fail(`our server wrote orders ${left} and ${right}`);
        return null;
      }
      const refs = (first: number, count: number): number[] =>
        Array.from({ length: count }, (_, i) => view.getUint32(GRANTS + 4 * (first + i), true));
      const ringOf = (order: number, first: number): RingView => {
        if (order < 12) {
          const offset = order === 10 ? 1024 : 2048;
          return new RingView([ctrl.subarray(offset, offset + 2 ** order)], 2 ** order);
        }
        const mapping: GrantMapping = table.map(OURS, refs(first, ringPages(order)), { writable: true });
        const bytes = new Uint8Array(mapping.buffer);
        return new RingView(
          Array.from({ length: ringPages(order) }, (_, i) => bytes.subarray(i * PAGE, (i + 1) * PAGE)),
          2 ** order,
        );
      };
      Object.assign(channel, {
        words: AS_SERVER,
        ctrl,
        ctrl32: new Uint32Array(ctrlMapping.buffer),
        inbound: ringOf(left, 0),
        outbound: ringOf(right, ringPages(left)),
        aliased: false,
        ourReadCons: view.getUint32(LEFT_CONS, true),
        ourWriteProd: view.getUint32(RIGHT_PROD, true),
        peerProd: view.getUint32(LEFT_PROD, true),
        peerCons: view.getUint32(RIGHT_CONS, true),
        waitFd: clientToServer,
        kickFd: serverToClient,
        poolFd: ctrlMapping.contiguous?.fd ?? -1,
        disconnected: false,
        blocking: new Set<number>(),
      });
      if (server.readRingSize !== 2 ** left || server.writeRingSize !== 2 ** right) {
        this.#fail(`our server's ring sizes ${server.readRingSize}/${server.writeRingSize} are not its orders'`);
      }
      // The client marks itself live (or lies about it) and kicks.
      const live = random.below(10) === 0 ? random.pick([0, 2, 3, 0xff]) : 1;
      ctrl[CLI_LIVE] = live;
      native.eventfdSignal(clientToServer);
      this.#input();
      if (live === 1) {
        await within(
          server.whenConnected(),
          EVENT_BOUND_MS,
          "our server's connect after its client marked itself live",
        );
        react(this.stats, "connected");
      } else if (live !== 2) {
        await within(channel.whenDisconnected, EVENT_BOUND_MS, `our server's disconnect after a live byte of ${live}`);
        react(this.stats, "ended");
      }
      ok = true;
      return channel;
    } finally {
      if (!ok) {
        this.#closeOurs(channel);
        for (const release of channel.release.splice(0).reverse()) release();
      }
    }
  }

  // ---- our endpoint as the client; the peer a hostile server ----

  /** The eventfd pair a hostile server hands over, or fds of other kinds; every fd made is released after. */
  #eventFds(release: Array<() => void>): { fds: number[]; honest: boolean } {
    const random = this.#random;
    const made: number[] = [];
    const own = (fd: number): number => {
      made.push(fd);
      return fd;
    };
    release.push(() => {
      for (const fd of made) native.close(fd);
    });
    const eventfd = (): number => own(native.eventfdCreate());
    if (random.below(8) !== 0) return { fds: [eventfd(), eventfd()], honest: true };
    const other = (): number => {
      switch (random.below(7)) {
        case 0: {
          const [a, b] = native.socketpair("stream");
          own(b);
          return own(a);
        }
        case 1:
          return own(native.memfdCreate("not-an-eventfd", PAGE));
        case 2:
          return own(openSync(this.#fifo, fsConstants.O_RDWR | fsConstants.O_NONBLOCK));
        case 3:
          return own(openSync(this.#dir, fsConstants.O_RDONLY | fsConstants.O_DIRECTORY));
        case 4:
          return own(openSync("/dev/null", fsConstants.O_RDWR));
        case 5:
          return own(native.eventfdCreate({ semaphore: true }));
        default: {
          // Blocking, with its counter full: a kick into it must not block our loop.
          const fd = eventfd();
          for (let value = 2 ** 52; value >= 1; value /= 2) while (native.eventfdSignal(fd, value));
          native.setNonBlocking(fd, false);
          return fd;
        }
      }
    };
    switch (random.below(6)) {
      case 0:
        return { fds: [], honest: false };
      case 1:
        return { fds: [eventfd()], honest: false };
      case 2:
        return { fds: [eventfd(), eventfd(), eventfd()], honest: false };
      case 3: {
        const fd = eventfd();
        return { fds: random.below(2) === 0 ? [fd, fd] : [fd, own(native.dup(fd))], honest: false };
      }
      case 4:
        return { fds: [eventfd(), other()], honest: false };
      default:
        return { fds: [other(), eventfd()], honest: false };
    }
  }

  async #asClient(port: number): Promise<Channel | null> {
    const random = this.#random;
    const release: Array<() => void> = [];
    let handedOver = false;
    try {
      // The orders: libvchan's choices mostly, hostile ones sometimes.
      const honestOrders: Array<[number, number]> = [
        [10, 11],
        [11, 10],
        [11, 12],
        [12, 11],
        [12, 12],
        [13, 12],
        [12, 14],
        [10, 13],
      ];
      let honest = true;
      let [left, right] = random.pick(honestOrders);
      if (random.below(12) === 0) {
        honest = false;
        const orders = [0, 9, 10, 11, 12, 13, 16, 20, 21, 0x100, 0xffff, random.u32() & 0xffff];
        left = random.pick(orders);
        right = random.pick(orders);
      }
      const valid = ordersValid(left, right);
      const needed = valid ? 1 + ringPages(left) + ringPages(right) : 3;
      let pages = needed;
      if (random.below(30) === 0) {
        honest = false;
        pages = Math.max(1, needed - 1 - random.below(2));
      }
      const table = new MemfdGrantTable({
        domain: PEER,
        socketDir: this.#dir,
        poolName: `vchan-${port}`,
        maxGrantedPages: 1100,
      });
      release.push(() => table.destroy());
      const writable = random.below(40) !== 0;
      if (!writable) honest = false;
      const shared: SharedPages = table.share(OURS, pages, { writable });
      const memory = new Uint8Array(shared.buffer);
      const ctrl = memory.subarray(0, PAGE);
      const view = new DataView(shared.buffer, 0, PAGE);
      if (this.#corpus.ctrl.length > 0 && random.below(3) === 0) {
        // A real server's control page after real traffic (mutated or not) as the base.
        const base = random.pick(this.#corpus.ctrl);
        ctrl.set((random.below(2) === 0 ? base : mutate(random, base)).subarray(0, PAGE));
      }
      view.setUint16(LEFT_ORDER, left, true);
      view.setUint16(RIGHT_ORDER, right, true);
      // Free-running indices may start anywhere, near the 2^32 wrap too.
      const start = (): number => random.pick([0, 0, random.u32(), 0xffffffff - random.below(8192), 0x80000000]);
      const leftIndex = start();
      const rightIndex = start();
      view.setUint32(LEFT_CONS, leftIndex, true);
      view.setUint32(LEFT_PROD, leftIndex, true);
      view.setUint32(RIGHT_CONS, rightIndex, true);
      view.setUint32(RIGHT_PROD, rightIndex, true);
      ctrl[CLI_LIVE] = 2;
      ctrl[SRV_LIVE] = 1;
      ctrl[CLI_NOTIFY] = 1;
      ctrl[SRV_NOTIFY] = 0;
      const ringRefs: number[] = [];
      if (valid) for (let i = 0; i < ringPages(left) + ringPages(right); i++) ringRefs.push(1 + i);
      if (ringRefs.length > 0 && random.below(15) === 0) {
        honest = false;
        // Hostile ring refs: the control page itself, one page twice, never granted, far out.
        const at = random.below(ringRefs.length);
        ringRefs[at] = random.pick([0, ringRefs[0] as number, pages, 4000, 0xffffffff, random.u32()]);
      }
      ringRefs.forEach((ref, i) =>
        view.setUint32(GRANTS + 4 * i, ref >= pages ? ref : (shared.refs[ref] as number), true),
      );
      if (random.below(40) === 0) {
        // Sealed against new writable mappings after the offer: a writable map of it fails.
        honest = false;
        native.addSeals(shared.contiguous.fd, SEAL_FUTURE_WRITE);
      }
      const events = this.#eventFds(release);
      if (!events.honest) honest = false;
      let hello: Uint8Array = new Uint8Array(
        new Uint32Array([HELLO_MAGIC, HELLO_VERSION, shared.refs[0] as number, 0]).buffer,
      );
      if (random.below(12) === 0) {
        honest = false;
        hello =
          this.#corpus.hello.length > 0 && random.below(2) === 0
            ? mutate(random, random.pick(this.#corpus.hello))
            : mutate(random, hello);
        if (hello.length === 0) hello = new Uint8Array(1);
      }
      const silent = random.below(40) === 0;
      const channel = { role: "client", closedByUs: false, release, socketFd: -1 } as unknown as Channel;
      const socketPath = shmVchanSocketPath(this.#dir, PEER, OURS, port);
      const listenFd = native.listen("stream", socketPath, 1);
      const accepted: number[] = [];
      const poll = new native.Poll(listenFd, () => {
        const fd = native.accept(listenFd);
        if (fd === null) return;
        accepted.push(fd);
        if (!silent) native.sendmsg(fd, hello, events.fds);
      });
      poll.start(native.POLL_READABLE);
      release.push(() => {
        poll.close();
        native.close(listenFd);
        rmSync(socketPath, { force: true });
        for (const fd of accepted.splice(0)) native.close(fd);
      });
      const abort = new AbortController();
      const reason = new Error("the fuzzer stopped waiting");
      const timer = setTimeout(() => abort.abort(reason), silent ? SILENT_WAIT_MS : EVENT_BOUND_MS);
      let client: Vchan;
      this.#input(hello.length);
      try {
        client = await connectShmClient({
          domain: PEER,
          ownDomain: OURS,
          port,
          socketDir: this.#dir,
          signal: abort.signal,
        });
      } catch (error) {
        const code = codeOf(error);
        if (error === reason) {
          if (!silent) this.#fail(`our client waited ${EVENT_BOUND_MS} ms for a server that answered`);
          react(this.stats, "waiting");
        } else if (code !== null) {
          if (honest) this.#fail(`our client refused an honest server: ${(error as Error).message}`);
          react(this.stats, "refused");
          react(this.stats, `refused:${code}`);
        } else {
          this.#unexpected(error, "connectShmClient");
        }
        return null;
      } finally {
        clearTimeout(timer);
      }
      // Connected: whatever the peer sent passed the client's checks.
      react(this.stats, "connected");
      if (!valid) this.#fail(`our client accepted ring orders ${left} and ${right}`);
      // A longer message is a stream's: its first 16 bytes are the rendezvous, the rest is drained later.
      if (hello.length < 16) this.#fail(`our client accepted a rendezvous message of ${hello.length} bytes`);
      if (events.fds.length !== 2) this.#fail(`our client accepted ${events.fds.length} fds`);
      const [serverToClient, clientToServer] = events.fds as [number, number];
      // The connection is the death watch now: the channel owns it (the peer may close it).
      channel.socketFd = accepted.shift() ?? -1;
      release.push(() => {
        if (channel.socketFd >= 0) native.close(channel.socketFd);
      });
      const ringOf = (order: number, first: number): RingView => {
        if (order < 12) {
          const offset = order === 10 ? 1024 : 2048;
          return new RingView([ctrl.subarray(offset, offset + 2 ** order)], 2 ** order);
        }
        const chunks = ringRefs
          .slice(first, first + ringPages(order))
          .map((index) => memory.subarray(index * PAGE, (index + 1) * PAGE));
        return new RingView(chunks, 2 ** order);
      };
      const ringPageList = ringRefs.slice(0, ringPages(left) + ringPages(right));
      Object.assign(channel, {
        ours: client,
        words: AS_CLIENT,
        ctrl,
        ctrl32: new Uint32Array(shared.buffer, 0, PAGE / 4),
        inbound: ringOf(right, ringPages(left)),
        outbound: ringOf(left, 0),
        aliased: ringPageList.includes(0) || new Set(ringPageList).size !== ringPageList.length,
        ourReadCons: rightIndex,
        ourWriteProd: leftIndex,
        peerProd: rightIndex,
        peerCons: leftIndex,
        waitFd: serverToClient,
        kickFd: clientToServer,
        poolFd: shared.contiguous.fd,
        disconnected: false,
        blocking: new Set<number>(),
      });
      this.#listen(channel);
      if (client.readRingSize !== 2 ** right || client.writeRingSize !== 2 ** left) {
        this.#fail(`our client's ring sizes ${client.readRingSize}/${client.writeRingSize} are not the orders'`);
      }
      if (ctrl[CLI_LIVE] !== 1) this.#fail("our client did not mark itself live");
      handedOver = true;
      return channel;
    } finally {
      if (!handedOver) for (const release_ of release.splice(0).reverse()) release_();
    }
  }

  // ---- the episode's steps ----

  async #steps(channel: Channel): Promise<void> {
    const random = this.#random;
    const steps = 8 + random.below(random.below(4) === 0 ? 400 : 60);
    for (let step = 0; step < steps; step++) {
      const roll = random.below(100);
      if (roll < 16) this.#ourRead(channel, "read");
      else if (roll < 20) this.#ourRecv(channel);
      else if (roll < 33) this.#ourWrite(channel, false);
      else if (roll < 37) this.#ourWrite(channel, true);
      else if (roll < 40) this.#ourQuery(channel);
      else if (roll < 54) this.#peerWrite(channel);
      else if (roll < 65) this.#peerConsume(channel);
      else if (roll < 75) this.#peerLie(channel);
      else if (roll < 79) await this.#peerKicks(channel);
      else if (roll < 81) this.#peerEventfdMischief(channel);
      else if (roll < 82) this.#peerLive(channel);
      else if (roll < 83) this.#garbageOnSocket(channel);
      else if (roll < 84) this.#peerTruncate(channel);
      else if (roll < 85) this.#peerBlit(channel);
      else if (roll < 86 && random.below(3) === 0) await this.#peerCloses(channel);
      else await turn();
      if (!this.#input()) return;
    }
  }

  /** How much the oracle says our side may read now. */
  #readable(channel: Channel): number {
    if (channel.closedByUs) return 0;
    const prod = Atomics.load(channel.ctrl32, channel.words.readProd / 4);
    const ready = (prod - channel.ourReadCons) >>> 0;
    return ready > channel.inbound.size ? 0 : ready;
  }

  #writable(channel: Channel): number {
    const cons = Atomics.load(channel.ctrl32, channel.words.writeCons / 4);
    const used = (channel.ourWriteProd - cons) >>> 0;
    return used > channel.outbound.size ? 0 : channel.outbound.size - used;
  }

  /** Checks a read of `n` bytes into `into` against the ring's bytes and advances our tracked index. */
  #checkRead(channel: Channel, into: Uint8Array, n: number, expected: Uint8Array, where: string): void {
    // Rings that share the control page change under our side's own notify stores: only their count is checked.
    for (let i = 0; i < (channel.aliased ? 0 : n); i++) {
      if (into[i] !== expected[i]) {
        this.#fail(`${where}: byte ${i} of ${n} is ${into[i]}, the ring holds ${expected[i]} there`);
        break;
      }
    }
    for (let i = n; i < into.length; i++) {
      if (into[i] !== 0xa5) {
        this.#fail(`${where}: wrote byte ${i} of the buffer, past the ${n} bytes it returned`);
        break;
      }
    }
    if (n === 0) return;
    const size = channel.inbound.size;
    if ((channel.ourReadCons & (size - 1)) + n > size) react(this.stats, "wrapped");
    channel.ourReadCons = (channel.ourReadCons + n) >>> 0;
    const published = Atomics.load(channel.ctrl32, channel.words.readCons / 4);
    if (published !== channel.ourReadCons)
      this.#fail(`${where}: published cons ${published}, not ${channel.ourReadCons}`);
    react(this.stats, "read");
  }

  #bufferSize(size: number): number {
    const random = this.#random;
    return random.pick([1, 2, 7, 16, 64, 1 + random.below(size), size, size + 1, 2 * size + random.below(100)]);
  }

  #ourRead(channel: Channel, where: string): void {
    const into = new Uint8Array(this.#bufferSize(channel.inbound.size)).fill(0xa5);
    const ready = this.#readable(channel);
    const expectedN = Math.min(into.length, ready);
    const expected = channel.inbound.read(channel.ourReadCons, expectedN);
    const prod = Atomics.load(channel.ctrl32, channel.words.readProd / 4);
    const n = this.#timed(where, () => channel.ours.read(into));
    if (n !== expectedN) {
      this.#fail(`${where}: read ${n} bytes; prod ${prod} − cons ${channel.ourReadCons} allows ${expectedN}`);
      return;
    }
    if (n === 0 && !channel.closedByUs && (prod - channel.ourReadCons) >>> 0 !== 0) react(this.stats, "stalled");
    this.#checkRead(channel, into, n, expected, where);
  }

  #ourRecv(channel: Channel): void {
    const size = channel.inbound.size;
    const into = new Uint8Array(this.#bufferSize(size)).fill(0xa5);
    const ready = this.#readable(channel);
    const expected = channel.inbound.read(channel.ourReadCons, into.length <= size ? into.length : 0);
    let got: boolean;
    try {
      got = this.#timed("recv", () => channel.ours.recv(into));
    } catch (error) {
      if (codeOf(error) === "VCHAN_TOO_LARGE" && into.length > size) react(this.stats, "too-large");
      else this.#unexpected(error, "recv");
      return;
    }
    if (into.length > size) this.#fail(`recv of ${into.length} bytes on a ${size}-byte ring did not throw`);
    const shouldGet = !channel.closedByUs && ready >= into.length;
    if (got !== shouldGet) {
      this.#fail(`recv of ${into.length} returned ${got} with ${ready} readable`);
      return;
    }
    if (got) this.#checkRead(channel, into, into.length, expected, "recv");
  }

  #ourWrite(channel: Channel, all: boolean): void {
    const random = this.#random;
    const size = channel.outbound.size;
    const length = this.#bufferSize(size);
    const data = random.bytes(Math.min(length, 64));
    const payload = new Uint8Array(length);
    for (let i = 0; i < length; i += data.length) payload.set(data.subarray(0, length - i), i);
    const connected = channel.ours.isOpen() === VCHAN_CONNECTED && !channel.closedByUs;
    const space = this.#writable(channel);
    const before = channel.aliased ? null : channel.outbound.read(0, size);
    const prodBefore = channel.ourWriteProd;
    let n: number;
    try {
      n = this.#timed(all ? "send" : "write", () =>
        all ? (channel.ours.send(payload) ? length : 0) : channel.ours.write(payload),
      );
    } catch (error) {
      const code = codeOf(error);
      if (code === "VCHAN_TOO_LARGE" && all && length > size) react(this.stats, "too-large");
      else if (code === "VCHAN_DISCONNECTED" && !connected) react(this.stats, "not-connected");
      else this.#unexpected(error, all ? "send" : "write");
      return;
    }
    if (!connected) this.#fail(`${all ? "send" : "write"} on a channel not connected did not throw`);
    if (all && length > size) this.#fail(`send of ${length} bytes on a ${size}-byte ring did not throw`);
    const expectedN = all ? (space >= length ? length : 0) : Math.min(length, space);
    if (n !== expectedN) {
      this.#fail(`${all ? "send" : "write"} of ${length} took ${n}; the ring had ${space} free`);
      return;
    }
    if (n === 0) {
      const cons = Atomics.load(channel.ctrl32, channel.words.writeCons / 4);
      if ((channel.ourWriteProd - cons) >>> 0 > size) react(this.stats, "stalled");
      return;
    }
    if ((prodBefore & (size - 1)) + n > size) react(this.stats, "wrapped");
    channel.ourWriteProd = (prodBefore + n) >>> 0;
    react(this.stats, "wrote");
    const published = Atomics.load(channel.ctrl32, channel.words.writeProd / 4);
    if (published !== channel.ourWriteProd)
      this.#fail(`write: published prod ${published}, not ${channel.ourWriteProd}`);
    if (before === null) return;
    // The ring changed exactly at [prodBefore, prodBefore + n), to the data.
    const expected = new RingView([before.slice()], size, size);
    expected.write(prodBefore, payload.subarray(0, n));
    const after = channel.outbound.read(0, size);
    if (!Buffer.from(after.buffer).equals(Buffer.from(expected.read(0, size).buffer))) {
      const at = after.findIndex((byte, i) => byte !== expected.read(i, 1)[0]);
      this.#fail(`write: ring byte ${at} is not what a write of ${n} bytes at ${prodBefore} leaves there`);
    }
  }

  #ourQuery(channel: Channel): void {
    const ready = this.#timed("dataReady", () => channel.ours.dataReady());
    if (ready !== this.#readable(channel)) this.#fail(`dataReady() ${ready}, the oracle ${this.#readable(channel)}`);
    const space = this.#timed("bufferSpace", () => channel.ours.bufferSpace());
    const connected = channel.ours.isOpen() === VCHAN_CONNECTED && !channel.closedByUs;
    const expected = connected ? this.#writable(channel) : 0;
    if (space !== expected) this.#fail(`bufferSpace() ${space}, the oracle ${expected}`);
  }

  /** The peer kicks our side when it asked (its notify bit), or at random. */
  #maybeKick(channel: Channel, bit: number): void {
    // Our side asks in the notify byte of the peer's role: CLI_NOTIFY when it is the server.
    const notify = channel.role === "server" ? CLI_NOTIFY : SRV_NOTIFY;
    if ((channel.ctrl[notify]! & bit) !== 0 || this.#random.below(8) === 0) {
      channel.ctrl[notify] = channel.ctrl[notify]! & ~bit;
      native.eventfdSignal(channel.waitFd);
    }
  }

  #peerWrite(channel: Channel): void {
    const random = this.#random;
    const size = channel.inbound.size;
    // An honest peer writes after our index; one that lost track starts again there.
    if ((channel.peerProd - channel.ourReadCons) >>> 0 > size) channel.peerProd = channel.ourReadCons;
    const free = size - ((channel.peerProd - channel.ourReadCons) >>> 0);
    const overrun = random.below(30) === 0;
    const n = overrun
      ? 1 + random.below(2 * size)
      : Math.min(free, random.below(4) === 0 ? size : 1 + random.below(300));
    if (n === 0) return;
    const source =
      this.#corpus.ring.length > 0 && random.below(2) === 0 ? random.pick(this.#corpus.ring) : random.bytes(64);
    const data = new Uint8Array(n);
    for (let i = 0; i < n; i += source.length || 1) data.set(source.subarray(0, n - i), i);
    channel.inbound.write(channel.peerProd, data);
    channel.peerProd = (channel.peerProd + n) >>> 0;
    Atomics.store(channel.ctrl32, channel.words.readProd / 4, channel.peerProd);
    this.stats.bytes += n;
    this.#maybeKick(channel, 1);
  }

  #peerConsume(channel: Channel): void {
    const size = channel.outbound.size;
    if ((channel.ourWriteProd - channel.peerCons) >>> 0 > size) channel.peerCons = channel.ourWriteProd;
    const used = (channel.ourWriteProd - channel.peerCons) >>> 0;
    const n = this.#random.below(3) === 0 ? used : this.#random.below(used + 1);
    channel.peerCons = (channel.peerCons + n) >>> 0;
    Atomics.store(channel.ctrl32, channel.words.writeCons / 4, channel.peerCons);
    this.#maybeKick(channel, 2);
  }

  /** A hostile value in one control word: an index, an order, a live byte, a notify byte, a grant ref. */
  #peerLie(channel: Channel): void {
    const random = this.#random;
    const view = new DataView(channel.ctrl.buffer, channel.ctrl.byteOffset, PAGE);
    const field = random.below(10);
    if (field < 5) {
      const offset = random.pick([LEFT_CONS, LEFT_PROD, RIGHT_CONS, RIGHT_PROD]);
      const current = view.getUint32(offset, true);
      const size = 1 << random.pick([10, 11, 12, 13, 14]);
      const value = random.pick([
        current + 1,
        current - 1,
        current + size,
        current + size + 1,
        current - size,
        current - size - 1,
        current + 2 ** 31,
        current + channel.inbound.size + 1,
        random.u32(),
        random.pick(HOSTILE_U32),
      ]);
      view.setUint32(offset, value >>> 0, true);
      // Often the lie is taken back later: the truth written again.
      if (random.below(2) === 0) queueMicrotask(() => this.#tellTruth(channel));
    } else if (field < 6) {
      view.setUint16(random.pick([LEFT_ORDER, RIGHT_ORDER]), random.pick([0, 9, 10, 12, 20, 21, 0xffff]), true);
    } else if (field < 8) {
      channel.ctrl[random.pick([CLI_NOTIFY, SRV_NOTIFY])] = random.u32() & 0xff;
    } else {
      view.setUint32(GRANTS + 4 * random.below(8), random.pick(HOSTILE_U32), true);
    }
    if (random.below(2) === 0) native.eventfdSignal(channel.waitFd);
  }

  /** The peer's honest indices and ours, written back over any lie. */
  #tellTruth(channel: Channel): void {
    // Too late: the episode ended and the peer's mapping is gone.
    if (channel.ctrl32.length === 0) return;
    if ((channel.peerProd - channel.ourReadCons) >>> 0 > channel.inbound.size) channel.peerProd = channel.ourReadCons;
    if ((channel.ourWriteProd - channel.peerCons) >>> 0 > channel.outbound.size)
      channel.peerCons = channel.ourWriteProd;
    Atomics.store(channel.ctrl32, channel.words.readProd / 4, channel.peerProd);
    Atomics.store(channel.ctrl32, channel.words.writeCons / 4, channel.peerCons);
  }

  async #peerKicks(channel: Channel): Promise<void> {
    const random = this.#random;
    const kicks = random.below(6) === 0 ? 40 + random.below(120) : 1 + random.below(3);
    for (let i = 0; i < kicks; i++) {
      this.#peerSignal(channel, channel.waitFd, random.pick([1, 1, 2, 2 ** 50, 2 ** 52]));
      if (kicks > 3) await turn();
    }
  }

  /** Drains our kicks, fills their counter, or clears O_NONBLOCK on a shared description. */
  #peerEventfdMischief(channel: Channel): void {
    const random = this.#random;
    switch (random.below(4)) {
      case 0:
        native.eventfdConsume(channel.kickFd);
        return;
      case 1:
        // Our kicks then find the counter full: they must not block, and count as "woken already".
        for (let value = 2 ** 52; value >= 1; value /= 2) while (this.#peerSignal(channel, channel.kickFd, value));
        return;
      default: {
        const fd = random.below(2) === 0 ? channel.kickFd : channel.waitFd;
        const blocking = random.below(2) === 0;
        native.setNonBlocking(fd, !blocking);
        if (blocking) channel.blocking.add(fd);
        else channel.blocking.delete(fd);
      }
    }
  }

  /**
   * The peer adds `value` to an eventfd's counter. native's poll guard sees
   * only whether 1 more fits: a larger value on a description the peer made
   * blocking would block this process (the peer's own), so the peer makes it
   * non-blocking for that write and blocking again after.
   */
  #peerSignal(channel: Channel, fd: number, value: number): boolean {
    const blocking = value > 1 && channel.blocking.has(fd);
    if (blocking) native.setNonBlocking(fd, true);
    try {
      return native.eventfdSignal(fd, value);
    } finally {
      if (blocking) native.setNonBlocking(fd, false);
    }
  }

  #peerLive(channel: Channel): void {
    channel.ctrl[channel.words.peerLive] = this.#random.pick([0, 1, 1, 2, 3, 0xff]);
    native.eventfdSignal(channel.waitFd);
  }

  /** Bytes (and sometimes an fd) on the rendezvous connection, which is only a death watch after the setup. */
  #garbageOnSocket(channel: Channel, withFd = true): void {
    if (channel.socketFd < 0) return;
    const bytes = this.#random.bytes(1 + this.#random.below(200));
    const passed = withFd && this.#random.below(4) === 0 ? native.eventfdCreate() : -1;
    try {
      native.sendmsg(channel.socketFd, bytes, passed >= 0 ? [passed] : []);
      this.stats.bytes += bytes.length;
    } catch {
      // Our side hung up already.
    } finally {
      if (passed >= 0) native.close(passed);
    }
  }

  #peerTruncate(channel: Channel): void {
    if (channel.poolFd < 0) return;
    try {
      native.resize(channel.poolFd, this.#random.pick([0, PAGE, native.fileSize(channel.poolFd) - PAGE]));
      this.#fail("the peer truncated a pool our side maps (it is sealed against shrinking)");
    } catch (error) {
      if (native.isSyscallError(error, "EPERM")) react(this.stats, "truncate-refused");
      else this.#unexpected(error, "truncate");
    }
  }

  /** A real control page's header (mutated) written over the live one, then a kick. */
  #peerBlit(channel: Channel): void {
    const random = this.#random;
    if (this.#corpus.ctrl.length === 0) return;
    const header = mutate(random, random.pick(this.#corpus.ctrl).subarray(0, GRANTS + 16));
    channel.ctrl.set(header.subarray(0, Math.min(header.length, GRANTS + 16)));
    native.eventfdSignal(channel.waitFd);
    if (random.below(2) === 0) queueMicrotask(() => this.#tellTruth(channel));
  }

  /** The peer goes: live byte zeroed, a kick, and/or its socket closed; our side must see it in bounded time. */
  async #peerCloses(channel: Channel): Promise<void> {
    const random = this.#random;
    const how = random.below(3);
    if (how !== 1) {
      channel.ctrl[channel.words.peerLive] = 0;
      native.eventfdSignal(channel.waitFd);
    }
    if (how !== 0 && channel.socketFd >= 0) {
      native.close(channel.socketFd);
      channel.socketFd = -1;
    }
    const wasOpen = channel.ours.isOpen() !== 0;
    if (wasOpen && !channel.closedByUs) {
      await within(channel.whenDisconnected, EVENT_BOUND_MS, "our side's disconnect after the peer closed");
    }
    react(this.stats, "ended");
    if (channel.ours.isOpen() !== 0 && !channel.closedByUs) this.#fail("our side is still open after the peer closed");
  }

  /** The end of an episode: sometimes the peer closes first, then our side closes. */
  async #finish(channel: Channel): Promise<void> {
    if (this.#random.below(3) === 0 && !channel.closedByUs) await this.#peerCloses(channel);
    // Bytes received before a disconnect stay readable until our side closes.
    if (this.#random.below(2) === 0) this.#ourRead(channel, "read after the end");
    this.#closeOurs(channel);
    this.#ourRead(channel, "read after close");
    if (channel.ctrl[channel.words.ownLive] !== 0) this.#fail("our side's live byte is not 0 after close()");
    await turn();
  }
}

export const target: FuzzTarget = {
  name: "vchan-shm",
  summary:
    "a real shm vchan server or client against a hostile peer writing its control page, rings, eventfds and rendezvous",
  unit: "peer actions",
  testCount: 30_000,
  expectReactions: [
    "connected",
    "refused",
    "waiting",
    "read",
    "wrapped",
    "wrote",
    "stalled",
    "too-large",
    "not-connected",
    "ended",
    "truncate-refused",
    "refused:VCHAN_BAD_PEER",
  ],
  async open({ seed, corpus }): Promise<FuzzInstance> {
    const dir = mkdtempSync(path.join(tmpdir(), "qubes-fuzz-vchan-"));
    const fuzzer = new VchanShmFuzzer(seed, splitCorpus(corpus), dir);
    return {
      stats: fuzzer.stats,
      run: (count) => fuzzer.run(count),
      close: () => {
        rmSync(dir, { recursive: true, force: true });
        return Promise.resolve();
      },
    };
  },
};
