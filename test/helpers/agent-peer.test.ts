import { readdirSync } from "node:fs";

import { afterEach, beforeEach, describe, expect, it } from "vitest";

import {
  QUBES_GUI_VCHAN_PORT,
  StreamDecoder,
  encodeMessage,
  encodeVersion,
  encodeXconf,
  makeXconf,
  negotiateVersion,
  type Message,
} from "../../protocol/index.ts";
import { MemfdGrantTable, ShmError } from "../../shm/index.ts";
import { connectVchanClient, type Vchan } from "../../vchan/index.ts";
import { concat, fixedText, fromHex } from "../protocol/bytes.ts";
import { agentMessage, listenAgentPeer, type AgentPeer } from "./agent-peer.ts";
import { temporaryDirectory } from "./processes.ts";

const agentDomain = 7;
const guiDomain = 1;

/** A minimal daemon: the vchan client, the daemon's half of the handshake, and protocol/'s decoder. */
interface MiniDaemon {
  readonly vchan: Vchan;
  /** The agent's version word as it arrived. */
  readonly versionWord: Uint8Array;
  readonly version: number;
  readonly received: Message[];
  readonly errors: string[];
  /** Reads that returned bytes (after the handshake). */
  reads: number;
  send(message: Message): void;
  waitForMessages(count: number, timeoutMs?: number): Promise<Message[]>;
  attachGrants(): Promise<MemfdGrantTable>;
  close(): void;
}

let dir: { dir: string; remove: () => void };
const cleanups: Array<() => void> = [];

beforeEach(() => {
  dir = temporaryDirectory("agent-peer-");
});

afterEach(() => {
  for (const cleanup of cleanups.splice(0).reverse()) cleanup();
  dir.remove();
});

function whenReadable(vchan: Vchan, count: number, what: string, timeoutMs = 5000): Promise<void> {
  return new Promise((resolve, reject) => {
    const check = (): void => {
      if (vchan.dataReady() < count) return;
      clearTimeout(timer);
      vchan.off("data", check);
      resolve();
    };
    const timer = setTimeout(() => {
      vchan.off("data", check);
      reject(new Error(`the mini daemon got no ${what} within ${timeoutMs} ms`));
    }, timeoutMs);
    vchan.on("data", check);
    check();
  });
}

async function connectMiniDaemon(options: { withholdXconf?: boolean } = {}): Promise<MiniDaemon> {
  const vchan = await connectVchanClient({
    backend: "socket",
    domain: agentDomain,
    port: QUBES_GUI_VCHAN_PORT,
    ownDomain: guiDomain,
    socketDir: dir.dir,
  });
  let grants: MemfdGrantTable | null = null;
  cleanups.push(() => {
    vchan.close();
    grants?.destroy();
  });
  await whenReadable(vchan, 4, "version word");
  const versionWord = new Uint8Array(4);
  vchan.recv(versionWord);
  const negotiated = negotiateVersion(new DataView(versionWord.buffer).getUint32(0, true));
  if (!negotiated.ok) throw negotiated.error;
  const version = negotiated.value.version;
  if (negotiated.value.sendVersionWord) vchan.write(encodeVersion(version));
  if (options.withholdXconf !== true) vchan.write(encodeXconf(makeXconf({ width: 1280, height: 800 })));
  const decoder = new StreamDecoder({ from: "agent", version });
  const buffer = new Uint8Array(65536);
  const waiters = new Set<() => void>();
  const daemon: MiniDaemon = {
    vchan,
    versionWord,
    version,
    received: [],
    errors: [],
    reads: 0,
    send(message) {
      vchan.write(encodeMessage(message, { from: "daemon", version }));
    },
    waitForMessages(count, timeoutMs = 5000) {
      return new Promise((resolve, reject) => {
        const check = (): void => {
          if (daemon.received.length < count) return;
          clearTimeout(timer);
          waiters.delete(check);
          resolve(daemon.received.slice(0, count));
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          const types = daemon.received.map((m) => m.type).join(" ");
          reject(new Error(`the mini daemon got ${types || "nothing"}, not ${count} messages`));
        }, timeoutMs);
        waiters.add(check);
        check();
      });
    },
    async attachGrants() {
      grants = new MemfdGrantTable({ domain: guiDomain, socketDir: dir.dir });
      await grants.attach(agentDomain);
      return grants;
    },
    close() {
      vchan.close();
    },
  };
  vchan.on("data", () => {
    for (;;) {
      const count = vchan.read(buffer);
      if (count === 0) break;
      daemon.reads += 1;
      for (const result of decoder.push(buffer.subarray(0, count))) {
        if (result.ok) daemon.received.push(result.value as Message);
        else daemon.errors.push(result.error.message);
      }
    }
    for (const waiter of [...waiters]) waiter();
  });
  return daemon;
}

