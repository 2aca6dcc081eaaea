/**
 * Launchers for real Wayland apps in tests of the agent (its compositor
 * alone, or the whole agent with a daemon peer): each app runs in a given
 * runtime dir and display, its output is collected, and readiness is an
 * event (a window appearing, a line printed), never a sleep. A missing
 * program fails the test with the package to install.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { chmodSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";

import { createCompositor, type Compositor, type SeatControl, type ShellWindow } from "../../compositor/index.ts";
import { compileKeymap } from "../../gui-agent/index.ts";
import { afterEach, beforeEach } from "vitest";

import { requireProgram } from "./compositors.ts";
import { READY_TIMEOUT_MS } from "./processes.ts";

/** Where apps find the compositor: XDG_RUNTIME_DIR and WAYLAND_DISPLAY (a name in it, or an absolute path). */
export interface AppDisplay {
  runtimeDir: string;
  display: string;
}

/** Options of {@link startApp}. */
export interface AppOptions {
  /** The Debian package that has the program (for the error when it is missing). */
  aptPackage?: string;
  /** Extra environment (HOME defaults to the runtime dir, LANG to C.UTF-8). */
  env?: NodeJS.ProcessEnv;
  /** WAYLAND_DEBUG=1: libwayland traces every request and event on stderr. */
  debug?: boolean;
  /** Line-buffered stdout (through stdbuf), for apps that print events with stdio (wev). */
  lineBuffered?: boolean;
  cwd?: string;
  /** Bytes written to stdin, then closed (stdin is /dev/null otherwise). */
  stdin?: string;
}

/** A running app: its process, what it printed, and how to wait for it or end it. */
export interface RunningApp {
  readonly program: string;
  readonly child: ChildProcess;
  /** stdout so far. */
  stdout(): string;
  /** stderr so far (the WAYLAND_DEBUG trace goes here). */
  stderr(): string;
  /** Resolves when the process has ended. */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /**
   * Resolves with the `count`-th match (default the first) of `pattern` in
   * stdout, checked as output arrives; rejects if the app ends first or after
   * `timeoutMs`. With a count above 1, matches are counted line by line, so
   * the pattern must not span lines.
   */
  waitForStdout(pattern: RegExp, timeoutMs?: number, count?: number): Promise<RegExpMatchArray>;
  /** The same for stderr (where WAYLAND_DEBUG traces go). */
  waitForStderr(pattern: RegExp, timeoutMs?: number, count?: number): Promise<RegExpMatchArray>;
  /** SIGTERM (SIGKILL after 3 s) and waits for the end. */
  stop(): Promise<void>;
}

