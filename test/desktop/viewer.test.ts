/**
 * The desktop viewer: its access control, screenshot, wire format,
 * backpressure and hostile-input handling against raw HTTP and WebSocket
 * clients, and the page itself in a real browser (chromium).
 */
import { readFileSync } from "node:fs";
import { request as httpRequest, type IncomingHttpHeaders } from "node:http";

import pino from "pino";
import type { Page } from "playwright-core";
import sharp from "sharp";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { WebSocket, type RawData } from "ws";

import type { Rect } from "../../compositor/index.ts";
import { KEY, KEYCODES_BY_DOM_CODE } from "../../desktop/keycodes.ts";
import type { ViewerInput, ViewerOutput } from "../../desktop/viewer-api.ts";
import { coalesceDamage } from "../../compositor/index.ts";
import { MAX_UNACKED_FRAMES, startViewer, type FrameShown, type Viewer } from "../../desktop/viewer.ts";
import { Signal } from "../../wayland/index.ts";
import { BROWSER_LAUNCH_TIMEOUT_MS, launchBrowser, type TestBrowser } from "../helpers/browser.ts";
import { within } from "../helpers/processes.ts";

/** Bound on one event a test waits for (ms), once everything involved is running. */
const EVENT_MS = 5_000;

const log = pino({ level: "silent" });

/** A test-owned output: a buffer the test paints, and the signals it emits. */
class TestOutput implements ViewerOutput {
  width: number;
  height: number;
  pixels: Buffer;
  readonly events = {
    frame: new Signal<{ damage: readonly Rect[]; commitTimeNs: bigint | null }>(),
    cursor: new Signal<string>(),
  };

  constructor(width: number, height: number) {
    this.width = width;
    this.height = height;
    this.pixels = Buffer.alloc(width * height * 4);
    this.paintPattern();
  }

  /** Every pixel a different colour (B, G, R from its position), pad byte 0. */
  paintPattern(): void {
    for (let y = 0; y < this.height; y++) {
      for (let x = 0; x < this.width; x++) {
        const i = (y * this.width + x) * 4;
        this.pixels[i] = (x * 7 + y) & 0xff;
        this.pixels[i + 1] = (y * 5 + 3) & 0xff;
        this.pixels[i + 2] = (x ^ y) & 0xff;
        this.pixels[i + 3] = 0;
      }
    }
  }

  /** Fills `rect` with one colour (0xRRGGBB), pad byte 0x5a (not alpha: must not matter). */
  fill(rect: Rect, rgb: number): void {
    for (let y = rect.y; y < rect.y + rect.height; y++) {
      for (let x = rect.x; x < rect.x + rect.width; x++) {
        const i = (y * this.width + x) * 4;
        this.pixels[i] = rgb & 0xff;
        this.pixels[i + 1] = (rgb >> 8) & 0xff;
        this.pixels[i + 2] = (rgb >> 16) & 0xff;
        this.pixels[i + 3] = 0x5a;
      }
    }
  }

  /** The colour at (x, y) as 0xRRGGBB. */
  rgbAt(x: number, y: number): number {
    const i = (y * this.width + x) * 4;
    return ((this.pixels[i + 2] as number) << 16) | ((this.pixels[i + 1] as number) << 8) | (this.pixels[i] as number);
  }

  resize(width: number, height: number): void {
    this.width = width;
    this.height = height;
    this.pixels = Buffer.alloc(width * height * 4);
    this.paintPattern();
  }
}

type InputCall =
  | ["pointerMove", number, number]
  | ["pointerLeave"]
  | ["pointerButton", number, boolean]
  | ["pointerAxis", number, number]
  | ["key", number, boolean]
  | ["releaseAll"];

/** A ViewerInput that records every call, and lets a test wait for calls. */
class RecordingInput implements ViewerInput {
  readonly calls: InputCall[] = [];
  private readonly waiters = new Set<() => void>();

  private record(call: InputCall): void {
    this.calls.push(call);
    for (const waiter of [...this.waiters]) waiter();
  }
  pointerMove(x: number, y: number): void {
    this.record(["pointerMove", x, y]);
  }
  pointerLeave(): void {
    this.record(["pointerLeave"]);
  }
  pointerButton(code: number, pressed: boolean): void {
    this.record(["pointerButton", code, pressed]);
  }
  pointerAxis(axis: 0 | 1, discrete: number): void {
    this.record(["pointerAxis", axis, discrete]);
  }
  key(code: number, pressed: boolean): void {
    this.record(["key", code, pressed]);
  }
  releaseAll(): void {
    this.record(["releaseAll"]);
  }

  /** Resolves once `done(calls)` holds (checked on every call), within EVENT_MS. */
  until(done: (calls: readonly InputCall[]) => boolean, what: string): Promise<void> {
    if (done(this.calls)) return Promise.resolve();
    let waiter: () => void = () => undefined;
    const reached = new Promise<void>((resolve) => {
      waiter = () => {
        if (!done(this.calls)) return;
        this.waiters.delete(waiter);
        resolve();
      };
      this.waiters.add(waiter);
    });
    return within(reached, EVENT_MS, what).finally(() => this.waiters.delete(waiter));
  }

