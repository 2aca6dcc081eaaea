/**
 * The secure clipboard as a property (issue 13, item 5): for any sequence of
 * input events, clipboard data reaches a domain only after the user's
 * Ctrl+Shift+V on one of its windows, it is the data of a Ctrl+Shift+C the
 * user made, it arrives at most once per paste, and never from a copy older
 * than another copy that came in before the paste.
 *
 * Everything but the domains is real: headless sway; wayvnc's virtual
 * keyboard and pointer on its seat, so keys, clicks and motion go through
 * sway as a user's would; `swaymsg … focus`; and one guid per domain in this
 * process, as qvm-start-daemon runs them, sharing one clipboard directory.
 * The domains are hand-built agents (AgentPeer, never our encoder), one with
 * two windows, each window shown on sway at a place of its own.
 *
 * fast-check generates the sequences: presses and releases of Ctrl, Shift,
 * Alt, Super, c, v and a, in any order; copy and paste chords, with or
 * without an extra modifier; clicks in windows (sway moves the focus);
 * `swaymsg` focus changes; pointer motion anywhere; and agents sending
 * CLIPBOARD_DATA at any moment: the answer to a CLIPBOARD_REQ after any
 * number of events, an unsolicited one, an empty one or one over
 * max_clipboard_size.
 *
 * After each input event a marker key (q) is typed and its release awaited
 * at the focused window's agent; after each agent message, guid's count of
 * messages handled. So guid sees the events in the order generated, and two
 * oracles check every run: the user's actions and the agents' messages as
 * traced by the test (the property as stated), and a model of the
 * clipboard that predicts exactly the CLIPBOARD_REQ and CLIPBOARD_DATA each
 * agent receives. Runs share one desk: each begins by releasing every key,
 * ending any pending request (an empty answer from every agent) and wiping
 * the clipboard.
 *
 * A failure prints fast-check's seed and path; set CLIPBOARD_PROPERTY_SEED
 * and CLIPBOARD_PROPERTY_PATH to replay it, CLIPBOARD_PROPERTY_RUNS for a
 * longer run.
 */
import path from "node:path";

import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";

import type { PasteRule, Session } from "../../guid/index.ts";
import type { Message, MessageOf } from "../../protocol/index.ts";
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
  type RunningWayvnc,
  sessionCommit,
} from "../helpers/guid-harness.ts";
import { temporaryDirectory, withStartup } from "../helpers/processes.ts";
import { VNC_LEFT, XK } from "../helpers/vnc-client.ts";

vi.setConfig({ testTimeout: withStartup(30_000, 1), hookTimeout: withStartup(60_000, 2) });

/** Sequences per run of the file (the examples below included), and events per sequence. */
const NUM_RUNS = Number(process.env.CLIPBOARD_PROPERTY_RUNS ?? 40);
const MAX_STEPS = 20;
/** Bound of every wait on one event (a marker key, a message handled). */
const WAIT_MS = 10_000;

const GUI = 0;
const W1 = 0x00400001;
const W2 = 0x00400002;
const SCREEN = { width: 800, height: 600 };
/** Each window's content size: above sway's floating minimum (75×50); four fit side by side. */
const WIDTH = 200;
const HEIGHT = 150;
/** max_clipboard_size of every domain (the smallest allowed), so an oversized answer is 257 bytes. */
const MAX_CLIPBOARD = 256;
const KEY_RELEASE = 3;

const DOMAINS = [
  { domain: 5, name: "work", color: 0x3465a4 },
  { domain: 6, name: "personal", color: 0x73d216 },
  { domain: 7, name: "vault", color: 0x75507b },
] as const;

/** The windows: work has two. sway places each (for_window … move position) where no other is. */
const WINDOWS = [
  { domain: 0, id: W1, resClass: "Test", x: 40, y: 40 },
  { domain: 0, id: W2, resClass: "Other", x: 440, y: 40 },
  { domain: 1, id: W1, resClass: "Test", x: 40, y: 340 },
  { domain: 2, id: W1, resClass: "Test", x: 440, y: 340 },
] as const;

/** Every domain's guid.conf paste_policy: nothing from vault may go to personal; the rest is allowed. */
const PASTE_POLICY: PasteRule[] = [{ source: "vault", target: "personal", action: "deny", line: 1 }];

