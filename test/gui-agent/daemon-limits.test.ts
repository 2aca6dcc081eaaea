/**
 * The daemon against the apps: what a daemon sends (CONFIGURE sizes, the
 * handshake's screen, bursts of CONFIGUREs, WINDOW_DUMPs it never
 * acknowledges) must not end or starve the domain's apps, nor its memory.
 * Real apps (foot, gtk3-demo) and the daemon stand-in on a real vchan; the
 * apps run with WAYLAND_DEBUG=1 so that every configure they received can
 * be read back from their trace.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { Writable } from "node:stream";

import pino from "pino";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";

import type { ShellWindow } from "../../compositor/index.ts";
import { MAX_UNACKED_DUMPS } from "../../gui-agent/bridge.ts";
import { startAgent, type GuiAgent } from "../../gui-agent/index.ts";
import { framebufferPages } from "../../shm/index.ts";
import { connect } from "../../wayland/index.ts";
import { startFoot, startGtk3Demo, waitForFirstWindow, type AppDisplay, type RunningApp } from "../helpers/apps.ts";
import { connectDaemonPeer, type DaemonPeer, type PeerWindow } from "../helpers/daemon-peer.ts";
import { startFrameClient } from "../helpers/frame-client.ts";
import { READY_TIMEOUT_MS, within, withStartup } from "../helpers/processes.ts";
import { resizeSize } from "./peers/frame-pattern.ts";

const AGENT_DOMAIN = 13;
const GUI_DOMAIN = 0;
/** How long the agent may take to notice a daemon leave or finish a handshake (ms). */
const EVENT_TIMEOUT_MS = 10_000;
const MAX_WIDTH = 16384;
const MAX_HEIGHT = 6144;
/** How long an app may take to follow a configure to a new size, a 16384×6144 one included (ms). */
const RESIZE_TIMEOUT_MS = 30_000;

let dir: string;
let agent: GuiAgent;
let peer: DaemonPeer;
let display: AppDisplay;
const apps: RunningApp[] = [];
/** The agent's log lines (JSON) at warn and above. */
const warnings: string[] = [];

beforeAll(async () => {
  dir = mkdtempSync(path.join(tmpdir(), "qubes-daemon-limits-test-"));
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      warnings.push(...chunk.toString("utf8").trim().split("\n"));
      done();
    },
  });
  agent = await startAgent({
    guiDomain: GUI_DOMAIN,
    ownDomain: AGENT_DOMAIN,
    vchan: "socket",
    grants: "memfd",
    socketDir: dir,
    waylandDisplay: path.join(dir, "wayland-limits"),
    log: pino({ level: "warn" }, sink),
  });
  display = { runtimeDir: dir, display: agent.compositor.socketPath };
  peer = await within(
    connectDaemonPeer({ agentDomain: AGENT_DOMAIN, guiDomain: GUI_DOMAIN, socketDir: dir }),
    EVENT_TIMEOUT_MS,
    "the daemon stand-in's connection",
  );
}, withStartup(10_000));

afterEach(async () => {
  for (const app of apps.splice(0)) await app.stop();
});

afterAll(() => {
  peer?.close();
  agent?.stop();
  rmSync(dir, { recursive: true, force: true });
});

/** Replaces the daemon stand-in: the current one leaves, a new one connects with these options. */
async function reconnect(
  options: { screen?: { width: number; height: number }; ackDumps?: boolean } = {},
): Promise<void> {
  const gone = new Promise<void>((resolve) => agent.once("disconnected", () => resolve()));
  const back = new Promise<void>((resolve) => agent.once("connected", () => resolve()));
  peer.close();
  await within(gone, EVENT_TIMEOUT_MS, "the agent noticing the daemon left");
  peer = await within(
    connectDaemonPeer({ agentDomain: AGENT_DOMAIN, guiDomain: GUI_DOMAIN, socketDir: dir, ...options }),
    EVENT_TIMEOUT_MS,
    "the daemon stand-in's connection",
  );
  await within(back, EVENT_TIMEOUT_MS, "the agent's handshake with the new daemon");
}

/** Starts foot or gtk3-demo with a libwayland trace, and waits for its window on both sides. */
async function startShown(
  program: "foot" | "gtk3-demo",
): Promise<{ app: RunningApp; shell: ShellWindow; window: PeerWindow }> {
  const app =
    program === "foot" ? startFoot(display, [], { debug: true }) : startGtk3Demo(display, [], { debug: true });
  apps.push(app);
  const shell = await waitForFirstWindow(agent.compositor, app, (w) => w.kind === "toplevel");
  const id = agent.bridge.windowId(shell);
  const window = await peer.waitForWindow((w) => w.id === id, `${program}'s window at the daemon`, READY_TIMEOUT_MS);
  return { app, shell, window };
}