  clear(): void {
    this.calls.length = 0;
  }
}

/** The calls of a kind, e.g. only the key calls. */
function callsOf(calls: readonly InputCall[], kind: InputCall[0]): InputCall[] {
  return calls.filter((call) => call[0] === kind);
}

// --- HTTP and WebSocket clients -------------------------------------------------

interface HttpAnswer {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

function get(url: string, headers: Record<string, string> = {}): Promise<HttpAnswer> {
  return within(
    new Promise((resolve, reject) => {
      const req = httpRequest(url, { headers }, (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (chunk: Buffer) => chunks.push(chunk));
        res.on("end", () =>
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }),
        );
        res.on("error", reject);
      });
      req.on("error", reject);
      req.end();
    }),
    EVENT_MS,
    `GET ${url}`,
  );
}

/** Opens a WebSocket; resolves with it once open, or with the HTTP status the server refused it with. */
function openSocket(url: string, headers: Record<string, string> = {}): Promise<WebSocket | number> {
  return within(
    new Promise((resolve, reject) => {
      const ws = new WebSocket(url, { headers });
      ws.once("open", () => resolve(ws));
      ws.once("unexpected-response", (_req, res) => {
        resolve(res.statusCode ?? 0);
        res.resume();
        ws.terminate();
      });
      ws.once("error", reject);
    }),
    EVENT_MS,
    `WebSocket ${url}`,
  );
}

/** A decoded server → browser binary frame (decoded here, independently of the encoder). */
interface DecodedFrame {
  seq: number;
  rects: Array<Rect & { pixels: Buffer }>;
}

function decodeFrame(data: Buffer): DecodedFrame {
  const seq = data.readUInt32LE(0);
  const count = data.readUInt32LE(4);
  const rects: DecodedFrame["rects"] = [];
  let offset = 8;
  for (let i = 0; i < count; i++) {
    const x = data.readUInt32LE(offset);
    const y = data.readUInt32LE(offset + 4);
    const width = data.readUInt32LE(offset + 8);
    const height = data.readUInt32LE(offset + 12);
    offset += 16;
    rects.push({ x, y, width, height, pixels: data.subarray(offset, offset + width * height * 4) });
    offset += width * height * 4;
  }
  expect(offset).toBe(data.length);
  return { seq, rects };
}

type ServerMessage = { kind: "text"; json: Record<string, unknown> } | { kind: "frame"; frame: DecodedFrame };

/** A raw WebSocket client that queues what the server sends. */
class RawClient {
  readonly messages: ServerMessage[] = [];
  closeCode: number | undefined;
  private readonly waiters = new Set<() => void>();

  constructor(readonly ws: WebSocket) {
    ws.on("message", (data: RawData, isBinary: boolean) => {
      const bytes = data as Buffer;
      this.messages.push(
        isBinary
          ? { kind: "frame", frame: decodeFrame(bytes) }
          : { kind: "text", json: JSON.parse(bytes.toString("utf8")) as Record<string, unknown> },
      );
      this.wake();
    });
    ws.on("close", (code: number) => {
      this.closeCode = code;
      this.wake();
    });
  }

  private wake(): void {
    for (const waiter of [...this.waiters]) waiter();
  }

  /** Resolves once `done()` holds, within EVENT_MS. */
  until(done: () => boolean, what: string): Promise<void> {
    if (done()) return Promise.resolve();
    let waiter: () => void = () => undefined;
    const reached = new Promise<void>((resolve) => {
      waiter = () => {
        if (done()) resolve();
      };
      this.waiters.add(waiter);
    });
    return within(reached, EVENT_MS, what).finally(() => this.waiters.delete(waiter));
  }

  frames(): DecodedFrame[] {
    return this.messages.flatMap((message) => (message.kind === "frame" ? [message.frame] : []));
  }

  texts(): Array<Record<string, unknown>> {
    return this.messages.flatMap((message) => (message.kind === "text" ? [message.json] : []));
  }

  send(message: unknown): void {
    this.ws.send(typeof message === "string" ? message : JSON.stringify(message));
  }
}

async function rawClient(viewer: Viewer): Promise<RawClient> {
  // Listening from the start: the server speaks first, as soon as the socket opens.
  const client = new RawClient(new WebSocket(wsUrl(viewer)));
  await within(
    new Promise<void>((resolve, reject) => {
      client.ws.once("open", () => resolve());
      client.ws.once("error", reject);
    }),
    EVENT_MS,
    "the WebSocket's opening",
  );
  return client;
}

function wsUrl(viewer: Viewer, token: string | null = viewer.token): string {
  return `ws://127.0.0.1:${viewer.port}/ws${token === null ? "" : `?token=${token}`}`;
}

