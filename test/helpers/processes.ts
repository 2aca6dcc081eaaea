/**
 * Helpers for tests that run programs in child processes. A test may bound
 * how long it waits for an event, never how long the machine takes to start
 * a process: each child gives a readiness signal (a "ready" line, a socket,
 * a first window), the wait for it is long ({@link READY_TIMEOUT_MS}), and a
 * test's own clocks start there.
 */
import { spawn, type ChildProcess, type SpawnOptions } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

/** The repository root. */
export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");

/**
 * How long a test waits for a process it started to become ready (ms). This
 * measures the machine, not the code: on a busy two-core machine starting
 * tsx alone took most of 10 s, so the allowance is generous.
 */
export const READY_TIMEOUT_MS = 120_000;

/**
 * The vitest timeout (ms) of a test that waits for `starts` start-ups one
 * after another, then spends at most `eventsMs` on what it checks: the
 * overall guard, so that only the test's own clocks bound the events.
 */
export function withStartup(eventsMs: number, starts = 1): number {
  return starts * READY_TIMEOUT_MS + eventsMs;
}

/** The line a test child under test/ prints on stdout once it has started (modules loaded), before the work a test times. */
export const READY_LINE = "ready";

/** Starts `node [nodeArgs] --import tsx script args` with the repository as working directory. */
export function spawnTs(
  script: string,
  args: string[] = [],
  options: SpawnOptions = {},
  nodeArgs: string[] = [],
): ChildProcess {
  return spawn(process.execPath, [...nodeArgs, "--import", "tsx", path.resolve(repoRoot, script), ...args], {
    cwd: repoRoot,
    stdio: ["ignore", "pipe", "pipe"],
    ...options,
  });
}

/** Collects a child's output and resolves with its exit code once it ends. */
export function finished(
  child: ChildProcess,
): Promise<{ code: number | null; signal: string | null; stdout: string; stderr: string }> {
  let stdout = "";
  let stderr = "";
  child.stdout?.setEncoding("utf8").on("data", (chunk: string) => (stdout += chunk));
  child.stderr?.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk));
  return new Promise((resolve, reject) => {
    child.on("error", reject);
    child.on("close", (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
}

/** A child's name for messages: its script (the first `.ts` argument) or its program. */
function nameOf(child: ChildProcess): string {
  const script = child.spawnargs.find((arg) => arg.endsWith(".ts"));
  return script === undefined ? child.spawnfile : path.relative(repoRoot, script);
}

/**
 * Resolves with the first line `child` prints on stdout that equals `line`
 * (default {@link READY_LINE}) or matches it: the child's readiness signal.
 * Start-up may take up to `timeoutMs`; rejects when that passes or when the
 * child ends first, saying it never became ready and quoting its output.
 * Call it before the first `await` after spawning, so no line is missed; it
 * reads alongside {@link finished} and LineChannel.
 */
export function whenReady(
  child: ChildProcess,
  line: string | RegExp = READY_LINE,
  timeoutMs = READY_TIMEOUT_MS,
): Promise<string> {
  const name = nameOf(child);
  let stdout = "";
  let stderr = "";
  let searched = 0;
  return new Promise((resolve, reject) => {
    const onStdout = (chunk: string): void => {
      stdout += chunk;
      const end = stdout.lastIndexOf("\n");
      if (end < searched) return;
      const found = stdout
        .slice(searched, end)
        .split("\n")
        .find((candidate) => (typeof line === "string" ? candidate === line : line.test(candidate)));
      searched = end + 1;
      if (found !== undefined) finish(null, found);
    };
    const onStderr = (chunk: string): void => void (stderr += chunk);
    const onClose = (code: number | null, signal: string | null): void =>
      finish(new Error(`${name} ended (${code ?? signal}) before it was ready (${String(line)})${output()}`));
    const onError = (error: Error): void => finish(new Error(`${name} did not start: ${error.message}`));
    const timer = setTimeout(
      () => finish(new Error(`${name} never became ready (${String(line)}) within ${timeoutMs} ms${output()}`)),
      timeoutMs,
    );
    const output = (): string => `\n--- stdout:\n${stdout.slice(-2000)}\n--- stderr:\n${stderr.slice(-3000)}`;
    function finish(error: Error | null, found?: string): void {
      clearTimeout(timer);
      child.stdout?.off("data", onStdout);
      child.stderr?.off("data", onStderr);
      child.off("close", onClose);
      child.off("error", onError);
      if (error === null) resolve(found as string);
      else reject(error);
    }
    if (child.stdout === null) {
      finish(new Error(`${name} has no piped stdout to say it is ready on`));
      return;
    }
    child.stdout.setEncoding("utf8").on("data", onStdout);
    child.stderr?.setEncoding("utf8").on("data", onStderr);
    child.on("close", onClose);
    child.on("error", onError);
  });
}

/**
 * Resolves as `promise` does, or rejects after `ms` naming `what`: the bound
 * on an event, whose clock starts at this call (after the processes it
 * involves are ready).
 */
export function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${what} did not happen within ${ms} ms`)), ms);
    promise.then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      (error: unknown) => {
        clearTimeout(timer);
        reject(error as Error);
      },
    );
  });
}

/**
 * Waits for a test child (just spawned) to print its ready line, then gives
 * it `exitMs` to end, killing it (SIGKILL) and rejecting with its output when
 * it does not. Resolves as {@link finished} does, with stdout after the ready
 * line.
 */
export async function finishedAfterReady(
  child: ChildProcess,
  exitMs: number,
): Promise<{ code: number | null; signal: string | null; stdout: string; stderr: string }> {
  const done = finished(child);
  // Settled either way below; this keeps an early spawn error from going unhandled.
  done.catch(() => undefined);
  try {
    await whenReady(child);
  } catch (error) {
    child.kill("SIGKILL");
    throw error;
  }
  let late = false;
  const timer = setTimeout(() => {
    late = true;
    child.kill("SIGKILL");
  }, exitMs);
  const result = await done.finally(() => clearTimeout(timer));
  const stdout = result.stdout.slice(result.stdout.indexOf(`${READY_LINE}\n`) + READY_LINE.length + 1);
  if (late) {
    throw new Error(
      `${nameOf(child)} did not end within ${exitMs} ms of its ready line, and was killed` +
        `\n--- stdout after ready:\n${stdout.slice(-2000)}\n--- stderr:\n${result.stderr.slice(-3000)}`,
    );
  }
  return { ...result, stdout };
}

/** A fresh temporary directory, removed by the returned cleanup function. */
export function temporaryDirectory(prefix = "qubes-test-"): { dir: string; remove: () => void } {
  const dir = mkdtempSync(path.join(tmpdir(), prefix));
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}
