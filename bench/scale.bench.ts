/**
 * Scale: many domains and many windows through one desktop. Every window
 * updates a 64×64 square 60 times a second; per configuration (domains ×
 * windows per domain) we measure the GUI daemons' CPU (qubes-guid, one
 * process per domain: "the daemon"), the agents', the desktop's, the memory
 * per window, the latency of an update from the app's commit to the desktop
 * frame that composes it, and how many of the updates asked for arrive.
 * Every figure is beside the same figure for 1 domain × 1 window, measured
 * in the same run: the ratio is how the cost grows.
 *
 * The processes are those of a real machine: one Desktop (our host
 * compositor, in this process as qubes-gui-desktop runs it, 3840×2160, no
 * viewer), and per domain a real `qubes-guid` (bin/qubes-guid.js) on the
 * desktop's socket and a real `qubes-gui-agent` (bin/qubes-gui-agent.js)
 * running bench/peers/scale-app.ts, a Wayland client of ours with W
 * 128×128 XRGB8888 toplevels. The app updates at 60 Hz from a timer: the
 * agent's frame callbacks come as soon as it has copied a frame, so they
 * only gate (a window whose callback has not come skips the tick, as an app
 * paced by frame callbacks would).
 *
 * Matching is exact, by content: each update fills its square with its
 * sequence number as the pixel value. The windows are laid out on the
 * output without overlap (dragged by their title bars, as a user would),
 * and at every desktop frame our listener (the first one on `events.frame`,
 * so the time is taken when the output holds the pixels) reads the centre
 * pixel of each window's square. An update `seq` of window w is composed by
 * the first frame at which w shows seq or a later one; it is "shown" when
 * that frame shows exactly seq (else a later update superseded it before
 * any frame composed it). The app stamps CLOCK_MONOTONIC just before
 * wl_surface.commit; its stamps reach us over a unix socket only after the
 * measured interval, so collecting them costs nothing inside it.
 *
 * CPU: utime + stime from /proc/PID/stat of every guid, agent and app
 * process, and process.cpuUsage() of this process (the desktop, our frame
 * listener and timers), sampled each second of the measured interval:
 * ms of CPU per second of wall time, i.e. % of one core; beside it, from
 * /proc/PID/schedstat, how long each main thread waited on a run queue for
 * a CPU (a starved process, not a slow one). Memory: VmRSS from
 * /proc/PID/status at the end of the interval. Domains are added to the
 * running ones to reach the next configuration of a series (1 → 5 → 20
 * domains of 1 window; 1 → 5 → 10 → 20 domains of 10 windows); every
 * configuration is measured with every domain of it animating.
 */
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync } from "node:fs";
import { createServer, type Server, type Socket } from "node:net";
import os, { tmpdir } from "node:os";
import path from "node:path";
import { createInterface } from "node:readline";

import pino from "pino";

import { compileKeymap, type Rect } from "../compositor/index.ts";
import { Desktop, TITLE_BAR_HEIGHT } from "../desktop/index.ts";
import { READY_TIMEOUT_MS, benchDir, single, stats, type BenchContext, type BenchRow, type Stats } from "./lib.ts";
import { AREA, BASE, identityPixel } from "./peers/scale-square.ts";

const repoRoot = path.resolve(benchDir, "..");
const OUTPUT = { width: 3840, height: 2160 };
/** Each app window's side, in pixels (the 64×64 square is at (32, 32)). */
const SIZE = 128;
const RATE_HZ = 60;
/** Where the grid of laid-out windows starts: below the desktop's cascade of new windows (8 steps of 36 from (32, 56)). */
const GRID_TOP = 560;
const GRID_GAP = 4;
const BTN_LEFT = 0x110;
/** Domains started at once: each is three node processes starting tsx. */
const BATCH = 4;
const FIRST_DOMAIN_ID = 11;
const LABELS = ["red", "orange", "yellow", "green", "gray", "blue", "purple", "black"];
/** How long one command to an app (its stamps, after a stop) may take: a bound on a hang. */
const REPLY_TIMEOUT_MS = 60_000;

/**
 * The longest this case may run (ms), for the runner: each series starts
 * up to 20 domains (three tsx processes each) on a machine that may have
 * two cores, then measures every configuration for 13 s.
 */