function httpUrl(viewer: Viewer, path: string, token: string | null = viewer.token): string {
  return `http://127.0.0.1:${viewer.port}${path}${token === null ? "" : `?token=${token}`}`;
}

/** Checks that every pixel of `rect` in a decoded frame equals the output's. */
function expectRectMatches(output: TestOutput, rect: DecodedFrame["rects"][number]): void {
  for (let y = 0; y < rect.height; y++) {
    const from = ((rect.y + y) * output.width + rect.x) * 4;
    const row = rect.pixels.subarray(y * rect.width * 4, (y + 1) * rect.width * 4);
    expect(row.equals(output.pixels.subarray(from, from + rect.width * 4))).toBe(true);
  }
}

// --- Viewer per test --------------------------------------------------------------

let viewers: Viewer[] = [];
let sockets: WebSocket[] = [];

async function setUp(width = 64, height = 48): Promise<{ viewer: Viewer; output: TestOutput; input: RecordingInput }> {
  const output = new TestOutput(width, height);
  const input = new RecordingInput();
  const viewer = await startViewer({ output, input, log });
  viewers.push(viewer);
  return { viewer, output, input };
}

afterEach(async () => {
  for (const ws of sockets) ws.terminate();
  sockets = [];
  await Promise.all(viewers.map((viewer) => within(viewer.close(), EVENT_MS, "viewer close")));
  viewers = [];
});

async function track(client: Promise<RawClient>): Promise<RawClient> {
  const resolved = await client;
  sockets.push(resolved.ws);
  return resolved;
}

describe("viewer access", () => {
  it("refuses /, /screenshot.png and the WebSocket without the token or with a wrong one", async () => {
    const { viewer } = await setUp();
    const wrong = "A".repeat(viewer.token.length);
    for (const token of [null, wrong, "", viewer.token.slice(0, -1)]) {
      for (const path of ["/", "/screenshot.png", "/nothing"]) {
        const answer = await get(httpUrl(viewer, path, token));
        expect(answer.status, `${path} with token ${String(token)}`).toBe(401);
        expect(answer.headers["content-type"]).toMatch(/^text\/plain/);
        expect(answer.headers["set-cookie"]).toBeUndefined();
        expect(answer.body.toString()).not.toContain("<");
      }
      expect(await openSocket(wsUrl(viewer, token))).toBe(401);
    }
    const wrongCookie = { cookie: `qubes_desktop_${viewer.port}=${wrong}` };
    expect((await get(httpUrl(viewer, "/", null), wrongCookie)).status).toBe(401);
    expect(await openSocket(wsUrl(viewer, null), wrongCookie)).toBe(401);
  });

  it("serves the page with the query token, sets the cookie, and then accepts the cookie alone", async () => {
    const { viewer } = await setUp();
    const page = await get(viewer.url);
    expect(page.status).toBe(200);
    expect(page.headers["content-type"]).toBe("text/html; charset=utf-8");
    expect(page.headers["cache-control"]).toBe("no-store");
    expect(page.headers["content-security-policy"]).toMatch(/default-src 'none'/);
    expect(page.headers["content-security-policy"]).not.toMatch(/unsafe-inline/);
    expect(page.body.toString()).toContain("<canvas");
    const setCookie = page.headers["set-cookie"]?.[0] ?? "";
    expect(setCookie).toBe(`qubes_desktop_${viewer.port}=${viewer.token}; HttpOnly; SameSite=Strict; Path=/`);
    const cookie = { cookie: setCookie.split(";")[0] as string };

    expect((await get(httpUrl(viewer, "/", null), cookie)).status).toBe(200);
    expect((await get(httpUrl(viewer, "/screenshot.png", null), cookie)).status).toBe(200);
    expect((await get(httpUrl(viewer, "/etc/passwd", null), cookie)).status).toBe(404);
    expect((await get(httpUrl(viewer, "/../package.json"))).status).toBe(404);
    const ws = await openSocket(wsUrl(viewer, null), cookie);
    expect(ws).toBeInstanceOf(WebSocket);
    sockets.push(ws as WebSocket);
    const withQuery = await openSocket(wsUrl(viewer));
    expect(withQuery).toBeInstanceOf(WebSocket);
    sockets.push(withQuery as WebSocket);
  });

  it("refuses a WebSocket from a foreign Origin, and accepts its own", async () => {
    const { viewer } = await setUp();
    for (const origin of [
      "http://evil.example",
      `http://evil.example:${viewer.port}`,
      "null",
      `https://127.0.0.1:${viewer.port}`,
    ]) {
      expect(await openSocket(wsUrl(viewer), { origin }), origin).toBe(403);
    }
    const own = await openSocket(wsUrl(viewer), { origin: `http://127.0.0.1:${viewer.port}` });
    expect(own).toBeInstanceOf(WebSocket);
    sockets.push(own as WebSocket);
  });

  it("serves /screenshot.png as exactly the output's pixels, opaque", async () => {
    const { viewer, output } = await setUp(37, 23);
    output.fill({ x: 3, y: 4, width: 5, height: 6 }, 0x3465a4);
    const answer = await get(httpUrl(viewer, "/screenshot.png"));
    expect(answer.status).toBe(200);
    expect(answer.headers["content-type"]).toBe("image/png");
    const { data, info } = await sharp(answer.body).raw().toBuffer({ resolveWithObject: true });
    expect([info.width, info.height]).toEqual([37, 23]);
    const channels = info.channels;
    for (let y = 0; y < 23; y++) {
      for (let x = 0; x < 37; x++) {
        const i = (y * 37 + x) * channels;
        const rgb = ((data[i] as number) << 16) | ((data[i + 1] as number) << 8) | (data[i + 2] as number);
        expect(rgb, `pixel ${x},${y}`).toBe(output.rgbAt(x, y));
        if (channels === 4) expect(data[i + 3]).toBe(255);
      }
    }
  });
});