const domainName = (domain: number): string => DOMAINS[domain]?.name ?? `domain #${domain}`;
const windowAt = (index: number): (typeof WINDOWS)[number] => {
  const window = WINDOWS[index];
  if (window === undefined) throw new Error(`no window #${index}`);
  return window;
};
const appIdOf = (index: number): string => {
  const window = windowAt(index);
  return `${domainName(window.domain)}:${window.resClass}`;
};

/** The keys the user presses, by their X keysym (what the VNC client sends; wayvnc has a US keymap). */
const KEYSYMS = {
  Control_L: XK.Control_L,
  Shift_L: XK.Shift_L,
  Alt_L: XK.Alt_L,
  Super_L: 0xffeb,
  a: 0x61,
  c: 0x63,
  v: 0x76,
} as const;
type Key = keyof typeof KEYSYMS;
const KEYS = Object.keys(KEYSYMS) as Key[];
/** Modifier keys whose bits the hotkeys compare (Shift, Control, Mod1, Mod4). */
const MODIFIERS: readonly Key[] = ["Control_L", "Shift_L", "Alt_L", "Super_L"];
/** The marker typed after every input event; no generated event uses it. */
const MARKER_KEYSYM = 0x71;
const MARKER_NAME = "q";

/** What an agent sends as CLIPBOARD_DATA: fresh text, nothing, or one byte over max_clipboard_size. */
type Payload = "text" | "empty" | "oversized";

/** One generated event. */
type Step =
  | { kind: "key"; key: Key; down: boolean }
  | { kind: "chord"; key: "c" | "v"; extra: "Alt_L" | "Super_L" | null; answer: boolean }
  | { kind: "click"; window: number; fx: number; fy: number }
  | { kind: "focus"; window: number }
  | { kind: "motion"; x: number; y: number }
  | { kind: "send"; domain: number | "focused"; payload: Payload };

const windowIndex = fc.integer({ min: 0, max: WINDOWS.length - 1 });
const stepArbitrary: fc.Arbitrary<Step> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.record({
      kind: fc.constant("key" as const),
      // Alt and Super less often than the rest: one held stops every hotkey until released.
      key: fc.constantFrom<Key>(...KEYS, "Control_L", "Shift_L", "c", "v"),
      down: fc.boolean(),
    }),
  },
  {
    weight: 6,
    arbitrary: fc.record({
      kind: fc.constant("chord" as const),
      key: fc.constantFrom("c" as const, "v" as const),
      // One in four with a modifier too many: an ordinary key then.
      extra: fc.constantFrom(null, null, null, null, null, null, "Alt_L" as const, "Super_L" as const),
      // After a copy, its agent answers at once with text, as a real agent does; else later, or never.
      answer: fc.boolean(),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant("click" as const),
      window: windowIndex,
      fx: fc.integer({ min: 0, max: 99 }),
      fy: fc.integer({ min: 0, max: 99 }),
    }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("focus" as const), window: windowIndex }) },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant("motion" as const),
      x: fc.integer({ min: 0, max: SCREEN.width - 1 }),
      y: fc.integer({ min: 0, max: SCREEN.height - 1 }),
    }),
  },
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant("send" as const),
      // Mostly the focused window's domain, as an agent answers the request its window got; else any.
      domain: fc.oneof(
        { weight: 2, arbitrary: fc.constant("focused" as const) },
        { weight: 1, arbitrary: fc.integer({ min: 0, max: DOMAINS.length - 1 }) },
      ),
      payload: fc.constantFrom<Payload>("text", "text", "text", "text", "empty", "oversized"),
    }),
  },
);

// ---------------------------------------------------------------------------
// What the user did and what the agents sent (the property's own terms)
// ---------------------------------------------------------------------------

/** A secure copy or paste keypress: the step it happened in and the window it landed on. */
interface HotkeyPress {
  step: number;
  domain: number;
  window: number;
}

/** One CLIPBOARD_DATA an agent sent. */
interface AgentSend {
  step: number;
  domain: number;
  payload: Payload;
  text: string;
  /** The copy keypress (step) of this domain it answers: its latest one since the domain's previous send, else null. */
  answers: number | null;
}

/** The run's history as the user and the agents made it. */
interface Trace {
  copies: HotkeyPress[];
  pastes: HotkeyPress[];
  sends: AgentSend[];
}

// ---------------------------------------------------------------------------
// The model: what each agent must receive
// ---------------------------------------------------------------------------

