/**
 * The qubes-guid program as users and packagers run it: `node
 * bin/qubes-guid.js` in a child process. Flags and guid.conf are checked
 * with one line naming the problem and exit status 2; upstream's launcher
 * line is accepted; a missing host compositor ends with status 1; under real
 * headless sway the daemon serves a hand-built agent (AgentPeer), prints its
 * counters on SIGUSR1 and at the end, signals the -K process on connect and
 * ends with status 0 on SIGTERM. Every run waits for its readiness signal
 * (the "guid started" log line, or the agent's handshake) before any clock
 * starts; every later wait is bounded and names what never came.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server, type Socket } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";

import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";

import { labelByIndex } from "../../decorator/index.ts";
import { DEFAULT_GUID_CONFIG, parseCli, type CliOptions } from "../../guid/index.ts";
import { listenAgentPeer, type AgentPeer } from "../helpers/agent-peer.ts";
import { startSway, type RunningCompositor } from "../helpers/compositors.ts";
import { READY_TIMEOUT_MS, finished, repoRoot, withStartup } from "../helpers/processes.ts";

// Every test here starts qubes-guid (tsx compiles it first): its start-up may take what a loaded machine needs.
vi.setConfig({ testTimeout: withStartup(30_000, 2), hookTimeout: withStartup(30_000, 2) });

const bin = path.join(repoRoot, "bin", "qubes-guid.js");
const GUI = 0;
const WORK = 5;
/** How long a process may take to start (its readiness signal): generous, the machine may be loaded. */
const STARTUP_MS = READY_TIMEOUT_MS;
/** How long an event may take once the process is ready. */
const EVENT_MS = 15_000;
/** Timeout of a test that starts processes: the startup allowance plus the events after it. */
const RUN_TEST_MS = 2 * STARTUP_MS + 4 * EVENT_MS;
/** Node's banner when SIGUSR1 reached its default handler and started the inspector. */
const INSPECTOR = /Debugger listening|inspector/;
/** The counters every counters line carries (guid/counters.ts). */
const COUNTER_NAMES = [
  "sessions",
  "sessionsEnded",
  "messages",
  "messagesSent",
  "dropped",
  "suspicious",
  "clamped",
  "frames",
  "throttled",
  "mapsDeferred",
  "resizesCoalesced",
  "dumps",
  "zeroCopyImages",
  "copiedImages",
  "bytesMapped",
  "bytesCopied",
  "clipboardCopies",
  "clipboardPastes",
  "clipboardRefused",
];

const dirs: string[] = [];
const running: ChildProcess[] = [];
const peers: AgentPeer[] = [];

function tempDir(): string {
  const dir = mkdtempSync(path.join(tmpdir(), "qubes-guid-cli-"));
  dirs.push(dir);
  return dir;
}

/** Writes `text` as a guid.conf in a fresh directory and returns its path. */
function configFile(text: string): string {
  const file = path.join(tempDir(), "guid.conf");
  writeFileSync(file, text);
  return file;
}

/**
 * An environment in which no host compositor exists (WAYLAND_DISPLAY names a
 * socket that is not there), so that a run that wrongly got past the checks
 * ends with status 1 instead of running on.
 */
function noCompositorEnv(dir: string): NodeJS.ProcessEnv {
  return {
    ...process.env,
    XDG_RUNTIME_DIR: dir,
    WAYLAND_DISPLAY: "wayland-missing",
    VCHAN_SOCKET_DIR: dir,
    VCHAN_DOMAIN: String(GUI),
  };
}

function spawnGuid(args: string[], env: NodeJS.ProcessEnv): ChildProcess {
  const child = spawn(process.execPath, [bin, ...args], { cwd: repoRoot, env, stdio: ["ignore", "pipe", "pipe"] });
  running.push(child);
  return child;
}

/** The lines of `text` that are JSON objects (pino's log lines, the counters lines). */
function jsonLines(text: string): Array<Record<string, unknown>> {
  const out: Array<Record<string, unknown>> = [];
  for (const line of text.split("\n")) {
    if (!line.startsWith("{")) continue;
    try {
      out.push(JSON.parse(line) as Record<string, unknown>);
    } catch {
      // A line still being written: the next chunk completes it.
    }
  }
  return out;
}