describe("viewer wire format", () => {
  it("sends a hello, the cursor and the whole output first, then only the damaged regions", async () => {
    const { viewer, output } = await setUp(64, 48);
    const client = await track(rawClient(viewer));
    await client.until(() => client.frames().length === 1, "the first frame");
    expect(client.texts()).toEqual([
      { type: "hello", width: 64, height: 48 },
      { type: "cursor", cursor: "default" },
    ]);
    const first = client.frames()[0] as DecodedFrame;
    expect(first.seq).toBe(0);
    expect(first.rects.map(({ x, y, width, height }) => ({ x, y, width, height }))).toEqual([
      { x: 0, y: 0, width: 64, height: 48 },
    ]);
    expectRectMatches(output, first.rects[0] as DecodedFrame["rects"][number]);
    client.send({ type: "ack", seq: 0 });

    const region = { x: 10, y: 5, width: 7, height: 3 };
    output.fill(region, 0xff0000);
    output.events.frame.emit({ damage: [region, { x: 60, y: 40, width: 100, height: 100 }], commitTimeNs: 5n });
    await client.until(() => client.frames().length === 2, "the damage frame");
    const second = client.frames()[1] as DecodedFrame;
    expect(second.seq).toBe(1);
    // Both regions travel, the second clipped to the output; on a 64×48 output the two are close
    // enough to go as their union (compositor/'s coalescing: little waste, fewer rectangles).
    expect(second.rects.map(({ x, y, width, height }) => ({ x, y, width, height }))).toEqual([
      { x: 10, y: 5, width: 54, height: 43 },
    ]);
    for (const rect of second.rects) expectRectMatches(output, rect);
  });

  it("emits frameShown with the frame's commit time when the browser acknowledges it", async () => {
    const { viewer, output } = await setUp();
    const shown: FrameShown[] = [];
    viewer.frameShown.add((frame) => shown.push(frame));
    const client = await track(rawClient(viewer));
    await client.until(() => client.frames().length === 1, "the first frame");
    client.send({ type: "ack", seq: 0 });
    output.events.frame.emit({ damage: [{ x: 0, y: 0, width: 1, height: 1 }], commitTimeNs: 1234n });
    await client.until(() => client.frames().length === 2, "the damage frame");
    const before = process.hrtime.bigint();
    client.send({ type: "ack", seq: 1 });
    await within(
      new Promise<void>((resolve) => viewer.frameShown.add((frame) => frame.seq === 1 && resolve())),
      EVENT_MS,
      "frameShown of seq 1",
    );
    expect(shown.map(({ seq, commitTimeNs }) => ({ seq, commitTimeNs }))).toEqual([
      { seq: 0, commitTimeNs: null },
      { seq: 1, commitTimeNs: 1234n },
    ]);
    expect((shown[1] as FrameShown).shownNs > before).toBe(true);
  });

  it("sends a new hello and the whole output when the output's size changes", async () => {
    const { viewer, output } = await setUp(32, 16);
    const client = await track(rawClient(viewer));
    await client.until(() => client.frames().length === 1, "the first frame");
    client.send({ type: "ack", seq: 0 });
    output.resize(40, 20);
    output.events.frame.emit({ damage: [{ x: 0, y: 0, width: 2, height: 2 }], commitTimeNs: null });
    await client.until(() => client.frames().length === 2, "the frame of the new size");
    expect(client.texts().filter((text) => text.type === "hello")).toEqual([
      { type: "hello", width: 32, height: 16 },
      { type: "hello", width: 40, height: 20 },
    ]);
    const frame = client.frames()[1] as DecodedFrame;
    expect(frame.rects.map(({ x, y, width, height }) => ({ x, y, width, height }))).toEqual([
      { x: 0, y: 0, width: 40, height: 20 },
    ]);
    expectRectMatches(output, frame.rects[0] as DecodedFrame["rects"][number]);
  });

  it("holds a client that does not acknowledge to a bounded number of frames, then catches it up with one merged frame", async () => {
    const { viewer, output } = await setUp(64, 48);
    const slow = await track(rawClient(viewer));
    await slow.until(() => slow.frames().length === 1, "the first frame");
    const painted: Rect[] = [];
    for (let i = 0; i < 50; i++) {
      const rect = { x: i % 60, y: i % 40, width: 4, height: 4 };
      painted.push(rect);
      output.fill(rect, 0x010203 * (i + 1));
      output.events.frame.emit({ damage: [rect], commitTimeNs: BigInt(1000 + i) });
    }
    // The cursor message travels behind every frame already sent: once it is here, nothing else is on the way.
    output.events.cursor.emit("text");
    await slow.until(() => slow.texts().some((text) => text.cursor === "text"), "the cursor message");
    expect(slow.frames().length).toBe(MAX_UNACKED_FRAMES);

    const shown: FrameShown[] = [];
    viewer.frameShown.add((frame) => shown.push(frame));
    slow.send({ type: "ack", seq: MAX_UNACKED_FRAMES - 1 });
    await slow.until(() => slow.frames().length === MAX_UNACKED_FRAMES + 1, "the catch-up frame");
    const catchUp = slow.frames()[MAX_UNACKED_FRAMES] as DecodedFrame;
    expect(catchUp.seq).toBe(MAX_UNACKED_FRAMES);
    expect(catchUp.rects.length).toBeLessThanOrEqual(16);
    for (const rect of catchUp.rects) expectRectMatches(output, rect);
    // Every rectangle painted after the frames in flight is covered by the catch-up frame.
    for (const rect of painted.slice(1)) {
      for (const [px, py] of [
        [rect.x, rect.y],
        [rect.x + rect.width - 1, rect.y + rect.height - 1],
      ] as const) {
        expect(
          catchUp.rects.some((r) => px >= r.x && px < r.x + r.width && py >= r.y && py < r.y + r.height),
          `pixel ${px},${py}`,
        ).toBe(true);
      }
    }
    expect(shown.map((frame) => frame.seq)).toEqual([0, 1]);
    slow.send({ type: "ack", seq: MAX_UNACKED_FRAMES });
    await within(
      new Promise<void>((resolve) => viewer.frameShown.add((frame) => frame.seq === MAX_UNACKED_FRAMES && resolve())),
      EVENT_MS,
      "frameShown of the catch-up frame",
    );
    // The merged frame reports the earliest commit merged into it.
    expect(shown.at(-1)?.commitTimeNs).toBe(1001n);
  });

  it("shows only known CSS cursors", async () => {
    const { viewer, output } = await setUp();
    const client = await track(rawClient(viewer));
    await client.until(() => client.frames().length === 1, "the first frame");
    output.events.cursor.emit("url(http://evil.example/x.png), auto");
    output.events.cursor.emit("pointer");
    await client.until(() => client.texts().some((text) => text.cursor === "pointer"), "the pointer cursor");
    expect(client.texts().map((text) => text.cursor)).toEqual([undefined, "default", "pointer"]);
  });
});