/** Starts `program` as a client of `display`. */
export function startApp(
  program: string,
  args: readonly string[],
  display: AppDisplay,
  options: AppOptions = {},
): RunningApp {
  requireProgram(program, options.aptPackage);
  const command = options.lineBuffered === true ? "stdbuf" : program;
  const commandArgs = options.lineBuffered === true ? ["-oL", program, ...args] : [...args];
  if (options.lineBuffered === true) requireProgram("stdbuf", "coreutils");
  const child = spawn(command, commandArgs, {
    cwd: options.cwd,
    env: {
      PATH: process.env.PATH,
      HOME: display.runtimeDir,
      LANG: "C.UTF-8",
      XDG_RUNTIME_DIR: display.runtimeDir,
      WAYLAND_DISPLAY: display.display,
      ...(options.debug === true ? { WAYLAND_DEBUG: "1" } : {}),
      ...options.env,
    },
    stdio: [options.stdin !== undefined ? "pipe" : "ignore", "pipe", "pipe"],
  });
  if (options.stdin !== undefined) child.stdin?.end(options.stdin);
  let out = "";
  let err = "";
  const watchers = new Set<() => void>();
  child.stdout?.setEncoding("utf8").on("data", (chunk: string) => {
    out += chunk;
    for (const watcher of [...watchers]) watcher();
  });
  child.stderr?.setEncoding("utf8").on("data", (chunk: string) => {
    err += chunk;
    for (const watcher of [...watchers]) watcher();
  });
  let ended = false;
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.on("error", (error) => {
      err += `\n${error.message}`;
      ended = true;
      resolve({ code: null, signal: null });
      for (const watcher of [...watchers]) watcher();
    });
    child.on("close", (code, signal) => {
      ended = true;
      resolve({ code, signal });
      for (const watcher of [...watchers]) watcher();
    });
  });
  const waitFor = (
    stream: "stdout" | "stderr",
    pattern: RegExp,
    timeoutMs = 10_000,
    count = 1,
  ): Promise<RegExpMatchArray> =>
    new Promise((resolve, reject) => {
      const global = new RegExp(pattern.source, pattern.flags.includes("g") ? pattern.flags : `${pattern.flags}g`);
      let seen = 0;
      let searched = 0;
      const text = (): string => (stream === "stdout" ? out : err);
      const timer = setTimeout(
        () =>
          finish(
            new Error(
              `${program} did not print ${pattern} within ${timeoutMs} ms; it printed:\n${text().slice(-3000)}`,
            ),
          ),
        timeoutMs,
      );
      const check = (): void => {
        const all = text();
        if (count === 1) {
          // One match: search everything, so a pattern may span lines that arrived in different chunks.
          const match = all.match(pattern);
          if (match !== null) {
            finish(undefined, match);
            return;
          }
        } else {
          // Counting: whole lines are searched, each once, so a long trace costs linear time (one-line patterns).
          const end = all.lastIndexOf("\n") + 1;
          for (const match of all.slice(searched, end).matchAll(global)) {
            if (++seen === count) {
              finish(undefined, match);
              return;
            }
          }
          searched = Math.max(searched, end);
        }
        if (ended)
          finish(new Error(`${program} ended before printing ${pattern}:\n${out.slice(-2000)}\n${err.slice(-2000)}`));
      };
      const finish = (error?: Error, match?: RegExpMatchArray): void => {
        clearTimeout(timer);
        watchers.delete(check);
        if (error !== undefined) reject(error);
        else resolve(match as RegExpMatchArray);
      };
      watchers.add(check);
      check();
    });
  const app: RunningApp = {
    program,
    child,
    stdout: () => out,
    stderr: () => err,
    exited,
    waitForStdout: (pattern, timeoutMs, count) => waitFor("stdout", pattern, timeoutMs, count),
    waitForStderr: (pattern, timeoutMs, count) => waitFor("stderr", pattern, timeoutMs, count),
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill("SIGTERM");
        const timer = setTimeout(() => child.kill("SIGKILL"), 3000);
        await exited;
        clearTimeout(timer);
      }
      await exited;
    },
  };
  return app;
}

/** weston-simple-shm: a 250×250 animation that needs prompt buffer release. */
export function startWestonSimpleShm(display: AppDisplay, options: AppOptions = {}): RunningApp {
  return startApp("weston-simple-shm", [], display, { aptPackage: "weston", ...options });
}

/** foot, running `command` (default: its shell) in the terminal; `footOptions` are `-o key=value` settings. */
export function startFoot(
  display: AppDisplay,
  command: readonly string[] = [],
  options: AppOptions & { footOptions?: readonly string[] } = {},
): RunningApp {
  const settings = (options.footOptions ?? []).flatMap((setting) => ["-o", setting]);
  const args = [...settings, "-o", "tweak.render-timer=none", ...(command.length > 0 ? ["-e", ...command] : [])];
  return startApp("foot", args, display, { aptPackage: "foot", ...options });
}

/** wev: prints every input event it gets on stdout, line-buffered (see {@link parseWevEvents}). */
export function startWev(display: AppDisplay, options: AppOptions = {}): RunningApp {
  return startApp("wev", [], display, { aptPackage: "wev", lineBuffered: true, ...options });
}

/** gtk3-demo on the Wayland backend. */
export function startGtk3Demo(display: AppDisplay, args: readonly string[] = [], options: AppOptions = {}): RunningApp {
  return startApp("gtk3-demo", args, display, {
    aptPackage: "gtk-3-examples",
    ...options,
    env: { GDK_BACKEND: "wayland", NO_AT_BRIDGE: "1", ...options.env },
  });
}

