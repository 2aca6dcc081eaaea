/**
 * The secure clipboard (qubes-gui-protocol.md 4.3). First GuiClipboard alone,
 * in memory and in a directory shared by guid processes, and the wrap-aware
 * `timestampNewer`. Then end to end: a guid in this process on real headless
 * sway, keys typed by wtype and by wayvnc's virtual keyboard, and hand-built
 * agents (AgentPeer, never our encoder) on both sides of each copy and paste.
 * What is checked is what each agent receives, the shared clipboard, the
 * daemon's counters and its log. Every key run ends with a plain `x` whose
 * release the focused agent must receive: the event that says guid handled
 * the keys before it.
 *
 * wtype 0.4 sends every key with time 0, holds modifiers through
 * zwp_virtual_keyboard_v1.modifiers only (no key events of their own), and
 * uploads a keymap of its own per run (key i = evdev code i), so keys are
 * named through the keymap guid received last; its `alt` is AltGr (Mod5),
 * which hotkeys ignore, so the custom sequences below use Mod4. wayvnc's
 * keyboard has a US keymap and real modifier keys, and its keys carry time 0
 * as well.
 */
import { chmodSync, mkdirSync, readFileSync, readdirSync, statSync, writeFileSync } from "node:fs";
import path from "node:path";
import { Writable } from "node:stream";

import fc from "fast-check";
import pino, { type Logger } from "pino";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from "vitest";

import {
  CLIPBOARD_FILE,
  GuiClipboard,
  timestampNewer,
  type GuidConfig,
  type PasteRule,
  type Session,
} from "../../guid/index.ts";
import { parseKeySequence } from "../../guid/hotkeys.ts";
import type { MessageOf } from "../../protocol/index.ts";
import { listenAgentPeer, type AgentPeer } from "../helpers/agent-peer.ts";
import { runClient, startSway, type RunningCompositor } from "../helpers/compositors.ts";
import {
  pollUntil,
  startGuidUnderTest,
  startWayvnc,
  swaymsg,
  swayViews,
  type GuidUnderTest,
  type HarnessDomain,
  type RunningWayvnc,
  sessionCommit,
} from "../helpers/guid-harness.ts";
import { temporaryDirectory, withStartup } from "../helpers/processes.ts";
import { XK } from "../helpers/vnc-client.ts";

// Real programs start here (compositors, wayvnc, agents, apps, xkbcli): their start-up may take what a
// loaded machine needs; each event a test waits for keeps its own bound.
vi.setConfig({ testTimeout: withStartup(30_000, 2), hookTimeout: withStartup(30_000, 3) });

const text = (value: string): Uint8Array => new TextEncoder().encode(value);
const decoded = (value: Uint8Array): string => new TextDecoder().decode(value);

/** A pino logger whose lines a test can read back. */
function memoryLog(): { log: Logger; entries: () => Array<Record<string, unknown>> } {
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString("utf8").split("\n")) if (line !== "") lines.push(line);
      done();
    },
  });
  return {
    log: pino({ level: "debug" }, sink),
    entries: () => lines.map((line) => JSON.parse(line) as Record<string, unknown>),
  };
}

function modeOf(file: string): number {
  return statSync(file).mode & 0o777;
}

// ---------------------------------------------------------------------------
// GuiClipboard and timestampNewer, no compositor
// ---------------------------------------------------------------------------

describe("GuiClipboard in memory", () => {
  it("keeps the time of the last copy after a wipe or a clear, none before the first", () => {
    const clipboard = new GuiClipboard({ dir: null, log: memoryLog().log });
    expect(clipboard.lastCopy()).toBeNull();
    clipboard.write({ data: text("secret"), source: "work", timestamp: 1234, sequence: 9 });
    clipboard.wipe();
    expect(clipboard.read()).toBeNull();
    expect(clipboard.lastCopy()).toEqual({ timestamp: 1234, sequence: 9 });
    clipboard.clear({ timestamp: 1300, sequence: 10 });
    expect(clipboard.read()).toBeNull();
    expect(clipboard.lastCopy()).toEqual({ timestamp: 1300, sequence: 10 });
  });

  it("is empty at first, gives back what was written, and is empty after a wipe", () => {
    const clipboard = new GuiClipboard({ dir: null, log: memoryLog().log });
    expect(clipboard.read()).toBeNull();
    clipboard.write({ data: text("secret"), source: "work", timestamp: 1234 });
    const content = clipboard.read();
    expect(content?.source).toBe("work");
    expect(content?.timestamp).toBe(1234);
    expect(decoded(content?.data ?? new Uint8Array())).toBe("secret");
    clipboard.wipe();
    expect(clipboard.read()).toBeNull();
    clipboard.wipe();
    expect(clipboard.read()).toBeNull();
  });

  it("keeps its own copy of the bytes: changing the written array afterwards changes nothing", () => {
    const clipboard = new GuiClipboard({ dir: null, log: memoryLog().log });
    const data = text("abc");
    clipboard.write({ data, source: "work", timestamp: 1 });
    data.fill(0x7a);
    expect(decoded(clipboard.read()?.data ?? new Uint8Array())).toBe("abc");
  });

  it.each([
    [-1, 0xffffffff],
    [2 ** 32, 0],
    [2 ** 32 + 5, 5],
    [2 ** 31, 2 ** 31],
  ])("keeps timestamp %d as the u32 %d", (written, kept) => {
    const clipboard = new GuiClipboard({ dir: null, log: memoryLog().log });
    clipboard.write({ data: text("x"), source: "work", timestamp: written });
    expect(clipboard.read()?.timestamp).toBe(kept);
  });

  it("shares nothing between two clipboards of one process", () => {
    const log = memoryLog().log;
    const a = new GuiClipboard({ dir: null, log });
    const b = new GuiClipboard({ dir: null, log });
    a.write({ data: text("a"), source: "work", timestamp: 1 });
    expect(b.read()).toBeNull();
  });
});

