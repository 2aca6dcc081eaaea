/**
 * guid's input path end to end: real input injected into headless sway
 * (swaymsg cursor commands on wayvnc's virtual pointer, key and wheel events
 * through wayvnc's VNC client), reaching a guid in this process, and what
 * the hand-built agents (AgentPeer) receive: KEYMAP_NOTIFY, CROSSING,
 * MOTION, BUTTON, FOCUS and KEYPRESS with the layouts and meanings of
 * qubes-gui-protocol.md 1.6–1.8.
 *
 * Keys go through wayvnc's keyboard, not wtype: wtype uploads a keymap of
 * its own in which the first key it types is evdev code 1 (`wtype a` reaches
 * the daemon as X keycode 9), while wayvnc's keyboard has the US layout, so
 * its keycodes are the ones a real keyboard sends (KEY_A 30 → X keycode 38).
 * swaymsg has no wheel, so wheel steps come from the VNC client's pointer.
 */
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from "vitest";

import type { Message, MessageName, MessageOf } from "../../protocol/index.ts";
import { listenAgentPeer, type AgentPeer } from "../helpers/agent-peer.ts";
import { startSway, type RunningCompositor } from "../helpers/compositors.ts";
import {
  pollUntil,
  startGuidUnderTest,
  startWayvnc,
  swaymsg,
  swayViews,
  viewRect,
  type GuidUnderTest,
  type HarnessDomain,
  type RunningWayvnc,
} from "../helpers/guid-harness.ts";
import { temporaryDirectory, withStartup } from "../helpers/processes.ts";
import { VNC_LEFT, VNC_WHEEL_DOWN, VNC_WHEEL_UP, XK } from "../helpers/vnc-client.ts";

// Real programs start here (compositors, wayvnc, agents, apps, xkbcli): their start-up may take what a
// loaded machine needs; each event a test waits for keeps its own bound.
vi.setConfig({ testTimeout: withStartup(30_000, 2), hookTimeout: withStartup(30_000, 3) });

const GUI = 0;
const WORK = 5;
const PERSONAL = 6;
const GREEN = 0x73d216;
const BORDER = 2;
const W1 = 0x00400001;
const W2 = 0x00400002;

/** X event types (qubes-gui-protocol.md 1.7). */
const KEY_PRESS = 2;
const KEY_RELEASE = 3;
const BUTTON_PRESS = 4;
const BUTTON_RELEASE = 5;
const ENTER_NOTIFY = 7;
const LEAVE_NOTIFY = 8;
const FOCUS_IN = 9;
const FOCUS_OUT = 10;
const NOTIFY_NORMAL = 0;

/** X state-mask bits. */
const SHIFT_MASK = 0x1;
const BUTTON1_MASK = 0x100;
const BUTTON3_MASK = 0x400;
const BUTTON4_MASK = 0x800;

/** X keycodes: evdev code + 8. */
const KEYCODE_A = 30 + 8;
const KEYCODE_SHIFT_L = 42 + 8;

/** X keysyms wayvnc resolves in its US keymap. */
const XK_a = 0x61;
const XK_A = 0x41;

/** A window's content size: above sway's floating minimum of 75×50, so sway keeps it. */
const WIDTH = 200;
const HEIGHT = 150;

interface Point {
  x: number;
  y: number;
}

let sway: RunningCompositor;
let wayvnc: RunningWayvnc | undefined;
let dir: { dir: string; remove: () => void };
let under: GuidUnderTest | null = null;
const peers: AgentPeer[] = [];