/** A running program whose output is collected, with bounded waits on what it prints. */
class Program {
  stdout = "";
  stderr = "";
  exitCode: number | null = null;
  exitSignal: NodeJS.Signals | null = null;
  closed = false;
  readonly child: ChildProcess;
  readonly #waiters = new Set<() => void>();

  constructor(child: ChildProcess) {
    this.child = child;
    child.stdout?.setEncoding("utf8").on("data", (chunk: string) => {
      this.stdout += chunk;
      this.#wake();
    });
    child.stderr?.setEncoding("utf8").on("data", (chunk: string) => {
      this.stderr += chunk;
      this.#wake();
    });
    child.on("close", (code, signal) => {
      this.exitCode = code;
      this.exitSignal = signal;
      this.closed = true;
      this.#wake();
    });
  }

  get pid(): number {
    const pid = this.child.pid;
    if (pid === undefined) throw new Error("the process has no pid: it did not start");
    return pid;
  }

  /** The complete lines on stdout so far. */
  stdoutLines(): string[] {
    const lines = this.stdout.split("\n");
    lines.pop();
    return lines;
  }

  /** The counters lines on stdout so far, parsed. */
  countersLines(): Array<Record<string, number>> {
    return this.stdoutLines().map((line) => (JSON.parse(line) as { counters: Record<string, number> }).counters);
  }

  /**
   * Resolves with `probe()`'s first defined value (checked now and after every
   * output); rejects after `timeoutMs`, or when the process ended first, with
   * a message naming `what` and quoting the output.
   */
  until<T>(what: string, probe: () => T | undefined, timeoutMs: number): Promise<T> {
    return new Promise((resolve, reject) => {
      const finish = (error: Error | null, value?: T): void => {
        clearTimeout(timer);
        this.#waiters.delete(check);
        if (error === null) resolve(value as T);
        else reject(error);
      };
      const check = (): void => {
        const value = probe();
        if (value !== undefined) finish(null, value);
        else if (this.closed) {
          finish(new Error(`the process ended (${this.exitCode ?? this.exitSignal}) before ${what}${this.#output()}`));
        }
      };
      const timer = setTimeout(
        () => finish(new Error(`${what} did not come within ${timeoutMs} ms${this.#output()}`)),
        timeoutMs,
      );
      this.#waiters.add(check);
      check();
    });
  }

  /** Resolves with the exit status once the process ended; bounded. */
  async exited(timeoutMs: number, after: string): Promise<number | null> {
    await this.until(`the process's exit after ${after}`, () => (this.closed ? true : undefined), timeoutMs);
    return this.exitCode;
  }

  #output(): string {
    return `\n--- stdout:\n${this.stdout}\n--- stderr:\n${this.stderr}`;
  }

  #wake(): void {
    for (const waiter of [...this.#waiters]) waiter();
  }
}

/** Asserts that a failed run printed one line naming the problem (then the usage hint) and no stack trace. */
function expectUsageFailure(result: { code: number | null; stdout: string; stderr: string }, problem: RegExp): void {
  expect(result.code, result.stderr).toBe(2);
  expect(result.stdout).toBe("");
  expect(result.stderr).not.toMatch(/^\s+at /m);
  const lines = result.stderr.trimEnd().split("\n");
  expect(lines).toHaveLength(2);
  expect(lines[0]).toMatch(/^qubes-guid: /);
  expect(lines[0]).toMatch(problem);
  expect(lines[1]).toBe("(qubes-guid --help for usage)");
}