describe("GuiClipboard in a directory", () => {
  let base: { dir: string; remove: () => void };
  beforeEach(() => {
    base = temporaryDirectory("guid-clipboard-");
  });
  afterEach(() => {
    base.remove();
  });

  it("creates the directory with mode 0700 and writes the clipboard file with mode 0600", () => {
    const dir = path.join(base.dir, "run", "qubes");
    const clipboard = new GuiClipboard({ dir, log: memoryLog().log });
    expect(modeOf(dir)).toBe(0o700);
    clipboard.write({ data: text("secret"), source: "work", timestamp: 7 });
    expect(modeOf(path.join(dir, CLIPBOARD_FILE))).toBe(0o600);
    expect(readdirSync(dir)).toEqual([CLIPBOARD_FILE]);
  });

  it("shares the content between two clipboards on one directory, every byte value intact", () => {
    const dir = path.join(base.dir, "clipboard");
    const log = memoryLog().log;
    const writer = new GuiClipboard({ dir, log });
    const reader = new GuiClipboard({ dir, log });
    const data = Uint8Array.from({ length: 512 }, (_, i) => (i * 7) & 0xff);
    writer.write({ data, source: "work", timestamp: 0xfffffffe });
    const content = reader.read();
    expect(content?.source).toBe("work");
    expect(content?.timestamp).toBe(0xfffffffe);
    expect(content?.data).toEqual(data);
    writer.write({ data: text("second"), source: "personal", timestamp: 3 });
    expect(decoded(reader.read()?.data ?? new Uint8Array())).toBe("second");
    expect(reader.read()?.source).toBe("personal");
  });

  it("writes a subarray's own bytes, not the rest of its buffer", () => {
    const dir = path.join(base.dir, "clipboard");
    const clipboard = new GuiClipboard({ dir, log: memoryLog().log });
    const whole = text("xxsecretyy");
    clipboard.write({ data: whole.subarray(2, 8), source: "work", timestamp: 1 });
    expect(decoded(clipboard.read()?.data ?? new Uint8Array())).toBe("secret");
  });

  it("wipes the data for every clipboard on the directory, keeping only the copy's time; a second wipe is harmless", () => {
    const dir = path.join(base.dir, "clipboard");
    const log = memoryLog().log;
    const a = new GuiClipboard({ dir, log });
    const b = new GuiClipboard({ dir, log });
    a.write({ data: text("secret"), source: "work", timestamp: 1, sequence: 7 });
    b.wipe();
    expect(readdirSync(dir)).toEqual([CLIPBOARD_FILE]);
    expect(readFileSync(path.join(dir, CLIPBOARD_FILE), "utf8")).not.toContain(
      Buffer.from("secret").toString("base64"),
    );
    expect(a.read()).toBeNull();
    expect(a.lastCopy()).toEqual({ timestamp: 1, sequence: 7 });
    a.wipe();
    expect(a.read()).toBeNull();
    expect(b.lastCopy()).toEqual({ timestamp: 1, sequence: 7 });
  });

  it("removes a malformed file on a wipe", () => {
    const dir = path.join(base.dir, "clipboard");
    const clipboard = new GuiClipboard({ dir, log: memoryLog().log });
    writeFileSync(path.join(dir, CLIPBOARD_FILE), "secret", { mode: 0o600 });
    clipboard.wipe();
    expect(readdirSync(dir)).toEqual([]);
    expect(clipboard.lastCopy()).toBeNull();
  });

  it("clears to empty at a copy's time: read gives nothing, lastCopy that time", () => {
    const dir = path.join(base.dir, "clipboard");
    const log = memoryLog().log;
    const a = new GuiClipboard({ dir, log });
    a.write({ data: text("secret"), source: "work", timestamp: 1 });
    a.clear({ timestamp: 5, sequence: 2 });
    const b = new GuiClipboard({ dir, log });
    expect(b.read()).toBeNull();
    expect(b.lastCopy()).toEqual({ timestamp: 5, sequence: 2 });
  });

  it("accepts an existing directory of mode 0700 and leaves its mode alone", () => {
    const dir = path.join(base.dir, "clipboard");
    mkdirSync(dir, { mode: 0o700 });
    new GuiClipboard({ dir, log: memoryLog().log });
    expect(modeOf(dir)).toBe(0o700);
  });

  it.each([0o755, 0o750, 0o705, 0o770, 0o701, 0o710, 0o777])(
    "refuses a directory open to other users (mode %o)",
    (mode) => {
      const dir = path.join(base.dir, "clipboard");
      mkdirSync(dir);
      chmodSync(dir, mode);
      expect(() => new GuiClipboard({ dir, log: memoryLog().log })).toThrow(/open to other users/);
    },
  );

  it.each([
    ["not JSON", "secret", true],
    ["an empty file", "", true],
    ["a truncated object", '{"source":"work","timestamp":1,"data":"c2Vj', true],
    ["JSON null", "null", true],
    ["a JSON array", "[]", false],
    ["a string timestamp", '{"source":"work","timestamp":"1","data":"c2VjcmV0"}', false],
    ["a numeric source", '{"source":5,"timestamp":1,"data":"c2VjcmV0"}', false],
    ["no data", '{"source":"work","timestamp":1}', false],
  ])("reads a clipboard file holding %s as empty", (_, content, logged) => {
    const dir = path.join(base.dir, "clipboard");
    const { log, entries } = memoryLog();
    const clipboard = new GuiClipboard({ dir, log });
    writeFileSync(path.join(dir, CLIPBOARD_FILE), content, { mode: 0o600 });
    expect(clipboard.read()).toBeNull();
    if (logged) expect(entries().some((entry) => /malformed/.test(String(entry.msg)))).toBe(true);
  });

  it("reads an unreadable clipboard (a directory in the file's place) as empty and logs it", () => {
    const dir = path.join(base.dir, "clipboard");
    const { log, entries } = memoryLog();
    const clipboard = new GuiClipboard({ dir, log });
    mkdirSync(path.join(dir, CLIPBOARD_FILE));
    expect(clipboard.read()).toBeNull();
    expect(entries().some((entry) => /cannot read the clipboard/.test(String(entry.msg)))).toBe(true);
  });

  it("keeps a stored timestamp beyond 32 bits as its u32", () => {
    const dir = path.join(base.dir, "clipboard");
    const clipboard = new GuiClipboard({ dir, log: memoryLog().log });
    writeFileSync(
      path.join(dir, CLIPBOARD_FILE),
      JSON.stringify({ source: "work", timestamp: 2 ** 32 + 9, data: "c2VjcmV0" }),
    );
    expect(clipboard.read()?.timestamp).toBe(9);
  });
});

