/**
 * Writes the corpora of the `vchan-shm` and `grants` fuzz targets
 * (test/fuzz/corpus/vchan-shm/, test/fuzz/corpus/grants/): real captures from
 * a real gui-agent (shm vchan, memfd grants) serving a daemon stand-in that
 * showed one real Wayland client's window, and the hand-written edge cases
 * below. Run: `node --import tsx test/fuzz/capture-shm.ts`.
 *
 * File formats (each file starts with a 4-byte tag; numbers little-endian):
 * - `CTRL` + a 4096-byte vchan control page;
 * - `RING` + a ring's bytes;
 * - `HELO` + the vchan rendezvous message (16 bytes as sent);
 * - `OFFR` + a grant pool offer: the 16-byte hello, then u32 pool pages,
 *   pool seals, table bytes, table seals, a count N, and N u32 table words
 *   (the 16-word header and the first entries);
 * - `REFS` + u32 width, u32 height, then the refs of one WINDOW_DUMP.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";

import pino from "pino";

import { startAgent } from "../../gui-agent/index.ts";
import * as native from "../../native/index.ts";
import { MemfdGrantTable, connectWhenListening, grantSocketPath, whenReadable } from "../../shm/index.ts";
import { GRANTS, LEFT_ORDER, RIGHT_ORDER, shmVchanSocketPath } from "../../vchan/index.ts";
import { connectDaemonPeer } from "../helpers/daemon-peer.ts";
import { PatternClient } from "../helpers/pattern-client.ts";
import { within } from "../helpers/processes.ts";

const AGENT = 5;
const GUI = 0;
const PORT = 6000;
const PAGE = 4096;
const here = path.dirname(new URL(import.meta.url).pathname);
const vchanDir = path.join(here, "corpus", "vchan-shm");
const grantsDir = path.join(here, "corpus", "grants");

function tagged(tag: string, ...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(4 + parts.reduce((sum, part) => sum + part.length, 0));
  out.set(new TextEncoder().encode(tag));
  let at = 4;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

function u32s(...values: number[]): Uint8Array {
  return new Uint8Array(new Uint32Array(values.map((value) => value >>> 0)).buffer);
}

function write(dir: string, name: string, bytes: Uint8Array): void {
  writeFileSync(path.join(dir, name), bytes);
  process.stdout.write(`${path.relative(process.cwd(), path.join(dir, name))}: ${bytes.length} bytes\n`);
}

/** One message with its fds from a rendezvous socket (the first `max` bytes). */
async function receive(fd: number, max: number): Promise<{ bytes: Uint8Array; fds: number[] }> {
  const buffer = new Uint8Array(max);
  for (;;) {
    await within(whenReadable(fd), 5000, "a rendezvous message");
    const received = native.recvmsg(fd, buffer, 2);
    if (received !== null) return { bytes: buffer.slice(0, received.bytes), fds: received.fds };
  }
}

mkdirSync(vchanDir, { recursive: true });
mkdirSync(grantsDir, { recursive: true });
const dir = mkdtempSync(path.join(tmpdir(), "qubes-capture-"));
const agent = await startAgent({
  guiDomain: GUI,
  ownDomain: AGENT,
  vchan: "shm",
  grants: "memfd",
  socketDir: dir,
  waylandDisplay: path.join(dir, "wayland-agent"),
  log: pino({ level: "silent" }),
});
const peer = await connectDaemonPeer({ agentDomain: AGENT, guiDomain: GUI, socketDir: dir, backend: "shm" });
const client = await PatternClient.open(agent.compositor.socketPath, 400, 300, "capture");
const window = await peer.waitForWindow((w) => w.title === "capture" && w.framebuffer !== null, "the window");