afterEach(() => {
  for (const child of running.splice(0)) {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  }
  for (const peer of peers.splice(0)) peer.close();
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

describe("qubes-guid --help and --version", () => {
  it("prints usage naming every documented flag and exits 0", async () => {
    const result = await finished(spawnGuid(["--help"], noCompositorEnv(tempDir())));
    expect(result.code).toBe(0);
    expect(result.stderr).toBe("");
    expect(result.stdout).toMatch(/^usage: qubes-guid -d DOMID -N NAME/);
    // qubes-gui-protocol.md 4.6, each flag in every spelling given there, then this implementation's own.
    const documented = [
      ["-d", "--domid"],
      ["-t", "--target-domid"],
      ["-N", "--name"],
      ["-c", "--color"],
      ["-l", "--label"],
      ["-i", "--icon"],
      ["-C", "--config"],
      ["-v"],
      ["-q"],
      ["-Q", "--qrexec-for-clipboard"],
      ["-n", "--background"],
      ["-f", "--foreground"],
      ["-I", "--invisible"],
      ["-K", "--kill-on-connect"],
      ["-p", "--prop"],
      ["-T", "--title-name"],
      ["--trayicon-mode"],
      ["--screensaver-name"],
      ["--max-clipboard-size"],
      ["--override-redirect"],
      ["-h"],
      ["--version"],
      ["--vchan"],
      ["--clipboard-dir"],
    ];
    const missing = documented
      .flat()
      .filter((flag) => !new RegExp(`(^|[\\s,/])${flag}(?![-\\w])`, "m").test(result.stdout));
    expect(missing).toEqual([]);
  });

  it("prints the program version and protocol 1.8, and exits 0", async () => {
    const { version } = JSON.parse(readFileSync(path.join(repoRoot, "package.json"), "utf8")) as { version: string };
    const result = await finished(spawnGuid(["--version"], noCompositorEnv(tempDir())));
    expect(result.code).toBe(0);
    expect(result.stderr).toBe("");
    expect(result.stdout.trimEnd().split("\n")).toHaveLength(1);
    expect(result.stdout).toContain(`qubes-guid ${version}`);
    expect(result.stdout).toMatch(/\b1\.8\b/);
  });
});

describe("qubes-guid refuses bad input with one line and exit status 2", () => {
  it.each<[string, string[], RegExp]>([
    ["a missing -d", ["-N", "work"], /-d\/--domid is required/],
    ["-d abc", ["-d", "abc", "-N", "work"], /-d\/--domid must be a domain id 1\.\.32751, got "abc"/],
    ["-d 0 (the GUI domain itself)", ["-d", "0", "-N", "work"], /-d\/--domid must be a domain id 1\.\.32751, got "0"/],
    ["-d 32752", ["-d", "32752", "-N", "work"], /-d\/--domid must be a domain id 1\.\.32751, got "32752"/],
    ["-d 40000", ["-d", "40000", "-N", "work"], /-d\/--domid must be a domain id 1\.\.32751, got "40000"/],
    ["-d 2^31", ["-d", "2147483648", "-N", "work"], /-d\/--domid must be a domain id .*"2147483648"/],
    ["-d 2^32-1", ["-d", "4294967295", "-N", "work"], /-d\/--domid must be a domain id .*"4294967295"/],
    ["-d 5.0", ["-d", "5.0", "-N", "work"], /-d\/--domid must be a domain id .*"5\.0"/],
    ["a missing -N", ["-d", "5"], /-N\/--name is required/],
    ["-N with a space", ["-d", "5", "-N", "bad name"], /-N\/--name: invalid qube name "bad name"/],
    ["-N starting with a digit", ["-d", "5", "-N", "9lives"], /-N\/--name: invalid qube name "9lives"/],
    ["-N of 32 bytes", ["-d", "5", "-N", "a".repeat(32)], /-N\/--name: invalid qube name "a{32}": is 32 bytes/],
    ["-c nocolour", ["-d", "5", "-N", "work", "-c", "nocolour"], /-c\/--color: invalid colour "nocolour"/],
    ["-l 9", ["-d", "5", "-N", "work", "-l", "9"], /-l\/--label must be a label index 1\.\.8, got "9"/],
    ["-l 0", ["-d", "5", "-N", "work", "-l", "0"], /-l\/--label must be a label index 1\.\.8, got "0"/],
    [
      "--max-clipboard-size 255",
      ["-d", "5", "-N", "work", "--max-clipboard-size", "255"],
      /--max-clipboard-size must be 256\.\.256000, got "255"/,
    ],
    [
      "--max-clipboard-size 256001",
      ["-d", "5", "-N", "work", "--max-clipboard-size", "256001"],
      /--max-clipboard-size must be 256\.\.256000, got "256001"/,
    ],
    [
      "--override-redirect maybe",
      ["-d", "5", "-N", "work", "--override-redirect", "maybe"],
      /--override-redirect must be allow or disabled, got "maybe"/,
    ],
    [
      "--vchan pigeon",
      ["-d", "5", "-N", "work", "--vchan", "pigeon"],
      /--vchan must be socket, shm or xen, got "pigeon"/,
    ],
    ["-K 0", ["-d", "5", "-N", "work", "-K", "0"], /-K\/--kill-on-connect must be a process id, got "0"/],
    ["an unknown flag", ["-d", "5", "-N", "work", "--bogus"], /Unknown option '--bogus'/],
    ["a positional argument", ["-d", "5", "-N", "work", "extra"], /Unexpected argument 'extra'/],
    ["-C /nonexistent", ["-d", "5", "-N", "work", "-C", "/nonexistent"], /\/nonexistent: cannot read: ENOENT/],
  ])("refuses %s", async (_what, args, problem) => {
    expectUsageFailure(await finished(spawnGuid(args, noCompositorEnv(tempDir()))), problem);
  });

  it("refuses -d -1 naming -d, without a stack trace", async () => {
    // Node's parseArgs words this one itself, over three lines; what matters is -d, status 2 and no trace.
    const result = await finished(spawnGuid(["-d", "-1", "-N", "work"], noCompositorEnv(tempDir())));
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/^qubes-guid: Option '-d' argument is ambiguous/);
    expect(result.stderr).not.toMatch(/^\s+at /m);
  });

  it.each<[string, string, RegExp]>([
    [
      "an unknown key, naming the file, the line and the key",
      "global: {\n  max_clipboard_size = 300;\n  bogus_key = 1;\n};\n",
      /:3: unknown key global\.bogus_key = 1/,
    ],
    [
      "a value of the wrong type, naming the line and the key",
      'global: {\n  allow_fullscreen = "yes";\n};\n',
      /:2: global\.allow_fullscreen = "yes" is a string: expected a boolean/,
    ],
    [
      "a value out of range, naming the line and the range",
      "global: {\n  max_clipboard_size = 100;\n};\n",
      /:2: global\.max_clipboard_size = 100 is out of range: allowed 256\.\.256000/,
    ],
    [
      "a syntax error, naming the line",
      "global: {\n\n  max_clipboard_size 300;\n};\n",
      /:3: expected '=' or ':' after max_clipboard_size/,
    ],
  ])("refuses a guid.conf with %s", async (_what, text, problem) => {
    const file = configFile(text);
    const result = await finished(spawnGuid(["-d", "5", "-N", "work", "-C", file], noCompositorEnv(tempDir())));
    expectUsageFailure(result, problem);
    expect(result.stderr.split("\n")[0]).toContain(`qubes-guid: ${file}:`);
  });
});

describe("qubes-guid without a host compositor", () => {
  it("exits with status 1 and a line naming the missing compositor", async () => {
    const dir = tempDir();
    const result = await finished(spawnGuid(["-d", "5", "-N", "work"], noCompositorEnv(dir)));
    expect(result.code, result.stderr).toBe(1);
    expect(result.stdout).toBe("");
    expect(result.stderr).not.toMatch(/^\s+at /m);
    const lines = result.stderr.trimEnd().split("\n");
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^qubes-guid: /);
    expect(lines[0]).toContain(path.join(dir, "wayland-missing"));
  });
});

