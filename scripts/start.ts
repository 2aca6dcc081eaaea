/**
 * `npm start`: the whole system on one machine. Two domains (or more), each
 * a gui-agent running an app, each shown by its own qubes-guid in its label
 * colour, on a Wayland desktop: the one WAYLAND_DISPLAY names, or, on a
 * machine without one, a headless sway started here (viewable over VNC when
 * wayvnc is installed). Ctrl+C stops every process it started and removes
 * its sockets and directories.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");

const USAGE = `usage: npm start [-- [--domains N] [--app COMMAND] [--size WxH] [--headless] [--vnc-port PORT]]

Runs N domains (default 2: work in blue, personal in green ...), each a qubes-gui-agent running
COMMAND and a qubes-guid showing its windows, on the Wayland desktop of WAYLAND_DISPLAY, or on a
headless sway started here when there is none (or with --headless).

  --domains N      domains to start, 1..6 (default 2)
  --app COMMAND    the app each domain runs (default: foot, else weston-terminal, else weston-simple-shm)
  --size WxH       the headless sway output (default 1280x800)
  --headless       start a headless sway even when WAYLAND_DISPLAY is set
  --vnc-port PORT  where wayvnc shows the headless desktop on 127.0.0.1 (default 5900; 0: no wayvnc)
  -h, --help       this text

Ctrl+C stops everything. Exit status: 0 after Ctrl+C, 1 when a part fails to start, 2 for bad flags.`;

const DOMAINS = [
  { name: "work", label: "6" },
  { name: "personal", label: "4" },
  { name: "untrusted", label: "1" },
  { name: "banking", label: "5" },
  { name: "vault", label: "8" },
  { name: "dev", label: "7" },
] as const;
const GUI_DOMAIN = 0;
const FIRST_DOMAIN_ID = 11;
/** How long one part has to become ready: a start-up, which a loaded machine may stretch. */
const READY_MS = 120_000;

const children: Array<{ name: string; child: ChildProcess }> = [];
const cleanups: Array<() => void> = [];
let stopping = false;

function has(program: string): boolean {
  return spawnSync("sh", ["-c", `command -v ${program}`], { encoding: "utf8" }).status === 0;
}

/** Starts a part, prefixing each of its output lines with its name. */
function start(name: string, command: string, args: string[], env: NodeJS.ProcessEnv): ChildProcess {
  const child = spawn(command, args, { env, stdio: ["ignore", "pipe", "pipe"], detached: true });
  children.push({ name, child });
  for (const stream of [child.stdout, child.stderr]) {
    createInterface({ input: stream as NodeJS.ReadableStream }).on("line", (line) =>
      process.stdout.write(`[${name}] ${line}\n`),
    );
  }
  child.on("exit", (code, signal) => {
    if (!stopping) process.stdout.write(`[${name}] exited (${code ?? signal})\n`);
  });
  return child;
}

/** Resolves with the first output line of `child` matching `pattern`; rejects when it exits first or after READY_MS. */
function waitForLine(child: ChildProcess, pattern: RegExp, what: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => finish(new Error(`${what} did not happen within ${READY_MS} ms`)), READY_MS);
    const readers = [child.stdout, child.stderr].map((stream) =>
      createInterface({ input: stream as NodeJS.ReadableStream }),
    );
    const onLine = (line: string): void => {
      if (pattern.test(line)) finish(undefined, line);
    };
    const onExit = (code: number | null, signal: string | null): void =>
      finish(new Error(`it exited (${code ?? signal}) before ${what}`));
    for (const reader of readers) reader.on("line", onLine);
    child.once("exit", onExit);
    function finish(error?: Error, line?: string): void {
      clearTimeout(timer);
      for (const reader of readers) reader.off("line", onLine);
      child.off("exit", onExit);
      if (error !== undefined) reject(error);
      else resolve(line as string);
    }
  });
}

