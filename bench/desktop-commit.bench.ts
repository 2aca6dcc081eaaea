/**
 * qubes-gui-desktop's latency: from an app's commit of a 1280×800 window to
 * its pixels being in the desktop's output, and to the browser having drawn
 * them, for full-window damage and for one 64×64 rectangle.
 *
 * Three processes: the app (bench/peers/damage-app.ts, a Wayland client of
 * ours with two XRGB8888 shm buffers), the desktop (Desktop and its viewer,
 * in this process, as qubes-gui-desktop runs them) and Debian's chromium on
 * the viewer page (headless, deviceScaleFactor 1, a viewport larger than the
 * 1920×1080 output). Every timestamp is CLOCK_MONOTONIC: the app's just
 * before its wl_surface.commit (its drawing is done by then), ours in the
 * desktop's `frame` listener (added before the viewer's, so it does not
 * wait for the viewer's encoding) and the viewer's `shownNs` when the page's
 * ack arrives (the page acks after its BGRX→RGBA swizzle and putImageData;
 * the browser's own paint to its surface is not included). One update is in
 * flight at a time: the next is sent only once the last is in the output
 * and, with a page open, acknowledged by it.
 *
 * Two passes. The output figures come from the first, with no browser
 * connected (the desktop's own work: reading the commit, composing, the
 * frame callbacks); the browser figures from the second, with the page
 * drawing every frame (its notes give the output time seen then, as the
 * browser's work competes for the CPUs).
 *
 * Beside them, in the same run: memcpy (TypedArray.set) of the damaged
 * bytes and one eventfd round trip between two C processes for the output
 * figures; for the browser figures, the same bytes sent over a bare
 * WebSocket from this process to a blank page in the same chromium, drawn
 * there with putImageData (ready RGBA, no swizzle) and acknowledged, one
 * such round trip after each update, so both see the same load.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import os, { tmpdir } from "node:os";
import path from "node:path";

import pino from "pino";
import { chromium, type Browser, type Page } from "playwright-core";
import { WebSocketServer, type WebSocket } from "ws";

import { compileKeymap, type Rect } from "../compositor/index.ts";
import { Desktop, startViewer, type FrameShown } from "../desktop/index.ts";
import type { Signal } from "../wayland/index.ts";
import {
  READY_TIMEOUT_MS,
  benchDir,
  childLines,
  sample,
  stats,
  type BenchContext,
  type BenchRow,
  type Stats,
} from "./lib.ts";
import { cEventfdRoundTrips } from "./native-eventfd-roundtrip.bench.ts";

/** The output: large enough that the cascaded 1280×800 window (at 32, 56) is wholly on it. */
const OUTPUT = { width: 1920, height: 1080 };
const WINDOW = { width: 1280, height: 800 };
/** The small update: 64×64 in the window's middle (buffer pixels). */
const SMALL: Rect = { x: 608, y: 368, width: 64, height: 64 };
/** The viewport: larger than the output, so the canvas is drawn 1:1 and whole. */
const VIEWPORT = { width: 2000, height: 1200 };
/** How long one update may take to reach the output and the browser (a bound on a hang, not a target). */
const UPDATE_TIMEOUT_MS = 20_000;
const CHROMIUM_PATH = "/usr/bin/chromium";
const CHROMIUM_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

/** Headless chromium with a throw-away HOME; rejects naming what is missing or slow. */
async function launchChromium(home: string): Promise<Browser> {
  if (!existsSync(CHROMIUM_PATH)) {
    throw new Error(`${CHROMIUM_PATH} is missing: apt-get install -y --no-install-recommends chromium`);
  }
  try {
    return await chromium.launch({
      executablePath: CHROMIUM_PATH,
      args: CHROMIUM_ARGS,
      headless: true,
      timeout: READY_TIMEOUT_MS,
      env: { ...process.env, HOME: home },
    });
  } catch (error) {
    throw new Error(`chromium did not start within ${READY_TIMEOUT_MS} ms: ${(error as Error).message}`);
  }
}

/**
 * Every value a signal emits from now on, kept; `next` waits (bounded,
 * rejecting with what never came) for the first kept value that matches
 * and forgets it and everything before it.
 */
class Recorder<S, T = S> {
  readonly #values: T[] = [];
  #wake: (() => void) | null = null;
  readonly stop: () => void;

  constructor(signal: Signal<S>, map: (value: S) => T) {
    this.stop = signal.add((value) => {
      this.#values.push(map(value));
      this.#wake?.();
    });
  }

  clear(): void {
    this.#values.length = 0;
  }

