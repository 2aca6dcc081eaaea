/**
 * The benchmark harness: statistics, C baselines compiled in the same run,
 * and the report table. Every figure is printed beside its baseline, as a
 * ratio, with median and p99 (house-style.md, "Benchmarks").
 */
import { execFileSync, type ChildProcess } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";

/** The bench/ folder. */
export const benchDir = path.dirname(fileURLToPath(import.meta.url));

/** What every case gets from the runner. */
export interface BenchContext {
  /** Quick run (`--quick`, alias `--smoke`; what CI runs): few iterations, just proves the case runs. */
  smoke: boolean;
  /** Picks an iteration count: `full` normally, `smoke` in a smoke run. */
  iterations(full: number, smoke?: number): number;
}

/** Summary statistics of a list of samples (any one unit). */
export interface Stats {
  n: number;
  median: number;
  p99: number;
  mean: number;
  min: number;
  /** Filled by {@link stats} and {@link single}; optional so hand-built Stats still type-check. */
  max?: number;
}

/** One figure of a case, with the baseline it is judged against. */
export interface BenchRow {
  /** Case name with its size, e.g. `eventfd round trip, 2 Node processes`. */
  name: string;
  /** Unit of median/p99, e.g. `µs`, `ms`, `MB/s`, `msg/s`. */
  unit: string;
  value: Stats;
  /**
   * The samples `value` summarises, for the report's distribution charts.
   * Optional: when a row's `value` came straight from {@link stats}, the
   * runner finds its samples by itself (see {@link samplesOf}). The results
   * file keeps at most {@link MAX_KEPT_SAMPLES} of them, ascending.
   */
  samples?: number[];
  baseline?: { name: string; value: Stats; samples?: number[] };
  /** How the ratio reads: `lower` (time: value/baseline) or `higher` (rate: value/baseline). */
  better?: "lower" | "higher";
  /** Target for the ratio, e.g. `≤ 2` or `≥ 0.5`; informative, never a failure. */
  target?: string;
  /** Extra facts to print under the row (bytes copied, counts). */
  notes?: string[];
  /**
   * The series this row belongs to, for the report's curves and grouped bars:
   * rows of one case with the same `group` (and unit) are one line of a
   * scaling curve or one colour of a bar group, e.g. `qubes-gui-ts`,
   * `waypipe`, `1 domain`. Rows without `group` are their own series.
   */
  group?: string;
  /**
   * The row's x value within its `group`: the number of windows or domains
   * of a scaling curve, the size (e.g. pixels) of a waypipe comparison. Rows
   * of a case that carry `x` are plotted as curves (median, with p99),
   * sorted by `x`; in the waypipe section `x` picks the bar group.
   */
  x?: number;
  /** What `x` counts, for the chart's axis, e.g. `windows`, `domains`, `megapixels`. */
  xLabel?: string;
}

/** How many samples per figure the results file keeps (evenly spaced in the sorted samples). */
export const MAX_KEPT_SAMPLES = 2000;

const statsSamples = new WeakMap<Stats, readonly number[]>();

/** The (ascending) samples {@link stats} summarised into this very object, if it did. */
export function samplesOf(value: Stats): readonly number[] | undefined {
  return statsSamples.get(value);
}

/** At most `max` of the samples, ascending, evenly spaced in rank (always the min and the max). */
export function keepSamples(samples: readonly number[], max = MAX_KEPT_SAMPLES): number[] {
  const sorted = [...samples].sort((a, b) => a - b);
  if (sorted.length <= max) return sorted;
  const out: number[] = [];
  for (let i = 0; i < max; i++) out.push(sorted[Math.round((i * (sorted.length - 1)) / (max - 1))] as number);
  return out;
}