beforeAll(async () => {
  sway = await startSway({
    width: 800,
    height: 600,
    config: [
      // startSway hides the cursor after 1 ms for screenshots, and a hidden
      // cursor has no pointer focus: swaymsg cursor commands would reach no
      // surface. These tests take no screenshots.
      "seat seat0 hide_cursor 0",
      // The pointer and the keyboard focus stay apart, so that a test can tell them apart.
      "focus_follows_mouse no",
    ],
  });
  try {
    wayvnc = await startWayvnc(sway);
  } catch (error) {
    await sway.stop();
    throw error;
  }
});
afterAll(async () => {
  wayvnc?.stop();
  await sway?.stop();
});
beforeEach(async () => {
  dir = temporaryDirectory("guid-input-");
  // The pointer starts on the desktop, away from where any window shows.
  await cursor({ x: 3, y: 3 });
});
afterEach(async () => {
  await under?.stop();
  under = null;
  for (const peer of peers.splice(0)) {
    expect(peer.errors).toEqual([]);
    peer.close();
  }
  dir.remove();
  // The next test's windows must not meet this test's on sway.
  await pollUntil(async () => (await swayViews(sway)).length === 0, "no window left on sway");
});

function vnc(): RunningWayvnc["vnc"] {
  if (wayvnc === undefined) throw new Error("wayvnc is not running");
  return wayvnc.vnc;
}

async function startGuid(domains: HarnessDomain[] = [{ domain: WORK, name: "work" }]): Promise<GuidUnderTest> {
  under = await startGuidUnderTest(sway, { socketDir: dir.dir, domains, ownDomain: GUI });
  return under;
}

async function agent(domain = WORK): Promise<AgentPeer> {
  const peer = await listenAgentPeer({ agentDomain: domain, guiDomain: GUI, socketDir: dir.dir });
  peers.push(peer);
  return peer;
}

/** Moves sway's cursor to (x, y) in layout coordinates. */
async function cursor(at: Point): Promise<void> {
  await swaymsg(sway, ["seat", "seat0", "cursor", "set", String(at.x), String(at.y)]);
}

async function pressButton(button: 1 | 3): Promise<void> {
  await swaymsg(sway, ["seat", "seat0", "cursor", "press", `button${button}`]);
}

async function releaseButton(button: 1 | 3): Promise<void> {
  await swaymsg(sway, ["seat", "seat0", "cursor", "release", `button${button}`]);
}

async function click(button: 1 | 3): Promise<void> {
  await pressButton(button);
  await releaseButton(button);
}

/**
 * Shows window `id` (default W1) of WIDTH×HEIGHT with class `resClass`
 * (app_id `<vm>:<resClass>`) and a grey image of `image` size (default: the
 * window's), optionally moved to `position` (the frame's corner); resolves
 * with its view rectangle on sway (frame included) once sway shows it there.
 */
async function showWindow(
  peer: AgentPeer,
  vmName: string,
  resClass: string,
  options: { id?: number; position?: Point; image?: { width: number; height: number } } = {},
): Promise<{ x: number; y: number; width: number; height: number }> {
  const id = options.id ?? W1;
  const image = options.image ?? { width: WIDTH, height: HEIGHT };
  const framebuffer = peer.framebuffer(image.width, image.height);
  framebuffer.fill(0x808080);
  const acks = peer.windowDumpAcks;
  peer.create(id, { x: 0, y: 0, width: WIDTH, height: HEIGHT });
  peer.wmclass(id, resClass, resClass.toLowerCase());
  peer.wmname(id, resClass);
  peer.map(id);
  peer.windowDump(id, image.width, image.height, framebuffer.refs);
  peer.shmimage(id, { x: 0, y: 0, width: image.width, height: image.height });
  const appId = `${vmName}:${resClass}`;
  await peer.waitFor(() => peer.windowDumpAcks === acks + 1, `the WINDOW_DUMP_ACK of ${appId}`);
  if (options.position !== undefined) {
    const { x, y } = options.position;
    await pollUntil(async () => (await swayViews(sway)).some((view) => view.app_id === appId), `${appId} on sway`);
    await swaymsg(sway, [`[app_id="${appId}"]`, "move", "absolute", "position", String(x), String(y)]);
  }
  return pollUntil(
    async () => {
      const view = (await swayViews(sway)).find((candidate) => candidate.app_id === appId);
      if (view === undefined) return undefined;
      const rect = viewRect(view);
      const placed = options.position === undefined || (rect.x === options.position.x && rect.y === options.position.y);
      return placed && rect.width === WIDTH + 2 * BORDER && rect.height === HEIGHT + 2 * BORDER ? rect : undefined;
    },
    `sway to show ${appId} at its size${options.position === undefined ? "" : " and position"}`,
  );
}

