import { describe, expect, it } from "vitest";

import { sanitizeTitle, wmclassField, wmnameData } from "../../protocol/index.ts";
import { fixedText } from "./bytes.ts";

describe("agent-side char arrays", () => {
  it("keeps a title of up to 127 bytes as it is", () => {
    expect(wmnameData("xterm")).toEqual(fixedText("xterm", 128));
    expect(wmnameData("a".repeat(127))).toEqual(fixedText("a".repeat(127), 128));
  });

  it("cuts a 128-byte title to 124 bytes and appends …", () => {
    const data = wmnameData("a".repeat(128));
    expect(data).toEqual(fixedText(`${"a".repeat(124)}…`, 128));
    expect(data[127]).toBe(0);
  });

  it("cuts a long multi-byte title at a character boundary", () => {
    const data = wmnameData("日".repeat(60));
    expect(data).toEqual(fixedText(`${"日".repeat(41)}…`, 128));
    expect(sanitizeTitle(data, true)).toBe(`${"日".repeat(41)}…`);
  });

  it("a cut title shows as ... on a daemon without UTF-8 titles", () => {
    expect(sanitizeTitle(wmnameData("b".repeat(300)), false)).toBe(`${"b".repeat(124)}...`);
  });

  it("cuts a WM_CLASS field to 63 bytes at a character boundary", () => {
    expect(wmclassField("Firefox")).toEqual(fixedText("Firefox", 64));
    expect(wmclassField("x".repeat(100))).toEqual(fixedText("x".repeat(63), 64));
    expect(wmclassField(`${"x".repeat(62)}é`)).toEqual(fixedText("x".repeat(62), 64));
  });
});