/**
 * The clipboard as qubes-gui-protocol.md 4.3 and upstream's QSB-013 guards
 * define it, with keypresses ordered by the step they happened in (wayvnc
 * sends every key at time 0; guid orders them by its own clock).
 */
class ClipboardModel {
  /** Per domain: the copy keypress whose CLIPBOARD_REQ has had no answer yet, or null. */
  readonly pending: Array<number | null> = DOMAINS.map(() => null);
  /** What a paste would send, with the domain it came from and the copy keypress it answered. */
  content: { text: string; source: number; copy: number } | null = null;
  /** The newest copy keypress whose answer guid took (data, empty or too big); -1 for none this run. */
  latest = -1;
  /** Per domain: the windows CLIPBOARD_REQ must name, in order. */
  readonly requests: number[][] = DOMAINS.map(() => []);
  /** Per domain: the CLIPBOARD_DATA it must receive, in order. */
  readonly pasted: Array<Array<{ window: number; text: string }>> = DOMAINS.map(() => []);
  /** Answers guid must discard because a later copy came in first. */
  stale = 0;
  /** Answers guid must take (data, empty or too big), and pastes it must refuse by the paste policy. */
  taken = 0;
  denied = 0;

  copy(press: HotkeyPress): void {
    this.pending[press.domain] = press.step;
    this.requests[press.domain]?.push(press.window);
  }

  paste(press: HotkeyPress): void {
    const content = this.content;
    if (content === null) return;
    const denied = PASTE_POLICY.some(
      (rule) =>
        rule.action === "deny" &&
        (rule.source === "*" || rule.source === domainName(content.source)) &&
        (rule.target === "*" || rule.target === domainName(press.domain)),
    );
    if (denied) {
      this.denied += 1;
      return;
    }
    this.pasted[press.domain]?.push({ window: press.window, text: content.text });
    this.content = null;
  }

  answer(send: AgentSend): void {
    const copy = this.pending[send.domain] ?? null;
    this.pending[send.domain] = null;
    if (copy === null) return;
    if (copy < this.latest) {
      this.stale += 1;
      return;
    }
    this.latest = copy;
    this.taken += 1;
    this.content = send.payload === "text" ? { text: send.text, source: send.domain, copy } : null;
  }
}

// ---------------------------------------------------------------------------
// The desk: sway, wayvnc, three guids, three agents, four windows
// ---------------------------------------------------------------------------

interface DeskDomain {
  peer: AgentPeer;
  under: GuidUnderTest;
  session: Session;
}

let sway: RunningCompositor;
let wayvnc: RunningWayvnc | undefined;
let dir: { dir: string; remove: () => void } | undefined;
const domains: DeskDomain[] = [];
/** Each window's content rectangle on the screen. */
const contents: Array<{ x: number; y: number; width: number; height: number }> = [];
/** Keys the VNC client holds down now, each with the keysym its press sent. */
const held = new Map<Key, number>();
/** The window with the keyboard focus, as the test's actions put it. */
let focused = 0;
/** Runs so far, to keep every run's text apart. */
let runs = 0;

function domainAt(index: number): DeskDomain {
  const found = domains[index];
  if (found === undefined) throw new Error(`no domain #${index}`);
  return found;
}

function vnc(): RunningWayvnc["vnc"] {
  if (wayvnc === undefined) throw new Error("wayvnc is not running");
  return wayvnc.vnc;
}

/** Polls `probe` every 2 ms until it gives a value; rejects after `timeoutMs` naming what never came. */
async function until<T>(probe: () => T | undefined, what: string, timeoutMs = WAIT_MS): Promise<T> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const value = probe();
    if (value !== undefined) return value;
    if (performance.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
}

async function showWindow(index: number): Promise<void> {
  const spec = windowAt(index);
  const { peer, session } = domainAt(spec.domain);
  const rect = { x: 0, y: 0, width: WIDTH, height: HEIGHT };
  const framebuffer = peer.framebuffer(WIDTH, HEIGHT);
  framebuffer.fill(0x808080);
  peer.create(spec.id, rect);
  peer.wmclass(spec.id, spec.resClass, spec.resClass.toLowerCase());
  peer.wmname(spec.id, "clipboard property");
  peer.map(spec.id);
  const committed = sessionCommit(session, spec.id, WAIT_MS);
  peer.windowDump(spec.id, WIDTH, HEIGHT, framebuffer.refs);
  peer.shmimage(spec.id, rect);
  await committed;
}

