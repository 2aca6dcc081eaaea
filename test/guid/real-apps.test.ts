/**
 * The whole stack with real software at both ends: Wayland apps (foot, wev,
 * wl-clipboard, and a pattern client of ours) in two domains, each served
 * by a real gui-agent, shown by one guid on real headless sway, with input
 * injected on the host (wayvnc's virtual devices, swaymsg, wtype).
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";

import pino from "pino";
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";

import { startAgent, type GuiAgent } from "../../gui-agent/index.ts";
import { startApp, startWlCopy, startWlPaste, type RunningApp } from "../helpers/apps.ts";
import { runClient, screenshotSway, startSway, type RunningCompositor } from "../helpers/compositors.ts";
import {
  frameMismatches,
  pixelAt,
  pollUntil,
  startGuidUnderTest,
  startWayvnc,
  swaymsg,
  swayViews,
  viewRect,
  type GuidUnderTest,
  type RunningWayvnc,
} from "../helpers/guid-harness.ts";
import { PatternClient } from "../helpers/pattern-client.ts";
import { READY_TIMEOUT_MS, withStartup } from "../helpers/processes.ts";

// Real programs start here (compositors, wayvnc, agents, apps, xkbcli): their start-up may take what a
// loaded machine needs; each event a test waits for keeps its own bound.
vi.setConfig({ testTimeout: withStartup(30_000, 2), hookTimeout: withStartup(30_000, 3) });

const GUI = 0;
const WORK = 5;
const PERSONAL = 6;
const BLUE = 0x3465a4;
const GREEN = 0x73d216;
const BORDER = 2;

let sway: RunningCompositor;
let wayvnc: RunningWayvnc;
let dir: string;
let under: GuidUnderTest;
const agents = new Map<number, { agent: GuiAgent; runtimeDir: string }>();
const apps: RunningApp[] = [];
const clients: PatternClient[] = [];

async function startDomain(domain: number): Promise<void> {
  const runtimeDir = mkdtempSync(path.join(tmpdir(), `domain-${domain}-`));
  const agent = await startAgent({
    guiDomain: GUI,
    ownDomain: domain,
    vchan: "socket",
    grants: "memfd",
    socketDir: dir,
    waylandDisplay: path.join(runtimeDir, "wayland-qubes"),
    log: pino({ level: "silent" }),
  });
  agents.set(domain, { agent, runtimeDir });
}

function display(domain: number): { runtimeDir: string; display: string } {
  const entry = agents.get(domain);
  if (entry === undefined) throw new Error(`no domain ${domain}`);
  return { runtimeDir: entry.runtimeDir, display: "wayland-qubes" };
}

function socketOf(domain: number): string {
  return path.join(display(domain).runtimeDir, "wayland-qubes");
}

/** A window on sway; the wait may include an app's start-up, so it is bounded by the readiness allowance. */
async function view(predicate: (name: string | null, appId: string) => boolean, what: string) {
  return pollUntil(
    async () => {
      const found = (await swayViews(sway)).find((node) => predicate(node.name, node.app_id ?? ""));
      return found === undefined ? undefined : { node: found, rect: viewRect(found) };
    },
    what,
    READY_TIMEOUT_MS,
  );
}

beforeAll(async () => {
  dir = mkdtempSync(path.join(tmpdir(), "guid-real-"));
  sway = await startSway({ width: 1024, height: 768 });
  wayvnc = await startWayvnc(sway);
  await startDomain(WORK);
  await startDomain(PERSONAL);
  under = await startGuidUnderTest(sway, {
    socketDir: dir,
    ownDomain: GUI,
    domains: [
      { domain: WORK, name: "work", color: BLUE },
      { domain: PERSONAL, name: "personal", color: GREEN },
    ],
  });
  await pollUntil(() => [...agents.values()].every(({ agent }) => agent.connected), "both agents connected to guid");
});

afterEach(async () => {
  for (const app of apps.splice(0)) await app.stop();
  for (const client of clients.splice(0)) client.close();
});

