/**
 * Launchers for real compositors and programs in tests: headless sway (run as
 * uid 65534, which it needs) and headless weston, each in a fresh runtime
 * directory, plus screenshot readers (grim's PPM, weston-screenshooter's
 * PNG). Readiness is the display socket accepting a connection, never a
 * sleep. Reused by the wayland, gui-agent and guid tests.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import {
  chmodSync,
  chownSync,
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  watch,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { inflateSync } from "node:zlib";

import { close, connect, isSyscallError, socket } from "../../native/index.ts";
import { READY_TIMEOUT_MS } from "./processes.ts";

/** Throws a clear error when `program` is not on PATH (tests must fail, not skip, without it). */
export function requireProgram(program: string, aptPackage = program): string {
  const found = spawnSync("sh", ["-c", `command -v ${program}`], { encoding: "utf8" });
  const where = found.stdout.trim();
  if (found.status !== 0 || where === "") {
    throw new Error(`${program} is not installed: apt-get install ${aptPackage} (see test-environment.md)`);
  }
  return where;
}

/**
 * Waits until a Unix socket at `socketPath` accepts connections (the
 * compositor's readiness signal), or rejects after `timeoutMs` (default the
 * start-up allowance, {@link READY_TIMEOUT_MS}) or when `child` exits.
 */
export function waitForSocket(
  socketPath: string,
  child: ChildProcess,
  timeoutMs = READY_TIMEOUT_MS,
  options: { watchDirectory?: boolean } = {},
): Promise<void> {
  return new Promise((resolve, reject) => {
    let settled = false;
    const dir = path.dirname(socketPath);
    // Without the watch (whose inotify fd libuv keeps for the process's life), the path is retried every 10 ms.
    const watcher = (options.watchDirectory ?? true) ? watch(dir, () => attempt()) : null;
    const retry = watcher === null ? setInterval(() => attempt(), 10) : null;
    const timer = setTimeout(
      () => finish(new Error(`the compositor never became ready: ${socketPath} did not appear within ${timeoutMs} ms`)),
      timeoutMs,
    );
    const onExit = (code: number | null, signal: string | null): void =>
      finish(new Error(`the compositor exited (${code ?? signal}) before ${socketPath} was ready`));
    child.once("exit", onExit);
    function finish(error?: Error): void {
      if (settled) return;
      settled = true;
      watcher?.close();
      if (retry !== null) clearInterval(retry);
      clearTimeout(timer);
      child.off("exit", onExit);
      if (error === undefined) resolve();
      else reject(error);
    }
    function attempt(): void {
      if (settled || !existsSync(socketPath)) return;
      const fd = socket("stream");
      try {
        if (connect(fd, socketPath)) finish();
        else setImmediate(attempt);
      } catch (error) {
        // Bound but not yet listening: try again on the next turn.
        if (isSyscallError(error, "ECONNREFUSED") || isSyscallError(error, "ENOENT")) setImmediate(attempt);
        else finish(error as Error);
      } finally {
        close(fd);
      }
    }
    attempt();
  });
}

/** A running compositor: where clients connect, and how to end it. */
export interface RunningCompositor {
  /** The runtime directory (XDG_RUNTIME_DIR for clients). */
  runtimeDir: string;
  /** The display name (WAYLAND_DISPLAY for clients). */
  display: string;
  /** The absolute socket path. */
  socketPath: string;
  /** The environment a client of this compositor needs. */
  env: NodeJS.ProcessEnv;
  child: ChildProcess;
  /** Everything the compositor wrote to stderr so far. */
  stderr(): string;
  /** Ends the compositor's process group and removes its directories. */
  stop(): Promise<void>;
}

function collect(child: ChildProcess): () => string {
  let text = "";
  child.stdout?.setEncoding("utf8").on("data", (chunk: string) => (text += chunk));
  child.stderr?.setEncoding("utf8").on("data", (chunk: string) => (text += chunk));
  return () => text;
}

function stopGroup(child: ChildProcess, cleanup: () => void): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      cleanup();
      resolve();
    };
    if (child.exitCode !== null || child.signalCode !== null) {
      done();
      return;
    }
    child.once("exit", done);
    try {
      process.kill(-(child.pid as number), "SIGTERM");
    } catch {
      child.kill("SIGTERM");
    }
  });
}

/** Options of {@link startSway}. */
export interface SwayOptions {
  width?: number;
  height?: number;
  /** Background colour, `#rrggbb`. */
  background?: string;
  /** Extra config lines. */
  config?: string[];
  /** Wait for the socket by retrying instead of watching its directory (a process that counts its fds). */
  pollForSocket?: boolean;
}

