/**
 * `npm start`: the whole system on one machine. qubes-gui-desktop (a Wayland
 * compositor shown in a browser), then two domains (or more), each a
 * gui-agent running an app and a qubes-guid showing its windows on the
 * desktop, framed in the domain's label colour. With --wayland, the windows
 * go to the Wayland desktop WAYLAND_DISPLAY names instead.
 *
 * Start-up lines on stdout say what started and where; every part's logs go
 * to stderr through pino, each line with its domain and part. Ctrl+C stops
 * every process started here and removes their sockets and directories.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

import pino, { type Logger } from "pino";

import { logDestination } from "../bin/log-destination.ts";
import { labelByName } from "../decorator/index.ts";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");

const USAGE = `usage: npm start [-- options]

Starts qubes-gui-desktop, then N domains (default 2: "work" in blue, "personal" in green),
each a qubes-gui-agent running an app and a qubes-guid showing its windows on the desktop,
and prints the URL (with its access token) to open in a browser.

  --domains N        domains to start, 1..6 (default 2)
  --labels LIST      their label colours, comma-separated, in order
                     (default blue,green,red,orange,purple,yellow; any of
                     red orange yellow green gray blue purple black)
  --app COMMAND      the app every domain runs (default: foot, else weston-terminal,
                     else the demo app, qubes-demo-app)
  --size WxH         the desktop's output (default 1280x800)
  --port PORT        the viewer's port on 127.0.0.1 (default 0: any free port)
  --listen HOST      the viewer's address (default 127.0.0.1)
  --wayland          show the windows on the Wayland desktop of WAYLAND_DISPLAY instead
  -v, --verbose      protocol tracing: guid's messages, the agents' and the desktop's Wayland
  -h, --help         this text

Ctrl+C stops everything. Exit status: 0 after Ctrl+C, 1 when a part fails to start, 2 for bad
options.`;

const DOMAIN_NAMES = ["work", "personal", "untrusted", "banking", "vault", "dev"] as const;
const DEFAULT_LABELS = ["blue", "green", "red", "orange", "purple", "yellow"] as const;
const GUI_DOMAIN = 0;
const FIRST_DOMAIN_ID = 11;
/** How long one part has to become ready: a start-up, which a loaded machine may stretch. */
const READY_MS = 120_000;

const children: Array<{ name: string; child: ChildProcess }> = [];
const cleanups: Array<() => void> = [];
let stopping = false;

function has(program: string): boolean {
  return spawnSync("sh", ["-c", `command -v '${program.replace(/'/g, "")}'`], { encoding: "utf8" }).status === 0;
}

const PINO_LEVELS: Readonly<Record<number, "trace" | "debug" | "info" | "warn" | "error" | "fatal">> = {
  10: "trace",
  20: "debug",
  30: "info",
  40: "warn",
  50: "error",
  60: "fatal",
};

/**
 * Passes a part's output line to our log: a pino JSON line keeps its level,
 * message and fields (with the part's own name, pid and time dropped); any
 * other line (an app's own output) goes at info as `line`.
 */
function relay(log: Logger, text: string): void {
  if (text.startsWith("{")) {
    try {
      const entry = JSON.parse(text) as Record<string, unknown>;
      const level = PINO_LEVELS[entry.level as number];
      if (level !== undefined) {
        const { level: _level, time: _time, pid: _pid, hostname: _host, msg, name, ...fields } = entry;
        log[level]({ program: name, ...fields }, typeof msg === "string" ? msg : "");
        return;
      }
    } catch {
      // Not JSON after all: logged as a line.
    }
  }
  if (text.trim() !== "") log.info({ line: text }, "output");
}

/** Starts a part in its own process group; its output lines go to `log` (and to `onLine`). */
function start(
  log: Logger,
  name: string,
  command: string,
  args: string[],
  env: NodeJS.ProcessEnv,
): { child: ChildProcess; lines: (listener: (line: string) => void) => () => void } {
  const child = spawn(command, args, { env, stdio: ["ignore", "pipe", "pipe"], detached: true });
  children.push({ name, child });
  const listeners = new Set<(line: string) => void>();
  for (const stream of [child.stdout, child.stderr]) {
    createInterface({ input: stream as NodeJS.ReadableStream }).on("line", (line) => {
      relay(log, line);
      for (const listener of [...listeners]) listener(line);
    });
  }
  child.on("exit", (code, signal) => {
    if (!stopping) log.warn({ status: code ?? signal }, `${name} exited`);
  });
  return {
    child,
    lines: (listener) => {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
  };
}

/** Resolves with the first output line of a part matching `pattern`; rejects when it exits first, or after READY_MS. */
function waitForLine(part: ReturnType<typeof start>, pattern: RegExp, what: string): Promise<RegExpExecArray> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => finish(new Error(`${what} did not happen within ${READY_MS} ms`)), READY_MS);
    const stop = part.lines((line) => {
      const match = pattern.exec(line);
      if (match !== null) finish(undefined, match);
    });
    const onExit = (code: number | null, signal: string | null): void =>
      finish(new Error(`it exited (${code ?? signal}) before ${what}`));
    part.child.once("exit", onExit);
    function finish(error?: Error, match?: RegExpExecArray): void {
      clearTimeout(timer);
      stop();
      part.child.off("exit", onExit);
      if (error !== undefined) reject(error);
      else resolve(match as RegExpExecArray);
    }
  });
}