/** Median, p99, mean, min and max of samples. */
export function stats(samples: readonly number[]): Stats {
  if (samples.length === 0) throw new Error("no samples");
  const sorted = [...samples].sort((a, b) => a - b);
  const at = (q: number): number => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] as number;
  const mean = sorted.reduce((sum, x) => sum + x, 0) / sorted.length;
  const out: Stats = {
    n: sorted.length,
    median: at(0.5),
    p99: at(0.99),
    mean,
    min: sorted[0] as number,
    max: sorted[sorted.length - 1] as number,
  };
  statsSamples.set(out, sorted);
  return out;
}

/** A single figure as Stats (for rates measured once over a whole run). */
export function single(value: number): Stats {
  return { n: 1, median: value, p99: value, mean: value, min: value, max: value };
}

/** Runs `fn` `iterations` times after `warmup` runs; returns each run's duration in µs. */
export function sample(fn: () => void, iterations: number, warmup = Math.min(100, iterations)): number[] {
  for (let i = 0; i < warmup; i++) fn();
  const out = new Array<number>(iterations);
  for (let i = 0; i < iterations; i++) {
    const start = process.hrtime.bigint();
    fn();
    out[i] = Number(process.hrtime.bigint() - start) / 1000;
  }
  return out;
}

/** Like {@link sample} for asynchronous work. */
export async function sampleAsync(
  fn: () => Promise<void>,
  iterations: number,
  warmup = Math.min(100, iterations),
): Promise<number[]> {
  for (let i = 0; i < warmup; i++) await fn();
  const out = new Array<number>(iterations);
  for (let i = 0; i < iterations; i++) {
    const start = process.hrtime.bigint();
    await fn();
    out[i] = Number(process.hrtime.bigint() - start) / 1000;
  }
  return out;
}

/**
 * Compiles a C baseline (`cc -O2`) into bench/.build/ and returns the
 * binary's path. The source is written from the benchmark file itself, so the
 * baseline is built from what is in the repository, in this run.
 */
export function compileC(name: string, source: string): string {
  const dir = path.join(benchDir, ".build");
  mkdirSync(dir, { recursive: true });
  const sourcePath = path.join(dir, `${name}.c`);
  const binary = path.join(dir, name);
  writeFileSync(sourcePath, source);
  execFileSync("cc", ["-O2", "-Wall", "-o", binary, sourcePath], { stdio: ["ignore", "inherit", "inherit"] });
  return binary;
}

/** A figure with 3–4 significant digits, as the report prints it. */
export function format(x: number): string {
  if (x === 0) return "0";
  const magnitude = Math.abs(x);
  if (magnitude >= 1e6) return x.toExponential(3);
  if (magnitude >= 100) return x.toFixed(0);
  if (magnitude >= 10) return x.toFixed(1);
  if (magnitude < 0.01) return x.toPrecision(2);
  return x.toFixed(2);
}

/** The ratio of a row to its baseline, as the row's `better` reads it. */
export function ratio(row: BenchRow): number | undefined {
  if (row.baseline === undefined) return undefined;
  return row.value.median / row.baseline.value.median;
}

/**
 * Whether a row's ratio meets its target (`≤ 2`, `>= 0.5`, `< 1`, …):
 * undefined when the row has no ratio or no target the runner can read.
 */
export function targetMet(row: BenchRow): boolean | undefined {
  const r = ratio(row);
  const match = /^\s*(≤|<=|<|≥|>=|>)\s*([0-9.]+)/.exec(row.target ?? "");
  if (r === undefined || match === null) return undefined;
  const bound = Number(match[2]);
  switch (match[1]) {
    case "≤":
    case "<=":
      return r <= bound;
    case "<":
      return r < bound;
    case ">":
      return r > bound;
    default:
      return r >= bound;
  }
}

/** A ratio as printed: two decimals, two significant digits below 0.01, then `×`. */
export function formatRatio(r: number): string {
  return `${Math.abs(r) < 0.01 && r !== 0 ? r.toPrecision(2) : r.toFixed(2)}×`;
}