/** True for a KEYPRESS release of the marker key, as `domain`'s guid names keys (the host keymap). */
function isMarkerRelease(domain: DeskDomain, message: Message): message is MessageOf<"KEYPRESS"> {
  if (message.type !== "KEYPRESS" || message.event_type !== KEY_RELEASE) return false;
  const keymap = domain.under.guid.display.keymap;
  return keymap !== null && keymap.keysymsOf(message.keycode - 8).includes(MARKER_NAME);
}

/**
 * Types the marker and resolves once an agent received its release: by then
 * guid handled every input event before it, and what it sent the focused
 * agent arrived. The marker must land on the window the test's actions
 * focused; `focused` follows where it did land, so that the next run starts
 * from the truth.
 */
async function marker(after: string): Promise<void> {
  const from = domains.map((domain) => domain.peer.received.length);
  vnc().key(MARKER_KEYSYM, true);
  vnc().key(MARKER_KEYSYM, false);
  const landed = await until(() => {
    for (const [index, domain] of domains.entries()) {
      const received = domain.peer.received;
      for (let at = from[index] ?? 0; at < received.length; at++) {
        const message = received[at] as Message;
        if (isMarkerRelease(domain, message)) return { domain: index, window: message.window };
      }
    }
    return undefined;
  }, `the marker key's release at any agent after ${after}`);
  const expected = windowAt(focused);
  if (landed.domain !== expected.domain || landed.window !== expected.id) {
    const actual = WINDOWS.findIndex((w) => w.domain === landed.domain && w.id === landed.window);
    const where =
      actual < 0 ? `window 0x${landed.window.toString(16)} of ${domainName(landed.domain)}` : appIdOf(actual);
    const wanted = appIdOf(focused);
    if (actual >= 0) focused = actual;
    throw new Error(`after ${after} the keyboard focus is on ${where}, where the test's actions put it on ${wanted}`);
  }
}

/** Sends CLIPBOARD_DATA from `domain`'s agent; resolves once its guid handled it. */
async function agentSends(domain: number, data: Uint8Array, what: string): Promise<void> {
  const { peer, under } = domainAt(domain);
  const before = under.guid.counters.messages;
  peer.clipboardData(data);
  await until(
    () => (under.guid.counters.messages > before ? true : undefined),
    `${domainName(domain)}'s guid to handle ${what}`,
  );
}

function press(key: Key, onHotkey: (key: "c" | "v") => void): void {
  if (held.has(key)) return;
  // The hotkeys compare Shift, Control, Mod1 and Mod4: exactly Ctrl and Shift must be down.
  const hotkey =
    (key === "c" || key === "v") &&
    MODIFIERS.every((modifier) => held.has(modifier) === (modifier === "Control_L" || modifier === "Shift_L"));
  // wayvnc types the keysym it is given, working the modifiers to get it: with Shift down a letter is its capital.
  const keysym = held.has("Shift_L") && key.length === 1 ? KEYSYMS[key] - 0x20 : KEYSYMS[key];
  held.set(key, keysym);
  vnc().key(keysym, true);
  if (hotkey) onHotkey(key);
}

function release(key: Key): void {
  const keysym = held.get(key);
  if (keysym === undefined) return;
  held.delete(key);
  vnc().key(keysym, false);
}

/** Brings the desk to a known state between runs: no key held, no request pending, the clipboard empty. */
async function resetDesk(): Promise<void> {
  for (const key of [...held.keys()]) release(key);
  await marker("releasing every key");
  for (const index of domains.keys()) {
    // Taken as the answer to a request left pending, else dropped as unsolicited: either way none is pending after.
    await agentSends(index, new Uint8Array(0), "an empty CLIPBOARD_DATA that ends any pending request");
  }
  domainAt(0).under.guid.clipboard.wipe();
}

const clipboardData = (peer: AgentPeer, from: number): Array<MessageOf<"CLIPBOARD_DATA">> =>
  peer.received.slice(from).filter((m): m is MessageOf<"CLIPBOARD_DATA"> => m.type === "CLIPBOARD_DATA");

const decoded = (data: Uint8Array): string => new TextDecoder().decode(data);

/** What all runs did, so that the file can show the property was not vacuous. */
const totals = { runs: 0, steps: 0, copies: 0, answers: 0, stale: 0, pastes: 0, denied: 0, delivered: 0 };