/** The layout point of window-relative (x, y) in the window whose view (frame included) is `rect`. */
function inContent(rect: Point, x: number, y: number): Point {
  return { x: rect.x + BORDER + x, y: rect.y + BORDER + y };
}

/** What `peer` received from index `mark` on. */
function since(peer: AgentPeer, mark: number): readonly Message[] {
  return peer.received.slice(mark);
}

/** Messages of `type` that `peer` received from index `mark` on. */
function sinceOfType<T extends MessageName>(peer: AgentPeer, mark: number, type: T): Array<MessageOf<T>> {
  return since(peer, mark).filter((message): message is MessageOf<T> => message.type === type);
}

/** The first message of `type` from index `mark` on that `match` accepts; bounded, naming `what`. */
function next<T extends MessageName>(
  peer: AgentPeer,
  mark: number,
  type: T,
  match: (message: MessageOf<T>) => boolean,
  what: string,
): Promise<MessageOf<T>> {
  return peer.waitFor(() => sinceOfType(peer, mark, type).find(match), what);
}

/** The message `peer` received just before `message` (by identity). */
function before(peer: AgentPeer, message: Message): Message | undefined {
  const index = peer.received.indexOf(message);
  return index > 0 ? peer.received[index - 1] : undefined;
}

/** Resolves once `peer` heard of the pointer at window-relative `at` (a MOTION or an EnterNotify there) from index `mark` on. */
function pointerAt(peer: AgentPeer, mark: number, at: Point): Promise<Message> {
  return peer.waitFor(
    () =>
      since(peer, mark).find(
        (m) =>
          (m.type === "MOTION" || (m.type === "CROSSING" && m.event_type === ENTER_NOTIFY)) &&
          m.x === at.x &&
          m.y === at.y,
      ),
    `the pointer at ${at.x},${at.y}`,
  );
}

/** Whether X keycode `keycode` is set in a KEYMAP_NOTIFY vector (bit k%8 of byte k/8). */
function isHeld(keys: Uint8Array, keycode: number): boolean {
  return (((keys[keycode >> 3] ?? 0) >> (keycode & 7)) & 1) === 1;
}

/** Gives window `id` (app_id `appId`) of `peer` the keyboard focus; resolves with its FocusIn. */
async function focus(peer: AgentPeer, appId: string, id = W1): Promise<MessageOf<"FOCUS">> {
  const mark = peer.received.length;
  await swaymsg(sway, [`[app_id="${appId}"]`, "focus"]);
  // A window that had the focus already gets no new FocusIn: then its latest FOCUS is the FocusIn.
  return peer.waitFor(() => {
    const fresh = sinceOfType(peer, mark, "FOCUS").find((m) => m.window === id && m.event_type === FOCUS_IN);
    const latest = peer.messages("FOCUS", id).at(-1);
    return fresh ?? (latest?.event_type === FOCUS_IN ? latest : undefined);
  }, `a FocusIn of ${appId}`);
}

/** Enters the content at window-relative `at`; resolves with the EnterNotify. */
async function enter(peer: AgentPeer, rect: Point, at: Point): Promise<MessageOf<"CROSSING">> {
  const mark = peer.received.length;
  await cursor(inContent(rect, at.x, at.y));
  return next(peer, mark, "CROSSING", (m) => m.event_type === ENTER_NOTIFY, `an EnterNotify at ${at.x},${at.y}`);
}

