// One app against the others, measured with real apps against the agent's
// compositor: while a hostile client floods it from a process of its own
// (110,000 create_surface in one burst, again and again; or commits of a
// fully damaged 1024×768 buffer as fast as it takes them), another client's
// wl_display.sync round trip stays under 100 ms at p99 and
// weston-simple-shm keeps at least half the frame rate it has alone.
//
// The test plays the Qubes side as the bridge does: each commit's damage is
// copied into a framebuffer of the window's size, then frameDone, and frame
// callbacks come at the output's refresh (60 Hz): the compositor paces them
// itself when its windows have setShown (item 3 of the issue), else this
// side does, as a daemon showing the window at 60 Hz would. Every process is
// started, and says it is ready, before any clock starts.
import { type ChildProcess } from "node:child_process";
import { createInterface } from "node:readline";

import { afterAll, beforeAll, describe, expect, it } from "vitest";

import type { ShellWindow, WindowCommit } from "../../compositor/index.ts";
import {
  startCompositorUnderTest,
  startWestonSimpleShm,
  waitForWindow,
  type CompositorUnderTest,
  type RunningApp,
} from "../helpers/apps.ts";
import { spawnTs } from "../helpers/processes.ts";

/** The refresh period of the emulated output (ms). */
const REFRESH_MS = 1000 / 60;
/** How long each phase is measured (ms). */
const PHASE_MS = 3000;
/** The targets of the issue: p99 of the sync round trip, and the share of the frame rate alone kept under a flood. */
const SYNC_P99_LIMIT_MS = 100;
const FPS_SHARE = 0.5;
/** Attempts of a scenario: a second one only when the first missed a target (the machine is shared). */
const ATTEMPTS = 2;
/** How long a process may take to start and say it is ready (ms): the machine's time, not the code's. */
const READY_TIMEOUT_MS = 120_000;

/** A peer process of test/gui-agent/peers/flood-client.ts, line by line. */
interface Peer {
  readonly child: ChildProcess;
  readonly lines: string[];
  send(line: string): void;
  /** The first line from `from` on matching `pattern`; rejects naming `what` after `timeoutMs` or if the peer ends. */
  waitForLine(pattern: RegExp, what: string, timeoutMs: number, from?: number): Promise<RegExpMatchArray>;
  stop(): Promise<void>;
}

function startPeer(mode: "surfaces" | "commits" | "probe", socketPath: string): Peer {
  const child = spawnTs("test/gui-agent/peers/flood-client.ts", [mode, socketPath], {
    stdio: ["pipe", "pipe", "pipe"],
  });
  const lines: string[] = [];
  let stderr = "";
  let ended = false;
  const watchers = new Set<() => void>();
  createInterface({ input: child.stdout! }).on("line", (line) => {
    lines.push(line);
    for (const watcher of [...watchers]) watcher();
  });
  child.stderr!.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk));
  const exited = new Promise<void>((resolve) =>
    child.on("close", () => {
      ended = true;
      for (const watcher of [...watchers]) watcher();
      resolve();
    }),
  );
  return {
    child,
    lines,
    send: (line) => void child.stdin!.write(`${line}\n`),
    waitForLine: (pattern, what, timeoutMs, from = 0) =>
      new Promise((resolve, reject) => {
        const timer = setTimeout(
          () => finish(new Error(`${what} never came from the ${mode} peer within ${timeoutMs} ms`)),
          timeoutMs,
        );
        const check = (): void => {
          for (let i = from; i < lines.length; i++) {
            const match = pattern.exec(lines[i] as string);
            if (match !== null) return finish(undefined, match);
          }
          if (ended) finish(new Error(`the ${mode} peer ended before ${what}:\n${lines.join("\n")}\n${stderr}`));
        };
        const finish = (error?: Error, match?: RegExpMatchArray): void => {
          clearTimeout(timer);
          watchers.delete(check);
          if (error !== undefined) reject(error);
          else resolve(match as RegExpMatchArray);
        };
        watchers.add(check);
        check();
      }),
    stop: async () => {
      if (!ended) {
        child.stdin!.end("stop\n");
        const timer = setTimeout(() => child.kill("SIGKILL"), 5000);
        await exited;
        clearTimeout(timer);
      }
    },
  };
}