async function listen(options: Partial<Parameters<typeof listenAgentPeer>[0]> = {}): Promise<AgentPeer> {
  const peer = await listenAgentPeer({ agentDomain, guiDomain, socketDir: dir.dir, ...options });
  cleanups.push(() => peer.close());
  return peer;
}

/** A connected pair: the peer (handshake done) and the mini daemon. */
async function connected(options: Partial<Parameters<typeof listenAgentPeer>[0]> = {}): Promise<{
  peer: AgentPeer;
  daemon: MiniDaemon;
}> {
  const peer = await listen(options);
  const [daemon] = await Promise.all([connectMiniDaemon(), peer.handshake(5000)]);
  return { peer, daemon };
}

function openFds(): number {
  return readdirSync("/proc/self/fd").length;
}

describe("the agent peer's handshake", () => {
  it("sends 08 00 01 00 and reads the negotiated version and the xconf of a 1280x800 screen", async () => {
    const { peer, daemon } = await connected();
    expect(daemon.versionWord).toEqual(fromHex("08000100"));
    expect(peer.negotiatedVersion).toBe(0x00010008);
    expect(peer.xconf).toEqual({ w: 1280, h: 800, depth: 24, mem: 4001 });
  });

  it("as a 1.3 agent reads the xconf alone, as no version word comes back", async () => {
    const { peer, daemon } = await connected({ version: 0x00010003 });
    expect(daemon.version).toBe(0x00010003);
    expect(peer.negotiatedVersion).toBe(0x00010003);
    expect(peer.xconf).toEqual({ w: 1280, h: 800, depth: 24, mem: 4001 });
  });

  it("as a 1.9 agent takes the daemon's 1.8", async () => {
    const { peer } = await connected({ version: 0x00010009 });
    expect(peer.negotiatedVersion).toBe(0x00010008);
  });

  it("rejects naming the missing connection when no daemon comes", async () => {
    const peer = await listen();
    await expect(peer.handshake(100)).rejects.toThrow("no daemon connected within 100 ms");
  });

  it("rejects naming the missing xconf when the daemon sends only its version word", async () => {
    const peer = await listen();
    const [, outcome] = await Promise.all([
      connectMiniDaemon({ withholdXconf: true }),
      peer.handshake(300).then(
        () => "completed",
        (error: Error) => error.message,
      ),
    ]);
    expect(outcome).toBe("no xconf from the daemon within 300 ms");
  });

  it("refuses to send before a daemon connected", async () => {
    const peer = await listen();
    expect(() => peer.destroy(1)).toThrow(/no daemon is connected yet/);
  });
});

