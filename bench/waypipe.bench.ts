/**
 * Side by side with waypipe (Debian's 0.8.4): one app's window forwarded
 * across a process boundary to the same host compositor, by waypipe and by
 * us, for a fixed wall time each (issue 12).
 *
 * - waypipe, local Unix-socket mode: `waypipe client` beside the host
 *   compositor and `waypipe server -- APP`, with `--no-gpu` (no GPU here: no
 *   DMABUF attempts, a pure wl_shm CPU path, as ours) and `--threads 1`
 *   (its default on this 2-core machine, written out so the figure does
 *   not change with the machine), once `--compress none` and once
 *   `--compress lz4` (the default level).
 * - ours: `qubes-gui-agent` (one domain, socket vchan, memfd grants)
 *   running the app, and `qubes-guid -d 9 -N bench` on the host compositor.
 *
 * The host compositor is bench/peers/paced-host.ts, our minimal compositor:
 * it answers frame callbacks on a 60 Hz refresh clock and releases a buffer
 * when another replaces it, as weston and sway do, and it stamps every
 * content commit with CLOCK_MONOTONIC and the frame number the app wrote
 * into the first pixel. That is why it is used rather than headless weston
 * or sway, whose commits cannot be seen from outside: frames are counted
 * where they arrive, the same way for both forwarders (our agent answers the
 * app's frame callbacks itself, so callbacks at the app would count ours at
 * the agent, not at the host), and latency is observable.
 *
 * Apps: bench/peers/flood-app.ts redraws its whole window (a scrolling
 * document-like image) at every frame callback, at 640×480, 1920×1080 and
 * 3840×2160; and Debian's weston-simple-shm (weston 10: no size option, a
 * fixed 250×250 window), whose frame numbers cannot be read, so it has no
 * latency figure.
 *
 * Figures, for each app and size, sampled per slice of the measuring window
 * (1 s; 0.5 s in a smoke run), after a warm-up:
 * - fps: content commits that reached the host in the slice / its length;
 * - CPU ms per frame: utime + stime (/proc/PID/stat, every thread) of every
 *   forwarding process (waypipe client and server and the connection
 *   handlers they fork; agent and guid), never the app's, over the slice /
 *   the frames the host got in it;
 * - latency: the host's read of the commit minus the app's time just before
 *   its wl_surface.commit of the frame number shown, for every frame.
 * Each configuration runs in its own set of processes, and runs alternate
 * per app and size (waypipe none, ours, waypipe lz4, then rotated), to
 * spread the noise of a shared machine over all of them: 2 rounds of 5 s
 * after 1 s of warm-up each; a quick run does flood 640×480 only, 1 round
 * of 1 s after 0.3 s.
 */
import { execFileSync, spawn, spawnSync, type ChildProcess } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import os, { tmpdir } from "node:os";
import path from "node:path";

import { READY_TIMEOUT_MS, benchDir, childLines, stats, type BenchContext, type BenchRow } from "./lib.ts";

/** The longest this case may take: 24 (quick: 3) sets of processes started, run and ended on a loaded machine. */
export const timeLimitMs = { full: 20 * 60_000, quick: 3 * 60_000 };

const repoRoot = path.join(benchDir, "..");
const AGENT_DOMAIN = 9;
const REFRESH_HZ = 60;
const WAYPIPE_FLAGS = ["--no-gpu", "--threads", "1"];
/** How long one process may take to exit after SIGTERM before its group gets SIGKILL. */
const EXIT_TIMEOUT_MS = 5_000;

type Mode = "ours" | "waypipe none" | "waypipe lz4";
const MODES: Mode[] = ["waypipe none", "ours", "waypipe lz4"];

interface App {
  /** e.g. `flood 640×480`. */
  label: string;
  width: number;
  /** The app's command line; `stamps` is where it writes its commit times (flood only). */
  command(stamps: string): string[];
  /** Whether the app writes frame numbers and commit times (latency is observable). */
  stamped: boolean;
}

