import { describe, expect, it } from "vitest";

import { MAX_VM_NAME_LENGTH, checkVmName, decorateClass, decorateTitle, isValidVmName } from "../../decorator/index.ts";

describe("titles and classes", () => {
  const work = checkVmName("work");

  it("prefixes every title with [name]", () => {
    expect(decorateTitle(work, "xterm")).toBe("[work] xterm");
    expect(decorateTitle(work, "")).toBe("[work] ");
    expect(decorateTitle(work, "[personal] fake")).toBe("[work] [personal] fake");
    expect(decorateTitle(checkVmName("sys-net"), "日本語")).toBe("[sys-net] 日本語");
  });

  it("prefixes a class with name: and uses the name alone for an empty class", () => {
    expect(decorateClass(work, "Firefox")).toBe("work:Firefox");
    expect(decorateClass(work, "")).toBe("work");
    expect(decorateClass(work, "personal:Firefox")).toBe("work:personal:Firefox");
  });

  it("takes only a checked name", () => {
    // @ts-expect-error: a plain string has not passed checkVmName.
    expect(decorateTitle("work", "x")).toBe("[work] x");
  });
});

describe("the qube-name rule", () => {
  it.each([
    "a",
    "Z",
    "work",
    "sys-net",
    "sys_usb",
    "debian-12.minimal",
    "fedora-40-xfce",
    "dom0",
    "a.",
    "a-",
    "none1",
    "None",
    "default-mgmt-dvm",
    "x-dm1",
    "dm",
    "Domain-1",
    "a".repeat(MAX_VM_NAME_LENGTH),
  ])("accepts %j", (name) => {
    expect(isValidVmName(name)).toBe(true);
    expect(checkVmName(name)).toBe(name);
  });

  it.each([
    ["", /empty/],
    ["a".repeat(32), /32 bytes/],
    ["é", /start with an ASCII letter/],
    ["aé", /character/],
    ["a".repeat(30) + "é", /32 bytes/],
    ["1work", /start with an ASCII letter/],
    ["-work", /start with an ASCII letter/],
    [".work", /start with an ASCII letter/],
    ["_work", /start with an ASCII letter/],
    ["work vm", /character/],
    ["work/vm", /character/],
    ["work+vm", /character/],
    ["work\n", /character/],
    ["work\0", /character/],
    ["none", /reserved/],
    ["default", /reserved/],
    ["Domain-0", /reserved/],
    ["work-dm", /ends with "-dm"/],
    ["a-dm", /ends with "-dm"/],
  ])("rejects %j, saying why", (name, why) => {
    expect(isValidVmName(name)).toBe(false);
    expect(() => checkVmName(name)).toThrow(RangeError);
    expect(() => checkVmName(name)).toThrow(why);
  });
});
