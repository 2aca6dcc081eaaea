/**
 * `npm run bench [-- --quick] [--json FILE] [FILTER...]`: runs every
 * bench/*.bench.ts whose file name contains one of the filters (all when
 * none), one case file at a time, each in a process of its own
 * (bench/case-entry.ts) bounded by a time limit, and writes the results file
 * bench/results/<timestamp>.json that `npm run bench:report` draws.
 *
 * Options: `--quick` (alias `--smoke`) a few iterations of every case;
 * `--json FILE` the results file's path instead; `--dir DIR` the cases'
 * folder (default bench/); `--results-dir DIR` (default bench/results/);
 * `--time-limit SECONDS` the limit of every case that does not export its
 * own `timeLimitMs` (default 600 full, 120 quick). The environment may set
 * the last three too: BENCH_DIR, BENCH_RESULTS_DIR, BENCH_TIME_LIMIT.
 *
 * A case that throws, crashes or outlives its limit (its process group is
 * killed) is recorded as failed and the run goes on; the exit status is 1
 * when any case failed.
 */
import { execFileSync, spawn } from "node:child_process";
import { mkdirSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";

import type { CaseMessage } from "./case-entry.ts";
import { benchDir, format, formatRatio, formatRows, ratio, targetMet, type BenchRow } from "./lib.ts";

/** The results file, as bench/report.ts reads it. */
export interface BenchResults {
  /** Version of this layout. */
  schema: 1;
  /** ISO time the run started and ended. */
  started: string;
  finished: string;
  mode: "full" | "quick";
  /** The filters given on the command line (empty: every case). */
  filters: string[];
  machine: {
    cpuModel: string;
    cpus: number;
    totalMemoryBytes: number;
    kernel: string;
    platform: string;
    /** os.loadavg() (1, 5, 15 min) when the run started and when it ended. */
    loadAverageStart: number[];
    loadAverageEnd: number[];
  };
  /** Each version string, or null where the tool is missing. */
  versions: {
    node: string;
    package: string;
    gitCommit: string | null;
    gitDirty: boolean | null;
    waypipe: string | null;
    chromium: string | null;
  };
  cases: CaseResult[];
}

/** One case file's outcome. */
export interface CaseResult {
  /** The file's name without `.bench.ts`, e.g. `guid-commit`. */
  name: string;
  file: string;
  status: "ok" | "failed";
  /** Why it failed (names the case, and the limit when it was killed). */
  error?: string;
  /** Wall time of the case's process, ms. */
  wallMs: number;
  /** CPU time (user + system) of the case's process and the children it reaped, ms (Linux; absent when it failed). */
  cpuMs?: number;
  /** The limit it ran under, ms. */
  timeLimitMs: number;
  /** Its rows: stats with max, samples ≤ 2000 ascending, plus the ratio to the baseline and whether its target is met. */
  rows: Array<BenchRow & { ratio?: number; targetMet?: boolean }>;
}

const DEFAULT_LIMIT_MS = { full: 10 * 60_000, quick: 2 * 60_000 };
/** After SIGTERM to a case's process group, how long before SIGKILL. */
const KILL_GRACE_MS = 10_000;

const { values, positionals } = parseArgs({
  options: {
    quick: { type: "boolean", default: false },
    smoke: { type: "boolean", default: false },
    json: { type: "string" },
    dir: { type: "string" },
    "results-dir": { type: "string" },
    "time-limit": { type: "string" },
  },
  allowPositionals: true,
});

const mode: "full" | "quick" = values.quick === true || values.smoke === true ? "quick" : "full";
const caseDir = path.resolve(values.dir ?? process.env.BENCH_DIR ?? benchDir);
const resultsDir = path.resolve(
  values["results-dir"] ?? process.env.BENCH_RESULTS_DIR ?? path.join(benchDir, "results"),
);
let defaultLimitMs: number | undefined;
const limitOption = values["time-limit"] ?? process.env.BENCH_TIME_LIMIT;
if (limitOption !== undefined) {
  defaultLimitMs = Number(limitOption) * 1000;
  if (!(defaultLimitMs > 0)) {
    process.stderr.write(`--time-limit (BENCH_TIME_LIMIT) wants seconds > 0, not ${limitOption}\n`);
    process.exit(2);
  }
}
const repoDir = path.dirname(benchDir);
const entry = path.join(benchDir, "case-entry.ts");

const files = readdirSync(caseDir)
  .filter((file) => file.endsWith(".bench.ts"))
  .filter((file) => positionals.length === 0 || positionals.some((filter) => file.includes(filter)))
  .sort();
if (files.length === 0) {
  process.stderr.write(`no benchmark in ${caseDir} matches ${positionals.join(", ")}\n`);
  process.exit(2);
}

/** A tool's first line of output, or null when it is missing or fails. */
function toolVersion(command: string, args: string[], cwd = repoDir): string | null {
  try {
    const out = execFileSync(command, args, {
      cwd,
      encoding: "utf8",
      timeout: 15_000,
      stdio: ["ignore", "pipe", "pipe"],
    });
    return out.trim().split("\n")[0]?.trim() || null;
  } catch {
    return null;
  }
}

function gitDirty(): boolean | null {
  try {
    return (
      execFileSync("git", ["status", "--porcelain"], { cwd: repoDir, encoding: "utf8", timeout: 15_000 }).trim() !== ""
    );
  } catch {
    return null;
  }
}

function kill(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    // The group is gone already.
  }
}