/** The emulated Qubes side: copies each commit's damage into the window's framebuffer, then says the frame is done. */
class QubesSide {
  /** Commits seen per window. */
  readonly commits = new Map<ShellWindow, number>();
  private readonly framebuffers = new Map<ShellWindow, Uint8Array>();
  /** Windows whose frame is done, waiting for this side's refresh (when the compositor does not pace). */
  private readonly waiting = new Set<ShellWindow>();
  private readonly refresh: NodeJS.Timeout;

  constructor(under: CompositorUnderTest) {
    const watch = (window: ShellWindow): void => {
      window.events.commit.add((commit) => this.copy(window, commit));
      window.events.destroy.add(() => {
        this.framebuffers.delete(window);
        this.waiting.delete(window);
      });
    };
    for (const window of under.compositor.windows) watch(window);
    under.compositor.events.newWindow.add(watch);
    this.refresh = setInterval(() => {
      for (const window of this.waiting) window.frameDone(Date.now() >>> 0);
      this.waiting.clear();
    }, REFRESH_MS);
  }

  destroy(): void {
    clearInterval(this.refresh);
  }

  private copy(window: ShellWindow, commit: WindowCommit): void {
    this.commits.set(window, (this.commits.get(window) ?? 0) + 1);
    const stride = commit.size.width * 4;
    let framebuffer = this.framebuffers.get(window);
    if (framebuffer === undefined || framebuffer.length !== stride * commit.size.height) {
      framebuffer = new Uint8Array(stride * commit.size.height);
      this.framebuffers.set(window, framebuffer);
    }
    const layer = commit.layers[0];
    if (layer !== undefined) {
      const { pixels } = layer;
      for (const rect of commit.damage) {
        const x0 = Math.max(rect.x, layer.x);
        const x1 = Math.min(rect.x + rect.width, layer.x + pixels.width);
        if (x1 <= x0) continue;
        for (let y = Math.max(rect.y, layer.y); y < Math.min(rect.y + rect.height, layer.y + pixels.height); y++) {
          const from = (y - layer.y) * pixels.stride + (x0 - layer.x) * 4;
          framebuffer.set(pixels.bytes.subarray(from, from + (x1 - x0) * 4), y * stride + x0 * 4);
        }
      }
    }
    if ("setShown" in window) window.frameDone(Date.now() >>> 0);
    else this.waiting.add(window);
  }
}

function percentile(values: readonly number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? NaN;
}

/** What one phase measured. */
interface Figures {
  fps: number;
  syncP50: number;
  syncP99: number;
  syncMax: number;
  syncs: number;
}

let under: CompositorUnderTest;
let qubes: QubesSide;
let shm: RunningApp;
let shmWindow: ShellWindow;
let probe: Peer;
const peers: Peer[] = [];

/** Measures weston-simple-shm's frames and the probe's round trips for PHASE_MS. */
async function measure(): Promise<Figures> {
  const framesBefore = qubes.commits.get(shmWindow) ?? 0;
  const from = probe.lines.length;
  const start = performance.now();
  probe.send(`go ${PHASE_MS}`);
  const reported = await probe.waitForLine(/^latencies (.*)$/, "the round trips' latencies", PHASE_MS + 30_000, from);
  const seconds = (performance.now() - start) / 1000;
  const frames = (qubes.commits.get(shmWindow) ?? 0) - framesBefore;
  const latencies = JSON.parse(reported[1] as string) as number[];
  return {
    fps: Math.round((frames / seconds) * 10) / 10,
    syncP50: percentile(latencies, 50),
    syncP99: percentile(latencies, 99),
    syncMax: Math.max(...latencies),
    syncs: latencies.length,
  };
}

beforeAll(async () => {
  under = await startCompositorUnderTest();
  qubes = new QubesSide(under);
  shm = startWestonSimpleShm(under.display);
  shmWindow = await waitForWindow(under.compositor, shm, (window) => window.pid === shm.child.pid, READY_TIMEOUT_MS);
  probe = startPeer("probe", under.compositor.socketPath);
  peers.push(probe);
  // Process starts are outside every timed window: each peer says it is ready first.
  await probe.waitForLine(/^ready$/, "the probe's ready line", READY_TIMEOUT_MS);
}, 3 * READY_TIMEOUT_MS);

afterAll(async () => {
  for (const peer of peers.splice(0)) await peer.stop();
  await shm?.stop();
  qubes?.destroy();
  under?.destroy();
});

/** What one attempt of a scenario measured: alone, then under the flood, and how much the flood did meanwhile. */
interface Attempt {
  alone: Figures;
  flooded: Figures;
  flood: string;
}

