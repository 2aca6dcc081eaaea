/**
 * Helpers for the daemon's tests: a guid started in the test's process
 * against a real host compositor, with its log kept for assertions; sway's
 * window tree; pixel and frame checks on screenshots; and waits that are
 * bounded and say what never came.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, readdirSync } from "node:fs";
import path from "node:path";
import { Writable } from "node:stream";

import pino from "pino";

import { checkVmName } from "../../decorator/index.ts";
import { DEFAULT_GUID_CONFIG, startGuid, type Guid, type GuidConfig, type Session } from "../../guid/index.ts";
import { runClient, requireProgram, type RgbImage, type RunningCompositor } from "./compositors.ts";
import { READY_TIMEOUT_MS } from "./processes.ts";
import { VncClient } from "./vnc-client.ts";

/** One domain a test guid serves. */
export interface HarnessDomain {
  domain: number;
  name: string;
  /** Frame colour, default blue 0x3465a4. */
  color?: number;
  config?: Partial<GuidConfig>;
}

/** A guid in the test's process and its log lines. */
export interface GuidUnderTest {
  guid: Guid;
  /** Every log line so far (JSON). */
  logs: string[];
  /** Log lines parsed, whose `msg` matches. */
  logged(pattern: RegExp): Array<Record<string, unknown>>;
  stop(): Promise<void>;
}

/** Starts guid on `host` for `domains`, with the vchan and grant rendezvous in `socketDir`. */
export async function startGuidUnderTest(
  host: RunningCompositor,
  options: {
    socketDir: string;
    domains: HarnessDomain[];
    ownDomain?: number;
    clipboardDir?: string | null;
    handshakeTimeoutMs?: number;
  },
): Promise<GuidUnderTest> {
  const logs: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString("utf8").split("\n")) if (line !== "") logs.push(line);
      done();
    },
  });
  const log = pino({ level: "debug" }, sink);
  const guid = await startGuid({
    domains: options.domains.map((spec) => ({
      domain: spec.domain,
      vmName: checkVmName(spec.name),
      frameColor: spec.color ?? 0x3465a4,
      config: { ...DEFAULT_GUID_CONFIG, ...spec.config },
    })),
    display: host.socketPath,
    clipboardDir: options.clipboardDir ?? null,
    ownDomain: options.ownDomain ?? 0,
    socketDir: options.socketDir,
    vchan: "socket",
    grants: "memfd",
    ...(options.handshakeTimeoutMs === undefined ? {} : { handshakeTimeoutMs: options.handshakeTimeoutMs }),
    log,
  });
  return {
    guid,
    logs,
    logged: (pattern) =>
      logs
        .map((line) => JSON.parse(line) as Record<string, unknown>)
        .filter((entry) => typeof entry.msg === "string" && pattern.test(entry.msg)),
    stop: async () => {
      guid.stop();
      await guid.done.catch(() => undefined);
      await new Promise((resolve) => setImmediate(resolve));
    },
  };
}

/** Resolves at the next commit of `window` by `session` on the host; rejects after `timeoutMs` saying so. */
export function sessionCommit(session: Session, window: number, timeoutMs = 10_000): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      session.off("committed", onCommit);
      reject(new Error(`no commit of window 0x${window.toString(16)} reached the host within ${timeoutMs} ms`));
    }, timeoutMs);
    const onCommit = (id: number): void => {
      if (id !== window) return;
      clearTimeout(timer);
      session.off("committed", onCommit);
      resolve();
    };
    session.on("committed", onCommit);
  });
}

/**
 * Polls `probe` (every 20 ms, each probe may be async) until it returns a
 * value other than undefined/false; rejects after `timeoutMs` naming `what`.
 * For state that has no event to wait on: a compositor's tree or pixels.
 */