function floodApp(width: number, height: number): App {
  const script = path.join(benchDir, "peers", "flood-app.ts");
  return {
    label: `flood ${width}×${height}`,
    width,
    command: (stamps) => [process.execPath, "--import", "tsx", script, String(width), String(height), stamps],
    stamped: true,
  };
}

const SIMPLE_SHM: App = {
  label: "weston-simple-shm 250×250",
  width: 250,
  command: () => ["weston-simple-shm"],
  stamped: false,
};

/** What one run of one configuration measured. */
interface Run {
  fps: number[];
  cpuMsPerFrame: number[];
  latencyMs: number[];
  frames: number;
  /** Commits the app made in the measuring window (stamped apps only). */
  appCommits: number;
  /** CPU ms of each forwarding process kind over the whole window (e.g. `agent`, `waypipe server`). */
  cpuBy: Map<string, number>;
  seconds: number;
}

const ticksPerSecond = ((): number => {
  const found = spawnSync("getconf", ["CLK_TCK"], { encoding: "utf8" });
  const value = Number(found.stdout.trim());
  return found.status === 0 && value > 0 ? value : 100;
})();

interface ProcStat {
  pid: number;
  ppid: number;
  ticks: number;
}

function readStat(pid: number): ProcStat | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, "utf8");
    // Fields after the command name (which may hold spaces and parentheses): state ppid ... utime(14) stime(15).
    const fields = text.slice(text.lastIndexOf(")") + 2).split(" ");
    return { pid, ppid: Number(fields[1]), ticks: Number(fields[11]) + Number(fields[12]) };
  } catch {
    return undefined;
  }
}

function commandLine(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, "utf8").replaceAll("\0", " ");
  } catch {
    return "";
  }
}

/**
 * CPU ticks of each forwarding process: the `roots` and every descendant,
 * except the app (its command line starts with `app`, where the forwarders'
 * only end with it) and what it started.
 */
function forwarderTicks(roots: ReadonlyMap<number, string>, app: string): Map<number, { kind: string; ticks: number }> {
  const all = new Map<number, ProcStat>();
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    const stat = readStat(Number(name));
    if (stat !== undefined) all.set(stat.pid, stat);
  }
  const children = new Map<number, number[]>();
  for (const stat of all.values()) children.set(stat.ppid, [...(children.get(stat.ppid) ?? []), stat.pid]);
  const out = new Map<number, { kind: string; ticks: number }>();
  const visit = (pid: number, kind: string): void => {
    const stat = all.get(pid);
    if (stat === undefined || commandLine(pid).startsWith(app)) return;
    out.set(pid, { kind, ticks: stat.ticks });
    for (const child of children.get(pid) ?? []) visit(child, kind);
  };
  for (const [pid, kind] of roots) visit(pid, kind);
  return out;
}

/** A process of a run, in its own process group, with the tail of its stderr. */
interface Started {
  name: string;
  child: ChildProcess;
  stderr(): string;
}

function start(
  name: string,
  command: string,
  args: string[],
  env: NodeJS.ProcessEnv,
  stdio: "pipe" | "ignore" = "ignore",
): Started {
  const child = spawn(command, args, { cwd: repoRoot, env, detached: true, stdio: [stdio, stdio, "pipe"] });
  let tail = "";
  child.stderr?.setEncoding("utf8").on("data", (chunk: string) => (tail = (tail + chunk).slice(-3000)));
  child.on("error", (error) => (tail += `\n${error.message}`));
  return { name, child, stderr: () => tail };
}

function exited(child: ChildProcess): boolean {
  return child.exitCode !== null || child.signalCode !== null;
}