export const timeLimitMs = { full: 45 * 60_000, quick: 5 * 60_000 };

interface Series {
  windows: number;
  domains: number[];
}

export interface Timing {
  warmupMs: number;
  measureMs: number;
  graceMs: number;
}

/** One domain: its guid, its agent (whose process group holds the app), and the app's control line. */
interface Domain {
  readonly index: number;
  readonly id: number;
  readonly name: string;
  readonly guid: ChildProcess;
  readonly agent: ChildProcess;
  readonly logs: { guid: string; agent: string };
  app: { socket: Socket; next: (what: string, timeoutMs?: number) => Promise<string>; pid: number } | null;
}

/** Where a window's square is read on the output, and what it showed when. */
interface Probe {
  readonly domain: number;
  readonly window: number;
  /** Word index into the output of the square's centre. */
  readonly at: number;
  last: number;
  /** Each change seen: frame time (ns) and the seq shown from then on. */
  times: number[];
  seqs: number[];
}

/** What one configuration measured. */
export interface Measured {
  domains: number;
  windows: number;
  /** Per 1-s sample, % of one core. */
  guidCpu: number[];
  agentCpu: number[];
  appCpu: number[];
  desktopCpu: number[];
  /** VmRSS at the end, bytes. */
  guidRss: number;
  agentRss: number;
  desktopRss: number;
  /** Run-queue wait of the main threads over the interval, ms per s of wall time, per process. */
  wait: { guid: number; agent: number; desktop: number };
  /** ms from the app's commit to the desktop frame that composes it. */
  latencies: number[];
  committed: number;
  shownExactly: number;
  superseded: number;
  notComposed: number;
  skippedFramePending: number;
  skippedBufferBusy: number;
  lateTicks: number;
  frames: number;
  seconds: number;
  load: number[];
}

const clockTicks = Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim());

/** utime + stime of a process, in ms; 0 once it is gone. */
export function cpuMs(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    // Fields 14 and 15 of stat(5); fields[0] here is field 3.
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / clockTicks;
  } catch {
    return 0;
  }
}

/** How long the main thread of a process has waited on a run queue for a CPU, in ms (schedstat's 2nd field); 0 once it is gone. */
function runQueueWaitMs(pid: number): number {
  try {
    return Number(readFileSync(`/proc/${pid}/schedstat`, "utf8").split(" ")[1]) / 1e6;
  } catch {
    return 0;
  }
}

/** VmRSS of a process in bytes; 0 once it is gone. */
export function rssBytes(pid: number): number {
  try {
    const match = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return match === null ? 0 : Number(match[1]) * 1024;
  } catch {
    return 0;
  }
}

/** The direct children of a process. */
function childrenOf(pid: number): number[] {
  try {
    return readdirSync(`/proc/${pid}/task`).flatMap((task) =>
      readFileSync(`/proc/${pid}/task/${task}/children`, "utf8")
        .split(" ")
        .filter((x) => x !== "")
        .map(Number),
    );
  } catch {
    return [];
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Polls `check` every 50 ms until it is true; rejects naming `what` after `timeoutMs`. */
export async function until(check: () => boolean, what: () => string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`${what()} did not happen within ${timeoutMs} ms`);
    await sleep(50);
  }
}

function ended(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once("exit", () => resolve()));
}

/**
 * The process groups of the domains' processes (started detached, so each
 * agent's group holds its app) still alive. They are not in this process's
 * group, so the runner's kill of a case at its time limit (SIGTERM to the
 * case's group) would miss them: on SIGTERM and at exit they are killed here.
 */
export const liveGroups = new Set<number>();

function killGroup(pgid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pgid, signal);
  } catch {
    // The group is gone already.
  }
}

function killLiveGroups(): void {
  for (const pgid of liveGroups) killGroup(pgid, "SIGKILL");
  liveGroups.clear();
}

process.once("exit", killLiveGroups);
process.once("SIGTERM", () => {
  killLiveGroups();
  process.exit(143);
});

/** Ends a child's process group: SIGTERM, then SIGKILL after 5 s. */
export async function stopGroup(child: ChildProcess): Promise<void> {
  const pgid = child.pid as number;
  const exited = ended(child);
  killGroup(pgid, "SIGTERM");
  const timer = setTimeout(() => killGroup(pgid, "SIGKILL"), 5000);
  await exited;
  clearTimeout(timer);
  // The app may outlive its agent for a moment: nothing of the group stays.
  killGroup(pgid, "SIGKILL");
  liveGroups.delete(pgid);
}

