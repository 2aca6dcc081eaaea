/**
 * `qubes-demo-app`: the demo app's command line. It shows one window on the
 * compositor named by WAYLAND_DISPLAY (and XDG_RUNTIME_DIR), prints
 * `qubes-demo-app: shown NAME WxH` on stdout once the first frame is
 * committed, and runs until the window is closed or a signal ends it.
 * Exit status: 0 when closed (or after SIGTERM/SIGINT), 1 when there is no
 * compositor or it goes away, 2 for bad flags. Every failure is one line
 * on stderr.
 */
import { readFileSync } from "node:fs";
import { hostname } from "node:os";
import { parseArgs } from "node:util";

import { DemoApp, DemoAppError, MAX_WINDOW_SIZE } from "./app.ts";
import { DEFAULT_SIZE } from "./layout.ts";

const PROGRAM = "qubes-demo-app";

const USAGE = `usage: ${PROGRAM} [--name NAME] [--size WxH]

A Wayland demo app: shows the domain's name, a line of typed text and a canvas where left
clicks draw dots. Right click: a menu (Copy, Paste, Clear). Ctrl+C / Ctrl+V copy and paste the
typed line through the clipboard; Backspace deletes, Enter clears the line (US layout).

  --name NAME     the domain's name shown in the window (default $QUBES_VM_NAME, else the host name)
  --size WxH      the window's size when the compositor lets the app choose (default ${DEFAULT_SIZE.width}x${DEFAULT_SIZE.height})
  -h, --help      this text
      --version   the program's version

Environment: WAYLAND_DISPLAY and XDG_RUNTIME_DIR (the compositor).
Prints "${PROGRAM}: shown NAME WxH" on stdout once the first frame is up.
Exit status: 0 when the window is closed (or after SIGTERM/SIGINT), 1 when there is no
compositor or it goes away, 2 for bad flags.`;

/** The longest name accepted. */
const MAX_NAME_LENGTH = 64;
/** The smallest --size accepted in either dimension. */
const MIN_SIZE = 64;

/** A bad flag: one line on stderr, exit status 2. */
class UsageError extends Error {}

/** What a command line asks for. */
export interface DemoAppCli {
  name: string;
  width: number;
  height: number;
}

function packageVersion(): string {
  const text = readFileSync(new URL("../package.json", import.meta.url), "utf8");
  return (JSON.parse(text) as { version: string }).version;
}

/** Parses `--size WxH`; throws UsageError naming the problem. */
export function parseSize(value: string): { width: number; height: number } {
  const match = /^(\d{1,5})x(\d{1,5})$/.exec(value);
  if (match === null) throw new UsageError(`--size must be WIDTHxHEIGHT (e.g. 480x320), got ${JSON.stringify(value)}`);
  const width = Number(match[1]);
  const height = Number(match[2]);
  for (const [what, n] of [
    ["width", width],
    ["height", height],
  ] as const) {
    if (n < MIN_SIZE || n > MAX_WINDOW_SIZE) {
      throw new UsageError(`--size ${what} must be ${MIN_SIZE}..${MAX_WINDOW_SIZE}, got ${n}`);
    }
  }
  return { width, height };
}

/** Checks a name: 1..64 characters, none of them control characters. */
export function checkName(name: string): string {
  if (name === "") throw new UsageError("--name must not be empty");
  if (name.length > MAX_NAME_LENGTH) throw new UsageError(`--name is longer than ${MAX_NAME_LENGTH} characters`);
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f-\u009f]/.test(name)) throw new UsageError("--name must not hold control characters");
  return name;
}

/** Parses the flags (environment for the default name); throws UsageError. */
export function parseCli(argv: string[], env: NodeJS.ProcessEnv = process.env): DemoAppCli | "help" | "version" {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      options: {
        name: { type: "string" },
        size: { type: "string" },
        help: { type: "boolean", short: "h" },
        version: { type: "boolean" },
      },
      strict: true,
      allowPositionals: false,
    });
  } catch (error) {
    // parseArgs' messages run over several lines (with hints): keep the first.
    throw new UsageError((error as Error).message.split("\n")[0] as string);
  }
  const { values } = parsed;
  if (values.help === true) return "help";
  if (values.version === true) return "version";
  const name = checkName(values.name ?? (env.QUBES_VM_NAME || hostname()));
  const size = values.size === undefined ? DEFAULT_SIZE : parseSize(values.size);
  return { name, width: size.width, height: size.height };
}

/** Runs the program; resolves with its exit status. */
export async function main(argv: string[]): Promise<number> {
  let cli;
  try {
    cli = parseCli(argv);
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    process.stderr.write(`${PROGRAM}: ${error.message} (see --help)\n`);
    return 2;
  }
  if (cli === "help") {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  if (cli === "version") {
    process.stdout.write(`${PROGRAM} ${packageVersion()}\n`);
    return 0;
  }
  if (!process.env.WAYLAND_DISPLAY && !process.env.WAYLAND_SOCKET) {
    process.stderr.write(`${PROGRAM}: WAYLAND_DISPLAY is not set: no Wayland compositor to show the window on\n`);
    return 1;
  }
  let app: DemoApp;
  try {
    app = await DemoApp.start({ name: cli.name, width: cli.width, height: cli.height });
  } catch (error) {
    if (!(error instanceof DemoAppError)) throw error;
    process.stderr.write(`${PROGRAM}: ${error.message}\n`);
    return 1;
  }
  const { width, height } = app.size;
  process.stdout.write(`${PROGRAM}: shown ${cli.name} ${width}x${height}\n`);
  const stop = (): void => app.close(0);
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
  try {
    return await app.ended;
  } finally {
    process.off("SIGTERM", stop);
    process.off("SIGINT", stop);
  }
}