/** The case process running now, so a ^C or SIGTERM of the runner takes it down too. */
let current: number | undefined;
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.on(signal, () => {
    if (current !== undefined) kill(current, "SIGKILL");
    process.exit(130);
  });
}

/** A path relative to the working directory when it is under it. */
function shortPath(file: string): string {
  const relative = path.relative(process.cwd(), file);
  return relative === "" || relative.startsWith("..") || path.isAbsolute(relative) ? file : relative;
}

function seconds(ms: number): string {
  return ms < 10_000 ? `${(ms / 1000).toFixed(1)} s` : `${Math.round(ms / 1000)} s`;
}

/** Runs one case file in its own process group; never rejects. */
function runCase(file: string, label: string): Promise<CaseResult> {
  const name = file.replace(/\.bench\.ts$/, "");
  const start = performance.now();
  let limitMs = defaultLimitMs ?? DEFAULT_LIMIT_MS[mode];
  const child = spawn(process.execPath, ["--import", "tsx", entry, path.join(caseDir, file), mode], {
    cwd: repoDir,
    detached: true,
    stdio: ["ignore", "pipe", "pipe", "ipc"],
  });
  current = child.pid;

  // Progress: `[3/14] guid-commit … done in 41 s` on one line unless the case prints.
  process.stdout.write(`${label} ${name} … `);
  let interrupted = false;
  let endsWithNewline = true;
  const forward = (stream: NodeJS.WriteStream) => (chunk: Buffer) => {
    if (!interrupted) {
      process.stdout.write("\n");
      interrupted = true;
    }
    stream.write(chunk);
    endsWithNewline = chunk.at(-1) === 0x0a;
  };
  child.stdout?.on("data", forward(process.stdout));
  child.stderr?.on("data", forward(process.stderr));

  return new Promise((resolve) => {
    let rows: BenchRow[] | undefined;
    let cpuMs: number | undefined;
    let error: string | undefined;
    let timedOut = false;
    let timer: NodeJS.Timeout;
    let killTimer: NodeJS.Timeout | undefined;
    const arm = (): void => {
      clearTimeout(timer);
      timer = setTimeout(
        () => {
          timedOut = true;
          kill(child.pid as number, "SIGTERM");
          killTimer = setTimeout(() => kill(child.pid as number, "SIGKILL"), KILL_GRACE_MS);
        },
        Math.max(0, limitMs - (performance.now() - start)),
      );
    };
    arm();
    child.on("message", (message: CaseMessage) => {
      if (message.type === "loaded" && message.timeLimitMs !== undefined) {
        limitMs = message.timeLimitMs;
        arm();
      } else if (message.type === "rows") {
        rows = message.rows;
        cpuMs = message.cpuMs;
      } else if (message.type === "error") {
        error = message.message;
      }
    });
    child.on("error", (spawnError) => {
      error ??= `could not start: ${spawnError.message}`;
    });
    child.on("exit", (code, signal) => {
      clearTimeout(timer);
      clearTimeout(killTimer);
      const wallMs = performance.now() - start;
      // Whatever the case started and left behind goes with its group; then
      // its output pipes close (bounded: a process that left the group may hold them).
      kill(child.pid as number, "SIGKILL");
      current = undefined;
      const closed = new Promise((done) => {
        child.once("close", done);
        setTimeout(done, 2_000).unref();
      });
      void closed.then(() => {
        child.stdout?.destroy();
        child.stderr?.destroy();
        finish(code, signal, wallMs);
      });
    });
    const finish = (code: number | null, signal: NodeJS.Signals | null, wallMs: number): void => {
      let failure: string | undefined;
      if (timedOut) {
        failure = `${name}: killed at its time limit of ${seconds(limitMs)} (${mode} run)`;
      } else if (error !== undefined) {
        failure = `${name}: ${error}`;
      } else if (rows === undefined || code !== 0) {
        failure = `${name}: its process exited with ${signal ?? `code ${code}`} before sending its rows`;
      }
      if (interrupted) process.stdout.write(`${endsWithNewline ? "" : "\n"}${label} ${name} `);
      if (failure === undefined) {
        process.stdout.write(`done in ${seconds(wallMs)}${cpuMs === undefined ? "" : ` (${seconds(cpuMs)} CPU)`}\n`);
      } else {
        process.stdout.write(`FAILED after ${seconds(wallMs)}\n`);
        process.stdout.write(`  ${failure.split("\n").join("\n  ")}\n`);
      }
      const shown = rows ?? [];
      for (const line of formatRows(shown)) process.stdout.write(`${line}\n`);
      resolve({
        name,
        file,
        status: failure === undefined ? "ok" : "failed",
        ...(failure === undefined ? {} : { error: failure }),
        wallMs: Math.round(wallMs),
        ...(cpuMs === undefined ? {} : { cpuMs }),
        timeLimitMs: limitMs,
        rows: shown.map((row) => {
          const r = ratio(row);
          const met = targetMet(row);
          return { ...row, ...(r === undefined ? {} : { ratio: r }), ...(met === undefined ? {} : { targetMet: met }) };
        }),
      });
    };
  });
}