describe("the pointer", () => {
  it("sends KEYMAP_NOTIFY then EnterNotify at content coordinates, MOTION inside, LeaveNotify when it leaves", async () => {
    const peer = await agent();
    await startGuid();
    await peer.handshake();
    const rect = await showWindow(peer, "work", "Test");
    await focus(peer, "work:Test");

    const crossing = await enter(peer, rect, { x: 10, y: 20 });
    // `focus` 1: the window has the keyboard focus.
    expect(crossing).toMatchObject({
      window: W1,
      event_type: ENTER_NOTIFY,
      x: 10,
      y: 20,
      mode: NOTIFY_NORMAL,
      focus: 1,
    });
    expect(before(peer, crossing)).toMatchObject({ type: "KEYMAP_NOTIFY", window: 0 });

    let mark = peer.received.length;
    await cursor(inContent(rect, 30, 45));
    const motion = await next(peer, mark, "MOTION", (m) => m.x === 30 && m.y === 45, "a MOTION at 30,45");
    expect(motion).toMatchObject({ window: W1, state: 0 });
    expect(sinceOfType(peer, mark, "CROSSING")).toEqual([]);

    mark = peer.received.length;
    await cursor({ x: 3, y: 3 });
    const leave = await next(peer, mark, "CROSSING", (m) => m.event_type === LEAVE_NOTIFY, "a LeaveNotify");
    expect(leave).toMatchObject({ window: W1, mode: NOTIFY_NORMAL });
    expect(sinceOfType(peer, mark, "MOTION")).toEqual([]);
  });

  it("sends LeaveNotify when the pointer moves from the content onto the frame, and no MOTION for the frame", async () => {
    const peer = await agent();
    await startGuid();
    await peer.handshake();
    const rect = await showWindow(peer, "work", "Test");
    await enter(peer, rect, { x: 5, y: 5 });

    let mark = peer.received.length;
    // The top-left pixel of the 2 px frame, then another frame pixel.
    await cursor({ x: rect.x, y: rect.y });
    await next(peer, mark, "CROSSING", (m) => m.event_type === LEAVE_NOTIFY, "a LeaveNotify onto the frame");
    mark = peer.received.length;
    await cursor({ x: rect.x + 1, y: rect.y + 1 });
    const enterAgain = await enter(peer, rect, { x: 0, y: 0 });
    expect(enterAgain).toMatchObject({ x: 0, y: 0 });
    // Nothing reached the agent while the pointer was on the frame.
    expect(since(peer, mark).indexOf(enterAgain)).toBe(1);
    expect(before(peer, enterAgain)?.type).toBe("KEYMAP_NOTIFY");
  });

  it("sends a left click as BUTTON press then release of button 1; only the release's state has Button1Mask", async () => {
    const peer = await agent();
    await startGuid();
    await peer.handshake();
    const rect = await showWindow(peer, "work", "Test");
    await enter(peer, rect, { x: 40, y: 30 });

    const mark = peer.received.length;
    await click(1);
    await next(peer, mark, "BUTTON", (m) => m.event_type === BUTTON_RELEASE, "the release of button 1");
    const [press, release, ...more] = sinceOfType(peer, mark, "BUTTON");
    expect(more).toEqual([]);
    expect(press).toMatchObject({ window: W1, event_type: BUTTON_PRESS, button: 1, x: 40, y: 30 });
    expect(release).toMatchObject({ window: W1, event_type: BUTTON_RELEASE, button: 1, x: 40, y: 30 });
    expect((press?.state ?? -1) & BUTTON1_MASK).toBe(0);
    expect((release?.state ?? 0) & BUTTON1_MASK).toBe(BUTTON1_MASK);
  });

  it("sends a right click as button 3, the release's state with Button3Mask", async () => {
    const peer = await agent();
    await startGuid();
    await peer.handshake();
    const rect = await showWindow(peer, "work", "Test");
    await enter(peer, rect, { x: 120, y: 90 });

    const mark = peer.received.length;
    await click(3);
    await next(peer, mark, "BUTTON", (m) => m.event_type === BUTTON_RELEASE, "the release of button 3");
    const [press, release, ...more] = sinceOfType(peer, mark, "BUTTON");
    expect(more).toEqual([]);
    expect(press).toMatchObject({ event_type: BUTTON_PRESS, button: 3, x: 120, y: 90 });
    expect(release).toMatchObject({ event_type: BUTTON_RELEASE, button: 3, x: 120, y: 90 });
    expect((press?.state ?? -1) & BUTTON3_MASK).toBe(0);
    expect((release?.state ?? 0) & BUTTON3_MASK).toBe(BUTTON3_MASK);
  });

  it("sends MOTION with Button1Mask in its state while button 1 is held (a drag)", async () => {
    const peer = await agent();
    await startGuid();
    await peer.handshake();
    const rect = await showWindow(peer, "work", "Test");
    await enter(peer, rect, { x: 20, y: 20 });

    // The VNC client's pointer: sway 1.7 delivers no motion for `swaymsg seat seat0 cursor set|move`
    // while a button pressed with `swaymsg ... cursor press` is held.
    const mark = peer.received.length;
    const from = inContent(rect, 20, 20);
    const to = inContent(rect, 60, 50);
    vnc().move(from.x + 1, from.y);
    vnc().move(from.x, from.y);
    vnc().press(VNC_LEFT);
    await next(peer, mark, "BUTTON", (m) => m.event_type === BUTTON_PRESS, "the press of button 1");
    vnc().move(to.x, to.y);
    const drag = await next(peer, mark, "MOTION", (m) => m.x === 60 && m.y === 50, "a MOTION at 60,50");
    expect(drag.state & BUTTON1_MASK).toBe(BUTTON1_MASK);
    vnc().release(VNC_LEFT);
    const release = await next(peer, mark, "BUTTON", (m) => m.event_type === BUTTON_RELEASE, "the release");
    expect(release).toMatchObject({ button: 1, x: 60, y: 50 });
  });

  it("sends a wheel step up as a press and release of button 4, down as button 5, at the pointer", async () => {
    const peer = await agent();
    await startGuid();
    await peer.handshake();
    const rect = await showWindow(peer, "work", "Test");
    // The VNC client's pointer carries the wheel: it moves the cursor there first (swaymsg has no wheel).
    const at = inContent(rect, 50, 40);
    let mark = peer.received.length;
    vnc().move(at.x - 1, at.y);
    vnc().move(at.x, at.y);
    await next(peer, mark, "MOTION", (m) => m.x === 50 && m.y === 40, "a MOTION at 50,40 from the VNC pointer");

    mark = peer.received.length;
    vnc().scroll(VNC_WHEEL_UP);
    await next(peer, mark, "BUTTON", (m) => m.event_type === BUTTON_RELEASE, "the release of the wheel-up step");
    expect(sinceOfType(peer, mark, "BUTTON")).toMatchObject([
      { window: W1, event_type: BUTTON_PRESS, button: 4, x: 50, y: 40 },
      { window: W1, event_type: BUTTON_RELEASE, button: 4, x: 50, y: 40 },
    ]);

    mark = peer.received.length;
    vnc().scroll(VNC_WHEEL_DOWN);
    await next(peer, mark, "BUTTON", (m) => m.event_type === BUTTON_RELEASE, "the release of the wheel-down step");
    expect(sinceOfType(peer, mark, "BUTTON")).toMatchObject([
      { event_type: BUTTON_PRESS, button: 5, x: 50, y: 40 },
      { event_type: BUTTON_RELEASE, button: 5, x: 50, y: 40 },
    ]);
  });

  it("sends a wheel release with Button4Mask in its state, as X does, and the press without", async () => {
    const peer = await agent();
    await startGuid();
    await peer.handshake();
    const rect = await showWindow(peer, "work", "Test");
    const at = inContent(rect, 70, 60);
    let mark = peer.received.length;
    vnc().move(at.x - 1, at.y);
    vnc().move(at.x, at.y);
    await next(peer, mark, "MOTION", (m) => m.x === 70 && m.y === 60, "a MOTION at 70,60 from the VNC pointer");

    mark = peer.received.length;
    vnc().scroll(VNC_WHEEL_UP);
    await next(peer, mark, "BUTTON", (m) => m.event_type === BUTTON_RELEASE, "the release of the wheel-up step");
    const [press, release] = sinceOfType(peer, mark, "BUTTON");
    expect((press?.state ?? -1) & BUTTON4_MASK).toBe(0);
    expect((release?.state ?? 0) & BUTTON4_MASK).toBe(BUTTON4_MASK);
  });

  it("lists the keys held in the KEYMAP_NOTIFY before EnterNotify", async () => {
    const peer = await agent();
    await startGuid();
    await peer.handshake();
    const rect = await showWindow(peer, "work", "Test");
    await focus(peer, "work:Test");

    const mark = peer.received.length;
    let keymap: Message | undefined;
    vnc().key(XK.Shift_L, true);
    try {
      await next(peer, mark, "KEYPRESS", (m) => m.keycode === KEYCODE_SHIFT_L, "the press of Shift_L");
      const crossing = await enter(peer, rect, { x: 10, y: 10 });
      keymap = before(peer, crossing);
    } finally {
      // Never leave the seat with Shift held for the next test.
      vnc().key(XK.Shift_L, false);
    }
    await next(
      peer,
      mark,
      "KEYPRESS",
      (m) => m.event_type === KEY_RELEASE && m.keycode === KEYCODE_SHIFT_L,
      "the release of Shift_L",
    );
    expect(keymap?.type).toBe("KEYMAP_NOTIFY");
    expect(keymap?.type === "KEYMAP_NOTIFY" && isHeld(keymap.keys, KEYCODE_SHIFT_L)).toBe(true);
  });

  it("sends only MOTION when the pointer moves from the image onto the window's background", async () => {
    const peer = await agent();
    await startGuid();
    await peer.handshake();
    // The image covers the top-left 100×80 of the 200×150 window.
    const rect = await showWindow(peer, "work", "Test", { image: { width: 100, height: 80 } });
    await enter(peer, rect, { x: 50, y: 40 });

    const mark = peer.received.length;
    await cursor(inContent(rect, 150, 120));
    await pointerAt(peer, mark, { x: 150, y: 120 });
    await cursor(inContent(rect, 60, 50));
    await pointerAt(peer, mark, { x: 60, y: 50 });
    expect(sinceOfType(peer, mark, "CROSSING")).toEqual([]);
  });
});

