/**
 * `qubes-guid`: the GUI daemon's command line, compatible with upstream's
 * flags (qubes-gui-protocol.md 4.6) so that qvm-start-daemon's command lines
 * work, serving one domain per process as upstream does.
 *
 * The host compositor is found through WAYLAND_DISPLAY (and XDG_RUNTIME_DIR);
 * the vchan and grant rendezvous through VCHAN_DOMAIN and VCHAN_SOCKET_DIR,
 * as qubes-core-vchan-socket. SIGUSR1 prints the counters as one JSON line on
 * stdout; so does the exit. Logs go to stderr: readable lines on a terminal,
 * JSON lines otherwise (bin/log-destination.ts).
 */
import { existsSync, readFileSync } from "node:fs";
import { parseArgs } from "node:util";

import pino, { type Logger } from "pino";

import { logDestination } from "../bin/log-destination.ts";
import { checkVmName, labelByIndex, labelByName, parseColor } from "../decorator/index.ts";
import { MAX_CLIPBOARD_BUFFER_SIZE, MIN_CLIPBOARD_BUFFER_SIZE } from "../protocol/index.ts";
import { MAX_DOMAIN_ID, isDomainId, ownDomainFromEnvironment } from "../shm/index.ts";
import type { VchanBackend } from "../vchan/index.ts";
import { ConfigError, DEFAULT_GUID_CONFIG, loadGuidConfig, type GuidConfig } from "./config.ts";
import { createCounters, type GuidCounters } from "./counters.ts";
import { startGuid, type Guid } from "./daemon.ts";

const USAGE = `usage: qubes-guid -d DOMID -N NAME [-c COLOR] [-l LABEL] [-C CONFIG] [-v | -q] [options]

  -d, --domid ID              the domain running the GUI agent (1..${MAX_DOMAIN_ID})
  -N, --name NAME             its name (a valid qube name), shown as [NAME] in every title
  -c, --color COLOR           frame colour: 0xRRGGBB, #RRGGBB or a label name
                              (default: the colour of --label, else red)
  -l, --label INDEX           label index 1..8 (red orange yellow green gray blue purple black)
  -C, --config PATH           guid.conf (libconfig syntax; default /etc/qubes/guid.conf if present)
      --max-clipboard-size N  clipboard limit in bytes, ${MIN_CLIPBOARD_BUFFER_SIZE}..${MAX_CLIPBOARD_BUFFER_SIZE} (overrides the config)
      --override-redirect allow|disabled
  -I, --invisible             show no windows (the session still runs)
  -K, --kill-on-connect PID   send SIGUSR1 to PID once the agent has connected
      --vchan BACKEND         socket (qubes-core-vchan-socket), shm or xen (default: xen on Xen, else socket)
      --clipboard-dir DIR     the clipboard shared by the GUI domain's guid processes
                              (default $XDG_RUNTIME_DIR/qubes-guid)
  -v, --verbose               more logging (repeat for more)
  -q, --quiet                 less logging
  -h, --help                  this text
      --version               the program and protocol version

Accepted for upstream compatibility, with no effect here: -f/--foreground (guid always runs in the
foreground), -T/--title-name (the [NAME] prefix is always on), -i/--icon NAME, -Q/--qrexec-for-clipboard,
-n/--background, -t/--target-domid ID, -p/--prop NAME=VALUE, --trayicon-mode MODE, --screensaver-name NAME.

Environment: WAYLAND_DISPLAY and XDG_RUNTIME_DIR (the host compositor), VCHAN_DOMAIN (this domain's id,
default 0), VCHAN_SOCKET_DIR (default /var/run/vchan). SIGUSR1 prints the counters as a JSON line on stdout.
Exit status: 0 after SIGTERM/SIGINT, 1 on a runtime failure (no host compositor, it went away),
2 on bad arguments or configuration.`;

/** A command-line or configuration problem: printed with a hint, exit status 2. */
class UsageError extends Error {}

/** Options of one run, after flags and guid.conf. */
export interface CliOptions {
  domain: number;
  name: string;
  color: number;
  config: GuidConfig;
  invisible: boolean;
  killOnConnect: number | null;
  vchan: VchanBackend | undefined;
  clipboardDir: string | null;
  logLevel: string;
}

const DEFAULT_CONFIG_PATH = "/etc/qubes/guid.conf";

function packageVersion(): string {
  const text = readFileSync(new URL("../package.json", import.meta.url), "utf8");
  return (JSON.parse(text) as { version: string }).version;
}

