/**
 * Fairness: 20 domains through one desktop, one of them flooding. 19 quiet
 * domains each update a 64×64 square of one window at 60 Hz, exactly as in
 * bench/scale.bench.ts (its Bench: real qubes-guid and qubes-gui-agent
 * processes, bench/peers/scale-app.ts, latency matched by pixel content from
 * the app's commit to the desktop frame that composes it). The 20th domain's
 * agent is hostile: bench/peers/flood-agent.ts, a hand-built agent that
 * sends, as fast as its vchan takes them, SHMIMAGEs of its window,
 * CONFIGUREs of it (alternating sizes), a CREATE/MAP/UNMAP/DESTROY of a new
 * window each round and 64 000-byte CLIPBOARD_DATAs nobody asked for (an
 * agent cannot ask for the user's clipboard); its qubes-guid is real.
 *
 * The figure is the quiet domains' p99 latency with the flood beside the
 * same with the flooder connected and idle, measured in the same run, one
 * after the other: the target is ≤ 2. Beside it, what the flooder sent per
 * second and what its guid did with it (handled, dropped, throttled, MAPs
 * deferred, resizes merged, host frames, whether the session ended), and
 * its guid's RSS before, during (peak) and after the flood.
 *
 * As deployed, every domain has its own qubes-guid process: the flood meets
 * the other domains only in the host compositor (our Desktop, in this
 * process) and on the CPUs. What holds it is guid's rules (guid/session.ts
 * and guid/windows.ts): the throttle stops reading a session past
 * SESSION_MESSAGE_RATE / SESSION_BYTE_RATE (the agent's ring fills and its
 * writes wait, so neither its guid nor the agent spins), damage and resizes
 * reach the host once a frame, and MAPs past HOST_WINDOW_RATE wait.
 */
import { spawn, type ChildProcess } from "node:child_process";
import os from "node:os";
import path from "node:path";

import { HOST_WINDOW_RATE, SESSION_BYTE_RATE, SESSION_MESSAGE_RATE, type GuidCounters } from "../guid/index.ts";
import { READY_TIMEOUT_MS, benchDir, childLines, single, stats, type BenchContext, type BenchRow } from "./lib.ts";
import type { FloodStats } from "./peers/flood-agent.ts";
import {
  Bench,
  cpuMs,
  liveGroups,
  rssBytes,
  sleep,
  stopGroup,
  tail,
  until,
  type Measured,
  type Timing,
} from "./scale.bench.ts";

const repoRoot = path.resolve(benchDir, "..");
/** The flooding domain's id and name (the quiet ones are d11, d12 …). */
const FLOOD_DOMAIN = 90;
const FLOOD_NAME = "flood";
const MB = 1024 * 1024;
/** How often the flooder's guid RSS is sampled during the flood, ms. */
const RSS_EVERY_MS = 200;
/** After the flood, how long before the RSS "after" (the session drains what its agent still had queued). */
const SETTLE_MS = 2000;

/**
 * The longest this case may run (ms), for the runner: 20 domains (three tsx
 * processes each, and the flooder's two) start on a machine that may have
 * two cores, then two measurements of 13 s.
 */
export const timeLimitMs = { full: 30 * 60_000, quick: 5 * 60_000 };

/** The flooding domain: its real qubes-guid and its hostile agent. */
interface Flooder {
  readonly guid: ChildProcess;
  readonly agent: ChildProcess;
  readonly logs: { guid: string; agent: string };
  /** The agent's stdout lines, each wait bounded. */
  readonly agentLine: ReturnType<typeof childLines>;
  /** guid's stdout lines (SIGUSR1's counters). */
  readonly guidLine: ReturnType<typeof childLines>;
}

async function startFlooder(bench: Bench): Promise<Flooder> {
  const env = {
    ...process.env,
    WAYLAND_DISPLAY: bench.desktop.socketPath,
    VCHAN_SOCKET_DIR: bench.dir,
    VCHAN_DOMAIN: "0",
    XDG_RUNTIME_DIR: bench.dir,
  };
  const guid = spawn(
    process.execPath,
    [
      path.join(repoRoot, "bin", "qubes-guid.js"),
      ...["-d", String(FLOOD_DOMAIN), "-N", FLOOD_NAME, "-l", "red"],
      ...["--clipboard-dir", path.join(bench.dir, "clipboard")],
    ],
    { cwd: repoRoot, detached: true, stdio: ["ignore", "pipe", "pipe"], env },
  );
  const agent = spawn(
    process.execPath,
    ["--import", "tsx", path.join(benchDir, "peers", "flood-agent.ts"), String(FLOOD_DOMAIN), "0", bench.dir],
    {
      cwd: repoRoot,
      detached: true,
      stdio: ["pipe", "pipe", "pipe"],
      env: { ...env, VCHAN_DOMAIN: String(FLOOD_DOMAIN) },
    },
  );
  for (const child of [guid, agent]) if (child.pid !== undefined) liveGroups.add(child.pid);
  const flooder: Flooder = {
    guid,
    agent,
    logs: { guid: "", agent: "" },
    agentLine: childLines(agent, "the flooding agent", 60_000),
    guidLine: childLines(guid, "the flooding domain's guid", 20_000),
  };
  tail(guid.stderr, (text) => (flooder.logs.guid = text));
  tail(agent.stderr, (text) => (flooder.logs.agent = text));
  const ready = await flooder.agentLine("ready", READY_TIMEOUT_MS);
  if (ready !== "ready") throw new Error(`the flooding agent sent "${ready}" instead of ready${failure(flooder)}`);
  await until(
    () => bench.desktop.shown.some((shown) => shown.window.title === `[${FLOOD_NAME}] flood`),
    () => `the flooder's window on the desktop${failure(flooder)}`,
    READY_TIMEOUT_MS,
  );
  return flooder;
}