describe("the frame", () => {
  it("sends no BUTTON for a left or right click on the frame, and no stale Button1Mask afterwards", async () => {
    const peer = await agent();
    await startGuid();
    await peer.handshake();
    const rect = await showWindow(peer, "work", "Test");

    const mark = peer.received.length;
    // The top-left pixel of the frame: a left press there starts an interactive move.
    await cursor({ x: rect.x, y: rect.y });
    await click(1);
    await cursor({ x: rect.x + rect.width - 1, y: rect.y + rect.height - 1 });
    await click(3);
    // Then a click in the content: the first BUTTON the agent gets must be its press.
    await enter(peer, rect, { x: 25, y: 35 });
    await click(1);
    await next(peer, mark, "BUTTON", (m) => m.event_type === BUTTON_RELEASE, "the release of the content click");
    const buttons = sinceOfType(peer, mark, "BUTTON");
    expect(buttons).toMatchObject([
      { event_type: BUTTON_PRESS, button: 1, x: 25, y: 35 },
      { event_type: BUTTON_RELEASE, button: 1, x: 25, y: 35 },
    ]);
    expect((buttons[0]?.state ?? -1) & BUTTON1_MASK).toBe(0);
    // The window did not move: a click is no drag.
    const after = viewRect(
      await pollUntil(
        async () => (await swayViews(sway)).find((view) => view.app_id === "work:Test"),
        "work:Test on sway",
      ),
    );
    expect({ x: after.x, y: after.y }).toEqual({ x: rect.x, y: rect.y });
  });
});

