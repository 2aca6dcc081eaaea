/**
 * What the agent logs when it ends an app: a warn line with the app's pid and
 * the reason (a protocol error or a limit), so that a user sees why an app
 * lost its display.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { Writable } from "node:stream";

import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

import { startAgent, type GuiAgent } from "../../gui-agent/index.ts";
import { bytes } from "../protocol/bytes.ts";
import { rawExchange } from "../helpers/raw-wayland.ts";

let dir: string;
let agent: GuiAgent;
const lines: Array<Record<string, unknown>> = [];

beforeAll(async () => {
  dir = mkdtempSync(path.join(tmpdir(), "agent-logs-"));
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString("utf8").split("\n")) {
        if (line !== "") lines.push(JSON.parse(line) as Record<string, unknown>);
      }
      done();
    },
  });
  agent = await startAgent({
    guiDomain: 0,
    ownDomain: 7,
    vchan: "socket",
    grants: "memfd",
    socketDir: dir,
    waylandDisplay: path.join(dir, "wayland-logs"),
    log: pino({ level: "debug" }, sink),
  });
});

afterAll(() => {
  agent?.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe("the agent's log of apps it ends", () => {
  it("logs an app ended for a protocol error at warn, with its pid and the reason", async () => {
    // A request on object 99, which the app never created: wl_display.error invalid_object.
    const message = bytes()
      .u32(99)
      .u32((8 << 16) | 0)
      .build();
    const { closed } = await rawExchange(path.join(dir, "wayland-logs"), message);
    expect(closed).toBe(true);
    const ended = lines.find((line) => line.msg === "disconnected an app");
    expect(ended).toMatchObject({ level: 40, clientPid: process.pid });
    expect(String(ended?.reason)).not.toBe("");
  });
});
