/**
 * The host compositors of the fuzz target `session`, both real: our own
 * Desktop (desktop/desktop.ts) in the fuzz process, as qubes-gui-desktop
 * runs it and as bench/scale.bench.ts does, which takes most sessions; and a
 * headless sway (test/helpers/compositors.ts) for a slice. Each says which
 * windows of a domain it still has (none may outlive the domain's session),
 * shows whether a window's content and frame are exactly what they must be,
 * and reports what would mean it dropped a client (its own log's warnings).
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";

import pino, { type Logger } from "pino";

import { compileKeymap, type ShellWindow } from "../../../compositor/index.ts";
import { Desktop } from "../../../desktop/index.ts";
import { screenshotSway, startSway, type RunningCompositor } from "../../helpers/compositors.ts";
import { pixelAt, swayViews, viewRect } from "../../helpers/guid-harness.ts";

/** A rectangle on the host's output. */
export interface HostRect {
  x: number;
  y: number;
  width: number;
  height: number;
}

/** What a fuzz lane needs of its host compositor. */
export interface FuzzHost {
  readonly kind: "desktop" | "sway";
  /** The socket guid connects to. */
  readonly socketPath: string;
  /** The Desktop, for input (clicks and keys); null on sway. */
  readonly desktop: Desktop | null;
  /** What went wrong on the host's side (a client dropped, a handler failed); the first few. */
  readonly problems: string[];
  /** Why the compositor's process died under the fuzz (its exit and last words), or null while it lives. */
  readonly crash: string | null;
  /** Descriptions of the windows of domain `vmName` the host still shows or holds. */
  leftovers(vmName: string): Promise<string[]>;
  /**
   * Where the host shows the toplevel whose app_id is `appId`, as the
   * surface's rectangle (guid's frame included), or null when it shows none.
   */
  find(appId: string): Promise<HostRect | null>;
  /** The output's pixel at each of `points`, as 0xRRGGBB. */
  pixels(points: ReadonlyArray<{ x: number; y: number }>): Promise<number[]>;
  close(): Promise<void>;
}

/** A logger that costs nothing below `warn` and keeps what is at or above it. */
function problemLogger(problems: string[], what: string): Logger {
  return pino({
    level: "warn",
    hooks: {
      logMethod(args) {
        const text = args.map((arg) => (typeof arg === "string" ? arg : JSON.stringify(arg))).join(" ");
        if (problems.length < 8) problems.push(`${what}: ${text}`);
      },
    },
  });
}

/** Whether `window` (or the toplevel it hangs from) belongs to domain `vmName` by guid's decorations. */
function ofDomain(window: ShellWindow, vmName: string): boolean {
  let root: ShellWindow = window;
  while (root.parent !== null) root = root.parent;
  return root.appId === vmName || root.appId.startsWith(`${vmName}:`) || root.title.startsWith(`[${vmName}]`);
}

/** Starts a Desktop of `size` in this process, its socket in a fresh directory. */
export async function startDesktopHost(size: { width: number; height: number }): Promise<FuzzHost> {
  const dir = mkdtempSync(path.join(tmpdir(), "fuzz-desktop-"));
  const problems: string[] = [];
  let desktop: Desktop;
  try {
    const keymap = await compileKeymap({ layout: "us" });
    desktop = new Desktop({
      socket: path.join(dir, "wayland-fuzz"),
      size,
      keymap,
      log: problemLogger(problems, "the desktop"),
    });
  } catch (error) {
    rmSync(dir, { recursive: true, force: true });
    throw error;
  }
  const words = (): Uint32Array =>
    new Uint32Array(desktop.pixels.buffer, desktop.pixels.byteOffset, desktop.width * desktop.height);
  return {
    kind: "desktop",
    socketPath: desktop.socketPath,
    desktop,
    problems,
    crash: null,
    leftovers: (vmName) =>
      Promise.resolve(
        desktop.compositor.windows
          .filter((window) => ofDomain(window, vmName))
          .map((window) => `${window.kind} "${window.title}" (${window.appId})${window.mapped ? " mapped" : ""}`),
      ),
    find(appId) {
      const shown = desktop.shown.find((entry) => entry.kind === "toplevel" && entry.window.appId === appId);
      return Promise.resolve(shown === undefined ? null : { ...shown.rect });
    },
    pixels(points) {
      const all = words();
      return Promise.resolve(points.map(({ x, y }) => (all[y * desktop.width + x] as number) & 0xffffff));
    },
    close() {
      desktop.destroy();
      rmSync(dir, { recursive: true, force: true });
      return Promise.resolve();
    },
  };
}

/** Starts a headless sway of `size` (test/helpers/compositors.ts). */
export async function startSwayHost(size: { width: number; height: number }): Promise<FuzzHost> {
  const sway: RunningCompositor = await startSway({ ...size, pollForSocket: true });
  const problems: string[] = [];
  let stopping = false;
  let crash: string | null = null;
  sway.child.once("exit", (code, signal) => {
    if (!stopping) crash = `sway exited (${code ?? signal}); it said: ${sway.stderr().slice(-600)}`;
  });
  return {
    kind: "sway",
    socketPath: sway.socketPath,
    desktop: null,
    problems,
    get crash() {
      return crash;
    },
    async leftovers(vmName) {
      const views = await swayViews(sway);
      return views
        .filter((view) => view.app_id === vmName || (view.app_id ?? "").startsWith(`${vmName}:`))
        .map((view) => `view "${view.name ?? ""}" (${view.app_id ?? ""})`);
    },
    async find(appId) {
      const view = (await swayViews(sway)).find((candidate) => candidate.app_id === appId);
      return view === undefined ? null : viewRect(view);
    },
    async pixels(points) {
      const image = await screenshotSway(sway);
      return points.map(({ x, y }) => pixelAt(image, x, y));
    },
    close: async () => {
      stopping = true;
      // A sway that hangs (it spun after a heap corruption under this fuzz) ignores SIGTERM: SIGKILL after 5 s.
      const killer = setTimeout(() => {
        try {
          process.kill(-(sway.child.pid as number), "SIGKILL");
        } catch {
          // Gone already.
        }
      }, 5000);
      await sway.stop();
      clearTimeout(killer);
    },
  };
}

/** Pixels of a window shown at `outer` (guid's frame included) that are not what they must be; empty when exact. */
export async function windowMismatches(
  host: FuzzHost,
  outer: HostRect,
  border: number,
  frameColor: number,
  content: (x: number, y: number) => number,
): Promise<string[]> {
  const points: Array<{ x: number; y: number; expected: number; what: string }> = [];
  for (let y = 0; y < outer.height; y++) {
    for (let x = 0; x < outer.width; x++) {
      const inside = x >= border && x < outer.width - border && y >= border && y < outer.height - border;
      points.push({
        x: outer.x + x,
        y: outer.y + y,
        expected: inside ? content(x - border, y - border) : frameColor,
        what: inside ? `content (${x - border},${y - border})` : `frame (${x},${y})`,
      });
    }
  }
  const got = await host.pixels(points);
  const wrong: string[] = [];
  points.forEach((point, i) => {
    const value = got[i] as number;
    if (value !== point.expected && wrong.length < 6) {
      wrong.push(
        `${point.what} is #${value.toString(16).padStart(6, "0")}, not #${point.expected.toString(16).padStart(6, "0")}`,
      );
    }
  });
  return wrong;
}