describe("qubes-guid reads flags and guid.conf into its options", () => {
  async function options(args: string[]): Promise<CliOptions> {
    const parsed = await parseCli(args);
    if (typeof parsed === "string") throw new Error(`parseCli answered ${parsed}`);
    return parsed;
  }

  it("takes max_clipboard_size from the config", async () => {
    const file = configFile("global: {\n  max_clipboard_size = 300;\n};\n");
    expect((await options(["-d", "5", "-N", "work", "-C", file])).config.maxClipboardSize).toBe(300);
  });

  it("lets --max-clipboard-size beat the config, before or after -C", async () => {
    const file = configFile("global: {\n  max_clipboard_size = 300;\n};\n");
    const after = await options(["-d", "5", "-N", "work", "-C", file, "--max-clipboard-size", "1000"]);
    const before = await options(["--max-clipboard-size", "1000", "-d", "5", "-N", "work", "-C", file]);
    expect(after.config.maxClipboardSize).toBe(1000);
    expect(before.config.maxClipboardSize).toBe(1000);
  });

  it("lets --override-redirect beat the config", async () => {
    const file = configFile('global: {\n  override_redirect = "allow";\n};\n');
    const parsed = await options(["-d", "5", "-N", "work", "-C", file, "--override-redirect", "disabled"]);
    expect(parsed.config.overrideRedirect).toBe("disabled");
  });

  it("applies the VM entry of the qube named by -N, and only that one", async () => {
    const file = configFile(
      "global: {\n  max_clipboard_size = 300;\n};\nVM: {\n  work: {\n    max_clipboard_size = 500;\n  };\n};\n",
    );
    expect((await options(["-d", "5", "-N", "work", "-C", file])).config.maxClipboardSize).toBe(500);
    expect((await options(["-d", "6", "-N", "personal", "-C", file])).config.maxClipboardSize).toBe(300);
  });

  it("keeps the defaults without a config", async () => {
    const parsed = await options(["-d", "5", "-N", "work"]);
    expect(parsed.config).toEqual(DEFAULT_GUID_CONFIG);
    expect(parsed).toMatchObject({ domain: 5, name: "work", invisible: false, killOnConnect: null, logLevel: "info" });
  });

  it("accepts the domain ids 1 and 32751", async () => {
    expect((await options(["-d", "1", "-N", "work"])).domain).toBe(1);
    expect((await options(["-d", "32751", "-N", "work"])).domain).toBe(32751);
  });

  it("frames in the label's colour, and -c beats -l", async () => {
    const blue = labelByIndex(6)?.color;
    expect(blue).toBe(0x3465a4);
    expect((await options(["-d", "5", "-N", "work", "-l", "6"])).color).toBe(blue);
    expect((await options(["-d", "5", "-N", "work", "-l", "6", "-c", "0x73d216"])).color).toBe(0x73d216);
    expect((await options(["-d", "5", "-N", "work", "-c", "#75507b", "-l", "6"])).color).toBe(0x75507b);
  });

  it("maps -q and -v to the log level", async () => {
    expect((await options(["-d", "5", "-N", "work", "-q"])).logLevel).toBe("warn");
    expect((await options(["-d", "5", "-N", "work", "-v"])).logLevel).toBe("debug");
    expect((await options(["-d", "5", "-N", "work", "-v", "-v"])).logLevel).toBe("trace");
  });

  it("takes -I and -K", async () => {
    expect(await options(["-d", "5", "-N", "work", "-I", "-K", "1234"])).toMatchObject({
      invisible: true,
      killOnConnect: 1234,
    });
  });
});