/** Parses flags and loads guid.conf; throws UsageError with a message naming the problem. */
export async function parseCli(argv: string[]): Promise<CliOptions | "help" | "version"> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: false,
      options: {
        domid: { type: "string", short: "d" },
        name: { type: "string", short: "N" },
        color: { type: "string", short: "c" },
        label: { type: "string", short: "l" },
        config: { type: "string", short: "C" },
        "max-clipboard-size": { type: "string" },
        "override-redirect": { type: "string" },
        invisible: { type: "boolean", short: "I" },
        "kill-on-connect": { type: "string", short: "K" },
        vchan: { type: "string" },
        "clipboard-dir": { type: "string" },
        verbose: { type: "boolean", short: "v", multiple: true },
        quiet: { type: "boolean", short: "q", multiple: true },
        help: { type: "boolean", short: "h" },
        version: { type: "boolean" },
        foreground: { type: "boolean", short: "f" },
        "title-name": { type: "boolean", short: "T" },
        icon: { type: "string", short: "i" },
        "qrexec-for-clipboard": { type: "boolean", short: "Q" },
        background: { type: "boolean", short: "n" },
        "target-domid": { type: "string", short: "t" },
        prop: { type: "string", short: "p", multiple: true },
        "trayicon-mode": { type: "string" },
        "screensaver-name": { type: "string", multiple: true },
      },
    });
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  const values = parsed.values;
  if (values.help === true) return "help";
  if (values.version === true) return "version";
  if (values.domid === undefined) throw new UsageError("-d/--domid is required");
  if (!/^\d+$/.test(values.domid) || !isDomainId(Number(values.domid)) || Number(values.domid) === 0) {
    throw new UsageError(`-d/--domid must be a domain id 1..${MAX_DOMAIN_ID}, got "${values.domid}"`);
  }
  if (values.name === undefined) throw new UsageError("-N/--name is required");
  let name: string;
  try {
    name = checkVmName(values.name);
  } catch (error) {
    throw new UsageError(`-N/--name: ${(error as Error).message}`);
  }
  let color = 0xcc0000;
  if (values.label !== undefined) {
    const label = /^\d+$/.test(values.label) ? labelByIndex(Number(values.label)) : labelByName(values.label);
    if (label === undefined) throw new UsageError(`-l/--label must be a label index 1..8, got "${values.label}"`);
    color = label.color;
  }
  if (values.color !== undefined) {
    try {
      color = parseColor(values.color);
    } catch (error) {
      throw new UsageError(`-c/--color: ${(error as Error).message}`);
    }
  }
  let config: GuidConfig = DEFAULT_GUID_CONFIG;
  const configPath = values.config ?? (existsSync(DEFAULT_CONFIG_PATH) ? DEFAULT_CONFIG_PATH : undefined);
  if (configPath !== undefined) {
    try {
      config = await loadGuidConfig(configPath, name);
    } catch (error) {
      if (error instanceof ConfigError) throw new UsageError(error.message);
      throw new UsageError(`cannot read the configuration ${configPath}: ${(error as Error).message}`);
    }
  }
  const overrides: { -readonly [K in keyof GuidConfig]?: GuidConfig[K] } = {};
  const clipboardSize = values["max-clipboard-size"];
  if (clipboardSize !== undefined) {
    const size = Number(clipboardSize);
    if (!/^\d+$/.test(clipboardSize) || size < MIN_CLIPBOARD_BUFFER_SIZE || size > MAX_CLIPBOARD_BUFFER_SIZE) {
      throw new UsageError(
        `--max-clipboard-size must be ${MIN_CLIPBOARD_BUFFER_SIZE}..${MAX_CLIPBOARD_BUFFER_SIZE}, got "${clipboardSize}"`,
      );
    }
    overrides.maxClipboardSize = size;
  }
  const overrideRedirect = values["override-redirect"];
  if (overrideRedirect !== undefined) {
    if (overrideRedirect !== "allow" && overrideRedirect !== "disabled") {
      throw new UsageError(`--override-redirect must be allow or disabled, got "${overrideRedirect}"`);
    }
    overrides.overrideRedirect = overrideRedirect;
  }
  config = { ...config, ...overrides };
  let killOnConnect: number | null = null;
  if (values["kill-on-connect"] !== undefined) {
    const pid = Number(values["kill-on-connect"]);
    if (!/^\d+$/.test(values["kill-on-connect"]) || pid < 1) {
      throw new UsageError(`-K/--kill-on-connect must be a process id, got "${values["kill-on-connect"]}"`);
    }
    killOnConnect = pid;
  }
  const vchan = values.vchan;
  if (vchan !== undefined && vchan !== "socket" && vchan !== "shm" && vchan !== "xen") {
    throw new UsageError(`--vchan must be socket, shm or xen, got "${vchan}"`);
  }
  const runtimeDir = process.env.XDG_RUNTIME_DIR;
  const clipboardDir =
    values["clipboard-dir"] ?? (runtimeDir !== undefined && runtimeDir !== "" ? `${runtimeDir}/qubes-guid` : null);
  const verbosity = (values.verbose?.length ?? 0) - (values.quiet?.length ?? 0) + config.logLevel;
  const logLevel = verbosity <= 0 ? "warn" : verbosity === 1 ? "info" : verbosity === 2 ? "debug" : "trace";
  return {
    domain: Number(values.domid),
    name,
    color,
    config,
    invisible: values.invisible === true,
    killOnConnect,
    vchan,
    clipboardDir,
    logLevel,
  };
}

