/**
 * The qubes-gui-agent command line: flags checked with messages that name
 * the problem, a busy Wayland socket refused, a second agent with the same
 * domain ids refused, a missing daemon waited for (and said so), `-- COMMAND`
 * started on the agent's display, and every failure to start one line with
 * its documented exit status.
 */
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";

import { afterEach, describe, expect, it } from "vitest";

import * as native from "../../native/index.ts";
import { xenVchanAvailability } from "../../vchan/index.ts";
import { requireProgram } from "../helpers/compositors.ts";
import { connectDaemonPeer, type DaemonPeer } from "../helpers/daemon-peer.ts";
import { finished, repoRoot } from "../helpers/processes.ts";

const bin = path.join(repoRoot, "bin", "qubes-gui-agent.js");
const dirs: string[] = [];
const running: Array<ReturnType<typeof spawn>> = [];
const peers: DaemonPeer[] = [];
/** How long a test waits for one event between processes that are already running (ms). */
const EVENT_MS = 10_000;

function tempDir(): string {
  const dir = mkdtempSync(path.join(tmpdir(), "qubes-agent-cli-"));
  dirs.push(dir);
  return dir;
}

function agent(args: string[], dir: string, env: NodeJS.ProcessEnv = {}) {
  const child = spawn(process.execPath, [bin, ...args], {
    env: { ...process.env, XDG_RUNTIME_DIR: dir, VCHAN_SOCKET_DIR: dir, VCHAN_DOMAIN: "3", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  running.push(child);
  return child;
}

/** Resolves as `promise` does, or rejects after `ms` saying that `what` never came. */
function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} never came (waited ${ms} ms)`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/**
 * Waits for a child that must fail to start: resolves with its exit status
 * and output, or rejects as soon as it says it waits for a daemon or started
 * (no clock: its start-up is the machine's time).
 */
function failedStart(child: ReturnType<typeof spawn>): Promise<{ code: number | null; stderr: string }> {
  let stderr = "";
  return new Promise((resolve, reject) => {
    child.stderr?.setEncoding("utf8").on("data", (chunk: string) => {
      stderr += chunk;
      if (/waiting for the GUI daemon|agent started/.test(stderr)) {
        reject(new Error(`the agent started instead of failing:\n${stderr}`));
      }
    });
    child.once("close", (code) => resolve({ code, stderr }));
  });
}

/** A socket file nobody listens on: what a process that died leaves behind. */
function staleSocket(socketPath: string): void {
  native.close(native.listen("stream", socketPath, 1));
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
  for (const peer of peers.splice(0)) peer.close();
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

  it("refuses to start while another agent with the same domain ids serves its sockets, which stay the first's", async () => {
    const dir = tempDir();
    const first = agent(["--wayland-display", "wayland-first"], dir);
    await stderrMatching(first, /waiting for the GUI daemon/);
    const second = await failedStart(agent(["--wayland-display", "wayland-second"], dir));
    expect(second.code).toBe(1);
    expect(second.stderr).toBe(
      `qubes-gui-agent: cannot start: ${path.join(dir, "qubes-grant.3.0.sock")} is served by another live process ` +
        "(is another qubes-gui-agent running with the same VCHAN_DOMAIN and -d?)\n",
    );
    expect(existsSync(path.join(dir, "wayland-second"))).toBe(false);
    // The first agent is still the one a daemon reaches.
    const connected = stderrMatching(first, /daemon connected/);
    const peer = await within(
      connectDaemonPeer({ agentDomain: 3, guiDomain: 0, socketDir: dir }),
      EVENT_MS,
      "a daemon's connection to the first agent",
    );
    peers.push(peer);
    await within(connected, EVENT_MS, "the first agent's 'daemon connected'");
  });

  it("exits 1 when another process took its vchan path while a daemon was connected", async () => {
    const dir = tempDir();
    const child = agent(["--wayland-display", "wayland-taken"], dir);
    await stderrMatching(child, /waiting for the GUI daemon/);
    const connected = stderrMatching(child, /daemon connected/);
    const peer = await within(
      connectDaemonPeer({ agentDomain: 3, guiDomain: 0, socketDir: dir }),
      EVENT_MS,
      "a daemon's connection",
    );
    await within(connected, EVENT_MS, "the agent's 'daemon connected'");
    // The agent took its vchan path away when the daemon came; another process takes it now.
    const vchanPath = path.join(dir, "vchan.3.0.6000.sock");
    const squatter = native.listen("stream", vchanPath, 4);
    try {
      const exited = finished(child);
      peer.close();
      const result = await within(exited, EVENT_MS, "the agent's exit");
      expect(result.code).toBe(1);
      const failed = result.stderr
        .split("\n")
        .filter((line) => line.startsWith("{"))
        .map((line) => JSON.parse(line) as { level: number; msg: string; err?: { message: string } })
        .find((line) => line.level === 50);
      expect(failed).toMatchObject({
        msg: "the agent's vchan server failed; the agent stops",
        err: { message: `${vchanPath} is served by another live process` },
      });
    } finally {
      native.close(squatter);
    }
  });

  it("replaces the stale sockets an agent that died left behind", async () => {
    const dir = tempDir();
    for (const name of ["qubes-grant.3.0.sock", "vchan.3.0.6000.sock", "wayland-stale"]) {
      staleSocket(path.join(dir, name));
    }
    const child = agent(["--wayland-display", "wayland-stale"], dir);
    await stderrMatching(child, /agent started/);
    const connected = stderrMatching(child, /daemon connected/);
    peers.push(
      await within(
        connectDaemonPeer({ agentDomain: 3, guiDomain: 0, socketDir: dir }),
        EVENT_MS,
        "a daemon's connection",
      ),
    );
    await within(connected, EVENT_MS, "the agent's 'daemon connected'");
  });

  it("never removes a file that is not a socket at its vchan path", async () => {
    const dir = tempDir();
    const file = path.join(dir, "vchan.3.0.6000.sock");
    writeFileSync(file, "keep me");
    const result = await failedStart(agent(["--wayland-display", "wayland-file"], dir));
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(`qubes-gui-agent: cannot start: ${file} exists and is not a socket: not removed`);
    expect(result.stderr.trim().split("\n")).toHaveLength(1);
    expect(readFileSync(file, "utf8")).toBe("keep me");
  });

  it("creates a missing VCHAN_SOCKET_DIR and a --wayland-display path's directory, private", async () => {
    const dir = tempDir();
    const socketDir = path.join(dir, "run", "qubes-vchan");
    const display = path.join(dir, "runtime", "wayland-qubes");
    const child = agent(["--wayland-display", display], dir, { VCHAN_SOCKET_DIR: socketDir });
    await stderrMatching(child, /agent started/);
    for (const created of [socketDir, path.dirname(display)]) {
      expect((statSync(created).mode & 0o777).toString(8)).toBe("700");
    }
    expect(statSync(path.join(socketDir, "vchan.3.0.6000.sock")).isSocket()).toBe(true);
    expect(statSync(display).isSocket()).toBe(true);
  });

  it("names a missing XDG_RUNTIME_DIR and exits 2", async () => {
    const dir = tempDir();
    const missing = path.join(dir, "no-such-runtime-dir");
    const result = await failedStart(agent([], dir, { XDG_RUNTIME_DIR: missing }));
    expect(result.code).toBe(2);
    expect(result.stderr).toBe(
      `qubes-gui-agent: XDG_RUNTIME_DIR=${missing} is not a directory (the login session makes it, mode 0700): ` +
        "create it or give --wayland-display an absolute path\n",
    );
  });

  it.each([
    ["VCHAN_DOMAIN=abc", 2, [], { VCHAN_DOMAIN: "abc" }, 'VCHAN_DOMAIN must be a domain id 0..32751, got "abc"'],
    ["VCHAN_DOMAIN=-1", 2, [], { VCHAN_DOMAIN: "-1" }, 'VCHAN_DOMAIN must be a domain id 0..32751, got "-1"'],
    ["-- nosuchcmd", 127, ["--", "qubes-no-such-command"], {}, "cannot run qubes-no-such-command: command not found"],
  ] as const)("fails to start on %s with one line and exit status %s", async (_name, status, args, env, line) => {
    const result = await failedStart(agent([...args], tempDir(), env));
    expect(result.stderr).toBe(`qubes-gui-agent: ${line}\n`);
    expect(result.code).toBe(status);
  });

  it("fails to start with -- FILE that is not executable: one line, exit status 126", async () => {
    const dir = tempDir();
    const file = path.join(dir, "not-a-program");
    writeFileSync(file, "#!/bin/sh\n", { mode: 0o644 });
    const result = await failedStart(agent(["--", file], dir));
    expect(result.stderr).toBe(`qubes-gui-agent: cannot run ${file}: ${file} is not executable\n`);
    expect(result.code).toBe(126);
  });

  it.skipIf(xenVchanAvailability().available)(
    "fails to start with --vchan xen off Xen: one line, exit status 1",
    async () => {
      const dir = tempDir();
      const result = await failedStart(agent(["--vchan", "xen", "--wayland-display", "wayland-xen"], dir));
      expect(result.code).toBe(1);
      expect(result.stderr).toMatch(/^qubes-gui-agent: cannot start: xen vchan backend not available: .*\n$/);
      expect(result.stderr.trim().split("\n")).toHaveLength(1);
      // Nothing of the failed start is left behind.
      expect(existsSync(path.join(dir, "wayland-xen"))).toBe(false);
      expect(existsSync(path.join(dir, "qubes-grant.3.0.sock"))).toBe(false);
    },
  );

  it("prints its version with --version, and its exit statuses with --help", async () => {
    const { version } = JSON.parse(readFileSync(path.join(repoRoot, "package.json"), "utf8")) as { version: string };
    const shown = await finished(agent(["--version"], tempDir()));
    expect(shown.code).toBe(0);
    expect(shown.stdout).toBe(`qubes-gui-agent ${version} (Qubes GUI protocol 1.8)\n`);
    const help = await finished(agent(["--help"], tempDir()));
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/--version/);
    expect(help.stdout).toMatch(/Exit status: 0 after SIGTERM or SIGINT; 1 when the agent cannot start/);
    expect(help.stdout).toMatch(/2 for bad flags or environment/);
    expect(help.stdout).toMatch(/126 when\s+COMMAND cannot be run, 127 when it is not found/);
  });

  it("logs readable lines on a terminal and JSON lines elsewhere", async () => {
    // script(1) gives the program a terminal; a machine without it fails here, never skips.
    requireProgram("script", "bsdutils");
    const dir = tempDir();
    // script(1) gives the agent a terminal for its stderr.
    const command = `exec ${JSON.stringify(process.execPath)} ${JSON.stringify(bin)} --wayland-display wayland-tty`;
    const child = spawn("script", ["-qfec", command, "/dev/null"], {
      env: { ...process.env, XDG_RUNTIME_DIR: dir, VCHAN_SOCKET_DIR: dir, VCHAN_DOMAIN: "3", NO_COLOR: "1" },
      stdio: ["ignore", "pipe", "pipe"],
      detached: true,
    });
    running.push(child);
    let text = "";
    await new Promise<void>((resolve, reject) => {
      child.stdout?.setEncoding("utf8").on("data", (chunk: string) => {
        text += chunk;
        if (/agent started/.test(text)) resolve();
      });
      child.once("close", (code) => reject(new Error(`script ended (${code}) before the agent started: ${text}`)));
    });
    const started = text.split(/\r?\n/).find((line) => line.includes("agent started")) ?? "";
    expect(started).toMatch(/^\[\d\d:\d\d:\d\d\.\d{3}\] INFO \(qubes-gui-agent\): agent started \{.*"guiDomain":0/);
    expect(text).not.toMatch(/"level":30/);
    process.kill(-(child.pid as number), "SIGKILL");
    // Elsewhere (a pipe: the other tests here), JSON.
    const piped = agent(["--wayland-display", "wayland-pipe"], dir);
    const line = (await stderrMatching(piped, /agent started/)).split("\n").find((l) => l.includes("agent started"));
    expect(JSON.parse(line as string)).toMatchObject({ level: 30, name: "qubes-gui-agent", msg: "agent started" });
  });
});
