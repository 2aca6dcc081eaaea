/**
 * The qubes-gui-agent command line: flags checked with messages that name
 * the problem, a busy Wayland socket refused, a missing daemon waited for
 * (and said so), and `-- COMMAND` started on the agent's display.
 */
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";

import { afterEach, describe, expect, it } from "vitest";

import { finished, repoRoot } from "../helpers/processes.ts";

const bin = path.join(repoRoot, "bin", "qubes-gui-agent.js");
const dirs: string[] = [];
const running: Array<ReturnType<typeof spawn>> = [];

function tempDir(): string {
  const dir = mkdtempSync(path.join(tmpdir(), "qubes-agent-cli-"));
  dirs.push(dir);
  return dir;
}

function agent(args: string[], dir: string) {
  const child = spawn(process.execPath, [bin, ...args], {
    env: { ...process.env, XDG_RUNTIME_DIR: dir, VCHAN_SOCKET_DIR: dir, VCHAN_DOMAIN: "3" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  running.push(child);
  return child;
}

/** Resolves with the child's stderr once it contains `pattern`. */
function stderrMatching(child: ReturnType<typeof spawn>, pattern: RegExp): Promise<string> {
  let text = "";
  return new Promise((resolve, reject) => {
    child.stderr?.setEncoding("utf8").on("data", (chunk: string) => {
      text += chunk;
      if (pattern.test(text)) resolve(text);
    });
    child.once("exit", (code) => reject(new Error(`exited ${code} before printing ${pattern}: ${text}`)));
  });
}

afterEach(() => {
  for (const child of running.splice(0)) child.kill("SIGKILL");
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

describe("qubes-gui-agent", () => {
  it.each([
    [["--bogus"], /Unknown option '--bogus'/],
    [["-d", "abc"], /-d: not a domain id \(0\.\.32751\): "abc"/],
    [["-d", "40000"], /-d: not a domain id/],
    [["--vchan", "pigeon"], /--vchan: expected socket, shm or xen, got "pigeon"/],
    [["--wayland-display", "a/b"], /--wayland-display: expected a socket name or an absolute path/],
    [["--"], /-- must be followed by a command/],
  ])("refuses %j with a message naming the problem and exit status 2", async (args, message) => {
    const result = await finished(agent(args, tempDir()));
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(message);
    expect(result.stderr).toMatch(/usage: qubes-gui-agent/);
  });

  it("waits for a daemon that is not there, and says so", async () => {
    const dir = tempDir();
    const child = agent(["-d", "0", "--wayland-display", "wayland-cli"], dir);
    const text = await stderrMatching(child, /waiting for the GUI daemon/);
    expect(text).toMatch(/"guiDomain":0/);
    expect(existsSync(path.join(dir, "wayland-cli"))).toBe(true);
    expect(child.exitCode).toBeNull();
  });

  it("refuses a Wayland socket another compositor serves", async () => {
    const dir = tempDir();
    const first = agent(["--wayland-display", "wayland-busy"], dir);
    await stderrMatching(first, /waiting for the GUI daemon/);
    const second = await finished(agent(["--wayland-display", "wayland-busy"], dir));
    expect(second.code).toBe(1);
    expect(second.stderr).toMatch(/the Wayland socket wayland-busy is in use by another compositor/);
  });

  it("starts -- COMMAND with WAYLAND_DISPLAY naming its socket", async () => {
    const dir = tempDir();
    const child = agent(
      ["--wayland-display", "wayland-cmd", "--", "sh", "-c", 'echo "display=$WAYLAND_DISPLAY" >&2'],
      dir,
    );
    const text = await stderrMatching(child, /display=/);
    expect(text).toContain(`display=${path.join(dir, "wayland-cmd")}`);
  });
});