/**
 * Starts headless sway (pixman renderer) as uid 65534 in a fresh runtime
 * dir, with one output at 0,0, floating windows without borders (so a
 * window of w×h sits centred at ((W-w)/2, (H-h)/2)), no Xwayland.
 */
export async function startSway(options: SwayOptions = {}): Promise<RunningCompositor> {
  requireProgram("sway");
  requireProgram("setpriv", "util-linux");
  const width = options.width ?? 640;
  const height = options.height ?? 480;
  const runtimeDir = mkdtempSync(path.join(tmpdir(), "sway-rt-"));
  const home = mkdtempSync(path.join(tmpdir(), "sway-home-"));
  for (const dir of [runtimeDir, home]) chownSync(dir, 65534, 65534);
  chmodSync(runtimeDir, 0o700);
  const configPath = path.join(home, "sway.cfg");
  writeFileSync(
    configPath,
    [
      "xwayland disable",
      `output HEADLESS-1 resolution ${width}x${height} position 0 0`,
      `output * bg ${options.background ?? "#336699"} solid_color`,
      "default_border none",
      "default_floating_border none",
      'for_window [app_id=".*"] floating enable',
      "seat seat0 hide_cursor 1",
      ...(options.config ?? []),
      "",
    ].join("\n"),
  );
  chownSync(configPath, 65534, 65534);
  const child = spawn("setpriv", ["--reuid=65534", "--regid=65534", "--clear-groups", "sway", "-c", configPath], {
    detached: true,
    stdio: ["ignore", "pipe", "pipe"],
    env: {
      PATH: "/usr/bin:/bin",
      HOME: home,
      XDG_RUNTIME_DIR: runtimeDir,
      WLR_BACKENDS: "headless",
      WLR_RENDERER: "pixman",
      WLR_LIBINPUT_NO_DEVICES: "1",
    },
  });
  const stderr = collect(child);
  const socketPath = path.join(runtimeDir, "wayland-1");
  const cleanup = (): void => {
    rmSync(runtimeDir, { recursive: true, force: true });
    rmSync(home, { recursive: true, force: true });
  };
  const running: RunningCompositor = {
    runtimeDir,
    display: "wayland-1",
    socketPath,
    env: { XDG_RUNTIME_DIR: runtimeDir, WAYLAND_DISPLAY: "wayland-1" },
    child,
    stderr,
    stop: () => stopGroup(child, cleanup),
  };
  try {
    await waitForSocket(socketPath, child, READY_TIMEOUT_MS, { watchDirectory: options.pollForSocket !== true });
  } catch (error) {
    await running.stop();
    throw new Error(`${(error as Error).message}\nsway said:\n${stderr()}`);
  }
  return running;
}

/** Options of {@link startWeston}. */
export interface WestonOptions {
  width?: number;
  height?: number;
  /** Background colour, `#rrggbb`. */
  background?: string;
}

/** Starts headless weston (pixman, --debug so screenshots work) in a fresh runtime dir. */
export async function startWeston(options: WestonOptions = {}): Promise<RunningCompositor> {
  requireProgram("weston");
  const runtimeDir = mkdtempSync(path.join(tmpdir(), "weston-rt-"));
  chmodSync(runtimeDir, 0o700);
  // No start-up fade, window animations or panel: what a client draws is on screen at its next repaint.
  const configPath = path.join(runtimeDir, "weston.ini");
  writeFileSync(
    configPath,
    [
      "[core]",
      "idle-time=0",
      "[shell]",
      "startup-animation=none",
      "animation=none",
      "close-animation=none",
      "focus-animation=none",
      "panel-position=none",
      `background-color=0xff${(options.background ?? "#336699").slice(1)}`,
      "",
    ].join("\n"),
  );
  const display = "wayland-weston";
  const child = spawn(
    "weston",
    [
      "--backend=headless-backend.so",
      "--use-pixman",
      "--debug",
      `--socket=${display}`,
      "--idle-time=0",
      `--config=${configPath}`,
      `--width=${options.width ?? 640}`,
      `--height=${options.height ?? 480}`,
    ],
    {
      detached: true,
      stdio: ["ignore", "pipe", "pipe"],
      env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: runtimeDir, XDG_RUNTIME_DIR: runtimeDir },
    },
  );
  const stderr = collect(child);
  const socketPath = path.join(runtimeDir, display);
  const running: RunningCompositor = {
    runtimeDir,
    display,
    socketPath,
    env: { XDG_RUNTIME_DIR: runtimeDir, WAYLAND_DISPLAY: display },
    child,
    stderr,
    stop: () => stopGroup(child, () => rmSync(runtimeDir, { recursive: true, force: true })),
  };
  try {
    await waitForSocket(socketPath, child);
  } catch (error) {
    await running.stop();
    throw new Error(`${(error as Error).message}\nweston said:\n${stderr()}`);
  }
  return running;
}

