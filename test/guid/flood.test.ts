/**
 * A domain that floods guid: its agent (bench/peers/flood-agent.ts, a
 * hand-built agent in a process of its own, so that it writes while guid
 * reads) sends damage, CONFIGUREs, window churn and unsolicited clipboard
 * data as fast as the vchan takes them, while a quiet domain served by the
 * same guid (one process, as startGuid serves several domains) goes on
 * updating its window. What is checked is behaviour, not time: the quiet
 * domain's frames reach sway with their exact pixels while the flood goes
 * on, guid's memory stays bounded, and the flooder is held by guid's rules
 * (the throttle, merged resizes); and each rule on its own: deferred MAPs,
 * merged resizes, the window limit that ends a session creating past it.
 */
import type { ChildProcess } from "node:child_process";

import { afterEach, describe, expect, it, vi } from "vitest";

import { HOST_WINDOW_BURST, MAX_WINDOWS_PER_DOMAIN } from "../../guid/index.ts";
import { screenshotSway } from "../helpers/compositors.ts";
import { pollUntil, swaymsg } from "../helpers/guid-harness.ts";
import { BORDER, GUI, W1, W2, WORK, contentMismatches, useGuidSessions } from "../helpers/guid-sessions.ts";
import { spawnTs, whenReady, within, withStartup } from "../helpers/processes.ts";

vi.setConfig({ testTimeout: withStartup(90_000, 2), hookTimeout: withStartup(30_000, 3) });

const sessions = useGuidSessions();
const { startGuid, agent, session, nextCommit, showWindow, viewOf } = sessions;

/** The flooding domain, and its window (FLOOD_WINDOW of bench/peers/flood-agent.ts). */
const FLOOD = 7;
const FLOOD_WINDOW = 0x00700001;
/** Quiet updates checked on sway while the flood goes on. */
const QUIET_UPDATES = 5;
/**
 * Most guid's heap (V8 heap plus ArrayBuffers) may grow during the flood:
 * what guid keeps per domain is bounded (a slice of input, the decoder's one
 * message, ≤ 10 MB of output, ≤ 1024 windows), and a flood that is read at
 * guid's rate leaves its backlog in the flooder's ring, not in guid. The rest
 * of the margin is garbage not yet collected.
 */
const HEAP_GROWTH_BOUND = 64 * 1024 * 1024;
/** Flood messages guid must handle after the quiet domain's last frame was checked (the flood went on). */
const FLOOD_AFTER_QUIET = 1000;

let flooder: ChildProcess | null = null;
afterEach(() => {
  flooder?.kill("SIGKILL");
  flooder = null;
});

function heapBytes(): number {
  const usage = process.memoryUsage();
  return usage.heapUsed + usage.arrayBuffers;
}