describe("viewer input from a hostile browser", () => {
  it("drops malformed messages without an input call and keeps the connection", async () => {
    const { viewer, input } = await setUp(64, 48);
    const client = await track(rawClient(viewer));
    await client.until(() => client.frames().length === 1, "the first frame");
    const hostile: unknown[] = [
      [],
      null,
      42,
      "move",
      {},
      { type: "nope" },
      { type: "__proto__" },
      { type: "move", x: "1", y: 2 },
      { type: "move", x: 1 },
      { type: "move", x: 2 ** 31, y: 0 },
      { type: "move", x: 0, y: 2 ** 32 - 1 },
      { type: "move", x: -(2 ** 31), y: 0 },
      { type: "move", x: 1e308, y: 0 },
      { type: "button", x: 1, y: 1, button: 3, pressed: true },
      { type: "button", x: 1, y: 1, button: -1, pressed: true },
      { type: "button", x: 1, y: 1, button: 0.5, pressed: true },
      { type: "button", x: 1, y: 1, button: 0, pressed: 1 },
      { type: "wheel", x: 1, y: 1, axis: 2, steps: 1 },
      { type: "wheel", x: 1, y: 1, axis: 0, steps: 0 },
      { type: "wheel", x: 1, y: 1, axis: 0, steps: 2 ** 31 },
      { type: "wheel", x: 1, y: 1, axis: 0, steps: 1.5 },
      { type: "key", code: "__proto__", pressed: true },
      { type: "key", code: "constructor", pressed: true },
      { type: "key", code: "KeyA", pressed: "yes" },
      { type: "key", code: 30, pressed: true },
      { type: "key", code: "K".repeat(10_000), pressed: true },
      { type: "ack", seq: -1 },
      { type: "ack", seq: 2 ** 32 },
      { type: "ack", seq: 77 },
    ];
    for (const message of hostile) client.send(JSON.stringify(message));
    // In order on one connection: once this arrives, every message before it was handled.
    client.send({ type: "move", x: -1, y: 5000 });
    await input.until((calls) => calls.length > 0, "the valid move");
    expect(input.calls).toEqual([["pointerMove", 0, 47]]);
    expect(client.closeCode).toBeUndefined();
  });

  it("disconnects a client that sends garbage, binary or oversize messages, and keeps serving the others", async () => {
    const { viewer, output, input } = await setUp();
    const other = await track(rawClient(viewer));
    await other.until(() => other.frames().length === 1, "the other client's first frame");
    other.send({ type: "ack", seq: 0 });

    const cases: Array<{ send: (ws: WebSocket) => void; code: number }> = [
      { send: (ws) => ws.send("{not json"), code: 1008 },
      { send: (ws) => ws.send('{"type":"move","x":NaN,"y":0}'), code: 1008 },
      { send: (ws) => ws.send(Buffer.from([1, 2, 3]), { binary: true }), code: 1003 },
      { send: (ws) => ws.send(JSON.stringify({ type: "leave", pad: "x".repeat(70 * 1024) })), code: 1009 },
    ];
    for (const { send, code } of cases) {
      const hostile = await track(rawClient(viewer));
      send(hostile.ws);
      await hostile.until(() => hostile.closeCode !== undefined, "the hostile client's disconnection");
      expect(hostile.closeCode).toBe(code);
    }
    expect(input.calls).toEqual([]);

    output.events.frame.emit({ damage: [{ x: 1, y: 1, width: 2, height: 2 }], commitTimeNs: null });
    await other.until(() => other.frames().length === 2, "the other client's next frame");
    other.send({ type: "key", code: "KeyA", pressed: true });
    await input.until((calls) => calls.length === 1, "the other client's key");
    expect(input.calls).toEqual([["key", KEY.KEY_A, true]]);
  });

  it("releases what a client held when it disconnects", async () => {
    const { viewer, input } = await setUp();
    const client = await track(rawClient(viewer));
    client.send({ type: "key", code: "ShiftLeft", pressed: true });
    client.send({ type: "button", x: 3, y: 4, button: 2, pressed: true });
    await input.until((calls) => calls.length === 3, "the key and the button");
    client.ws.close();
    await input.until((calls) => calls.length === 4, "the release");
    expect(input.calls).toEqual([
      ["key", KEY.KEY_LEFTSHIFT, true],
      ["pointerMove", 3, 4],
      ["pointerButton", 0x111, true],
      ["releaseAll"],
    ]);
  });

  it("ends every connection on close(), and refuses new ones", async () => {
    const { viewer } = await setUp();
    const client = await track(rawClient(viewer));
    await within(viewer.close(), EVENT_MS, "viewer close");
    await client.until(() => client.closeCode !== undefined, "the client's disconnection");
    expect(client.closeCode).toBe(1001);
    await expect(openSocket(wsUrl(viewer))).rejects.toThrow();
  });
});