/** The summary table: one line per figure, long names cut to fit. */
function summary(cases: CaseResult[]): string[] {
  const cut = (text: string, width: number): string => (text.length > width ? `${text.slice(0, width - 1)}…` : text);
  const header = ["case", "figure", "median", "p99", "baseline", "ratio", "target"];
  const lines: string[][] = [];
  for (const result of cases) {
    if (result.status === "failed") {
      lines.push([result.name, cut(`FAILED: ${(result.error ?? "").split("\n")[0] ?? ""}`, 70), "", "", "", "", ""]);
    }
    for (const row of result.rows) {
      const unit = ` ${row.unit}`;
      lines.push([
        result.name,
        cut(row.name, 70),
        `${format(row.value.median)}${unit}`,
        `${format(row.value.p99)}${unit}`,
        row.baseline === undefined ? "" : `${format(row.baseline.value.median)}${unit}`,
        row.ratio === undefined ? "" : formatRatio(row.ratio),
        row.target === undefined
          ? ""
          : `${row.target}${row.targetMet === undefined ? "" : row.targetMet ? " ✓" : " ✗"}`,
      ]);
    }
  }
  const widths = header.map((title, i) => Math.max(title.length, ...lines.map((line) => (line[i] ?? "").length)));
  const numeric = new Set([2, 3, 4, 5]);
  const render = (cells: string[]): string =>
    cells
      .map((cell, i) => (numeric.has(i) ? cell.padStart(widths[i] ?? 0) : cell.padEnd(widths[i] ?? 0)))
      .join("  ")
      .trimEnd();
  return [render(header), render(widths.map((width) => "-".repeat(width))), ...lines.map(render)];
}