export async function pollUntil<T>(
  probe: () => Promise<T | undefined | false> | T | undefined | false,
  what: string,
  timeoutMs = 60_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined && value !== false) return value;
    } catch (error) {
      last = error;
    }
    if (Date.now() > deadline) {
      throw new Error(
        `timed out after ${timeoutMs} ms waiting for ${what}${last === undefined ? "" : ` (last error: ${String(last)})`}`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** A node of `swaymsg -t get_tree`. */
export interface SwayNode {
  id: number;
  name: string | null;
  type: string;
  app_id?: string | null;
  pid?: number;
  focused: boolean;
  fullscreen_mode?: number;
  rect: { x: number; y: number; width: number; height: number };
  window_rect: { x: number; y: number; width: number; height: number };
  nodes: SwayNode[];
  floating_nodes: SwayNode[];
}

function swaySocket(sway: RunningCompositor): string {
  const socketName = readdirSync(sway.runtimeDir).find((name) => name.startsWith("sway-ipc."));
  if (socketName === undefined) throw new Error("sway has no IPC socket");
  return path.join(sway.runtimeDir, socketName);
}

/** Runs `swaymsg ARGS` against `sway` and returns its stdout. */
export async function swaymsg(sway: RunningCompositor, args: string[]): Promise<string> {
  requireProgram("swaymsg", "sway");
  const { stdout } = await runClient(sway, "swaymsg", args, { env: { SWAYSOCK: swaySocket(sway) } });
  return stdout.toString("utf8");
}

/** Every window (view) in sway's tree, tiled and floating. */
export async function swayViews(sway: RunningCompositor): Promise<SwayNode[]> {
  const tree = JSON.parse(await swaymsg(sway, ["-r", "-t", "get_tree"])) as SwayNode;
  const views: SwayNode[] = [];
  const walk = (node: SwayNode): void => {
    if (node.app_id !== undefined && node.app_id !== null) views.push(node);
    for (const child of [...node.nodes, ...node.floating_nodes]) walk(child);
  };
  walk(tree);
  return views;
}

/** Where sway shows a view: its window rectangle in layout coordinates (the frame included). */
export function viewRect(view: SwayNode): { x: number; y: number; width: number; height: number } {
  return {
    x: view.rect.x + view.window_rect.x,
    y: view.rect.y + view.window_rect.y,
    width: view.window_rect.width,
    height: view.window_rect.height,
  };
}

/** The pixel at (x, y) as 0xRRGGBB. */
export function pixelAt(image: RgbImage, x: number, y: number): number {
  const at = (y * image.width + x) * 3;
  return ((image.rgb[at] as number) << 16) | ((image.rgb[at + 1] as number) << 8) | (image.rgb[at + 2] as number);
}

/**
 * Pixels that are not `color` on the ring of `border` px just inside
 * `outer` (a frame): an empty list when the frame is exactly there.
 */
export function frameMismatches(
  image: RgbImage,
  outer: { x: number; y: number; width: number; height: number },
  border: number,
  color: number,
): string[] {
  const wrong: string[] = [];
  for (let y = outer.y; y < outer.y + outer.height; y++) {
    for (let x = outer.x; x < outer.x + outer.width; x++) {
      const inner =
        x >= outer.x + border &&
        x < outer.x + outer.width - border &&
        y >= outer.y + border &&
        y < outer.y + outer.height - border;
      if (inner) continue;
      const pixel = pixelAt(image, x, y);
      if (pixel !== color && wrong.length < 10) wrong.push(`(${x},${y})=#${pixel.toString(16).padStart(6, "0")}`);
    }
  }
  return wrong;
}

/** wayvnc on sway, with a VNC client connected so that the seat has a virtual pointer and keyboard. */
export interface RunningWayvnc {
  child: ChildProcess;
  /** The connected client: also a way to move, click, scroll and type. */
  vnc: VncClient;
  stop(): void;
}

/**
 * Starts wayvnc on `sway` and connects a VNC client to it. wayvnc (0.5)
 * creates its virtual pointer and keyboard only for a connected client;
 * with them on seat0, swaymsg cursor commands and wtype reach clients, and
 * every client binds a pointer and a keyboard that stay.
 */
export async function startWayvnc(sway: RunningCompositor): Promise<RunningWayvnc> {
  requireProgram("wayvnc");
  const socket = path.join(sway.runtimeDir, "wayvnc.sock");
  const child = spawn("wayvnc", ["-u", socket], {
    // wayvnc reads its config under HOME and fails without one.
    env: { PATH: process.env.PATH, HOME: sway.runtimeDir, ...sway.env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let vnc: VncClient;
  try {
    // No probe connection: wayvnc 0.5 crashes (SIGSEGV) when a client hangs up before its handshake.
    const exited = new Promise<never>((_, reject) =>
      child.once("exit", (code, signal) =>
        reject(new Error(`wayvnc exited (${code ?? signal}) before input was ready`)),
      ),
    );
    exited.catch(() => undefined);
    // Its socket is its readiness signal: as long as start-up takes on a loaded machine.
    vnc = await Promise.race([
      exited,
      pollUntil(
        async () => (existsSync(socket) ? await VncClient.connect(socket) : undefined),
        "wayvnc's socket (its readiness signal)",
        READY_TIMEOUT_MS,
      ),
    ]);
    await pollUntil(async () => {
      const inputs = JSON.parse(await swaymsg(sway, ["-r", "-t", "get_inputs"])) as Array<{ type: string }>;
      return inputs.some((input) => input.type === "pointer") && inputs.some((input) => input.type === "keyboard");
    }, "wayvnc's virtual pointer and keyboard on seat0");
  } catch (error) {
    child.kill();
    throw error;
  }
  return {
    child,
    vnc,
    stop: () => {
      vnc.close();
      child.kill();
    },
  };
}
