/**
 * Fuzz target `websocket`: the desktop's WebSocket, end to end. A real
 * Desktop (its Wayland socket with one app window on it, a PatternClient of
 * ours) and its viewer server run in this process; hostile browsers connect
 * with the token and send batches of messages: valid ones of every type,
 * the same mutated (types, ranges, fields, JSON spellings, byte flips),
 * corpus messages, binary frames and messages over the size limit. A slice
 * of connections is raw TCP: mutated upgrade requests (no or a wrong token,
 * a foreign Origin, bad paths, bad keys) and hand-made WebSocket frames
 * (unmasked, reserved bits, unknown opcodes, hostile lengths).
 *
 * What must happen, per connection: a batch of messages the server takes or
 * drops leaves the connection open (a ping after it is answered); garbage
 * closes it with the code for it (1008 not JSON, 1003 binary, 1009 too big;
 * ws's own 1002 for broken frames); a refused upgrade answers 4xx and nothing
 * is served. At the end a fresh browser still gets the hello and a full
 * frame of the output, and the app's window still gets the pointer.
 */
import { once } from "node:events";
import { mkdtempSync, rmSync } from "node:fs";
import { connect as connectTcp, type Socket } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";

import pino from "pino";
import { WebSocket } from "ws";

import { compileKeymap } from "../../../compositor/index.ts";
import { Desktop, startViewer } from "../../../desktop/index.ts";
import { MAX_CLIENT_MESSAGE_BYTES, type Viewer } from "../../../desktop/viewer.ts";
import { parseClientMessage } from "../../../desktop/viewer-protocol.ts";
import { PatternClient } from "../../helpers/pattern-client.ts";
import { within } from "../../helpers/processes.ts";
import {
  HOSTILE_U32,
  Random,
  concat,
  mutate,
  newStats,
  react,
  unexpected,
  type FuzzInstance,
  type FuzzStats,
  type FuzzTarget,
} from "../harness.ts";

const WIDTH = 640;
const HEIGHT = 480;
/** How long any one exchange with the server may take before it counts as a hang. */
const EXCHANGE_MS = 10_000;

const KEY_CODES = ["KeyA", "KeyC", "KeyV", "ShiftLeft", "ControlLeft", "AltRight", "Enter", "F12", "Numpad5", "Lang1"];
const WEIRD_NUMBERS = ["1e309", "-1e309", "-0", "1e-400", "9007199254740993", "0.5", "-65537", "65536", "1E2"];

function randomNumber(random: Random): number | string {
  switch (random.below(6)) {
    case 0:
      return random.pick(HOSTILE_U32);
    case 1:
      return -random.below(100);
    case 2:
      return random.pick(WEIRD_NUMBERS);
    default:
      return random.below(700);
  }
}

/** A valid message of a random type (its JSON text). */
function validMessage(random: Random): Record<string, unknown> {
  switch (random.below(8)) {
    case 0:
      return { type: "ack", seq: random.below(10) };
    case 1:
    case 2:
      return { type: "move", x: random.below(WIDTH + 40) - 20, y: random.below(HEIGHT + 40) - 20 };
    case 3:
      return {
        type: "button",
        x: random.below(WIDTH),
        y: random.below(HEIGHT),
        button: random.below(3),
        pressed: random.oneIn(2),
      };
    case 4:
      return { type: "wheel", x: random.below(WIDTH), y: random.below(HEIGHT), axis: random.below(2), steps: 1 };
    case 5:
      return { type: "key", code: random.pick(KEY_CODES), pressed: random.oneIn(2) };
    case 6:
      return { type: "leave" };
    default:
      return { type: "releaseAll" };
  }
}

/** A message's JSON text: valid, or one with a hostile field, or its bytes mutated. */
function randomText(random: Random, corpus: readonly Uint8Array[]): string {
  const message = validMessage(random);
  // Most messages are taken or dropped, so that batches are long; one in 40 is mutated bytes (mostly fatal).
  const roll = random.below(40);
  if (roll < 20) return JSON.stringify(message);
  if (roll < 39) {
    const keys = ["type", "seq", "x", "y", "button", "pressed", "axis", "steps", "code", "__proto__", "constructor"];
    const key = random.pick(keys);
    const values: unknown[] = [null, true, "", "move", [], {}, random.below(1000), -1, "x".repeat(random.below(64))];
    let text = JSON.stringify({ ...message, [key]: random.oneIn(2) ? random.pick(values) : "@N@" });
    // Numbers JSON.stringify cannot write (Infinity, -0, 2^53 + 1) go in as text.
    text = text.replace('"@N@"', String(randomNumber(random)));
    return text;
  }
  const source =
    random.oneIn(2) || corpus.length === 0 ? new TextEncoder().encode(JSON.stringify(message)) : random.pick(corpus);
  return Buffer.from(mutate(random, source)).toString(random.oneIn(4) ? "latin1" : "utf8");
}