describe("timestampNewer", () => {
  it.each([
    [2, 1, true],
    [1, 2, false],
    [5, 5, false],
    [0, 0, false],
    [0xffffffff, 0xffffffff, false],
    // Across the wrap: 0 comes 1 ms after 2^32-1.
    [0, 0xffffffff, true],
    [0xffffffff, 0, false],
    [0x10, 0xfffffff0, true],
    [0xfffffff0, 0x10, false],
    // Up to 2^31-1 ms later is later; exactly 2^31 apart is neither.
    [0x7fffffff, 0, true],
    [0, 0x7fffffff, false],
    [0x80000000, 0, false],
    [0, 0x80000000, false],
    [0x80000000, 1, true],
    [2 ** 31, 2 ** 31 - 1, true],
  ])("timestampNewer(%d, %d) is %s", (a, b, expected) => {
    expect(timestampNewer(a, b)).toBe(expected);
  });

  it("orders any two u32 times less than 2^31 ms apart, whatever the wrap", () => {
    fc.assert(
      fc.property(fc.nat({ max: 0xffffffff }), fc.integer({ min: 1, max: 2 ** 31 - 1 }), (earlier, gap) => {
        const later = (earlier + gap) >>> 0;
        return timestampNewer(later, earlier) && !timestampNewer(earlier, later);
      }),
    );
  });
});

// ---------------------------------------------------------------------------
// End to end: sway, wtype, guid, agents
// ---------------------------------------------------------------------------

const GUI = 0;
const WORK = 5;
const PERSONAL = 6;
const GREEN = 0x73d216;
const W1 = 0x00400001;
const FOCUS_IN = 9;
const KEY_PRESS = 2;
const KEY_RELEASE = 3;
/** Far enough ahead of any key time to be "later" under the wrap-aware comparison. */
const FAR_AHEAD = 2 ** 30;

const COPY = ["-M", "ctrl", "-M", "shift", "c", "-m", "shift", "-m", "ctrl"];
const PASTE = ["-M", "ctrl", "-M", "shift", "v", "-m", "shift", "-m", "ctrl"];

let sway: RunningCompositor;
let wayvnc: RunningWayvnc;
let dir: { dir: string; remove: () => void };
const guids: GuidUnderTest[] = [];
const peers: AgentPeer[] = [];

/** One domain of a desk: its agent, the guid serving it, and the app_id of its one window. */
interface Desk {
  peer: AgentPeer;
  under: GuidUnderTest;
  session: Session;
  appId: string;
}

async function agent(
  domain: number,
  socketDir: string,
  options: { version?: number; answer?: string } = {},
): Promise<AgentPeer> {
  const peer = await listenAgentPeer({
    agentDomain: domain,
    guiDomain: GUI,
    socketDir,
    ...(options.version === undefined ? {} : { version: options.version }),
    ...(options.answer === undefined ? {} : { answerClipboard: text(options.answer) }),
  });
  peers.push(peer);
  return peer;
}

async function startGuid(
  domains: HarnessDomain[],
  socketDir: string,
  clipboardDir: string | null = null,
): Promise<GuidUnderTest> {
  const under = await startGuidUnderTest(sway, { socketDir, domains, ownDomain: GUI, clipboardDir });
  guids.push(under);
  return under;
}

/** Shows a mapped 100×80 window W1 of class Test; resolves when sway shows it. */
async function showWindow(desk: Omit<Desk, "appId">, appId: string): Promise<void> {
  const { peer, session, under } = desk;
  const rect = { x: 0, y: 0, width: 100, height: 80 };
  const framebuffer = peer.framebuffer(rect.width, rect.height);
  framebuffer.fill(0x808080);
  peer.create(W1, rect);
  peer.wmclass(W1, "Test", "test");
  peer.wmname(W1, "clipboard");
  peer.map(W1);
  const committed = sessionCommit(session, W1);
  peer.windowDump(W1, rect.width, rect.height, framebuffer.refs);
  peer.shmimage(W1, rect);
  await committed;
  await under.guid.display.roundtrip();
  await pollUntil(
    async () => (await swayViews(sway)).some((view) => view.app_id === appId),
    `sway to show a window with app_id ${appId}`,
  );
}

/** Options of the two-domain desk {@link startDesk}. */
interface DeskOptions {
  work?: Partial<GuidConfig>;
  personal?: Partial<GuidConfig>;
  /** What work's agent answers to CLIPBOARD_REQ; default "secret"; null: no automatic answer. */
  workAnswer?: string | null;
  personalVersion?: number;
}

/** One guid serving work (5) and personal (6), each agent with one window on sway. */
async function startDesk(options: DeskOptions = {}): Promise<{ work: Desk; personal: Desk; under: GuidUnderTest }> {
  const answer = options.workAnswer === undefined ? "secret" : options.workAnswer;
  const workPeer = await agent(WORK, dir.dir, answer === null ? {} : { answer });
  const personalPeer = await agent(
    PERSONAL,
    dir.dir,
    options.personalVersion === undefined ? {} : { version: options.personalVersion },
  );
  const under = await startGuid(
    [
      { domain: WORK, name: "work", ...(options.work === undefined ? {} : { config: options.work }) },
      {
        domain: PERSONAL,
        name: "personal",
        color: GREEN,
        ...(options.personal === undefined ? {} : { config: options.personal }),
      },
    ],
    dir.dir,
  );
  await workPeer.handshake();
  await personalPeer.handshake();
  const work = { peer: workPeer, under, session: sessionOf(under, 0), appId: "work:Test" };
  const personal = { peer: personalPeer, under, session: sessionOf(under, 1), appId: "personal:Test" };
  await showWindow(work, work.appId);
  await showWindow(personal, personal.appId);
  return { work, personal, under };
}

function sessionOf(under: GuidUnderTest, index: number): Session {
  const found = under.guid.sessions[index];
  if (found === undefined) throw new Error(`no session ${index}`);
  return found;
}

/** Gives `desk`'s window the keyboard focus; resolves when its agent got FocusIn. */
async function focus(desk: Desk): Promise<void> {
  await swaymsg(sway, [`[app_id="${desk.appId}"]`, "focus"]);
  await desk.peer.waitFor(
    () => desk.peer.messages("FOCUS", W1).at(-1)?.event_type === FOCUS_IN,
    `FocusIn at ${desk.appId}`,
  );
}