describe("qubes-guid under headless sway", () => {
  let sway: RunningCompositor;

  beforeAll(async () => {
    sway = await startSway();
  }, STARTUP_MS);
  afterAll(async () => {
    await sway.stop();
  });

  function guidEnv(socketDir: string): NodeJS.ProcessEnv {
    return { ...process.env, ...sway.env, VCHAN_SOCKET_DIR: socketDir, VCHAN_DOMAIN: String(GUI) };
  }

  async function agent(socketDir: string): Promise<AgentPeer> {
    const peer = await listenAgentPeer({ agentDomain: WORK, guiDomain: GUI, socketDir });
    peers.push(peer);
    return peer;
  }

  /** Starts qubes-guid and resolves once it logged "guid started" (JSON from pino on stderr). */
  async function startGuid(args: string[], socketDir: string): Promise<Program> {
    const program = new Program(spawnGuid(args, guidEnv(socketDir)));
    const started = await program.until(
      'the "guid started" log line',
      () => jsonLines(program.stderr).find((line) => String(line["msg"]).startsWith("guid started")),
      STARTUP_MS,
    );
    expect(started).toMatchObject({ level: 30 });
    return program;
  }

  /**
   * Sends SIGUSR1 and resolves with the counters line it printed; fails at
   * once, naming the cause, when Node's inspector answered instead.
   */
  async function countersAfterUsr1(program: Program): Promise<Record<string, number>> {
    const before = program.stdoutLines().length;
    program.child.kill("SIGUSR1");
    await program.until(
      "a counters line after SIGUSR1",
      () => (program.stdoutLines().length > before || INSPECTOR.test(program.stderr) ? true : undefined),
      EVENT_MS,
    );
    expect(program.stderr, "SIGUSR1 after the readiness line started Node's inspector").not.toMatch(INSPECTOR);
    const counters = program.countersLines()[before];
    if (counters === undefined) throw new Error("no counters line");
    return counters;
  }

  it(
    "logs its start as one JSON line carrying the logger's name and the qube's",
    async () => {
      const program = await startGuid(["-d", String(WORK), "-N", "work"], tempDir());
      const line = program.stderr.split("\n").find((text) => text.includes("guid started")) ?? "";
      const started = JSON.parse(line) as Record<string, unknown>;
      expect(started).toMatchObject({ domain: WORK, screen: { x: 0, y: 0, width: 640, height: 480 } });
      expect(line).toContain('"work"');
      expect(started["name"]).toBe("qubes-guid");
      expect(line.match(/"name":/g)).toHaveLength(1);
    },
    RUN_TEST_MS,
  );

  it.each(["SIGTERM", "SIGINT"] as const)(
    "prints one counters line per SIGUSR1 and ends on %s with status 0 and a final line",
    async (signal) => {
      const dir = tempDir();
      const program = await startGuid(["-d", String(WORK), "-N", "work"], dir);
      const counters = await countersAfterUsr1(program);
      expect(Object.keys(counters).sort()).toEqual([...COUNTER_NAMES].sort());
      for (const name of COUNTER_NAMES) expect(typeof counters[name], name).toBe("number");
      expect(counters).toMatchObject({ sessions: 0, messages: 0, bytesMapped: 0, bytesCopied: 0 });
      expect(program.stdoutLines()).toHaveLength(1);
      expect(JSON.parse(program.stdoutLines()[0] as string)).toEqual({ counters });

      program.child.kill(signal);
      expect(await program.exited(EVENT_MS, signal)).toBe(0);
      expect(program.exitSignal).toBeNull();
      expect(program.stdoutLines()).toHaveLength(2);
      expect(program.countersLines()[1]).toMatchObject({ sessions: 0 });
      expect(program.stderr).not.toMatch(/^\s+at /m);
    },
    RUN_TEST_MS,
  );

  it(
    "counts the agent's session after its handshake",
    async () => {
      const dir = tempDir();
      const peer = await agent(dir);
      const program = await startGuid(["-d", String(WORK), "-N", "work"], dir);
      await peer.handshake(EVENT_MS);
      expect(peer.xconf?.depth).toBe(24);
      expect(await countersAfterUsr1(program)).toMatchObject({ sessions: 1, sessionsEnded: 0, dropped: 0 });

      program.child.kill("SIGTERM");
      expect(await program.exited(EVENT_MS, "SIGTERM")).toBe(0);
      expect(program.stdoutLines()).toHaveLength(2);
      expect(program.countersLines()[1]).toMatchObject({ sessions: 1, sessionsEnded: 1 });
      expect(peer.errors).toEqual([]);
    },
    RUN_TEST_MS,
  );

  it(
    "sends SIGUSR1 to the -K process once the agent connected, not before",
    async () => {
      const dir = tempDir();
      const recorder = new Program(
        spawn(
          process.execPath,
          [
            "-e",
            [
              'process.on("SIGUSR1", () => process.stdout.write("SIGUSR1\\n"));',
              'process.stdout.write("ready\\n");',
              "setInterval(() => {}, 1 << 30);",
            ].join(" "),
          ],
          { stdio: ["ignore", "pipe", "pipe"] },
        ),
      );
      running.push(recorder.child);
      await recorder.until(
        "the -K recorder's ready line",
        () => (recorder.stdout.includes("ready\n") ? true : undefined),
        STARTUP_MS,
      );
      const peer = await agent(dir);
      // As qvm-start-daemon starts an HVM's guid: -n and -K.
      const program = await startGuid(["-d", String(WORK), "-N", "work", "-n", "-K", String(recorder.pid)], dir);
      expect(recorder.stdout).not.toContain("SIGUSR1");
      await peer.handshake(EVENT_MS);
      await recorder.until(
        "SIGUSR1 at the -K process after the agent connected",
        () => (recorder.stdout.includes("SIGUSR1\n") ? true : undefined),
        EVENT_MS,
      );
      program.child.kill("SIGTERM");
      expect(await program.exited(EVENT_MS, "SIGTERM")).toBe(0);
      expect(recorder.stdout.match(/SIGUSR1/g)).toHaveLength(1);
    },
    RUN_TEST_MS,
  );

  it(
    "runs upstream's launcher line (-q, -C, KDE's -T -p, -f, -Q) until SIGTERM",
    async () => {
      const dir = tempDir();
      const conf = configFile("global: {\n  allow_fullscreen = true;\n  max_clipboard_size = 65000;\n};\n");
      const peer = await agent(dir);
      const args = ["-N", "work", "-c", "0x3465a4", "-i", "/usr/share/icons/x.png", "-l", "6", "-q", "-C", conf];
      args.push("-T", "-f", "-Q", "-p", "_KDE_NET_WM_COLOR_SCHEME=s:/x", "-d", String(WORK));
      const program = new Program(spawnGuid(args, guidEnv(dir)));
      // -q leaves only warnings, so the readiness signal is the daemon answering the agent's handshake.
      await peer.handshake(STARTUP_MS);
      expect(program.closed).toBe(false);
      expect(await countersAfterUsr1(program)).toMatchObject({ sessions: 1 });

      program.child.kill("SIGTERM");
      expect(await program.exited(EVENT_MS, "SIGTERM")).toBe(0);
      expect(program.countersLines()[1]).toMatchObject({ sessions: 1, sessionsEnded: 1 });
      expect(program.stderr).not.toContain("guid started");
      expect(program.stderr).not.toMatch(/^\s+at /m);
    },
    RUN_TEST_MS,
  );

  it(
    "exits with status 1 and a final counters line when the host compositor goes away",
    async () => {
      const own = await startSway();
      try {
        const program = new Program(
          spawnGuid(["-d", String(WORK), "-N", "work"], { ...guidEnv(tempDir()), ...own.env }),
        );
        await program.until(
          'the "guid started" log line',
          () => (program.stderr.includes("guid started") ? true : undefined),
          STARTUP_MS,
        );
        await own.stop();
        expect(await program.exited(EVENT_MS, "the host compositor ended")).toBe(1);
        expect(program.stderr).toMatch(/the host compositor went away/);
        expect(program.countersLines()).toHaveLength(1);
      } finally {
        await own.stop();
      }
    },
    RUN_TEST_MS,
  );
});

