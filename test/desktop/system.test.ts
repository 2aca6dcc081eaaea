/**
 * The whole system in a real browser: qubes-gui-desktop, two domains ("work"
 * in blue, "personal" in green), each a real qubes-guid and qubes-gui-agent
 * running the demo app, and Debian's chromium on the viewer page, driven by
 * playwright-core. Everything a test checks is read back from the page's
 * canvas, the pixels a user sees.
 */
import sharp from "sharp";
import type { Page } from "playwright-core";
import WebSocket from "ws";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";

import type { Rect } from "../../compositor/index.ts";
import { DEFAULT_BORDER_WIDTH, labelByName } from "../../decorator/index.ts";
import { DOT_COLOR, MENU_ITEMS, menuItemRect, windowLayout } from "../../demo-app/layout.ts";
import { TITLE_BAR_HEIGHT } from "../../desktop/index.ts";
import { launchBrowser, type TestBrowser } from "../helpers/browser.ts";
import {
  startDesktopUnderTest,
  startDomain,
  type DesktopUnderTest,
  type DomainUnderTest,
} from "../helpers/desktop-harness.ts";
import { pollUntil } from "../helpers/guid-harness.ts";
import { within, withStartup } from "../helpers/processes.ts";

vi.setConfig({ testTimeout: withStartup(60_000, 2), hookTimeout: withStartup(60_000, 4) });

const BLUE = (labelByName("blue") as { color: number }).color;
const GREEN = (labelByName("green") as { color: number }).color;
const BORDER = DEFAULT_BORDER_WIDTH;
/** How long the page may take to show an effect of input (the events' bound, after every part is up). */
const EFFECT_MS = 30_000;

interface Snapshot {
  width: number;
  height: number;
  /** RGB, 3 bytes per pixel. */
  rgb: Buffer;
}

function pixel(image: Snapshot, x: number, y: number): number {
  const at = (y * image.width + x) * 3;
  return ((image.rgb[at] as number) << 16) | ((image.rgb[at + 1] as number) << 8) | (image.rgb[at + 2] as number);
}

/** The page's canvas, exactly: its own PNG encoding, decoded. */
async function snapshot(page: Page): Promise<Snapshot> {
  const dataUrl = await page.evaluate<string>('document.getElementById("output").toDataURL("image/png")');
  const png = Buffer.from(dataUrl.slice(dataUrl.indexOf(",") + 1), "base64");
  const { data, info } = await sharp(png).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  return { width: info.width, height: info.height, rgb: data };
}

/** Pixels that differ between two snapshots, as a bounding box and a count. */
function changes(
  before: Snapshot,
  after: Snapshot,
  within: Rect = { x: 0, y: 0, width: before.width, height: before.height },
): {
  count: number;
  outside: number;
  box: Rect | null;
} {
  let count = 0;
  let outside = 0;
  let x0 = Infinity;
  let y0 = Infinity;
  let x1 = -1;
  let y1 = -1;
  for (let y = 0; y < before.height; y++) {
    for (let x = 0; x < before.width; x++) {
      if (pixel(before, x, y) === pixel(after, x, y)) continue;
      count++;
      if (x < within.x || y < within.y || x >= within.x + within.width || y >= within.y + within.height) outside++;
      x0 = Math.min(x0, x);
      y0 = Math.min(y0, y);
      x1 = Math.max(x1, x);
      y1 = Math.max(y1, y);
    }
  }
  return { count, outside, box: count === 0 ? null : { x: x0, y: y0, width: x1 - x0 + 1, height: y1 - y0 + 1 } };
}

/** Waits until two snapshots 300 ms apart are the same: the page has settled. */
async function settled(page: Page): Promise<Snapshot> {
  let last = await snapshot(page);
  return pollUntil(
    async () => {
      await new Promise((resolve) => setTimeout(resolve, 300));
      const next = await snapshot(page);
      const same = next.rgb.equals(last.rgb);
      last = next;
      return same ? next : undefined;
    },
    "the page to settle (two equal snapshots)",
    EFFECT_MS,
  );
}

/** The rectangle of the domain's own pixels on the output: inside guid's frame. */
function content(domain: DomainUnderTest): Rect {
  const window = domain.window();
  if (window === undefined) throw new Error(`${domain.spec.name} has no window on the desktop`);
  const { rect } = window;
  return { x: rect.x + BORDER, y: rect.y + BORDER, width: rect.width - 2 * BORDER, height: rect.height - 2 * BORDER };
}