/** Runs `steps` on the desk and checks both oracles. */
async function checkSequence(steps: readonly Step[]): Promise<void> {
  await resetDesk();
  const run = ++runs;
  const startReceived = domains.map((domain) => domain.peer.received.length);
  const startSent = domains.map((domain) => domain.under.guid.counters.messagesSent);
  const model = new ClipboardModel();
  const trace: Trace = { copies: [], pastes: [], sends: [] };
  const lastCopy: Array<number | null> = DOMAINS.map(() => null);
  const lastSend: number[] = DOMAINS.map(() => -1);
  /** After each step: how many CLIPBOARD_DATA each agent had received this run. */
  const dataSeen: number[][] = [];

  for (const [index, step] of steps.entries()) {
    /** `domain`'s agent sends CLIPBOARD_DATA of `payload`; resolves once its guid handled it. */
    const agentStep = async (domain: number, payload: Payload): Promise<void> => {
      const text = `run ${run} step ${index} from ${domainName(domain)}`;
      const data =
        payload === "text"
          ? new TextEncoder().encode(text)
          : new Uint8Array(payload === "empty" ? 0 : MAX_CLIPBOARD + 1).fill(0x6f);
      const copy = lastCopy[domain] ?? null;
      const send: AgentSend = {
        step: index,
        domain,
        payload,
        text,
        answers: copy !== null && copy > (lastSend[domain] ?? -1) ? copy : null,
      };
      lastSend[domain] = index;
      trace.sends.push(send);
      model.answer(send);
      await agentSends(domain, data, `${domainName(domain)}'s ${payload} CLIPBOARD_DATA in step ${index}`);
    };
    const what = `step ${index} ${JSON.stringify(step)}`;
    /** The domain a copy hotkey of this step landed in (set by onHotkey, hence the widened type). */
    let copied = null as number | null;
    const onHotkey = (key: "c" | "v"): void => {
      const window = windowAt(focused);
      const hit: HotkeyPress = { step: index, domain: window.domain, window: window.id };
      if (key === "c") {
        copied = window.domain;
        trace.copies.push(hit);
        lastCopy[hit.domain] = index;
        model.copy(hit);
      } else {
        trace.pastes.push(hit);
        model.paste(hit);
      }
    };
    switch (step.kind) {
      case "key":
        if (step.down) press(step.key, onHotkey);
        else release(step.key);
        await marker(what);
        break;
      case "chord": {
        const pressed: Key[] = [];
        for (const modifier of ["Control_L", "Shift_L", ...(step.extra === null ? [] : [step.extra])] as Key[]) {
          if (held.has(modifier)) continue;
          press(modifier, onHotkey);
          pressed.push(modifier);
        }
        release(step.key);
        press(step.key, onHotkey);
        release(step.key);
        for (const modifier of pressed.reverse()) release(modifier);
        await marker(what);
        if (step.answer && copied !== null) await agentStep(copied, "text");
        break;
      }
      case "click": {
        const content = contents[step.window];
        if (content === undefined) throw new Error(`no content rectangle for window #${step.window}`);
        vnc().move(
          content.x + Math.floor((step.fx * content.width) / 100),
          content.y + Math.floor((step.fy * content.height) / 100),
        );
        vnc().press(VNC_LEFT);
        vnc().release(VNC_LEFT);
        focused = step.window;
        await marker(what);
        break;
      }
      case "focus":
        await swaymsg(sway, [`[app_id="${appIdOf(step.window)}"]`, "focus"]);
        focused = step.window;
        await marker(what);
        break;
      case "motion":
        vnc().move(step.x, step.y);
        await marker(what);
        break;
      case "send":
        await agentStep(step.domain === "focused" ? windowAt(focused).domain : step.domain, step.payload);
        break;
    }
    dataSeen.push(domains.map((domain, at) => clipboardData(domain.peer, startReceived[at] ?? 0).length));
  }

  // Everything each guid sent has reached its agent.
  await until(
    () =>
      domains.every(
        (domain, at) =>
          domain.peer.received.length - (startReceived[at] ?? 0) ===
          domain.under.guid.counters.messagesSent - (startSent[at] ?? 0),
      ) || undefined,
    "every message the guids sent to reach its agent",
  );

  const received = domains.map((domain, at) => ({
    requests: domain.peer.received
      .slice(startReceived[at])
      .filter((m): m is MessageOf<"CLIPBOARD_REQ"> => m.type === "CLIPBOARD_REQ")
      .map((m) => m.window),
    data: clipboardData(domain.peer, startReceived[at] ?? 0).map((m) => ({ window: m.window, text: decoded(m.data) })),
  }));

  // The property as stated, from the trace alone.
  const delivered = new Set<string>();
  for (const [domain, { data }] of received.entries()) {
    for (const [nth, item] of data.entries()) {
      const name = `CLIPBOARD_DATA #${nth} at ${domainName(domain)} (${JSON.stringify(item.text)})`;
      const seenAt = dataSeen.findIndex((counts) => (counts[domain] ?? 0) > nth);
      const pastes = trace.pastes.filter((p) => p.step === seenAt && p.domain === domain && p.window === item.window);
      expect(pastes.length, `${name}: a Ctrl+Shift+V on that window in the step it arrived in (${seenAt})`).toBe(1);
      const sameStep = data.filter(
        (_, other) => dataSeen.findIndex((counts) => (counts[domain] ?? 0) > other) === seenAt,
      );
      expect(sameStep.length, `${name}: at most one CLIPBOARD_DATA per paste`).toBe(1);
      expect(delivered.has(item.text), `${name}: already pasted once (the clipboard is wiped after a paste)`).toBe(
        false,
      );
      delivered.add(item.text);
      const source = trace.sends.find((send) => send.payload === "text" && send.text === item.text);
      expect(source, `${name}: data an agent sent`).toBeDefined();
      if (source === undefined) continue;
      expect(
        source.answers,
        `${name}: sent in answer to a Ctrl+Shift+C in ${domainName(source.domain)}`,
      ).not.toBeNull();
      expect(source.step, `${name}: sent before the paste`).toBeLessThan(seenAt);
      const newer = trace.sends.filter(
        (send) => send.answers !== null && send.answers > (source.answers ?? -1) && send.step < seenAt,
      );
      expect(newer, `${name}: copies newer than its own that came in before the paste`).toEqual([]);
    }
  }

  // The model: exactly what each agent must receive.
  for (const [domain, got] of received.entries()) {
    expect(got.requests, `CLIPBOARD_REQ at ${domainName(domain)}`).toEqual(model.requests[domain]);
    expect(got.data, `CLIPBOARD_DATA at ${domainName(domain)}`).toEqual(model.pasted[domain]);
  }
  for (const domain of domains) expect(domain.peer.errors).toEqual([]);

  totals.runs += 1;
  totals.steps += steps.length;
  totals.copies += trace.copies.length;
  totals.pastes += trace.pastes.length;
  totals.answers += model.taken;
  totals.stale += model.stale;
  totals.denied += model.denied;
  totals.delivered += delivered.size;
}

