/**
 * `qubes-gui-agent`: the agent's command line, Qubes-compatible where
 * upstream's has the same flag (-d, -v, -q).
 *
 *   qubes-gui-agent [-d GUIDOMID] [--vchan socket|shm|xen] [--wayland-display NAME]
 *                   [--keyboard-layout L] [--keyboard-variant V] [--keyboard-options O]
 *                   [-v|-q] [-- COMMAND ARGS...]
 *
 * Own domain id from VCHAN_DOMAIN and rendezvous directory from
 * VCHAN_SOCKET_DIR, as qubes-core-vchan-socket. Every failure to start is one
 * line on stderr and an exit status of its kind (see USAGE); "agent started"
 * is logged only once everything, COMMAND included, runs.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { accessSync, constants, readFileSync, statSync } from "node:fs";
import path from "node:path";
import { parseArgs } from "node:util";

import pino from "pino";

import { logDestination } from "../bin/log-destination.ts";
import { QUBES_GUID_PROTOCOL_VERSION, formatVersion } from "../protocol/index.ts";
import { isDomainId, ownDomainFromEnvironment, type DomainId } from "../shm/index.ts";
import type { VchanBackend } from "../vchan/index.ts";
import { startAgent, type GuiAgent } from "./agent.ts";

const USAGE = `usage: qubes-gui-agent [-d GUIDOMID] [--vchan socket|shm|xen] [--wayland-display NAME]
                       [--keyboard-layout LAYOUT] [--keyboard-variant VARIANT] [--keyboard-options OPTIONS]
                       [-v | -q] [-- COMMAND [ARGS...]]

  -d, --gui-domain ID     domain id of the GUI daemon (default 0)
      --vchan BACKEND     vchan transport: socket (qubes-core-vchan-socket), shm or xen
                          (default: xen on Xen, else socket)
      --wayland-display N the Wayland socket the domain's apps use, a name in
                          $XDG_RUNTIME_DIR or an absolute path (default wayland-qubes)
      --keyboard-layout L xkb layout (default us); also --keyboard-variant, --keyboard-options
  -v, --verbose           more logging (repeat for more)
  -q, --quiet             less logging
  -h, --help              this text
      --version           the program and protocol version
  -- COMMAND ARGS         start COMMAND with WAYLAND_DISPLAY set to the agent's socket

Environment: VCHAN_DOMAIN (this domain's id, default 0), VCHAN_SOCKET_DIR (default /var/run/vchan;
created with mode 0700 when missing), XDG_RUNTIME_DIR (where a --wayland-display name lives).
Logs go to stderr: readable lines on a terminal, JSON lines otherwise.

Exit status: 0 after SIGTERM or SIGINT; 1 when the agent cannot start or stops serving (a socket
that another live process serves, a backend this machine lacks, a directory it cannot create, the
native addon not built); 2 for bad flags or environment (VCHAN_DOMAIN, XDG_RUNTIME_DIR); 126 when
COMMAND cannot be run, 127 when it is not found. COMMAND's own exit does not stop the agent.`;

/** Exit statuses (see USAGE). */
const EXIT_FAILURE = 1;
const EXIT_USAGE = 2;
const EXIT_COMMAND_NOT_RUNNABLE = 126;
const EXIT_COMMAND_NOT_FOUND = 127;

/** A command-line problem: printed with the usage, exit status 2. */
class UsageError extends Error {}

/** A problem with the environment (VCHAN_DOMAIN, XDG_RUNTIME_DIR): one line, exit status 2. */
class EnvironmentError extends Error {}

/** COMMAND cannot be run: one line, exit status 126 or 127. */
class CommandError extends Error {
  constructor(
    message: string,
    readonly status: number,
  ) {
    super(message);
  }
}