/** The demo app's layout in output coordinates. */
function demoLayout(domain: DomainUnderTest): ReturnType<typeof windowLayout> & { origin: { x: number; y: number } } {
  const area = content(domain);
  return { ...windowLayout(area.width, area.height), origin: { x: area.x, y: area.y } };
}

/** The page coordinates of output point (x, y). */
async function pagePoint(page: Page, x: number, y: number): Promise<{ x: number; y: number }> {
  const box = await page.locator("#output").boundingBox();
  if (box === null) throw new Error("the viewer's canvas is not on the page");
  return { x: box.x + x, y: box.y + y };
}

/** Clicks the canvas at output point (x, y). */
async function clickAt(page: Page, x: number, y: number, button: "left" | "right" = "left"): Promise<void> {
  await page.locator("#output").click({ position: { x, y }, button });
}

/** Brings a domain's window to the front and gives it the keyboard, by a click on its title bar. */
async function focus(page: Page, domain: DomainUnderTest): Promise<void> {
  const window = domain.window();
  if (window === undefined) throw new Error(`${domain.spec.name} has no window`);
  await clickAt(page, window.rect.x + 40, window.rect.y - TITLE_BAR_HEIGHT / 2);
}

/** The typed line's box pixels of a demo app. */
function lineBoxPixels(image: Snapshot, domain: DomainUnderTest): number[] {
  const layout = demoLayout(domain);
  const out: number[] = [];
  for (let y = layout.lineText.y; y < layout.lineText.y + layout.lineText.height; y++) {
    for (let x = layout.lineText.x; x < layout.lineText.x + layout.lineText.width; x++) {
      out.push(pixel(image, layout.origin.x + x, layout.origin.y + y));
    }
  }
  return out;
}

