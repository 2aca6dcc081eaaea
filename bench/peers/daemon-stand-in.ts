// The daemon side of the agent benchmark, in its own process: connects to
// the agent as its GUI daemon and notes the CLOCK_MONOTONIC time (ns) at
// which each SHMIMAGE arrives, as it is decoded. A line "times FROM COUNT" on
// stdin prints, once they have arrived, the times of SHMIMAGEs FROM to
// FROM + COUNT - 1 (counted from the first) on one line; nothing is printed
// while frames flow.
import { createInterface } from "node:readline";

import { connectDaemonPeer } from "../../test/helpers/daemon-peer.ts";

const [agentDomain, socketDir] = [Number(process.argv[2]), process.argv[3] as string];
const peer = await connectDaemonPeer({ agentDomain, guiDomain: 0, socketDir });
const arrivals: bigint[] = [];
let wanted = Number.POSITIVE_INFINITY;
let answer: (() => void) | null = null;
// SHMIMAGEs of a replay may have come with the handshake, before the listener.
for (const message of peer.received) if (message.type === "SHMIMAGE") arrivals.push(process.hrtime.bigint());
let shown: () => void = () => undefined;
const firstFrame = new Promise<void>((resolve) => (shown = resolve));
peer.listen((message) => {
  if (message.type !== "SHMIMAGE") return;
  arrivals.push(process.hrtime.bigint());
  shown();
  if (answer !== null && arrivals.length >= wanted) answer();
});
// The app's first frame (new pages, copied over several turns) is shown before any clock starts.
if (arrivals.length === 0) await firstFrame;
process.stdout.write("ready\n");
for await (const line of createInterface({ input: process.stdin })) {
  const [, from, count] = line.split(" ").map(Number) as [number, number, number];
  wanted = from + count;
  if (arrivals.length < wanted) await new Promise<void>((resolve) => (answer = resolve));
  answer = null;
  process.stdout.write(`${arrivals.slice(from, from + count).join(" ")}\n`);
}
// stdin ended: the benchmark is over.
peer.close();