function parse(argv: string[]) {
  const separator = argv.indexOf("--");
  const own = separator >= 0 ? argv.slice(0, separator) : argv;
  const command = separator >= 0 ? argv.slice(separator + 1) : [];
  let parsed;
  try {
    parsed = parseArgs({
      args: own,
      options: {
        "gui-domain": { type: "string", short: "d", default: "0" },
        vchan: { type: "string" },
        "wayland-display": { type: "string", default: "wayland-qubes" },
        "keyboard-layout": { type: "string", default: "us" },
        "keyboard-variant": { type: "string" },
        "keyboard-options": { type: "string" },
        verbose: { type: "boolean", short: "v", multiple: true },
        quiet: { type: "boolean", short: "q", multiple: true },
        help: { type: "boolean", short: "h" },
        version: { type: "boolean" },
      },
      allowPositionals: false,
      strict: true,
    });
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  const values = parsed.values;
  const guiText = values["gui-domain"] as string;
  const guiDomain = Number(guiText);
  if (!/^\d+$/.test(guiText) || !isDomainId(guiDomain)) {
    throw new UsageError(`-d: not a domain id (0..32751): ${JSON.stringify(guiText)}`);
  }
  const vchan = values.vchan;
  if (vchan !== undefined && vchan !== "socket" && vchan !== "shm" && vchan !== "xen") {
    throw new UsageError(`--vchan: expected socket, shm or xen, got ${JSON.stringify(vchan)}`);
  }
  const display = values["wayland-display"] as string;
  if (display === "" || (!path.isAbsolute(display) && display.includes("/"))) {
    throw new UsageError(
      `--wayland-display: expected a socket name or an absolute path, got ${JSON.stringify(display)}`,
    );
  }
  if (command.length === 0 && separator >= 0) throw new UsageError("-- must be followed by a command");
  const verbosity = (values.verbose?.length ?? 0) - (values.quiet?.length ?? 0);
  return {
    help: values.help === true,
    version: values.version === true,
    guiDomain,
    vchan: vchan as VchanBackend | undefined,
    display,
    keyboard: {
      layout: values["keyboard-layout"] as string,
      variant: values["keyboard-variant"],
      options: values["keyboard-options"],
    },
    level:
      verbosity >= 2
        ? "trace"
        : verbosity === 1
          ? "debug"
          : verbosity === 0
            ? "info"
            : verbosity === -1
              ? "warn"
              : "error",
    command,
  };
}

function packageVersion(): string {
  const text = readFileSync(new URL("../package.json", import.meta.url), "utf8");
  return (JSON.parse(text) as { version: string }).version;
}

/** This domain's id and, for a --wayland-display name, a runtime directory that exists; else EnvironmentError. */
function checkEnvironment(display: string, env: NodeJS.ProcessEnv = process.env): DomainId {
  let ownDomain: DomainId;
  try {
    ownDomain = ownDomainFromEnvironment(env);
  } catch (error) {
    throw new EnvironmentError((error as Error).message);
  }
  if (path.isAbsolute(display)) return ownDomain;
  const runtimeDir = env["XDG_RUNTIME_DIR"];
  if (runtimeDir === undefined || runtimeDir === "") {
    throw new EnvironmentError("XDG_RUNTIME_DIR is not set: give --wayland-display an absolute path or set it");
  }
  let isDirectory = false;
  try {
    isDirectory = statSync(runtimeDir).isDirectory();
  } catch {
    // Missing: said below.
  }
  if (!isDirectory) {
    throw new EnvironmentError(
      `XDG_RUNTIME_DIR=${runtimeDir} is not a directory (the login session makes it, mode 0700): ` +
        "create it or give --wayland-display an absolute path",
    );
  }
  return ownDomain;
}

/** Where `file` would be run from: itself when it names a path, else the first match on PATH; CommandError if none. */
function findCommand(file: string, env: NodeJS.ProcessEnv = process.env): string {
  const candidates = file.includes("/")
    ? [file]
    : (env["PATH"] ?? "")
        .split(":")
        .filter((dir) => dir !== "")
        .map((dir) => path.join(dir, file));
  let found: string | null = null;
  for (const candidate of candidates) {
    try {
      if (!statSync(candidate).isFile()) continue;
    } catch {
      continue;
    }
    found ??= candidate;
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // Not executable: a later PATH entry may be.
    }
  }
  if (found !== null)
    throw new CommandError(`cannot run ${file}: ${found} is not executable`, EXIT_COMMAND_NOT_RUNNABLE);
  throw new CommandError(`cannot run ${file}: command not found`, EXIT_COMMAND_NOT_FOUND);
}