function stopAll(): Promise<void> {
  stopping = true;
  const alive = children.filter(({ child }) => child.exitCode === null && child.signalCode === null);
  return new Promise((resolve) => {
    let left = alive.length;
    const done = (): void => {
      for (const cleanup of cleanups.splice(0)) cleanup();
      resolve();
    };
    if (left === 0) {
      done();
      return;
    }
    const killer = setTimeout(() => {
      for (const { child } of alive) {
        try {
          process.kill(-(child.pid as number), "SIGKILL");
        } catch {
          // Gone already.
        }
      }
    }, 3000);
    for (const { child } of alive) {
      child.once("exit", () => {
        left -= 1;
        if (left === 0) {
          clearTimeout(killer);
          done();
        }
      });
      try {
        process.kill(-(child.pid as number), "SIGTERM");
      } catch {
        child.kill("SIGTERM");
      }
    }
  });
}

interface StartOptions {
  count: number;
  labels: string[];
  app: string[];
  appName: string;
  size: string;
  port: number;
  listen: string;
  wayland: boolean;
  verbose: boolean;
}

function parseOptions(argv: string[]): StartOptions | "help" {
  const { values } = parseArgs({
    args: argv,
    options: {
      domains: { type: "string", default: "2" },
      labels: { type: "string" },
      app: { type: "string" },
      size: { type: "string", default: "1280x800" },
      port: { type: "string", default: "0" },
      listen: { type: "string", default: "127.0.0.1" },
      wayland: { type: "boolean", default: false },
      verbose: { type: "boolean", short: "v", default: false },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help === true) return "help";
  const count = Number(values.domains);
  if (!/^\d+$/.test(values.domains) || count < 1 || count > DOMAIN_NAMES.length) {
    throw new Error(`--domains must be 1..${DOMAIN_NAMES.length}, got "${values.domains}"`);
  }
  const labels = values.labels === undefined ? [...DEFAULT_LABELS] : values.labels.split(",");
  for (const label of labels) {
    if (labelByName(label) === undefined) {
      throw new Error(`--labels: "${label}" is not a label (red orange yellow green gray blue purple black)`);
    }
  }
  if (labels.length < count) throw new Error(`--labels names ${labels.length} colours for ${count} domains`);
  if (!/^\d{3,5}x\d{3,5}$/.test(values.size)) throw new Error(`--size must be WxH, got "${values.size}"`);
  const port = Number(values.port);
  if (!/^\d+$/.test(values.port) || port > 65535) throw new Error(`--port must be 0..65535, got "${values.port}"`);
  let app: string[];
  let appName: string;
  if (values.app !== undefined) {
    app = values.app.split(" ").filter((word) => word !== "");
    if (app.length === 0) throw new Error("--app is empty");
    appName = app[0] as string;
  } else {
    const installed = ["foot", "weston-terminal"].find(has);
    app = installed !== undefined ? [installed] : [process.execPath, path.join(root, "bin", "qubes-demo-app.js")];
    appName = installed ?? "qubes-demo-app";
  }
  return {
    count,
    labels,
    app,
    appName,
    size: values.size,
    port,
    listen: values.listen,
    wayland: values.wayland,
    verbose: values.verbose,
  };
}

async function main(): Promise<number> {
  let options: StartOptions | "help";
  try {
    options = parseOptions(process.argv.slice(2));
  } catch (error) {
    process.stderr.write(`npm start: ${(error as Error).message}\n(npm start -- --help for the options)\n`);
    return 2;
  }
  if (options === "help") {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const log: Logger = pino({ name: "npm-start", level: options.verbose ? "trace" : "info" }, logDestination());
  const say = (line: string): void => void process.stdout.write(`${line}\n`);

  let interruptedBy: (() => void) | undefined;
  const interrupted = new Promise<"stop">((resolve) => (interruptedBy = () => resolve("stop")));
  process.once("SIGINT", () => interruptedBy?.());
  process.once("SIGTERM", () => interruptedBy?.());

  const socketDir = mkdtempSync(path.join(tmpdir(), "qubes-start-vchan-"));
  cleanups.push(() => rmSync(socketDir, { recursive: true, force: true }));
  const node = process.execPath;
  try {
    let host: NodeJS.ProcessEnv;
    let desktop: ReturnType<typeof start> | null = null;
    if (options.wayland) {
      const display = process.env.WAYLAND_DISPLAY ?? "";
      if (display === "") throw new Error("--wayland: WAYLAND_DISPLAY is not set");
      host = { WAYLAND_DISPLAY: display, XDG_RUNTIME_DIR: process.env.XDG_RUNTIME_DIR };
      say(`on the Wayland desktop ${display}`);
    } else {
      const desktopDir = mkdtempSync(path.join(tmpdir(), "qubes-start-desktop-"));
      cleanups.push(() => rmSync(desktopDir, { recursive: true, force: true }));
      const socket = path.join(desktopDir, "wayland-qubes-desktop");
      desktop = start(
        log.child({ part: "desktop" }),
        "qubes-gui-desktop",
        node,
        [
          path.join(root, "bin", "qubes-gui-desktop.js"),
          "--socket",
          socket,
          "--size",
          options.size,
          "--port",
          String(options.port),
          "--listen",
          options.listen,
          ...(options.verbose ? ["-v", "-v"] : []),
        ],
        { PATH: process.env.PATH, HOME: desktopDir, LANG: "C.UTF-8" },
      );
      const ready = await Promise.race([waitForLine(desktop, /open (http:\/\/\S+)/, "the desktop's URL"), interrupted]);
      if (ready === "stop") {
        await stopAll();
        return 0;
      }
      host = { WAYLAND_DISPLAY: socket };
      say(`qubes-gui-desktop: ${options.size}, Wayland socket ${socket}`);
      say(`open ${ready[1]}`);
    }

    // The global clipboard every guid shares: it crosses domains only on the user's Ctrl+Shift+C/V.
    const clipboardDir = path.join(socketDir, "clipboard");
    mkdirSync(clipboardDir, { mode: 0o700 });
    const shown: Array<Promise<unknown>> = [];
    for (let i = 0; i < options.count; i++) {
      const name = DOMAIN_NAMES[i] as string;
      const label = options.labels[i] as string;
      const domain = FIRST_DOMAIN_ID + i;
      const domainDir = path.join(socketDir, `domain-${name}`);
      mkdirSync(domainDir, { mode: 0o700 });
      const domainLog = log.child({ qube: name });
      const guid = start(
        domainLog.child({ part: "guid" }),
        `${name}'s qubes-guid`,
        node,
        [
          path.join(root, "bin", "qubes-guid.js"),
          "-d",
          String(domain),
          "-N",
          name,
          "-l",
          label,
          "--clipboard-dir",
          clipboardDir,
          ...(options.verbose ? ["-v", "-v", "-v"] : ["-v"]),
        ],
        { ...process.env, ...host, VCHAN_SOCKET_DIR: socketDir, VCHAN_DOMAIN: String(GUI_DOMAIN) },
      );
      const connected = waitForLine(guid, /agent connected/, `${name}'s agent connecting to its guid`);
      start(
        domainLog.child({ part: "agent" }),
        `${name}'s qubes-gui-agent`,
        node,
        [
          path.join(root, "bin", "qubes-gui-agent.js"),
          "-d",
          String(GUI_DOMAIN),
          "--wayland-display",
          path.join(domainDir, "wayland-qubes"),
          "--",
          ...options.app,
          ...(options.appName === "qubes-demo-app" ? ["--name", name] : []),
        ],
        {
          PATH: process.env.PATH,
          HOME: domainDir,
          LANG: "C.UTF-8",
          XDG_RUNTIME_DIR: domainDir,
          VCHAN_SOCKET_DIR: socketDir,
          VCHAN_DOMAIN: String(domain),
          QUBES_VM_NAME: name,
          ...(options.verbose ? { WAYLAND_DEBUG: "server" } : {}),
        },
      );
      say(`${name}: a domain (${label}) running ${options.appName}, its agent and its qubes-guid`);
      shown.push(connected);
      // On our desktop we see each domain's first window arrive.
      if (desktop !== null) {
        shown.push(
          waitForLine(
            desktop,
            new RegExp(`window shown.*\\[${name}\\]|\\[${name}\\].*window shown`),
            `a window of ${name} on the desktop`,
          ),
        );
      }
    }
    const outcome = await Promise.race([Promise.all(shown), interrupted]);
    if (outcome === "stop") {
      await stopAll();
      return 0;
    }
    say(`ready: ${options.count} domains, each with its app shown in its label colour; Ctrl+C stops`);
    await interrupted;
    await stopAll();
    return 0;
  } catch (error) {
    process.stderr.write(`npm start: ${(error as Error).message}\n`);
    await stopAll();
    return 1;
  }
}

process.exitCode = await main();
