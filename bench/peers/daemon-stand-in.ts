// The daemon side of the agent benchmark, in its own process: connects to
// the agent as its GUI daemon and prints the CLOCK_MONOTONIC time (ns) at
// which each SHMIMAGE for the window titled "bench" arrives, and the
// damaged area.
import { connectDaemonPeer } from "../../test/helpers/daemon-peer.ts";

const [agentDomain, socketDir] = [Number(process.argv[2]), process.argv[3] as string];
const peer = await connectDaemonPeer({ agentDomain, guiDomain: 0, socketDir });
let seen = 0;
for (;;) {
  const image = await peer
    .waitFor(
      () => {
        const window = [...peer.windows.values()].find((w) => w.title === "bench" && !w.destroyed);
        return window === undefined ? undefined : peer.messages("SHMIMAGE", window.id)[seen];
      },
      "SHMIMAGE",
      600_000,
    )
    .catch(() => null);
  if (image === null) break;
  const now = process.hrtime.bigint();
  seen += 1;
  process.stdout.write(`${now} ${image.width}x${image.height}\n`);
}