  async next(match: (value: T) => boolean, what: string, timeoutMs = UPDATE_TIMEOUT_MS): Promise<T> {
    const take = (): T | undefined => {
      const at = this.#values.findIndex(match);
      if (at < 0) return undefined;
      const found = this.#values[at] as T;
      this.#values.splice(0, at + 1);
      return found;
    };
    const now = take();
    if (now !== undefined) return now;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#wake = null;
        reject(new Error(`${what} did not come within ${timeoutMs} ms`));
      }, timeoutMs);
      this.#wake = () => {
        const found = take();
        if (found === undefined) return;
        clearTimeout(timer);
        this.#wake = null;
        resolve(found);
      };
    });
  }
}

function contains(outer: Rect, inner: Rect): boolean {
  return (
    inner.x >= outer.x &&
    inner.y >= outer.y &&
    inner.x + inner.width <= outer.x + outer.width &&
    inner.y + inner.height <= outer.y + outer.height
  );
}

/** An output frame as our listener saw it: its damage, its earliest commit, and when we saw it. */
interface SeenFrame {
  damage: readonly Rect[];
  commitTimeNs: bigint | null;
  seenNs: bigint;
}

/** Per update, µs from the app's commit: to the desktop reading it, to the output frame, to the browser's ack (NaN without a page). */
interface UpdateTimes {
  received: number;
  composed: number;
  shown: number;
}

/** The blank page's script: draws each binary message (u32 width, u32 height, RGBA pixels) at (0, 0) and acks it. */
const BARE_PAGE_SCRIPT = String.raw`
  const ctx = document.getElementById("c").getContext("2d", { alpha: false });
  const ws = new WebSocket(URL);
  ws.binaryType = "arraybuffer";
  ws.onmessage = (event) => {
    const size = new Uint32Array(event.data, 0, 2);
    ctx.putImageData(new ImageData(new Uint8ClampedArray(event.data, 8), size[0], size[1]), 0, 0);
    ws.send("ack");
  };
`;

/** The bare browser leg: a blank page in the same browser that draws what a plain WebSocket sends it. */
interface BarePage {
  /** Sends a `width` × `height` RGBA image; resolves with the µs until the page's ack (after its putImageData). */
  roundTrip(width: number, height: number): Promise<number>;
  close(): Promise<void>;
}