/** Every xdg_toplevel.configure (width, height) the app received, from its WAYLAND_DEBUG trace. */
function configuresOf(app: RunningApp): Array<[number, number]> {
  return [...app.stderr().matchAll(/xdg_toplevel@\d+\.configure\((-?\d+), (-?\d+),/g)].map(
    (match) => [Number(match[1]), Number(match[2])] as [number, number],
  );
}

/** Resolves once the window committed at `width`×`height`; rejects naming the size after `timeoutMs`. */
function committedAt(
  shell: ShellWindow,
  app: RunningApp,
  width: number,
  height: number,
  timeoutMs: number,
): Promise<void> {
  return new Promise((resolve, reject) => {
    const check = (): void => {
      if (shell.size.width === width && shell.size.height === height) finish(null);
      else if (app.child.exitCode !== null || app.child.signalCode !== null) {
        finish(
          new Error(
            `${app.program} ended (${app.child.exitCode ?? app.child.signalCode}) before drawing at ${width}×${height}`,
          ),
        );
      }
    };
    const off = shell.events.commit.add(check);
    const onExit = (): void => check();
    app.child.once("exit", onExit);
    const timer = setTimeout(
      () =>
        finish(
          new Error(
            `${app.program} drew no ${width}×${height} frame within ${timeoutMs} ms (now ${shell.size.width}×${shell.size.height})`,
          ),
        ),
      timeoutMs,
    );
    function finish(error: Error | null): void {
      clearTimeout(timer);
      off();
      app.child.off("exit", onExit);
      if (error === null) resolve();
      else reject(error);
    }
    check();
  });
}

/** The mode (width×height) a client binding wl_output is told. */
async function outputMode(): Promise<string> {
  const connection = await connect({ display: agent.compositor.socketPath });
  try {
    let mode = "";
    connection.bind("wl_output", 4).on("mode", (_flags, width, height) => (mode = `${width}x${height}`));
    await connection.roundtrip();
    return mode;
  } finally {
    connection.destroy();
  }
}

describe("sizes from the daemon", { timeout: withStartup(2 * RESIZE_TIMEOUT_MS) }, () => {
  it.each(["foot", "gtk3-demo"] as const)(
    "%s gets CONFIGUREs of 100000×100000 and 4000000000×4000000000 as 16384×6144, the echo says so, and it lives",
    async (program) => {
      const { app, shell, window } = await startShown(program);
      for (const side of [100_000, 4_000_000_000]) {
        const before = peer.messages("CONFIGURE", window.id).length;
        peer.send({
          type: "CONFIGURE",
          window: window.id,
          x: 0,
          y: 0,
          width: side,
          height: side,
          override_redirect: 0,
        });
        const echo = await peer.waitFor(
          () => peer.messages("CONFIGURE", window.id)[before],
          `the echo of ${side}×${side}`,
        );
        expect([echo.width, echo.height]).toEqual([MAX_WIDTH, MAX_HEIGHT]);
      }
      await committedAt(shell, app, MAX_WIDTH, MAX_HEIGHT, RESIZE_TIMEOUT_MS);
      // Back to a usual size: the app still follows.
      peer.send({ type: "CONFIGURE", window: window.id, x: 0, y: 0, width: 800, height: 600, override_redirect: 0 });
      await committedAt(shell, app, 800, 600, RESIZE_TIMEOUT_MS);
      const seen = configuresOf(app);
      expect(seen.filter(([width, height]) => width > MAX_WIDTH || height > MAX_HEIGHT)).toEqual([]);
      expect(seen).toContainEqual([MAX_WIDTH, MAX_HEIGHT]);
      expect(app.child.exitCode).toBeNull();
      expect(peer.errors).toEqual([]);
    },
  );

  it("makes the handshake's 1×1 screen a 640×480 output and 100000×100000 a 16384×6144 one; foot starts with a font", async () => {
    await reconnect({ screen: { width: 1, height: 1 } });
    expect(await outputMode()).toBe("640x480");
    // foot sizes its window from its font: 80×24 cells of a font of some pixels.
    const { window } = await startShown("foot");
    expect(window.width).toBeGreaterThan(200);
    expect(window.height).toBeGreaterThan(100);
    await reconnect({ screen: { width: 100_000, height: 100_000 } });
    expect(await outputMode()).toBe(`${MAX_WIDTH}x${MAX_HEIGHT}`);
    await reconnect();
    expect(await outputMode()).toBe("1920x1080");
  });
});

describe("a burst of 300 CONFIGUREs", { timeout: withStartup(RESIZE_TIMEOUT_MS) }, () => {
  it.each(["foot", "gtk3-demo"] as const)(
    "reaches %s as a few configures, one at a time; it stays connected and ends at the last size",
    async (program) => {
      const { app, shell, window } = await startShown(program);
      const before = configuresOf(app).length;
      for (let i = 0; i < 300; i++) {
        peer.send({
          type: "CONFIGURE",
          window: window.id,
          x: 20,
          y: 20,
          width: 600 + i,
          height: 400 + i,
          override_redirect: 0,
        });
      }
      await committedAt(shell, app, 899, 699, RESIZE_TIMEOUT_MS);
      // The daemon's last word on the size is the last size too.
      await peer.waitFor(() => {
        const last = peer.messages("CONFIGURE", window.id).at(-1);
        return last !== undefined && last.width === 899 && last.height === 699;
      }, "the daemon to know the window is 899×699");
      const got = configuresOf(app).slice(before);
      expect(got.at(-1)).toEqual([899, 699]);
      expect(got.length).toBeLessThan(30);
      expect(app.stderr()).not.toMatch(/error|unknown serial/i);
      expect(app.child.exitCode).toBeNull();
    },
  );
});

/** Resolves once `predicate` holds (checked every 10 ms); rejects naming `what` after `timeoutMs`. */
function until(predicate: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const check = (): void => {
      if (predicate()) resolve();
      else if (performance.now() - started > timeoutMs)
        reject(new Error(`${what} never happened within ${timeoutMs} ms`));
      else setTimeout(check, 10);
    };
    check();
  });
}