/** Ends a process group: SIGTERM, then SIGKILL if it is still there after {@link EXIT_TIMEOUT_MS}. */
async function stopGroup(started: Started): Promise<void> {
  const { child } = started;
  if (child.pid === undefined) return;
  const signal = (name: NodeJS.Signals): void => {
    try {
      process.kill(-(child.pid as number), name);
    } catch {
      // The group is gone.
    }
  };
  signal("SIGTERM");
  if (!exited(child)) {
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, EXIT_TIMEOUT_MS);
      child.once("exit", () => {
        clearTimeout(timer);
        resolve();
      });
    });
  }
  // Whatever of the group outlived the leader (an app, a forked handler).
  signal("SIGKILL");
}

/**
 * Process groups and temp dirs of the run in progress. Our children run in
 * groups of their own (so each can be ended whole), outside the runner's
 * group: when the runner ends this case (SIGTERM at its time limit, or ^C),
 * they are ended here before the case process goes.
 */
const live = { groups: new Set<number>(), dirs: new Set<string>() };
function endEverything(signal: NodeJS.Signals): void {
  for (const pgid of live.groups) {
    try {
      process.kill(-pgid, "SIGKILL");
    } catch {
      // Gone already.
    }
  }
  for (const dir of live.dirs) rmSync(dir, { recursive: true, force: true });
  process.off("SIGTERM", endEverything);
  process.off("SIGINT", endEverything);
  process.kill(process.pid, signal);
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls `check` every 20 ms; rejects naming `what` after `timeoutMs`. */
async function until(check: () => boolean, what: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`${what} did not happen within ${timeoutMs} ms`);
    await sleep(20);
  }
}