describe("viewer parts", () => {
  it("maps every KeyboardEvent.code to the value of its kernel name in linux/input-event-codes.h", () => {
    const header = readFileSync("/usr/include/linux/input-event-codes.h", "utf8");
    const defined = new Map<string, number>();
    for (const match of header.matchAll(/^#define\s+(KEY_\w+)\s+(0x[0-9a-fA-F]+|\d+)\b/gm)) {
      defined.set(match[1] as string, Number(match[2]));
    }
    for (const [name, value] of Object.entries(KEY)) expect(defined.get(name), name).toBe(value);
    expect(KEYCODES_BY_DOM_CODE.KeyA).toBe(30);
    expect(KEYCODES_BY_DOM_CODE.ControlLeft).toBe(29);
    expect(KEYCODES_BY_DOM_CODE.F24).toBe(194);
    expect(KEYCODES_BY_DOM_CODE.__proto__).toBeUndefined();
    expect(Object.keys(KEYCODES_BY_DOM_CODE).length).toBeGreaterThan(150);
  });

  it("coalesces damage: clips, merges adjacent and overlapping rectangles, and caps the count", () => {
    const bounds = { x: 0, y: 0, width: 100, height: 100 };
    expect(coalesceDamage([{ x: -5, y: 90, width: 10, height: 20 }], bounds)).toEqual([
      { x: 0, y: 90, width: 5, height: 10 },
    ]);
    expect(coalesceDamage([{ x: 200, y: 0, width: 10, height: 10 }], bounds)).toEqual([]);
    expect(
      coalesceDamage(
        [
          { x: 0, y: 0, width: 10, height: 10 },
          { x: 10, y: 0, width: 10, height: 10 },
          { x: 5, y: 5, width: 10, height: 10 },
        ],
        bounds,
      ),
    ).toEqual([{ x: 0, y: 0, width: 20, height: 15 }]);
    const far = [
      { x: 0, y: 0, width: 2, height: 2 },
      { x: 90, y: 90, width: 2, height: 2 },
    ];
    expect(coalesceDamage(far, { x: 0, y: 0, width: 1000, height: 1000 })).toEqual(far);
    const many: Rect[] = [];
    for (let i = 0; i < 40; i++) many.push({ x: (i % 8) * 120, y: Math.floor(i / 8) * 120, width: 3, height: 3 });
    const capped = coalesceDamage(many, { x: 0, y: 0, width: 1000, height: 1000 });
    expect(capped.length).toBeLessThanOrEqual(16);
    for (const rect of many) {
      expect(
        capped.some(
          (r) => rect.x >= r.x && rect.y >= r.y && rect.x + 3 <= r.x + r.width && rect.y + 3 <= r.y + r.height,
        ),
      ).toBe(true);
    }
  });
});

// --- A real browser -------------------------------------------------------------

describe("viewer page in chromium", () => {
  let browser: TestBrowser | undefined;
  let viewer: Viewer;
  let output: TestOutput;
  let input: RecordingInput;
  let page: Page;
  const WIDTH = 160;
  const HEIGHT = 120;

  beforeAll(async () => {
    browser = await launchBrowser();
  }, BROWSER_LAUNCH_TIMEOUT_MS + 10_000);

  afterAll(async () => {
    await browser?.close();
  }, 30_000);

  async function openPage(): Promise<void> {
    output = new TestOutput(WIDTH, HEIGHT);
    input = new RecordingInput();
    viewer = await startViewer({ output, input, log });
    viewers.push(viewer);
    if (browser === undefined) throw new Error("chromium did not start");
    page = await browser.browser.newPage();
    const errors: string[] = [];
    page.on("pageerror", (error) => errors.push(error.message));
    page.on("console", (message) => {
      if (message.type() === "error" && !message.text().includes("favicon")) errors.push(message.text());
    });
    await page.goto(viewer.url, { timeout: EVENT_MS });
    await pageCondition("window.viewerStats && window.viewerStats.frames >= 1");
    await pageCondition("document.activeElement && document.activeElement.id === 'output'");
    // The token left the address bar; the cookie carries it.
    expect(new URL(page.url()).search).toBe("");
    expect(errors.filter((error) => !error.includes("404"))).toEqual([]);
    input.clear();
  }

  afterEach(async () => {
    await page?.close();
  });

  /**
   * Resolves once `expression` holds in the page, within EVENT_MS. Checked by
   * the page itself (page.evaluate runs outside its CSP, which forbids the
   * eval that page.waitForFunction would need).
   */
  async function pageCondition(expression: string): Promise<void> {
    await within(
      page.evaluate(`new Promise((resolve) => {
        const check = () => ((${expression}) ? resolve(true) : setTimeout(check, 5));
        check();
      })`),
      EVENT_MS,
      `the page condition ${expression}`,
    );
  }

  /** The canvas's pixels as 0xRRGGBB, with any non-opaque pixel reported as -1. */
  async function canvasPixels(): Promise<number[]> {
    return page.evaluate(`(() => {
      const canvas = document.getElementById("output");
      const data = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
      const out = [];
      for (let i = 0; i < data.length; i += 4) out.push(data[i + 3] === 255 ? (data[i] << 16) | (data[i + 1] << 8) | data[i + 2] : -1);
      return out;
    })()`);
  }

  function outputPixels(): number[] {
    const out: number[] = [];
    for (let y = 0; y < HEIGHT; y++) for (let x = 0; x < WIDTH; x++) out.push(output.rgbAt(x, y));
    return out;
  }

  it(
    "draws the output exactly, then only a damaged region, and acknowledges it",
    async () => {
      await openPage();
      expect(
        await page.evaluate("[document.getElementById('output').width, document.getElementById('output').height]"),
      ).toEqual([WIDTH, HEIGHT]);
      expect(await canvasPixels()).toEqual(outputPixels());

      const region = { x: 20, y: 30, width: 40, height: 25 };
      const before = outputPixels();
      output.fill(region, 0x3465a4);
      // Pixels outside the damage change too, but are not announced: the page must not show them.
      output.fill({ x: 100, y: 100, width: 5, height: 5 }, 0x00ff00);
      const shown = within(
        new Promise<FrameShown>((resolve) =>
          viewer.frameShown.add((frame) => frame.commitTimeNs === 42n && resolve(frame)),
        ),
        EVENT_MS,
        "the ack of the damage frame",
      );
      output.events.frame.emit({ damage: [region], commitTimeNs: 42n });
      const frame = await shown;
      expect(frame.shownNs > 42n).toBe(true);
      const after = await canvasPixels();
      for (let y = 0; y < HEIGHT; y++) {
        for (let x = 0; x < WIDTH; x++) {
          const inside = x >= region.x && x < region.x + region.width && y >= region.y && y < region.y + region.height;
          expect(after[y * WIDTH + x], `pixel ${x},${y}`).toBe(inside ? 0x3465a4 : before[y * WIDTH + x]);
        }
      }
    },
    BROWSER_LAUNCH_TIMEOUT_MS,
  );

  it(
    "sends clicks as a move then the button, in output coordinates",
    async () => {
      await openPage();
      await page.mouse.click(10, 20);
      await input.until((calls) => callsOf(calls, "pointerButton").length === 2, "the left click");
      const left = input.calls.slice(input.calls.findIndex((call) => call[0] === "pointerButton") - 1);
      expect(left).toEqual([
        ["pointerMove", 10, 20],
        ["pointerButton", 0x110, true],
        ["pointerMove", 10, 20],
        ["pointerButton", 0x110, false],
      ]);
      input.clear();
      await page.mouse.click(150, 110, { button: "right" });
      await input.until((calls) => callsOf(calls, "pointerButton").length === 2, "the right click");
      expect(callsOf(input.calls, "pointerButton")).toEqual([
        ["pointerButton", 0x111, true],
        ["pointerButton", 0x111, false],
      ]);
      expect(input.calls.filter((call) => call[0] === "pointerMove").at(-1)).toEqual(["pointerMove", 150, 110]);
      input.clear();
      await page.mouse.click(5, 6, { button: "middle" });
      await input.until((calls) => callsOf(calls, "pointerButton").length === 2, "the middle click");
      expect(callsOf(input.calls, "pointerButton")).toEqual([
        ["pointerButton", 0x112, true],
        ["pointerButton", 0x112, false],
      ]);
    },
    BROWSER_LAUNCH_TIMEOUT_MS,
  );

  it(
    "sends keys by physical code, without repeats, and keeps Ctrl+Shift+C from the browser",
    async () => {
      await openPage();
      await page.keyboard.press("KeyA");
      await input.until((calls) => calls.length === 2, "KeyA");
      expect(input.calls).toEqual([
        ["key", KEY.KEY_A, true],
        ["key", KEY.KEY_A, false],
      ]);
      input.clear();

      await page.keyboard.down("KeyB");
      await page.keyboard.down("KeyB"); // a repeat
      await page.keyboard.up("KeyB");
      await input.until((calls) => calls.length >= 2, "KeyB");
      expect(input.calls).toEqual([
        ["key", KEY.KEY_B, true],
        ["key", KEY.KEY_B, false],
      ]);
      input.clear();

      await page.keyboard.press("Control+Shift+KeyC");
      await input.until((calls) => calls.length === 6, "Ctrl+Shift+C");
      expect(input.calls).toEqual([
        ["key", KEY.KEY_LEFTCTRL, true],
        ["key", KEY.KEY_LEFTSHIFT, true],
        ["key", KEY.KEY_C, true],
        ["key", KEY.KEY_C, false],
        ["key", KEY.KEY_LEFTSHIFT, false],
        ["key", KEY.KEY_LEFTCTRL, false],
      ]);
      input.clear();
      await page.keyboard.press("Tab");
      await input.until((calls) => calls.length === 2, "Tab");
      expect(input.calls).toEqual([
        ["key", KEY.KEY_TAB, true],
        ["key", KEY.KEY_TAB, false],
      ]);
      // The page is still the viewer, connected, with the canvas focused (Tab did not move focus).
      expect(page.isClosed()).toBe(false);
      expect(browser?.browser.contexts().flatMap((context) => context.pages()).length).toBe(1);
      expect(await page.evaluate("[window.viewerStats.connected, document.activeElement.id]")).toEqual([
        true,
        "output",
      ]);
    },
    BROWSER_LAUNCH_TIMEOUT_MS,
  );

  it(
    "sends a release-all when the canvas loses the keyboard while a key is down",
    async () => {
      await openPage();
      await page.keyboard.down("ShiftLeft");
      await input.until((calls) => calls.length === 1, "Shift down");
      await page.evaluate("document.getElementById('output').blur()");
      await input.until((calls) => calls.length === 2, "the release-all");
      expect(input.calls).toEqual([["key", KEY.KEY_LEFTSHIFT, true], ["releaseAll"]]);
      await page.keyboard.up("ShiftLeft");
    },
    BROWSER_LAUNCH_TIMEOUT_MS,
  );

  it(
    "sends the wheel as notches at the pointer's position",
    async () => {
      await openPage();
      await page.mouse.move(30, 40);
      await page.mouse.wheel(0, 100);
      await input.until((calls) => callsOf(calls, "pointerAxis").length === 1, "the wheel notch down");
      await page.mouse.wheel(0, -200);
      await input.until((calls) => callsOf(calls, "pointerAxis").length === 2, "the wheel notches up");
      expect(callsOf(input.calls, "pointerAxis")).toEqual([
        ["pointerAxis", 0, 1],
        ["pointerAxis", 0, -2],
      ]);
      const index = input.calls.findIndex((call) => call[0] === "pointerAxis");
      expect(input.calls[index - 1]).toEqual(["pointerMove", 30, 40]);
    },
    BROWSER_LAUNCH_TIMEOUT_MS,
  );

  it(
    "shows the cursor the output asks for",
    async () => {
      await openPage();
      output.events.cursor.emit("text");
      await pageCondition("document.getElementById('output').style.cursor === 'text'");
    },
    BROWSER_LAUNCH_TIMEOUT_MS,
  );
});
