/**
 * The qubes-gui-desktop command line: a Wayland compositor for guid (and any
 * app) with one output, shown in a browser at a URL that carries a random
 * token. Prints two lines on stdout once it serves, `WAYLAND_DISPLAY=...`
 * and `open http://...`, for people and for launchers. Logs go to stderr:
 * readable lines on a terminal, pino's JSON elsewhere.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

import pino, { type Logger } from "pino";

import { logDestination } from "../bin/log-destination.ts";
import { compileKeymap, type Size } from "../compositor/index.ts";
import { Desktop } from "./desktop.ts";
import { startViewer } from "./viewer.ts";

const USAGE = `usage: qubes-gui-desktop [options]

A Wayland compositor with one output, shown in a browser. Start qubes-guid (or any
Wayland app) with WAYLAND_DISPLAY set to the socket it prints, and open the URL it prints.

  --size WxH        the output's size (default 1280x800)
  --listen HOST     the address the viewer binds (default 127.0.0.1; anything else is
                    reachable from other machines: a warning is printed)
  --port PORT       the viewer's TCP port (default 0: any free port)
  --token TOKEN     the viewer's access token (default: 32 random bytes); every request
                    must carry it, as ?token=... or the cookie the page sets
  --socket NAME     the Wayland socket: a name in XDG_RUNTIME_DIR or an absolute path
                    (default wayland-qubes-desktop; a private directory when
                    XDG_RUNTIME_DIR is unset)
  --layout LAYOUT   the keyboard layout apps get (xkb, default us)
  -v, --verbose     more logging: -v debug, -vv also the Wayland protocol (WAYLAND_DEBUG=server)
  -h, --help        this text
  --version         the version

Exit status: 0 after SIGINT/SIGTERM, 1 when it cannot start, 2 for bad options.`;

class UsageError extends Error {}

interface Options {
  size: Size;
  listen: string;
  port: number;
  token: string | undefined;
  socket: string;
  layout: string;
  verbosity: number;
}

function parseSize(text: string): Size {
  const match = /^(\d{1,5})x(\d{1,5})$/.exec(text);
  if (match === null) throw new UsageError(`--size: "${text}" is not WIDTHxHEIGHT (e.g. 1280x800)`);
  const size = { width: Number(match[1]), height: Number(match[2]) };
  if (size.width < 640 || size.height < 480 || size.width > 16384 || size.height > 6144) {
    throw new UsageError(`--size: ${text} is outside 640x480 .. 16384x6144`);
  }
  return size;
}

function parseCli(argv: string[]): Options | "help" | "version" {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      strict: true,
      allowPositionals: false,
      options: {
        size: { type: "string" },
        listen: { type: "string" },
        port: { type: "string" },
        token: { type: "string" },
        socket: { type: "string" },
        layout: { type: "string" },
        verbose: { type: "boolean", short: "v", multiple: true },
        help: { type: "boolean", short: "h" },
        version: { type: "boolean" },
      },
    });
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  const { values } = parsed;
  if (values.help === true) return "help";
  if (values.version === true) return "version";
  const port = values.port === undefined ? 0 : Number(values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535 || !/^\d+$/.test(values.port ?? "0")) {
    throw new UsageError(`--port: "${values.port}" is not a TCP port (0..65535)`);
  }
  if (values.token !== undefined && !/^[A-Za-z0-9_-]{16,256}$/.test(values.token)) {
    throw new UsageError("--token: use 16 to 256 characters of A-Z a-z 0-9 _ -");
  }
  if (values.layout !== undefined && !/^[a-z0-9_,()-]{1,64}$/i.test(values.layout)) {
    throw new UsageError(`--layout: "${values.layout}" is not an xkb layout name`);
  }
  return {
    size: parseSize(values.size ?? "1280x800"),
    listen: values.listen ?? "127.0.0.1",
    port,
    token: values.token,
    socket: values.socket ?? "wayland-qubes-desktop",
    layout: values.layout ?? "us",
    verbosity: values.verbose?.length ?? 0,
  };
}

function packageVersion(): string {
  const file = path.join(path.dirname(fileURLToPath(import.meta.url)), "..", "package.json");
  return (JSON.parse(readFileSync(file, "utf8")) as { version: string }).version;
}

function isLoopback(host: string): boolean {
  return host === "localhost" || host === "::1" || /^127\.\d+\.\d+\.\d+$/.test(host);
}

/** Runs qubes-gui-desktop; resolves with the exit status. */
export async function main(argv: string[]): Promise<number> {
  let options: Options | "help" | "version";
  try {
    options = parseCli(argv);
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    process.stderr.write(`qubes-gui-desktop: ${error.message}\n(qubes-gui-desktop --help for usage)\n`);
    return 2;
  }
  if (options === "help") {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  if (options === "version") {
    process.stdout.write(`qubes-gui-desktop ${packageVersion()}\n`);
    return 0;
  }
  if (options.verbosity >= 2) process.env.WAYLAND_DEBUG = "server";
  const log: Logger = pino(
    { name: "qubes-gui-desktop", level: options.verbosity >= 1 ? "debug" : "info" },
    logDestination(),
  );

  let stop: () => void = () => undefined;
  const stopped = new Promise<void>((resolve) => (stop = resolve));
  process.on("SIGINT", stop);
  process.on("SIGTERM", stop);

  // Without XDG_RUNTIME_DIR, a relative socket name goes in a private directory of our own.
  let privateDir: string | null = null;
  let socket = options.socket;
  if (!path.isAbsolute(socket) && (process.env.XDG_RUNTIME_DIR ?? "") === "") {
    privateDir = mkdtempSync(path.join(tmpdir(), "qubes-gui-desktop-"));
    socket = path.join(privateDir, socket);
  }
  let desktop: Desktop | null = null;
  let viewer: Awaited<ReturnType<typeof startViewer>> | null = null;
  try {
    const keymap = await compileKeymap({ layout: options.layout });
    desktop = new Desktop({ socket, size: options.size, keymap, log });
    viewer = await startViewer({
      output: desktop,
      input: desktop,
      host: options.listen,
      port: options.port,
      ...(options.token === undefined ? {} : { token: options.token }),
      log,
    });
  } catch (error) {
    process.stderr.write(`qubes-gui-desktop: ${(error as Error).message}\n`);
    desktop?.destroy();
    if (privateDir !== null) rmSync(privateDir, { recursive: true, force: true });
    process.off("SIGINT", stop);
    process.off("SIGTERM", stop);
    return 1;
  }
  if (!isLoopback(options.listen)) {
    log.warn(
      { listen: options.listen },
      "the viewer listens beyond this machine: anyone who has the URL sees every domain's windows and types into them",
    );
  }
  process.stdout.write(`qubes-gui-desktop: WAYLAND_DISPLAY=${desktop.socketPath}\n`);
  process.stdout.write(`qubes-gui-desktop: ${desktop.width}x${desktop.height}, open ${viewer.url}\n`);
  log.info({ socket: desktop.socketPath, size: `${desktop.width}x${desktop.height}` }, "desktop started");

  await stopped;
  process.off("SIGINT", stop);
  process.off("SIGTERM", stop);
  await viewer.close();
  desktop.destroy();
  if (privateDir !== null && existsSync(privateDir)) rmSync(privateDir, { recursive: true, force: true });
  return 0;
}
