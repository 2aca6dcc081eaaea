import { describe, expect, it } from "vitest";

import {
  acceptDaemonVersion,
  encodeMessage,
  encodeVersion,
  encodeXconf,
  makeXconf,
  negotiateVersion,
  protocolVersion,
} from "../../protocol/index.ts";
import { bytes } from "./bytes.ts";

describe("version negotiation", () => {
  for (const [agent, negotiated, sendVersionWord] of [
    [protocolVersion(1, 8), protocolVersion(1, 8), true],
    [protocolVersion(1, 4), protocolVersion(1, 4), true],
    [protocolVersion(1, 3), protocolVersion(1, 3), false],
    [protocolVersion(1, 0), protocolVersion(1, 0), false],
    [protocolVersion(1, 0xffff), protocolVersion(1, 8), true],
  ] as const) {
    it(`negotiates 0x${negotiated.toString(16)} with an agent at 0x${agent.toString(16)}`, () => {
      expect(negotiateVersion(agent)).toEqual({ ok: true, value: { version: negotiated, sendVersionWord } });
    });
  }

  it("refuses an agent of major 0 as outdated and one of major 2 as newer than the daemon", () => {
    const outdated = negotiateVersion(0x00000008);
    const newer = negotiateVersion(0x00020000);
    expect(!outdated.ok && outdated.error.code).toBe("AGENT_OUTDATED");
    expect(!newer.ok && newer.error.message).toMatch(/newer/);
    expect(!newer.ok && newer.error.reaction).toBe("end-session");
  });

  it("the agent accepts 1.4..its own version and nothing else", () => {
    expect(acceptDaemonVersion(protocolVersion(1, 4)).ok).toBe(true);
    expect(acceptDaemonVersion(protocolVersion(1, 8)).ok).toBe(true);
    expect(acceptDaemonVersion(protocolVersion(1, 3)).ok).toBe(false);
    expect(acceptDaemonVersion(protocolVersion(1, 8), protocolVersion(1, 7)).ok).toBe(false);
    expect(acceptDaemonVersion(0xffffffff).ok).toBe(false);
  });

  it("encodes the version word as 08 00 01 00", () => {
    expect([...encodeVersion(protocolVersion(1, 8))]).toEqual([8, 0, 1, 0]);
  });
});

describe("xconf", () => {
  it("is w=1280 h=800 depth=24 mem=4001 for a 1280x800 screen (the reference's example)", () => {
    const xconf = makeXconf({ width: 1280, height: 800 });
    expect(xconf).toEqual({ type: "XCONF", w: 1280, h: 800, depth: 24, mem: 4001 });
    expect([...encodeXconf(xconf)]).toEqual([...bytes().u32(1280).u32(800).u32(24).u32(4001).build()]);
  });

  it("rounds the width up to a multiple of 8", () => {
    expect(makeXconf({ width: 1366, height: 768 })).toMatchObject({
      w: 1368,
      mem: Math.floor((1368 * 768 * 4) / 1024) + 1,
    });
  });
});

describe("encoder programmer errors", () => {
  const create = {
    type: "CREATE",
    window: 1,
    x: 0,
    y: 0,
    width: 1,
    height: 1,
    parent: 0,
    override_redirect: 0,
  } as const;

  it("refuses a message the side does not send", () => {
    expect(() => encodeMessage(create, { from: "daemon" })).toThrow(/does not send MSG_CREATE/);
  });

  it("refuses the obsolete messages", () => {
    expect(() => encodeMessage({ type: "RESIZE", window: 1, width: 1, height: 1 }, { from: "daemon" })).toThrow(
      /obsolete/,
    );
  });

  it("refuses WINDOW_DUMP_ACK at 1.6 and the DESTROY ack at 1.4", () => {
    expect(() =>
      encodeMessage({ type: "WINDOW_DUMP_ACK", window: 1 }, { from: "daemon", version: protocolVersion(1, 6) }),
    ).toThrow();
    expect(() =>
      encodeMessage({ type: "DESTROY", window: 1 }, { from: "daemon", version: protocolVersion(1, 4) }),
    ).toThrow();
  });

  for (const [field, value] of [
    ["x", 0x80000000],
    ["width", -1],
    ["width", 2 ** 32],
    ["height", 1.5],
  ] as const) {
    it(`refuses ${field} = ${value}`, () => {
      expect(() => encodeMessage({ ...create, [field]: value }, { from: "agent" })).toThrow(RangeError);
    });
  }

  it("zero-pads a short WMNAME and refuses a long one", () => {
    const short = encodeMessage({ type: "WMNAME", window: 1, data: Uint8Array.of(65) }, { from: "agent" });
    expect(short.length).toBe(140);
    expect(short[13]).toBe(0);
    expect(() => encodeMessage({ type: "WMNAME", window: 1, data: new Uint8Array(129) }, { from: "agent" })).toThrow();
  });
});
