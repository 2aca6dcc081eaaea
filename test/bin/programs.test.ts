/**
 * What the programs in bin/ share as a new user meets them: in a checkout
 * where the native addon is not built, one line saying to run `npm ci`
 * instead of a stack trace; and their logs, readable lines on a terminal
 * (qubes-guid here; qubes-gui-agent in test/gui-agent/cli.test.ts).
 */
import { spawn, type ChildProcess } from "node:child_process";
import { cpSync, mkdtempSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";

import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";

import { requireProgram, startSway, type RunningCompositor } from "../helpers/compositors.ts";
import { finished, repoRoot } from "../helpers/processes.ts";

/** How long a process may take to start (its readiness signal): the machine may be loaded. */
const STARTUP_MS = 120_000;

const dirs: string[] = [];
const running: ChildProcess[] = [];

function tempDir(prefix: string): string {
  const dir = mkdtempSync(path.join(tmpdir(), prefix));
  dirs.push(dir);
  return dir;
}

afterEach(() => {
  for (const child of running.splice(0)) {
    if (child.exitCode === null && child.signalCode === null) process.kill(-(child.pid as number), "SIGKILL");
  }
});

afterAll(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

describe("a checkout without the native addon", () => {
  let checkout: string;

  beforeAll(() => {
    // The sources as a fresh clone has them: no build/ (node_modules is shared, as `npm ci --ignore-scripts` would leave it).
    checkout = tempDir("qubes-no-addon-");
    const skipped = new Set(["build", "node_modules", ".git", "test", "bench"]);
    cpSync(repoRoot, checkout, {
      recursive: true,
      filter: (source) => {
        const relative = path.relative(repoRoot, source);
        return relative === "" || !skipped.has(relative.split(path.sep)[0] as string);
      },
    });
    symlinkSync(path.join(repoRoot, "node_modules"), path.join(checkout, "node_modules"));
  });

  it.each([
    ["qubes-gui-agent", ["-d", "0"]],
    ["qubes-guid", ["-d", "5", "-N", "work"]],
  ])("%s says in one line that the addon is not built, and exits 1", async (program, args) => {
    const child = spawn(process.execPath, [path.join(checkout, "bin", `${program}.js`), ...args], {
      cwd: checkout,
      env: { ...process.env, VCHAN_SOCKET_DIR: checkout, XDG_RUNTIME_DIR: checkout },
      stdio: ["ignore", "pipe", "pipe"],
    });
    const result = await finished(child);
    expect(result.stderr).toBe(`${program}: the native addon is not built: run npm ci\n`);
    expect(result.code).toBe(1);
  });
});

describe("qubes-guid's logs on a terminal", () => {
  let sway: RunningCompositor;

  beforeAll(async () => {
    // script(1) gives the program a terminal; a machine without it fails here, never skips.
    requireProgram("script", "bsdutils");
    sway = await startSway();
  }, STARTUP_MS);
  afterAll(async () => {
    await sway?.stop();
  });

  it(
    "are readable lines, not JSON",
    async () => {
      const bin = path.join(repoRoot, "bin", "qubes-guid.js");
      // script(1) gives qubes-guid a terminal for its stderr.
      const command = `exec ${JSON.stringify(process.execPath)} ${JSON.stringify(bin)} -d 5 -N work -v`;
      const child = spawn("script", ["-qfec", command, "/dev/null"], {
        cwd: repoRoot,
        env: {
          ...process.env,
          ...sway.env,
          VCHAN_SOCKET_DIR: tempDir("qubes-guid-tty-"),
          VCHAN_DOMAIN: "0",
          NO_COLOR: "1",
        },
        stdio: ["ignore", "pipe", "pipe"],
        detached: true,
      });
      running.push(child);
      let text = "";
      // No clock: the wait is for the start-up's own readiness line.
      await new Promise<void>((resolve, reject) => {
        child.stdout?.setEncoding("utf8").on("data", (chunk: string) => {
          text += chunk;
          if (/guid started/.test(text)) resolve();
        });
        child.once("close", (code) => reject(new Error(`script ended (${code}) before guid started:\n${text}`)));
      });
      const started = text.split(/\r?\n/).find((line) => line.includes("guid started")) ?? "";
      expect(started).toMatch(/^\[\d\d:\d\d:\d\d\.\d{3}\] INFO \(qubes-guid\): guid started; waiting for the agent \{/);
      expect(text).not.toMatch(/"level":/);
    },
    STARTUP_MS * 2,
  );
});
