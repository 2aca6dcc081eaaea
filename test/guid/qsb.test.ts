/**
 * Qubes security bulletins about the GUI, each reproduced against our daemon
 * with hand-built agent bytes (AgentPeer) and checked on what real headless
 * sway shows: every test is named after its bulletin (or issue). QSB-013
 * (clipboard timing) lives with the clipboard's tests (clipboard.test.ts,
 * "QSB-013 ...").
 */
import { once } from "node:events";

import { describe, expect, it, vi } from "vitest";

import { screenshotSway } from "../helpers/compositors.ts";
import { frameMismatches, pixelAt, pollUntil, swayViews } from "../helpers/guid-harness.ts";
import { BLUE, BORDER, GREEN, PERSONAL, W1, W2, WORK, useGuidSessions } from "../helpers/guid-sessions.ts";
import { withStartup } from "../helpers/processes.ts";

vi.setConfig({ testTimeout: withStartup(30_000, 2), hookTimeout: withStartup(30_000, 3) });

const SCREEN = { width: 800, height: 600 };
const sessions = useGuidSessions(SCREEN);
const { startGuid, agent, session, nextCommit, showWindow, viewOf } = sessions;
const W3 = 0x00400003;

/** The screen rectangle of a popup's content, found by its solid colour (its frame is around it). */
async function findSolid(
  color: number,
  what: string,
): Promise<{ x: number; y: number; width: number; height: number }> {
  return pollUntil(async () => {
    const image = await screenshotSway(sessions.sway);
    let x0 = Infinity;
    let y0 = Infinity;
    let x1 = -1;
    let y1 = -1;
    for (let y = 0; y < image.height; y++) {
      for (let x = 0; x < image.width; x++) {
        if (pixelAt(image, x, y) !== color) continue;
        x0 = Math.min(x0, x);
        y0 = Math.min(y0, y);
        x1 = Math.max(x1, x);
        y1 = Math.max(y1, y);
      }
    }
    return x1 < 0 ? undefined : { x: x0, y: y0, width: x1 - x0 + 1, height: y1 - y0 + 1 };
  }, what);
}

/** The frame around a content rectangle on the screen, as pixels that are not `color`. */
async function frameAround(
  content: { x: number; y: number; width: number; height: number },
  color: number,
): Promise<string[]> {
  const image = await screenshotSway(sessions.sway);
  return frameMismatches(
    image,
    {
      x: content.x - BORDER,
      y: content.y - BORDER,
      width: content.width + 2 * BORDER,
      height: content.height + 2 * BORDER,
    },
    BORDER,
    color,
  );
}