/** weston-terminal (subsurfaces, viewporter). */
export function startWestonTerminal(
  display: AppDisplay,
  args: readonly string[] = [],
  options: AppOptions = {},
): RunningApp {
  return startApp("weston-terminal", args, display, { aptPackage: "weston", ...options });
}

/** wl-copy TEXT in the foreground (it stays until another selection replaces its own). */
export function startWlCopy(display: AppDisplay, text: string, options: AppOptions = {}): RunningApp {
  return startApp("wl-copy", ["--foreground", "--", text], display, { aptPackage: "wl-clipboard", ...options });
}

/** wl-paste, printing the selection without an added newline, then ending. */
export function startWlPaste(display: AppDisplay, options: AppOptions = {}): RunningApp {
  return startApp("wl-paste", ["--no-newline"], display, { aptPackage: "wl-clipboard", ...options });
}

/**
 * Resolves with the first window (existing or new) of `compositor` that
 * satisfies `predicate` once it is mapped; rejects when `app` ends first or
 * after `timeoutMs`, with what the app printed.
 */
export function waitForWindow(
  compositor: Compositor,
  app: RunningApp | null,
  predicate: (window: ShellWindow) => boolean = () => true,
  timeoutMs = 10_000,
): Promise<ShellWindow> {
  return new Promise((resolve, reject) => {
    const cleanups: Array<() => void> = [];
    let settled = false;
    const finish = (error: Error | null, window?: ShellWindow): void => {
      if (settled) return;
      settled = true;
      for (const cleanup of cleanups) cleanup();
      if (error !== null) reject(error);
      else resolve(window as ShellWindow);
    };
    const check = (window: ShellWindow): void => {
      if (window.mapped && predicate(window)) finish(null, window);
    };
    const watch = (window: ShellWindow): void => {
      cleanups.push(window.events.map.add(() => check(window)));
      cleanups.push(window.events.title.add(() => check(window)));
      cleanups.push(window.events.appId.add(() => check(window)));
      check(window);
    };
    for (const window of compositor.windows) watch(window);
    cleanups.push(compositor.events.newWindow.add(watch));
    const timer = setTimeout(
      () => finish(new Error(`no matching window within ${timeoutMs} ms${describe(app)}`)),
      timeoutMs,
    );
    cleanups.push(() => clearTimeout(timer));
    if (app !== null) {
      void app.exited.then(({ code, signal }) =>
        finish(new Error(`${app.program} ended (${code ?? signal}) before its window appeared${describe(app)}`)),
      );
    }
  });
}

/**
 * Resolves with the first mapped window of `app` that satisfies `predicate`:
 * an app's readiness signal, so the wait is as long as its start-up may take
 * on a loaded machine ({@link READY_TIMEOUT_MS}); the test's own waits start
 * after it. Rejects, saying the app never became ready, when it ends first or
 * that passes.
 */
export function waitForFirstWindow(
  compositor: Compositor,
  app: RunningApp,
  predicate: (window: ShellWindow) => boolean = () => true,
): Promise<ShellWindow> {
  return waitForWindow(compositor, app, predicate, READY_TIMEOUT_MS).catch((error: unknown) => {
    throw new Error(`${app.program} never became ready: ${(error as Error).message}`);
  });
}

function describe(app: RunningApp | null): string {
  if (app === null) return "";
  return `\n--- ${app.program} stdout ---\n${app.stdout().slice(-2000)}\n--- stderr ---\n${app.stderr().slice(-3000)}`;
}

/** One event wev printed: the interface, the event name, and the text of its lines. */
export interface WevEvent {
  interface: string;
  event: string;
  text: string;
}

/** Parses wev's output: `[id: interface] event: fields` lines and their indented continuation lines. */
export function parseWevEvents(output: string): WevEvent[] {
  const events: WevEvent[] = [];
  for (const line of output.split("\n")) {
    const head = /^\[\s*\d+:\s*([\w.]+)\]\s+([\w_]+):\s?(.*)$/.exec(line);
    if (head !== null) {
      events.push({ interface: head[1] as string, event: head[2] as string, text: head[3] as string });
    } else if (/^\s+\S/.test(line) && events.length > 0) {
      (events[events.length - 1] as WevEvent).text += `\n${line.trim()}`;
    }
  }
  return events;
}