/** Formats rows as the report's lines. */
export function formatRows(rows: readonly BenchRow[]): string[] {
  const lines: string[] = [];
  for (const row of rows) {
    const r = ratio(row);
    lines.push(
      `  ${row.name}: median ${format(row.value.median)} ${row.unit}, p99 ${format(row.value.p99)} ${row.unit} (n=${row.value.n})`,
    );
    if (row.baseline !== undefined && r !== undefined) {
      lines.push(
        `    baseline ${row.baseline.name}: median ${format(row.baseline.value.median)} ${row.unit}, p99 ${format(row.baseline.value.p99)} ${row.unit}`,
      );
      lines.push(`    ratio ${formatRatio(r)}${row.target !== undefined ? ` (target ${row.target})` : ""}`);
    }
    for (const note of row.notes ?? []) lines.push(`    ${note}`);
  }
  return lines;
}

/**
 * Where the two processes of a round trip run: unpinned, both on CPU 0, or
 * one on each of CPUs 0 and 1. A cross-process wake-up costs very different
 * amounts in each (a same-CPU hand-off skips the IPI), so a figure and its
 * baseline must be measured with the same placement.
 */
export type Placement = "free" | "same CPU" | "two CPUs";

/** The placements this machine can run, the cross-CPU one first. */
export function placements(): Placement[] {
  return os.availableParallelism() >= 2 ? ["two CPUs", "same CPU"] : ["free"];
}

/** [this side's CPU, the peer's CPU] of a placement, -1 for not pinned. */
export function placementCpus(placement: Placement): [number, number] {
  if (placement === "free") return [-1, -1];
  return placement === "same CPU" ? [0, 0] : [0, 1];
}

/** Pins every thread of this process to `cpu` (every CPU for -1) with taskset. */
export function pinSelf(cpu: number): void {
  const list = cpu < 0 ? `0-${os.availableParallelism() - 1}` : String(cpu);
  execFileSync("taskset", ["-a", "-p", "-c", list, String(process.pid)], { stdio: "ignore" });
}

/** The command prefix that starts a peer process pinned to `cpu` (nothing for -1). */
export function pinnedCommand(cpu: number, command: string, args: string[]): [string, string[]] {
  return cpu < 0 ? [command, args] : ["taskset", ["-c", String(cpu), command, ...args]];
}

/** C source of a helper a C baseline includes to pin itself (`pin(cpu)`, no-op for -1). */
export const C_PIN_FUNCTION = String.raw`
static void pin(int cpu) {
  if (cpu < 0) return;
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  sched_setaffinity(0, sizeof set, &set);
}
`;

/** How long a child has to print its first line ("ready"): its start-up, which a loaded machine may stretch. */
export const READY_TIMEOUT_MS = 120_000;

/**
 * A child's stdout lines, one at a time: each wait is bounded (`timeoutMs`,
 * or the call's own bound, e.g. {@link READY_TIMEOUT_MS} for a start-up) and
 * its rejection names what never came; `drop()` forgets the lines queued.
 */
export function childLines(
  child: ChildProcess,
  name: string,
  timeoutMs = 20_000,
): ((what: string, boundMs?: number) => Promise<string>) & { drop(): void } {
  const queue: string[] = [];
  const waiting: Array<(line: string) => void> = [];
  createInterface({ input: child.stdout as NodeJS.ReadableStream }).on("line", (line) => {
    const wake = waiting.shift();
    if (wake === undefined) queue.push(line);
    else wake(line);
  });
  const next = (what: string, boundMs = timeoutMs): Promise<string> => {
    const line = queue.shift();
    if (line !== undefined) return Promise.resolve(line);
    return new Promise((resolve, reject) => {
      const wake = (line: string): void => {
        clearTimeout(timer);
        resolve(line);
      };
      const timer = setTimeout(() => {
        waiting.splice(waiting.indexOf(wake), 1);
        reject(new Error(`${name} did not send ${what} within ${boundMs} ms`));
      }, boundMs);
      waiting.push(wake);
    });
  };
  return Object.assign(next, { drop: () => void queue.splice(0) });
}
