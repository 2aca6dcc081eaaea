/**
 * The agent's start-up and its daemons, in-process: the directories it owns
 * are created private, a daemon that breaks the protocol is logged at warn
 * with the reason (a daemon that leaves, at info), and after either the
 * agent serves the vchan again from the same process.
 */
import { mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { Writable } from "node:stream";

import pino from "pino";
import { afterEach, describe, expect, it } from "vitest";

import { startAgent, type GuiAgent } from "../../gui-agent/index.ts";
import { QUBES_GUI_VCHAN_PORT, encodeVersion, encodeXconf, makeXconf } from "../../protocol/index.ts";
import { connectVchanClient, type Vchan } from "../../vchan/index.ts";
import { bytes } from "../protocol/bytes.ts";
import { connectDaemonPeer, type DaemonPeer } from "../helpers/daemon-peer.ts";

const AGENT_DOMAIN = 7;
const GUI_DOMAIN = 0;
/** How long a test waits for one event between parts that are already running (ms). */
const EVENT_MS = 10_000;
/** startAgent compiles its keymap with xkbcli, a process start: the machine's time, not the code's. */
const START_MS = 120_000;

const dirs: string[] = [];
const agents: GuiAgent[] = [];
const peers: Array<{ close(): void }> = [];

function tempDir(): string {
  const dir = mkdtempSync(path.join(tmpdir(), "qubes-agent-startup-"));
  dirs.push(dir);
  return dir;
}

/** A pino logger that keeps each entry as an object. */
function capturingLog() {
  const entries: Array<Record<string, unknown>> = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString("utf8").split("\n")) {
        if (line !== "") entries.push(JSON.parse(line) as Record<string, unknown>);
      }
      done();
    },
  });
  return { entries, log: pino({ level: "debug" }, stream) };
}