describe("the agent peer's messages", () => {
  it("builds the reference's CREATE example byte for byte", async () => {
    const { peer, daemon } = await connected();
    const sent = peer.create(0x00400001, { x: 100, y: 100, width: 300, height: 200 });
    expect(sent).toEqual(fromHex("82000000 01004000 18000000 | 64000000 64000000 2c010000 c8000000 00000000 00000000"));
    expect(await daemon.waitForMessages(1)).toEqual([
      { type: "CREATE", window: 0x00400001, x: 100, y: 100, width: 300, height: 200, parent: 0, override_redirect: 0 },
    ]);
  });

  it("sends every agent message so that protocol/'s decoder reads what was meant", async () => {
    const { peer, daemon } = await connected();
    const id = 0x2a;
    peer.create(id, { x: -5, y: 7, width: 30, height: 20, parent: 0x123, overrideRedirect: true });
    peer.map(id, { transientFor: 9, overrideRedirect: 1 });
    peer.unmap(id);
    peer.configure(id, { x: 1, y: -2, width: 3, height: 4 });
    peer.shmimage(id, { x: -1, y: 0, width: 10, height: 11 });
    peer.wmname(id, "Ünïcode");
    peer.wmclass(id, "Class", "name");
    peer.windowHints(id, { minWidth: 10, minHeight: 20, baseWidth: 1, baseHeight: 2 });
    peer.windowFlags(id, 1, 4);
    peer.cursor(id, 0x100 + 68);
    peer.dock(id);
    peer.windowDump(id, 30, 20, [5, 9, 2], { bpp: 24 });
    peer.clipboardData(new TextEncoder().encode("copied"));
    peer.destroy(id);
    const messages = await daemon.waitForMessages(14);
    expect(daemon.errors).toEqual([]);
    expect(messages).toEqual([
      { type: "CREATE", window: id, x: -5, y: 7, width: 30, height: 20, parent: 0x123, override_redirect: 1 },
      { type: "MAP", window: id, transient_for: 9, override_redirect: 1 },
      { type: "UNMAP", window: id },
      { type: "CONFIGURE", window: id, x: 1, y: -2, width: 3, height: 4, override_redirect: 0 },
      { type: "SHMIMAGE", window: id, x: -1, y: 0, width: 10, height: 11 },
      { type: "WMNAME", window: id, data: fixedText("Ünïcode", 128) },
      { type: "WMCLASS", window: id, res_class: fixedText("Class", 64), res_name: fixedText("name", 64) },
      {
        type: "WINDOW_HINTS",
        window: id,
        flags: 16 | 256,
        min_width: 10,
        min_height: 20,
        max_width: 0,
        max_height: 0,
        width_inc: 0,
        height_inc: 0,
        base_width: 1,
        base_height: 2,
      },
      { type: "WINDOW_FLAGS", window: id, flags_set: 1, flags_unset: 4 },
      { type: "CURSOR", window: id, cursor: 0x144 },
      { type: "DOCK", window: id },
      {
        type: "WINDOW_DUMP",
        window: id,
        dump_type: 0,
        width: 30,
        height: 20,
        bpp: 24,
        grant_refs: Uint32Array.from([5, 9, 2]),
      },
      { type: "CLIPBOARD_DATA", window: 0, data: new TextEncoder().encode("copied") },
      { type: "DESTROY", window: id },
    ]);
  });

  it("puts a pre-1.2 clipboard's length in the window field too", () => {
    expect(agentMessage.clipboardData(Uint8Array.of(1, 2, 3), 0x00010001)).toEqual(
      fromHex("8c000000 03000000 03000000 010203"),
    );
  });

  it("sends a title that fills all 128 bytes without a NUL, and refuses a longer one", () => {
    const full = new Uint8Array(128).fill(0x41);
    expect(agentMessage.wmname(1, full).subarray(12)).toEqual(full);
    expect(() => agentMessage.wmname(1, new Uint8Array(129))).toThrow(RangeError);
  });

  it("delivers a split send in separate reads that still decode whole", async () => {
    const { peer, daemon } = await connected();
    const create = agentMessage.create(3, { x: 0, y: 0, width: 8, height: 8 });
    const map = agentMessage.map(3);
    const readsBefore = daemon.reads;
    await peer.sendSplit(concat(create, map), [1, 11, 13]);
    expect(await daemon.waitForMessages(2)).toEqual([
      { type: "CREATE", window: 3, x: 0, y: 0, width: 8, height: 8, parent: 0, override_redirect: 0 },
      { type: "MAP", window: 3, transient_for: 0, override_redirect: 0 },
    ]);
    expect(daemon.reads - readsBefore).toBe(4);
  });

  it("refuses chunk sizes past the end of the bytes", async () => {
    const { peer } = await connected();
    await expect(peer.sendSplit(new Uint8Array(4), [3, 2])).rejects.toThrow(RangeError);
  });

  it("sends a WINDOW_DUMP larger than the vchan's write ring whole", async () => {
    const { peer, daemon } = await connected();
    const refs = Array.from({ length: 5000 }, (_, i) => i * 3);
    peer.windowDump(1, 100, 100, refs);
    await peer.whenSent(5000);
    const [dump] = await daemon.waitForMessages(1);
    expect(dump).toMatchObject({ type: "WINDOW_DUMP", grant_refs: Uint32Array.from(refs) });
  });
});

