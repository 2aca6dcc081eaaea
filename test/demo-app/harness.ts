/**
 * Runs the demo app (`node bin/qubes-demo-app.js`) as a child process under
 * the compositor core in this process, and records every commit of its
 * windows as a copy of their pixels, so that tests compare what the app
 * shows pixel for pixel. Frames are paced as the Qubes side paces them
 * (frameDone after each commit). Every wait is bounded and says what never
 * happened.
 */
import { spawn, type ChildProcess } from "node:child_process";
import path from "node:path";

import type { Compositor, Rect, ShellWindow } from "../../compositor/index.ts";
import type { AppDisplay } from "../helpers/apps.ts";
import { finished, repoRoot, whenReady, within } from "../helpers/processes.ts";

/** The line the app prints once its first frame is committed. */
export const SHOWN_LINE = /^qubes-demo-app: shown (.+) (\d+)x(\d+)$/;

/** How long a test waits for one thing the app does after it is up (ms). */
export const EVENT_MS = 15_000;

/** One committed image of a window: 0x00RRGGBB pixels, row-major. */
export interface Image {
  readonly width: number;
  readonly height: number;
  readonly pixels: Uint32Array;
}

/** The pixel at (x, y). */
export function pixelAt(image: Image, x: number, y: number): number {
  return image.pixels[y * image.width + x] as number;
}

/** Every pixel of `image` inside `rect`, row-major. */
export function region(image: Image, rect: Rect): number[] {
  const out: number[] = [];
  for (let y = rect.y; y < rect.y + rect.height; y++) {
    for (let x = rect.x; x < rect.x + rect.width; x++) out.push(pixelAt(image, x, y));
  }
  return out;
}

/** The points where two images of one size differ. */
export function differences(a: Image, b: Image): Array<{ x: number; y: number }> {
  if (a.width !== b.width || a.height !== b.height) throw new Error("images of different sizes");
  const out: Array<{ x: number; y: number }> = [];
  for (let i = 0; i < a.pixels.length; i++) {
    if (a.pixels[i] !== b.pixels[i]) out.push({ x: i % a.width, y: Math.floor(i / a.width) });
  }
  return out;
}

/** What one commit showed: the image and the damage the app sent. */
export interface RecordedCommit {
  readonly image: Image;
  readonly damage: readonly Rect[];
}

/** Every commit of one window, with waits on what it shows. */
export class WindowRecorder {
  readonly window: ShellWindow;
  readonly commits: RecordedCommit[] = [];
  readonly #watchers = new Set<() => void>();
  #destroyed = false;

  constructor(window: ShellWindow) {
    this.window = window;
    window.events.commit.add((commit) => {
      const layer = commit.layers[0];
      if (layer === undefined) return;
      const { pixels } = layer;
      const bytes = pixels.bytes;
      const out = new Uint32Array(pixels.width * pixels.height);
      for (let y = 0; y < pixels.height; y++) {
        const row = bytes.slice(y * pixels.stride, y * pixels.stride + pixels.width * 4);
        const words = new Uint32Array(row.buffer, row.byteOffset, pixels.width);
        for (let x = 0; x < pixels.width; x++) out[y * pixels.width + x] = (words[x] as number) & 0xffffff;
      }
      this.commits.push({
        image: { width: pixels.width, height: pixels.height, pixels: out },
        damage: commit.damage.map((r) => ({ ...r })),
      });
      setImmediate(() => window.frameDone(Date.now()));
      this.#wake();
    });
    window.events.destroy.add(() => {
      this.#destroyed = true;
      this.#wake();
    });
  }

  /** The last committed image. */
  get image(): Image {
    const last = this.commits[this.commits.length - 1];
    if (last === undefined) throw new Error(`window "${this.window.title}" committed nothing yet`);
    return last.image;
  }

