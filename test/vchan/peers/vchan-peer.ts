// The other process of the cross-process vchan tests and benchmarks.
//   vchan-peer BACKEND ROLE DIR PORT MODE [BYTES]
// ROLE server runs as domain 1 for client domain 2; client is domain 2.
// MODE echo: send every byte back until the peer leaves, then exit.
//      send: write BYTES pattern bytes, close, exit.
//      recv: read BYTES pattern bytes, check each, print "ok BYTES", exit.
//      hold: stay until killed.
// Prints "ready" once started (modules loaded; as server, listening), before
// it connects, and "connected" once the channel is up (all modes).
import { once } from "node:events";

import { connectVchanClient, createVchanServer, type Vchan, type VchanBackend } from "../../../vchan/index.ts";
import { readPattern, writePattern } from "../helpers.ts";

const [backend, role, socketDir, portArg, mode, bytesArg] = process.argv.slice(2);
if (
  backend === undefined ||
  role === undefined ||
  socketDir === undefined ||
  portArg === undefined ||
  mode === undefined
) {
  throw new Error("usage: vchan-peer BACKEND ROLE DIR PORT MODE [BYTES]");
}
const port = Number(portArg);
const bytes = Number(bytesArg ?? "0");
const common = { backend: backend as VchanBackend, port, socketDir };

let vchan: Vchan;
if (role === "server") {
  vchan = createVchanServer({ ...common, domain: 2, ownDomain: 1, readMin: 65536, writeMin: 65536 });
  process.stdout.write("ready\n");
  await vchan.whenConnected();
} else {
  process.stdout.write("ready\n");
  vchan = await connectVchanClient({ ...common, domain: 1, ownDomain: 2 });
}
process.stdout.write("connected\n");

if (mode === "echo") {
  const buffer = new Uint8Array(65536);
  let pending: Uint8Array | null = null;
  const pump = (): void => {
    for (;;) {
      if (pending !== null) {
        if (vchan.isOpen() !== 1) return;
        const n = vchan.write(pending);
        pending = n === pending.length ? null : pending.subarray(n);
        if (pending !== null) return;
      }
      const n = vchan.read(buffer);
      if (n === 0) return;
      pending = buffer.subarray(0, n);
    }
  };
  vchan.on("data", pump);
  vchan.on("drain", pump);
  pump();
  await once(vchan, "disconnect");
  pump();
  vchan.close();
} else if (mode === "send") {
  await writePattern(vchan, bytes);
  vchan.close();
} else if (mode === "recv") {
  await readPattern(vchan, bytes);
  process.stdout.write(`ok ${bytes}\n`);
  vchan.close();
} else if (mode === "hold") {
  await new Promise(() => setInterval(() => undefined, 1 << 30));
}