describe("the keyboard", () => {
  it("sends KEYMAP_NOTIFY then FocusIn to the focused window, then KEYPRESS press and release of keycode 38 for a", async () => {
    const peer = await agent();
    await startGuid();
    await peer.handshake();
    await showWindow(peer, "work", "Test");
    const focusIn = await focus(peer, "work:Test");
    expect(focusIn).toMatchObject({ window: W1, event_type: FOCUS_IN, mode: NOTIFY_NORMAL });
    expect(before(peer, focusIn)).toMatchObject({ type: "KEYMAP_NOTIFY", window: 0 });

    const mark = peer.received.length;
    vnc().key(XK_a, true);
    vnc().key(XK_a, false);
    await next(peer, mark, "KEYPRESS", (m) => m.event_type === KEY_RELEASE, "the release of a");
    expect(sinceOfType(peer, mark, "KEYPRESS")).toMatchObject([
      { window: W1, event_type: KEY_PRESS, keycode: KEYCODE_A, state: 0 },
      { window: W1, event_type: KEY_RELEASE, keycode: KEYCODE_A, state: 0 },
    ]);
  });

  it("sends Shift_L (keycode 50) first, then A with ShiftMask in its state", async () => {
    const peer = await agent();
    await startGuid();
    await peer.handshake();
    await showWindow(peer, "work", "Test");
    await focus(peer, "work:Test");

    const mark = peer.received.length;
    vnc().chord([XK.Shift_L], XK_A);
    await next(
      peer,
      mark,
      "KEYPRESS",
      (m) => m.event_type === KEY_RELEASE && m.keycode === KEYCODE_SHIFT_L,
      "the release of Shift_L",
    );
    const keys = sinceOfType(peer, mark, "KEYPRESS");
    expect(keys.map((m) => [m.event_type, m.keycode])).toEqual([
      [KEY_PRESS, KEYCODE_SHIFT_L],
      [KEY_PRESS, KEYCODE_A],
      [KEY_RELEASE, KEYCODE_A],
      [KEY_RELEASE, KEYCODE_SHIFT_L],
    ]);
    // Not asserted: the state of Shift_L's own press and release. wayvnc's
    // virtual keyboard sends its modifiers before each key, so sway reports
    // Shift down before the key that pressed it.
    expect((keys[1]?.state ?? 0) & SHIFT_MASK).toBe(SHIFT_MASK);
    expect((keys[2]?.state ?? 0) & SHIFT_MASK).toBe(SHIFT_MASK);
  });

  it("with events_max_delay, still delivers every key and in order", async () => {
    const peer = await agent();
    await startGuid([{ domain: WORK, name: "work", config: { eventsMaxDelay: 50 } }]);
    await peer.handshake();
    await showWindow(peer, "work", "Test");
    await focus(peer, "work:Test");
    const mark = peer.received.length;
    const typed = "qwertyuiop";
    vnc().type(typed);
    await next(peer, mark, "KEYPRESS", () => sinceOfType(peer, mark, "KEYPRESS").length === 20, "all 20 key events");
    const codes = [16, 17, 18, 19, 20, 21, 22, 23, 24, 25].map((evdev) => evdev + 8);
    expect(sinceOfType(peer, mark, "KEYPRESS").map((m) => [m.event_type, m.keycode])).toEqual(
      codes.flatMap((code) => [
        [KEY_PRESS, code],
        [KEY_RELEASE, code],
      ]),
    );
  });
});

