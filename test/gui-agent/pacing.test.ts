/**
 * Frame pacing in the agent, with weston-simple-shm (which draws a frame
 * each time its frame callback fires): held while no daemon shows its
 * window, paced to the output's 60 Hz while one does, held again when the
 * daemon goes. Rates are counted on the window's commit signal over a
 * measured second, after the event that changed them.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";

import pino from "pino";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";

import type { ShellWindow } from "../../compositor/index.ts";
import { startAgent, type GuiAgent } from "../../gui-agent/index.ts";
import { startWestonSimpleShm, waitForFirstWindow, type RunningApp } from "../helpers/apps.ts";
import { connectDaemonPeer, type DaemonPeer } from "../helpers/daemon-peer.ts";
import { READY_TIMEOUT_MS, within, withStartup } from "../helpers/processes.ts";

const AGENT_DOMAIN = 11;
const GUI_DOMAIN = 0;
/** How long the agent may take to notice a daemon leave or finish a handshake (ms). */
const EVENT_TIMEOUT_MS = 10_000;

let dir: string;
let agent: GuiAgent;
const apps: RunningApp[] = [];
let peer: DaemonPeer | null = null;

beforeAll(async () => {
  dir = mkdtempSync(path.join(tmpdir(), "qubes-pacing-test-"));
  agent = await startAgent({
    guiDomain: GUI_DOMAIN,
    ownDomain: AGENT_DOMAIN,
    vchan: "socket",
    grants: "memfd",
    socketDir: dir,
    waylandDisplay: path.join(dir, "wayland-pacing"),
    log: pino({ level: "silent" }),
  });
  // startAgent compiles its keymap with xkbcli: a process start.
}, withStartup(10_000));

afterEach(async () => {
  for (const app of apps.splice(0)) await app.stop();
  peer?.close();
  peer = null;
});

afterAll(() => {
  agent?.stop();
  rmSync(dir, { recursive: true, force: true });
});

/** Commits of `window` per second, counted over the next `ms` ms. */
function commitRate(window: ShellWindow, ms: number): Promise<number> {
  let count = 0;
  const off = window.events.commit.add(() => void (count += 1));
  return new Promise((resolve) =>
    setTimeout(() => {
      off();
      resolve((count * 1000) / ms);
    }, ms),
  );
}

describe("frame callbacks", { timeout: withStartup(30_000) }, () => {
  it("hold weston-simple-shm while no daemon shows it, pace it to 60 Hz while one does, and hold it when the daemon goes", async () => {
    const app = startWestonSimpleShm({ runtimeDir: dir, display: agent.compositor.socketPath });
    apps.push(app);
    const window = await waitForFirstWindow(agent.compositor, app, (w) => w.title === "simple-shm");
    // Its first frames come while the window is new; then nothing shows it.
    await commitRate(window, 200);
    const alone = await commitRate(window, 1000);

    peer = await within(
      connectDaemonPeer({ agentDomain: AGENT_DOMAIN, guiDomain: GUI_DOMAIN, socketDir: dir }),
      EVENT_TIMEOUT_MS,
      "the daemon stand-in's connection",
    );
    await peer.waitForWindow((w) => w.title === "simple-shm", "simple-shm shown by the daemon", READY_TIMEOUT_MS);
    const shown = await commitRate(window, 1000);

    const gone = new Promise<void>((resolve) => agent.once("disconnected", () => resolve()));
    peer.close();
    peer = null;
    await within(gone, EVENT_TIMEOUT_MS, "the agent noticing the daemon left");
    await commitRate(window, 200);
    const left = await commitRate(window, 1000);

    if (process.env.SHOW_FIGURES !== undefined) console.log(JSON.stringify({ alone, shown, left }));
    expect(alone, "commits/s while no daemon shows the window").toBeLessThanOrEqual(2);
    expect(shown, "commits/s while a daemon shows the window").toBeGreaterThanOrEqual(20);
    expect(shown, "commits/s while a daemon shows the window").toBeLessThanOrEqual(70);
    expect(left, "commits/s after the daemon left").toBeLessThanOrEqual(2);
    expect(app.child.exitCode).toBeNull();
  });
});