describe("GUI security bulletins, reproduced against guid", () => {
  it("QSB-001: huge dimensions in window updates are clipped or end only that domain's session", async () => {
    const work = await agent(WORK);
    const personal = await agent(PERSONAL);
    const under = await startGuid([
      { domain: WORK, name: "work" },
      { domain: PERSONAL, name: "personal", color: GREEN },
    ]);
    await work.handshake();
    await personal.handshake();
    const framebuffer = await showWindow(work, 0, W1, { x: 10, y: 10, width: 100, height: 80 }, { resClass: "Huge" });
    // SHMIMAGE rectangles far past the image, and past 2^31: clipped to the image or dropped, never read past it.
    const dropped = under.guid.counters.dropped;
    const clamped = under.guid.counters.clamped;
    framebuffer.fill(0x123456);
    const clippedCommit = nextCommit(0, W1);
    work.shmimage(W1, { x: 0, y: 0, width: 0x7fffffff, height: 0x7fffffff });
    await clippedCommit;
    work.shmimage(W1, { x: 0x7ffffff0, y: 0x7ffffff0, width: 0x7fffffff, height: 16 });
    work.shmimage(W1, { x: -1, y: -1, width: 0xffffffff, height: 0xffffffff });
    await pollUntil(
      () => under.guid.counters.dropped >= dropped + 2 && under.guid.counters.clamped > clamped,
      "the huge rectangles clipped and dropped",
    );
    const rect = await viewOf("work:Huge");
    await pollUntil(
      async () => pixelAt(await screenshotSway(sessions.sway), rect.x + BORDER + 50, rect.y + BORDER + 40) === 0x123456,
      "the clipped update on screen",
    );
    // The other domain's window, for what follows.
    await showWindow(personal, 1, W1, { x: 10, y: 10, width: 100, height: 80 }, { resClass: "Bystander" });
    // A CREATE of 2^31-1 × 2^31-1 is clamped to the largest window, never allocated as asked; one of
    // 2^32-1 (a negative int to X) is dropped as suspicious.
    work.create(W2, { x: 0, y: 0, width: 0x7fffffff, height: 0x7fffffff });
    await pollUntil(() => session(0).windows?.get(W2) !== undefined, "the huge CREATE clamped and kept");
    const created = session(0).windows?.get(W2);
    expect(created?.rect.width).toBeLessThanOrEqual(16384);
    expect(created?.rect.height).toBeLessThanOrEqual(6144);
    const suspicious = under.guid.counters.suspicious;
    work.create(W3, { x: 0, y: 0, width: 0xffffffff, height: 0xffffffff });
    await pollUntil(() => under.guid.counters.suspicious === suspicious + 1, "the 2^32-1 CREATE dropped");
    expect(session(0).windows?.get(W3)).toBeUndefined();
    // A WINDOW_DUMP of huge dimensions with a few refs cannot be backed: that domain's session ends, alone.
    const ended = once(session(0), "ended");
    work.windowDump(W1, 0x7fffffff, 0x7fffffff, framebuffer.refs);
    const [reason, violation] = (await ended) as [string, boolean];
    expect(violation).toBe(true);
    expect(reason).toMatch(/DUMP|dump|refs|size/i);
    await pollUntil(async () => {
      const ids = (await swayViews(sessions.sway)).map((view) => view.app_id);
      return !ids.includes("work:Huge") && ids.includes("personal:Bystander");
    }, "work's window gone and personal's kept");
  });

  it("QSB-026: MAP cannot unset override-redirect of a mapped window; the window keeps its frame", async () => {
    const work = await agent(WORK);
    await startGuid();
    await work.handshake();
    await showWindow(work, 0, W1, { x: 100, y: 100, width: 300, height: 200 }, { resClass: "Parent" });
    const popup = work.framebuffer(80, 50);
    popup.fill(0xff00ff);
    work.create(W2, { x: 150, y: 160, width: 80, height: 50, overrideRedirect: true });
    work.map(W2, { transientFor: W1, overrideRedirect: true });
    const committed = nextCommit(0, W2);
    work.windowDump(W2, 80, 50, popup.refs);
    work.shmimage(W2, { x: 0, y: 0, width: 80, height: 50 });
    await committed;
    const before = await findSolid(0xff00ff, "the popup's pixels");
    const dropped = sessions.under?.guid.counters.dropped ?? 0;
    // The attack: MAP again, now without override-redirect, while mapped.
    work.map(W2, { transientFor: W1, overrideRedirect: false });
    work.map(W2, { overrideRedirect: false });
    await pollUntil(
      () => sessions.under?.logged(/MSG_MAP of an already mapped window/).length === 2,
      "both MAPs refused",
    );
    expect(sessions.under?.guid.counters.dropped).toBe(dropped + 2);
    expect(session(0).windows?.get(W2)?.overrideRedirect).toBe(true);
    const after = await findSolid(0xff00ff, "the popup's pixels after the MAPs");
    expect(after).toEqual(before);
    expect(await frameAround(after, BLUE)).toEqual([]);
  });

  it("QSB-034 and QSB-039: an override-redirect window is framed from its map, with no content or with part of it", async () => {
    const work = await agent(WORK);
    await startGuid();
    await work.handshake();
    await showWindow(work, 0, W1, { x: 50, y: 50, width: 400, height: 300 }, { resClass: "Parent" });
    const parent = await viewOf("work:Parent");
    // No content at all: mapped, never dumped, never updated (QSB-039).
    work.create(W2, { x: 100, y: 100, width: 60, height: 40, overrideRedirect: true });
    work.map(W2, { transientFor: W1, overrideRedirect: true });
    await pollUntil(() => session(0).windows?.get(W2)?.host !== undefined, "the empty popup on the host");
    const emptyOrigin = { x: parent.x + BORDER + 50, y: parent.y + BORDER + 50 };
    await pollUntil(
      async () => (await frameAround({ ...emptyOrigin, width: 60, height: 40 }, BLUE)).length === 0,
      "a full frame around the empty popup",
    );
    // Part of the content only: one SHMIMAGE over a corner far from the frame (QSB-034).
    const partial = work.framebuffer(90, 70);
    partial.fill(0xffffff);
    partial.fillRect(30, 30, 10, 10, 0x00ff00);
    work.create(W3, { x: 250, y: 150, width: 90, height: 70, overrideRedirect: true });
    work.map(W3, { transientFor: W1, overrideRedirect: true });
    const committed = nextCommit(0, W3);
    work.windowDump(W3, 90, 70, partial.refs);
    work.shmimage(W3, { x: 30, y: 30, width: 10, height: 10 });
    await committed;
    const spot = await findSolid(0x00ff00, "the partial update");
    const partialOrigin = { x: spot.x - 30, y: spot.y - 30 };
    expect(partialOrigin).toEqual({ x: parent.x + BORDER + 200, y: parent.y + BORDER + 100 });
    expect(await frameAround({ ...partialOrigin, width: 90, height: 70 }, BLUE)).toEqual([]);
  });

  it("QSB-072: override-redirect changes only while unmapped; a mapped window grown to 90 % of the screen becomes managed, framed", async () => {
    const work = await agent(WORK);
    await startGuid();
    await work.handshake();
    // A managed window asks to become override-redirect through CONFIGURE while mapped: refused.
    await showWindow(work, 0, W1, { x: 10, y: 10, width: 200, height: 150 }, { resClass: "Managed" });
    work.configure(W1, { x: 10, y: 10, width: 200, height: 150, overrideRedirect: true });
    await pollUntil(() => session(0).windows?.get(W1)?.rect.width === 200, "the CONFIGURE applied");
    expect(session(0).windows?.get(W1)?.overrideRedirect).toBe(false);
    await viewOf("work:Managed");
    // An override-redirect window without a parent, small: a framed toplevel of its own...
    const big = work.framebuffer(720, 540);
    big.fill(0x336699);
    work.create(W2, { x: 20, y: 20, width: 200, height: 100, overrideRedirect: true });
    work.wmclass(W2, "Grower", "grower");
    work.map(W2, { overrideRedirect: true });
    expect(session(0).windows?.get(W2)?.overrideRedirect ?? true).toBe(true);
    // ...grows while mapped to ≥ 90 % of the screen (720×540 of 800×600 is 81 %; 760×570 is 90.25 %).
    work.configure(W2, { x: 0, y: 0, width: 760, height: 570, overrideRedirect: true });
    await pollUntil(() => session(0).windows?.get(W2)?.overrideRedirect === false, "override-redirect revoked");
    expect(sessions.under?.logged(/≥ 90 %/).length).toBeGreaterThan(0);
    // It is still shown, now as a managed (framed) toplevel.
    await viewOf("work:Grower");
    // Docked windows are never override-redirect.
    work.create(W3, { x: 0, y: 0, width: 24, height: 24, overrideRedirect: true });
    work.dock(W3);
    await pollUntil(() => (sessions.under?.logged(/docked \(tray\) window/).length ?? 0) > 0, "the docked window");
    expect(session(0).windows?.get(W3)?.overrideRedirect).toBe(false);
  });

  it("QSB-073: an override-redirect window moved off the screen right after its map is kept fully on the screen", async () => {
    const work = await agent(WORK);
    await startGuid();
    await work.handshake();
    await showWindow(work, 0, W1, { x: 0, y: 0, width: 300, height: 200 }, { resClass: "Parent" });
    const popup = work.framebuffer(100, 60);
    popup.fill(0xff8800);
    work.create(W2, { x: 50, y: 50, width: 100, height: 60, overrideRedirect: true });
    work.map(W2, { transientFor: W1, overrideRedirect: true });
    // At once, before the host has placed it: mostly off the screen, right and down.
    work.configure(W2, { x: SCREEN.width - 20, y: SCREEN.height - 10, width: 100, height: 60, overrideRedirect: true });
    const committed = nextCommit(0, W2);
    work.windowDump(W2, 100, 60, popup.refs);
    work.shmimage(W2, { x: 0, y: 0, width: 100, height: 60 });
    await committed;
    const rect = session(0).windows?.get(W2)?.rect;
    expect(rect).toBeDefined();
    expect((rect?.x ?? 0) + (rect?.width ?? 0)).toBeLessThanOrEqual(SCREEN.width);
    expect((rect?.y ?? 0) + (rect?.height ?? 0)).toBeLessThanOrEqual(SCREEN.height);
    const shown = await findSolid(0xff8800, "the popup on the screen");
    expect(shown.width).toBe(100);
    expect(shown.height).toBe(60);
    expect(shown.x + shown.width).toBeLessThanOrEqual(SCREEN.width);
    expect(shown.y + shown.height).toBeLessThanOrEqual(SCREEN.height);
  });

  it("issue 6914: a window id reused after DESTROY is a new window only after the daemon's DESTROY ack", async () => {
    const work = await agent(WORK);
    await startGuid();
    await work.handshake();
    await showWindow(work, 0, W1, { x: 0, y: 0, width: 120, height: 90 }, { resClass: "First" });
    work.destroy(W1);
    await work.waitFor(() => work.destroyAcks === 1, "the DESTROY ack");
    await pollUntil(
      async () => !(await swayViews(sessions.sway)).some((view) => view.app_id === "work:First"),
      "the first window off the host",
    );
    // The same id again: a new window with its own class and pixels, none of the old one's state.
    const second = await showWindow(
      work,
      0,
      W1,
      { x: 0, y: 0, width: 150, height: 100 },
      {
        resClass: "Second",
        draw: (fb) => fb.fill(0x445566),
      },
    );
    const rect = await viewOf("work:Second");
    expect(rect.width).toBe(150 + 2 * BORDER);
    await pollUntil(
      async () => pixelAt(await screenshotSway(sessions.sway), rect.x + BORDER + 75, rect.y + BORDER + 50) === 0x445566,
      "the second window's pixels",
    );
    expect(second.width).toBe(150);
    // CREATE of an id that exists is a protocol violation: only this session ends.
    const ended = once(session(0), "ended");
    work.create(W1, { x: 0, y: 0, width: 10, height: 10 });
    const [reason] = (await ended) as [string, boolean];
    expect(reason).toMatch(/DUPLICATE_WINDOW|existing window/);
  });
});