describe("the agent peer's framebuffers", () => {
  it("grants refs that map on the GUI side as one run showing the drawn BGRX pixels", async () => {
    const { peer, daemon } = await connected();
    const fb = peer.framebuffer(64, 40);
    expect(fb.refs).toHaveLength(3);
    expect(fb.stride).toBe(256);
    fb.fill(0x112233);
    fb.fillRect(10, 20, 5, 5, 0x445566);
    fb.setPixel(63, 39, 0xaabbcc);
    const grants = await daemon.attachGrants();
    const mapping = grants.map(agentDomain, fb.refs);
    expect(mapping.contiguous).not.toBeNull();
    const seen = new Uint8Array(mapping.buffer, 0, fb.pixels.length);
    expect(Array.from(seen.subarray(0, 4))).toEqual([0x33, 0x22, 0x11, 0]);
    expect(Array.from(seen.subarray((20 * 64 + 10) * 4, (20 * 64 + 10) * 4 + 4))).toEqual([0x66, 0x55, 0x44, 0]);
    expect(Array.from(seen.subarray((39 * 64 + 63) * 4))).toEqual([0xcc, 0xbb, 0xaa, 0]);
    expect(seen).toEqual(fb.pixels);
  });

  it("grants scattered refs that are no run of the pool and still show the image in page order", async () => {
    const { peer, daemon } = await connected();
    const fb = peer.framebuffer(64, 40, { scattered: true });
    expect(fb.scattered).toBe(true);
    expect(fb.refs).toHaveLength(3);
    expect(fb.refs.every((ref, i) => ref === (fb.refs[0] as number) + i)).toBe(false);
    // Every row a different colour: a page out of order would show the wrong rows.
    for (let y = 0; y < 40; y++) fb.fillRect(0, y, 64, 1, 0x010000 * y + 0x0100 * (40 - y) + 7);
    fb.setPixel(0, 16, 0xfedcba);
    const grants = await daemon.attachGrants();
    const mapping = grants.map(agentDomain, fb.refs);
    expect(mapping.contiguous).toBeNull();
    const seen = new Uint8Array(mapping.buffer, 0, fb.pixels.length);
    expect(seen).toEqual(fb.pixels);
    // Row 16 starts on the second page (16 × 256 = 4096).
    expect(Array.from(seen.subarray(4096, 4100))).toEqual([0xba, 0xdc, 0xfe, 0]);
    expect(fb.pixel(5, 39)).toBe(0x270107);
    expect(Array.from(seen.subarray((39 * 64 + 5) * 4, (39 * 64 + 5) * 4 + 4))).toEqual([7, 1, 39, 0]);
  });

  it("gives even a one-pixel scattered framebuffer two refs that are no run", async () => {
    const { peer, daemon } = await connected();
    const fb = peer.framebuffer(1, 1, { scattered: true });
    expect(fb.refs).toHaveLength(2);
    const grants = await daemon.attachGrants();
    const mapping = grants.map(agentDomain, fb.refs);
    expect(mapping.contiguous).toBeNull();
  });

  it("revokes a framebuffer: its refs no longer map and its pixels are gone", async () => {
    const { peer, daemon } = await connected();
    const fb = peer.framebuffer(8, 8, { scattered: true });
    const grants = await daemon.attachGrants();
    peer.revoke(fb);
    expect(fb.pixels.length).toBe(0);
    expect(() => grants.map(agentDomain, fb.refs)).toThrow(ShmError);
    expect(() => peer.revoke(fb)).toThrow(/not live/);
  });

  it("refuses a pixel outside the image", async () => {
    const peer = await listen();
    const fb = peer.framebuffer(4, 4);
    expect(() => fb.setPixel(4, 0, 0)).toThrow(RangeError);
    expect(() => fb.fillRect(2, 2, 3, 1, 0)).toThrow(RangeError);
  });
});