// ---------------------------------------------------------------------------
// Examples every run of the file checks before the generated sequences
// ---------------------------------------------------------------------------

const chord = (key: "c" | "v", extra: "Alt_L" | "Super_L" | null = null, answer = false): Step => ({
  kind: "chord",
  key,
  extra,
  answer,
});
const focus = (window: number): Step => ({ kind: "focus", window });
const send = (domain: number, payload: Payload = "text"): Step => ({ kind: "send", domain, payload });

const EXAMPLES: Step[][] = [
  // Copy in work, paste in personal; raw keys in vault: Alt held makes Ctrl+Shift+V an ordinary key.
  [
    focus(0),
    chord("c"),
    send(0),
    { kind: "click", window: 2, fx: 50, fy: 50 },
    chord("v"),
    send(0),
    focus(3),
    { kind: "key", key: "Alt_L", down: true },
    chord("v"),
  ],
  // Raw keys: Ctrl and Shift stay down while a click moves the focus from personal to vault, then v pastes.
  [
    focus(2),
    { kind: "key", key: "Control_L", down: true },
    { kind: "key", key: "Shift_L", down: true },
    { kind: "key", key: "c", down: true },
    { kind: "send", domain: "focused", payload: "text" },
    { kind: "key", key: "c", down: false },
    { kind: "click", window: 3, fx: 10, fy: 90 },
    { kind: "key", key: "v", down: true },
    { kind: "key", key: "v", down: false },
  ],
  // QSB-013 after a paste: work's answer comes late, after personal's later copy was pasted into vault.
  [focus(0), chord("c"), focus(2), chord("c"), send(1), focus(3), chord("v"), send(0), chord("v")],
  // The same when the later copy's answer was empty (the clipboard cleared) or too big.
  [focus(1), chord("c"), focus(3), chord("c"), send(2, "empty"), send(0), focus(2), chord("v")],
  [focus(2), chord("c"), focus(0), chord("c"), send(0, "oversized"), send(1), chord("v")],
  // The paste policy: vault's data is refused in personal and stays for work.
  [focus(3), chord("c"), send(2), focus(2), chord("v"), focus(1), chord("v")],
];