// The vchan's control page and rings after the handshake and a window's traffic, mapped a second time.
const side = new MemfdGrantTable({ domain: GUI, socketDir: dir, poolName: `vchan-${PORT}` });
await side.attach(AGENT);
const ctrl = side.map(AGENT, [0]);
const ctrlBytes = new Uint8Array(ctrl.buffer).slice();
const view = new DataView(ctrl.buffer);
if (view.getUint16(LEFT_ORDER, true) !== 12 || view.getUint16(RIGHT_ORDER, true) !== 12) {
  throw new Error("the agent's vchan is not order 12 both ways: ref 0 is not its control page");
}
write(vchanDir, "agent-ctrl.bin", tagged("CTRL", ctrlBytes));
for (const [name, index] of [
  ["agent-ring-left.bin", 0],
  ["agent-ring-right.bin", 1],
] as const) {
  const ring = side.map(AGENT, [view.getUint32(GRANTS + 4 * index, true)]);
  write(vchanDir, name, tagged("RING", new Uint8Array(ring.buffer).slice()));
}
side.destroy();

// The agent's main grant pool offer, as guid's attach receives it, and the refs of the window's dump.
const grantFd = await connectWhenListening(grantSocketPath(dir, AGENT, GUI));
const offer = await receive(grantFd, 16);
native.close(grantFd);
const [poolFd, tableFd] = offer.fds as [number, number];
const tableBytes = native.fileSize(tableFd);
const table = new Uint32Array(native.mmap(tableFd, 0, tableBytes));
let last = 16;
for (let i = 16; i < table.length; i++) if (table[i] !== 0) last = i + 1;
const words = table.slice(0, Math.min(table.length, last + 8));
write(
  grantsDir,
  "agent-offer.bin",
  tagged(
    "OFFR",
    offer.bytes,
    u32s(native.fileSize(poolFd) / PAGE, native.getSeals(poolFd), tableBytes, native.getSeals(tableFd), words.length),
    new Uint8Array(words.buffer),
  ),
);
native.munmap(table.buffer as ArrayBuffer);
native.close(poolFd);
native.close(tableFd);
const dump = window.framebuffer!;
write(grantsDir, "agent-dump-refs.bin", tagged("REFS", u32s(dump.width, dump.height, ...dump.mapping.refs)));

// The vchan's rendezvous message: the agent serves again once the daemon left; we take its hello.
peer.close();
const vchanFd = await within(
  connectWhenListening(shmVchanSocketPath(dir, AGENT, GUI, PORT)),
  10_000,
  "the vchan again",
);
const hello = await receive(vchanFd, 64);
write(vchanDir, "agent-hello.bin", tagged("HELO", hello.bytes));
for (const fd of hello.fds) native.close(fd);
native.close(vchanFd);
client.close();
agent.stop();
rmSync(dir, { recursive: true, force: true });

// ---- hand-written edge cases ----

/** A control page: orders, indices (left cons/prod, right cons/prod), live and notify bytes, grant refs. */
function controlPage(fields: {
  orders: [number, number];
  indices: [number, number, number, number];
  bytes: [number, number, number, number];
  grants: number[];
}): Uint8Array {
  const page = new Uint8Array(PAGE);
  const data = new DataView(page.buffer);
  fields.indices.forEach((value, i) => data.setUint32(4 * i, value >>> 0, true));
  data.setUint16(16, fields.orders[0], true);
  data.setUint16(18, fields.orders[1], true);
  page.set(fields.bytes, 20);
  fields.grants.forEach((ref, i) => data.setUint32(24 + 4 * i, ref >>> 0, true));
  return tagged("CTRL", page);
}

const wrap = 0xfffffff0;
write(
  vchanDir,
  "edge-ctrl-small-rings-at-wrap.bin",
  controlPage({ orders: [10, 11], indices: [wrap, wrap, wrap, wrap], bytes: [2, 1, 1, 0], grants: [] }),
);
write(
  vchanDir,
  "edge-ctrl-prod-past-ring.bin",
  controlPage({ orders: [12, 12], indices: [0, 4097, 100, 0xffffffff], bytes: [1, 1, 0xff, 0xff], grants: [1, 2] }),
);
write(
  vchanDir,
  "edge-ctrl-bad-orders.bin",
  controlPage({ orders: [0xffff, 0], indices: [0, 0, 0, 0], bytes: [0, 255, 3, 3], grants: [0, 0] }),
);
write(
  vchanDir,
  "edge-ctrl-order-20-refs-hostile.bin",
  controlPage({
    orders: [20, 20],
    indices: [0x80000000, 0, 0, 0x80000000],
    bytes: [2, 1, 1, 0],
    grants: new Array<number>(512).fill(0xffffffff),
  }),
);
write(vchanDir, "edge-hello-bad-magic.bin", tagged("HELO", u32s(0x12345678, 1, 0, 0)));
write(vchanDir, "edge-hello-version-2-ref-max.bin", tagged("HELO", u32s(0x51565348, 2, 0xffffffff, 0)));
write(vchanDir, "edge-hello-short.bin", tagged("HELO", u32s(0x51565348, 1)));
write(vchanDir, "edge-ring-gui-header-huge-length.bin", tagged("RING", u32s(147, 1, 0xffffffff, 0x80000000)));