function meetsTargets({ alone, flooded }: Attempt): boolean {
  return flooded.syncP99 < SYNC_P99_LIMIT_MS && flooded.fps >= alone.fps * FPS_SHARE;
}

/**
 * Measures alone, starts the flood (`start` resolves once it is running),
 * measures under it, and stops it; a second attempt only when the first
 * missed a target, since other tests share this machine's two CPUs.
 */
async function runScenario(
  mode: "surfaces" | "commits",
  start: (flood: Peer) => Promise<() => string>,
): Promise<Attempt[]> {
  const attempts: Attempt[] = [];
  for (let n = 0; n < ATTEMPTS && !attempts.some(meetsTargets); n++) {
    const flood = startPeer(mode, under.compositor.socketPath);
    peers.push(flood);
    // Process starts are outside every timed window: the flood client says it is ready first.
    await flood.waitForLine(/^ready$/, "the flood client's ready line", READY_TIMEOUT_MS);
    const alone = await measure();
    const evidence = await start(flood);
    const flooded = await measure();
    const done = evidence();
    await flood.stop();
    attempts.push({ alone, flooded, flood: done });
    console.log(
      `${mode} flood, attempt ${n + 1}: alone ${JSON.stringify(alone)}; under flood ${JSON.stringify(flooded)}; ${done}`,
    );
  }
  return attempts;
}

describe("one app against the others in the agent's compositor", () => {
  it("keeps another client's sync under 100 ms at p99 and weston-simple-shm at half its frame rate while a client bursts 110,000 create_surface again and again", async () => {
    let burstsEnded = 0;
    const attempts = await runScenario("surfaces", async (flood) => {
      flood.send("go");
      // The first burst was taken whole (and ended by the compositor): the flood is running.
      await flood.waitForLine(/^burst 1: /, "the end of the first burst of 110,000 create_surface", 60_000);
      const from = flood.lines.length;
      return () => {
        const bursts = flood.lines.slice(from).filter((line) => line.startsWith("burst "));
        burstsEnded = bursts.length;
        return `${bursts.length} bursts ended while measured (${bursts[0] ?? "none"})`;
      };
    });
    const last = attempts[attempts.length - 1] as Attempt;
    expect(burstsEnded, "bursts of the flood that ended while it was measured").toBeGreaterThan(0);
    expect(last.flooded.syncP99, "sync p99 under the create_surface flood (ms)").toBeLessThan(SYNC_P99_LIMIT_MS);
    expect(last.flooded.fps, "weston-simple-shm frames/s under the flood").toBeGreaterThanOrEqual(
      last.alone.fps * FPS_SHARE,
    );
    expect(last.alone.fps, "weston-simple-shm frames/s alone").toBeGreaterThan(10);
  }, 600_000);

  it("keeps another client's sync under 100 ms at p99 and weston-simple-shm at half its frame rate while a client commits as fast as it can", async () => {
    let floodRate = 0;
    const attempts = await runScenario("commits", async (flood) => {
      const floodWindow = [...under.compositor.windows].reverse().find((window) => window.title === "flood");
      if (floodWindow === undefined) throw new Error("the flood client's window never appeared");
      const commits = (): number => qubes.commits.get(floodWindow) ?? 0;
      const started = commits();
      flood.send("go");
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => {
          remove();
          reject(new Error("the flood client's first 64 commits never came within 60 s"));
        }, 60_000);
        const remove = floodWindow.events.commit.add(() => {
          if (commits() < started + 64) return;
          clearTimeout(timer);
          remove();
          resolve();
        });
      });
      const before = commits();
      const from = performance.now();
      return () => {
        floodRate = Math.round((commits() - before) / ((performance.now() - from) / 1000));
        return `the flood client committed ${floodRate} times/s`;
      };
    });
    const last = attempts[attempts.length - 1] as Attempt;
    expect(floodRate, "the flood client's commits per second while measured").toBeGreaterThan(100);
    expect(last.flooded.syncP99, "sync p99 under the commit flood (ms)").toBeLessThan(SYNC_P99_LIMIT_MS);
    expect(last.flooded.fps, "weston-simple-shm frames/s under the flood").toBeGreaterThanOrEqual(
      last.alone.fps * FPS_SHARE,
    );
    expect(last.alone.fps, "weston-simple-shm frames/s alone").toBeGreaterThan(10);
  }, 600_000);
});