const started = new Date();
const loadAverageStart = os.loadavg();
const packageVersion = (JSON.parse(readFileSync(path.join(repoDir, "package.json"), "utf8")) as { version: string })
  .version;
const versions: BenchResults["versions"] = {
  node: process.version,
  package: packageVersion,
  gitCommit: toolVersion("git", ["rev-parse", "HEAD"]),
  gitDirty: gitDirty(),
  waypipe: toolVersion("waypipe", ["--version"]),
  chromium: toolVersion("chromium", ["--version"]) ?? toolVersion("chromium-browser", ["--version"]),
};

process.stdout.write(
  `${files.length} case${files.length === 1 ? "" : "s"}, ${mode} run, ${os.availableParallelism()} CPUs, load ${loadAverageStart.map((x) => x.toFixed(2)).join(" ")}\n`,
);
const cases: CaseResult[] = [];
for (const [index, file] of files.entries()) {
  cases.push(await runCase(file, `[${index + 1}/${files.length}]`));
}

const cpus = os.cpus();
const results: BenchResults = {
  schema: 1,
  started: started.toISOString(),
  finished: new Date().toISOString(),
  mode,
  filters: positionals,
  machine: {
    cpuModel: cpus[0]?.model.trim() ?? "unknown",
    cpus: cpus.length,
    totalMemoryBytes: os.totalmem(),
    kernel: `${os.release()} ${os.version()}`,
    platform: `${os.platform()} ${os.arch()}`,
    loadAverageStart,
    loadAverageEnd: os.loadavg(),
  },
  versions,
  cases,
};

const text = `${JSON.stringify(results, null, 1)}\n`;
let out: string;
if (values.json !== undefined) {
  out = path.resolve(values.json);
  mkdirSync(path.dirname(out), { recursive: true });
  writeFileSync(out, text);
} else {
  // `2026-01-31T12-00-00Z.json` (an ISO timestamp, `:` as `-`); `…Z-2.json` for a second run started in the same second.
  mkdirSync(resultsDir, { recursive: true });
  const stamp = started
    .toISOString()
    .replace(/:/g, "-")
    .replace(/\.\d+Z$/, "Z");
  for (let attempt = 1; ; attempt++) {
    out = path.join(resultsDir, `${stamp}${attempt === 1 ? "" : `-${attempt}`}.json`);
    try {
      writeFileSync(out, text, { flag: "wx" });
      break;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
    }
  }
}

const failed = cases.filter((result) => result.status === "failed");
process.stdout.write(`\n${summary(cases).join("\n")}\n\n`);
const totalMs = Date.parse(results.finished) - started.getTime();
const totalCpuMs = cases.reduce((sum, result) => sum + (result.cpuMs ?? 0), 0);
process.stdout.write(
  `${cases.length - failed.length}/${cases.length} cases ran in ${seconds(totalMs)} (${seconds(totalCpuMs)} CPU in the cases, load ${results.machine.loadAverageEnd.map((x) => x.toFixed(1)).join(" ")} at the end); results: ${shortPath(out)}\n`,
);
if (failed.length > 0) {
  process.stdout.write(`failed: ${failed.map((result) => result.name).join(", ")}\n`);
  process.exit(1);
}
