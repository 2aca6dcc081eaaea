/**
 * guid's sessions end to end: hand-built agent bytes (AgentPeer, never our
 * encoder) against a guid in this process, showing windows on real headless
 * sway. What is checked is what sway shows (grim's pixels, swaymsg's tree)
 * and what the agent receives.
 */
import { once } from "node:events";

import { describe, expect, it, vi } from "vitest";

import { createVchanServer } from "../../vchan/index.ts";
import type { AgentPeer } from "../helpers/agent-peer.ts";
import { screenshotSway } from "../helpers/compositors.ts";
import { frameMismatches, pixelAt, pollUntil, swaymsg, swayViews } from "../helpers/guid-harness.ts";
import {
  BLUE,
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
import { withStartup } from "../helpers/processes.ts";

// Real programs start here (compositors, wayvnc, agents, apps, xkbcli): their start-up may take what a
// loaded machine needs; each event a test waits for keeps its own bound.
vi.setConfig({ testTimeout: withStartup(30_000, 2), hookTimeout: withStartup(30_000, 3) });

const sessions = useGuidSessions();
const { startGuid, agent, session, nextCommit, showWindow, settled, viewOf } = sessions;

describe("the handshake", () => {
  it("answers a 1.8 agent with version 1.8 and an xconf of the host output", async () => {
    const peer = await agent();
    await startGuid();
    await peer.handshake();
    expect(peer.negotiatedVersion).toBe(0x00010008);
    expect(peer.xconf).toEqual({ w: 800, h: 600, depth: 24, mem: Math.floor((800 * 600 * 4) / 1024) + 1 });
  });

  it("answers a 1.3 agent with the xconf alone, and speaks 1.3 (no DESTROY ack)", async () => {
    const peer = await agent(WORK, 0x00010003);
    await startGuid();
    await peer.handshake();
    expect(peer.xconf?.w).toBe(800);
    peer.create(W1, { x: 0, y: 0, width: 50, height: 50 });
    peer.destroy(W1);
    peer.create(W2, { x: 0, y: 0, width: 50, height: 50 });
    peer.map(W2);
    await pollUntil(
      async () => (await swayViews(sessions.sway)).some((view) => view.app_id === "work"),
      "window 2 on sessions.sway",
    );
    expect(peer.destroyAcks).toBe(0);
  });

  it("ends the session of an agent that connects and never sends its version word, then serves the next", async () => {
    const peer = await agent();
    await startGuid(undefined, 300);
    const ended = once(session(), "ended");
    await peer.whenConnected();
    const [reason, violation] = (await ended) as [string, boolean];
    expect(reason).toMatch(/no version word within 300 ms/);
    expect(violation).toBe(true);
    await peer.whenDisconnected();
    peer.close();
    const next = await agent();
    await next.handshake();
  });

  it("ends the session of an agent that offers no grant pool, in bounded time", async () => {
    // A vchan server alone, as a broken agent would be: no grant socket at all.
    const vchan = createVchanServer({
      backend: "socket",
      domain: GUI,
      port: 6000,
      ownDomain: WORK,
      socketDir: sessions.dir,
    });
    try {
      await startGuid(undefined, 300);
      const [reason, violation] = (await once(session(), "ended")) as [string, boolean];
      expect(reason).toMatch(/no grant pool came within 300 ms/);
      expect(violation).toBe(false);
    } finally {
      vchan.close();
    }
  });

  it("ends the session of an agent of another major version, then serves the next agent", async () => {
    const peer = await agent(WORK, 0x00020000);
    const guid = await startGuid();
    const ended = once(session(), "ended");
    await peer.whenConnected();
    peer.sendRaw(Uint8Array.of(0, 0, 2, 0));
    const [reason, violation] = (await ended) as [string, boolean];
    expect(reason).toMatch(/DAEMON_TOO_OLD/);
    expect(violation).toBe(true);
    await peer.whenDisconnected();
    peer.close();
    const next = await agent();
    await next.handshake();
    expect(next.negotiatedVersion).toBe(0x00010008);
    expect(guid.guid.counters.sessions).toBe(1);
  });
});

describe("windows on the host", () => {
  it("shows the domain's exact pixels inside a frame of exactly the label colour and width, copying 0 bytes", async () => {
    const peer = await agent();
    const guid = await startGuid();
    await peer.handshake();
    await showWindow(peer, 0, W1, { x: 40, y: 30, width: 200, height: 150 }, { title: "pixels" });
    const rect = await viewOf("work:Test");
    expect(rect.width).toBe(200 + 2 * BORDER);
    expect(rect.height).toBe(150 + 2 * BORDER);
    const image = await screenshotSway(sessions.sway);
    expect(frameMismatches(image, rect, BORDER, BLUE)).toEqual([]);
    expect(
      contentMismatches(image, { x: rect.x + BORDER, y: rect.y + BORDER }, { width: 200, height: 150 }, patternColor),
    ).toEqual([]);
    const counters = guid.guid.counters;
    expect(counters.zeroCopyImages).toBe(1);
    expect(counters.copiedImages).toBe(0);
    expect(counters.bytesCopied).toBe(0);
    expect(counters.bytesMapped).toBe(Math.ceil((200 * 150 * 4) / 4096) * 4096);
    expect(peer.windowDumpAcks).toBe(1);
  });

  it("follows damage on the zero-copy path: updates show, still 0 bytes copied", async () => {
    const peer = await agent();
    const guid = await startGuid();
    await peer.handshake();
    const framebuffer = await showWindow(peer, 0, W1, { x: 0, y: 0, width: 120, height: 90 });
    const framesBefore = guid.guid.counters.frames;
    for (let i = 0; i < 10; i++) {
      framebuffer.fillRect(10 + i, 10, 20, 20, 0xff0000 + i);
      peer.shmimage(W1, { x: 10 + i, y: 10, width: 20, height: 20 });
    }
    framebuffer.fillRect(60, 40, 30, 30, 0x00ff00);
    const committed = nextCommit(0, W1);
    peer.shmimage(W1, { x: 60, y: 40, width: 30, height: 30 });
    await committed;
    await pollUntil(async () => {
      const rect = await viewOf("work:Test");
      const image = await screenshotSway(sessions.sway);
      return pixelAt(image, rect.x + BORDER + 70, rect.y + BORDER + 50) === 0x00ff00;
    }, "the green square on screen");
    expect(guid.guid.counters.frames).toBeGreaterThan(framesBefore);
    expect(guid.guid.counters.bytesCopied).toBe(0);
  });

  it("copies a scattered framebuffer into its own buffer, counting only the damaged bytes", async () => {
    const peer = await agent();
    const guid = await startGuid();
    await peer.handshake();
    const framebuffer = await showWindow(peer, 0, W1, { x: 0, y: 0, width: 160, height: 100 }, { scattered: true });
    const counters = guid.guid.counters;
    expect(counters.copiedImages).toBe(1);
    expect(counters.zeroCopyImages).toBe(0);
    // The new image is shown whole, and the agent's full SHMIMAGE after it is copied too.
    expect(counters.bytesCopied % (160 * 100 * 4)).toBe(0);
    expect(counters.bytesCopied).toBeGreaterThan(0);
    await settled(0, W1);
    const before = counters.bytesCopied;
    framebuffer.fillRect(8, 8, 16, 16, 0x123456);
    const committed = nextCommit(0, W1);
    peer.shmimage(W1, { x: 8, y: 8, width: 16, height: 16 });
    await committed;
    expect(counters.bytesCopied - before).toBe(16 * 16 * 4);
    const rect = await viewOf("work:Test");
    const image = await screenshotSway(sessions.sway);
    expect(frameMismatches(image, rect, BORDER, BLUE)).toEqual([]);
    expect(
      contentMismatches(image, { x: rect.x + BORDER, y: rect.y + BORDER }, { width: 160, height: 100 }, (x, y) =>
        x >= 8 && x < 24 && y >= 8 && y < 24 ? 0x123456 : patternColor(x, y),
      ),
    ).toEqual([]);
  });

  it("takes a 0x0 dump as no image: the window shows its background in its frame, and the dump is acknowledged", async () => {
    const peer = await agent();
    await startGuid();
    await peer.handshake();
    // Larger than sessions.sway's floating minimum (75x50), so that sessions.sway keeps the size.
    peer.create(W1, { x: 0, y: 0, width: 100, height: 60 });
    peer.map(W1);
    peer.windowDump(W1, 0, 0, []);
    await peer.waitFor(() => peer.windowDumpAcks === 1, "the WINDOW_DUMP_ACK of the empty dump");
    let rect = await viewOf("work");
    const image = await pollUntil(async () => {
      rect = await viewOf("work");
      const shot = await screenshotSway(sessions.sway);
      return rect.width === 104 && frameMismatches(shot, rect, BORDER, BLUE).length === 0 ? shot : undefined;
    }, "the frame on screen");
    expect(
      contentMismatches(image, { x: rect.x + 2, y: rect.y + 2 }, { width: 100, height: 60 }, () => 0xffffff),
    ).toEqual([]);
  });

  it("titles every window [name] title and sets its app_id to name:class, sanitising what the domain sent", async () => {
    const peer = await agent();
    await startGuid();
    await peer.handshake();
    peer.create(W1, { x: 0, y: 0, width: 80, height: 60 });
    peer.wmclass(W1, "Foot", "foot");
    peer.wmname(W1, Uint8Array.of(0x68, 0x69, 0xc3, 0xa9, 0x0a, 0x21));
    peer.map(W1);
    const view = await pollUntil(
      async () => (await swayViews(sessions.sway)).find((candidate) => candidate.app_id === "work:Foot"),
      "the window on sessions.sway",
    );
    expect(view.name).toBe("[work] hi___!");
    peer.wmname(W1, "[personal] bank");
    await pollUntil(
      async () => (await swayViews(sessions.sway)).find((candidate) => candidate.name === "[work] [personal] bank"),
      "the new title",
    );
  });

  it("acknowledges DESTROY and takes the window off the host", async () => {
    const peer = await agent();
    await startGuid();
    await peer.handshake();
    await showWindow(peer, 0, W1, { x: 0, y: 0, width: 50, height: 40 });
    peer.destroy(W1);
    await peer.waitFor(() => peer.destroyAcks === 1, "the DESTROY ack");
    expect(peer.messages("DESTROY", W1)).toHaveLength(1);
    await pollUntil(
      async () => !(await swayViews(sessions.sway)).some((view) => view.app_id === "work:Test"),
      "no window",
    );
  });

  it("sends CLOSE when the user closes the window", async () => {
    const peer = await agent();
    await startGuid();
    await peer.handshake();
    await showWindow(peer, 0, W1, { x: 0, y: 0, width: 50, height: 40 }, { resClass: "Closable" });
    await swaymsg(sessions.sway, ['[app_id="work:Closable"]', "kill"]);
    await peer.waitForMessage("CLOSE", W1);
  });

  it("turns a host resize into CONFIGURE of the content size, and holds the agent to it until acknowledged", async () => {
    const peer = await agent();
    const guid = await startGuid();
    await peer.handshake();
    await showWindow(peer, 0, W1, { x: 30, y: 20, width: 100, height: 80 }, { resClass: "Resizable" });
    await swaymsg(sessions.sway, ['[app_id="work:Resizable"]', "resize", "set", "304", "204"]);
    const configure = await peer.waitForMessage("CONFIGURE", W1);
    expect(configure).toMatchObject({ x: 30, y: 20, width: 300, height: 200 });
    const droppedBefore = guid.guid.counters.dropped;
    peer.configure(W1, { x: 30, y: 20, width: 120, height: 90 });
    peer.configure(W1, { x: 30, y: 20, width: 300, height: 200 });
    peer.configure(W1, { x: 30, y: 20, width: 310, height: 210 });
    await pollUntil(
      async () => (await viewOf("work:Resizable")).width === 314,
      "the agent's own resize on sessions.sway",
    );
    expect(guid.guid.counters.dropped).toBe(droppedBefore + 1);
  });

  it("gives the host the size limits of WINDOW_HINTS, frame included: a host resize stays within them", async () => {
    const peer = await agent();
    await startGuid();
    await peer.handshake();
    peer.create(W1, { x: 0, y: 0, width: 200, height: 150 });
    peer.wmclass(W1, "Limited", "limited");
    peer.windowHints(W1, { minWidth: 150, minHeight: 100, maxWidth: 300, maxHeight: 250 });
    peer.map(W1);
    await viewOf("work:Limited");
    await swaymsg(sessions.sway, ['[app_id="work:Limited"]', "resize", "set", "600", "500"]);
    const grown = await peer.waitForMessage("CONFIGURE", W1);
    expect(grown).toMatchObject({ width: 300, height: 250 });
    await pollUntil(
      async () => (await viewOf("work:Limited")).width === 304,
      "sessions.sway to keep the window within its max",
    );
  });

  it("shows fullscreen only when allow_fullscreen is set", async () => {
    const peer = await agent();
    const other = await agent(PERSONAL);
    await startGuid([
      { domain: WORK, name: "work" },
      { domain: PERSONAL, name: "personal", color: GREEN, config: { allowFullscreen: true } },
    ]);
    await peer.handshake();
    await other.handshake();
    await showWindow(peer, 0, W1, { x: 0, y: 0, width: 60, height: 40 });
    await showWindow(other, 1, W1, { x: 0, y: 0, width: 60, height: 40 });
    peer.windowFlags(W1, 1, 0);
    other.windowFlags(W1, 1, 0);
    await pollUntil(
      async () =>
        (await swayViews(sessions.sway)).find((view) => view.app_id === "personal:Test")?.fullscreen_mode === 1,
      "the allowed window fullscreen",
    );
    const work = (await swayViews(sessions.sway)).find((view) => view.app_id === "work:Test");
    expect(work?.fullscreen_mode).toBe(0);
  });
});

describe("popups and override-redirect", () => {
  it("shows an override-redirect window with a parent as a framed popup at its offset from the parent", async () => {
    const peer = await agent();
    await startGuid();
    await peer.handshake();
    await showWindow(peer, 0, W1, { x: 100, y: 100, width: 300, height: 200 }, { resClass: "Parent" });
    const popup = peer.framebuffer(80, 50);
    popup.fill(0xff00ff);
    peer.create(W2, { x: 150, y: 160, width: 80, height: 50, overrideRedirect: true });
    peer.map(W2, { transientFor: W1, overrideRedirect: true });
    const committed = nextCommit(0, W2);
    peer.windowDump(W2, 80, 50, popup.refs);
    peer.shmimage(W2, { x: 0, y: 0, width: 80, height: 50 });
    await committed;
    const parent = await viewOf("work:Parent");
    expect((await swayViews(sessions.sway)).filter((view) => view.app_id?.startsWith("work"))).toHaveLength(1);
    const origin = { x: parent.x + BORDER + 50, y: parent.y + BORDER + 60 };
    const image = await pollUntil(async () => {
      const shot = await screenshotSway(sessions.sway);
      return pixelAt(shot, origin.x + 40, origin.y + 25) === 0xff00ff ? shot : undefined;
    }, "the popup's pixels at the parent's offset");
    expect(frameMismatches(image, { x: origin.x - 2, y: origin.y - 2, width: 84, height: 54 }, BORDER, BLUE)).toEqual(
      [],
    );
    // The frame is outside the domain's pixels: the popup's own edge is the domain's to draw.
    popup.fillRect(0, 0, 80, 1, 0x00ffff);
    const edge = nextCommit(0, W2);
    peer.shmimage(W2, { x: 0, y: 0, width: 80, height: 1 });
    await edge;
    await pollUntil(
      async () => pixelAt(await screenshotSway(sessions.sway), origin.x + 40, origin.y) === 0x00ffff,
      "the popup's updated top row",
    );
  });

  it("makes an override-redirect window of 90 % of the screen a framed toplevel", async () => {
    const peer = await agent();
    await startGuid();
    await peer.handshake();
    peer.create(W1, { x: 0, y: 0, width: 800, height: 540, overrideRedirect: true });
    peer.wmclass(W1, "Big", "big");
    peer.map(W1, { overrideRedirect: true });
    await viewOf("work:Big");
  });
});

describe("one domain's fault", () => {
  it("ends only that domain's session: its windows go, the other domain keeps updating, and it comes back", async () => {
    const work = await agent(WORK);
    const personal = await agent(PERSONAL);
    const guid = await startGuid([
      { domain: WORK, name: "work" },
      { domain: PERSONAL, name: "personal", color: GREEN },
    ]);
    await work.handshake();
    await personal.handshake();
    await showWindow(work, 0, W1, { x: 0, y: 0, width: 100, height: 80 }, { resClass: "Victim" });
    const kept = await showWindow(personal, 1, W1, { x: 0, y: 0, width: 100, height: 80 }, { resClass: "Kept" });
    const ended = once(session(0), "ended");
    // A CREATE whose length is 23.
    work.sendRaw(Uint8Array.of(0x82, 0, 0, 0, 2, 0, 0x40, 0, 23, 0, 0, 0, ...new Uint8Array(23)));
    const [reason, violation] = (await ended) as [string, boolean];
    expect(violation).toBe(true);
    expect(reason).toMatch(/BAD_LENGTH|length/);
    await work.whenDisconnected();
    await pollUntil(async () => {
      const ids = (await swayViews(sessions.sway)).map((view) => view.app_id);
      return !ids.includes("work:Victim") && ids.includes("personal:Kept");
    }, "work's window gone and personal's kept");
    expect(guid.guid.grants.counters.maps).toBeGreaterThan(0);

    kept.fillRect(0, 0, 10, 10, 0x00ffff);
    const committed = nextCommit(1, W1);
    personal.shmimage(W1, { x: 0, y: 0, width: 10, height: 10 });
    await committed;
    const rect = await viewOf("personal:Kept");
    await pollUntil(
      async () => pixelAt(await screenshotSway(sessions.sway), rect.x + BORDER + 5, rect.y + BORDER + 5) === 0x00ffff,
      "personal's update on screen",
    );

    work.relisten();
    await work.handshake();
    await showWindow(work, 0, W1, { x: 0, y: 0, width: 100, height: 80 }, { resClass: "Victim" });
    await viewOf("work:Victim");
    expect(guid.guid.counters.sessionsEnded).toBe(1);
  });

  it.each([
    [
      "a CREATE of an existing window",
      "DUPLICATE_WINDOW",
      (peer: AgentPeer) => peer.create(W1, { x: 0, y: 0, width: 9, height: 9 }),
    ],
    ["a MAP of an unknown window", "UNKNOWN_WINDOW", (peer: AgentPeer) => peer.map(W2)],
    [
      "a WINDOW_DUMP naming pages never granted",
      "WINDOW_DUMP",
      (peer: AgentPeer) => peer.windowDump(W1, 16, 16, [4000]),
    ],
  ])("ends the session on %s", async (_, code, offend) => {
    const peer = await agent();
    await startGuid();
    await peer.handshake();
    peer.create(W1, { x: 0, y: 0, width: 16, height: 16 });
    peer.map(W1);
    const ended = once(session(), "ended");
    offend(peer);
    const [reason, violation] = (await ended) as [string, boolean];
    expect(reason).toContain(code);
    expect(violation).toBe(true);
    await peer.whenDisconnected();
  });
});
