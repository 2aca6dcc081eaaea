/**
 * The benchmark runner (bench/run.ts) on a folder of two tiny cases, one
 * that returns its rows and one that hangs: the hanging one is killed at
 * its time limit (with what it started) and recorded as failed, the other's
 * rows are in the results file with every field, the exit status says a
 * case failed; and bench/report.ts draws that results file as one HTML page.
 */
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { pathToFileURL } from "node:url";

import { afterAll, beforeAll, describe, expect, it } from "vitest";

import type { BenchResults } from "../../bench/run.ts";
import { repoRoot } from "../helpers/processes.ts";

/** The hanging case's limit: short, yet longer than a node start-up on a loaded machine. */
const HANG_LIMIT_S = 6;
/** Bound on a whole runner or report process. */
const PROCESS_MS = 60_000;

const libUrl = pathToFileURL(path.join(repoRoot, "bench", "lib.ts")).href;

const FINE_CASE = `
import { single, stats } from ${JSON.stringify(libUrl)};
export const timeLimitMs = { quick: 120_000 };
export default async function (context) {
  const samples = Array.from({ length: 5000 }, (_, i) => 10 + (i % 100));
  return [
    {
      name: "fine figure, 5000 samples",
      unit: "µs",
      value: stats(samples),
      baseline: { name: "half of it", value: stats(samples.map((x) => x / 2)) },
      better: "lower",
      target: "≤ 3",
      notes: ["smoke " + context.smoke + ", iterations " + context.iterations(1000)],
    },
    { name: "fine curve point", unit: "ms", value: single(4), group: "one series", x: 8, xLabel: "windows" },
  ];
}
`;

const HANG_CASE = `
import { spawn } from "node:child_process";
import { writeFileSync } from "node:fs";
const sleeper = spawn("sleep", ["300"], { stdio: "ignore" });
writeFileSync(${JSON.stringify("PID_FILE")}, String(sleeper.pid));
export default async function () {
  await new Promise(() => setInterval(() => undefined, 1000));
  return [];
}
`;

interface Ran {
  code: number | null;
  stdout: string;
  stderr: string;
  ms: number;
}

function run(args: string[]): Promise<Ran> {
  const start = Date.now();
  const child = spawn(process.execPath, ["--import", "tsx", ...args], {
    cwd: repoRoot,
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`${args.join(" ")} did not end within ${PROCESS_MS} ms:\n${stdout}\n${stderr}`));
    }, PROCESS_MS);
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr, ms: Date.now() - start });
    });
  });
}

/** Whether a process is gone (or a zombie nobody reaped yet). */
function gone(pid: number): boolean {
  try {
    return readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]?.startsWith("Z") ?? true;
  } catch {
    return true;
  }
}

let dir: string;
let resultsDir: string;
let pidFile: string;
let runner: Ran;

beforeAll(async () => {
  dir = mkdtempSync(path.join(tmpdir(), "qubes-bench-runner-"));
  const cases = path.join(dir, "cases");
  resultsDir = path.join(dir, "results");
  pidFile = path.join(dir, "sleeper.pid");
  mkdirSync(cases);
  // ESM like bench/, so the cases share the runner's instance of lib.ts.
  writeFileSync(path.join(cases, "package.json"), '{ "type": "module" }\n');
  writeFileSync(path.join(cases, "fine.bench.ts"), FINE_CASE);
  writeFileSync(path.join(cases, "hang.bench.ts"), HANG_CASE.replace('"PID_FILE"', JSON.stringify(pidFile)));
  runner = await run([
    "bench/run.ts",
    "--quick",
    "--dir",
    cases,
    "--results-dir",
    resultsDir,
    "--time-limit",
    String(HANG_LIMIT_S),
  ]);
}, PROCESS_MS + 10_000);

afterAll(() => {
  if (existsSync(pidFile)) {
    const pid = Number(readFileSync(pidFile, "utf8"));
    if (!gone(pid)) process.kill(pid, "SIGKILL");
  }
  rmSync(dir, { recursive: true, force: true });
});

function results(): BenchResults {
  const files = readdirSync(resultsDir).filter((name) => name.endsWith(".json"));
  expect(files).toHaveLength(1);
  return JSON.parse(readFileSync(path.join(resultsDir, files[0] as string), "utf8")) as BenchResults;
}