/** Prints the counters as one JSON line on stdout. */
function printCounters(counters: GuidCounters): void {
  process.stdout.write(`${JSON.stringify({ counters })}\n`);
}

/** Runs qubes-guid; resolves with the exit status. */
export async function main(argv: string[]): Promise<number> {
  let options: CliOptions | "help" | "version";
  try {
    options = await parseCli(argv);
  } catch (error) {
    if (error instanceof UsageError) {
      process.stderr.write(`qubes-guid: ${error.message}\n(qubes-guid --help for usage)\n`);
      return 2;
    }
    throw error;
  }
  if (options === "help") {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  if (options === "version") {
    process.stdout.write(`qubes-guid ${packageVersion()} (Qubes GUI protocol 1.8)\n`);
    return 0;
  }
  // SIGUSR1 prints the counters from now on (zeros until the daemon runs); SIGTERM/SIGINT stop it, even mid-start.
  let guid: Guid | null = null;
  let signalled = false;
  let wake: () => void = () => undefined;
  const stopRequested = new Promise<"stop">((resolve) => (wake = () => resolve("stop")));
  const onUsr1 = (): void => printCounters(guid?.counters ?? createCounters());
  const onStop = (): void => {
    signalled = true;
    guid?.stop();
    wake();
  };
  process.on("SIGUSR1", onUsr1);
  process.on("SIGTERM", onStop);
  process.on("SIGINT", onStop);
  try {
    return await run(
      options,
      stopRequested,
      () => signalled,
      (started) => (guid = started),
    );
  } finally {
    process.off("SIGUSR1", onUsr1);
    process.off("SIGTERM", onStop);
    process.off("SIGINT", onStop);
  }
}

/** Starts the daemon and serves until it ends; `started` hands it to the signal handlers. */
async function run(
  options: CliOptions,
  stopRequested: Promise<"stop">,
  signalled: () => boolean,
  started: (guid: Guid) => void,
): Promise<number> {
  const log: Logger = pino({ name: "qubes-guid", level: options.logLevel }, logDestination());
  let ownDomain: number;
  try {
    ownDomain = ownDomainFromEnvironment();
  } catch (error) {
    process.stderr.write(`qubes-guid: ${(error as Error).message}\n`);
    return 2;
  }
  let guid: Guid;
  try {
    const starting = startGuid({
      domains: [
        {
          domain: options.domain,
          vmName: checkVmName(options.name),
          frameColor: options.color,
          config: options.config,
          invisible: options.invisible,
        },
      ],
      clipboardDir: options.clipboardDir,
      ownDomain,
      ...(options.vchan === undefined ? {} : { vchan: options.vchan }),
      log,
    });
    const first = await Promise.race([starting, stopRequested]);
    if (first === "stop") {
      // Stopped while connecting to the host compositor: whatever starts later stops at once.
      starting.then((late) => late.stop()).catch(() => undefined);
      printCounters(createCounters());
      return 0;
    }
    guid = first;
  } catch (error) {
    process.stderr.write(`qubes-guid: ${(error as Error).message}\n`);
    return 1;
  }
  started(guid);
  if (signalled()) guid.stop();
  log.info(
    { domain: options.domain, vm: options.name, screen: guid.display.screen },
    "guid started; waiting for the agent",
  );
  const killOnConnect = options.killOnConnect;
  if (killOnConnect !== null) {
    guid.sessions[0]?.once("connected", () => {
      try {
        process.kill(killOnConnect, "SIGUSR1");
      } catch (error) {
        log.warn({ err: error, pid: killOnConnect }, "cannot signal the --kill-on-connect process");
      }
    });
  }
  let status = 0;
  try {
    await guid.done;
  } catch (error) {
    log.error({ err: error }, "guid failed");
    status = 1;
  }
  guid.stop();
  printCounters(guid.counters);
  return signalled() ? 0 : status;
}
