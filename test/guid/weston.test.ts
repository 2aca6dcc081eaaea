/**
 * guid on another host compositor: headless weston (pixman). A domain's app,
 * through a real agent, appears with its exact pixels and the label-colour
 * frame in weston-screenshooter's image.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";

import pino from "pino";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";

import { startAgent, type GuiAgent } from "../../gui-agent/index.ts";
import { screenshotWeston, startWeston, westonWindowRect, type RunningCompositor } from "../helpers/compositors.ts";
import {
  frameMismatches,
  pixelAt,
  pollUntil,
  startGuidUnderTest,
  type GuidUnderTest,
} from "../helpers/guid-harness.ts";
import { PatternClient } from "../helpers/pattern-client.ts";

import { withStartup } from "../helpers/processes.ts";
// Real programs start here (compositors, wayvnc, agents, apps, xkbcli): their start-up may take what a
// loaded machine needs; each event a test waits for keeps its own bound.
vi.setConfig({ testTimeout: withStartup(30_000, 2), hookTimeout: withStartup(30_000, 3) });

const GUI = 0;
const WORK = 5;
const PURPLE = 0x75507b;
const BORDER = 2;

let weston: RunningCompositor;
let dir: string;
let agent: GuiAgent;
let under: GuidUnderTest;

beforeAll(async () => {
  dir = mkdtempSync(path.join(tmpdir(), "guid-weston-"));
  weston = await startWeston({ width: 800, height: 600 });
  agent = await startAgent({
    guiDomain: GUI,
    ownDomain: WORK,
    vchan: "socket",
    grants: "memfd",
    socketDir: dir,
    waylandDisplay: path.join(dir, "wayland-qubes"),
    log: pino({ level: "silent" }),
  });
  under = await startGuidUnderTest(weston, {
    socketDir: dir,
    ownDomain: GUI,
    domains: [{ domain: WORK, name: "work", color: PURPLE }],
  });
  await pollUntil(() => agent.connected, "the agent connected to guid");
});

afterAll(async () => {
  await under?.stop();
  agent?.stop();
  await weston?.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe("guid on headless weston", () => {
  it("shows the window with its exact pixels inside the label-colour frame in weston-screenshooter's image", async () => {
    // weston-screenshooter's PNG takes the XRGB pixels' unused byte for alpha: the app sets it, as many do.
    const client = await PatternClient.open(path.join(dir, "wayland-qubes"), 180, 120, "on weston", { xByte: 0xff });
    try {
      const found = await pollUntil(async () => {
        const rect = await westonWindowRect(weston, "work:test.pattern");
        if (rect === undefined || rect.width !== 180 + 2 * BORDER) return undefined;
        const image = await screenshotWeston(weston);
        const last = pixelAt(image, rect.x + BORDER + 179, rect.y + BORDER + 119);
        return last === client.expected(179, 119) ? { rect, image } : undefined;
      }, "the window and its last pixel in weston's screenshot");
      const { rect, image } = found;
      expect(frameMismatches(image, rect, BORDER, PURPLE)).toEqual([]);
      const wrong: string[] = [];
      for (let y = 0; y < 120; y++) {
        for (let x = 0; x < 180; x++) {
          const got = pixelAt(image, rect.x + BORDER + x, rect.y + BORDER + y);
          if (got !== client.expected(x, y) && wrong.length < 5) wrong.push(`(${x},${y})=${got.toString(16)}`);
        }
      }
      expect(wrong).toEqual([]);
      expect(under.guid.counters.bytesCopied).toBe(0);
    } finally {
      client.close();
    }
  });
});
