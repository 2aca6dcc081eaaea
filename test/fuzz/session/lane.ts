/**
 * One lane of the fuzz target `session`: one domain, its own guid (started
 * in the fuzz process with startGuid, as qubes-guid serves one domain per
 * process) on one host compositor, and a {@link FuzzAgent} that plays the
 * domain's agent for one connection after another: a handshake (sometimes a
 * hostile one), a long stream of generated and mutated messages (sometimes
 * starting with a corpus replay), answers to the daemon's clipboard requests
 * (after a real Ctrl+Shift+C on the Desktop, now and then), and an end that
 * is clean, cut in the middle of a message, or abrupt. After every end the
 * lane checks that guid forgot the session's windows and the host shows none
 * of them, and that guid serves the next connection.
 */
import type { Logger } from "pino";
import pino from "pino";

import { checkVmName } from "../../../decorator/index.ts";
import { DEFAULT_GUID_CONFIG, createCounters, startGuid, type Guid, type GuidCounters } from "../../../guid/index.ts";
import { Random, concat, react, type FuzzStats } from "../harness.ts";
import { FuzzAgent, expectedVersion, fuzzPixel } from "./agent.ts";
import type { CorpusTemplates } from "./corpus.ts";
import { SessionGenerator } from "./generator.ts";
import { agentMessage } from "../../helpers/agent-peer.ts";
import { windowMismatches, type FuzzHost } from "./hosts.ts";

/** The daemon's (GUI) domain id. */
export const GUI_DOMAIN = 0;
/** guid's frame width (guid.conf's default). */
const BORDER = DEFAULT_GUID_CONFIG.borderWidth;
/** How long a connected agent has for its version word: short, so that the silent-agent case is cheap. */
export const HANDSHAKE_TIMEOUT_MS = 3000;
/** Bounds of the waits on guid, in ms (generous: the machine may be loaded). */
const CONNECT_MS = 15_000;
const HANDSHAKE_MS = 10_000;
const DRAIN_MS = 30_000;
const END_MS = 15_000;
const SHOW_MS = 15_000;
/** Bytes written per turn of the event loop before the lane lets guid read. */
const TURN_BYTES = 32 * 1024;
/** Window ids the generator never uses: the window the lane clicks on, and the exact-pixels check's. */
const CLIP_WINDOW = 0x00500001;
const CHECK_WINDOW = 0x00500002;
/** Framebuffer sizes of every agent; the first is the check's (over sway's floating minimum of 75×50). */
const FRAMEBUFFER_SIZES: ReadonlyArray<[number, number]> = [
  [96, 64],
  [64, 48],
  [32, 32],
  [128, 96],
  [17, 13],
  [200, 8],
];
const KEY_LEFTCTRL = 29;
const KEY_LEFTSHIFT = 42;
const KEY_C = 46;
const KEY_V = 47;
const BTN_LEFT = 0x110;

const VERSION_WORDS = [0x00010000, 0x00010001, 0x00010002, 0x00010003, 0x00010004, 0x00010005, 0x00010006, 0x00010007];

/** How a session's agent ends its side. */
type Ending = "clean" | "cut" | "abrupt";

/** A session's end as guid reported it. */
interface Ended {
  reason: string;
  violation: boolean;
}

/** Serialises use of the Desktop's one pointer and keyboard between lanes. */
export class InputLock {
  #tail: Promise<void> = Promise.resolve();
  run<T>(task: () => Promise<T>): Promise<T> {
    const result = this.#tail.then(task);
    this.#tail = result.then(
      () => undefined,
      () => undefined,
    );
    return result;
  }
}

/** What guid's logger counts: trusted messages the registry applied ("handled"), and anything at error. */
interface LogTally {
  handled: number;
  errors: string[];
}