/** One configuration, one app: start everything, warm up, measure `slices` slices of `sliceMs`, stop everything. */
async function runOnce(mode: Mode, app: App, slices: number, sliceMs: number, warmupMs: number): Promise<Run> {
  const dir = mkdtempSync(path.join(tmpdir(), "qubes-waypipe-bench-"));
  live.dirs.add(dir);
  const started: Started[] = [];
  const what = `${mode}, ${app.label}`;
  // A forwarder or the host that exits during the run ends it, with what it said.
  let stopping = false;
  let died: (error: Error) => void = () => undefined;
  const death = new Promise<never>((_, reject) => (died = reject));
  death.catch(() => undefined);
  const launch = (
    name: string,
    command: string,
    args: string[],
    env: NodeJS.ProcessEnv,
    stdio?: "pipe" | "ignore",
  ): Started => {
    const one = start(name, command, args, env, stdio);
    started.push(one);
    if (one.child.pid !== undefined) live.groups.add(one.child.pid);
    one.child.once("exit", (code, signal) => {
      if (!stopping) died(new Error(`${what}: ${name} exited (${code ?? signal}) during the run:\n${one.stderr()}`));
    });
    return one;
  };
  const bounded = <T>(promise: Promise<T>): Promise<T> => Promise.race([promise, death]);
  try {
    const hostSocket = path.join(dir, "host-wayland");
    const host = launch(
      "the host compositor",
      process.execPath,
      ["--import", "tsx", path.join(benchDir, "peers", "paced-host.ts"), hostSocket, String(REFRESH_HZ)],
      process.env,
      "pipe",
    );
    const hostLine = childLines(host.child, `the host compositor (${what})`);
    await bounded(hostLine("ready", READY_TIMEOUT_MS));

    const stampsPath = path.join(dir, "stamps");
    const appCommand = app.command(stampsPath);
    const appLine = `${appCommand.join(" ")} `;
    const roots = new Map<number, string>();
    if (mode === "ours") {
      const guid = launch(
        "qubes-guid",
        process.execPath,
        [path.join(repoRoot, "bin", "qubes-guid.js"), "-d", String(AGENT_DOMAIN), "-N", "bench", "-c", "blue", "-q"],
        {
          ...process.env,
          WAYLAND_DISPLAY: hostSocket,
          VCHAN_SOCKET_DIR: dir,
          VCHAN_DOMAIN: "0",
          XDG_RUNTIME_DIR: dir,
        },
      );
      const domainDir = path.join(dir, "domain");
      mkdirSync(domainDir, { mode: 0o700 });
      const agent = launch(
        "qubes-gui-agent",
        process.execPath,
        [
          path.join(repoRoot, "bin", "qubes-gui-agent.js"),
          "-d",
          "0",
          "-q",
          "--wayland-display",
          path.join(domainDir, "wayland-qubes"),
          "--",
          ...appCommand,
        ],
        {
          PATH: process.env.PATH,
          HOME: domainDir,
          LANG: "C.UTF-8",
          XDG_RUNTIME_DIR: domainDir,
          VCHAN_SOCKET_DIR: dir,
          VCHAN_DOMAIN: String(AGENT_DOMAIN),
        },
      );
      roots.set(guid.child.pid as number, "guid").set(agent.child.pid as number, "agent");
    } else {
      const compress = mode === "waypipe none" ? "none" : "lz4";
      const socket = path.join(dir, "waypipe.sock");
      const client = launch(
        "waypipe client",
        "waypipe",
        [...WAYPIPE_FLAGS, "-c", compress, "--socket", socket, "client"],
        {
          PATH: process.env.PATH,
          HOME: dir,
          XDG_RUNTIME_DIR: dir,
          WAYLAND_DISPLAY: hostSocket,
        },
      );
      await bounded(
        until(() => existsSync(socket), `${what}: waypipe client's socket ${socket} appearing`, READY_TIMEOUT_MS),
      );
      const serverRuntime = path.join(dir, "server");
      mkdirSync(serverRuntime, { mode: 0o700 });
      const server = launch(
        "waypipe server",
        "waypipe",
        [...WAYPIPE_FLAGS, "-c", compress, "--socket", socket, "server", "--", ...appCommand],
        { PATH: process.env.PATH, HOME: dir, XDG_RUNTIME_DIR: serverRuntime },
      );
      roots.set(client.child.pid as number, "waypipe client").set(server.child.pid as number, "waypipe server");
    }

    const first = await bounded(hostLine(`${what}: the window's first frame at the host`, READY_TIMEOUT_MS));
    if (first !== `first ${app.width}`)
      throw new Error(`${what}: the host's first content commit was "${first}", not ${app.width} wide`);
    await bounded(sleep(warmupMs));
    host.child.stdin?.write("report\n");
    await bounded(hostLine(`${what}: the host's report of the warm-up`));

    const times: bigint[] = [process.hrtime.bigint()];
    const cpu = [forwarderTicks(roots, appLine)];
    for (let slice = 0; slice < slices; slice++) {
      await bounded(sleep(sliceMs));
      times.push(process.hrtime.bigint());
      cpu.push(forwarderTicks(roots, appLine));
    }
    host.child.stdin?.write("report\n");
    const report = await bounded(hostLine(`${what}: the host's report of the measured frames`));
    const commits = report
      .slice("report".length)
      .trim()
      .split(" ")
      .filter((entry) => entry !== "")
      .map((entry) => {
        const [ns, seq] = entry.split(",");
        return { ns: BigInt(ns as string), seq: Number(seq) };
      });

    if (!commits.some((commit) => commit.ns >= (times[0] as bigint))) {
      throw new Error(`${what}: no frame reached the host compositor in the ${slices * sliceMs} ms measured`);
    }
    const run: Run = {
      fps: [],
      cpuMsPerFrame: [],
      latencyMs: [],
      frames: 0,
      appCommits: 0,
      cpuBy: new Map(),
      seconds: 0,
    };
    const msPerTick = 1000 / ticksPerSecond;
    const cpuBetween = (from: (typeof cpu)[number], to: (typeof cpu)[number], kinds?: Map<string, number>): number => {
      let total = 0;
      for (const [pid, { kind, ticks }] of to) {
        const ms = (ticks - (from.get(pid)?.ticks ?? 0)) * msPerTick;
        total += ms;
        kinds?.set(kind, (kinds.get(kind) ?? 0) + ms);
      }
      return total;
    };
    for (let slice = 0; slice < slices; slice++) {
      const [from, to] = [times[slice] as bigint, times[slice + 1] as bigint];
      const frames = commits.filter((commit) => commit.ns >= from && commit.ns < to).length;
      const seconds = Number(to - from) / 1e9;
      run.fps.push(frames / seconds);
      const ms = cpuBetween(cpu[slice] as (typeof cpu)[number], cpu[slice + 1] as (typeof cpu)[number]);
      run.cpuMsPerFrame.push(frames > 0 ? ms / frames : Number.POSITIVE_INFINITY);
      run.frames += frames;
      run.seconds += seconds;
    }
    cpuBetween(cpu[0] as (typeof cpu)[number], cpu[slices] as (typeof cpu)[number], run.cpuBy);

    if (app.stamped) {
      const appPid = [...forwarderTicks(roots, "\0").keys()].find((pid) => commandLine(pid) === appLine);
      if (appPid === undefined) throw new Error(`${what}: the app's process was not found`);
      process.kill(appPid, "SIGUSR2");
      await bounded(until(() => existsSync(stampsPath), `${what}: the app's commit times being written`, 20_000));
      const appCommits = new Map<number, bigint>();
      for (const line of readFileSync(stampsPath, "utf8").split("\n")) {
        if (line === "") continue;
        const [seq, ns] = line.split(",");
        appCommits.set(Number(seq) & 0xffffff, BigInt(ns as string));
      }
      const [from, to] = [times[0] as bigint, times[slices] as bigint];
      for (const at of appCommits.values()) if (at >= from && at < to) run.appCommits++;
      for (const commit of commits) {
        if (commit.ns < from || commit.ns >= to) continue;
        const at = appCommits.get(commit.seq);
        if (at === undefined || at > commit.ns) {
          throw new Error(`${what}: the host showed frame ${commit.seq}, which the app never committed before`);
        }
        run.latencyMs.push(Number(commit.ns - at) / 1e6);
      }
    }
    return run;
  } finally {
    stopping = true;
    for (const one of started) one.child.stdin?.end();
    await Promise.all(started.map((one) => stopGroup(one)));
    for (const one of started) live.groups.delete(one.child.pid as number);
    rmSync(dir, { recursive: true, force: true });
    live.dirs.delete(dir);
  }
}