/** How the server must answer one text message. */
function expectation(text: string): "taken" | "dropped" | "fatal" {
  if (Buffer.byteLength(text) > MAX_CLIENT_MESSAGE_BYTES) return "fatal";
  const parsed = parseClientMessage(text, WIDTH, HEIGHT);
  return parsed.ok ? "taken" : parsed.fatal ? "fatal" : "dropped";
}

/** One browser: a batch of messages, then either the close it earned or a ping answered. */
async function browserBatch(random: Random, stats: FuzzStats, viewer: Viewer, corpus: readonly Uint8Array[]) {
  const ws = new WebSocket(`ws://127.0.0.1:${viewer.port}/ws?token=${viewer.token}`, { perMessageDeflate: false });
  ws.on("error", () => undefined);
  const closed = new Promise<number>((resolve) => ws.once("close", (code: number) => resolve(code)));
  await within(once(ws, "open"), EXCHANGE_MS, "the WebSocket's open");
  const batch = 1 + random.below(200);
  let fatal: number | null = null;
  for (let i = 0; i < batch && fatal === null; i++) {
    stats.inputs += 1;
    const roll = random.below(400);
    if (roll === 0) {
      const bytes = random.bytes(1 + random.below(64));
      stats.bytes += bytes.length;
      ws.send(bytes, { binary: true });
      react(stats, "binary-closed");
      fatal = 1003;
    } else if (roll === 1) {
      const text = JSON.stringify({ type: "ack", seq: 1, pad: "x".repeat(MAX_CLIENT_MESSAGE_BYTES) });
      stats.bytes += text.length;
      ws.send(text);
      react(stats, "oversized-closed");
      fatal = 1009;
    } else {
      const text = randomText(random, corpus);
      stats.bytes += Buffer.byteLength(text);
      ws.send(text);
      const expected = expectation(text);
      react(stats, expected === "fatal" ? "garbage-closed" : expected);
      if (expected === "fatal") fatal = 1008;
    }
  }
  if (fatal !== null) {
    const code = await within(closed, EXCHANGE_MS, `the close for garbage (${fatal})`);
    if (code !== fatal) unexpected(stats, new Error(`closed with ${code}, expected ${fatal}`), "close code");
    return;
  }
  // Everything sent was taken or dropped: the connection must still be served.
  const pong = once(ws, "pong");
  ws.ping();
  await within(pong, EXCHANGE_MS, "the pong after a batch of valid and dropped messages");
  ws.close(1000);
  await within(closed, EXCHANGE_MS, "the close of a finished browser");
}