/** The keysyms of X keycode `keycode` in the keymap the host sent `under` last (wtype's, after a wtype run). */
function keysymsOf(under: GuidUnderTest, keycode: number): readonly string[] {
  const keymap = under.guid.display.keymap;
  if (keymap === null) throw new Error("guid has no host keymap");
  return keymap.keysymsOf(keycode - 8);
}

/** KEYPRESS messages `desk`'s agent got since `from`, of the key producing `keysym` (letters in either case). */
function keyEvents(desk: Desk, from: number, keysym: string): Array<MessageOf<"KEYPRESS">> {
  return desk.peer.received
    .slice(from)
    .filter((m): m is MessageOf<"KEYPRESS"> => m.type === "KEYPRESS")
    .filter((m) => keysymsOf(desk.under, m.keycode).some((name) => name.toLowerCase() === keysym.toLowerCase()));
}

/**
 * Types `args` with wtype into the focused window, then a plain `x` as a
 * marker, and resolves once `desk` (the focused domain) received the
 * marker's release: by then guid handled every key before it. Returns the
 * index in `desk.peer.received` where this run's messages start.
 */
async function type(desk: Desk, args: string[]): Promise<number> {
  const from = desk.peer.received.length;
  await runClient(sway, "wtype", [...args, "-k", "x"]);
  await desk.peer.waitFor(
    () => keyEvents(desk, from, "x").some((m) => m.event_type === KEY_RELEASE),
    `the marker key x after wtype ${args.join(" ")} at ${desk.appId}`,
  );
  return from;
}

/** The keysym of an ASCII letter, as a VNC client sends it. */
const keysym = (letter: string): number => letter.codePointAt(0) as number;

/**
 * Sends key events through wayvnc's virtual keyboard (a US keymap, real
 * modifier keys, press and release apart), then types a plain `x` as a
 * marker, and resolves once `desk` received the marker's release. Returns
 * the index in `desk.peer.received` where this run's messages start.
 */
async function vncKeys(desk: Desk, send: () => void): Promise<number> {
  const from = desk.peer.received.length;
  send();
  wayvnc.vnc.type("x");
  await wayvnc.vnc.flush();
  await desk.peer.waitFor(
    () => keyEvents(desk, from, "x").some((m) => m.event_type === KEY_RELEASE),
    `the marker key x through wayvnc at ${desk.appId}`,
  );
  return from;
}

/** Log lines of `under` whose message matches `pattern`, once there are `count` of them. */
function logLines(under: GuidUnderTest, pattern: RegExp, count = 1): Promise<Array<Record<string, unknown>>> {
  return pollUntil(
    () => {
      const lines = under.logged(pattern);
      return lines.length >= count ? lines : undefined;
    },
    `${count} log line(s) matching ${String(pattern)}`,
  );
}

/** Copies in `desk` with the default hotkey; resolves when the clipboard holds `expected` from it. */
async function copyFrom(desk: Desk, expected: string): Promise<void> {
  await focus(desk);
  await type(desk, COPY);
  await pollUntil(
    () => {
      const content = desk.under.guid.clipboard.read();
      return content !== null && content.source === desk.appId.split(":")[0] && decoded(content.data) === expected;
    },
    `the clipboard to hold ${JSON.stringify(expected)} from ${desk.appId}`,
  );
}

function clipboardText(under: GuidUnderTest): string | null {
  const content = under.guid.clipboard.read();
  return content === null ? null : decoded(content.data);
}

