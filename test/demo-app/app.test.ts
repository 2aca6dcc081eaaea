// The demo app (node bin/qubes-demo-app.js, a child process) under the
// compositor core in this process: its window, title and first frame, dots
// drawn by left clicks exactly where they land and damaged exactly there,
// typed keys in the text line, the right-click popup menu, the clipboard
// between two instances and with the compositor, configure sizes, and close.
// Expected pixels are drawn with the app's own layout and text rendering
// (demo-app/index.ts), so every comparison is exact.
import { afterEach, beforeEach, describe, expect, it } from "vitest";

import type { Rect } from "../../compositor/index.ts";
import {
  APP_ID,
  BACKGROUND,
  BTN_LEFT,
  BTN_RIGHT,
  DOT_COLOR,
  FIELD_BACKGROUND,
  FIELD_BORDER,
  LINE_FONT_SIZE,
  MENU_BORDER,
  MENU_HEIGHT,
  MENU_HOVER,
  MENU_ITEMS,
  MENU_ITEM_HEIGHT,
  MENU_WIDTH,
  NAME_FONT_SIZE,
  TEXT_COLOR,
  blendText,
  createCanvas,
  fillRect,
  menuItemRect,
  renderText,
  strokeRect,
  textOrigin,
  windowLayout,
  type WindowLayout,
} from "../../demo-app/index.ts";
import {
  KEY_LEFTCTRL,
  pressKey,
  startCompositorUnderTest,
  typeText,
  type CompositorUnderTest,
} from "../helpers/apps.ts";
import { READY_TIMEOUT_MS, within, withStartup } from "../helpers/processes.ts";
import {
  EVENT_MS,
  WindowWatcher,
  differences,
  pixelAt,
  region,
  startDemoApp,
  type DemoAppProcess,
  type Image,
  type WindowRecorder,
} from "./harness.ts";

const KEY_BACKSPACE = 14;
const KEY_ENTER = 28;
const KEY_C = 46;
const KEY_V = 47;

let under: CompositorUnderTest;
let watcher: WindowWatcher;
const running: DemoAppProcess[] = [];

beforeEach(async () => {
  under = await startCompositorUnderTest();
  watcher = new WindowWatcher(under.compositor);
}, READY_TIMEOUT_MS);

afterEach(async () => {
  for (const app of running.splice(0)) await app.stop();
  under.destroy();
});

/** Starts a demo app named `name` and resolves with its window's recorder once its first frame is in. */
async function showDemoApp(
  name: string,
  args: readonly string[] = ["--name", name],
  env: NodeJS.ProcessEnv = {},
): Promise<{ app: DemoAppProcess & { shown: string }; recorder: WindowRecorder }> {
  const app = await startDemoApp(under.display, args, env);
  running.push(app);
  const recorder = await watcher.waitForWindow(
    (w) => w.kind === "toplevel" && w.title === `demo: ${name}`,
    `the window "demo: ${name}"`,
  );
  return { app, recorder };
}

/** The typed line's box as the app draws it for `text`. */
async function expectedLine(layout: WindowLayout, text: string): Promise<number[]> {
  const canvas = createCanvas(layout.width, layout.height, BACKGROUND);
  fillRect(canvas, layout.lineBox, FIELD_BACKGROUND);
  strokeRect(canvas, layout.lineBox, FIELD_BORDER);
  if (text !== "") {
    const mask = await renderText(text, { size: LINE_FONT_SIZE });
    const origin = textOrigin(mask, layout.lineText);
    blendText(canvas, mask, origin.x, origin.y, layout.lineText, TEXT_COLOR);
  }
  return region({ width: canvas.width, height: canvas.height, pixels: canvas.pixels }, layout.lineBox);
}

/** Resolves with the first commit whose typed line shows `text`. */
async function waitForLine(recorder: WindowRecorder, text: string, from = 0): Promise<Image> {
  const layout = windowLayout(recorder.image.width, recorder.image.height);
  const want = await expectedLine(layout, text);
  const commit = await recorder.waitForImage(
    (image) => region(image, layout.lineBox).every((pixel, i) => pixel === want[i]),
    `the text line showing ${JSON.stringify(text)}`,
    from,
  );
  return commit.image;
}

/** Presses and releases a pointer button on the window under the pointer. */
function click(button: number): void {
  under.compositor.seat.pointerButton(button, true);
  under.compositor.seat.pointerButton(button, false);
}

/** Resolves at the next selection change. */
function selectionChange(): Promise<void> {
  return within(
    new Promise((resolve) => {
      const remove = under.compositor.clipboard.events.change.add(() => {
        remove();
        resolve();
      });
    }),
    EVENT_MS,
    "a selection change",
  );
}