/** Opens the bare page (canvas `width` × `height`) on a WebSocket server of this process. */
async function openBarePage(browser: Browser, width: number, height: number): Promise<BarePage> {
  const server: Server = createServer((_request, response) => {
    response.writeHead(200, { "Content-Type": "text/html" });
    response.end(`<!doctype html><canvas id="c" width="${width}" height="${height}"></canvas>`);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as AddressInfo).port;
  const wss = new WebSocketServer({ server, perMessageDeflate: false });
  const connected = new Promise<WebSocket>((resolve) => wss.once("connection", resolve));
  const page = await browser.newPage({ viewport: VIEWPORT, deviceScaleFactor: 1 });
  const close = async (): Promise<void> => {
    await page.close().catch(() => undefined);
    for (const client of wss.clients) client.terminate();
    wss.close();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  };
  try {
    await page.goto(`http://127.0.0.1:${port}/`);
    await page.evaluate(BARE_PAGE_SCRIPT.replace("URL", JSON.stringify(`ws://127.0.0.1:${port}/`)));
    const ws = await within(connected, "the bare page's WebSocket");
    const messages = new Map<number, Buffer>();
    const messageOf = (w: number, h: number): Buffer => {
      let message = messages.get(w * 65536 + h);
      if (message === undefined) {
        message = Buffer.alloc(8 + w * h * 4, 0x7f);
        message.writeUInt32LE(w, 0);
        message.writeUInt32LE(h, 4);
        messages.set(w * 65536 + h, message);
      }
      return message;
    };
    return {
      roundTrip: (w, h) => {
        const message = messageOf(w, h);
        return within(
          new Promise<number>((resolve) => {
            const start = process.hrtime.bigint();
            ws.once("message", () => resolve(Number(process.hrtime.bigint() - start) / 1000));
            ws.send(message, { binary: true });
          }),
          `the bare page's ack of ${w}×${h} pixels`,
        );
      },
      close,
    };
  } catch (error) {
    await close();
    throw error;
  }
}

/** `promise`, or a rejection naming `what` after `timeoutMs`. */
async function within<T>(promise: Promise<T>, what: string, timeoutMs = UPDATE_TIMEOUT_MS): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${what} did not come within ${timeoutMs} ms`)), timeoutMs);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

function ended(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once("exit", () => resolve()));
}

/**
 * This case's limits, above the runner's defaults: chromium's start and a
 * full frame's browser leg (0.2–0.5 s median on a loaded two-core machine)
 * make it long; measured 267 s full and 28–32 s quick at load 12–14.
 */
export const timeLimitMs = { full: 15 * 60_000, quick: 3 * 60_000 };

export default async function desktopCommit(context: BenchContext): Promise<BenchRow[]> {
  const load = os.loadavg();
  const dir = mkdtempSync(path.join(tmpdir(), "qubes-desktop-bench-"));
  const log = pino({ level: "silent" });
  const desktop = new Desktop({
    socket: path.join(dir, "wayland-desktop"),
    size: OUTPUT,
    keymap: await compileKeymap({ layout: "us" }),
    log,
  });
  // Before the viewer's listener: the time is taken when the output holds the pixels, not after the viewer sent them.
  const frames = new Recorder(desktop.events.frame, (frame): SeenFrame => ({
    ...frame,
    seenNs: process.hrtime.bigint(),
  }));
  let app: ChildProcess | null = null;
  let browser: Browser | null = null;
  let page: Page | null = null;
  let bare: BarePage | null = null;
  let viewer: Awaited<ReturnType<typeof startViewer>> | null = null;
  try {
    viewer = await startViewer({ output: desktop, input: desktop, log });
    const shown = new Recorder<FrameShown>(viewer.frameShown, (value) => value);
    const browserStarting = launchChromium(dir);
    browserStarting.catch(() => undefined);
    app = spawn(
      process.execPath,
      ["--import", "tsx", path.join(benchDir, "peers", "damage-app.ts"), String(WINDOW.width), String(WINDOW.height)],
      { env: { ...process.env, WAYLAND_DISPLAY: desktop.socketPath }, stdio: ["pipe", "pipe", "inherit"] },
    );
    const appLine = childLines(app, "the app", UPDATE_TIMEOUT_MS);
    if ((await appLine("ready", READY_TIMEOUT_MS)) !== "ready") throw new Error("the app did not start");
    const placed = desktop.shown.find((window) => window.kind === "toplevel");
    if (placed === undefined) throw new Error("the app's window is not on the desktop");
    const origin = placed.rect;
    if (origin.x + WINDOW.width > OUTPUT.width || origin.y + WINDOW.height > OUTPUT.height) {
      throw new Error(
        `the window at (${origin.x}, ${origin.y}) does not fit on the ${OUTPUT.width}×${OUTPUT.height} output`,
      );
    }
    /**
     * One update: the app commits, the output is composed and, with a page
     * open, the browser acks. Times in µs from the app's commit; `shown` is
     * NaN without a page.
     */
    const update = async (kind: "full" | "small", withPage: boolean): Promise<UpdateTimes> => {
      const rect = kind === "full" ? { x: 0, y: 0, ...WINDOW } : SMALL;
      const onOutput = { ...rect, x: rect.x + origin.x, y: rect.y + origin.y };
      frames.clear();
      shown.clear();
      app?.stdin?.write(kind === "full" ? "full\n" : `small ${rect.x} ${rect.y} ${rect.width} ${rect.height}\n`);
      const stamped = appLine("its commit time");
      const composed = frames.next(
        (seen) => seen.commitTimeNs !== null && seen.damage.some((damage) => contains(damage, onOutput)),
        `the output frame of the ${kind} update`,
      );
      // When one of the two fails, the other's later timeout is not an unhandled rejection.
      stamped.catch(() => undefined);
      composed.catch(() => undefined);
      const [stampLine, frame] = await Promise.all([stamped, composed]);
      const ack = withPage
        ? await shown.next(
            (seen) => seen.commitTimeNs === frame.commitTimeNs,
            `the browser's ack of the ${kind} update`,
          )
        : null;
      const start = BigInt(stampLine.split(" ")[1] as string);
      const micros = (end: bigint): number => Number(end - start) / 1000;
      return {
        received: micros(frame.commitTimeNs as bigint),
        composed: micros(frame.seenNs),
        shown: ack === null ? Number.NaN : micros(ack.shownNs),
      };
    };
    /** Updates of one kind; with a page, each followed by one bare round trip of the same bytes, so both see the same load. */
    const measure = async (
      kind: "full" | "small",
      bare: BarePage | null,
      iterations: number,
    ): Promise<{ times: UpdateTimes[]; bare: number[] }> => {
      const size = kind === "full" ? WINDOW : SMALL;
      const times: UpdateTimes[] = [];
      const bareTimes: number[] = [];
      for (let i = -Math.min(20, iterations); i < iterations; i++) {
        const timesOfUpdate = await update(kind, bare !== null);
        const bareTime = bare === null ? Number.NaN : await bare.roundTrip(size.width, size.height);
        if (i < 0) continue;
        times.push(timesOfUpdate);
        bareTimes.push(bareTime);
      }
      return { times, bare: bareTimes };
    };
    const fullCount = context.iterations(200, 5);
    const smallCount = context.iterations(1000, 10);
    // First the desktop alone (no browser connected, chromium idle), then with the page drawing every frame.
    const full = (await measure("full", null, fullCount)).times;
    const small = (await measure("small", null, smallCount)).times;

    browser = await browserStarting;
    page = await browser.newPage({ viewport: VIEWPORT, deviceScaleFactor: 1 });
    await page.goto(viewer.url);
    // The page's first frame (the whole output) is drawn before any clock starts.
    await shown.next(() => true, "the page's first frame", READY_TIMEOUT_MS);
    bare = await openBarePage(browser, WINDOW.width, WINDOW.height);
    const { times: fullShown, bare: bareFull } = await measure("full", bare, fullCount);
    const { times: smallShown, bare: bareSmall } = await measure("small", bare, smallCount);
    const rt = stats(cEventfdRoundTrips(context.iterations(20_000, 500), "free"));
    const fullBytes = WINDOW.width * WINDOW.height * 4;
    const source = new Uint8Array(fullBytes).fill(7);
    const target = new Uint8Array(fullBytes + 4096);
    const memcpyFullSamples = sample(() => target.set(source), fullCount, 10);
    const memcpyFull = stats(memcpyFullSamples);
    const smallSource = source.subarray(0, SMALL.width * SMALL.height * 4);
    const memcpySmall = stats(sample(() => target.set(smallSource, 4096), smallCount, 100));

    const field = (times: UpdateTimes[], key: keyof UpdateTimes): Stats => stats(times.map((t) => t[key]));
    const median = (s: Stats): string => `median ${s.median.toFixed(s.median >= 100 ? 0 : 1)} µs`;
    const context_ = `load average at start ${load.map((x) => x.toFixed(2)).join(", ")} on ${os.availableParallelism()} CPUs`;
    return [
      {
        name: "desktop: 1280×800 app commit to its pixels in the desktop's output, full-window damage (2 processes)",
        unit: "µs",
        value: field(full, "composed"),
        baseline: {
          name: "memcpy of 4,096,000 bytes + one C eventfd round trip",
          value: stats(memcpyFullSamples.map((x) => x + rt.median)),
        },
        better: "lower",
        notes: [
          `of which app commit → desktop reads it: ${median(field(full, "received"))}`,
          `memcpy alone: ${median(memcpyFull)}; C round trip: ${median(rt)}`,
          context_,
        ],
      },
      {
        name: "desktop: 1280×800 app commit to its pixels in the desktop's output, one 64×64 damage (2 processes)",
        unit: "µs",
        value: field(small, "composed"),
        baseline: { name: "one eventfd round trip between two C processes", value: rt },
        better: "lower",
        notes: [
          `of which app commit → desktop reads it: ${median(field(small, "received"))}`,
          `memcpy of the 16,384 damaged bytes: ${median(memcpySmall)}`,
        ],
      },
      {
        name: "desktop: 1280×800 app commit to the browser's ack of its pixels, full-window damage (3 processes)",
        unit: "µs",
        value: field(fullShown, "shown"),
        baseline: {
          name: "4,096,000 bytes over a bare WebSocket to chromium, putImageData, ack",
          value: stats(bareFull),
        },
        better: "lower",
        notes: [
          `of which app commit → output frame, with the page open: ${median(field(fullShown, "composed"))}`,
          `output frame → browser's ack: ${median(stats(fullShown.map((t) => t.shown - t.composed)))}`,
        ],
      },
      {
        name: "desktop: 1280×800 app commit to the browser's ack of its pixels, one 64×64 damage (3 processes)",
        unit: "µs",
        value: field(smallShown, "shown"),
        baseline: {
          name: "16,384 bytes over a bare WebSocket to chromium, putImageData, ack",
          value: stats(bareSmall),
        },
        better: "lower",
        notes: [
          `of which app commit → output frame, with the page open: ${median(field(smallShown, "composed"))}`,
          `output frame → browser's ack: ${median(stats(smallShown.map((t) => t.shown - t.composed)))}`,
        ],
      },
    ];
  } finally {
    frames.stop();
    if (app !== null) {
      app.stdin?.end();
      const exited = ended(app);
      const timer = setTimeout(() => app?.kill("SIGKILL"), 5000);
      await exited;
      clearTimeout(timer);
    }
    await bare?.close();
    await page?.close().catch(() => undefined);
    if (browser !== null) await within(browser.close(), "chromium's end", 15_000).catch(() => undefined);
    await viewer?.close();
    desktop.destroy();
    rmSync(dir, { recursive: true, force: true });
  }
}