/** Hand-made WebSocket frames after a valid upgrade, or a mutated upgrade request. */
async function rawConnection(random: Random, stats: FuzzStats, viewer: Viewer): Promise<void> {
  const socket: Socket = connectTcp(viewer.port, "127.0.0.1");
  socket.on("error", () => undefined);
  const ended = new Promise<void>((resolve) => socket.once("close", () => resolve()));
  let answer = "";
  socket.on("data", (chunk: Buffer) => {
    if (answer.length < 4096) answer += chunk.toString("latin1");
  });
  await within(once(socket, "connect"), EXCHANGE_MS, "the TCP connection");
  const variant = random.below(6);
  const token = variant === 0 ? "AAAAAAAAAAAAAAAAAAAAAA" : viewer.token;
  const target = variant === 1 ? "/nows" : variant === 2 ? "/ws" : `/ws?token=${token}`;
  const headers = [
    `GET ${target} HTTP/1.1`,
    `Host: 127.0.0.1:${viewer.port}`,
    "Upgrade: websocket",
    "Connection: Upgrade",
    `Sec-WebSocket-Key: ${variant === 3 ? "short" : "dGhlIHNhbXBsZSBub25jZQ=="}`,
    "Sec-WebSocket-Version: 13",
    ...(variant === 4 ? ["Origin: http://evil.example"] : []),
  ];
  socket.write(`${headers.join("\r\n")}\r\n\r\n`);
  stats.inputs += 1;
  if (variant !== 5) {
    // Refused before ws sees it (no token, wrong path, foreign origin) or by ws (a bad key): a 4xx and the end.
    await within(ended, EXCHANGE_MS, "the end of a refused upgrade");
    const status = /^HTTP\/1\.1 (\d{3})/.exec(answer)?.[1];
    if (status === undefined || !status.startsWith("4")) {
      unexpected(stats, new Error(`a bad upgrade was answered ${JSON.stringify(answer.slice(0, 80))}`));
    } else {
      react(stats, `upgrade-refused-${status}`);
    }
    return;
  }
  await within(
    new Promise<void>((resolve) => {
      const check = (): void => {
        if (answer.includes("\r\n\r\n")) {
          socket.off("data", check);
          resolve();
        }
      };
      socket.on("data", check);
      check();
    }),
    EXCHANGE_MS,
    "the 101 answer",
  );
  // One hostile frame: unmasked, reserved bits, unknown opcode, a fragmented control frame, or a 2^63 length.
  const payload = random.bytes(random.below(32));
  const masked = !random.oneIn(4);
  const first = random.pick([0x81, 0x82, 0x83, 0x8b, 0xc1, 0xf1, 0x09, 0x01, 0x88]);
  let header: Uint8Array;
  if (random.oneIn(5)) {
    header = new Uint8Array([first, (masked ? 0x80 : 0) | 127, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
  } else {
    header = new Uint8Array([first, (masked ? 0x80 : 0) | payload.length]);
  }
  const mask = masked ? random.bytes(4) : new Uint8Array(0);
  const body = payload.map((byte, i) => byte ^ (mask[i % 4] ?? 0));
  const frame = concat(header, mask, body);
  socket.write(frame);
  stats.bytes += frame.length;
  // Whatever the frame, the server may answer but must not hold the connection open with nothing to come: end it.
  socket.end();
  await within(ended, EXCHANGE_MS, "the end of a connection after a hostile frame");
  react(stats, "raw-frame");
}

export const target: FuzzTarget = {
  name: "websocket",
  summary: "the desktop's viewer WebSocket (and its HTTP upgrade), end to end, on a real Desktop with an app window",
  unit: "messages",
  testCount: 8_000,
  expectReactions: ["taken", "dropped", "garbage-closed", "binary-closed", "oversized-closed", "raw-frame"],
  async open({ seed, corpus }): Promise<FuzzInstance> {
    const random = new Random(seed);
    const stats = newStats();
    const dir = mkdtempSync(path.join(tmpdir(), "fuzz-websocket-"));
    const log = pino({ level: "silent" });
    const desktop = new Desktop({
      socket: path.join(dir, "wayland-0"),
      size: { width: WIDTH, height: HEIGHT },
      keymap: await compileKeymap({}),
      log,
    });
    let viewer: Viewer | null = null;
    let app: PatternClient | null = null;
    try {
      viewer = await startViewer({ output: desktop, input: desktop, log, maxClients: 64 });
      app = await within(PatternClient.open(desktop.socketPath, 200, 150, "fuzzed"), EXCHANGE_MS, "the app window");
    } catch (error) {
      app?.close();
      await viewer?.close();
      desktop.destroy();
      rmSync(dir, { recursive: true, force: true });
      throw error;
    }
    const server = viewer;
    const window = app;
    return {
      stats,
      async run(count: number): Promise<void> {
        const goal = stats.inputs + count;
        while (stats.inputs < goal) {
          try {
            if (random.oneIn(40)) await rawConnection(random, stats, server);
            else await browserBatch(random, stats, server, corpus);
          } catch (error) {
            unexpected(stats, error, "connection");
          }
        }
        // The server still serves: a fresh browser gets the hello and a full frame.
        try {
          const ws = new WebSocket(`ws://127.0.0.1:${server.port}/ws?token=${server.token}`);
          const messages: Array<{ data: Buffer; binary: boolean }> = [];
          const gotFrame = new Promise<void>((resolve) =>
            ws.on("message", (data: Buffer, binary: boolean) => {
              messages.push({ data, binary });
              if (binary) resolve();
            }),
          );
          await within(gotFrame, EXCHANGE_MS, "a fresh browser's first frame");
          const hello = messages.find((message) => !message.binary);
          const size = JSON.parse(hello?.data.toString() ?? "{}") as { width?: number; height?: number };
          if (size.width !== WIDTH || size.height !== HEIGHT) throw new Error(`hello said ${JSON.stringify(size)}`);
          ws.terminate();
          react(stats, "served-after");
        } catch (error) {
          unexpected(stats, error, "after the run");
        }
        stats.notes.appConfigures = window.configures.length;
      },
      async close(): Promise<void> {
        window.close();
        await server.close();
        desktop.destroy();
        rmSync(dir, { recursive: true, force: true });
      },
    };
  },
};
