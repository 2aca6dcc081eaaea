/** Helpers for tests that run TypeScript programs in child processes. */
import { spawn, type ChildProcess, type SpawnOptions } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

/** The repository root. */
export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");

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

/** A fresh temporary directory, removed by the returned cleanup function. */
export function temporaryDirectory(prefix = "qubes-test-"): { dir: string; remove: () => void } {
  const dir = mkdtempSync(path.join(tmpdir(), prefix));
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}
