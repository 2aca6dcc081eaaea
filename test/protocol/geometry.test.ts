import { describe, expect, it } from "vitest";

import {
  offsetInWindow,
  sameRect,
  screenRect,
  screenRectFromVm,
  vmRect,
  windowRect,
  type ScreenRect,
  type VmRect,
  type WindowRect,
} from "../../protocol/index.ts";

/** Each takes one space only; the @ts-expect-error lines fail `npm test`'s typecheck if a mix ever compiles. */
function inVm(rect: VmRect): number {
  return rect.x;
}
function inWindow(rect: WindowRect): number {
  return rect.x;
}
function onScreen(rect: ScreenRect): number {
  return rect.x;
}

describe("coordinate spaces", () => {
  it("does not let a rectangle of one space stand for another", () => {
    const vm = vmRect(10, 20, 30, 40);
    const window = windowRect(1, 2, 3, 4);
    const screen = screenRect(5, 6, 7, 8);
    // @ts-expect-error a window rectangle is not a VM rectangle
    inVm(window);
    // @ts-expect-error a screen rectangle is not a VM rectangle
    inVm(screen);
    // @ts-expect-error a VM rectangle is not a window rectangle
    inWindow(vm);
    // @ts-expect-error a VM rectangle is not on the screen without screenRectFromVm
    onScreen(vm);
    // @ts-expect-error a plain object is in no space
    inVm({ x: 0, y: 0, width: 1, height: 1 });
    expect(inVm(vm) + inWindow(window) + onScreen(screen)).toBe(16);
  });

  it("converts only through calls that say how", () => {
    const parent = vmRect(100, 50, 400, 300);
    const popup = vmRect(130, 90, 100, 80);
    expect(offsetInWindow(parent, popup)).toEqual({ x: 30, y: 40 });
    expect(sameRect(screenRectFromVm(parent), screenRect(100, 50, 400, 300))).toBe(true);
  });
});