function failure(flooder: Flooder): string {
  return (
    `\n--- the flooding agent (exit ${flooder.agent.exitCode ?? flooder.agent.signalCode}):\n${flooder.logs.agent}` +
    `\n--- its guid (exit ${flooder.guid.exitCode ?? flooder.guid.signalCode}):\n${flooder.logs.guid}`
  );
}

/** The flooder's guid counters, from SIGUSR1. */
async function countersOf(flooder: Flooder): Promise<GuidCounters> {
  flooder.guidLine.drop();
  flooder.guid.kill("SIGUSR1");
  const line = await flooder.guidLine("its counters (SIGUSR1)");
  return (JSON.parse(line) as { counters: GuidCounters }).counters;
}

/** Per kind, the difference of two counter sets. */
function delta(after: GuidCounters, before: GuidCounters): GuidCounters {
  const out = { ...after };
  for (const key of Object.keys(out) as Array<keyof GuidCounters>) out[key] = after[key] - before[key];
  return out;
}

interface Flood {
  stats: FloodStats;
  counters: GuidCounters;
  /** Of the flooder's guid: RSS before, peak during, after (bytes); CPU during (% of one core). */
  rss: { before: number; peak: number; after: number };
  cpu: { guid: number; agent: number };
  quiet: Measured;
}

/** Floods while the quiet domains are measured. */
async function measureFlood(bench: Bench, flooder: Flooder, timing: Timing): Promise<Flood> {
  const guidPid = flooder.guid.pid as number;
  const agentPid = flooder.agent.pid as number;
  const before = await countersOf(flooder);
  const rssBefore = rssBytes(guidPid);
  let peak = rssBefore;
  const sampler = setInterval(() => (peak = Math.max(peak, rssBytes(guidPid))), RSS_EVERY_MS);
  try {
    flooder.agent.stdin?.write("flood\n");
    const flooding = await flooder.agentLine("flooding");
    if (flooding !== "flooding") throw new Error(`the flooding agent sent "${flooding}" instead of flooding`);
    const cpuStart = { guid: cpuMs(guidPid), agent: cpuMs(agentPid), at: performance.now() };
    const quiet = await bench.measure(timing);
    const wallMs = performance.now() - cpuStart.at;
    const cpu = {
      guid: ((cpuMs(guidPid) - cpuStart.guid) / wallMs) * 100,
      agent: ((cpuMs(agentPid) - cpuStart.agent) / wallMs) * 100,
    };
    flooder.agent.stdin?.write("stop\n");
    let line = await flooder.agentLine("its flood's stats");
    // `ended` comes before the stats when guid ended the session.
    if (line === "ended") line = await flooder.agentLine("its flood's stats");
    if (!line.startsWith("stats ")) throw new Error(`the flooding agent sent "${line}" instead of its stats`);
    const stats = JSON.parse(line.slice("stats ".length)) as FloodStats;
    await sleep(SETTLE_MS);
    clearInterval(sampler);
    const counters = delta(await countersOf(flooder), before);
    return { stats, counters, rss: { before: rssBefore, peak, after: rssBytes(guidPid) }, cpu, quiet };
  } finally {
    clearInterval(sampler);
  }
}