describe("a domain that floods", () => {
  it("is throttled by guid's rules while a quiet domain's frames reach the host with exact pixels, in bounded memory", async () => {
    const quiet = await agent(WORK);
    const guid = await startGuid([
      { domain: WORK, name: "work" },
      { domain: FLOOD, name: "flood", color: 0x73d216 },
    ]);
    await quiet.handshake();
    const size = { width: 160, height: 100 };
    const framebuffer = await showWindow(quiet, 0, W1, { x: 10, y: 10, ...size }, { draw: (fb) => fb.fill(0x102030) });
    await swaymsg(sessions.sway, ['[app_id="work:Test"]', "move", "position", "0", "0"]);
    await pollUntil(async () => (await viewOf("work:Test")).x === 0, "the quiet window at (0, 0) on sway");

    const child = spawnTs("bench/peers/flood-agent.ts", [String(FLOOD), String(GUI), sessions.dir], {
      stdio: ["pipe", "pipe", "pipe"],
    });
    flooder = child;
    await whenReady(child);
    await pollUntil(() => session(1).windows?.get(FLOOD_WINDOW)?.host?.shown, "the flooder's window on sway");
    const counters = guid.guid.counters;
    const heapBefore = heapBytes();
    let heapPeak = heapBefore;
    const sampler = setInterval(() => (heapPeak = Math.max(heapPeak, heapBytes())), 20);
    try {
      const flooding = whenReady(child, "flooding", 10_000);
      child.stdin?.write("flood\n");
      await flooding;
      await pollUntil(() => counters.throttled > 0, "guid to throttle the flooder", 30_000);
      const messagesAtStart = counters.messages;
      for (let update = 1; update <= QUIET_UPDATES; update++) {
        const color = 0x200000 + update * 0x1111;
        framebuffer.fill(color);
        const committed = nextCommit(0, W1, 20_000);
        quiet.shmimage(W1, { x: 0, y: 0, ...size });
        await committed;
        const rect = await viewOf("work:Test");
        const image = await screenshotSway(sessions.sway);
        expect(
          contentMismatches(image, { x: rect.x + BORDER, y: rect.y + BORDER }, size, () => color),
          `quiet update ${update} on sway`,
        ).toEqual([]);
      }
      // The quiet frames came while the flood was on: guid went on handling the flooder after them.
      const messagesAtLastQuiet = counters.messages;
      expect(messagesAtLastQuiet).toBeGreaterThan(messagesAtStart);
      await pollUntil(
        () => counters.messages > messagesAtLastQuiet + FLOOD_AFTER_QUIET,
        `guid to handle ${FLOOD_AFTER_QUIET} more flood messages after the quiet domain's frames`,
      );
      const stats = whenReady(child, /^stats /, 40_000);
      child.stdin?.write("stop\n");
      const report = JSON.parse((await stats).slice("stats ".length)) as { totalMessages: number; ended: boolean };
      expect(report.totalMessages).toBeGreaterThan(FLOOD_AFTER_QUIET);
      // Held by the rules, not ended: the throttle paused it (above) and its resizes merged.
      expect(report.ended).toBe(false);
      expect(counters.sessionsEnded).toBe(0);
      expect(counters.resizesCoalesced).toBeGreaterThan(0);
      expect(heapPeak - heapBefore).toBeLessThan(HEAP_GROWTH_BOUND);
    } finally {
      clearInterval(sampler);
    }
  });

  it(`ends the session of a domain that creates more than ${MAX_WINDOWS_PER_DOMAIN} windows (WINDOW_LIMIT), and only that one`, async () => {
    const quiet = await agent(WORK);
    const flood = await agent(FLOOD);
    const guid = await startGuid([
      { domain: WORK, name: "work" },
      { domain: FLOOD, name: "flood" },
    ]);
    await quiet.handshake();
    await flood.handshake();
    const framebuffer = await showWindow(quiet, 0, W1, { x: 10, y: 10, width: 40, height: 30 });
    const ended = within(
      new Promise<[string, boolean]>((resolve) => session(1).once("ended", (...args) => resolve(args))),
      20_000,
      "the end of the flooding domain's session",
    );
    for (let i = 0; i <= MAX_WINDOWS_PER_DOMAIN; i++) {
      flood.create(0x00710000 + i, { x: 0, y: 0, width: 10, height: 10 });
    }
    const [reason, violation] = await ended;
    expect(reason).toMatch(/^WINDOW_LIMIT: /);
    expect(violation).toBe(true);
    await flood.whenDisconnected();
    // The quiet domain's session goes on.
    framebuffer.fill(0x00ff00);
    const committed = nextCommit(0, W1);
    quiet.shmimage(W1, { x: 0, y: 0, width: 40, height: 30 });
    await committed;
    expect(guid.guid.counters.sessionsEnded).toBe(1);
  });

  it("shows MAPs past the host-window burst later, and never the windows unmapped before their turn", async () => {
    const peer = await agent(WORK);
    const guid = await startGuid();
    await peer.handshake();
    const count = HOST_WINDOW_BURST + 20;
    for (let i = 0; i < count; i++) {
      const id = 0x00720000 + i;
      peer.create(id, { x: 0, y: 0, width: 20, height: 20 });
      peer.map(id);
      // The last ten go away before their turn.
      if (i >= count - 10) peer.unmap(id);
    }
    await peer.whenSent();
    await pollUntil(
      () => session(0).windows?.size === count && guid.guid.counters.mapsDeferred > 0,
      `guid to know ${count} windows and to have deferred the MAPs past the burst`,
    );
    await pollUntil(
      () => session(0).windows?.shown.length === count - 10,
      `the ${count - 10} windows still mapped to be shown`,
    );
    expect(session(0).windows?.shown.some((window) => window.id >= 0x00720000 + count - 10)).toBe(false);
  });

  it("merges a storm of CONFIGUREs into one host resize a frame, ending at the last size", async () => {
    const peer = await agent(WORK);
    const guid = await startGuid();
    await peer.handshake();
    await showWindow(peer, 0, W2, { x: 30, y: 20, width: 100, height: 80 }, { resClass: "Storm" });
    for (let i = 0; i < 500; i++) peer.configure(W2, { x: 30, y: 20, width: 100 + (i % 50), height: 80 + (i % 30) });
    peer.configure(W2, { x: 30, y: 20, width: 222, height: 111 });
    await pollUntil(async () => {
      const rect = await viewOf("work:Storm");
      return rect.width === 222 + 2 * BORDER && rect.height === 111 + 2 * BORDER;
    }, "sway to show the last CONFIGURE's size");
    expect(guid.guid.counters.resizesCoalesced).toBeGreaterThan(0);
  });
});