describe("the agent peer's receiving side", () => {
  it("counts WINDOW_DUMP_ACKs and DESTROY acks and keeps every message", async () => {
    const { peer, daemon } = await connected();
    daemon.send({ type: "WINDOW_DUMP_ACK", window: 4 });
    daemon.send({ type: "KEYPRESS", window: 4, event_type: 2, x: 1, y: 2, state: 0, keycode: 38 });
    daemon.send({ type: "WINDOW_DUMP_ACK", window: 4 });
    daemon.send({ type: "DESTROY", window: 4 });
    await peer.waitFor(() => peer.destroyAcks === 1, "a DESTROY ack");
    expect(peer.windowDumpAcks).toBe(2);
    expect(peer.received.map((m) => m.type)).toEqual(["WINDOW_DUMP_ACK", "KEYPRESS", "WINDOW_DUMP_ACK", "DESTROY"]);
    expect(await peer.waitForMessage("KEYPRESS", 4)).toMatchObject({ keycode: 38 });
    expect(peer.errors).toEqual([]);
  });

  it("answers a CLIPBOARD_REQ with the configured bytes", async () => {
    const { daemon } = await connected({ answerClipboard: () => new TextEncoder().encode("secret") });
    daemon.send({ type: "CLIPBOARD_REQ", window: 0 });
    expect(await daemon.waitForMessages(1)).toEqual([
      { type: "CLIPBOARD_DATA", window: 0, data: new TextEncoder().encode("secret") },
    ]);
  });

  it("leaves a CLIPBOARD_REQ unanswered when no answer is configured", async () => {
    const { peer, daemon } = await connected();
    daemon.send({ type: "CLIPBOARD_REQ", window: 0 });
    await peer.waitForMessage("CLIPBOARD_REQ");
    peer.cursor(1, 0);
    expect((await daemon.waitForMessages(1))[0]?.type).toBe("CURSOR");
  });

  it("times out naming what it waited for and the last messages received", async () => {
    const { peer, daemon } = await connected();
    daemon.send({ type: "WINDOW_DUMP_ACK", window: 1 });
    await peer.waitForMessage("WINDOW_DUMP_ACK");
    await expect(peer.waitFor(() => false, "a CLOSE", 50)).rejects.toThrow(
      "timed out after 50 ms waiting for a CLOSE; received: WINDOW_DUMP_ACK",
    );
    await expect(peer.whenDisconnected(50)).rejects.toThrow("the daemon did not disconnect within 50 ms");
  });
});

describe("the agent peer across daemons", () => {
  it("sees the daemon go away, rejects waits, and serves the next daemon with the same grants", async () => {
    const { peer, daemon } = await connected();
    const fb = peer.framebuffer(16, 16);
    fb.fill(0x00ff00);
    const waiting = peer.waitFor(() => false, "a CLOSE");
    daemon.close();
    await peer.whenDisconnected(5000);
    expect(peer.closed).toBe(true);
    await expect(waiting).rejects.toThrow(/the daemon went away while waiting for a CLOSE/);
    peer.create(1, { x: 0, y: 0, width: 1, height: 1 });
    expect(peer.bytesDropped).toBe(36);

    peer.relisten();
    expect(peer.closed).toBe(false);
    const [second] = await Promise.all([connectMiniDaemon(), peer.handshake(5000)]);
    expect(peer.received).toEqual([]);
    const grants = await second.attachGrants();
    const mapping = grants.map(agentDomain, fb.refs);
    expect(Array.from(new Uint8Array(mapping.buffer, 0, 4))).toEqual([0, 0xff, 0, 0]);
    peer.create(2, { x: 0, y: 0, width: 1, height: 1 });
    expect(await second.waitForMessages(1)).toMatchObject([{ type: "CREATE", window: 2 }]);
  });

  it("refuses to relisten while the daemon is connected", async () => {
    const { peer } = await connected();
    expect(() => peer.relisten()).toThrow(/still connected/);
  });

  it("closes every fd it opened", async () => {
    const before = openFds();
    const peer = await listenAgentPeer({ agentDomain, guiDomain, socketDir: dir.dir });
    cleanups.push(() => peer.close());
    const daemon = await Promise.all([connectMiniDaemon(), peer.handshake(5000)]).then(([d]) => d);
    const grants = await daemon.attachGrants();
    const fb = peer.framebuffer(32, 64, { scattered: true });
    grants.unmap(grants.map(agentDomain, fb.refs));
    for (const cleanup of cleanups.splice(0).reverse()) cleanup();
    expect(openFds()).toBe(before);
    expect(peer.closed).toBe(true);
    expect(readdirSync(dir.dir)).toEqual([]);
  });
});