async function readClipboard(): Promise<string | null> {
  const read = await under.compositor.clipboard.read(1000);
  return read === null ? null : Buffer.from(read.data).toString("utf8");
}

describe("the demo app's window", { timeout: withStartup(60_000) }, () => {
  it("maps a 480x320 toplevel titled with the name, whose first frame shows the name in large text", async () => {
    const { app, recorder } = await showDemoApp("work");
    expect(app.shown).toBe("qubes-demo-app: shown work 480x320");
    const window = recorder.window;
    expect(window.appId).toBe(APP_ID);
    expect(window.size).toEqual({ width: 480, height: 320 });
    const first = recorder.commits[0]!;
    expect(first.damage).toEqual([{ x: 0, y: 0, width: 480, height: 320 }]);
    const image = first.image;
    const layout = windowLayout(480, 320);

    // The name, exactly as the app's text rendering draws it, with ink enough to be seen.
    const canvas = createCanvas(480, 320, BACKGROUND);
    const mask = await renderText("work", { size: NAME_FONT_SIZE, bold: true });
    blendText(canvas, mask, layout.name.x, textOrigin(mask, layout.name).y, layout.name, TEXT_COLOR);
    const want = region({ width: 480, height: 320, pixels: canvas.pixels }, layout.name);
    expect(region(image, layout.name)).toEqual(want);
    const dark = region(image, layout.name).filter((pixel) => (pixel & 0xff) < 0x80).length;
    expect(dark).toBeGreaterThan(150);

    // The background, the empty text line and the empty canvas.
    expect(pixelAt(image, 0, 0)).toBe(BACKGROUND);
    expect(pixelAt(image, 479, 319)).toBe(BACKGROUND);
    expect(region(image, layout.lineBox)).toEqual(await expectedLine(layout, ""));
    expect(new Set(region(image, layout.canvas))).toEqual(new Set([FIELD_BACKGROUND]));
    expect(pixelAt(image, layout.canvasBox.x, layout.canvasBox.y)).toBe(FIELD_BORDER);
  });

  it("takes its name from QUBES_VM_NAME and its size from --size", async () => {
    const { app, recorder } = await showDemoApp("personal", ["--size", "300x200"], { QUBES_VM_NAME: "personal" });
    expect(app.shown).toBe("qubes-demo-app: shown personal 300x200");
    expect(recorder.window.size).toEqual({ width: 300, height: 200 });
  });

  it("draws a dot around a left click's point, changing and damaging nothing else", async () => {
    const { recorder } = await showDemoApp("work");
    const before = recorder.image;
    const from = recorder.commits.length;
    under.compositor.seat.pointerMove(recorder.window, 200, 150);
    click(BTN_LEFT);
    const commit = await recorder.waitForImage(
      (image) => pixelAt(image, 200, 150) === DOT_COLOR,
      "a dot at (200, 150)",
      from,
    );
    const dot: Rect = { x: 196, y: 146, width: 8, height: 8 };
    const changed = differences(before, commit.image);
    expect(changed).toHaveLength(64);
    for (const { x, y } of changed) {
      expect(x >= dot.x && x < dot.x + 8 && y >= dot.y && y < dot.y + 8).toBe(true);
      expect(pixelAt(commit.image, x, y)).toBe(DOT_COLOR);
    }
    expect(commit.damage).toEqual([dot]);

    // A second dot, elsewhere: the first stays, only the new one is damaged.
    const next = recorder.commits.length;
    under.compositor.seat.pointerMove(recorder.window, 300, 250);
    click(BTN_LEFT);
    const second = await recorder.waitForImage(
      (image) => pixelAt(image, 300, 250) === DOT_COLOR,
      "a dot at (300, 250)",
      next,
    );
    expect(second.damage).toEqual([{ x: 296, y: 246, width: 8, height: 8 }]);
    expect(pixelAt(second.image, 200, 150)).toBe(DOT_COLOR);
    expect(differences(commit.image, second.image)).toHaveLength(64);
  });

  it("ignores a left click outside the canvas", async () => {
    const { recorder } = await showDemoApp("work");
    under.compositor.seat.pointerMove(recorder.window, 3, 3);
    click(BTN_LEFT);
    // Then a click on the canvas: the image after it differs from the first only there.
    const before = recorder.image;
    under.compositor.seat.pointerMove(recorder.window, 100, 200);
    click(BTN_LEFT);
    const after = await recorder.waitForImage((image) => pixelAt(image, 100, 200) === DOT_COLOR, "a dot at (100, 200)");
    expect(differences(before, after.image)).toHaveLength(64);
  });

  it("shows typed keys in the text line; Backspace deletes one, Enter clears the line", async () => {
    const { recorder } = await showDemoApp("work");
    under.compositor.seat.focus(recorder.window);
    typeText(under.compositor.seat, "Hello, World! 42");
    await waitForLine(recorder, "Hello, World! 42");
    pressKey(under.compositor.seat, KEY_BACKSPACE);
    const from = recorder.commits.length;
    await waitForLine(recorder, "Hello, World! 4", from);
    pressKey(under.compositor.seat, KEY_ENTER);
    const image = await waitForLine(recorder, "", recorder.commits.length);
    // Only the line changed: the name is still there.
    expect(region(image, windowLayout(480, 320).name)).toEqual(
      region(recorder.commits[0]!.image, windowLayout(480, 320).name),
    );
  });

  it("opens a bordered popup menu at a right click, highlights the hovered item, and Clear empties the line", async () => {
    const { recorder } = await showDemoApp("work");
    under.compositor.seat.focus(recorder.window);
    typeText(under.compositor.seat, "some text");
    await waitForLine(recorder, "some text");
    under.compositor.seat.pointerMove(recorder.window, 100, 150);
    click(BTN_RIGHT);
    const menu = await watcher.waitForWindow((w) => w.kind === "popup", "the popup menu");
    expect(menu.window.parent).toBe(recorder.window);
    expect(menu.window.popupRect).toEqual({ x: 100, y: 150, width: MENU_WIDTH, height: MENU_HEIGHT });
    const shown = menu.image;
    expect(shown.width).toBe(MENU_WIDTH);
    expect(shown.height).toBe(MENU_HEIGHT);
    // Its own border all around, and each item's label drawn.
    const border = [
      ...region(shown, { x: 0, y: 0, width: MENU_WIDTH, height: 1 }),
      ...region(shown, { x: 0, y: MENU_HEIGHT - 1, width: MENU_WIDTH, height: 1 }),
      ...region(shown, { x: 0, y: 0, width: 1, height: MENU_HEIGHT }),
      ...region(shown, { x: MENU_WIDTH - 1, y: 0, width: 1, height: MENU_HEIGHT }),
    ];
    expect(new Set(border)).toEqual(new Set([MENU_BORDER]));
    for (let i = 0; i < MENU_ITEMS.length; i++) {
      const ink = region(shown, menuItemRect(i)).filter((pixel) => (pixel & 0xff) < 0x80).length;
      expect(ink, `ink of "${MENU_ITEMS[i]}"`).toBeGreaterThan(20);
    }
    // Hovering "Clear" highlights it, and only it.
    const clear = MENU_ITEMS.indexOf("Clear");
    const item = menuItemRect(clear);
    const from = menu.commits.length;
    under.compositor.seat.pointerMove(menu.window, 20, item.y + MENU_ITEM_HEIGHT / 2);
    const hovered = await menu.waitForImage(
      (image) => pixelAt(image, item.x + 2, item.y + 2) === MENU_HOVER,
      "the hover highlight of Clear",
      from,
    );
    expect(pixelAt(hovered.image, 3, menuItemRect(0).y + 2)).not.toBe(MENU_HOVER);
    expect(hovered.damage).toEqual([item]);
    // A left click on it clears the line and closes the menu.
    const gone = menu.whenDestroyed();
    const before = recorder.commits.length;
    click(BTN_LEFT);
    await gone;
    await waitForLine(recorder, "", before);
  });

  it("closes its popup on popup_done and on a left click in the window, drawing no dot", async () => {
    const { recorder } = await showDemoApp("work");
    under.compositor.seat.pointerMove(recorder.window, 50, 120);
    click(BTN_RIGHT);
    const first = await watcher.waitForWindow((w) => w.kind === "popup", "the popup menu");
    const done = first.whenDestroyed();
    first.window.close();
    await done;
    under.compositor.seat.pointerMove(recorder.window, 60, 130);
    click(BTN_RIGHT);
    const second = await watcher.waitForWindow((w) => w.kind === "popup" && w !== first.window, "a second popup");
    const before = recorder.image;
    const closed = second.whenDestroyed();
    under.compositor.seat.pointerMove(recorder.window, 200, 200);
    click(BTN_LEFT);
    await closed;
    // The next dot is drawn by the next click; the one that closed the menu drew nothing.
    under.compositor.seat.pointerMove(recorder.window, 250, 250);
    click(BTN_LEFT);
    const after = await recorder.waitForImage((image) => pixelAt(image, 250, 250) === DOT_COLOR, "a dot at (250, 250)");
    expect(pixelAt(after.image, 200, 200)).toBe(FIELD_BACKGROUND);
    expect(differences(before, after.image)).toHaveLength(64);
  });

  it("copies with Ctrl+C in one instance and pastes with Ctrl+V in another, through the selection", async () => {
    const a = await showDemoApp("work");
    const b = await showDemoApp("personal");
    const seat = under.compositor.seat;
    seat.focus(a.recorder.window);
    typeText(seat, "copy me: 1+1=2");
    await waitForLine(a.recorder, "copy me: 1+1=2");
    const changed = selectionChange();
    pressKey(seat, KEY_C, [KEY_LEFTCTRL]);
    await changed;
    expect(await readClipboard()).toBe("copy me: 1+1=2");
    seat.focus(b.recorder.window);
    typeText(seat, ">");
    await waitForLine(b.recorder, ">");
    pressKey(seat, KEY_V, [KEY_LEFTCTRL]);
    await waitForLine(b.recorder, ">copy me: 1+1=2");
    // a still shows its own line.
    await waitForLine(a.recorder, "copy me: 1+1=2", a.recorder.commits.length - 1);
  });

  it("copies with the menu's Copy and pastes what the compositor's clipboard holds with Paste", async () => {
    const { recorder } = await showDemoApp("work");
    const seat = under.compositor.seat;
    seat.focus(recorder.window);
    typeText(seat, "menu copy");
    await waitForLine(recorder, "menu copy");
    const seen = new Set<unknown>();
    const openMenu = async (): Promise<WindowRecorder> => {
      seat.pointerMove(recorder.window, 40, 120);
      click(BTN_RIGHT);
      const menu = await watcher.waitForWindow((w) => w.kind === "popup" && !seen.has(w), "the popup menu");
      seen.add(menu.window);
      return menu;
    };
    let menu = await openMenu();
    const changed = selectionChange();
    seat.pointerMove(menu.window, 20, menuItemRect(MENU_ITEMS.indexOf("Copy")).y + 5);
    let gone = menu.whenDestroyed();
    click(BTN_LEFT);
    await gone;
    await changed;
    expect(await readClipboard()).toBe("menu copy");

    under.compositor.clipboard.set(new Uint8Array(Buffer.from(" and\tset()\n")));
    menu = await openMenu();
    seat.pointerMove(menu.window, 20, menuItemRect(MENU_ITEMS.indexOf("Paste")).y + 5);
    gone = menu.whenDestroyed();
    click(BTN_LEFT);
    await gone;
    // Tabs and line breaks come in as spaces.
    await waitForLine(recorder, "menu copy and set() ");
  });

  it("resizes to the size a configure asks, and keeps its own at 0x0", async () => {
    const { recorder } = await showDemoApp("work");
    const window = recorder.window;
    const acked = new Promise<number>((resolve) => window.events.ackConfigure.add(resolve));
    const serial = window.configure({ width: 600, height: 400 });
    expect(await within(acked, EVENT_MS, "the ack of the configure")).toBe(serial);
    const resized = await recorder.waitForImage((image) => image.width === 600, "a 600x400 commit");
    expect(resized.image.height).toBe(400);
    expect(resized.damage).toEqual([{ x: 0, y: 0, width: 600, height: 400 }]);
    const layout = windowLayout(600, 400);
    expect(region(resized.image, layout.lineBox)).toEqual(await expectedLine(layout, ""));
    expect(pixelAt(resized.image, layout.canvasBox.x + layout.canvasBox.width - 1, layout.canvasBox.y)).toBe(
      FIELD_BORDER,
    );
    // 0x0: the app keeps its size (its next commit, a dot, is still 600x400).
    const ackedAgain = new Promise<number>((resolve) => window.events.ackConfigure.add(resolve));
    const again = window.configure({ width: 0, height: 0 });
    expect(await within(ackedAgain, EVENT_MS, "the ack of the 0x0 configure")).toBe(again);
    under.compositor.seat.pointerMove(window, 500, 300);
    click(BTN_LEFT);
    const kept = await recorder.waitForImage((image) => pixelAt(image, 500, 300) === DOT_COLOR, "a dot at (500, 300)");
    expect([kept.image.width, kept.image.height]).toEqual([600, 400]);
    expect(window.size).toEqual({ width: 600, height: 400 });
  });

  it("exits with status 0 when the compositor closes its window", async () => {
    const { app, recorder } = await showDemoApp("work");
    recorder.window.close();
    const result = await within(app.done, EVENT_MS, "the app's exit after close");
    expect(result.code).toBe(0);
    expect(result.stderr).toBe("");
  });

  it("exits with status 1 and one line when the compositor goes away", async () => {
    const { app } = await showDemoApp("work");
    under.compositor.destroy();
    const result = await within(app.done, EVENT_MS, "the app's exit after the compositor's end");
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/^qubes-demo-app: the compositor connection ended: .+\n$/);
  });
});