/** Keeps the last 4 KB of a stream, for the message of a failure. */
export function tail(stream: NodeJS.ReadableStream | null, keep: (text: string) => void): void {
  let text = "";
  stream?.setEncoding("utf8");
  stream?.on("data", (chunk: string) => {
    text = (text + chunk).slice(-4096);
    keep(text);
  });
}

/** The lines of a socket, one wait at a time, each bounded and naming what never came. */
function socketLines(socket: Socket, name: string): (what: string, timeoutMs?: number) => Promise<string> {
  const queue: string[] = [];
  let wake: ((line: string | null) => void) | null = null;
  let closed = false;
  createInterface({ input: socket }).on("line", (line) => {
    if (wake !== null) wake(line);
    else queue.push(line);
  });
  socket.on("close", () => {
    closed = true;
    wake?.(null);
  });
  return (what, timeoutMs = REPLY_TIMEOUT_MS) => {
    const line = queue.shift();
    if (line !== undefined) return Promise.resolve(line);
    if (closed) return Promise.reject(new Error(`${name} closed its control socket before ${what}`));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        wake = null;
        reject(new Error(`${name} did not send ${what} within ${timeoutMs} ms`));
      }, timeoutMs);
      wake = (line) => {
        clearTimeout(timer);
        wake = null;
        if (line === null) reject(new Error(`${name} closed its control socket before ${what}`));
        else resolve(line);
      };
    });
  };
}

/** One series: a desktop, domains of `windows` windows added up to each count in turn, each count measured. */
export class Bench {
  readonly dir: string;
  readonly desktop: Desktop;
  readonly domains: Domain[] = [];
  readonly servers: Server[] = [];
  readonly probes: Probe[] = [];
  /** Windows on the desktop that are not this bench's domains' (e.g. a flooding domain's): left where they are, not probed. */
  foreign: (title: string) => boolean = () => false;
  #recording = false;
  #frames = 0;
  /** Domains asked for so far (started or starting). */
  #started = 0;

