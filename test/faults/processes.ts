/**
 * The processes of the fault tests: each started in a process group of its
 * own (so a signal reaches the program and its app together), with its
 * output kept, a bounded wait for each line it prints, and one list the
 * test's afterEach ends with SIGKILL.
 */
import { spawn, type ChildProcess } from "node:child_process";
import path from "node:path";

import { READY_TIMEOUT_MS, repoRoot, spawnTs, whenReady } from "../helpers/processes.ts";

/** A process a fault test started. */
export interface Started {
  readonly child: ChildProcess;
  readonly name: string;
  /** stdout and stderr so far. */
  output(): string;
  /** Resolves once the process printed `line` (a whole line) on stdout; bounded, naming what never came. */
  line(line: string, timeoutMs?: number): Promise<void>;
  /** Sends `signal` to the process group. */
  kill(signal: NodeJS.Signals): void;
  /** Resolves with the exit code (or signal) once the process ended; bounded. */
  exited(timeoutMs?: number): Promise<{ code: number | null; signal: string | null }>;
  /** True while the process runs. */
  readonly alive: boolean;
}

/** Wraps a spawned (detached) child and registers it in `list`. */
export function track(list: Started[], child: ChildProcess, name: string): Started {
  let stdout = "";
  let stderr = "";
  const waiters = new Set<() => void>();
  child.stdout?.setEncoding("utf8").on("data", (chunk: string) => {
    stdout += chunk;
    for (const waiter of [...waiters]) waiter();
  });
  child.stderr?.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk));
  let exit: { code: number | null; signal: string | null } | null = null;
  const exitWaiters = new Set<() => void>();
  child.on("close", (code, signal) => {
    exit = { code, signal };
    for (const waiter of [...waiters]) waiter();
    for (const waiter of [...exitWaiters]) waiter();
  });
  child.on("error", (error) => (stderr += `spawn error: ${error.message}\n`));
  const output = (): string => `--- ${name} stdout:\n${stdout.slice(-2000)}\n--- stderr:\n${stderr.slice(-4000)}`;
  const started: Started = {
    child,
    name,
    output: () => stdout + stderr,
    line(line, timeoutMs = READY_TIMEOUT_MS) {
      return new Promise((resolve, reject) => {
        const check = (): void => {
          if (stdout.split("\n").includes(line)) finish(null);
          else if (exit !== null)
            finish(new Error(`${name} ended (${exit.code ?? exit.signal}) before printing "${line}"\n${output()}`));
        };
        const timer = setTimeout(
          () => finish(new Error(`${name} did not print "${line}" within ${timeoutMs} ms\n${output()}`)),
          timeoutMs,
        );
        const finish = (error: Error | null): void => {
          clearTimeout(timer);
          waiters.delete(check);
          if (error === null) resolve();
          else reject(error);
        };
        waiters.add(check);
        check();
      });
    },
    kill(signal) {
      if (exit !== null) return;
      try {
        process.kill(-(child.pid as number), signal);
      } catch {
        child.kill(signal);
      }
    },
    exited(timeoutMs = READY_TIMEOUT_MS) {
      return new Promise((resolve, reject) => {
        const check = (): void => {
          if (exit === null) return;
          clearTimeout(timer);
          exitWaiters.delete(check);
          resolve(exit);
        };
        const timer = setTimeout(() => {
          exitWaiters.delete(check);
          reject(new Error(`${name} did not end within ${timeoutMs} ms\n${output()}`));
        }, timeoutMs);
        exitWaiters.add(check);
        check();
      });
    },
    get alive() {
      return exit === null;
    },
  };
  list.push(started);
  return started;
}

/** Ends every process of `list` (SIGKILL to its group) and waits for each to be gone. */
export async function stopAll(list: Started[]): Promise<void> {
  // SIGKILL ends a stopped process too.
  for (const started of list) started.kill("SIGKILL");
  await Promise.all(list.map((started) => started.exited(30_000).catch(() => undefined)));
}

/** Starts test/faults/hostile-agent.ts for `domain` on `dir` in `mode`; resolves once its modules are loaded. */
export async function startHostileAgent(list: Started[], dir: string, domain: number, mode: string): Promise<Started> {
  const child = spawnTs("test/faults/hostile-agent.ts", [dir, String(domain), mode], { detached: true });
  const started = track(list, child, `hostile agent (${mode})`);
  await whenReady(child);
  return started;
}

/** Options of {@link startAgentProcess}. */
export interface AgentProcessOptions {
  /** VCHAN_SOCKET_DIR. */
  dir: string;
  domain: number;
  name: string;
  /** The agent's own directory (Wayland socket, XDG_RUNTIME_DIR, HOME). */
  home: string;
  /** The app's command; default the demo app with `--name NAME`. */
  app?: string[];
}

/** Starts a real qubes-gui-agent running the demo app (by default), in a process group of its own. */
export function startAgentProcess(list: Started[], options: AgentProcessOptions): Started {
  const node = process.execPath;
  const app = options.app ?? [node, path.join(repoRoot, "bin", "qubes-demo-app.js"), "--name", options.name];
  const child = spawn(
    node,
    [
      path.join(repoRoot, "bin", "qubes-gui-agent.js"),
      "-d",
      "0",
      "--wayland-display",
      path.join(options.home, "wayland-qubes"),
      "--",
      ...app,
    ],
    {
      cwd: repoRoot,
      stdio: ["ignore", "pipe", "pipe"],
      detached: true,
      env: {
        PATH: process.env.PATH,
        HOME: options.home,
        LANG: "C.UTF-8",
        XDG_RUNTIME_DIR: options.home,
        VCHAN_SOCKET_DIR: options.dir,
        VCHAN_DOMAIN: String(options.domain),
        QUBES_VM_NAME: options.name,
      },
    },
  );
  return track(list, child, `qubes-gui-agent (${options.name})`);
}

/** Options of {@link startGuidProcess}. */
export interface GuidProcessOptions {
  /** VCHAN_SOCKET_DIR. */
  dir: string;
  domain: number;
  name: string;
  label: string;
  /** The host compositor's socket path (WAYLAND_DISPLAY). */
  display: string;
  clipboardDir: string;
  /** A command and its arguments that run qubes-guid's command line (prlimit ...); default none. */
  wrapper?: string[];
}

/** Starts a real qubes-guid for one domain, in a process group of its own. */
export function startGuidProcess(list: Started[], options: GuidProcessOptions): Started {
  const node = process.execPath;
  const command = [
    ...(options.wrapper ?? []),
    node,
    path.join(repoRoot, "bin", "qubes-guid.js"),
    "-d",
    String(options.domain),
    "-N",
    options.name,
    "-l",
    options.label,
    "-v",
    "--clipboard-dir",
    options.clipboardDir,
  ];
  const child = spawn(command[0] as string, command.slice(1), {
    cwd: repoRoot,
    stdio: ["ignore", "pipe", "pipe"],
    detached: true,
    env: {
      ...process.env,
      WAYLAND_DISPLAY: options.display,
      VCHAN_SOCKET_DIR: options.dir,
      VCHAN_DOMAIN: "0",
    },
  });
  return track(list, child, `qubes-guid (${options.name})`);
}
