// A hostile domain's agent in its own process, for the fairness benchmark and
// the flood test: a hand-built agent (test/helpers/agent-peer.ts) that serves
// one daemon on the vchan and, when told, sends everything an agent can send
// as fast as the vchan takes it. Its own process, so that it writes while
// the daemon reads, as a real domain does.
//
// `flood-agent.ts AGENT_DOMAIN GUI_DOMAIN SOCKET_DIR [KINDS]`, KINDS a comma
// list of damage, configure, churn, clipboard (default all):
// - damage: SHMIMAGE of the whole of its window;
// - configure: CONFIGURE of its window, its size alternating;
// - churn: CREATE, MAP, UNMAP, DESTROY of a new window each round;
// - clipboard: CLIPBOARD_DATA of 64 000 bytes nobody asked for (an agent
//   cannot ask for the user's clipboard; it can only offer its own).
//
// On stdout, one line each: `ready` once the handshake is done and its window
// (FLOOD_SIZE², FLOOD_COLOR) is sent; after `flood` on stdin, `flooding` once
// the first round is out; after `stop`, `stats JSON` ({@link FloodStats}).
// When the daemon ends the session it prints `ended` (and keeps serving
// `stop`). Rounds are written whole; the next waits while the vchan is full,
// so the flood runs at the rate the daemon reads.
import { createInterface } from "node:readline";

import { agentMessage, listenAgentPeer } from "../../test/helpers/agent-peer.ts";

/** The flooder's own window: its id, side and colour (0xRRGGBB). */
export const FLOOD_WINDOW = 0x00700001;
export const FLOOD_SIZE = 128;
export const FLOOD_COLOR = 0xc03030;
/** Ids of the churned windows start here (one new id per round). */
const CHURN_BASE = 0x00710000;
const CLIPBOARD_BYTES = 64_000;
/** SHMIMAGEs and CONFIGUREs per round, beside one churn cycle and one clipboard message. */
const DAMAGE_PER_ROUND = 64;
const CONFIGURE_PER_ROUND = 16;
/** How long `stop` waits for the rounds still queued to leave. */
const STOP_TIMEOUT_MS = 30_000;

/** What `stop` reports. */
export interface FloodStats {
  /** Messages (and bytes) handed to the vchan, by kind. */
  messages: Record<string, number>;
  totalMessages: number;
  bytes: number;
  /** Seconds from the first round to the last one's leaving. */
  seconds: number;
  /** The daemon ended the session during the flood. */
  ended: boolean;
}

const [agentDomain, guiDomain, socketDir, kindList = "damage,configure,churn,clipboard"] = process.argv.slice(2);
if (agentDomain === undefined || guiDomain === undefined || socketDir === undefined) {
  throw new Error("usage: flood-agent.ts AGENT_DOMAIN GUI_DOMAIN SOCKET_DIR [KINDS]");
}
const kinds = new Set(kindList.split(","));

const peer = await listenAgentPeer({ agentDomain: Number(agentDomain), guiDomain: Number(guiDomain), socketDir });
await peer.handshake(120_000);
const framebuffer = peer.framebuffer(FLOOD_SIZE, FLOOD_SIZE);
framebuffer.fill(FLOOD_COLOR);
const whole = { x: 0, y: 0, width: FLOOD_SIZE, height: FLOOD_SIZE };
peer.create(FLOOD_WINDOW, { x: 40, y: 40, width: FLOOD_SIZE, height: FLOOD_SIZE });
peer.wmname(FLOOD_WINDOW, "flood");
peer.map(FLOOD_WINDOW);
peer.windowDump(FLOOD_WINDOW, FLOOD_SIZE, FLOOD_SIZE, framebuffer.refs);
peer.shmimage(FLOOD_WINDOW, whole);
await peer.whenSent();
process.stdout.write("ready\n");

const counts: Record<string, number> = { SHMIMAGE: 0, CONFIGURE: 0, CREATE: 0, MAP: 0, UNMAP: 0, DESTROY: 0 };
counts.CLIPBOARD_DATA = 0;
let bytes = 0;
let round = 0;
let flooding = false;
let ended = false;
let started = 0;
const damage = agentMessage.shmimage(FLOOD_WINDOW, whole);
const configures = [0, 1].map((i) =>
  agentMessage.configure(FLOOD_WINDOW, { x: 40, y: 40, width: FLOOD_SIZE - 16 * i, height: FLOOD_SIZE - 8 * i }),
);
const clipboard = agentMessage.clipboardData(new Uint8Array(CLIPBOARD_BYTES).fill(0x41));

/** One round's bytes, counted. */
function buildRound(): Uint8Array {
  const parts: Uint8Array[] = [];
  const add = (type: string, message: Uint8Array, times = 1): void => {
    for (let i = 0; i < times; i++) parts.push(message);
    counts[type] = (counts[type] ?? 0) + times;
  };
  if (kinds.has("damage")) add("SHMIMAGE", damage, DAMAGE_PER_ROUND);
  if (kinds.has("configure")) {
    for (let i = 0; i < CONFIGURE_PER_ROUND; i++) add("CONFIGURE", configures[i & 1] as Uint8Array);
  }
  if (kinds.has("churn")) {
    const id = CHURN_BASE + (round & 0xffff);
    add("CREATE", agentMessage.create(id, { x: 60, y: 60, width: 32, height: 32 }));
    add("MAP", agentMessage.map(id));
    add("UNMAP", agentMessage.unmap(id));
    add("DESTROY", agentMessage.destroy(id));
  }
  if (kinds.has("clipboard")) add("CLIPBOARD_DATA", clipboard);
  round++;
  const out = new Uint8Array(parts.reduce((sum, part) => sum + part.length, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  bytes += out.length;
  return out;
}

function yieldTurn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

async function flood(): Promise<void> {
  started = performance.now();
  let announced = false;
  while (flooding && !peer.closed) {
    peer.sendRaw(buildRound());
    if (!announced) {
      announced = true;
      process.stdout.write("flooding\n");
    }
    // Whatever did not fit waits for the daemon to read; the next round waits with it.
    await peer.whenSent(STOP_TIMEOUT_MS);
    // A turn for the daemon's messages (acks) to be read, so that its output queue to us stays short.
    await yieldTurn();
  }
  if (peer.closed && !ended) {
    ended = true;
    process.stdout.write("ended\n");
  }
}

let running: Promise<void> = Promise.resolve();
for await (const line of createInterface({ input: process.stdin })) {
  if (line === "flood" && !flooding) {
    flooding = true;
    running = flood();
  } else if (line === "stop") {
    flooding = false;
    await running;
    await peer.whenSent(STOP_TIMEOUT_MS).catch(() => undefined);
    const seconds = started === 0 ? 0 : (performance.now() - started) / 1000;
    const totalMessages = Object.values(counts).reduce((sum, n) => sum + n, 0);
    const stats: FloodStats = { messages: counts, totalMessages, bytes, seconds, ended: ended || peer.closed };
    process.stdout.write(`stats ${JSON.stringify(stats)}\n`);
  }
}
peer.close();