/** An RGB image: width, height, and 3 bytes per pixel, rows top to bottom. */
export interface RgbImage {
  width: number;
  height: number;
  rgb: Uint8Array;
}

/** Parses a binary PPM (P6, maxval 255). */
export function parsePpm(data: Uint8Array): RgbImage {
  let at = 0;
  const fields: string[] = [];
  while (fields.length < 4) {
    while (at < data.length && /\s/.test(String.fromCharCode(data[at] as number))) at++;
    if (data[at] === 0x23) {
      while (at < data.length && data[at] !== 0x0a) at++;
      continue;
    }
    let field = "";
    while (at < data.length && !/\s/.test(String.fromCharCode(data[at] as number)))
      field += String.fromCharCode(data[at++] as number);
    fields.push(field);
  }
  at++;
  const [magic, width, height, maxval] = fields;
  if (magic !== "P6" || maxval !== "255") throw new Error(`not a P6/255 PPM: ${fields.join(" ")}`);
  const w = Number(width);
  const h = Number(height);
  return { width: w, height: h, rgb: data.subarray(at, at + w * h * 3) };
}

/** Decodes an 8-bit, non-interlaced RGB or RGBA PNG into RGB. */
export function parsePng(data: Uint8Array): RgbImage {
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  let at = 8;
  let width = 0;
  let height = 0;
  let channels = 0;
  const idat: Uint8Array[] = [];
  while (at + 8 <= data.length) {
    const length = view.getUint32(at);
    const type = String.fromCharCode(...data.subarray(at + 4, at + 8));
    const body = data.subarray(at + 8, at + 8 + length);
    if (type === "IHDR") {
      width = view.getUint32(at + 8);
      height = view.getUint32(at + 12);
      const depth = body[8];
      const colour = body[9];
      if (depth !== 8 || (colour !== 2 && colour !== 6) || body[12] !== 0) {
        throw new Error(`unsupported PNG (depth ${depth}, colour ${colour}, interlace ${body[12]})`);
      }
      channels = colour === 6 ? 4 : 3;
    } else if (type === "IDAT") {
      idat.push(body);
    }
    at += 12 + length;
  }
  const raw = inflateSync(Buffer.concat(idat));
  const rowBytes = width * channels;
  const pixels = new Uint8Array(height * rowBytes);
  for (let y = 0; y < height; y++) {
    const filter = raw[y * (rowBytes + 1)];
    const source = raw.subarray(y * (rowBytes + 1) + 1, (y + 1) * (rowBytes + 1));
    for (let x = 0; x < rowBytes; x++) {
      const left = x >= channels ? (pixels[y * rowBytes + x - channels] as number) : 0;
      const up = y > 0 ? (pixels[(y - 1) * rowBytes + x] as number) : 0;
      const upLeft = y > 0 && x >= channels ? (pixels[(y - 1) * rowBytes + x - channels] as number) : 0;
      let predictor = 0;
      if (filter === 1) predictor = left;
      else if (filter === 2) predictor = up;
      else if (filter === 3) predictor = (left + up) >> 1;
      else if (filter === 4) {
        const p = left + up - upLeft;
        const pa = Math.abs(p - left);
        const pb = Math.abs(p - up);
        const pc = Math.abs(p - upLeft);
        predictor = pa <= pb && pa <= pc ? left : pb <= pc ? up : upLeft;
      }
      pixels[y * rowBytes + x] = ((source[x] as number) + predictor) & 0xff;
    }
  }
  if (channels === 3) return { width, height, rgb: pixels };
  const rgb = new Uint8Array(width * height * 3);
  for (let i = 0; i < width * height; i++) rgb.set(pixels.subarray(i * 4, i * 4 + 3), i * 3);
  return { width, height, rgb };
}

/**
 * Runs a client program of `compositor` to completion; rejects with its
 * output when it fails. A short client's run is mostly its start-up, so it is
 * killed only after `timeoutMs` (default {@link READY_TIMEOUT_MS}).
 */
