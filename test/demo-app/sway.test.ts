// The demo app on a real compositor: headless sway with wayvnc's virtual
// pointer and keyboard, checked in grim screenshots. Sway (pixman) holds
// buffers late and checks popup grab serials, which the core compositor
// does not: the app must still show its first frame, draw a dot where a
// click lands, type, open its popup menu with a visible border, and exit 0
// when sway closes its window. Screenshots have no event to wait on: they
// are polled, each poll bounded.
import { afterAll, beforeAll, describe, expect, it } from "vitest";

import {
  BACKGROUND,
  DOT_COLOR,
  MENU_BORDER,
  MENU_HEIGHT,
  MENU_WIDTH,
  NAME_FONT_SIZE,
  TEXT_COLOR,
  blendText,
  createCanvas,
  renderText,
  textOrigin,
  windowLayout,
} from "../../demo-app/index.ts";
import { screenshotSway, startSway, type RgbImage, type RunningCompositor } from "../helpers/compositors.ts";
import {
  pixelAt,
  pollUntil,
  startWayvnc,
  swaymsg,
  swayViews,
  viewRect,
  type RunningWayvnc,
} from "../helpers/guid-harness.ts";
import { READY_TIMEOUT_MS, within, withStartup } from "../helpers/processes.ts";
import { VNC_LEFT, VNC_RIGHT } from "../helpers/vnc-client.ts";
import { EVENT_MS, startDemoApp, type DemoAppProcess } from "./harness.ts";

let sway: RunningCompositor;
let wayvnc: RunningWayvnc;

beforeAll(async () => {
  sway = await startSway({ width: 800, height: 600 });
  wayvnc = await startWayvnc(sway);
}, 3 * READY_TIMEOUT_MS);

afterAll(async () => {
  wayvnc?.stop();
  await sway?.stop();
});

/** The window's pixels in a screenshot, at window coordinates. */
function windowPixel(shot: RgbImage, origin: { x: number; y: number }, x: number, y: number): number {
  return pixelAt(shot, origin.x + x, origin.y + y);
}

describe("the demo app on sway", { timeout: withStartup(90_000) }, () => {
  it("shows its name, draws a dot at a click, types, opens a bordered menu, and exits 0 when closed", async () => {
    const app: DemoAppProcess & { shown: string } = await startDemoApp(
      { runtimeDir: sway.runtimeDir, display: sway.display },
      ["--name", "work"],
    );
    try {
      expect(app.shown).toBe("qubes-demo-app: shown work 480x320");
      const view = await pollUntil(
        async () => (await swayViews(sway)).find((v) => v.app_id === "qubes-demo-app"),
        "the demo app's view on sway",
        EVENT_MS,
      );
      expect(view.name).toBe("demo: work");
      const rect = viewRect(view);
      expect([rect.width, rect.height]).toEqual([480, 320]);
      const layout = windowLayout(480, 320);

      // The name, pixel for pixel.
      const canvas = createCanvas(480, 320, BACKGROUND);
      const mask = await renderText("work", { size: NAME_FONT_SIZE, bold: true });
      blendText(canvas, mask, layout.name.x, textOrigin(mask, layout.name).y, layout.name, TEXT_COLOR);
      const shot = await pollUntil(
        async () => {
          const image = await screenshotSway(sway);
          return windowPixel(image, rect, 0, 0) === BACKGROUND ? image : undefined;
        },
        "the first frame on screen",
        EVENT_MS,
      );
      for (let y = layout.name.y; y < layout.name.y + layout.name.height; y++) {
        for (let x = layout.name.x; x < layout.name.x + layout.name.width; x++) {
          const want = canvas.pixels[y * 480 + x] as number;
          if (windowPixel(shot, rect, x, y) !== want) {
            throw new Error(
              `name pixel (${x}, ${y}) is ${windowPixel(shot, rect, x, y).toString(16)}, not ${want.toString(16)}`,
            );
          }
        }
      }

      // A left click: a dot centred there.
      const vnc = wayvnc.vnc;
      vnc.move(rect.x + 200, rect.y + 200);
      vnc.click(VNC_LEFT);
      await vnc.flush();
      await pollUntil(
        async () => windowPixel(await screenshotSway(sway), rect, 200, 200) === DOT_COLOR,
        "the dot at (200, 200)",
        EVENT_MS,
      );
      const dotted = await screenshotSway(sway);
      expect(windowPixel(dotted, rect, 196, 196)).toBe(DOT_COLOR);
      expect(windowPixel(dotted, rect, 203, 203)).toBe(DOT_COLOR);
      expect(windowPixel(dotted, rect, 195, 200)).not.toBe(DOT_COLOR);
      expect(windowPixel(dotted, rect, 204, 200)).not.toBe(DOT_COLOR);

      // Typed keys: the text line gets ink.
      const inkInLine = (image: RgbImage): number => {
        let ink = 0;
        const box = layout.lineText;
        for (let y = box.y; y < box.y + box.height; y++) {
          for (let x = box.x; x < box.x + box.width; x++) if ((windowPixel(image, rect, x, y) & 0xff) < 0x80) ink++;
        }
        return ink;
      };
      expect(inkInLine(dotted)).toBe(0);
      vnc.type("hello");
      await vnc.flush();
      await pollUntil(async () => inkInLine(await screenshotSway(sway)) > 30, "typed text in the line", EVENT_MS);

      // A right click: the menu at the pointer, with its border.
      vnc.move(rect.x + 100, rect.y + 150);
      vnc.click(VNC_RIGHT);
      await vnc.flush();
      const menuShot = await pollUntil(
        async () => {
          const image = await screenshotSway(sway);
          return windowPixel(image, rect, 100, 150) === MENU_BORDER ? image : undefined;
        },
        "the popup menu's corner at the click",
        EVENT_MS,
      );
      expect(windowPixel(menuShot, rect, 100 + MENU_WIDTH - 1, 150 + MENU_HEIGHT - 1)).toBe(MENU_BORDER);
      expect(windowPixel(menuShot, rect, 100 + MENU_WIDTH / 2, 150 + MENU_HEIGHT - 1)).toBe(MENU_BORDER);

      await swaymsg(sway, ['[app_id="qubes-demo-app"]', "kill"]);
      const result = await within(app.done, EVENT_MS, "the app's exit after sway closed its window");
      expect(result.code).toBe(0);
    } finally {
      await app.stop();
    }
  });
});