/** An offer of domain 1 to 0 with `entries` table entries. */
function offerFile(fields: {
  hello?: number[];
  poolPages: number;
  poolSeals: number;
  tableBytes: number;
  tableSeals: number;
  header?: number[];
  entries: number[];
}): Uint8Array {
  const header = fields.header ?? [0x51474e54, 1, 1, 0, fields.entries.length];
  const tableWords = new Uint32Array(16 + fields.entries.length);
  tableWords.set(header);
  tableWords.set(
    fields.entries.map((entry) => entry >>> 0),
    16,
  );
  return tagged(
    "OFFR",
    u32s(...(fields.hello ?? [0x51475250, 1, 1, 0])),
    u32s(fields.poolPages, fields.poolSeals, fields.tableBytes, fields.tableSeals, tableWords.length),
    new Uint8Array(tableWords.buffer),
  );
}

/** A table entry: granted (state 1), writable (bit 2), to `grantee` (bits 16..31). */
const granted = (writable = false, grantee = 0): number => 1 | (writable ? 4 : 0) | (grantee << 16);
write(
  grantsDir,
  "edge-offer-unsealed.bin",
  offerFile({ poolPages: 4, poolSeals: 0, tableBytes: PAGE, tableSeals: 0, entries: [granted(), granted()] }),
);
write(
  grantsDir,
  "edge-offer-table-not-page-aligned.bin",
  offerFile({ poolPages: 4, poolSeals: 2, tableBytes: PAGE + 1, tableSeals: 2, entries: [granted()] }),
);
write(
  grantsDir,
  "edge-offer-table-huge.bin",
  offerFile({ poolPages: 4, poolSeals: 2, tableBytes: 0xfffff000, tableSeals: 2, entries: [granted()] }),
);
write(
  grantsDir,
  "edge-offer-pool-past-table.bin",
  offerFile({ poolPages: 2 ** 24 + 1, poolSeals: 2, tableBytes: PAGE, tableSeals: 2, entries: [granted()] }),
);
write(
  grantsDir,
  "edge-offer-bad-header.bin",
  offerFile({
    poolPages: 4,
    poolSeals: 2,
    tableBytes: PAGE,
    tableSeals: 2,
    header: [0x544e4751, 2, 1, 0, 0xffffffff],
    entries: [granted()],
  }),
);
write(
  grantsDir,
  "edge-offer-wrong-grantee-hello.bin",
  offerFile({
    hello: [0x51475250, 1, 1, 3],
    poolPages: 4,
    poolSeals: 2,
    tableBytes: PAGE,
    tableSeals: 2,
    entries: [granted()],
  }),
);
write(
  grantsDir,
  "edge-offer-hostile-entries.bin",
  offerFile({
    poolPages: 8,
    poolSeals: 2 | 4,
    tableBytes: PAGE,
    tableSeals: 2 | 4 | 1,
    entries: [granted(true), granted(false, 9), 2, 3, 0, 0xffffffff, granted(), granted(true), granted(), granted()],
  }),
);
write(
  grantsDir,
  "edge-refs-duplicates-and-out-of-range.bin",
  tagged("REFS", u32s(64, 64, 0, 0, 1, 1, 7, 1008, 0xffffffff)),
);
write(
  grantsDir,
  "edge-refs-1000-times-ref-0.bin",
  tagged("REFS", u32s(1000, 1024, ...new Array<number>(1000).fill(0))),
);
