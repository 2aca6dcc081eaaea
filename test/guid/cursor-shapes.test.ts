/**
 * MSG_CURSOR on a real host: the pointer over a domain's window shows the
 * cursor the domain asked for, from the GUI domain's own cursor theme, and
 * none when it asked for none. Checked in grim's screenshots with the cursor
 * drawn in (`grim -c`), on headless sway with wayvnc's pointer.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";

import { CursorTheme } from "../../guid/host/cursors.ts";
import { listenAgentPeer, type AgentPeer } from "../helpers/agent-peer.ts";
import { parsePpm, runClient, startSway, type RgbImage, type RunningCompositor } from "../helpers/compositors.ts";
import {
  pixelAt,
  pollUntil,
  startGuidUnderTest,
  startWayvnc,
  swayViews,
  viewRect,
  type GuidUnderTest,
  type RunningWayvnc,
} from "../helpers/guid-harness.ts";
import { temporaryDirectory, withStartup } from "../helpers/processes.ts";

// Real programs start here (compositors, wayvnc, agents, apps, xkbcli): their start-up may take what a
// loaded machine needs; each event a test waits for keeps its own bound.
vi.setConfig({ testTimeout: withStartup(30_000, 2), hookTimeout: withStartup(30_000, 3) });

const WORK = 5;
const W1 = 0x00400001;
const CURSOR_X11 = 0x100;
const XC_XTERM = 152;
const XC_WATCH = 150;
/** The window's content colour: no theme cursor uses it. */
const CONTENT = 0x40c040;

let sway: RunningCompositor;
let wayvnc: RunningWayvnc;
let dir: { dir: string; remove: () => void };
let under: GuidUnderTest;
let peer: AgentPeer;
let origin: { x: number; y: number };

/** The screen with the cursor drawn in. */
async function screenshotWithCursor(): Promise<RgbImage> {
  const { stdout } = await runClient(sway, "grim", ["-c", "-t", "ppm", "-"]);
  return parsePpm(stdout);
}

/** The pixels of a 48×48 square at the pointer, as a string to compare. */
function around(image: RgbImage, x: number, y: number): string {
  const out: number[] = [];
  for (let dy = -8; dy < 40; dy++) for (let dx = -8; dx < 40; dx++) out.push(pixelAt(image, x + dx, y + dy));
  return out.join(",");
}

function differsFromContent(image: RgbImage, x: number, y: number): number {
  let differing = 0;
  for (let dy = -8; dy < 40; dy++)
    for (let dx = -8; dx < 40; dx++) if (pixelAt(image, x + dx, y + dy) !== CONTENT) differing++;
  return differing;
}

beforeAll(async () => {
  sway = await startSway({ width: 800, height: 600, config: ["seat seat0 hide_cursor 0"] });
  wayvnc = await startWayvnc(sway);
  dir = temporaryDirectory("guid-cursor-");
  peer = await listenAgentPeer({ agentDomain: WORK, guiDomain: 0, socketDir: dir.dir });
  under = await startGuidUnderTest(sway, { socketDir: dir.dir, domains: [{ domain: WORK, name: "work" }] });
  await peer.handshake();
  const framebuffer = peer.framebuffer(300, 200);
  framebuffer.fill(CONTENT);
  peer.create(W1, { x: 0, y: 0, width: 300, height: 200 });
  peer.wmclass(W1, "Cursor", "cursor");
  peer.map(W1);
  peer.windowDump(W1, 300, 200, framebuffer.refs);
  peer.shmimage(W1, { x: 0, y: 0, width: 300, height: 200 });
  const view = await pollUntil(
    async () => (await swayViews(sway)).find((node) => node.app_id === "work:Cursor"),
    "the window on sway",
  );
  const rect = viewRect(view);
  origin = { x: rect.x + 2 + 100, y: rect.y + 2 + 80 };
  wayvnc.vnc.move(origin.x, origin.y);
  await peer.waitForMessage("CROSSING", W1);
});

afterAll(async () => {
  await under?.stop();
  peer?.close();
  wayvnc?.stop();
  await sway?.stop();
  dir?.remove();
});

describe("the domain's cursor on the host", () => {
  it("has cursors to show: the GUI domain's theme has the X font cursors", () => {
    const theme = CursorTheme.load();
    expect(theme.forGlyph(XC_XTERM)).not.toBeNull();
    expect(theme.defaultImage()).not.toBeNull();
  });

  it("shows the domain's X cursor, hides it for none, and shows the default again", async () => {
    const arrow = await pollUntil(async () => {
      const image = await screenshotWithCursor();
      return differsFromContent(image, origin.x, origin.y) > 0 ? around(image, origin.x, origin.y) : undefined;
    }, "a cursor drawn over the window");

    peer.cursor(W1, CURSOR_X11 + XC_XTERM);
    const ibeam = await pollUntil(async () => {
      const shot = around(await screenshotWithCursor(), origin.x, origin.y);
      return shot !== arrow ? shot : undefined;
    }, "the xterm cursor instead of the arrow");

    peer.cursor(W1, CURSOR_X11 + XC_XTERM + 1);
    await pollUntil(
      async () => differsFromContent(await screenshotWithCursor(), origin.x, origin.y) === 0,
      "no cursor over the window (an odd glyph means none)",
    );

    peer.cursor(W1, CURSOR_X11 + XC_WATCH);
    await pollUntil(async () => {
      const shot = around(await screenshotWithCursor(), origin.x, origin.y);
      return shot !== ibeam && shot !== arrow ? true : undefined;
    }, "the watch cursor");

    peer.cursor(W1, 0);
    await pollUntil(
      async () => around(await screenshotWithCursor(), origin.x, origin.y) === arrow,
      "the default cursor again",
    );
  });
});
