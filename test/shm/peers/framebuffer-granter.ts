// The agent side of the cross-process framebuffer test: domain 1 grants a
// framebuffer to domain 2, paints it, prints its refs as one JSON line, then
// obeys commands on stdin, one per line, answering each with one line:
//   paint <byte>   fill every pixel's B,G,R with <byte>   -> "painted"
//   dump           record a WINDOW_DUMP in flight          -> "dumped"
//   destroy        destroy (revoke now, or after the ack)  -> "revoked <bool>"
//   ack            a WINDOW_DUMP_ACK arrived               -> "revoked <bool>"
//   exit
import { createInterface } from "node:readline";

import { DumpQueue, Framebuffer, MemfdGrantTable } from "../../../shm/index.ts";

const [socketDir, widthArg, heightArg] = process.argv.slice(2);
if (socketDir === undefined || widthArg === undefined || heightArg === undefined) {
  throw new Error("usage: framebuffer-granter DIR WIDTH HEIGHT");
}
const table = new MemfdGrantTable({ domain: 1, socketDir });
const framebuffer = new Framebuffer(table, 2, Number(widthArg), Number(heightArg));
const dumps = new DumpQueue();

function paint(value: number): void {
  const pixels = framebuffer.pixels;
  for (let i = 0; i < pixels.length; i += 4) {
    pixels[i] = value;
    pixels[i + 1] = value;
    pixels[i + 2] = value;
  }
}

paint(0x40);
process.stdout.write(`${JSON.stringify({ refs: framebuffer.refs, pid: process.pid })}\n`);
for await (const line of createInterface({ input: process.stdin })) {
  const [command, argument] = line.split(" ");
  if (command === "paint") {
    paint(Number(argument));
    process.stdout.write("painted\n");
  } else if (command === "dump") {
    dumps.sent(framebuffer);
    process.stdout.write("dumped\n");
  } else if (command === "destroy") {
    framebuffer.destroy();
    process.stdout.write(`revoked ${framebuffer.revoked}\n`);
  } else if (command === "ack") {
    dumps.acknowledge();
    process.stdout.write(`revoked ${framebuffer.revoked}\n`);
  } else if (command === "exit") {
    break;
  }
}
table.destroy();
process.stdin.destroy();