/** Resolves as `promise` does, or rejects after `ms` saying that `what` never came. */
function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} never came (waited ${ms} ms)`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** Connects as a daemon by hand: reads the agent's version word, answers with 1.8 and a screen. */
async function handshake(socketDir: string): Promise<Vchan> {
  const vchan = await connectVchanClient({
    backend: "socket",
    domain: AGENT_DOMAIN,
    ownDomain: GUI_DOMAIN,
    port: QUBES_GUI_VCHAN_PORT,
    socketDir,
  });
  peers.push(vchan);
  await new Promise<void>((resolve) => {
    const check = (): void => {
      if (vchan.dataReady() < 4) return;
      vchan.off("data", check);
      vchan.read(new Uint8Array(4));
      resolve();
    };
    vchan.on("data", check);
    check();
  });
  vchan.write(encodeVersion(0x00010008));
  vchan.write(encodeXconf(makeXconf({ width: 1280, height: 800 })));
  return vchan;
}

afterEach(() => {
  for (const peer of peers.splice(0)) peer.close();
  for (const agent of agents.splice(0)) agent.stop();
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

describe("the agent's daemons", () => {
  it(
    "logs a daemon that breaks the protocol at warn with the reason, then serves the next daemon",
    async () => {
      const dir = tempDir();
      const { entries, log } = capturingLog();
      const agent = await startAgent({
        guiDomain: GUI_DOMAIN,
        ownDomain: AGENT_DOMAIN,
        vchan: "socket",
        grants: "memfd",
        socketDir: dir,
        waylandDisplay: path.join(dir, "wayland-startup"),
        log,
      });
      agents.push(agent);
      const connected = new Promise<void>((resolve) => agent.once("connected", () => resolve()));
      const disconnected = new Promise<string>((resolve) => agent.once("disconnected", resolve));
      const hostile = await within(handshake(dir), EVENT_MS, "the hostile daemon's handshake");
      await within(connected, EVENT_MS, "the agent's connected event");
      // A KEYPRESS whose header says 23 body bytes (it has 24): at 1.8 the session ends.
      hostile.write(bytes().header(124, 1, 23).build());
      const reason = await within(disconnected, EVENT_MS, "the agent's disconnected event");
      expect(reason).toMatch(/^protocol error from the daemon at byte 20: .*untrusted_len 23/);
      const ended = entries.filter((entry) => entry.reason === reason);
      expect(ended).toEqual([
        expect.objectContaining({
          level: 40,
          guiDomain: GUI_DOMAIN,
          msg: expect.stringMatching(/^disconnected the GUI daemon/),
        }),
      ]);

      // The agent serves again, in the same process, and the next daemon is shown everything.
      const peer: DaemonPeer = await within(
        connectDaemonPeer({ agentDomain: AGENT_DOMAIN, guiDomain: GUI_DOMAIN, socketDir: dir }),
        EVENT_MS,
        "the next daemon's connection",
      );
      peers.push(peer);
      await within(
        new Promise<void>((resolve) => (agent.connected ? resolve() : agent.once("connected", () => resolve()))),
        EVENT_MS,
        "the next daemon's handshake",
      );
      expect(agent.connected).toBe(true);
    },
    START_MS + 4 * EVENT_MS,
  );

  it(
    "logs a daemon that went away at info",
    async () => {
      const dir = tempDir();
      const { entries, log } = capturingLog();
      const agent = await startAgent({
        guiDomain: GUI_DOMAIN,
        ownDomain: AGENT_DOMAIN,
        vchan: "socket",
        grants: "memfd",
        socketDir: dir,
        waylandDisplay: path.join(dir, "wayland-startup"),
        log,
      });
      agents.push(agent);
      const connected = new Promise<void>((resolve) => agent.once("connected", () => resolve()));
      const disconnected = new Promise<string>((resolve) => agent.once("disconnected", resolve));
      const daemon = await within(handshake(dir), EVENT_MS, "the daemon's handshake");
      await within(connected, EVENT_MS, "the agent's connected event");
      daemon.close();
      const reason = await within(disconnected, EVENT_MS, "the agent's disconnected event");
      expect(reason).toBe("the daemon went away");
      expect(entries.filter((entry) => entry.reason === reason)).toEqual([
        expect.objectContaining({ level: 30, msg: "daemon gone; the apps keep running" }),
      ]);
    },
    START_MS + 3 * EVENT_MS,
  );
});

describe("the agent's directories", () => {
  it(
    "creates a missing vchan directory and Wayland socket directory with mode 0700",
    async () => {
      const dir = tempDir();
      const socketDir = path.join(dir, "run", "vchan");
      const waylandDir = path.join(dir, "runtime", "agent");
      const agent = await startAgent({
        guiDomain: GUI_DOMAIN,
        ownDomain: AGENT_DOMAIN,
        vchan: "socket",
        grants: "memfd",
        socketDir,
        waylandDisplay: path.join(waylandDir, "wayland-0"),
        log: pino({ level: "silent" }),
      });
      agents.push(agent);
      for (const created of [path.join(dir, "run"), socketDir, path.join(dir, "runtime"), waylandDir]) {
        const stats = statSync(created);
        expect(stats.isDirectory()).toBe(true);
        expect((stats.mode & 0o777).toString(8)).toBe("700");
      }
      expect(statSync(path.join(socketDir, `vchan.${AGENT_DOMAIN}.${GUI_DOMAIN}.6000.sock`)).isSocket()).toBe(true);
      expect(statSync(path.join(waylandDir, "wayland-0")).isSocket()).toBe(true);
    },
    START_MS,
  );

  it("names a vchan directory that is a file", async () => {
    const dir = tempDir();
    const socketDir = path.join(dir, "vchan");
    writeFileSync(socketDir, "");
    await expect(
      startAgent({
        guiDomain: GUI_DOMAIN,
        ownDomain: AGENT_DOMAIN,
        vchan: "socket",
        grants: "memfd",
        socketDir,
        waylandDisplay: path.join(dir, "wayland-0"),
        log: pino({ level: "silent" }),
      }),
    ).rejects.toThrow(`cannot create the vchan socket directory ${socketDir}: EEXIST`);
  });
});