/** Polls `probe` every 50 ms until it holds, for at most READY_MS. */
async function until(probe: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + READY_MS;
  while (!probe()) {
    if (Date.now() > deadline) throw new Error(`${what} did not happen within ${READY_MS} ms`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** A headless sway (pixman), run as nobody when we are root (sway refuses root). */
async function startHeadlessSway(
  width: number,
  height: number,
): Promise<{ env: NodeJS.ProcessEnv; runtimeDir: string }> {
  if (!has("sway")) throw new Error("there is no Wayland desktop (WAYLAND_DISPLAY) and sway is not installed");
  const runtimeDir = mkdtempSync(path.join(tmpdir(), "qubes-start-sway-"));
  const home = mkdtempSync(path.join(tmpdir(), "qubes-start-home-"));
  cleanups.push(() => rmSync(runtimeDir, { recursive: true, force: true }));
  cleanups.push(() => rmSync(home, { recursive: true, force: true }));
  const asRoot = process.getuid?.() === 0;
  if (asRoot) for (const dir of [runtimeDir, home]) chownSync(dir, 65534, 65534);
  chmodSync(runtimeDir, 0o700);
  const config = path.join(home, "sway.cfg");
  writeFileSync(
    config,
    [
      "xwayland disable",
      `output HEADLESS-1 resolution ${width}x${height} position 0 0`,
      "output * bg #2e3436 solid_color",
      'for_window [app_id=".*"] floating enable',
      "",
    ].join("\n"),
  );
  if (asRoot) chownSync(config, 65534, 65534);
  const env = {
    PATH: process.env.PATH ?? "/usr/bin:/bin",
    HOME: home,
    XDG_RUNTIME_DIR: runtimeDir,
    WLR_BACKENDS: "headless",
    WLR_RENDERER: "pixman",
    WLR_LIBINPUT_NO_DEVICES: "1",
  };
  const [command, args] = asRoot
    ? ["setpriv", ["--reuid=65534", "--regid=65534", "--clear-groups", "sway", "-c", config]]
    : ["sway", ["-c", config]];
  const sway = start("sway", command, args, env);
  const socket = path.join(runtimeDir, "wayland-1");
  await Promise.race([
    until(() => existsSync(socket), "sway's socket"),
    new Promise<never>((_, reject) => sway.once("exit", (code) => reject(new Error(`sway exited (${code})`)))),
  ]);
  return { env: { XDG_RUNTIME_DIR: runtimeDir, WAYLAND_DISPLAY: "wayland-1" }, runtimeDir };
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

async function main(): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      options: {
        domains: { type: "string", default: "2" },
        app: { type: "string" },
        size: { type: "string", default: "1280x800" },
        headless: { type: "boolean", default: false },
        "vnc-port": { type: "string", default: "5900" },
        help: { type: "boolean", short: "h" },
      },
    }));
  } catch (error) {
    process.stderr.write(`npm start: ${(error as Error).message}\n`);
    return 2;
  }
  if (values.help === true) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const count = Number(values.domains);
  if (!Number.isInteger(count) || count < 1 || count > DOMAINS.length) {
    process.stderr.write(`npm start: --domains must be 1..${DOMAINS.length}, got "${values.domains}"\n`);
    return 2;
  }
  const size = /^(\d+)x(\d+)$/.exec(values.size);
  if (size === null || Number(size[1]) < 320 || Number(size[2]) < 240) {
    process.stderr.write(`npm start: --size must be WxH of at least 320x240, got "${values.size}"\n`);
    return 2;
  }
  const vncPort = Number(values["vnc-port"]);
  if (!Number.isInteger(vncPort) || vncPort < 0 || vncPort > 65535) {
    process.stderr.write(`npm start: --vnc-port must be 0..65535, got "${values["vnc-port"]}"\n`);
    return 2;
  }
  const app = values.app ?? ["foot", "weston-terminal", "weston-simple-shm"].find(has);
  if (app === undefined) {
    process.stderr.write("npm start: no app to run: install foot or weston, or name one with --app\n");
    return 2;
  }

  const interrupted = new Promise<"stop">((resolve) => {
    process.once("SIGINT", () => resolve("stop"));
    process.once("SIGTERM", () => resolve("stop"));
  });

  const socketDir = mkdtempSync(path.join(tmpdir(), "qubes-start-vchan-"));
  cleanups.push(() => rmSync(socketDir, { recursive: true, force: true }));
  try {
    let host: NodeJS.ProcessEnv;
    let swayRuntime: string | null = null;
    if (!values.headless && process.env.WAYLAND_DISPLAY !== undefined && process.env.WAYLAND_DISPLAY !== "") {
      host = { WAYLAND_DISPLAY: process.env.WAYLAND_DISPLAY, XDG_RUNTIME_DIR: process.env.XDG_RUNTIME_DIR };
      process.stdout.write(`on the Wayland desktop ${process.env.WAYLAND_DISPLAY}\n`);
    } else {
      const sway = await startHeadlessSway(Number(size[1]), Number(size[2]));
      host = sway.env;
      swayRuntime = sway.runtimeDir;
      process.stdout.write(
        `a headless sway, ${values.size}: XDG_RUNTIME_DIR=${sway.runtimeDir} WAYLAND_DISPLAY=wayland-1\n`,
      );
      if (vncPort !== 0 && has("wayvnc")) {
        start("wayvnc", "wayvnc", ["127.0.0.1", String(vncPort)], {
          PATH: process.env.PATH,
          HOME: sway.runtimeDir,
          ...host,
        });
        process.stdout.write(`see it with a VNC viewer at 127.0.0.1:${vncPort}\n`);
      }
      process.stdout.write(
        `screenshot: XDG_RUNTIME_DIR=${sway.runtimeDir} WAYLAND_DISPLAY=wayland-1 grim desktop.png\n`,
      );
    }
    const node = process.execPath;
    const started: Array<Promise<string>> = [];
    for (let i = 0; i < count; i++) {
      const { name, label } = DOMAINS[i] as (typeof DOMAINS)[number];
      const domain = FIRST_DOMAIN_ID + i;
      const domainDir = path.join(socketDir, `domain-${name}`);
      mkdirSync(domainDir, { mode: 0o700 });
      const guid = start(
        `${name} guid`,
        node,
        [path.join(root, "bin", "qubes-guid.js"), "-d", String(domain), "-N", name, "-l", label],
        {
          ...process.env,
          ...host,
          VCHAN_SOCKET_DIR: socketDir,
          VCHAN_DOMAIN: String(GUI_DOMAIN),
        },
      );
      started.push(waitForLine(guid, /agent connected/, `${name}'s agent connecting to its guid`));
      start(
        `${name} agent`,
        node,
        [
          path.join(root, "bin", "qubes-gui-agent.js"),
          "-d",
          String(GUI_DOMAIN),
          "--wayland-display",
          path.join(domainDir, "wayland-qubes"),
          "--",
          ...app.split(" "),
        ],
        {
          PATH: process.env.PATH,
          HOME: domainDir,
          LANG: "C.UTF-8",
          XDG_RUNTIME_DIR: domainDir,
          VCHAN_SOCKET_DIR: socketDir,
          VCHAN_DOMAIN: String(domain),
        },
      );
    }
    const outcome = await Promise.race([Promise.all(started), interrupted]);
    if (outcome === "stop") {
      await stopAll();
      return 0;
    }
    if (swayRuntime !== null) {
      // On our own sway we can see the windows arrive.
      const runtime = swayRuntime;
      const swaymsg = (args: string[]): string => {
        const sock = readdirSync(runtime).find((file) => file.startsWith("sway-ipc."));
        if (sock === undefined) return "";
        return spawnSync("swaymsg", args, {
          env: { ...process.env, SWAYSOCK: path.join(runtime, sock) },
          encoding: "utf8",
        }).stdout;
      };
      await until(() => {
        const tree = swaymsg(["-r", "-t", "get_tree"]);
        return DOMAINS.slice(0, count).every(({ name }) => tree.includes(`"app_id": "${name}:`));
      }, "every domain's window on sway");
      // sway centres floating windows on top of each other: cascade them, one domain after the other.
      DOMAINS.slice(0, count).forEach(({ name }, i) =>
        swaymsg([`[app_id="^${name}:"]`, "move", "position", String(40 + i * 160), String(40 + i * 120)]),
      );
    }
    process.stdout.write(
      `ready: ${count} domains, each with its app (${app}) shown in its label colour; Ctrl+C stops\n`,
    );
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