  /**
   * Resolves with the first commit from the `from`-th on (default: any, the
   * latest first) whose image satisfies `predicate`; rejects naming `what`
   * after `ms` or when the window is destroyed first.
   */
  waitForImage(predicate: (image: Image) => boolean, what: string, from = 0, ms = EVENT_MS): Promise<RecordedCommit> {
    let check = (): void => undefined;
    const found = new Promise<RecordedCommit>((resolve, reject) => {
      let next = from;
      check = () => {
        for (; next < this.commits.length; next++) {
          const commit = this.commits[next] as RecordedCommit;
          if (predicate(commit.image)) {
            resolve(commit);
            return;
          }
        }
        if (this.#destroyed) reject(new Error(`the window was destroyed before ${what}`));
      };
      this.#watchers.add(check);
      check();
    });
    return within(found, ms, what).finally(() => this.#watchers.delete(check));
  }

  /** Resolves when the window is destroyed (within `ms`). */
  whenDestroyed(ms = EVENT_MS): Promise<void> {
    let check = (): void => undefined;
    const gone = new Promise<void>((resolve) => {
      check = () => {
        if (this.#destroyed) resolve();
      };
      this.#watchers.add(check);
      check();
    });
    return within(gone, ms, `the destruction of window "${this.window.title}"`).finally(() =>
      this.#watchers.delete(check),
    );
  }

  #wake(): void {
    for (const watcher of [...this.#watchers]) watcher();
  }
}

/** Records every window of `compositor` from its creation on (before its first commit). */
export class WindowWatcher {
  readonly #recorders = new Map<ShellWindow, WindowRecorder>();
  readonly #watchers = new Set<() => void>();

  constructor(compositor: Compositor) {
    const watch = (window: ShellWindow): void => {
      this.#recorders.set(window, new WindowRecorder(window));
      const wake = (): void => {
        for (const watcher of [...this.#watchers]) watcher();
      };
      window.events.map.add(wake);
      window.events.title.add(wake);
    };
    for (const window of compositor.windows) watch(window);
    compositor.events.newWindow.add(watch);
  }

  /** The recorder of the first mapped window that satisfies `predicate` (within `ms`). */
  waitForWindow(predicate: (window: ShellWindow) => boolean, what: string, ms = EVENT_MS): Promise<WindowRecorder> {
    let check = (): void => undefined;
    const found = new Promise<WindowRecorder>((resolve) => {
      check = () => {
        for (const [window, recorder] of this.#recorders) {
          if (window.mapped && recorder.commits.length > 0 && predicate(window)) {
            resolve(recorder);
            return;
          }
        }
      };
      this.#watchers.add(check);
      check();
    });
    // A window maps at its first commit: the recorder may see the commit just after map.
    const poll = setInterval(check, 20);
    return within(found, ms, what).finally(() => {
      clearInterval(poll);
      this.#watchers.delete(check);
    });
  }
}

/** A demo app started by a test. */
export interface DemoAppProcess {
  readonly child: ChildProcess;
  /** Resolves when it ends, with its status and output. */
  readonly done: Promise<{ code: number | null; signal: string | null; stdout: string; stderr: string }>;
  /** Kills it (SIGKILL) when it still runs, and waits for its end. */
  stop(): Promise<void>;
}

/** Starts `node bin/qubes-demo-app.js args` with `env` as its whole environment (plus PATH). */
export function spawnDemoApp(args: readonly string[], env: NodeJS.ProcessEnv): DemoAppProcess {
  const child = spawn(process.execPath, [path.join(repoRoot, "bin", "qubes-demo-app.js"), ...args], {
    cwd: repoRoot,
    env: { PATH: process.env.PATH, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const done = finished(child);
  done.catch(() => undefined);
  return {
    child,
    done,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
      await done.catch(() => undefined);
    },
  };
}

/**
 * Starts the demo app on `display` and waits for its "shown" line (the start
 * may take as long as the machine needs): resolves with the process and the line.
 */
export async function startDemoApp(
  display: AppDisplay,
  args: readonly string[],
  extraEnv: NodeJS.ProcessEnv = {},
): Promise<DemoAppProcess & { shown: string }> {
  const app = spawnDemoApp(args, {
    XDG_RUNTIME_DIR: display.runtimeDir,
    WAYLAND_DISPLAY: display.display,
    ...extraEnv,
  });
  try {
    const shown = await whenReady(app.child, SHOWN_LINE);
    return { ...app, shown };
  } catch (error) {
    await app.stop();
    throw error;
  }
}