export function runClient(
  compositor: RunningCompositor,
  program: string,
  args: string[],
  options: { cwd?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {},
): Promise<{ stdout: Buffer; stderr: string }> {
  requireProgram(program);
  return new Promise((resolve, reject) => {
    const child = spawn(program, args, {
      cwd: options.cwd,
      env: { PATH: process.env.PATH, ...compositor.env, ...options.env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    const out: Buffer[] = [];
    let stderr = "";
    child.stdout.on("data", (chunk: Buffer) => out.push(chunk));
    child.stderr.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk));
    const timeoutMs = options.timeoutMs ?? READY_TIMEOUT_MS;
    let killed = false;
    const timer = setTimeout(() => {
      killed = true;
      child.kill("SIGKILL");
    }, timeoutMs);
    child.on("error", reject);
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      if (code === 0) resolve({ stdout: Buffer.concat(out), stderr });
      else {
        const why = killed ? `killed: not done within ${timeoutMs} ms` : `${code ?? signal}`;
        reject(new Error(`${program} ${args.join(" ")} failed (${why}): ${stderr}`));
      }
    });
  });
}

/** A screenshot of sway's whole output through grim (PPM on stdout). */
export async function screenshotSway(sway: RunningCompositor): Promise<RgbImage> {
  requireProgram("grim");
  const { stdout } = await runClient(sway, "grim", ["-t", "ppm", "-"]);
  return parsePpm(stdout);
}

/** Where sway shows the window of `appId` (layout coordinates of its content), from `swaymsg -t get_tree`. */
export async function swayWindowRect(
  sway: RunningCompositor,
  appId: string,
): Promise<{ x: number; y: number; width: number; height: number } | undefined> {
  requireProgram("swaymsg", "sway");
  const socketName = readdirSync(sway.runtimeDir).find((name) => name.startsWith("sway-ipc."));
  if (socketName === undefined) throw new Error("sway has no IPC socket");
  const { stdout } = await runClient(sway, "swaymsg", ["-r", "-t", "get_tree"], {
    env: { SWAYSOCK: path.join(sway.runtimeDir, socketName) },
  });
  interface Node {
    app_id?: string;
    rect: { x: number; y: number; width: number; height: number };
    window_rect: { x: number; y: number; width: number; height: number };
    nodes?: Node[];
    floating_nodes?: Node[];
  }
  const search = (node: Node): Node | undefined => {
    if (node.app_id === appId) return node;
    for (const child of [...(node.nodes ?? []), ...(node.floating_nodes ?? [])]) {
      const found = search(child);
      if (found !== undefined) return found;
    }
    return undefined;
  };
  const node = search(JSON.parse(stdout.toString("utf8")) as Node);
  if (node === undefined) return undefined;
  return {
    x: node.rect.x + node.window_rect.x,
    y: node.rect.y + node.window_rect.y,
    width: node.window_rect.width,
    height: node.window_rect.height,
  };
}

/**
 * Where weston shows the toplevel of `appId` (output coordinates), from the
 * `scene-graph` debug stream (`weston-debug`, weston started with --debug).
 */
export async function westonWindowRect(
  weston: RunningCompositor,
  appId: string,
): Promise<{ x: number; y: number; width: number; height: number } | undefined> {
  requireProgram("weston-debug", "weston");
  const { stdout } = await runClient(weston, "weston-debug", ["scene-graph"]);
  const lines = stdout.toString("utf8").split("\n");
  const view = lines.findIndex((line) => line.includes("role xdg_toplevel") && line.includes(` of ${appId},`));
  if (view < 0) return undefined;
  for (const line of lines.slice(view + 1, view + 4)) {
    const position = /position: \((-?\d+), (-?\d+)\) -> \((-?\d+), (-?\d+)\)/.exec(line);
    if (position === null) continue;
    const [x, y, right, bottom] = position.slice(1).map(Number) as [number, number, number, number];
    return { x, y, width: right - x, height: bottom - y };
  }
  return undefined;
}

/** A screenshot of weston's output through weston-screenshooter (weston must run with --debug). */
export async function screenshotWeston(weston: RunningCompositor): Promise<RgbImage> {
  requireProgram("weston-screenshooter", "weston");
  const dir = mkdtempSync(path.join(tmpdir(), "weston-shot-"));
  try {
    await runClient(weston, "weston-screenshooter", [], { cwd: dir });
    const file = readdirSync(dir).find((name) => name.endsWith(".png"));
    if (file === undefined) throw new Error("weston-screenshooter wrote no PNG");
    return parsePng(readFileSync(path.join(dir, file)));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
