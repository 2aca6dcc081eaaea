/**
 * A hand-built agent in a child process, for faults that need a process to
 * kill: `node --import tsx test/faults/hostile-agent.ts DIR DOMAIN MODE`.
 * It serves the GUI domain (0) on DIR, prints "ready" once its modules are
 * loaded, and after the handshake shows window 0x00400001 (160×120 of
 * {@link faultPattern}, class "Victim") and prints "shown". Then, by MODE:
 * - `idle`: nothing more;
 * - `batch`: hands the vchan {@link BATCH_SHMIMAGES} full-window SHMIMAGEs in
 *   one write (a frame far bigger than the socket holds) and prints
 *   "batching"; it is still writing when the test kills it;
 * - `half-header`: sends 6 of a CONFIGURE's 12 header bytes, prints "sent";
 * - `half-body`: sends a CONFIGURE's header and 10 of its 20 body bytes,
 *   prints "sent".
 * Its bytes come from the AgentPeer's builders, never from protocol/'s encoder.
 */
import { agentMessage, listenAgentPeer } from "../helpers/agent-peer.ts";
import { READY_LINE } from "../helpers/processes.ts";
import { BATCH_SHMIMAGES, FAULT_WINDOW, FAULT_WINDOW_SIZE, faultPattern } from "./pattern.ts";

const [dir, domainText, mode] = process.argv.slice(2);
if (dir === undefined || domainText === undefined || mode === undefined) {
  process.stderr.write("usage: hostile-agent.ts DIR DOMAIN idle|batch|half-header|half-body\n");
  process.exit(2);
}

const peer = await listenAgentPeer({ agentDomain: Number(domainText), guiDomain: 0, socketDir: dir });
process.stdout.write(`${READY_LINE}\n`);
await peer.handshake(120_000);
const { width, height } = FAULT_WINDOW_SIZE;
const framebuffer = peer.framebuffer(width, height);
for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) framebuffer.setPixel(x, y, faultPattern(x, y));
peer.create(FAULT_WINDOW, { x: 0, y: 0, width, height });
peer.wmclass(FAULT_WINDOW, "Victim", "victim");
peer.wmname(FAULT_WINDOW, "victim");
peer.map(FAULT_WINDOW);
peer.windowDump(FAULT_WINDOW, width, height, framebuffer.refs);
peer.shmimage(FAULT_WINDOW, { x: 0, y: 0, width, height });
await peer.whenSent();
process.stdout.write("shown\n");

const configure = agentMessage.configure(FAULT_WINDOW, { x: 0, y: 0, width, height });
switch (mode) {
  case "idle":
    break;
  case "batch": {
    const one = agentMessage.shmimage(FAULT_WINDOW, { x: 0, y: 0, width, height });
    const batch = new Uint8Array(one.length * BATCH_SHMIMAGES);
    for (let i = 0; i < BATCH_SHMIMAGES; i++) batch.set(one, i * one.length);
    peer.sendRaw(batch);
    process.stdout.write("batching\n");
    break;
  }
  case "half-header":
    peer.sendRaw(configure.subarray(0, 6));
    await peer.whenSent();
    process.stdout.write("sent\n");
    break;
  case "half-body":
    peer.sendRaw(configure.subarray(0, 12 + 10));
    await peer.whenSent();
    process.stdout.write("sent\n");
    break;
  default:
    process.stderr.write(`unknown mode ${mode}\n`);
    process.exit(2);
}
// Serve until killed: the test's fault is this process's end.
setInterval(() => undefined, 1 << 30);