describe("the keyboard focus", () => {
  it("lists the keys held in the KEYMAP_NOTIFY before FocusIn", async () => {
    const peer = await agent();
    await startGuid();
    await peer.handshake();
    await showWindow(peer, "work", "First", { position: { x: 40, y: 60 } });
    await showWindow(peer, "work", "Second", { id: W2, position: { x: 420, y: 60 } });
    await focus(peer, "work:First");

    const mark = peer.received.length;
    let keymap: Message | undefined;
    vnc().key(XK.Shift_L, true);
    try {
      await next(peer, mark, "KEYPRESS", (m) => m.keycode === KEYCODE_SHIFT_L, "the press of Shift_L in First");
      keymap = before(peer, await focus(peer, "work:Second", W2));
    } finally {
      vnc().key(XK.Shift_L, false);
    }
    const release = await next(
      peer,
      mark,
      "KEYPRESS",
      (m) => m.event_type === KEY_RELEASE && m.keycode === KEYCODE_SHIFT_L,
      "the release of Shift_L",
    );
    expect(release.window).toBe(W2);
    expect(sinceOfType(peer, mark, "FOCUS")).toMatchObject([
      { window: W1, event_type: FOCUS_OUT },
      { window: W2, event_type: FOCUS_IN },
    ]);
    expect(keymap?.type).toBe("KEYMAP_NOTIFY");
    expect(keymap?.type === "KEYMAP_NOTIFY" && isHeld(keymap.keys, KEYCODE_SHIFT_L)).toBe(true);
    expect(keymap?.type === "KEYMAP_NOTIFY" && isHeld(keymap.keys, KEYCODE_A)).toBe(false);
  });
});