describe("qubes-gui-desktop with two domains, in chromium", () => {
  let system: DesktopUnderTest;
  let work: DomainUnderTest;
  let personal: DomainUnderTest;
  let browser: TestBrowser;
  let page: Page;

  beforeAll(async () => {
    system = await startDesktopUnderTest();
    // One after the other: personal maps last, so it starts on top.
    const browserStarting = launchBrowser();
    work = await startDomain(system, { name: "work", domain: 11, label: "blue" });
    personal = await startDomain(system, { name: "personal", domain: 12, label: "green" });
    browser = await browserStarting;
    page = await browser.browser.newPage({ viewport: { width: 1400, height: 900 }, deviceScaleFactor: 1 });
    await page.goto(system.url);
    await pollUntil(() => page.evaluate<boolean>("window.viewerStats.frames > 0"), "the page's first frame", EFFECT_MS);
  });

  afterAll(async () => {
    await page?.close().catch(() => undefined);
    await browser?.close();
    await Promise.all([work?.stop(), personal?.stop()]);
    await system?.stop();
  });

  it("shows both windows, each in a frame of exactly its domain's label colour", async () => {
    const image = await settled(page);
    for (const [domain, color] of [
      [work, BLUE],
      [personal, GREEN],
    ] as const) {
      const { rect } = domain.window() as { rect: Rect };
      const midY = rect.y + Math.floor(rect.height / 2);
      // The left edge of both windows is clear of the other (the desktop cascades them); the top and
      // bottom rows are checked where no other window lies above them.
      for (let dx = 0; dx < BORDER; dx++)
        expect(pixel(image, rect.x + dx, midY), `${domain.spec.name} left frame`).toBe(color);
      expect(pixel(image, rect.x + BORDER, midY), `${domain.spec.name} inside its frame`).not.toBe(color);
      if (domain === personal) {
        for (let dy = 0; dy < BORDER; dy++) {
          expect(pixel(image, rect.x + 20, rect.y + dy)).toBe(color);
          expect(pixel(image, rect.x + 20, rect.y + rect.height - 1 - dy)).toBe(color);
          expect(pixel(image, rect.x + rect.width - 1 - dy, midY)).toBe(color);
        }
      }
    }
  });

  it("dragging a title bar moves the window, its frame and content with it", async () => {
    const from = (personal.window() as { rect: Rect }).rect;
    const start = await pagePoint(page, from.x + 40, from.y - TITLE_BAR_HEIGHT / 2);
    await page.mouse.move(start.x, start.y);
    await page.mouse.down();
    for (let step = 1; step <= 8; step++) await page.mouse.move(start.x + step * 70, start.y);
    await page.mouse.up();
    const moved = await pollUntil(
      () => {
        const rect = personal.window()?.rect;
        return rect !== undefined && rect.x === from.x + 560 ? rect : undefined;
      },
      "personal's window 560 px to the right",
      EFFECT_MS,
    );
    expect(moved.y).toBe(from.y);
    const image = await settled(page);
    expect(pixel(image, moved.x, moved.y + 100)).toBe(GREEN);
    expect(pixel(image, moved.x + moved.width - 1, moved.y + 100)).toBe(GREEN);
    // Where its left edge was, the work window (or the desktop) shows now.
    expect(pixel(image, from.x, from.y + 100)).not.toBe(GREEN);
  });

  it("a click in the demo app changes that app's pixels only, at the click", async () => {
    await focus(page, personal);
    const before = await settled(page);
    const layout = demoLayout(personal);
    const x = layout.origin.x + layout.canvas.x + 60;
    const y = layout.origin.y + layout.canvas.y + 40;
    await clickAt(page, x, y);
    const after = await pollUntil(
      async () => {
        const next = await snapshot(page);
        return pixel(next, x, y) === DOT_COLOR ? next : undefined;
      },
      "the dot at the click",
      EFFECT_MS,
    );
    const diff = changes(before, after, content(personal));
    expect(diff.count).toBeGreaterThan(0);
    expect(diff.outside).toBe(0);
    // The dot: an 8×8 square around the click.
    expect(diff.box).toEqual({ x: x - 4, y: y - 4, width: 8, height: 8 });
  });

  it("typed text appears in the focused app only", async () => {
    await focus(page, work);
    const before = await settled(page);
    await page.keyboard.type("hello qubes");
    const after = await pollUntil(
      async () => {
        const next = await snapshot(page);
        return lineBoxPixels(next, work).some((value, i) => value !== lineBoxPixels(before, work)[i])
          ? next
          : undefined;
      },
      "the typed text in work's app",
      EFFECT_MS,
    );
    const final = await settled(page);
    const diff = changes(before, final, content(work));
    expect(diff.outside).toBe(0);
    const layout = demoLayout(work);
    const box = diff.box as Rect;
    // Every change is inside the typed line's text area.
    expect(box.x).toBeGreaterThanOrEqual(layout.origin.x + layout.lineText.x);
    expect(box.y).toBeGreaterThanOrEqual(layout.origin.y + layout.lineText.y);
    expect(box.x + box.width).toBeLessThanOrEqual(layout.origin.x + layout.lineText.x + layout.lineText.width);
    expect(box.y + box.height).toBeLessThanOrEqual(layout.origin.y + layout.lineText.y + layout.lineText.height);
    expect(after.width).toBe(final.width);
  });

  it("a right click opens the popup menu, framed in the domain's colour", async () => {
    await focus(page, work);
    const layout = demoLayout(work);
    const x = layout.origin.x + layout.canvas.x + 30;
    const y = layout.origin.y + layout.canvas.y + 30;
    await clickAt(page, x, y, "right");
    const popup = await pollUntil(
      () => system.desktop.shown.find((shown) => shown.kind === "popup"),
      "work's popup menu on the desktop",
      EFFECT_MS,
    );
    const image = await settled(page);
    const { rect } = popup;
    for (let d = 0; d < BORDER; d++) {
      expect(pixel(image, rect.x + d, rect.y + Math.floor(rect.height / 2))).toBe(BLUE);
      expect(pixel(image, rect.x + rect.width - 1 - d, rect.y + Math.floor(rect.height / 2))).toBe(BLUE);
      expect(pixel(image, rect.x + Math.floor(rect.width / 2), rect.y + d)).toBe(BLUE);
      expect(pixel(image, rect.x + Math.floor(rect.width / 2), rect.y + rect.height - 1 - d)).toBe(BLUE);
    }
    // "Clear" empties the typed line; the menu goes.
    const clear = menuItemRect(MENU_ITEMS.indexOf("Clear"));
    await clickAt(page, rect.x + BORDER + clear.x + 20, rect.y + BORDER + clear.y + 10);
    await pollUntil(
      () => system.desktop.shown.every((shown) => shown.kind !== "popup"),
      "the menu to close after Clear",
      EFFECT_MS,
    );
  });

  it("the clipboard crosses domains only through Ctrl+Shift+C and Ctrl+Shift+V", async () => {
    // work: type, copy in the app (Ctrl+C), then personal pastes in its app (Ctrl+V) without the hotkeys.
    await focus(page, work);
    await page.keyboard.press("Backspace");
    await page.keyboard.type("crossing");
    await page.keyboard.press("Control+KeyC");
    await focus(page, personal);
    const beforePaste = await settled(page);
    await page.keyboard.press("Control+KeyV");
    const noHotkeys = await settled(page);
    expect(lineBoxPixels(noHotkeys, personal)).toEqual(lineBoxPixels(beforePaste, personal));

    // Now with the hotkeys: the user copies from work to the global clipboard and pastes into personal.
    await focus(page, work);
    await page.keyboard.press("Control+Shift+KeyC");
    await focus(page, personal);
    await page.keyboard.press("Control+Shift+KeyV");
    // Clear personal's line first (its menu), then Ctrl+V in its app shows exactly work's line.
    const layout = demoLayout(personal);
    await clickAt(page, layout.origin.x + layout.canvas.x + 100, layout.origin.y + layout.canvas.y + 100, "right");
    const popup = await pollUntil(
      () => system.desktop.shown.find((shown) => shown.kind === "popup"),
      "personal's popup menu",
      EFFECT_MS,
    );
    const clear = menuItemRect(MENU_ITEMS.indexOf("Clear"));
    await clickAt(page, popup.rect.x + BORDER + clear.x + 20, popup.rect.y + BORDER + clear.y + 10);
    await pollUntil(
      () => system.desktop.shown.every((shown) => shown.kind !== "popup"),
      "the menu to close",
      EFFECT_MS,
    );
    await page.keyboard.press("Control+KeyV");
    const pasted = await pollUntil(
      async () => {
        const next = await settled(page);
        const ours = lineBoxPixels(next, personal);
        const theirs = lineBoxPixels(next, work);
        return ours.every((value, i) => value === theirs[i]) ? next : undefined;
      },
      "personal's line to show exactly work's text",
      EFFECT_MS,
    );
    expect(lineBoxPixels(pasted, personal)).toEqual(lineBoxPixels(pasted, work));
  });

  it("a killed agent's windows leave the page, the other domain keeps working, and they come back with a new agent", async () => {
    const gone = personal.window()?.rect as Rect;
    await personal.killAgent();
    await pollUntil(() => personal.window() === undefined, "personal's window to leave the desktop", EFFECT_MS);
    const image = await settled(page);
    expect(pixel(image, gone.x + 20, gone.y)).not.toBe(GREEN);
    // work still answers: a click draws.
    await focus(page, work);
    const layout = demoLayout(work);
    const x = layout.origin.x + layout.canvas.x + 80;
    const y = layout.origin.y + layout.canvas.y + 80;
    await clickAt(page, x, y);
    await pollUntil(
      async () => pixel(await snapshot(page), x, y) === DOT_COLOR,
      "work's dot after personal went",
      EFFECT_MS,
    );

    await within(personal.startAgent(), withStartup(EFFECT_MS), "personal's window back with a new agent");
    const back = await settled(page);
    const { rect } = personal.window() as { rect: Rect };
    expect(pixel(back, rect.x, rect.y + Math.floor(rect.height / 2))).toBe(GREEN);
  });

  it("the close button of a title bar closes the window: the app ends and the window leaves the page", async () => {
    const { rect } = work.window() as { rect: Rect };
    await clickAt(page, rect.x + rect.width - 10, rect.y - TITLE_BAR_HEIGHT / 2);
    await pollUntil(() => work.window() === undefined, "work's window to close", EFFECT_MS);
    const image = await settled(page);
    expect(pixel(image, rect.x, rect.y + 100)).not.toBe(BLUE);
    expect(personal.window()).toBeDefined();
  });

  it("refuses the screenshot and the WebSocket without the token", async () => {
    const base = `http://127.0.0.1:${system.port}`;
    expect((await fetch(`${base}/screenshot.png`)).status).toBe(401);
    expect((await fetch(`${base}/screenshot.png?token=${system.token}`)).status).toBe(200);
    const refused = await within(
      new Promise<number>((resolve) => {
        const socket = new WebSocket(`ws://127.0.0.1:${system.port}/ws`);
        socket.on("unexpected-response", (_request, response) => resolve(response.statusCode ?? 0));
        socket.on("open", () => resolve(101));
        socket.on("error", () => undefined);
      }),
      EFFECT_MS,
      "the WebSocket's answer",
    );
    expect(refused).toBe(401);
  });
});