describe("a daemon that never acknowledges a WINDOW_DUMP", { timeout: withStartup(3 * RESIZE_TIMEOUT_MS) }, () => {
  it("holds at most 3 dumps of a window that resizes 300 times, and the pages go with the daemon", async () => {
    await reconnect({ ackDumps: false });
    const client = await startFrameClient(agent.compositor.socketPath);
    try {
      client.send("open 400 300");
      await client.waitForLine(/^open$/, "its window open", RESIZE_TIMEOUT_MS);
      const window = await peer.waitForWindow((w) => w.title === "frame-client", "the frame client's window");
      const largest = framebufferPages(1183, 887);
      let mostPages = 0;
      let mostRss = 0;
      const rssBefore = process.memoryUsage.rss();
      const sample = setInterval(() => {
        mostPages = Math.max(mostPages, agent.grants.counters.pagesShared);
        mostRss = Math.max(mostRss, process.memoryUsage.rss());
      }, 5);
      client.send("resize 300 3");
      await client.waitForLine(/^resized$/, "the end of its 300 frames", RESIZE_TIMEOUT_MS);
      clearInterval(sample);

      if (process.env.SHOW_FIGURES !== undefined) {
        const dumps = peer.messages("WINDOW_DUMP", window.id).length;
        console.log(JSON.stringify({ dumps, mostPages, rssGrowthMiB: (mostRss - rssBefore) / 2 ** 20 }));
      }
      // The reaction: the window keeps its framebuffer; the new size waits for an ack, said once at warn.
      expect(peer.messages("WINDOW_DUMP", window.id).length).toBe(MAX_UNACKED_DUMPS);
      expect(agent.counters.dumpWaits).toBeGreaterThanOrEqual(1);
      expect(warnings.join("\n")).toMatch(/has not acknowledged this window's last WINDOW_DUMPs/);
      // The dumped framebuffers, the current one and one being filled, at most.
      expect(mostPages).toBeLessThanOrEqual((MAX_UNACKED_DUMPS + 2) * largest);
      expect(mostRss - rssBefore).toBeLessThan(200 * 1024 * 1024);

      // The daemon leaves: only the window's own framebuffer stays granted.
      const gone = new Promise<void>((resolve) => agent.once("disconnected", () => resolve()));
      peer.close();
      await within(gone, EVENT_TIMEOUT_MS, "the agent noticing the daemon left");
      const last = resizeSize(299);
      await until(
        () => agent.grants.counters.pagesShared === framebufferPages(last.width, last.height),
        `the pages of all but the ${last.width}×${last.height} framebuffer to be revoked (now ${agent.grants.counters.pagesShared} pages)`,
      );
      // The next daemon gets the window at its latest size.
      peer = await within(
        connectDaemonPeer({ agentDomain: AGENT_DOMAIN, guiDomain: GUI_DOMAIN, socketDir: dir }),
        EVENT_TIMEOUT_MS,
        "the daemon stand-in's connection",
      );
      const replayed = await peer.waitForWindow((w) => w.title === "frame-client", "the window replayed");
      expect([replayed.framebuffer?.width, replayed.framebuffer?.height]).toEqual([last.width, last.height]);
    } finally {
      await client.stop();
    }
  });
});