describe("two domains", () => {
  it("sends MOTION only to the window under the pointer and KEYPRESS only to the focused one; moving the focus sends FocusOut to the first", async () => {
    const work = await agent(WORK);
    const personal = await agent(PERSONAL);
    await startGuid([
      { domain: WORK, name: "work" },
      { domain: PERSONAL, name: "personal", color: GREEN },
    ]);
    await work.handshake();
    await personal.handshake();
    const left = await showWindow(work, "work", "Test", { position: { x: 40, y: 60 } });
    const right = await showWindow(personal, "personal", "Test", { position: { x: 420, y: 60 } });

    // The keyboard on work's window, the pointer on personal's.
    await focus(work, "work:Test");
    let workMark = work.received.length;
    let personalMark = personal.received.length;
    const entered = await enter(personal, right, { x: 10, y: 10 });
    expect(entered).toMatchObject({ x: 10, y: 10, focus: 0 });
    await cursor(inContent(right, 80, 70));
    await next(personal, personalMark, "MOTION", (m) => m.x === 80 && m.y === 70, "personal's MOTION at 80,70");
    vnc().key(XK_a, true);
    vnc().key(XK_a, false);
    await next(work, workMark, "KEYPRESS", (m) => m.event_type === KEY_RELEASE, "work's release of a");

    // The focus moves to personal's window: work gets FocusOut, personal KEYMAP_NOTIFY and FocusIn.
    await swaymsg(sway, ['[app_id="personal:Test"]', "focus"]);
    const focusOut = await next(work, workMark, "FOCUS", (m) => m.event_type === FOCUS_OUT, "work's FocusOut");
    expect(focusOut).toMatchObject({ window: W1, mode: NOTIFY_NORMAL });
    const focusIn = await next(personal, personalMark, "FOCUS", (m) => m.event_type === FOCUS_IN, "personal's FocusIn");
    expect(before(personal, focusIn)).toMatchObject({ type: "KEYMAP_NOTIFY", window: 0 });

    // Both streams are in host order: what came before these FOCUS messages is all there is.
    expect(since(work, workMark).map((m) => m.type)).toEqual(["KEYPRESS", "KEYPRESS", "FOCUS"]);
    expect(sinceOfType(work, workMark, "KEYPRESS")).toMatchObject([
      { event_type: KEY_PRESS, keycode: KEYCODE_A },
      { event_type: KEY_RELEASE, keycode: KEYCODE_A },
    ]);
    expect(sinceOfType(personal, personalMark, "KEYPRESS")).toEqual([]);
    expect(sinceOfType(personal, personalMark, "MOTION").length).toBeGreaterThan(0);

    // Now keys go to personal, and the pointer on work's window reaches work alone.
    workMark = work.received.length;
    personalMark = personal.received.length;
    vnc().key(XK_a, true);
    vnc().key(XK_a, false);
    await next(personal, personalMark, "KEYPRESS", (m) => m.event_type === KEY_RELEASE, "personal's release of a");
    await enter(work, left, { x: 30, y: 40 });
    const leave = await next(
      personal,
      personalMark,
      "CROSSING",
      (m) => m.event_type === LEAVE_NOTIFY,
      "personal's LeaveNotify",
    );
    expect(leave.window).toBe(W1);
    expect(sinceOfType(work, workMark, "KEYPRESS")).toEqual([]);
    expect(sinceOfType(personal, personalMark, "KEYPRESS")).toMatchObject([
      { event_type: KEY_PRESS, keycode: KEYCODE_A },
      { event_type: KEY_RELEASE, keycode: KEYCODE_A },
    ]);
  });
});