/** A logger for guid that formats nothing: it counts registry messages and keeps errors. */
function tallyLogger(tally: LogTally): Logger {
  return pino({
    level: "trace",
    hooks: {
      logMethod(args, _method, level) {
        if (level === 10 && args[1] === "message") tally.handled += 1;
        else if (level >= 50 && tally.errors.length < 4) {
          tally.errors.push(args.map((arg) => (typeof arg === "string" ? arg : JSON.stringify(arg))).join(" "));
        }
      },
    },
  });
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** Options of {@link Lane.start}. */
export interface LaneOptions {
  index: number;
  domain: number;
  host: FuzzHost;
  socketDir: string;
  clipboardDir: string;
  corpus: CorpusTemplates;
  seed: number;
  stats: FuzzStats;
  input: InputLock;
  /** Notes shared by every lane: end reasons by code. */
  endCodes: Map<string, number>;
  /** Counts (and reports) what went wrong outside the expected reactions. */
  unexpected: (error: unknown, where: string) => void;
  /**
   * For a lane that owns its host (sway): starts a new one after the host
   * was lost, its process dead (`host-crashed`) or guid's connection closed
   * by it (`host-dropped`); the loss is kept in {@link Lane.crashes} and the
   * lane goes on with a new host and guid. A Desktop lane has no such
   * option: there, losing the host is unexpected.
   */
  restartHost?: () => Promise<FuzzHost>;
}

/** One domain's guid and agent; see the file comment. */
export class Lane {
  readonly options: LaneOptions;
  readonly vmName: string;
  readonly frameColor: number;
  guid: Guid;
  host: FuzzHost;
  readonly agent: FuzzAgent;
  /** How the lane's host died each time it did (a restartable host only). */
  readonly crashes: string[] = [];
  readonly tally: LogTally;
  readonly #random: Random;
  readonly #endings: Ended[] = [];
  #wakeEnded: (() => void) | null = null;
  #stopping = false;
  #doneError: unknown = null;
  /** Sessions that ended with a violation no attack of ours asked for (a generator slip, for tuning). */
  unplannedEnds = 0;
  sessions = 0;
  exactChecks = 0;
  copiesTried = 0;

  private constructor(
    options: LaneOptions,
    guid: Guid,
    agent: FuzzAgent,
    tally: LogTally,
    vmName: string,
    frameColor: number,
  ) {
    this.options = options;
    this.guid = guid;
    this.agent = agent;
    this.tally = tally;
    this.vmName = vmName;
    this.frameColor = frameColor;
    this.#random = new Random(options.seed);
    this.host = options.host;
    this.#watch(guid);
  }

  #watch(guid: Guid): void {
    guid.sessions[0]?.on("ended", (reason, violation) => {
      this.#endings.push({ reason, violation });
      this.#wakeEnded?.();
    });
    guid.done.catch(async (error: unknown) => {
      if (this.#stopping || guid !== this.guid) return;
      this.#doneError = error;
      // A restartable host that died is counted when the lane restarts it, not as guid's fault.
      if (await this.#hostDied()) return;
      this.options.unexpected(error, `${this.vmName}: guid's done rejected`);
    });
  }

  /** Whether the lane's restartable host died: its process's exit may come a little after guid's EPIPE. */
  async #hostDied(): Promise<boolean> {
    if (this.options.restartHost === undefined) return false;
    const deadline = performance.now() + 3000;
    while (this.host.crash === null && performance.now() < deadline) await sleep(20);
    return this.host.crash !== null || this.guid.display.connection.destroyed;
  }

  /** Starts the lane's agent (grant table and framebuffers) and its guid on the host. */
  static async start(options: LaneOptions): Promise<Lane> {
    const vmName = `fuzz${options.index}`;
    const frameColor = [0x3465a4, 0x73d216, 0xcc0000, 0xf57900, 0x75507b, 0xc4a000][options.index % 6] as number;
    const agent = new FuzzAgent({
      agentDomain: options.domain,
      guiDomain: GUI_DOMAIN,
      socketDir: options.socketDir,
      sizes: FRAMEBUFFER_SIZES,
    });
    const tally: LogTally = { handled: 0, errors: [] };
    let guid: Guid;
    try {
      guid = await startLaneGuid(options, options.host, vmName, frameColor, tally);
    } catch (error) {
      agent.close();
      throw error;
    }
    return new Lane(options, guid, agent, tally, vmName, frameColor);
  }

  /** guid's counters, over every guid the lane started. */
  get counters(): GuidCounters {
    const current = this.guid.counters;
    const before = this.#countersBefore;
    const sum = { ...current };
    for (const key of Object.keys(sum) as Array<keyof GuidCounters>) sum[key] = current[key] + before[key];
    return sum;
  }

  #countersBefore: GuidCounters = createCounters();

  /** The host died: count it, start a new host and a new guid on it. */
  async #restart(): Promise<void> {
    const restartHost = this.options.restartHost as () => Promise<FuzzHost>;
    const crash = this.host.crash;
    react(this.options.stats, crash === null ? "host-dropped" : "host-crashed");
    this.crashes.push(crash ?? `sway closed guid's connection: ${String(this.#doneError)}`);
    this.agent.hangUp();
    this.#stopping = true;
    this.guid.stop();
    await within(
      this.guid.done.catch(() => undefined),
      10_000,
      `${this.vmName}'s guid to stop`,
    ).catch(() => undefined);
    await sleep(20);
    for (const key of Object.keys(this.#countersBefore) as Array<keyof GuidCounters>) {
      this.#countersBefore[key] += this.guid.counters[key];
    }
    await this.host.close();
    this.host = await restartHost();
    this.guid = await startLaneGuid(this.options, this.host, this.vmName, this.frameColor, this.tally);
    this.#stopping = false;
    this.#doneError = null;
    this.#watch(this.guid);
  }

  /** Runs sessions until `enough()`; what goes wrong is counted as unexpected, and the lane goes on (up to a point). */
  async runUntil(enough: () => boolean): Promise<void> {
    let failures = 0;
    while (!enough()) {
      if (this.#doneError !== null) {
        if (!(await this.#hostDied())) return;
        await this.#restart();
      }
      try {
        await this.#session(enough);
        failures = 0;
      } catch (error) {
        if (await this.#hostDied()) continue;
        this.options.unexpected(error, `${this.vmName} (${this.host.kind})`);
        failures += 1;
        if (failures >= 3) return;
        await this.#recover();
      }
    }
  }

  /**
   * A fresh, valid session shows one window; resolves once the host shows
   * its frame and content exactly (rejects naming what it showed instead),
   * then ends the session.
   */
  async checkExact(): Promise<void> {
    const agent = this.agent;
    const endings = this.#endings.length;
    agent.listen();
    await agent.whenConnected(CONNECT_MS);
    agent.send(u32(0x00010008));
    await agent.receiveHandshake(0x00010008, HANDSHAKE_MS);
    const generator = this.#generator(0x00010008);
    for (const message of generator.showWindow(CHECK_WINDOW, 0, "fuzz-check", { x: 50, y: 50 })) agent.send(message);
    const framebuffer = agent.framebuffers[0] as { width: number; height: number };
    const appId = `${this.vmName}:FuzzCheck`;
    const host = this.host;
    const deadline = performance.now() + SHOW_MS;
    let last = "nothing";
    for (;;) {
      const outer = await host.find(appId);
      if (outer !== null) {
        if (outer.width !== framebuffer.width + 2 * BORDER || outer.height !== framebuffer.height + 2 * BORDER) {
          last = `a window of ${outer.width}x${outer.height}`;
        } else {
          const wrong = await windowMismatches(host, outer, BORDER, this.frameColor, fuzzPixel);
          if (wrong.length === 0) break;
          last = wrong.join("; ");
        }
      }
      if (performance.now() > deadline) {
        throw new Error(
          `${host.kind} did not show ${this.vmName}'s fresh window exactly within ${SHOW_MS} ms; it showed: ${last}`,
        );
      }
      await sleep(host.kind === "sway" ? 100 : 10);
    }
    this.exactChecks += 1;
    agent.hangUp();
    await this.#whenEnded(endings);
    await this.#checkForgotten();
  }

  /**
   * Fills guid's per-connection caches that only grow to a bounded size (a
   * host buffer per cursor image of the theme), so that the harness's leak
   * check measures growth, not a cache filling: a window under the
   * Desktop's pointer is sent every cursor glyph once.
   */
  async warmCaches(): Promise<void> {
    const desktop = this.host.desktop;
    if (desktop === null) return;
    const agent = this.agent;
    const endings = this.#endings.length;
    agent.listen();
    await agent.whenConnected(CONNECT_MS);
    agent.send(u32(0x00010008));
    await agent.receiveHandshake(0x00010008, HANDSHAKE_MS);
    const generator = this.#generator(0x00010008);
    for (const message of generator.showWindow(CHECK_WINDOW, 0, "fuzz-warm", { x: 0, y: 0 })) agent.send(message);
    const appId = `${this.vmName}:FuzzCheck`;
    const deadline = performance.now() + SHOW_MS;
    let where = await this.host.find(appId);
    while (where === null) {
      if (performance.now() > deadline)
        throw new Error(`the desktop did not show ${this.vmName}'s window within ${SHOW_MS} ms`);
      await sleep(10);
      where = await this.host.find(appId);
    }
    const at = where;
    await this.options.input.run(async () => {
      desktop.pointerMove(at.x + Math.floor(at.width / 2), at.y + Math.floor(at.height / 2));
      for (let glyph = 0; glyph < 154; glyph += 2) agent.send(agentCursor(CHECK_WINDOW, 0x100 + glyph));
      agent.send(agentCursor(CHECK_WINDOW, 0));
      await agent.whenWritable(0, DRAIN_MS);
      await pollFor(() => this.guid.counters.messages >= 84, `${this.vmName}'s guid to read the cursors`, DRAIN_MS);
      await this.checkHostAlive();
      desktop.pointerMove(0, 0);
    });
    agent.hangUp();
    await this.#whenEnded(endings);
    await this.#checkForgotten();
  }

  /** Before the end-of-run checks: a restartable host lost during the run is restarted (and counted). */
  async ensureHost(): Promise<void> {
    if (this.#doneError !== null && (await this.#hostDied())) await this.#restart();
  }

  /** The host connection still answers (a round trip within bounds). */
  async checkHostAlive(): Promise<void> {
    await within(
      this.guid.display.roundtrip(),
      10_000,
      `a round trip of ${this.vmName}'s guid with the ${this.host.kind} host`,
    );
  }

  /** Stops guid (its host connection, grant table, sessions) and the agent; bounded. */
  async close(): Promise<void> {
    this.#stopping = true;
    this.guid.stop();
    await within(
      this.guid.done.catch(() => undefined),
      10_000,
      `${this.vmName}'s guid to stop`,
    ).catch(() => undefined);
    // guid closes its display and grant table on a later turn.
    await sleep(20);
    this.agent.close();
    if (this.options.restartHost !== undefined) await this.host.close();
  }

  // ---- one session ----

  async #session(enough: () => boolean): Promise<void> {
    const random = this.#random;
    const agent = this.agent;
    const stats = this.options.stats;
    const endings = this.#endings.length;
    this.sessions += 1;
    agent.listen();
    await within(agent.whenConnected(CONNECT_MS), CONNECT_MS + 1000, `${this.vmName}'s guid to connect`);
    const handshake = await this.#handshake();
    if (handshake === null) {
      // A handshake attack: guid must end the session (or see the agent leave) and serve the next one.
      const ended = await this.#whenEnded(endings);
      if (ended.violation) react(stats, "handshake-refused");
      await this.#checkForgotten();
      return;
    }
    const generator = this.#generator(handshake);
    const corpus = this.options.corpus;
    const length = random.oneIn(10) ? 1 + random.below(50) : 200 + random.below(2800);
    const copyAt = this.host.desktop !== null && random.oneIn(5) ? random.below(length) : -1;
    let sent = 0;
    let attacked = false;
    let answered = 0;
    if (corpus.streams.length > 0 && random.oneIn(6)) {
      const stream = random.pick(corpus.streams);
      for (const message of stream.messages) {
        let bytes = message;
        const type = new DataView(message.buffer, message.byteOffset, message.byteLength).getUint32(0, true);
        if (type === 147 && !random.oneIn(10)) bytes = generator.regrant(message);
        else generator.observe(message);
        agent.send(bytes);
        sent += 1;
      }
      await agent.whenWritable(0, DRAIN_MS);
    }
    const batch: Uint8Array[] = [];
    while (sent < length && !agent.gone && !enough()) {
      let bytes = 0;
      while (bytes < TURN_BYTES && sent < length && !agent.gone) {
        if (sent === copyAt) {
          agent.send(concat(...batch.splice(0)));
          await this.#secureCopy(generator);
          if (agent.gone) break;
        }
        const message = generator.next();
        if (message.attack !== null) attacked = true;
        batch.push(message.bytes);
        bytes += message.bytes.length;
        sent += 1;
      }
      // One write a turn: the daemon reads what a real agent's burst would give it.
      agent.send(concat(...batch.splice(0)));
      stats.bytes += bytes;
      if (agent.traffic.clipboardRequests > answered) {
        answered = agent.traffic.clipboardRequests;
        if (random.oneIn(10)) generator.clipboardRequested = true;
        else await this.#answerClipboard(generator);
      }
      if (agent.queued > 0) await agent.whenWritable(0, DRAIN_MS);
      await turn();
    }
    if (!agent.gone)
      await this.#end(random.pick<Ending>(["clean", "clean", "clean", "cut", "cut", "abrupt"]), generator);
    const ended = await this.#whenEnded(endings);
    if (ended.violation && !attacked) this.unplannedEnds += 1;
    await this.#checkForgotten();
  }

  /** The agent's half of the handshake, hostile now and then; the negotiated version, or null when the attack ends the session. */
  async #handshake(): Promise<number | null> {
    const random = this.#random;
    const agent = this.agent;
    const roll = random.below(300);
    if (roll < 10) {
      // Another major (or garbage): guid refuses it and ends the session.
      let word = random.u32();
      while (word >>> 16 === 1) word = random.u32();
      agent.send(u32(random.oneIn(3) ? random.pick([0, 0x00020000, 0x00000008, 0xffffffff]) : word));
      agent.send(random.bytes(random.below(40)));
      await agent.whenWritable(0, DRAIN_MS);
      return null;
    }
    if (roll < 15) {
      // Part of the word, then gone.
      agent.send(u32(0x00010008).subarray(0, random.below(4)));
      await agent.whenWritable(0, DRAIN_MS);
      agent.hangUp();
      return null;
    }
    if (roll === 15) {
      // Nothing at all: guid's handshake timeout ends it.
      return null;
    }
    const word = random.oneIn(5)
      ? random.oneIn(4)
        ? 0x00010009 + random.below(0xfff0)
        : random.pick(VERSION_WORDS)
      : 0x00010008;
    const bytes = u32(word);
    if (random.oneIn(4)) {
      // The word in pieces, with turns between: guid must wait for all of it.
      const cut = 1 + random.below(3);
      agent.send(bytes.subarray(0, cut));
      await turn();
      await turn();
      agent.send(bytes.subarray(cut));
    } else {
      agent.send(bytes);
    }
    await agent.receiveHandshake(word, HANDSHAKE_MS);
    return expectedVersion(word) as number;
  }

  #generator(version: number): SessionGenerator {
    const generator = new SessionGenerator(this.#random, this.agent, this.options.corpus, {
      version,
      attackOneIn: 1500,
      edgeOneIn: 6,
    });
    generator.reserved.add(CLIP_WINDOW);
    generator.reserved.add(CHECK_WINDOW);
    return generator;
  }

  /** Answers the daemon's CLIPBOARD_REQ: at once, or (QSB-013) as a half message that stalls before the rest. */
  async #answerClipboard(generator: SessionGenerator): Promise<void> {
    const answer = generator.clipboardAnswer(8);
    if (!this.#random.oneIn(6)) {
      this.agent.send(answer);
      return;
    }
    const cut = 1 + this.#random.below(answer.length - 1);
    this.agent.send(answer.subarray(0, cut));
    await this.agent.whenWritable(0, DRAIN_MS);
    await sleep(1 + this.#random.below(20));
    this.agent.send(answer.subarray(cut));
  }

  /**
   * The secure copy through the session: shows a window, clicks it on the
   * Desktop and presses Ctrl+Shift+C (now and then Ctrl+Shift+V after), so
   * that guid sends CLIPBOARD_REQ for real. Whichever lane's window got the
   * click answers its own request; a window the Desktop never shows in time
   * (a deferred MAP) is skipped, noted, not an error.
   */
  async #secureCopy(generator: SessionGenerator): Promise<void> {
    const desktop = this.host.desktop;
    if (desktop === null) return;
    const agent = this.agent;
    this.copiesTried += 1;
    if (generator.windowCount >= 30) return;
    for (const message of generator.showWindow(CLIP_WINDOW, 1 + this.#random.below(3), "fuzz-clip", { x: 0, y: 0 })) {
      agent.send(message);
    }
    await agent.whenWritable(0, DRAIN_MS);
    const appId = `${this.vmName}:FuzzCheck`;
    const deadline = performance.now() + 3000;
    let shown = await this.host.find(appId);
    while (shown === null && performance.now() < deadline && !agent.gone) {
      await sleep(10);
      shown = await this.host.find(appId);
    }
    const where = shown;
    if (where === null) return;
    const paste = this.#random.oneIn(3);
    await this.options.input.run(async () => {
      desktop.pointerMove(where.x + Math.floor(where.width / 2), where.y + Math.floor(where.height / 2));
      desktop.pointerButton(BTN_LEFT, true);
      desktop.pointerButton(BTN_LEFT, false);
      await turn();
      for (const [code, pressed] of chord(KEY_C)) desktop.key(code, pressed);
      if (paste) {
        await sleep(5);
        for (const [code, pressed] of chord(KEY_V)) desktop.key(code, pressed);
      }
      await turn();
    });
  }

  /** Ends the agent's side: after a whole message, in the middle of one, or at once with bytes still queued. */
  async #end(ending: Ending, generator: SessionGenerator): Promise<void> {
    const agent = this.agent;
    if (ending === "abrupt") {
      agent.hangUp();
      return;
    }
    if (ending === "cut") {
      const message = generator.next().bytes;
      if (message.length > 1) agent.send(message.subarray(0, 1 + this.#random.below(message.length - 1)));
    }
    await agent.whenWritable(0, DRAIN_MS);
    agent.hangUp();
  }

  /** Waits for guid to end the session that started when `before` endings were seen; counts and classifies the end. */
  async #whenEnded(before: number): Promise<Ended> {
    const stats = this.options.stats;
    const waited = new Promise<void>((resolve) => {
      const check = (): void => {
        if (this.#endings.length > before) {
          this.#wakeEnded = null;
          resolve();
        }
      };
      this.#wakeEnded = check;
      check();
    });
    await within(
      waited,
      END_MS,
      `${this.vmName}'s guid to end the session (the agent ${this.agent.gone ? "hung up" : "is still there"})`,
    );
    this.agent.hangUp();
    const ended = this.#endings[before] as Ended;
    if (this.#endings.length > before + 1) throw new Error(`${this.vmName}'s guid ended one session twice`);
    // After the host died, guid's handlers fail on the dead connection: the crash is what is counted.
    if (/^[A-Z_]+: /.test(ended.reason) && (await this.#hostDied())) return ended;
    classify(stats, ended, this.options, this.vmName);
    return ended;
  }

  /** guid holds no window of the ended session, and (on the Desktop) the host shows none. */
  async #checkForgotten(): Promise<void> {
    const session = this.guid.sessions[0];
    const registry = session?.windows;
    if (registry !== null && registry !== undefined) {
      throw new Error(
        `${this.vmName}'s guid still holds a registry of ${registry.size} windows after the session ended`,
      );
    }
    if (this.host.kind !== "desktop") return;
    await this.checkHostAlive();
    const left = await this.host.leftovers(this.vmName);
    if (left.length > 0)
      throw new Error(`the desktop still has ${this.vmName}'s windows after its session ended: ${left.join(", ")}`);
  }

  /** After an error: hang up and let guid end whatever session it had; bounded, best effort. */
  async #recover(): Promise<void> {
    const before = this.#endings.length;
    this.agent.hangUp();
    const deadline = performance.now() + END_MS;
    while (this.guid.sessions[0]?.version !== 0 && this.#endings.length === before && performance.now() < deadline) {
      await sleep(20);
    }
  }

  /** The agent hangs up now (between runs the lane serves no connection). */
  idle(): void {
    this.agent.hangUp();
  }
}

/** Starts a lane's guid on `host`: one domain, guid.conf's defaults, a logger that only counts. */
function startLaneGuid(
  options: LaneOptions,
  host: FuzzHost,
  vmName: string,
  frameColor: number,
  tally: LogTally,
): Promise<Guid> {
  return startGuid({
    domains: [
      {
        domain: options.domain,
        vmName: checkVmName(vmName),
        frameColor,
        config: { ...DEFAULT_GUID_CONFIG, startupTimeout: 0 },
      },
    ],
    display: host.socketPath,
    clipboardDir: options.clipboardDir,
    ownDomain: GUI_DOMAIN,
    socketDir: options.socketDir,
    vchan: "socket",
    grants: "memfd",
    handshakeTimeoutMs: HANDSHAKE_TIMEOUT_MS,
    log: tallyLogger(tally),
  });
}

/** Counts a session's end as one of the reactions, or as unexpected when guid's own code failed. */
function classify(stats: FuzzStats, ended: Ended, options: LaneOptions, vmName: string): void {
  const { reason, violation } = ended;
  const endCodes = options.endCodes;
  if (!violation) {
    if (reason === "the agent went away") react(stats, "agent-gone");
    else if (reason !== "guid is stopping")
      options.unexpected(new Error(`${vmName}: session ended: ${reason}`), "ending");
    return;
  }
  // A handler that threw: only a grant the domain cannot back may (the registry's WINDOW_DUMP).
  const handler = /^([A-Z_]+): /.exec(reason);
  if (handler !== null) {
    if (handler[1] === "WINDOW_DUMP" && !/trusted|registry|TypeError|RangeError/.test(reason)) {
      react(stats, "refused-grant");
      react(stats, "end-session");
      endCodes.set("GRANT", (endCodes.get("GRANT") ?? 0) + 1);
      return;
    }
    options.unexpected(new Error(`${vmName}: a handler threw: ${reason}`), "ending");
    return;
  }
  react(stats, "end-session");
  const code = /\[([A-Z0-9_]+)\]/.exec(reason)?.[1] ?? /^([A-Z_]+):/.exec(reason)?.[1] ?? reason.slice(0, 40);
  endCodes.set(code, (endCodes.get(code) ?? 0) + 1);
}

/** The key events of Ctrl+Shift+`key`. */
function chord(key: number): Array<[number, boolean]> {
  return [
    [KEY_LEFTCTRL, true],
    [KEY_LEFTSHIFT, true],
    [key, true],
    [key, false],
    [KEY_LEFTSHIFT, false],
    [KEY_LEFTCTRL, false],
  ];
}

function agentCursor(id: number, value: number): Uint8Array {
  return agentMessage.cursor(id, value);
}

function u32(value: number): Uint8Array {
  const out = new Uint8Array(4);
  new DataView(out.buffer).setUint32(0, value >>> 0, true);
  return out;
}

/** Resolves once `check()` holds (polled every 5 ms: guid's counters have no event); rejects naming `what` after `ms`. */
async function pollFor(check: () => boolean, what: string, ms: number): Promise<void> {
  const deadline = performance.now() + ms;
  while (!check()) {
    if (performance.now() > deadline) throw new Error(`${what} did not happen within ${ms} ms`);
    await sleep(5);
  }
}

/** `promise`, or a rejection naming `what` after `ms`. */
export function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not happen within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