  constructor(
    readonly windows: number,
    desktop: Desktop,
    dir: string,
  ) {
    this.desktop = desktop;
    this.dir = dir;
    const words = new Uint32Array(desktop.pixels.buffer, desktop.pixels.byteOffset, desktop.width * desktop.height);
    desktop.events.frame.add(() => {
      if (!this.#recording) return;
      const now = Number(process.hrtime.bigint());
      this.#frames++;
      for (const probe of this.probes) {
        const value = (words[probe.at] as number) & 0xffffff;
        // BASE: the square before the window's first update (no seq reaches BASE, 0x305070, in a run).
        if (value === probe.last || value === BASE) continue;
        probe.last = value;
        probe.times.push(now);
        probe.seqs.push(value);
      }
    });
  }

  static async create(windows: number): Promise<Bench> {
    const dir = mkdtempSync(path.join(tmpdir(), "qubes-scale-bench-"));
    try {
      const desktop = new Desktop({
        socket: path.join(dir, "wayland-desktop"),
        size: OUTPUT,
        keymap: await compileKeymap({ layout: "us" }),
        log: pino({ level: "error" }),
      });
      return new Bench(windows, desktop, dir);
    } catch (error) {
      rmSync(dir, { recursive: true, force: true });
      throw error;
    }
  }

  /** Starts domains until there are `count`, BATCH at a time, each waited for until all its windows are shown. */
  async grow(count: number): Promise<void> {
    while (this.#started < count) {
      const batch: Array<Promise<void>> = [];
      for (let i = 0; i < BATCH && this.#started < count; i++) batch.push(this.#startDomain(this.#started++));
      const results = await Promise.allSettled(batch);
      const failed = results.find((result) => result.status === "rejected");
      if (failed !== undefined) throw (failed as PromiseRejectedResult).reason;
    }
    this.#layOut();
  }

  async #startDomain(index: number): Promise<void> {
    const id = FIRST_DOMAIN_ID + index;
    const name = `d${id}`;
    const domainDir = path.join(this.dir, `domain-${name}`);
    mkdirSync(domainDir, { mode: 0o700 });
    const clipboardDir = path.join(this.dir, "clipboard");
    mkdirSync(clipboardDir, { mode: 0o700, recursive: true });
    const controlPath = path.join(this.dir, `control-${name}.sock`);
    const server = createServer();
    this.servers.push(server);
    const connected = new Promise<Socket>((resolve) => server.once("connection", resolve));
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(controlPath, resolve);
    });
    const guid = spawn(
      process.execPath,
      [
        path.join(repoRoot, "bin", "qubes-guid.js"),
        ...["-d", String(id), "-N", name, "-l", LABELS[index % LABELS.length] as string, "-q"],
        ...["--clipboard-dir", clipboardDir],
      ],
      {
        cwd: repoRoot,
        detached: true,
        stdio: ["ignore", "ignore", "pipe"],
        env: {
          ...process.env,
          WAYLAND_DISPLAY: this.desktop.socketPath,
          VCHAN_SOCKET_DIR: this.dir,
          VCHAN_DOMAIN: "0",
          XDG_RUNTIME_DIR: this.dir,
        },
      },
    );
    const app = [
      process.execPath,
      "--import",
      "tsx",
      path.join(benchDir, "peers", "scale-app.ts"),
      String(this.windows),
      String(SIZE),
      String(index),
      controlPath,
    ];
    const agent = spawn(
      process.execPath,
      [
        path.join(repoRoot, "bin", "qubes-gui-agent.js"),
        ...["-d", "0", "-q", "--wayland-display", path.join(domainDir, "wayland-qubes"), "--", ...app],
      ],
      {
        cwd: repoRoot,
        detached: true,
        stdio: ["ignore", "pipe", "pipe"],
        env: {
          PATH: process.env.PATH,
          HOME: domainDir,
          LANG: "C.UTF-8",
          XDG_RUNTIME_DIR: domainDir,
          VCHAN_SOCKET_DIR: this.dir,
          VCHAN_DOMAIN: String(id),
          QUBES_VM_NAME: name,
        },
      },
    );
    for (const child of [guid, agent]) if (child.pid !== undefined) liveGroups.add(child.pid);
    const domain: Domain = { index, id, name, guid, agent, logs: { guid: "", agent: "" }, app: null };
    this.domains.push(domain);
    tail(guid.stderr, (text) => (domain.logs.guid = text));
    tail(agent.stderr, (text) => (domain.logs.agent = text));
    agent.stdout?.resume();
    const failure = (): string =>
      `\n--- ${name}'s agent (exit ${agent.exitCode ?? agent.signalCode}):\n${domain.logs.agent}` +
      `\n--- ${name}'s guid (exit ${guid.exitCode ?? guid.signalCode}):\n${domain.logs.guid}`;
    let timer: NodeJS.Timeout | undefined;
    const socket = await Promise.race([
      connected,
      new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new Error(`${name}'s app did not connect within ${READY_TIMEOUT_MS} ms${failure()}`)),
          READY_TIMEOUT_MS,
        );
      }),
    ]).finally(() => clearTimeout(timer));
    const next = socketLines(socket, `${name}'s app`);
    const ready = await next("ready", READY_TIMEOUT_MS);
    if (ready !== "ready") throw new Error(`${name}'s app sent "${ready}" instead of ready`);
    const pid = childrenOf(agent.pid as number)[0] ?? 0;
    domain.app = { socket, next, pid };
    await until(
      () => this.#shownOf(domain).length === this.windows,
      () => `all ${this.windows} windows of ${name} on the desktop (${this.#shownOf(domain).length} are)${failure()}`,
      READY_TIMEOUT_MS,
    );
  }

  /** The domain's toplevels on the desktop. */
  #shownOf(domain: Domain): Array<{ title: string; rect: Rect }> {
    const prefix = `[${domain.name}] w`;
    return this.desktop.shown
      .filter((shown) => shown.kind === "toplevel" && shown.window.title.startsWith(prefix))
      .map((shown) => ({ title: shown.window.title, rect: shown.rect }));
  }

  /**
   * Drags every window not yet in the grid (the topmost first, so each bar
   * grabbed is uncovered) to its own cell: domain-major, so no window covers
   * another. Then one probe per window at its square's centre.
   */
  #layOut(): void {
    const outer = (rect: Rect): { width: number; height: number } => ({
      width: rect.width + GRID_GAP,
      height: rect.height + TITLE_BAR_HEIGHT + GRID_GAP,
    });
    for (;;) {
      const loose = this.desktop.shown.filter(
        (shown) => shown.kind === "toplevel" && shown.rect.y < GRID_TOP && !this.foreign(shown.window.title),
      );
      const top = loose.at(-1);
      if (top === undefined) break;
      const match = /^\[d(\d+)\] w(\d+)$/.exec(top.window.title);
      if (match === null) throw new Error(`an unexpected window on the desktop: "${top.window.title}"`);
      const cell = (Number(match[1]) - FIRST_DOMAIN_ID) * this.windows + Number(match[2]);
      const { width, height } = outer(top.rect);
      const columns = Math.floor((OUTPUT.width - GRID_GAP) / width);
      const x = GRID_GAP + (cell % columns) * width;
      const y = GRID_TOP + TITLE_BAR_HEIGHT + Math.floor(cell / columns) * height;
      if (x + width > OUTPUT.width || y + height > OUTPUT.height)
        throw new Error(`window cell ${cell} is off the output`);
      const grab = { x: top.rect.x + 8, y: top.rect.y - TITLE_BAR_HEIGHT / 2 };
      this.desktop.pointerMove(grab.x, grab.y);
      this.desktop.pointerButton(BTN_LEFT, true);
      this.desktop.pointerMove(grab.x + x - top.rect.x, grab.y + y - top.rect.y);
      this.desktop.pointerButton(BTN_LEFT, false);
      const moved = this.desktop.shown.find((shown) => shown.window === top.window);
      if (moved === undefined || moved.rect.x !== x || moved.rect.y !== y) {
        throw new Error(`"${top.window.title}" did not move to (${x}, ${y}): it is at ${JSON.stringify(moved?.rect)}`);
      }
    }
    this.desktop.pointerMove(OUTPUT.width - 1, OUTPUT.height - 1);
    this.probes.length = 0;
    for (const shown of this.desktop.shown) {
      const match = /^\[d(\d+)\] w(\d+)$/.exec(shown.window.title);
      if (match === null) continue;
      // guid's frame is as wide on every side: the app's pixels start that far in.
      const border = (shown.rect.width - SIZE) / 2;
      const centre = { x: shown.rect.x + border + AREA, y: shown.rect.y + border + AREA };
      this.probes.push({
        domain: Number(match[1]) - FIRST_DOMAIN_ID,
        window: Number(match[2]),
        at: centre.y * OUTPUT.width + centre.x,
        last: -1,
        times: [],
        seqs: [],
      });
    }
  }

  /**
   * Waits (bounded) until every probe sits on its own window's square: the
   * window's identity pixel is diagonally next to the square, the pixel
   * above the square is BASE.
   */
  async #checkProbes(): Promise<void> {
    let wrong = "";
    await until(
      () => (wrong = this.#misplacedProbe()) === "",
      () => `the probes on their windows' squares (${wrong})`,
      20_000,
    );
  }

  /** What is wrong with the first misplaced probe, or "". */
  #misplacedProbe(): string {
    const words = new Uint32Array(
      this.desktop.pixels.buffer,
      this.desktop.pixels.byteOffset,
      this.desktop.width * this.desktop.height,
    );
    for (const probe of this.probes) {
      const identity = (words[probe.at - (AREA / 2 + 1) * (OUTPUT.width + 1)] as number) & 0xffffff;
      const base = (words[probe.at - (AREA / 2 + 1) * OUTPUT.width] as number) & 0xffffff;
      const want = identityPixel(probe.domain, probe.window);
      if (identity !== want || base !== BASE) {
        return `d${probe.domain + FIRST_DOMAIN_ID} w${probe.window}: its identity pixel is ${identity.toString(16)}, not ${want.toString(16)}, and the pixel above its square ${base.toString(16)}, not ${BASE.toString(16)}`;
      }
    }
    return "";
  }

  #processes(): { guid: number[]; agent: number[]; app: number[] } {
    return {
      guid: this.domains.map((domain) => domain.guid.pid as number),
      agent: this.domains.map((domain) => domain.agent.pid as number),
      app: this.domains.map((domain) => domain.app?.pid ?? 0).filter((pid) => pid > 0),
    };
  }

  #checkAlive(): void {
    for (const domain of this.domains) {
      for (const [part, child] of [
        ["guid", domain.guid],
        ["agent", domain.agent],
      ] as const) {
        if (child.exitCode !== null || child.signalCode !== null) {
          throw new Error(
            `${domain.name}'s ${part} exited (${child.exitCode ?? child.signalCode}):\n${domain.logs[part]}`,
          );
        }
      }
    }
  }

  /** Every domain animates; after the warm-up, `measureMs` of it measured; then the stamps are matched to the frames. */
  async measure(timing: Timing): Promise<Measured> {
    this.#checkAlive();
    await this.#checkProbes();
    const load = os.loadavg();
    for (const probe of this.probes) {
      probe.last = -1;
      probe.times = [];
      probe.seqs = [];
    }
    this.#frames = 0;
    this.#recording = true;
    for (const domain of this.domains) domain.app?.socket.write("animate\n");
    await sleep(timing.warmupMs);
    const pids = this.#processes();
    const sum = (list: number[]): number => list.reduce((total, pid) => total + cpuMs(pid), 0);
    const sampleCpu = (): { guid: number; agent: number; app: number; desktop: number; at: bigint } => {
      const usage = process.cpuUsage();
      return {
        guid: sum(pids.guid),
        agent: sum(pids.agent),
        app: sum(pids.app),
        desktop: (usage.user + usage.system) / 1000,
        at: process.hrtime.bigint(),
      };
    };
    const waits = (): { guid: number; agent: number; desktop: number } => ({
      guid: pids.guid.reduce((total, pid) => total + runQueueWaitMs(pid), 0),
      agent: pids.agent.reduce((total, pid) => total + runQueueWaitMs(pid), 0),
      desktop: runQueueWaitMs(process.pid),
    });
    const waitsBefore = waits();
    const startNs = process.hrtime.bigint();
    const framesBefore = this.#frames;
    const cpu = { guid: [] as number[], agent: [] as number[], app: [] as number[], desktop: [] as number[] };
    let last = sampleCpu();
    const seconds = Math.max(1, Math.round(timing.measureMs / 1000));
    for (let i = 0; i < seconds; i++) {
      await sleep(timing.measureMs / seconds);
      const now = sampleCpu();
      const wallMs = Number(now.at - last.at) / 1e6;
      for (const part of ["guid", "agent", "app", "desktop"] as const) {
        cpu[part].push(((now[part] - last[part]) / wallMs) * 100);
      }
      last = now;
    }
    const endNs = process.hrtime.bigint();
    const waitsAfter = waits();
    const wallS = Number(endNs - startNs) / 1e9;
    const wait = {
      guid: (waitsAfter.guid - waitsBefore.guid) / wallS / pids.guid.length,
      agent: (waitsAfter.agent - waitsBefore.agent) / wallS / pids.agent.length,
      desktop: (waitsAfter.desktop - waitsBefore.desktop) / wallS,
    };
    const frames = this.#frames - framesBefore;
    const rss = (list: number[]): number => list.reduce((total, pid) => total + rssBytes(pid), 0);
    const guidRss = rss(pids.guid);
    const agentRss = rss(pids.agent);
    const desktopRss = process.memoryUsage().rss;
    // Updates committed near the end get the grace time to be composed.
    await sleep(timing.graceMs);
    this.#recording = false;
    this.#checkAlive();
    // The layout did not change while it was measured: every probe still reads its own window.
    const misplaced = this.#misplacedProbe();
    if (misplaced !== "") throw new Error(`after the measurement, ${misplaced}`);
    const still = this.probes.find((probe) => probe.seqs.length === 0);
    if (still !== undefined) {
      throw new Error(
        `d${still.domain + FIRST_DOMAIN_ID} w${still.window} showed no update at its probe: the probe is misplaced or the window is stuck`,
      );
    }

    const measured: Measured = {
      domains: this.domains.length,
      windows: this.domains.length * this.windows,
      guidCpu: cpu.guid,
      agentCpu: cpu.agent,
      appCpu: cpu.app,
      desktopCpu: cpu.desktop,
      guidRss,
      agentRss,
      desktopRss,
      wait,
      latencies: [],
      committed: 0,
      shownExactly: 0,
      superseded: 0,
      notComposed: 0,
      skippedFramePending: 0,
      skippedBufferBusy: 0,
      lateTicks: 0,
      frames,
      seconds: Number(endNs - startNs) / 1e9,
      load,
    };
    const probeOf = new Map(this.probes.map((probe) => [`${probe.domain} ${probe.window}`, probe]));
    for (const domain of this.domains) {
      const app = domain.app;
      if (app === null) continue;
      app.socket.write("stop\n");
      const header = await app.next("its stamps");
      const count = Number(/^stamps (\d+)$/.exec(header)?.[1] ?? NaN);
      if (!Number.isInteger(count)) throw new Error(`${domain.name}'s app sent "${header}" instead of its stamps`);
      /** Per window: index into its probe's changes, as stamps come in commit order. */
      const cursor = new Map<Probe, number>();
      for (let i = 0; i < count; i++) {
        const [window, seq, ns] = (await app.next("a stamp")).split(" ").map(Number) as [number, number, number];
        if (ns < Number(startNs) || ns > Number(endNs)) continue;
        measured.committed++;
        const probe = probeOf.get(`${domain.index} ${window}`);
        if (probe === undefined) throw new Error(`${domain.name} w${window} has no probe`);
        let at = cursor.get(probe) ?? 0;
        while (at < probe.seqs.length && (probe.seqs[at] as number) < seq) at++;
        cursor.set(probe, at);
        if (at === probe.seqs.length) {
          measured.notComposed++;
          continue;
        }
        const latency = ((probe.times[at] as number) - ns) / 1e6;
        // A frame cannot show an update before its commit: if one did, the matching is wrong, not the figure.
        if (latency < 0)
          throw new Error(`${domain.name} w${window}: seq ${seq} was on the output ${-latency} ms before its commit`);
        measured.latencies.push(latency);
        if (probe.seqs[at] === seq) measured.shownExactly++;
        else measured.superseded++;
      }
      const counts = (await app.next("its counts")).split(" ");
      if (counts[0] !== "counts") throw new Error(`${domain.name}'s app sent "${counts.join(" ")}" instead of counts`);
      measured.lateTicks += Number(counts[2]);
      measured.skippedFramePending += Number(counts[3]);
      measured.skippedBufferBusy += Number(counts[4]);
    }
    return measured;
  }

  async destroy(): Promise<void> {
    await Promise.all(
      this.domains.flatMap((domain) => {
        domain.app?.socket.destroy();
        return [stopGroup(domain.agent), stopGroup(domain.guid)];
      }),
    );
    for (const server of this.servers) server.close();
    this.desktop.destroy();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

const MB = 1024 * 1024;
const CPU_LABELS = { guid: "guid (every daemon)", agent: "agents (all)", desktop: "desktop" } as const;

function label(m: Measured): string {
  return `${m.domains}×${m.windows / m.domains} (${m.windows} window${m.windows === 1 ? "" : "s"})`;
}

/** The rows of one configuration, each beside the same figure of the baseline (1×1). */
function rows(m: Measured, base: Measured): BenchRow[] {
  const name = (what: string): string => `scale ${label(m)}: ${what}`;
  const perDomain = m.windows / m.domains;
  /** The curve the row is a point of: one per figure and windows per domain, x the number of windows. */
  const curve = (figure: string): Pick<BenchRow, "group" | "x" | "xLabel"> => ({
    group: `${figure}, ${perDomain} window${perDomain === 1 ? "" : "s"} per domain`,
    x: m.windows,
    xLabel: "windows",
  });
  const baseName = (what: string): string => `1×1: ${what}`;
  const requested = RATE_HZ * m.windows;
  const perSecond = (count: number): string => (count / m.seconds).toFixed(0);
  const perUpdate = (cpu: number[], x: Measured): Stats =>
    // % of a core is 10,000 µs of CPU per s: µs of CPU per update an app committed.
    stats(cpu.map((percent) => (percent * 10_000) / Math.max(1, x.committed / x.seconds)));
  const cpuRow = (part: "guid" | "agent" | "desktop", value: number[], baseValue: number[]): BenchRow => ({
    ...curve(`${CPU_LABELS[part]} CPU`),
    name: name(`${CPU_LABELS[part]} CPU, % of one core`),
    unit: "%",
    value: stats(value),
    baseline: { name: baseName(`${CPU_LABELS[part]} CPU`), value: stats(baseValue) },
    better: "lower",
    notes: [
      `per committed update: ${perUpdate(value, m).median.toFixed(0)} µs of CPU (1×1: ${perUpdate(baseValue, base).median.toFixed(0)} µs)`,
      `each ${part} process's main thread waited for a CPU ${m.wait[part].toFixed(0)} ms per s (1×1: ${base.wait[part].toFixed(0)} ms)`,
    ],
  });
  const latency = m.latencies.length > 0 ? stats(m.latencies) : single(NaN);
  return [
    {
      ...curve("latency"),
      name: name("app commit → the desktop frame composing it"),
      unit: "ms",
      value: latency,
      baseline: { name: baseName("the same"), value: stats(base.latencies) },
      better: "lower",
      notes: [
        `updates committed ${m.committed} in ${m.seconds.toFixed(1)} s: shown exactly ${m.shownExactly}, superseded before a frame ${m.superseded}, not composed within the grace time ${m.notComposed}`,
        `desktop frames: ${(m.frames / m.seconds).toFixed(0)}/s; load average at start ${m.load.map((x) => x.toFixed(2)).join(", ")} on ${os.availableParallelism()} CPUs`,
      ],
    },
    {
      ...curve("updates shown"),
      name: name("distinct updates on the output per second, requested 60 × windows"),
      unit: "/s",
      value: single(m.shownExactly / m.seconds),
      baseline: { name: `requested: ${RATE_HZ} × ${m.windows}`, value: single(requested) },
      better: "higher",
      notes: [
        `per second: ${perSecond(m.committed)} committed by the apps, ${perSecond(m.superseded)} of them superseded before any frame showed them; ${perSecond(m.frames)} desktop frames`,
        `app ticks skipped (warm-up and grace included): ${m.skippedFramePending} windows waiting for a frame callback, ${m.skippedBufferBusy} for a buffer, ${m.lateTicks} ticks more than a period late (× ${m.windows / m.domains} windows each)`,
      ],
    },
    cpuRow("guid", m.guidCpu, base.guidCpu),
    cpuRow("agent", m.agentCpu, base.agentCpu),
    cpuRow("desktop", m.desktopCpu, base.desktopCpu),
    {
      ...curve("memory per window"),
      name: name("memory per window, guid + agent RSS"),
      unit: "MB",
      value: single((m.guidRss + m.agentRss) / m.windows / MB),
      baseline: { name: baseName("the same"), value: single((base.guidRss + base.agentRss) / base.windows / MB) },
      better: "lower",
      notes: [
        `guid alone: ${(m.guidRss / m.windows / MB).toFixed(1)} MB per window (1×1: ${(base.guidRss / MB).toFixed(1)} MB); per domain: guid ${(m.guidRss / m.domains / MB).toFixed(1)} MB, agent ${(m.agentRss / m.domains / MB).toFixed(1)} MB`,
        `apps (the load, not the stack): ${stats(m.appCpu).median.toFixed(1)} % of a core; desktop process RSS ${(m.desktopRss / MB).toFixed(0)} MB`,
      ],
    },
  ];
}

export default async function scale(context: BenchContext): Promise<BenchRow[]> {
  const series: Series[] = context.smoke
    ? [
        { windows: 1, domains: [1] },
        { windows: 2, domains: [2] },
      ]
    : [
        { windows: 1, domains: [1, 5, 20] },
        { windows: 10, domains: [1, 5, 10, 20] },
      ];
  const timing: Timing = context.smoke
    ? { warmupMs: 500, measureMs: 1000, graceMs: 500 }
    : { warmupMs: 2000, measureMs: 10_000, graceMs: 1000 };
  const results: Measured[] = [];
  for (const { windows, domains } of series) {
    const bench = await Bench.create(windows);
    try {
      for (const count of domains) {
        const started = Date.now();
        await bench.grow(count);
        process.stderr.write(
          `scale: ${count} domains × ${windows} windows up in ${((Date.now() - started) / 1000).toFixed(0)} s; measuring\n`,
        );
        results.push(await bench.measure(timing));
      }
    } finally {
      await bench.destroy();
    }
  }
  const base = results[0] as Measured;
  return results.flatMap((m) => rows(m, base));
}
