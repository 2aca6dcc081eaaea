/**
 * One benchmark case in a process of its own, as bench/run.ts starts it:
 * `node --import tsx bench/case-entry.ts CASE_FILE full|quick`, with an IPC
 * channel to the runner. It imports the case, tells the runner the case's
 * own time limit (its optional `timeLimitMs` export), runs the case and sends
 * its rows (each with its samples, at most MAX_KEPT_SAMPLES, found through
 * samplesOf when the case did not attach them), then exits: whatever the
 * case left running is the runner's to kill with the process group.
 */
import { readFileSync } from "node:fs";
import { pathToFileURL } from "node:url";

import { keepSamples, samplesOf, type BenchContext, type BenchRow, type Stats } from "./lib.ts";

/** A case file's exports, as the runner reads them. */
export interface CaseModule {
  default: (context: BenchContext) => Promise<BenchRow[]>;
  /**
   * Optional: this case's time limit in ms, instead of the runner's default
   * (10 min full, 2 min quick): one number for both modes, or one per mode.
   */
  timeLimitMs?: number | { full?: number; quick?: number };
}

/** What the entry sends the runner, in order: `loaded`, then `rows` or `error`. */
export type CaseMessage =
  | { type: "loaded"; timeLimitMs?: number }
  | { type: "rows"; rows: BenchRow[]; cpuMs?: number }
  | { type: "error"; message: string };

/** A row as the results file keeps it: max filled in where the samples tell it, samples bounded. */
function portable(row: BenchRow): BenchRow {
  const withMax = (value: Stats, samples: readonly number[] | undefined): Stats =>
    value.max !== undefined || samples === undefined || samples.length === 0
      ? value
      : { ...value, max: Math.max(...samples) };
  const samples = row.samples ?? samplesOf(row.value);
  const out: BenchRow = { ...row, value: withMax(row.value, samples) };
  if (samples !== undefined && samples.length > 1) out.samples = keepSamples(samples);
  else delete out.samples;
  if (row.baseline !== undefined) {
    const baselineSamples = row.baseline.samples ?? samplesOf(row.baseline.value);
    out.baseline = { ...row.baseline, value: withMax(row.baseline.value, baselineSamples) };
    if (baselineSamples !== undefined && baselineSamples.length > 1)
      out.baseline.samples = keepSamples(baselineSamples);
    else delete out.baseline.samples;
  }
  return out;
}

/**
 * CPU time (user + system, ms) of this process and of the children it has
 * reaped, from /proc (Linux; USER_HZ is 100): what the case cost whatever
 * the machine's load. Undefined elsewhere.
 */
function cpuMs(): number | undefined {
  try {
    const fields = readFileSync("/proc/self/stat", "utf8").split(") ")[1]?.split(" ") ?? [];
    // After "pid (comm) ": state is field 3, utime..cstime are fields 14–17.
    const ticks = [11, 12, 13, 14].reduce((sum, i) => sum + Number(fields[i]), 0);
    return Number.isFinite(ticks) ? ticks * 10 : undefined;
  } catch {
    return undefined;
  }
}

function send(message: CaseMessage): Promise<void> {
  return new Promise((resolve, reject) => {
    if (process.send === undefined) {
      reject(new Error("bench/case-entry.ts runs under bench/run.ts (it needs the IPC channel)"));
      return;
    }
    process.send(message, undefined, {}, (error) => (error === null ? resolve() : reject(error)));
  });
}

async function main(): Promise<void> {
  const [file, mode] = process.argv.slice(2);
  if (file === undefined || (mode !== "full" && mode !== "quick")) {
    throw new Error("usage: case-entry.ts CASE_FILE full|quick");
  }
  const quick = mode === "quick";
  const module = (await import(pathToFileURL(file).href)) as CaseModule;
  if (typeof module.default !== "function") throw new Error(`${file} has no default export to run`);
  const limit = typeof module.timeLimitMs === "number" ? module.timeLimitMs : module.timeLimitMs?.[mode];
  await send(limit === undefined ? { type: "loaded" } : { type: "loaded", timeLimitMs: limit });
  const context: BenchContext = {
    smoke: quick,
    iterations: (full, quickCount = Math.max(1, Math.ceil(full / 100))) => (quick ? quickCount : full),
  };
  const rows = await module.default(context);
  const cpu = cpuMs();
  await send({ type: "rows", rows: rows.map(portable), ...(cpu === undefined ? {} : { cpuMs: cpu }) });
}

try {
  await main();
  process.exit(0);
} catch (error) {
  const message = error instanceof Error ? (error.stack ?? error.message) : String(error);
  try {
    await send({ type: "error", message });
  } finally {
    process.exit(1);
  }
}