/** The rows: the quiet domains' latency with the flood beside the same without it, then the flood's figures. */
function rows(quietCount: number, baseline: Measured, flood: Flood): BenchRow[] {
  const label = `${quietCount} quiet domains + 1 flooding`;
  const latency = stats(flood.quiet.latencies);
  const base = stats(baseline.latencies);
  const { stats: sent, counters, rss, cpu } = flood;
  const perSecond = (n: number): string => (n / sent.seconds).toFixed(0);
  const matched = (m: Measured): string =>
    `updates committed ${m.committed} in ${m.seconds.toFixed(1)} s: shown exactly ${m.shownExactly}, superseded ${m.superseded}, not composed within the grace time ${m.notComposed}`;
  return [
    {
      name: `fairness ${label}: quiet update latency p99 (app commit → desktop frame)`,
      unit: "ms",
      value: single(latency.p99),
      baseline: { name: "the same, flooder connected and idle", value: single(base.p99) },
      better: "lower",
      target: "≤ 2",
      notes: [
        `flood: ${matched(flood.quiet)}`,
        `no flood: ${matched(baseline)}`,
        `load average at start ${flood.quiet.load.map((x) => x.toFixed(2)).join(", ")} on ${os.availableParallelism()} CPUs`,
      ],
    },
    {
      name: `fairness ${label}: quiet update latency, all updates`,
      unit: "ms",
      value: latency,
      baseline: { name: "the same, flooder connected and idle", value: base },
      better: "lower",
      notes: [
        `quiet guids' CPU: ${stats(flood.quiet.guidCpu).median.toFixed(1)} % of a core with the flood, ${stats(baseline.guidCpu).median.toFixed(1)} % without; desktop ${stats(flood.quiet.desktopCpu).median.toFixed(1)} % vs ${stats(baseline.desktopCpu).median.toFixed(1)} %`,
        `quiet main threads waited for a CPU: guid ${flood.quiet.wait.guid.toFixed(1)} ms/s (no flood ${baseline.wait.guid.toFixed(1)}), agent ${flood.quiet.wait.agent.toFixed(1)} (${baseline.wait.agent.toFixed(1)}), desktop ${flood.quiet.wait.desktop.toFixed(1)} (${baseline.wait.desktop.toFixed(1)})`,
      ],
    },
    {
      name: `fairness ${label}: flood messages the flooder's guid handled per second`,
      unit: "msg/s",
      value: single(counters.messages / sent.seconds),
      baseline: { name: `the throttle's rate, SESSION_MESSAGE_RATE`, value: single(SESSION_MESSAGE_RATE) },
      better: "lower",
      notes: [
        `sent by the flooder: ${perSecond(sent.totalMessages)} msg/s, ${(sent.bytes / sent.seconds / MB).toFixed(2)} MB/s over ${sent.seconds.toFixed(1)} s (${Object.entries(
          sent.messages,
        )
          .map(([type, n]) => `${type} ${perSecond(n)}/s`)
          .join(", ")}); throttle's byte rate ${(SESSION_BYTE_RATE / MB).toFixed(0)} MB/s`,
        `its guid: ${counters.messages} handled, ${counters.dropped} dropped (the unrequested CLIPBOARD_DATAs), reading paused by the throttle ${counters.throttled} times; ${counters.mapsDeferred} MAPs waited for HOST_WINDOW_RATE (${HOST_WINDOW_RATE}/s), ${counters.resizesCoalesced} host resizes merged into the next frame's, ${counters.frames} host content commits for ${sent.messages.SHMIMAGE ?? 0} SHMIMAGEs sent; session ${sent.ended || counters.sessionsEnded > 0 ? "ENDED" : "not ended"}`,
        `CPU during the flood: its guid ${cpu.guid.toFixed(0)} % of a core, the flooding agent ${cpu.agent.toFixed(0)} %`,
      ],
    },
    {
      name: `fairness ${label}: the flooder's guid RSS, peak during the flood`,
      unit: "MB",
      value: single(rss.peak / MB),
      baseline: { name: "before the flood", value: single(rss.before / MB) },
      better: "lower",
      notes: [`after the flood (${SETTLE_MS / 1000} s later): ${(rss.after / MB).toFixed(1)} MB`],
    },
  ];
}

export default async function fairness(context: BenchContext): Promise<BenchRow[]> {
  const quietCount = context.smoke ? 3 : 19;
  const timing: Timing = context.smoke
    ? { warmupMs: 500, measureMs: 1500, graceMs: 500 }
    : { warmupMs: 2000, measureMs: 10_000, graceMs: 1000 };
  const bench = await Bench.create(1);
  bench.foreign = (title) => title.startsWith(`[${FLOOD_NAME}]`);
  let flooder: Flooder | undefined;
  try {
    flooder = await startFlooder(bench);
    const started = Date.now();
    await bench.grow(quietCount);
    process.stderr.write(
      `fairness: ${quietCount} quiet domains and the flooder up in ${((Date.now() - started) / 1000).toFixed(0)} s; measuring without the flood\n`,
    );
    const baseline = await bench.measure(timing);
    process.stderr.write("fairness: measuring with the flood\n");
    const flood = await measureFlood(bench, flooder, timing);
    return rows(quietCount, baseline, flood);
  } finally {
    if (flooder !== undefined) {
      flooder.agent.stdin?.end();
      await Promise.all([stopGroup(flooder.agent), stopGroup(flooder.guid)]);
    }
    await bench.destroy();
  }
}