describe("the secure clipboard under any sequence of input events (sway, wayvnc, a guid per domain)", () => {
  beforeAll(async () => {
    sway = await startSway({
      ...SCREEN,
      config: [
        // A hidden cursor has no pointer focus: clicks would reach no surface.
        "seat seat0 hide_cursor 0",
        // Only clicks and swaymsg move the keyboard focus.
        "focus_follows_mouse no",
        ...WINDOWS.map(
          (window, index) => `for_window [app_id="${appIdOf(index)}"] move position ${window.x} ${window.y}`,
        ),
      ],
    });
    wayvnc = await startWayvnc(sway);
    dir = temporaryDirectory("guid-clipboard-property-");
    const clipboardDir = path.join(dir.dir, "clipboard");
    for (const spec of DOMAINS) {
      const peer = await listenAgentPeer({ agentDomain: spec.domain, guiDomain: GUI, socketDir: dir.dir });
      const under = await startGuidUnderTest(sway, {
        socketDir: dir.dir,
        ownDomain: GUI,
        clipboardDir,
        domains: [
          {
            domain: spec.domain,
            name: spec.name,
            color: spec.color,
            config: { maxClipboardSize: MAX_CLIPBOARD, pastePolicy: PASTE_POLICY },
          },
        ],
      });
      const session = under.guid.sessions[0];
      if (session === undefined) throw new Error(`${spec.name}'s guid has no session`);
      domains.push({ peer, under, session });
      await peer.handshake();
    }
    for (const index of WINDOWS.keys()) await showWindow(index);
    for (const [index, window] of WINDOWS.entries()) {
      const view = await pollUntil(
        async () => {
          const found = (await swayViews(sway)).find((candidate) => candidate.app_id === appIdOf(index));
          const rect = found === undefined ? undefined : viewRect(found);
          return rect !== undefined && rect.x === window.x && rect.y === window.y ? rect : undefined;
        },
        `sway to show ${appIdOf(index)} at ${window.x},${window.y}`,
      );
      // Clicks land inside the domain's pixels, away from the frame guid draws around them.
      const inset = 6;
      contents.push({
        x: view.x + inset,
        y: view.y + inset,
        width: view.width - 2 * inset,
        height: view.height - 2 * inset,
      });
    }
    await swaymsg(sway, [`[app_id="${appIdOf(0)}"]`, "focus"]);
    focused = 0;
    await marker("focusing the first window");
  });

  afterAll(async () => {
    for (const domain of domains.splice(0)) {
      await domain.under.stop();
      domain.peer.close();
    }
    wayvnc?.stop();
    await sway?.stop();
    dir?.remove();
  });

  it(
    "sends clipboard data to a domain only on its Ctrl+Shift+V, the latest copy's data, once",
    async () => {
      const seed = process.env.CLIPBOARD_PROPERTY_SEED;
      const replay = process.env.CLIPBOARD_PROPERTY_PATH;
      await fc.assert(
        fc.asyncProperty(fc.array(stepArbitrary, { minLength: 1, maxLength: MAX_STEPS, size: "max" }), checkSequence),
        {
          numRuns: NUM_RUNS,
          examples: EXAMPLES.map((steps): [readonly Step[]] => [steps]),
          // A safety valve for a loaded machine: fewer runs rather than the test's timeout (a failure is still reported).
          interruptAfterTimeLimit: 150_000,
          ...(seed === undefined ? {} : { seed: Number(seed) }),
          ...(replay === undefined ? {} : { path: replay }),
        },
      );
      // The examples alone deliver pastes and make guid discard late answers: the property was not vacuous.
      expect(totals.delivered).toBeGreaterThan(0);
      expect(totals.stale).toBeGreaterThan(0);
      console.log(`clipboard property: ${JSON.stringify(totals)}`);
    },
    withStartup(240_000, 0),
  );
});