/** An agent compositor alone (no Qubes side) in a fresh runtime dir, for app tests. */
export interface CompositorUnderTest {
  compositor: Compositor;
  /** What apps need to connect. */
  display: AppDisplay;
  /** Destroys the compositor and removes the runtime dir. */
  destroy(): void;
}

/** Starts an agent compositor on a 1920×1080 output with the US keymap, its socket in a fresh runtime dir. */
export async function startCompositorUnderTest(
  outputSize = { width: 1920, height: 1080 },
): Promise<CompositorUnderTest> {
  const runtimeDir = mkdtempSync(path.join(tmpdir(), "agent-compositor-"));
  chmodSync(runtimeDir, 0o700);
  const keymap = await compileKeymap();
  const errors: string[] = [];
  const compositor = createCompositor({
    socket: path.join(runtimeDir, "wayland-agent"),
    outputSize,
    keymap,
    onHandlerError: (failure) => errors.push(`${failure.request}: ${String(failure.error)}`),
  });
  return {
    compositor,
    display: { runtimeDir, display: "wayland-agent" },
    destroy: () => {
      compositor.destroy();
      rmSync(runtimeDir, { recursive: true, force: true });
      if (errors.length > 0) throw new Error(`compositor handlers threw: ${errors.join("; ")}`);
    },
  };
}

/** evdev codes of the US layout's printable keys: character → [code, shifted]. */
const US_KEYS: ReadonlyMap<string, readonly [number, boolean]> = (() => {
  const keys = new Map<string, readonly [number, boolean]>();
  const rows: Array<[string, string, number]> = [
    ["1234567890-=", "!@#$%^&*()_+", 2],
    ["qwertyuiop[]", "QWERTYUIOP{}", 16],
    ["asdfghjkl;'`", 'ASDFGHJKL:"~', 30],
    ["\\zxcvbnm,./", "|ZXCVBNM<>?", 43],
  ];
  for (const [plain, shifted, first] of rows) {
    [...plain].forEach((char, i) => keys.set(char, [first + i, false]));
    [...shifted].forEach((char, i) => keys.set(char, [first + i, true]));
  }
  keys.set(" ", [57, false]);
  keys.set("\n", [28, false]);
  keys.set("\t", [15, false]);
  return keys;
})();

/** evdev KEY_LEFTSHIFT and KEY_LEFTCTRL. */
export const KEY_LEFTSHIFT = 42;
export const KEY_LEFTCTRL = 29;

/** Presses and releases `code` (with `modifiers` held around it) through the seat. */
export function pressKey(seat: SeatControl, code: number, modifiers: readonly number[] = []): void {
  for (const modifier of modifiers) seat.key(modifier, true);
  seat.key(code, true);
  seat.key(code, false);
  for (const modifier of [...modifiers].reverse()) seat.key(modifier, false);
}

/** Types ASCII `text` through the seat as a US keyboard would (Shift for capitals and symbols). */
export function typeText(seat: SeatControl, text: string): void {
  for (const char of text) {
    const key = US_KEYS.get(char);
    if (key === undefined) throw new RangeError(`no US key types ${JSON.stringify(char)}`);
    pressKey(seat, key[0], key[1] ? [KEY_LEFTSHIFT] : []);
  }
}

/**
 * Registers beforeEach/afterEach hooks that start a fresh compositor for
 * each test (handed to `started`) and, after it, stop the apps and
 * disconnect the clients the test pushed into `apps` and `clients`.
 */
export function useCompositorUnderTest(
  started: (under: CompositorUnderTest) => void,
  apps: RunningApp[],
  clients: Array<{ destroy(): void }> = [],
): void {
  let current: CompositorUnderTest | undefined;
  // compileKeymap runs xkbcli: a process start, allowed as long as the machine needs.
  beforeEach(async () => {
    current = await startCompositorUnderTest();
    started(current);
  }, READY_TIMEOUT_MS);
  afterEach(async () => {
    for (const app of apps.splice(0)) await app.stop();
    for (const client of clients.splice(0)) client.destroy();
    current?.destroy();
  });
}