describe("on headless sway, keys typed by wtype and wayvnc", () => {
  beforeAll(async () => {
    sway = await startSway({ width: 800, height: 600 });
    wayvnc = await startWayvnc(sway);
  });
  afterAll(async () => {
    wayvnc?.stop();
    await sway?.stop();
  });
  beforeEach(() => {
    dir = temporaryDirectory("guid-clipboard-e2e-");
  });
  afterEach(async () => {
    for (const under of guids.splice(0)) await under.stop();
    for (const peer of peers.splice(0)) peer.close();
    dir.remove();
  });

  describe("secure copy and paste between two domains", () => {
    it("copies from work with Ctrl+Shift+C and pastes into personal with Ctrl+Shift+V, then wipes", async () => {
      const { work, personal, under } = await startDesk();
      await copyFrom(work, "secret");
      expect(work.peer.messages("CLIPBOARD_REQ")).toHaveLength(1);
      expect(under.guid.counters.clipboardCopies).toBe(1);

      await focus(personal);
      await type(personal, PASTE);
      const pasted = await personal.peer.waitForMessage("CLIPBOARD_DATA");
      expect(decoded(pasted.data)).toBe("secret");
      expect(pasted.window).toBe(W1);
      expect(under.guid.counters.clipboardPastes).toBe(1);
      expect(work.peer.messages("CLIPBOARD_DATA")).toEqual([]);
      expect(personal.peer.messages("CLIPBOARD_REQ")).toEqual([]);
      expect(under.guid.clipboard.read()).toBeNull();
      expect(under.logged(/secure paste allowed/)).toHaveLength(1);

      // The clipboard was wiped: a second paste sends nothing and says so.
      await type(personal, PASTE);
      await logLines(under, /secure paste: the clipboard is empty/);
      expect(personal.peer.messages("CLIPBOARD_DATA")).toHaveLength(1);
      expect(work.peer.messages("CLIPBOARD_DATA")).toEqual([]);
      expect(under.guid.counters.clipboardPastes).toBe(1);
      expect(work.peer.errors).toEqual([]);
      expect(personal.peer.errors).toEqual([]);
    });

    it("swallows the press and release of the hotkeys' keys: no KEYPRESS of c or v reaches any agent", async () => {
      const { work, personal } = await startDesk();
      await focus(work);
      const workFrom = work.peer.received.length;
      const personalFrom = personal.peer.received.length;
      const copyRun = await type(work, COPY);
      await work.peer.waitForMessage("CLIPBOARD_REQ");
      expect(keyEvents(work, copyRun, "c")).toEqual([]);
      expect(keyEvents(personal, personalFrom, "c")).toEqual([]);
      // The marker shows keys do go through: its press and release, nothing else but modifiers.
      expect(keyEvents(work, copyRun, "x").map((m) => m.event_type)).toEqual([KEY_PRESS, KEY_RELEASE]);

      await focus(personal);
      const pasteRun = await type(personal, PASTE);
      await personal.peer.waitForMessage("CLIPBOARD_DATA");
      expect(keyEvents(personal, pasteRun, "v")).toEqual([]);
      expect(keyEvents(work, workFrom, "v")).toEqual([]);
      const nonModifier = (desk: Desk, from: number): string[][] =>
        desk.peer.received
          .slice(from)
          .filter((m): m is MessageOf<"KEYPRESS"> => m.type === "KEYPRESS")
          .map((m) => [...keysymsOf(desk.under, m.keycode)])
          .filter((names) => !names.some((name) => /^(Shift|Control)_[LR]$/.test(name)));
      expect(nonModifier(personal, pasteRun)).toEqual([["x"], ["x"]]);
    });

    it("forwards the hotkey's letter with other modifiers as an ordinary key, and pastes nothing", async () => {
      const { work, personal, under } = await startDesk();
      await copyFrom(work, "secret");
      await focus(personal);
      for (const args of [
        ["-M", "ctrl", "v", "-m", "ctrl"],
        ["-M", "shift", "v", "-m", "shift"],
        ["v"],
        ["-M", "ctrl", "-M", "shift", "-M", "logo", "v", "-m", "logo", "-m", "shift", "-m", "ctrl"],
      ]) {
        const from = await type(personal, args);
        expect(
          keyEvents(personal, from, "v").map((m) => m.event_type),
          `wtype ${args.join(" ")}`,
        ).toEqual([KEY_PRESS, KEY_RELEASE]);
      }
      expect(personal.peer.messages("CLIPBOARD_DATA")).toEqual([]);
      expect(work.peer.messages("CLIPBOARD_DATA")).toEqual([]);
      expect(under.guid.counters.clipboardPastes).toBe(0);
      // Nothing was pasted, so nothing was wiped.
      expect(clipboardText(under)).toBe("secret");
    });

    it("sends CLIPBOARD_DATA to no agent in a session without the paste hotkey (copy, focus changes, typing)", async () => {
      const { work, personal, under } = await startDesk();
      await copyFrom(work, "secret");
      await focus(personal);
      await type(personal, ["hello"]);
      await focus(work);
      await type(work, ["world"]);
      await focus(personal);
      expect(personal.peer.messages("CLIPBOARD_DATA")).toEqual([]);
      expect(work.peer.messages("CLIPBOARD_DATA")).toEqual([]);
      expect(under.guid.counters.clipboardPastes).toBe(0);
    });

    it("drops a CLIPBOARD_DATA the agent sends unrequested: counted, and the clipboard stays empty", async () => {
      const { personal, under } = await startDesk();
      const dropped = under.guid.counters.dropped;
      personal.peer.clipboardData(text("injected"));
      await pollUntil(
        () => under.guid.counters.dropped === dropped + 1,
        "the unrequested CLIPBOARD_DATA to be dropped",
      );
      expect(under.guid.clipboard.read()).toBeNull();
      expect(under.guid.counters.clipboardCopies).toBe(0);
      expect(under.guid.counters.sessionsEnded).toBe(0);
    });

    it("drops an unrequested CLIPBOARD_DATA while another domain's copy is pending, and takes that copy", async () => {
      const { work, personal, under } = await startDesk({ workAnswer: null });
      await focus(work);
      await type(work, COPY);
      await work.peer.waitForMessage("CLIPBOARD_REQ");
      const dropped = under.guid.counters.dropped;
      personal.peer.clipboardData(text("injected"));
      await pollUntil(() => under.guid.counters.dropped === dropped + 1, "personal's unrequested data to be dropped");
      expect(under.guid.clipboard.read()).toBeNull();
      work.peer.clipboardData(text("requested"));
      await pollUntil(() => clipboardText(under) === "requested", "work's answer in the clipboard");
      expect(under.guid.clipboard.read()?.source).toBe("work");
      // A second answer to the one request is unrequested.
      work.peer.clipboardData(text("again"));
      await pollUntil(() => under.guid.counters.dropped === dropped + 2, "work's second answer to be dropped");
      expect(clipboardText(under)).toBe("requested");
    });
  });

  describe("the hotkeys on a real keyboard (wayvnc)", () => {
    it("forwards Control_L and Shift_L but neither the press nor the release of C", async () => {
      const { work, personal, under } = await startDesk();
      await focus(work);
      const from = await vncKeys(work, () => wayvnc.vnc.chord([XK.Control_L, XK.Shift_L], keysym("C")));
      await work.peer.waitForMessage("CLIPBOARD_REQ");
      await pollUntil(() => clipboardText(under) === "secret", "work's copy in the clipboard");
      expect(keyEvents(work, from, "c")).toEqual([]);
      expect(keyEvents(work, from, "Control_L").map((m) => m.event_type)).toEqual([KEY_PRESS, KEY_RELEASE]);
      expect(keyEvents(work, from, "Shift_L").map((m) => m.event_type)).toEqual([KEY_PRESS, KEY_RELEASE]);

      await focus(personal);
      const paste = await vncKeys(personal, () => wayvnc.vnc.chord([XK.Control_L, XK.Shift_L], keysym("V")));
      expect(decoded((await personal.peer.waitForMessage("CLIPBOARD_DATA")).data)).toBe("secret");
      expect(keyEvents(personal, paste, "v")).toEqual([]);

      // Each hotkey's press and release were on one window: afterwards c and v are ordinary keys.
      const plainV = await vncKeys(personal, () => wayvnc.vnc.type("v"));
      expect(keyEvents(personal, plainV, "v").map((m) => m.event_type)).toEqual([KEY_PRESS, KEY_RELEASE]);
      await focus(work);
      const plainC = await vncKeys(work, () => wayvnc.vnc.type("c"));
      expect(keyEvents(work, plainC, "c").map((m) => m.event_type)).toEqual([KEY_PRESS, KEY_RELEASE]);
    });

    it("keeps personal's later copy when work's answer to an earlier copy comes after it (QSB-013)", async () => {
      const { work, personal, under } = await startDesk({ workAnswer: null });
      personal.peer.answerClipboard = text("personal's");
      await focus(work);
      await vncKeys(work, () => wayvnc.vnc.chord([XK.Control_L, XK.Shift_L], keysym("C")));
      await work.peer.waitForMessage("CLIPBOARD_REQ");
      await focus(personal);
      await vncKeys(personal, () => wayvnc.vnc.chord([XK.Control_L, XK.Shift_L], keysym("C")));
      await pollUntil(() => clipboardText(under) === "personal's", "personal's copy in the clipboard");
      work.peer.clipboardData(text("work's, late"));
      // Virtual keyboards (wayvnc here, wtype too) send every key at time 0: the daemon's clock breaks the tie.
      await logLines(under, /secure copy: (discarded, the clipboard holds a later copy|clipboard taken)/, 2);
      expect(clipboardText(under)).toBe("personal's");
      expect(under.guid.clipboard.read()?.source).toBe("personal");
      expect(under.logged(/discarded, the clipboard holds a later copy/)).toHaveLength(1);
    });

    /** Presses Ctrl+Shift+C on work's window and releases it on personal's (the focus moved in between). */
    async function releaseElsewhere(work: Desk, personal: Desk): Promise<number> {
      await focus(work);
      const vnc = wayvnc.vnc;
      vnc.key(XK.Control_L, true);
      vnc.key(XK.Shift_L, true);
      vnc.key(keysym("C"), true);
      await vnc.flush();
      await work.peer.waitForMessage("CLIPBOARD_REQ");
      await focus(personal);
      return vncKeys(personal, () => {
        vnc.key(keysym("C"), false);
        vnc.key(XK.Shift_L, false);
        vnc.key(XK.Control_L, false);
      });
    }

    it("swallows the hotkey's release after the focus moved to another domain", async () => {
      const { work, personal } = await startDesk();
      const released = await releaseElsewhere(work, personal);
      expect(keyEvents(personal, released, "c")).toEqual([]);
    });

    it("leaves no key held back in the first domain when the hotkey's release went elsewhere", async () => {
      const { work, personal } = await startDesk();
      await releaseElsewhere(work, personal);
      await focus(work);
      const plain = await vncKeys(work, () => wayvnc.vnc.type("c"));
      expect(keyEvents(work, plain, "c").map((m) => m.event_type)).toEqual([KEY_PRESS, KEY_RELEASE]);
    });
  });

  describe("configurable hotkeys", () => {
    it("uses each domain's own sequences: with Ctrl-Mod4-c and Shift-Insert, Ctrl+Shift+C is an ordinary key", async () => {
      const custom = {
        secureCopySequence: parseKeySequence("Ctrl-Mod4-c"),
        securePasteSequence: parseKeySequence("Shift-Insert"),
      };
      const { work, personal, under } = await startDesk({ work: custom, personal: custom });
      await focus(work);
      const plain = await type(work, COPY);
      expect(keyEvents(work, plain, "c").map((m) => m.event_type)).toEqual([KEY_PRESS, KEY_RELEASE]);
      expect(work.peer.messages("CLIPBOARD_REQ")).toEqual([]);
      expect(under.guid.clipboard.read()).toBeNull();

      const copy = await type(work, ["-M", "ctrl", "-M", "logo", "c", "-m", "logo", "-m", "ctrl"]);
      await work.peer.waitForMessage("CLIPBOARD_REQ");
      expect(keyEvents(work, copy, "c")).toEqual([]);
      await pollUntil(() => clipboardText(under) === "secret", "the custom copy in the clipboard");

      await focus(personal);
      const ordinary = await type(personal, PASTE);
      expect(keyEvents(personal, ordinary, "v").map((m) => m.event_type)).toEqual([KEY_PRESS, KEY_RELEASE]);
      expect(personal.peer.messages("CLIPBOARD_DATA")).toEqual([]);

      const paste = await type(personal, ["-M", "shift", "-k", "Insert", "-m", "shift"]);
      const pasted = await personal.peer.waitForMessage("CLIPBOARD_DATA");
      expect(decoded(pasted.data)).toBe("secret");
      expect(keyEvents(personal, paste, "Insert")).toEqual([]);
    });

    it("applies the focused domain's sequence: work copies with Ctrl-Mod4-c, personal keeps Ctrl+Shift+V", async () => {
      const { work, personal, under } = await startDesk({
        work: { secureCopySequence: parseKeySequence("Ctrl-Mod4-c"), securePasteSequence: null },
      });
      await focus(work);
      await type(work, ["-M", "ctrl", "-M", "logo", "c", "-m", "logo", "-m", "ctrl"]);
      await pollUntil(() => clipboardText(under) === "secret", "work's copy in the clipboard");
      // Work's paste hotkey is off: Ctrl+Shift+V there is an ordinary key.
      const off = await type(work, PASTE);
      expect(keyEvents(work, off, "v").map((m) => m.event_type)).toEqual([KEY_PRESS, KEY_RELEASE]);
      expect(work.peer.messages("CLIPBOARD_DATA")).toEqual([]);
      await focus(personal);
      await type(personal, PASTE);
      expect(decoded((await personal.peer.waitForMessage("CLIPBOARD_DATA")).data)).toBe("secret");
    });

    it("turns the copy hotkey off with none: Ctrl+Shift+C reaches the agent and nothing is requested", async () => {
      const { work } = await startDesk({ work: { secureCopySequence: parseKeySequence("none") } });
      await focus(work);
      const from = await type(work, COPY);
      expect(keyEvents(work, from, "c").map((m) => m.event_type)).toEqual([KEY_PRESS, KEY_RELEASE]);
      expect(work.peer.messages("CLIPBOARD_REQ")).toEqual([]);
    });
  });

  describe("clipboard size limits", () => {
    it("clears the clipboard for an answer over max_clipboard_size, and takes one of exactly the limit", async () => {
      const { work, under } = await startDesk({ work: { maxClipboardSize: 256 } });
      await copyFrom(work, "secret");

      work.peer.answerClipboard = new Uint8Array(300).fill(0x61);
      const dropped = under.guid.counters.dropped;
      await type(work, COPY);
      await logLines(under, /over max_clipboard_size; clipboard cleared/);
      expect(under.guid.clipboard.read()).toBeNull();
      expect(under.guid.counters.dropped).toBe(dropped + 1);

      work.peer.answerClipboard = new Uint8Array(256).fill(0x62);
      await type(work, COPY);
      await pollUntil(() => under.guid.clipboard.read()?.data.length === 256, "the 256-byte copy in the clipboard");

      work.peer.answerClipboard = new Uint8Array(257).fill(0x63);
      await type(work, COPY);
      await logLines(under, /over max_clipboard_size; clipboard cleared/, 2);
      expect(under.guid.clipboard.read()).toBeNull();
      expect(under.guid.counters.sessionsEnded).toBe(0);
    });

    it("takes a 1.8 agent's 256 001-byte 'too big' answer as oversized: cleared, and the session goes on", async () => {
      const { work, under } = await startDesk();
      await copyFrom(work, "secret");
      work.peer.answerClipboard = new Uint8Array(256_001).fill(0x61);
      await type(work, COPY);
      await logLines(under, /over max_clipboard_size; clipboard cleared/);
      expect(under.guid.clipboard.read()).toBeNull();
      expect(under.guid.counters.sessionsEnded).toBe(0);
      expect(work.peer.closed).toBe(false);
    });

    it("leaves the clipboard alone for an oversized CLIPBOARD_DATA nobody asked for", async () => {
      const { work, under } = await startDesk({ work: { maxClipboardSize: 256 } });
      await copyFrom(work, "secret");
      const dropped = under.guid.counters.dropped;
      work.peer.clipboardData(new Uint8Array(300).fill(0x61));
      await pollUntil(
        () => under.guid.counters.dropped === dropped + 1,
        "the unrequested oversized data to be dropped",
      );
      expect(clipboardText(under)).toBe("secret");
      expect(under.logged(/over max_clipboard_size/)).toEqual([]);
    });

    it("clears the clipboard when the domain answers with nothing", async () => {
      const { work, under } = await startDesk();
      await copyFrom(work, "secret");
      work.peer.answerClipboard = new Uint8Array(0);
      await type(work, COPY);
      await logLines(under, /the domain's clipboard is empty; clipboard cleared/);
      expect(under.guid.clipboard.read()).toBeNull();
      expect(under.guid.counters.clipboardCopies).toBe(1);
    });

    it("refuses to paste more than 65 000 bytes into a 1.7 agent, and logs it", async () => {
      const { work, personal, under } = await startDesk({
        work: { maxClipboardSize: 256_000 },
        personalVersion: 0x00010007,
      });
      expect(personal.peer.negotiatedVersion).toBe(0x00010007);
      const big = "b".repeat(70_000);
      work.peer.answerClipboard = text(big);
      await copyFrom(work, big);
      await focus(personal);
      await type(personal, PASTE);
      await logLines(under, /secure paste refused: 70000 bytes exceed what this agent takes \(65000\)/);
      expect(personal.peer.messages("CLIPBOARD_DATA")).toEqual([]);
      expect(under.guid.counters.clipboardRefused).toBe(1);
    });
  });

  describe("QSB-013 timestamp guards", () => {
    /** Copies "first" from work and returns the time guid recorded for that keypress (wtype's time base). */
    async function keyTime(work: Desk): Promise<number> {
      await copyFrom(work, "first");
      const content = work.under.guid.clipboard.read();
      if (content === null) throw new Error("no clipboard after the copy");
      return content.timestamp;
    }

    it("keeps a later copy when the answer to an earlier copy arrives after it", async () => {
      const { work, under } = await startDesk({ workAnswer: "first" });
      const time = await keyTime(work);
      work.peer.answerClipboard = undefined;
      await type(work, COPY);
      await work.peer.waitFor(() => work.peer.messages("CLIPBOARD_REQ").length === 2, "the second CLIPBOARD_REQ");
      const later = (time + FAR_AHEAD) >>> 0;
      under.guid.clipboard.write({ data: text("newer"), source: "personal", timestamp: later });
      work.peer.clipboardData(text("late"));
      await logLines(under, /discarded, the clipboard holds a later copy/);
      expect(clipboardText(under)).toBe("newer");
      expect(under.guid.clipboard.read()?.source).toBe("personal");
      expect(under.guid.clipboard.read()?.timestamp).toBe(later);
      expect(under.guid.counters.clipboardRefused).toBe(1);
    });

    it("discards a late answer to an earlier copy after the later copy was pasted and wiped", async () => {
      const { work, personal, under } = await startDesk({ workAnswer: null });
      await focus(work);
      await type(work, COPY);
      await work.peer.waitForMessage("CLIPBOARD_REQ");
      personal.peer.answerClipboard = text("later");
      await copyFrom(personal, "later");
      await focus(work);
      await type(work, PASTE);
      expect(decoded((await work.peer.waitForMessage("CLIPBOARD_DATA")).data)).toBe("later");
      work.peer.clipboardData(text("late"));
      await logLines(under, /discarded, the clipboard holds a later copy/);
      expect(under.guid.clipboard.read()).toBeNull();
      await type(work, PASTE);
      await logLines(under, /secure paste: the clipboard is empty/);
      expect(work.peer.messages("CLIPBOARD_DATA")).toHaveLength(1);
      expect(under.guid.counters.clipboardRefused).toBe(1);
    });

    it("discards a late answer to an earlier copy after the later copy's answer cleared the clipboard", async () => {
      const { work, personal, under } = await startDesk({ workAnswer: null });
      await focus(work);
      await type(work, COPY);
      await work.peer.waitForMessage("CLIPBOARD_REQ");
      personal.peer.answerClipboard = new Uint8Array(0);
      await focus(personal);
      await type(personal, COPY);
      await logLines(under, /the domain's clipboard is empty; clipboard cleared/);
      work.peer.clipboardData(text("late"));
      await logLines(under, /discarded, the clipboard holds a later copy/);
      expect(under.guid.clipboard.read()).toBeNull();
      expect(under.guid.counters.clipboardRefused).toBe(1);
    });

    it("refuses a paste whose key is older than the clipboard's copy, and logs it", async () => {
      const { work, personal, under } = await startDesk({ workAnswer: "first" });
      const time = await keyTime(work);
      under.guid.clipboard.write({ data: text("future"), source: "work", timestamp: (time + FAR_AHEAD) >>> 0 });
      await focus(personal);
      await type(personal, PASTE);
      await logLines(under, /secure paste refused: the clipboard was copied after the paste key \(QSB-013\)/);
      expect(personal.peer.messages("CLIPBOARD_DATA")).toEqual([]);
      expect(under.guid.counters.clipboardRefused).toBe(1);
      expect(under.guid.counters.clipboardPastes).toBe(0);
    });

    it("pastes a copy stamped just before the paste key across the 32-bit wrap", async () => {
      const { work, personal, under } = await startDesk({ workAnswer: "first" });
      const time = await keyTime(work);
      // 256 ms before the key: for a key at time 0 (wtype's) this is 0xffffff00.
      under.guid.clipboard.write({ data: text("earlier"), source: "work", timestamp: (time - 256) >>> 0 });
      await focus(personal);
      await type(personal, PASTE);
      expect(decoded((await personal.peer.waitForMessage("CLIPBOARD_DATA")).data)).toBe("earlier");
      expect(under.guid.counters.clipboardRefused).toBe(0);
    });
  });

  describe("the paste policy", () => {
    const rule = (source: string, target: string, action: "allow" | "deny", line: number): PasteRule => ({
      source,
      target,
      action,
      line,
    });

    it("refuses a paste the policy denies, counts and logs it with the rule; the other direction is allowed", async () => {
      const pastePolicy = [rule("work", "personal", "deny", 37), rule("*", "*", "allow", 41)];
      const { work, personal, under } = await startDesk({ work: { pastePolicy }, personal: { pastePolicy } });
      await copyFrom(work, "secret");
      await focus(personal);
      await type(personal, PASTE);
      const [refused] = await logLines(under, /secure paste refused: denied by/);
      expect(personal.peer.messages("CLIPBOARD_DATA")).toEqual([]);
      expect(work.peer.messages("CLIPBOARD_DATA")).toEqual([]);
      expect(under.guid.counters.clipboardRefused).toBe(1);
      expect(under.guid.counters.clipboardPastes).toBe(0);
      expect(refused).toMatchObject({ source: "work", target: "personal" });
      expect(String(refused?.msg)).toMatch(/paste_policy rule/);

      personal.peer.answerClipboard = text("the other way");
      await copyFrom(personal, "the other way");
      await focus(work);
      await type(work, PASTE);
      expect(decoded((await work.peer.waitForMessage("CLIPBOARD_DATA")).data)).toBe("the other way");
      const [allowed] = await logLines(under, /secure paste allowed by the paste_policy rule/);
      expect(allowed).toMatchObject({ source: "personal", target: "work" });
      expect(under.guid.counters.clipboardPastes).toBe(1);
    });

    it("names the deciding rule by its line in guid.conf, for refused and allowed pastes", async () => {
      const pastePolicy = [rule("work", "personal", "deny", 37), rule("*", "*", "allow", 41)];
      const { work, personal, under } = await startDesk({ work: { pastePolicy }, personal: { pastePolicy } });
      await copyFrom(work, "secret");
      await focus(personal);
      await type(personal, PASTE);
      const [refused] = await logLines(under, /secure paste refused: denied by/);
      personal.peer.answerClipboard = text("the other way");
      await copyFrom(personal, "the other way");
      await focus(work);
      await type(work, PASTE);
      await work.peer.waitForMessage("CLIPBOARD_DATA");
      const [allowed] = await logLines(under, /secure paste allowed by/);
      expect(`${String(refused?.msg)} ${JSON.stringify(refused)}`).toMatch(/line\D{0,3}37\b/);
      expect(`${String(allowed?.msg)} ${JSON.stringify(allowed)}`).toMatch(/line\D{0,3}41\b/);
    });

    it("logs an allowed paste without a matching rule as the default allow", async () => {
      const pastePolicy = [rule("personal", "work", "deny", 12)];
      const { work, personal, under } = await startDesk({ work: { pastePolicy }, personal: { pastePolicy } });
      await copyFrom(work, "secret");
      await focus(personal);
      await type(personal, PASTE);
      expect(decoded((await personal.peer.waitForMessage("CLIPBOARD_DATA")).data)).toBe("secret");
      const [allowed] = await logLines(under, /secure paste allowed by no rule \(default allow\)/);
      expect(allowed).toMatchObject({ source: "work", target: "personal", bytes: 6 });
      expect(under.guid.counters.clipboardRefused).toBe(0);
    });
  });

  describe("one clipboard for two guid processes", () => {
    it("copies in one guid and pastes in another through the shared clipboard directory", async () => {
      const clipboardDir = path.join(dir.dir, "clipboard");
      const workDir = path.join(dir.dir, "work");
      const personalDir = path.join(dir.dir, "personal");
      mkdirSync(workDir);
      mkdirSync(personalDir);
      const workPeer = await agent(WORK, workDir, { answer: "across guids" });
      const personalPeer = await agent(PERSONAL, personalDir);
      const workGuid = await startGuid([{ domain: WORK, name: "work" }], workDir, clipboardDir);
      const personalGuid = await startGuid(
        [{ domain: PERSONAL, name: "personal", color: GREEN }],
        personalDir,
        clipboardDir,
      );
      await workPeer.handshake();
      await personalPeer.handshake();
      const work = { peer: workPeer, under: workGuid, session: sessionOf(workGuid, 0), appId: "work:Test" };
      const personal = {
        peer: personalPeer,
        under: personalGuid,
        session: sessionOf(personalGuid, 0),
        appId: "personal:Test",
      };
      await showWindow(work, work.appId);
      await showWindow(personal, personal.appId);

      await copyFrom(work, "across guids");
      expect(modeOf(clipboardDir)).toBe(0o700);
      expect(modeOf(path.join(clipboardDir, CLIPBOARD_FILE))).toBe(0o600);
      expect(personalGuid.guid.clipboard.read()?.source).toBe("work");

      await focus(personal);
      await type(personal, PASTE);
      const pasted = await personalPeer.waitForMessage("CLIPBOARD_DATA");
      expect(decoded(pasted.data)).toBe("across guids");
      expect(pasted.window).toBe(W1);
      expect(personalGuid.guid.counters.clipboardPastes).toBe(1);
      expect(workGuid.guid.counters.clipboardCopies).toBe(1);
      // The file keeps only the copy's time (QSB-013), none of its data.
      expect(readdirSync(clipboardDir)).toEqual([CLIPBOARD_FILE]);
      expect(personalGuid.guid.clipboard.read()).toBeNull();
      expect(workGuid.guid.clipboard.read()).toBeNull();
      expect(workPeer.messages("CLIPBOARD_DATA")).toEqual([]);
    });
  });
});