describe("qubes-guid during its start-up", () => {
  const sockets: Socket[] = [];
  let server: Server | null = null;

  afterEach(async () => {
    for (const socket of sockets.splice(0)) socket.destroy();
    const open = server;
    server = null;
    if (open !== null) await new Promise((resolve) => open.close(resolve));
  });

  /**
   * Starts qubes-guid on a host compositor that accepts the connection and
   * never answers, and resolves once it connected: it is then inside its
   * start-up (before "guid started"), as under a slow or busy compositor,
   * for as long as the test needs.
   */
  async function guidOnSilentCompositor(args: string[]): Promise<Program> {
    const dir = tempDir();
    const listening = createServer((socket) => sockets.push(socket));
    server = listening;
    await new Promise<void>((resolve) => listening.listen(path.join(dir, "wayland-silent"), resolve));
    const program = new Program(spawnGuid(args, { ...noCompositorEnv(dir), WAYLAND_DISPLAY: "wayland-silent" }));
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`qubes-guid did not connect to the host compositor within ${STARTUP_MS} ms`)),
        STARTUP_MS,
      );
      listening.once("connection", () => {
        clearTimeout(timer);
        resolve();
      });
      program.child.once("close", (code, signal) => {
        clearTimeout(timer);
        reject(new Error(`qubes-guid ended (${code ?? signal}) before connecting: ${program.stderr}`));
      });
    });
    return program;
  }

  it(
    "answers SIGUSR1 with counters, never with Node's debugger, while the host compositor is slow",
    async () => {
      const guid = await guidOnSilentCompositor(["-d", String(WORK), "-N", "work"]);
      guid.child.kill("SIGUSR1");
      await guid.until(
        "a counters line (or Node's inspector banner) after SIGUSR1",
        () => (guid.stdoutLines().length > 0 || INSPECTOR.test(guid.stderr) ? true : undefined),
        EVENT_MS,
      );
      // Node's default SIGUSR1 action starts the inspector on 127.0.0.1:9229, open to every local user.
      expect(guid.stderr).not.toMatch(INSPECTOR);
      expect(guid.countersLines()).toHaveLength(1);
      expect(guid.closed).toBe(false);
    },
    RUN_TEST_MS,
  );

  it(
    "ends on SIGTERM while the host compositor is slow",
    async () => {
      const guid = await guidOnSilentCompositor(["-d", String(WORK), "-N", "work"]);
      guid.child.kill("SIGTERM");
      await guid.exited(EVENT_MS, "SIGTERM during start-up");
      // Before it started, ending by the signal itself is as good as the documented status 0; a hang is not.
      expect(guid.exitCode === 0 || guid.exitSignal === "SIGTERM", `${guid.exitCode ?? guid.exitSignal}`).toBe(true);
      expect(guid.stderr).not.toMatch(/^\s+at /m);
    },
    RUN_TEST_MS,
  );
});
