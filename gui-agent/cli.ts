/**
 * `qubes-gui-agent`: the agent's command line, Qubes-compatible where
 * upstream's has the same flag (-d, -v, -q).
 *
 *   qubes-gui-agent [-d GUIDOMID] [--vchan socket|shm|xen] [--wayland-display NAME]
 *                   [--keyboard-layout L] [--keyboard-variant V] [--keyboard-options O]
 *                   [-v|-q] [-- COMMAND ARGS...]
 *
 * Own domain id from VCHAN_DOMAIN and rendezvous directory from
 * VCHAN_SOCKET_DIR, as qubes-core-vchan-socket.
 */
import { spawn } from "node:child_process";
import path from "node:path";
import { parseArgs } from "node:util";

import pino from "pino";

import { isDomainId, ownDomainFromEnvironment } from "../shm/index.ts";
import type { VchanBackend } from "../vchan/index.ts";
import { startAgent } from "./agent.ts";

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
  -- COMMAND ARGS         start COMMAND with WAYLAND_DISPLAY set to the agent's socket

Environment: VCHAN_DOMAIN (this domain's id, default 0), VCHAN_SOCKET_DIR (default /var/run/vchan).`;

/** A command-line problem: printed with the usage, exit status 2. */
class UsageError extends Error {}

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

/** Runs the agent CLI; resolves only on a usage error or a fatal start failure (the exit status). */
export async function main(argv: string[]): Promise<number> {
  let options;
  try {
    options = parse(argv);
  } catch (error) {
    if (error instanceof UsageError) {
      process.stderr.write(`qubes-gui-agent: ${error.message}\n${USAGE}\n`);
      return 2;
    }
    throw error;
  }
  if (options.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const log = pino({ name: "qubes-gui-agent", level: options.level }, pino.destination(2));
  const runtimeDir = process.env.XDG_RUNTIME_DIR;
  if (!path.isAbsolute(options.display) && (runtimeDir === undefined || runtimeDir === "")) {
    process.stderr.write(
      `qubes-gui-agent: XDG_RUNTIME_DIR is not set: give --wayland-display an absolute path or set it\n`,
    );
    return 2;
  }
  const ownDomain = ownDomainFromEnvironment();
  let agent;
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
    const code = (error as { code?: string }).code;
    const reason =
      code === "socket-in-use" || code === "EADDRINUSE"
        ? `the Wayland socket ${options.display} is in use by another compositor`
        : (error as Error).message;
    process.stderr.write(`qubes-gui-agent: cannot start: ${reason}\n`);
    return 1;
  }
  log.info({ socket: agent.compositor.socketPath, ownDomain, guiDomain: options.guiDomain }, "agent started");
  const stop = (): void => {
    agent.stop();
    process.exit(0);
  };
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
  if (options.command.length > 0) {
    const [file, ...args] = options.command as [string, ...string[]];
    const child = spawn(file, args, {
      stdio: "inherit",
      env: {
        ...process.env,
        WAYLAND_DISPLAY: agent.compositor.socketPath,
        GDK_BACKEND: "wayland",
        QT_QPA_PLATFORM: "wayland",
      },
    });
    child.on("error", (error) => log.error({ err: error, command: file }, "cannot start the command"));
    child.on("exit", (code, signal) =>
      log.info({ command: file, code, signal }, "command exited; the agent keeps serving"),
    );
  }
  return new Promise<number>(() => undefined);
}