/** Starts COMMAND on the agent's display; resolves once it runs, rejects with a CommandError if it cannot. */
function startCommand(command: readonly string[], socketPath: string): Promise<ChildProcess> {
  const [file, ...args] = command as [string, ...string[]];
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, {
      stdio: "inherit",
      env: {
        ...process.env,
        WAYLAND_DISPLAY: socketPath,
        GDK_BACKEND: "wayland",
        QT_QPA_PLATFORM: "wayland",
      },
    });
    const onError = (error: NodeJS.ErrnoException): void => {
      const notFound = error.code === "ENOENT";
      reject(
        new CommandError(
          `cannot run ${file}: ${notFound ? "command not found" : error.message}`,
          notFound ? EXIT_COMMAND_NOT_FOUND : EXIT_COMMAND_NOT_RUNNABLE,
        ),
      );
    };
    child.once("error", onError);
    child.once("spawn", () => {
      child.off("error", onError);
      resolve(child);
    });
  });
}

/** Why the agent could not start, in one line. */
function startFailure(error: unknown, display: string): string {
  const code = (error as { code?: string }).code;
  if (code === "socket-in-use") return `the Wayland socket ${display} is in use by another compositor`;
  const message = (error as Error).message;
  if (code === "EADDRINUSE") {
    return `${message} (is another qubes-gui-agent running with the same VCHAN_DOMAIN and -d?)`;
  }
  return message;
}

/**
 * Runs the agent CLI; resolves with the exit status on a usage error or a
 * failure to start, else serves until a signal (exit 0) or a fatal failure
 * (exit 1) ends the process.
 */
export async function main(argv: string[]): Promise<number> {
  let options;
  try {
    options = parse(argv);
  } catch (error) {
    if (error instanceof UsageError) {
      process.stderr.write(`qubes-gui-agent: ${error.message}\n${USAGE}\n`);
      return EXIT_USAGE;
    }
    throw error;
  }
  if (options.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  if (options.version) {
    process.stdout.write(
      `qubes-gui-agent ${packageVersion()} (Qubes GUI protocol ${formatVersion(QUBES_GUID_PROTOCOL_VERSION)})\n`,
    );
    return 0;
  }
  let ownDomain: DomainId;
  try {
    ownDomain = checkEnvironment(options.display);
    if (options.command.length > 0) findCommand(options.command[0] as string);
  } catch (error) {
    if (error instanceof EnvironmentError || error instanceof CommandError) {
      process.stderr.write(`qubes-gui-agent: ${error.message}\n`);
      return error instanceof CommandError ? error.status : EXIT_USAGE;
    }
    throw error;
  }
  const log = pino({ name: "qubes-gui-agent", level: options.level }, logDestination());
  let agent: GuiAgent;
  try {
    agent = await startAgent({
      guiDomain: options.guiDomain,
      ownDomain,
      vchan: options.vchan,
      waylandDisplay: options.display,
      keyboard: options.keyboard,
      log,
    });
  } catch (error) {
    process.stderr.write(`qubes-gui-agent: cannot start: ${startFailure(error, options.display)}\n`);
    return EXIT_FAILURE;
  }
  // The agent stopped serving for good (logged where it failed): the domain's apps can no longer be shown.
  agent.once("failed", () => process.exit(EXIT_FAILURE));
  let child: ChildProcess | null = null;
  if (options.command.length > 0) {
    try {
      child = await startCommand(options.command, agent.compositor.socketPath);
    } catch (error) {
      agent.stop();
      if (!(error instanceof CommandError)) throw error;
      process.stderr.write(`qubes-gui-agent: ${error.message}\n`);
      return error.status;
    }
    const command = options.command[0];
    child.on("error", (error) => log.error({ err: error, command }, "the command failed"));
    child.on("exit", (code, signal) => log.info({ command, code, signal }, "command exited; the agent keeps serving"));
  }
  log.info(
    {
      socket: agent.compositor.socketPath,
      ownDomain,
      guiDomain: options.guiDomain,
      ...(child === null ? {} : { command: options.command[0], commandPid: child.pid }),
    },
    "agent started",
  );
  const stop = (): void => {
    agent.stop();
    process.exit(0);
  };
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
  return new Promise<number>(() => undefined);
}