describe("npm run bench", () => {
  it("kills a hanging case at its limit, records it as failed and exits non-zero", () => {
    expect(runner.code, runner.stdout + runner.stderr).toBe(1);
    const hang = results().cases.find((c) => c.name === "hang");
    expect(hang?.status).toBe("failed");
    expect(hang?.error).toMatch(/^hang: killed at its time limit of 6\.0 s/);
    expect(hang?.timeLimitMs).toBe(HANG_LIMIT_S * 1000);
    // Killed at the limit, not later (the SIGKILL grace is 10 s).
    expect(hang?.wallMs).toBeGreaterThanOrEqual(HANG_LIMIT_S * 1000 - 50);
    expect(hang?.wallMs).toBeLessThan(HANG_LIMIT_S * 1000 + 12_000);
    expect(runner.stdout).toMatch(/\[2\/2\] hang .*FAILED after/s);
    expect(runner.stdout).toMatch(/failed: hang/);
    // What the case started went with its process group.
    if (existsSync(pidFile)) expect(gone(Number(readFileSync(pidFile, "utf8")))).toBe(true);
  });

  it("writes the other case's rows with every field, and the machine and versions", () => {
    const out = results();
    expect(out.schema).toBe(1);
    expect(out.mode).toBe("quick");
    expect(out.machine.cpus).toBeGreaterThan(0);
    expect(out.machine.cpuModel).not.toBe("");
    expect(out.machine.totalMemoryBytes).toBeGreaterThan(0);
    expect(out.machine.loadAverageStart).toHaveLength(3);
    expect(out.machine.loadAverageEnd).toHaveLength(3);
    expect(out.versions.node).toBe(process.version);
    expect(out.versions.package).toMatch(/^\d+\.\d+\.\d+/);
    const fine = out.cases.find((c) => c.name === "fine");
    expect(fine?.status).toBe("ok");
    expect(fine?.error).toBeUndefined();
    expect(fine?.wallMs).toBeGreaterThan(0);
    expect(fine?.timeLimitMs).toBe(120_000);
    const [figure, point] = fine?.rows ?? [];
    expect(figure?.value).toEqual({ n: 5000, median: 60, p99: 109, mean: 59.5, min: 10, max: 109 });
    expect(figure?.baseline?.name).toBe("half of it");
    expect(figure?.baseline?.value.median).toBe(30);
    expect(figure?.ratio).toBe(2);
    expect(figure?.targetMet).toBe(true);
    expect(figure?.target).toBe("≤ 3");
    expect(figure?.notes).toEqual(["smoke true, iterations 10"]);
    // Samples come along, bounded, ascending, min and max kept.
    expect(figure?.samples).toHaveLength(2000);
    expect(figure?.samples?.[0]).toBe(10);
    expect(figure?.samples?.at(-1)).toBe(109);
    expect(figure?.baseline?.samples).toHaveLength(2000);
    expect(point).toMatchObject({ name: "fine curve point", group: "one series", x: 8, xLabel: "windows" });
    expect(point?.value.max).toBe(4);
    expect(point?.samples).toBeUndefined();
    expect(runner.stdout).toMatch(/\[1\/2\] fine … done in/);
    expect(runner.stdout).toMatch(/fine\s+fine figure, 5000 samples\s+60\.0 µs\s+109 µs\s+30\.0 µs\s+2\.00×\s+≤ 3 ✓/);
  });

  it("draws the results as one self-contained HTML page", async () => {
    const out = path.join(dir, "report.html");
    const report = await run(["bench/report.ts", "--results-dir", resultsDir, "--out", out]);
    expect(report.code, report.stderr).toBe(0);
    expect(report.stdout.trim()).toBe(out);
    const html = readFileSync(out, "utf8");
    expect(html).toMatch(/^<!doctype html>/);
    expect(html).toContain("<svg");
    expect(html).toContain("fine figure, 5000 samples");
    expect(html).toContain("hang: killed at its time limit");
    expect(html).toMatch(/id="case-fine"/);
    expect(html).toMatch(/id="case-hang"/);
    expect(html).not.toMatch(/<script|https?:\/\/(?!www\.w3\.org\/2000\/svg)/);
  });
});
