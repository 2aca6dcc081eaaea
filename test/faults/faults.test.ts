/**
 * Faults (issue 13, item 3): each test makes one fault happen to one domain,
 * or to the daemon or the host compositor, with two domains ("work" and
 * "personal") shown by guid on a real headless sway, and proves that nothing
 * belonging to the other domain is lost: its window stays on the host and a
 * new frame of it reaches the host with exact pixels. Where it makes sense,
 * the faulted domain comes back (a new agent or a new daemon shows its
 * window again). Faults about a process (kill -9, SIGSTOP, restarts, fd
 * limits) use real processes; those about exact bytes use hand-built agents
 * (test/helpers/agent-peer.ts), in a child process when it must be killed.
 */
import { execFileSync } from "node:child_process";
import { once } from "node:events";
import { readdirSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";

import { afterEach, describe, expect, it, vi } from "vitest";

import { DOT_COLOR, windowLayout } from "../../demo-app/layout.ts";
import { MAX_OUTPUT_QUEUE, type Session } from "../../guid/index.ts";
import { windowPoint } from "../../protocol/index.ts";
import * as native from "../../native/index.ts";
import { MemfdGrantTable, grantSocketPath } from "../../shm/index.ts";
import { createVchanServer } from "../../vchan/index.ts";
import { listenAgentPeer, type AgentFramebuffer, type AgentPeer } from "../helpers/agent-peer.ts";
import { screenshotSway, startSway, type RunningCompositor } from "../helpers/compositors.ts";
import { pixelAt, pollUntil, startGuidUnderTest, swaymsg, swayViews } from "../helpers/guid-harness.ts";
import {
  BORDER,
  GREEN,
  GUI,
  PERSONAL,
  W1,
  W2,
  WORK,
  contentMismatches,
  patternColor,
  useGuidSessions,
} from "../helpers/guid-sessions.ts";
import { READY_TIMEOUT_MS, temporaryDirectory, within, withStartup } from "../helpers/processes.ts";
import { BATCH_SHMIMAGES, FAULT_WINDOW_SIZE, faultPattern } from "./pattern.ts";
import { startAgentProcess, startGuidProcess, startHostileAgent, stopAll, type Started } from "./processes.ts";

vi.setConfig({ testTimeout: withStartup(60_000, 3), hookTimeout: withStartup(30_000, 3) });

/** How long one event a test waits for may take, once every process it involves is up. */
const EVENT_MS = 20_000;

const sessions = useGuidSessions({ width: 800, height: 600 });
const { startGuid, agent, session, nextCommit, showWindow } = sessions;
const started: Started[] = [];
const homes: Array<{ remove: () => void }> = [];
const hosts: RunningCompositor[] = [];
/** Hand-built agents a test made itself (the toolkit's agent() closes its own). */
const peers: AgentPeer[] = [];

afterEach(async () => {
  await stopAll(started.splice(0));
  for (const peer of peers.splice(0)) peer.close();
  for (const home of homes.splice(0)) home.remove();
  for (const host of hosts.splice(0)) await host.stop();
});

type Rect = { x: number; y: number; width: number; height: number };
type DomainWindow = NonNullable<Session["windows"]>["shown"][number];

/** The demo app's window in the work domain, as sway knows it. */
const DEMO_APP = "work:qubes-demo-app";
/** Bytes of input queued for a stopped agent that stay well below guid's limit. */
const MOTION_BYTES_BELOW_LIMIT = 1_000_000;
/** A MOTION on the wire: a 12-byte header and a 16-byte body. */
const MOTION_BYTES = 28;

const PAGE = native.PAGE_SIZE;

/** Paints every pixel of `framebuffer` with `color(x, y)`. */
function drawWith(framebuffer: AgentFramebuffer, color: (x: number, y: number) => number): void {
  for (let y = 0; y < framebuffer.height; y++) {
    for (let x = 0; x < framebuffer.width; x++) framebuffer.setPixel(x, y, color(x, y));
  }
}

/**
 * A hostile work domain whose grant pool is not sealed against shrinking (so
 * it could truncate it under a mapping): its vchan server, and its pool and
 * table offered on the grant socket as the memfd backend does.
 */
function offerUnsealedPool(dir: string): { poolFd: number; close: () => void } {
  const poolFd = native.memfdCreate("unsealed-pool", 4 * PAGE);
  const tableFd = native.memfdCreate("unsealed-table", PAGE);
  const table = native.mmap(tableFd, 0, PAGE, { writable: true });
  new Uint32Array(table).set([0x51474e54, 1, WORK, GUI, (PAGE - 64) / 4]);
  native.munmap(table);
  const listenFd = native.listen("stream", grantSocketPath(dir, WORK, GUI));
  const hello = new Uint8Array(new Uint32Array([0x51475250, 1, WORK, GUI]).buffer);
  const poll = new native.Poll(listenFd, () => {
    const connection = native.accept(listenFd);
    if (connection === null) return;
    native.sendmsg(connection, hello, [poolFd, tableFd]);
    native.close(connection);
  });
  poll.start(native.POLL_READABLE);
  const vchan = createVchanServer({ backend: "socket", domain: GUI, port: 6000, ownDomain: WORK, socketDir: dir });
  return {
    poolFd,
    close: () => {
      vchan.close();
      poll.close();
      for (const fd of [listenFd, poolFd, tableFd]) native.close(fd);
    },
  };
}

/** v8's gc(), for measuring what stays allocated after a fault. */
function exposeGc(): () => void {
  setFlagsFromString("--expose-gc");
  return runInNewContext("gc") as () => void;
}

/**
 * Feeds `window` the pointer motion the host would deliver, in turns of 2000
 * events (so the event loop runs between them), until `bytes` of MOTION were
 * sent or `stop()` holds; returns the bytes sent and the highest RSS seen.
 */
async function motionUntil(
  window: DomainWindow,
  bytes: number,
  stop: () => boolean,
): Promise<{ pushed: number; peakRss: number }> {
  let pushed = 0;
  let peakRss = process.memoryUsage().rss;
  let step = 0;
  while (pushed < bytes && !stop()) {
    for (let i = 0; i < 2000; i++, step++) window.pointerMotion(windowPoint(step % 200, (step >> 8) % 100), 0);
    pushed += 2000 * MOTION_BYTES;
    peakRss = Math.max(peakRss, process.memoryUsage().rss);
    await new Promise((resolve) => setImmediate(resolve));
  }
  return { pushed, peakRss };
}

/** The host's pixels of the content of `appId`, as RGB bytes row by row. */
async function contentPixels(appId: string, host: RunningCompositor = sessions.sway): Promise<Buffer> {
  const rect = await contentOf(host, appId);
  const image = await screenshotSway(host);
  const rows: Buffer[] = [];
  for (let y = rect.y; y < rect.y + rect.height; y++) {
    const at = (y * image.width + rect.x) * 3;
    rows.push(Buffer.from(image.rgb.subarray(at, at + rect.width * 3)));
  }
  return Buffer.concat(rows);
}

/** Moves sway's view of `appId` to (x, y) of the output (floating windows start centred, on top of each other). */
async function place(host: RunningCompositor, appId: string, x: number, y: number): Promise<void> {
  await swaymsg(host, [`[app_id="${appId}"]`, "move", "absolute", "position", String(x), String(y)]);
  await pollUntil(async () => {
    const view = (await swayViews(host)).find((candidate) => candidate.app_id === appId);
    return view !== undefined && view.rect.x === x && view.rect.y === y;
  }, `${appId} at (${x}, ${y})`);
}

/** The content rectangle (inside guid's frame) of sway's view of `appId`, once sway shows it. */
async function contentOf(host: RunningCompositor, appId: string, timeoutMs = EVENT_MS): Promise<Rect> {
  const view = await pollUntil(
    async () => (await swayViews(host)).find((candidate) => candidate.app_id === appId),
    `${appId} on the host`,
    timeoutMs,
  );
  return {
    x: view.rect.x + view.window_rect.x + BORDER,
    y: view.rect.y + view.window_rect.y + BORDER,
    width: view.window_rect.width - 2 * BORDER,
    height: view.window_rect.height - 2 * BORDER,
  };
}

/** Resolves once the host shows exactly `expected(x, y)` in the content of `appId`, of `size`. */
async function showsExactly(
  host: RunningCompositor,
  appId: string,
  size: { width: number; height: number },
  expected: (x: number, y: number) => number,
): Promise<void> {
  let last: string[] = [];
  await pollUntil(
    async () => {
      const rect = await contentOf(host, appId);
      if (rect.width !== size.width || rect.height !== size.height) {
        last = [`content is ${rect.width}x${rect.height}`];
        return false;
      }
      last = contentMismatches(await screenshotSway(host), rect, size, expected);
      return last.length === 0;
    },
    `the exact pixels of ${appId} on the host`,
    EVENT_MS,
  ).catch((error: unknown) => {
    throw new Error(`${(error as Error).message}; wrong: ${last.join(" ")}`);
  });
}

/** The app ids sway shows. */
async function appIds(host: RunningCompositor): Promise<string[]> {
  return (await swayViews(host)).map((view) => view.app_id as string);
}

/** The personal domain's window, shown in the corner: the one a fault elsewhere must not touch. */
async function showKept(peer: AgentPeer, index: number): Promise<AgentFramebuffer> {
  const framebuffer = await showWindow(peer, index, W1, { x: 0, y: 0, width: 100, height: 80 }, { resClass: "Kept" });
  await place(sessions.sway, "personal:Kept", 0, 0);
  return framebuffer;
}

/**
 * Draws a new square of `color` in the kept window and proves that frame
 * reaches the host with exact pixels (the square and the pattern around it).
 */
async function keptStillUpdates(peer: AgentPeer, framebuffer: AgentFramebuffer, index: number, color: number) {
  framebuffer.fillRect(10, 10, 30, 20, color);
  const committed = nextCommit(index, W1, EVENT_MS);
  peer.shmimage(W1, { x: 10, y: 10, width: 30, height: 20 });
  await committed;
  await showsExactly(sessions.sway, "personal:Kept", { width: 100, height: 80 }, (x, y) =>
    x >= 10 && x < 40 && y >= 10 && y < 30 ? color : patternColor(x, y),
  );
}

/** Starts guid for work (session 0) and personal (session 1), with personal's hand-built agent showing its window. */
async function twoDomains() {
  const personal = await agent(PERSONAL);
  const under = await startGuid([
    { domain: WORK, name: "work" },
    { domain: PERSONAL, name: "personal", color: GREEN },
  ]);
  await personal.handshake();
  const kept = await showKept(personal, 1);
  return { under, personal, kept };
}

describe("kill -9 of an agent", () => {
  it("in the middle of a frame (a 5.6 MB SHMIMAGE batch half read) ends only its session; a new agent brings its window back", async () => {
    const { under, personal, kept } = await twoDomains();
    const hostile = await startHostileAgent(started, sessions.dir, WORK, "batch");
    await hostile.line("shown");
    await showsExactly(sessions.sway, "work:Victim", FAULT_WINDOW_SIZE, faultPattern);
    await hostile.line("batching");
    const before = under.guid.counters.messages;
    await pollUntil(() => under.guid.counters.messages - before > 1000, "guid to be reading the batch", EVENT_MS);
    const ended = once(session(0), "ended");
    hostile.kill("SIGKILL");
    const [reason, violation] = (await within(ended, EVENT_MS, "the end of work's session")) as [string, boolean];
    expect(reason).toBe("the agent went away");
    expect(violation).toBe(false);
    // Killed mid-batch: guid never saw the whole frame.
    expect(under.guid.counters.messages - before).toBeLessThan(BATCH_SHMIMAGES);
    await pollUntil(async () => {
      const ids = await appIds(sessions.sway);
      return !ids.includes("work:Victim") && ids.includes("personal:Kept");
    }, "work's window gone and personal's kept");
    await keptStillUpdates(personal, kept, 1, 0x00ffff);

    const again = await startHostileAgent(started, sessions.dir, WORK, "idle");
    await again.line("shown");
    await showsExactly(sessions.sway, "work:Victim", FAULT_WINDOW_SIZE, faultPattern);
    expect(under.guid.counters.sessionsEnded).toBe(1);
  });

  it.each([
    ["half a message header", "half-header"],
    ["a whole header and half the body", "half-body"],
  ] as const)(
    "in the middle of a message (%s written) ends only its session at once; a new agent brings its window back",
    async (_, mode) => {
      const { under, personal, kept } = await twoDomains();
      const hostile = await startHostileAgent(started, sessions.dir, WORK, mode);
      await showsExactly(sessions.sway, "work:Victim", FAULT_WINDOW_SIZE, faultPattern);
      await hostile.line("sent");
      const ended = once(session(0), "ended");
      hostile.kill("SIGKILL");
      const [reason, violation] = (await within(ended, EVENT_MS, "the end of work's session")) as [string, boolean];
      expect(reason).toBe("the agent went away");
      expect(violation).toBe(false);
      await pollUntil(async () => {
        const ids = await appIds(sessions.sway);
        return !ids.includes("work:Victim") && ids.includes("personal:Kept");
      }, "work's window gone and personal's kept");
      await keptStillUpdates(personal, kept, 1, 0xff00ff);

      const again = await startHostileAgent(started, sessions.dir, WORK, "idle");
      await again.line("shown");
      await showsExactly(sessions.sway, "work:Victim", FAULT_WINDOW_SIZE, faultPattern);
      expect(under.guid.counters.sessionsEnded).toBe(1);
    },
  );
});

describe("an agent stopped with SIGSTOP", () => {
  it("while guid's output queue to it fills: the other domain keeps working, SIGCONT drains it, and past 10 MB its session ends (memory bounded) and it comes back", async () => {
    const { under, personal, kept } = await twoDomains();
    const home = temporaryDirectory("fault-agent-");
    homes.push(home);
    const work = startAgentProcess(started, { dir: sessions.dir, domain: WORK, name: "work", home: home.dir });
    await contentOf(sessions.sway, DEMO_APP, READY_TIMEOUT_MS);
    const window = await pollUntil(() => session(0).windows?.shown[0], "work's window in guid");
    const size = { width: window.rect.width, height: window.rect.height };
    const layout = windowLayout(size.width, size.height);
    const click = windowPoint(layout.canvas.x + 60, layout.canvas.y + 40);

    // Stopped, with 1 MB of input queued for it: nothing of personal's is held up.
    work.kill("SIGSTOP");
    window.pointerEnter(click, 0);
    const first = await motionUntil(window, MOTION_BYTES_BELOW_LIMIT, () => false);
    expect(first.pushed).toBeGreaterThanOrEqual(MOTION_BYTES_BELOW_LIMIT);
    await keptStillUpdates(personal, kept, 1, 0x00ffff);
    expect(await appIds(sessions.sway)).toContain(DEMO_APP);

    // Continued, it reads the backlog in order, then the click after it: its dot reaches the host.
    const dotted = nextCommit(0, window.id, EVENT_MS);
    work.kill("SIGCONT");
    window.pointerButton(click, 1, true, 0);
    window.pointerButton(click, 1, false, 0x100);
    await dotted;
    const rect = await contentOf(sessions.sway, DEMO_APP);
    await pollUntil(
      async () => pixelAt(await screenshotSway(sessions.sway), rect.x + click.x, rect.y + click.y) === DOT_COLOR,
      "the dot of the click sent after the backlog",
      EVENT_MS,
    );
    const withDot = await contentPixels(DEMO_APP);

    // Stopped again, with input past guid's limit: the session ends before memory grows with it.
    work.kill("SIGSTOP");
    const gc = exposeGc();
    gc();
    const before = process.memoryUsage();
    const ended = once(session(0), "ended");
    let endedWith: [string, boolean] | null = null;
    void ended.then((args) => (endedWith = args as [string, boolean]));
    const second = await motionUntil(window, 4 * MAX_OUTPUT_QUEUE, () => endedWith !== null);
    const [reason, violation] = (await within(ended, EVENT_MS, "the end of work's session")) as [string, boolean];
    expect(reason).toMatch(/^the agent stopped reading: \d+ bytes queued$/);
    expect(Number(/\d+/.exec(reason)?.[0])).toBeGreaterThan(MAX_OUTPUT_QUEUE);
    expect(violation).toBe(true);
    // It ended within the limit and the socket's buffer of the pushed bytes, not at 4× the limit.
    expect(second.pushed).toBeLessThan(MAX_OUTPUT_QUEUE + 1_000_000);
    gc();
    const after = process.memoryUsage();
    const growth = (value: NodeJS.MemoryUsage): number => value.heapUsed + value.arrayBuffers;
    // What guid holds for it is the queue's bytes, not several times as many (one object per message).
    expect(second.peakRss - before.rss).toBeLessThan(3 * MAX_OUTPUT_QUEUE);
    // The queue went with the session.
    expect(growth(after) - growth(before)).toBeLessThan(8_000_000);
    await pollUntil(async () => {
      const ids = await appIds(sessions.sway);
      return !ids.includes(DEMO_APP) && ids.includes("personal:Kept");
    }, "work's window gone and personal's kept");
    await keptStillUpdates(personal, kept, 1, 0xff00ff);

    // Continued, the agent finds the daemon gone and serves the next connection: guid's, with the same window.
    const back = once(session(0), "connected");
    work.kill("SIGCONT");
    await within(back, EVENT_MS, "work's agent connecting again");
    expect(work.alive).toBe(true);
    await pollUntil(
      async () => {
        const pixels = await contentPixels(DEMO_APP).catch(() => null);
        return pixels !== null && pixels.equals(withDot);
      },
      "work's window back with the same content",
      EVENT_MS,
    );
    expect(under.guid.counters.sessionsEnded).toBe(1);
  });
});

describe("a pool that a peer truncates", () => {
  it("is refused by the kernel while guid maps it (sealed): work's window and personal's keep updating with exact pixels", async () => {
    const { personal, kept } = await twoDomains();
    const work = await agent(WORK);
    await work.handshake();
    const framebuffer = await showWindow(
      work,
      0,
      W1,
      { x: 0, y: 0, width: 160, height: 120 },
      {
        resClass: "Victim",
        draw: (fb) => drawWith(fb, faultPattern),
      },
    );
    // One pool per pair: this share lies in the pool guid maps work's framebuffer from.
    const probe = work.grants.share(GUI, 1);
    for (const size of [0, PAGE, probe.contiguous.offset]) {
      expect(() => native.resize(probe.contiguous.fd, size)).toThrow(/EPERM/);
    }
    framebuffer.fillRect(0, 0, 50, 40, 0x123456);
    const committed = nextCommit(0, W1, EVENT_MS);
    work.shmimage(W1, { x: 0, y: 0, width: 50, height: 40 });
    await committed;
    await showsExactly(sessions.sway, "work:Victim", FAULT_WINDOW_SIZE, (x, y) =>
      x < 50 && y < 40 ? 0x123456 : faultPattern(x, y),
    );
    await keptStillUpdates(personal, kept, 1, 0x00ffff);
  });

  it("is refused before guid maps it when it is not sealed against shrinking: only that session ends, with the reason, and guid lives on", async () => {
    const { under, personal, kept } = await twoDomains();
    const ended = once(session(0), "ended");
    const hostile = offerUnsealedPool(sessions.dir);
    try {
      const [reason, violation] = (await within(ended, EVENT_MS, "the end of work's session")) as [string, boolean];
      expect(reason).toMatch(/^no grant pool from the domain: .*not a memfd sealed against shrinking/);
      expect(violation).toBe(false);
      // The domain truncates it now: guid holds no mapping of it, and nothing reaches guid.
      native.resize(hostile.poolFd, 0);
      const grants = under.guid.grants;
      expect(grants instanceof MemfdGrantTable && !grants.isAttached(WORK)).toBe(true);
      await keptStillUpdates(personal, kept, 1, 0xff00ff);
      expect(await appIds(sessions.sway)).toEqual(["personal:Kept"]);
    } finally {
      hostile.close();
    }
  });
});

describe("a domain that grants its page limit", () => {
  it("is refused more pages by its own grant table, while guid shows every page it granted and the other domain is unaffected", async () => {
    const { under, personal, kept } = await twoDomains();
    const work = await listenAgentPeer({ agentDomain: WORK, guiDomain: GUI, socketDir: sessions.dir, grantPages: 64 });
    try {
      await work.handshake();
      // 16 + 48 pages: the domain's whole limit, the last page included.
      const small = await showWindow(work, 0, W1, { x: 0, y: 0, width: 128, height: 128 }, { resClass: "Small" });
      await place(sessions.sway, "work:Small", 0, 300);
      await showWindow(work, 0, W2, { x: 0, y: 0, width: 256, height: 192 }, { resClass: "Large" });
      await place(sessions.sway, "work:Large", 300, 300);
      expect(work.grants.counters.pagesShared).toBe(64);
      expect(() => work.framebuffer(1, 1)).toThrow(expect.objectContaining({ code: "GRANT_LIMIT" }));
      await showsExactly(sessions.sway, "work:Small", { width: 128, height: 128 }, patternColor);
      await showsExactly(sessions.sway, "work:Large", { width: 256, height: 192 }, patternColor);
      await keptStillUpdates(personal, kept, 1, 0x00ffff);

      // Pages it gives back can be granted again: a new frame in fresh pages shows.
      work.revoke(small);
      const fresh = work.framebuffer(128, 128);
      fresh.fill(0x336600);
      const committed = nextCommit(0, W1, EVENT_MS);
      work.windowDump(W1, 128, 128, fresh.refs);
      work.shmimage(W1, { x: 0, y: 0, width: 128, height: 128 });
      await committed;
      await showsExactly(sessions.sway, "work:Small", { width: 128, height: 128 }, () => 0x336600);
      expect(under.guid.counters.sessionsEnded).toBe(0);
    } finally {
      work.close();
    }
  });
});

/** Shows personal's window on a daemon that just connected (what a real agent replays), placed in the corner of `host`. */
async function showKeptOn(host: RunningCompositor, peer: AgentPeer, framebuffer: AgentFramebuffer): Promise<void> {
  peer.create(W1, { x: 0, y: 0, width: 100, height: 80 });
  peer.wmclass(W1, "Kept", "kept");
  peer.wmname(W1, "kept");
  peer.map(W1);
  peer.windowDump(W1, 100, 80, framebuffer.refs);
  peer.shmimage(W1, { x: 0, y: 0, width: 100, height: 80 });
  await contentOf(host, "personal:Kept", READY_TIMEOUT_MS);
  await place(host, "personal:Kept", 0, 0);
}

/** A new frame of personal's window (a square of `color`) reaches `host` with exact pixels; for daemons in other processes. */
async function keptUpdatesOn(host: RunningCompositor, peer: AgentPeer, framebuffer: AgentFramebuffer, color: number) {
  framebuffer.fillRect(60, 40, 30, 30, color);
  peer.shmimage(W1, { x: 60, y: 40, width: 30, height: 30 });
  await showsExactly(host, "personal:Kept", { width: 100, height: 80 }, (x, y) => {
    if (x >= 60 && x < 90 && y >= 40 && y < 70) return color;
    return framebuffer.pixel(x, y) & 0xffffff;
  });
}

/** Both domains as real programs on `host`: work a real agent (demo app) and its qubes-guid, personal a hand-built agent and its qubes-guid. */
async function twoGuidProcesses(host: RunningCompositor) {
  const home = temporaryDirectory("fault-agent-");
  homes.push(home);
  const clipboard = temporaryDirectory("fault-clipboard-");
  homes.push(clipboard);
  const guidOf = (domain: number, name: string, label: string, on: RunningCompositor = host) =>
    startGuidProcess(started, {
      dir: sessions.dir,
      domain,
      name,
      label,
      display: on.socketPath,
      clipboardDir: clipboard.dir,
    });
  const personal = await agent(PERSONAL);
  const workAgent = startAgentProcess(started, { dir: sessions.dir, domain: WORK, name: "work", home: home.dir });
  const workGuid = guidOf(WORK, "work", "blue");
  const personalGuid = guidOf(PERSONAL, "personal", "green");
  await personal.handshake(READY_TIMEOUT_MS);
  const kept = personal.framebuffer(100, 80);
  drawWith(kept, patternColor);
  await showKeptOn(host, personal, kept);
  await contentOf(host, DEMO_APP, READY_TIMEOUT_MS);
  return { personal, kept, workAgent, workGuid, personalGuid, guidOf };
}

describe("the host compositor", () => {
  it("going away: each qubes-guid exits 1 saying so, the agents live on, and new daemons on a new compositor show their windows again", async () => {
    const first = await startSway({ width: 800, height: 600 });
    hosts.push(first);
    const { personal, kept, workAgent, workGuid, personalGuid, guidOf } = await twoGuidProcesses(first);
    const demo = await contentPixels(DEMO_APP, first);

    process.kill(-(first.child.pid as number), "SIGKILL");
    for (const guid of [workGuid, personalGuid]) {
      const { code } = await guid.exited(EVENT_MS);
      expect(code, guid.output()).toBe(1);
      expect(guid.output()).toMatch(/the host compositor went away/);
    }
    await personal.whenDisconnected(EVENT_MS);

    const second = await startSway({ width: 800, height: 600 });
    hosts.push(second);
    personal.relisten();
    guidOf(WORK, "work", "blue", second);
    guidOf(PERSONAL, "personal", "green", second);
    await personal.handshake(READY_TIMEOUT_MS);
    await showKeptOn(second, personal, kept);
    await keptUpdatesOn(second, personal, kept, 0x00ffff);
    await pollUntil(
      async () => (await contentPixels(DEMO_APP, second).catch(() => null))?.equals(demo) ?? false,
      "work's window on the new compositor with the content it had",
      READY_TIMEOUT_MS,
    );
    expect(workAgent.alive).toBe(true);
  });
});

describe("the daemon restarted", () => {
  it("while the agents run: kill -9 of work's qubes-guid leaves personal's window updating, and a new one shows work's window with its content from the same agent", async () => {
    const { personal, kept, workAgent, workGuid, guidOf } = await twoGuidProcesses(sessions.sway);
    const demo = await contentPixels(DEMO_APP);

    workGuid.kill("SIGKILL");
    expect((await workGuid.exited(EVENT_MS)).signal).toBe("SIGKILL");
    await pollUntil(async () => {
      const ids = await appIds(sessions.sway);
      return !ids.includes(DEMO_APP) && ids.includes("personal:Kept");
    }, "work's window gone and personal's kept");
    await keptUpdatesOn(sessions.sway, personal, kept, 0xff00ff);

    guidOf(WORK, "work", "blue");
    await pollUntil(
      async () => (await contentPixels(DEMO_APP).catch(() => null))?.equals(demo) ?? false,
      "work's window back with the content it had",
      READY_TIMEOUT_MS,
    );
    expect(workAgent.alive).toBe(true);
    await keptUpdatesOn(sessions.sway, personal, kept, 0x00ff00);
  });
});

/** Shows work's window of {@link faultPattern} through a daemon in any process; resolves once the host shows it exactly. */
async function showVictimOn(peer: AgentPeer): Promise<void> {
  const { width, height } = FAULT_WINDOW_SIZE;
  const framebuffer = peer.framebuffer(width, height);
  drawWith(framebuffer, faultPattern);
  peer.create(W1, { x: 0, y: 0, width, height });
  peer.wmclass(W1, "Victim", "victim");
  peer.map(W1);
  peer.windowDump(W1, width, height, framebuffer.refs);
  peer.shmimage(W1, { x: 0, y: 0, width, height });
  await showsExactly(sessions.sway, "work:Victim", FAULT_WINDOW_SIZE, faultPattern);
}

/** The lowest fd number `pid` has free: with RLIMIT_NOFILE there, the process can open no new fd. */
function lowestFreeFd(pid: number): number {
  const open = new Set(readdirSync(`/proc/${pid}/fd`).map(Number));
  let fd = 0;
  while (open.has(fd)) fd++;
  return fd;
}

describe("fd exhaustion and a full socket directory", () => {
  it("fd exhaustion (RLIMIT_NOFILE reached): qubes-guid refuses work's agent with a clear error and lives on, personal keeps updating, and with fds again work's window shows", async () => {
    const clipboard = temporaryDirectory("fault-clipboard-");
    homes.push(clipboard);
    const guidOf = (domain: number, name: string, label: string) =>
      startGuidProcess(started, {
        dir: sessions.dir,
        domain,
        name,
        label,
        display: sessions.sway.socketPath,
        clipboardDir: clipboard.dir,
      });
    const personal = await agent(PERSONAL);
    guidOf(PERSONAL, "personal", "green");
    const workGuid = guidOf(WORK, "work", "blue");
    await personal.handshake(READY_TIMEOUT_MS);
    const kept = personal.framebuffer(100, 80);
    drawWith(kept, patternColor);
    await showKeptOn(sessions.sway, personal, kept);
    await pollUntil(
      () => workGuid.output().includes("waiting for the agent"),
      "work's qubes-guid to start",
      READY_TIMEOUT_MS,
    );

    const pid = workGuid.child.pid as number;
    const soft = execFileSync("prlimit", [`--pid=${pid}`, "--nofile", "--raw", "--noheadings", "--output=SOFT"], {
      encoding: "utf8",
    }).trim();
    // The soft limit only: lowering the hard one could not be undone without CAP_SYS_RESOURCE.
    execFileSync("prlimit", [`--pid=${pid}`, `--nofile=${lowestFreeFd(pid)}:`]);
    const work = await agent(WORK);
    await pollUntil(
      () =>
        /"msg":"cannot connect to the agent; trying again/.test(workGuid.output()) && /EMFILE/.test(workGuid.output()),
      "qubes-guid's error naming EMFILE",
      EVENT_MS,
    );
    expect(workGuid.alive, workGuid.output()).toBe(true);
    await keptUpdatesOn(sessions.sway, personal, kept, 0x00ffff);

    execFileSync("prlimit", [`--pid=${pid}`, `--nofile=${soft}:`]);
    await work.handshake(EVENT_MS);
    await showVictimOn(work);
    expect(workGuid.alive).toBe(true);
  });

  it("a full $VCHAN_SOCKET_DIR (a tmpfs out of inodes): work's agent cannot start and says why, personal keeps updating, and once there is room work's window shows", async () => {
    // A real ENOSPC needs a file system that fills up: a tmpfs of 16 inodes (mount needs root, as CI runs).
    const full = temporaryDirectory("fault-full-");
    execFileSync("mount", ["-t", "tmpfs", "-o", "size=1m,nr_inodes=16,mode=0700", "tmpfs", full.dir]);
    homes.push({
      remove: () => {
        execFileSync("umount", [full.dir]);
        full.remove();
      },
    });
    const home = temporaryDirectory("fault-agent-");
    homes.push(home);
    const under = await startGuidUnderTest(sessions.sway, {
      socketDir: full.dir,
      domains: [
        { domain: WORK, name: "work" },
        { domain: PERSONAL, name: "personal", color: GREEN },
      ],
    });
    const personal = await listenAgentPeer({ agentDomain: PERSONAL, guiDomain: GUI, socketDir: full.dir });
    try {
      await personal.handshake(EVENT_MS);
      const kept = personal.framebuffer(100, 80);
      drawWith(kept, patternColor);
      await showKeptOn(sessions.sway, personal, kept);
      const fillers: string[] = [];
      for (;;) {
        const filler = path.join(full.dir, `filler-${fillers.length}`);
        try {
          writeFileSync(filler, "");
        } catch (error) {
          expect((error as NodeJS.ErrnoException).code).toBe("ENOSPC");
          break;
        }
        fillers.push(filler);
      }

      const refused = startAgentProcess(started, { dir: full.dir, domain: WORK, name: "work", home: home.dir });
      const { code } = await refused.exited(READY_TIMEOUT_MS);
      expect(code, refused.output()).toBe(1);
      expect(refused.output()).toMatch(new RegExp(`cannot start: .*${full.dir}.*ENOSPC`));
      await keptUpdatesOn(sessions.sway, personal, kept, 0x00ffff);
      expect(under.guid.counters.sessionsEnded).toBe(0);

      // Room for a socket again: an agent of work listens there, and guid shows its window.
      for (const filler of fillers.splice(0, 4)) rmSync(filler);
      const work = await listenAgentPeer({ agentDomain: WORK, guiDomain: GUI, socketDir: full.dir });
      peers.push(work);
      await work.handshake(EVENT_MS);
      await showVictimOn(work);
      await keptUpdatesOn(sessions.sway, personal, kept, 0xff00ff);
    } finally {
      personal.close();
      await under.stop();
    }
  });
});