function requireProgram(program: string, aptPackage: string): void {
  if (spawnSync("sh", ["-c", `command -v ${program}`]).status !== 0) {
    throw new Error(`${program} is not installed: apt-get install ${aptPackage} (see test-environment.md)`);
  }
}

/**
 * The report's chart fields: every row is one `qubes-gui-ts` bar beside its
 * waypipe baseline (the report makes each baseline a series of its own), at
 * `x` = the window's width (250: weston-simple-shm).
 */
function chart(row: BenchRow, x: number): BenchRow {
  return { ...row, group: "qubes-gui-ts", x, xLabel: "px wide" };
}

export default async function waypipeBench(context: BenchContext): Promise<BenchRow[]> {
  requireProgram("waypipe", "waypipe");
  requireProgram("weston-simple-shm", "weston");
  const version = execFileSync("waypipe", ["--version"], { encoding: "utf8" }).split("\n")[0] ?? "waypipe";
  const apps = context.smoke
    ? [floodApp(640, 480)]
    : [floodApp(640, 480), floodApp(1920, 1080), floodApp(3840, 2160), SIMPLE_SHM];
  const rounds = context.smoke ? 1 : 2;
  const slices = context.smoke ? 2 : 5;
  const sliceMs = context.smoke ? 500 : 1000;
  const warmupMs = context.smoke ? 300 : 1000;
  const loadBefore = os.loadavg();
  process.on("SIGTERM", endEverything);
  process.on("SIGINT", endEverything);

  const rows: BenchRow[] = [];
  try {
    await measureApps(apps, rows, rounds, slices, sliceMs, warmupMs, version);
  } finally {
    process.off("SIGTERM", endEverything);
    process.off("SIGINT", endEverything);
  }
  const loadAfter = os.loadavg();
  const first = rows[0];
  if (first !== undefined) {
    first.notes = [
      ...(first.notes ?? []),
      `load average (1 min) before ${loadBefore[0]?.toFixed(2)}, after ${loadAfter[0]?.toFixed(2)}, on ${os.availableParallelism()} CPUs`,
      `flags: waypipe ${WAYPIPE_FLAGS.join(" ")} -c none|lz4; host frame callbacks at ${REFRESH_HZ} Hz`,
    ];
  }
  return rows;
}