afterAll(async () => {
  await under?.stop();
  for (const { agent, runtimeDir } of agents.values()) {
    agent.stop();
    rmSync(runtimeDir, { recursive: true, force: true });
  }
  wayvnc?.stop();
  await sway?.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe("a domain's app on the host", () => {
  it("shows the app's exact pixels in a frame of exactly the label colour and width, with 0 bytes copied by guid", async () => {
    const client = await PatternClient.open(socketOf(WORK), 240, 160, "pattern");
    clients.push(client);
    const { rect } = await view((name) => name === "[work] pattern", "the pattern window on sway");
    expect(rect.width).toBe(240 + 2 * BORDER);
    const image = await pollUntil(async () => {
      const shot = await screenshotSway(sway);
      const current = (await view((name) => name === "[work] pattern", "the pattern window")).rect;
      return pixelAt(shot, current.x + BORDER + 239, current.y + BORDER + 159) === client.expected(239, 159)
        ? shot
        : undefined;
    }, "the pattern's last pixel on screen");
    const wrong: string[] = [];
    for (let y = 0; y < 160; y++) {
      for (let x = 0; x < 240; x++) {
        const got = pixelAt(image, rect.x + BORDER + x, rect.y + BORDER + y);
        if (got !== client.expected(x, y) && wrong.length < 5) wrong.push(`(${x},${y})=${got.toString(16)}`);
      }
    }
    expect(wrong).toEqual([]);
    expect(frameMismatches(image, rect, BORDER, BLUE)).toEqual([]);
    expect(under.guid.counters.zeroCopyImages).toBeGreaterThan(0);
    expect(under.guid.counters.copiedImages).toBe(0);
    expect(under.guid.counters.bytesCopied).toBe(0);
  });

  it("follows the app's damage: a changed rectangle shows, still with 0 bytes copied by guid", async () => {
    const client = await PatternClient.open(socketOf(PERSONAL), 200, 120, "damage");
    clients.push(client);
    await view((name) => name === "[personal] damage", "the window on sway");
    await client.commit({ x: 20, y: 30, width: 64, height: 64 });
    await pollUntil(async () => {
      const { rect } = await view((name) => name === "[personal] damage", "the window");
      const shot = await screenshotSway(sway);
      return pixelAt(shot, rect.x + BORDER + 50, rect.y + BORDER + 60) === client.expected(50, 60);
    }, "the changed square on screen");
    const { rect } = await view((name) => name === "[personal] damage", "the window");
    expect(frameMismatches(await screenshotSway(sway), rect, BORDER, GREEN)).toEqual([]);
    expect(under.guid.counters.bytesCopied).toBe(0);
  });

  it("titles foot's window [work] … in sway's tree, with app_id work:foot", async () => {
    const foot = startApp("foot", ["--title", "terminal"], display(WORK));
    apps.push(foot);
    const { node } = await view((_, appId) => appId === "work:foot", "foot on sway");
    expect(node.name).toBe("[work] terminal");
  });
});

describe("input from the host", () => {
  it("types into foot in the domain", async () => {
    const out = path.join(display(WORK).runtimeDir, "typed.txt");
    rmSync(out, { force: true });
    const foot = startApp("foot", ["--title", "typing", "sh", "-c", `cat > ${out}`], display(WORK));
    apps.push(foot);
    await view((name) => name === "[work] typing", "foot on sway");
    await swaymsg(sway, ['[title="\\[work\\] typing"]', "focus"]);
    await pollUntil(
      async () => (await swayViews(sway)).find((node) => node.name === "[work] typing")?.focused === true,
      "foot focused",
    );
    // wayvnc's keyboard has the US keymap, as the domain's agent: evdev codes mean the same keys on both
    // sides (wtype would upload a keymap of its own, whose codes mean other keys in the domain).
    wayvnc.vnc.type("hello, qubes\n");
    await pollUntil(
      () => existsSync(out) && readFileSync(out, "utf8") === "hello, qubes\n",
      `"hello, qubes" in ${out}`,
    );
  });

  it("delivers pointer and key events to wev in the domain", async () => {
    const wev = startApp(
      "wev",
      ["-f", "wl_pointer:enter", "-f", "wl_pointer:button", "-f", "wl_keyboard:key"],
      display(PERSONAL),
      {
        lineBuffered: true,
      },
    );
    apps.push(wev);
    const { rect } = await view((_, appId) => appId.startsWith("personal:") && appId.includes("wev"), "wev on sway");
    await swaymsg(sway, ["seat", "seat0", "cursor", "set", String(rect.x + 40), String(rect.y + 30)]);
    // The content starts 2 px into the frame: the app sees (38, 28).
    await wev.waitForStdout(/wl_pointer\] enter: serial: \d+; surface: \d+, x, y: 38\.0+, 28\.0+/, 10_000);
    await swaymsg(sway, ["seat", "seat0", "cursor", "press", "button1"]);
    await swaymsg(sway, ["seat", "seat0", "cursor", "release", "button1"]);
    await wev.waitForStdout(/button: 272 \(left\), state: 1 \(pressed\)/, 10_000);
    await wev.waitForStdout(/button: 272 \(left\), state: 0 \(released\)/, 10_000);
    wayvnc.vnc.type("q");
    // wev prints xkb keycodes (evdev + 8): KEY_Q is 16.
    await wev.waitForStdout(/key: 24; state: 1 \(pressed\)\s+sym: q /, 10_000);
  });
});

describe("the secure clipboard between two domains", () => {
  it("moves text from work to personal only with Ctrl+Shift+C and Ctrl+Shift+V", async () => {
    const work = await PatternClient.open(socketOf(WORK), 160, 100, "copy-from");
    const personal = await PatternClient.open(socketOf(PERSONAL), 160, 100, "paste-to");
    clients.push(work, personal);
    await view((name) => name === "[work] copy-from", "work's window");
    await view((name) => name === "[personal] paste-to", "personal's window");

    const copy = startWlCopy(display(WORK), "from work, by the user's hand");
    apps.push(copy);
    await pollUntil(
      async () => (await agents.get(WORK)?.agent.compositor.clipboard.read(64))?.data.length === 29,
      "wl-copy's selection in work's compositor",
      READY_TIMEOUT_MS,
    );

    // Without the hotkeys, personal's clipboard stays empty.
    const before = startWlPaste(display(PERSONAL));
    apps.push(before);
    const empty = await before.exited;
    expect(empty.code).not.toBe(0);

    await swaymsg(sway, ['[title="\\[work\\] copy-from"]', "focus"]);
    await runClient(sway, "wtype", ["-M", "ctrl", "-M", "shift", "c", "-m", "shift", "-m", "ctrl"]);
    await pollUntil(() => under.guid.counters.clipboardCopies === 1, "guid to take work's clipboard");
    await swaymsg(sway, ['[title="\\[personal\\] paste-to"]', "focus"]);
    await runClient(sway, "wtype", ["-M", "ctrl", "-M", "shift", "v", "-m", "shift", "-m", "ctrl"]);
    await pollUntil(() => under.guid.counters.clipboardPastes === 1, "guid to paste into personal");

    const paste = startWlPaste(display(PERSONAL));
    apps.push(paste);
    await paste.exited;
    expect(paste.stdout()).toBe("from work, by the user's hand");
    expect(under.guid.clipboard.read()).toBeNull();
  });
});