/** Runs every configuration of every app, alternating, and appends each app's rows. */
async function measureApps(
  apps: readonly App[],
  rows: BenchRow[],
  rounds: number,
  slices: number,
  sliceMs: number,
  warmupMs: number,
  version: string,
): Promise<void> {
  for (const app of apps) {
    const runs = new Map<Mode, Run[]>(MODES.map((mode) => [mode, []]));
    for (let round = 0; round < rounds; round++) {
      // waypipe none, ours, waypipe lz4; then ours, waypipe lz4, waypipe none ...
      for (let i = 0; i < MODES.length; i++) {
        const mode = MODES[(i + round) % MODES.length] as Mode;
        runs.get(mode)?.push(await runOnce(mode, app, slices, sliceMs, warmupMs));
      }
    }
    const pooled = (mode: Mode, pick: (run: Run) => number[]): number[] => (runs.get(mode) ?? []).flatMap(pick);
    const describe = (mode: Mode): string => {
      const all = runs.get(mode) ?? [];
      const frames = all.reduce((sum, run) => sum + run.frames, 0);
      const seconds = all.reduce((sum, run) => sum + run.seconds, 0);
      const by = new Map<string, number>();
      for (const run of all) for (const [kind, ms] of run.cpuBy) by.set(kind, (by.get(kind) ?? 0) + ms);
      const parts = [...by].map(
        ([kind, ms]) =>
          `${kind} ${(ms / frames).toFixed(2)} ms/frame (${((ms / seconds / 1000) * 100).toFixed(0)}% CPU)`,
      );
      const committed = all.reduce((sum, run) => sum + run.appCommits, 0);
      const appNote = committed > 0 ? ` (the app committed ${committed})` : "";
      return `${mode}: ${frames} frames at the host in ${seconds.toFixed(1)} s${appNote}; ${parts.join(", ")}`;
    };
    const name = (figure: string, baseline: Mode): string =>
      `waypipe: ${figure}, ${app.label}, ours vs ${baseline === "waypipe none" ? "waypipe -c none" : "waypipe -c lz4"}`;
    for (const baseline of ["waypipe none", "waypipe lz4"] as const) {
      const flag = baseline === "waypipe none" ? "-c none" : "-c lz4";
      rows.push(
        chart(
          {
            name: name("frames per second at the host (60 Hz)", baseline),
            unit: "fps",
            value: stats(pooled("ours", (run) => run.fps)),
            baseline: { name: `${version} ${flag}`, value: stats(pooled(baseline, (run) => run.fps)) },
            better: "higher",
            target: "≥ 1",
            notes: [describe("ours"), describe(baseline)],
          },
          app.width,
        ),
        chart(
          {
            name: name("CPU of all forwarding processes per frame shown", baseline),
            unit: "CPU ms/frame",
            value: stats(pooled("ours", (run) => run.cpuMsPerFrame)),
            baseline: { name: `${version} ${flag}`, value: stats(pooled(baseline, (run) => run.cpuMsPerFrame)) },
            better: "lower",
            target: "≤ 0.2",
          },
          app.width,
        ),
      );
      if (app.stamped) {
        rows.push(
          chart(
            {
              name: name("latency, app commit to host commit", baseline),
              unit: "ms",
              value: stats(pooled("ours", (run) => run.latencyMs)),
              baseline: { name: `${version} ${flag}`, value: stats(pooled(baseline, (run) => run.latencyMs)) },
              better: "lower",
            },
            app.width,
          ),
        );
      }
    }
  }
}
