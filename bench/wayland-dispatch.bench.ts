/**
 * Wayland end to end, 250 frames per roundtrip: our client's proxies send
 * attach, damage_buffer, frame, commit; our server decodes them, runs the
 * surface's handlers and answers each frame callback (done, delete_id).
 * Beside it, the same request bytes through sendmsg/recvmsg on a socketpair
 * with no codec at all: the transport's own cost, in the same run.
 */
import { stats, type BenchContext, type BenchRow } from "./lib.ts";
import { close, recvmsg, sendmsg, socketpair } from "../native/index.ts";
import {
  ClientConnection,
  Display,
  MessageWriter,
  compileInterface,
  encodeMessage,
  wl_surface,
} from "../wayland/index.ts";

const FRAMES = 250;
const REQUESTS = FRAMES * 4;

/** The case: its rows, each beside the hand-written or raw baseline measured in the same run. */
export default async function bench(context: BenchContext): Promise<BenchRow[]> {
  const batches = context.iterations(300, 3);

  // Raw dispatch: no per-client turn budget (the agent's compositor bounds turns for fairness; that is not measured here).
  const display = new Display({ maxMessagesPerTurn: Infinity, maxTurnMs: Infinity });
  display.createGlobal("wl_compositor", 5, (compositor) => {
    compositor.implement({
      create_surface: (surface) => {
        const callbacks: Array<{ send: (event: "done", time: number) => void; destroy: () => void }> = [];
        surface.implement({
          attach: () => undefined,
          damage_buffer: () => undefined,
          frame: (callback) => callbacks.push(callback),
          commit: () => {
            for (const callback of callbacks.splice(0)) {
              callback.send("done", 0);
              callback.destroy();
            }
          },
        });
      },
    });
  });
  const [serverEnd, clientEnd] = socketpair("stream");
  display.addClient(serverEnd);
  const connection = new ClientConnection(clientEnd);
  await connection.roundtrip();
  const surface = connection.bind("wl_compositor", 5).request("create_surface");

  const runBatch = async (): Promise<void> => {
    for (let i = 0; i < FRAMES; i++) {
      surface.request("attach", null, 0, 0);
      surface.request("damage_buffer", 0, 0, 64, 48);
      surface.request("frame");
      surface.request("commit");
    }
    await connection.roundtrip();
  };
  for (let i = 0; i < Math.min(30, batches); i++) await runBatch();
  const endToEnd: number[] = [];
  for (let i = 0; i < batches; i++) {
    const start = process.hrtime.bigint();
    await runBatch();
    endToEnd.push(REQUESTS / (Number(process.hrtime.bigint() - start) / 1e9));
  }
  connection.destroy();
  display.destroy();

  // The same request bytes, sent and received with no codec and no event loop.
  const compiled = compileInterface(wl_surface);
  const byName = (name: string) => compiled.requests.find((message) => message.spec.name === name)!;
  const out = new MessageWriter(32 * 1024);
  for (let i = 0; i < FRAMES; i++) {
    encodeMessage(out, 3, byName("attach"), [null, 0, 0], []);
    encodeMessage(out, 3, byName("damage_buffer"), [0, 0, 64, 48], []);
    encodeMessage(out, 3, byName("frame"), [4], []);
    encodeMessage(out, 3, byName("commit"), [], []);
  }
  const bytes = out.bytes.slice(0, out.length);
  const [a, b] = socketpair("stream");
  const sink = new Uint8Array(64 * 1024);
  const rawBatch = (): void => {
    let sent = 0;
    let received = 0;
    while (received < bytes.length) {
      if (sent < bytes.length) sent += sendmsg(a, bytes.subarray(sent)) ?? 0;
      const got = recvmsg(b, sink, 0);
      if (got !== null) received += got.bytes;
    }
  };
  for (let i = 0; i < Math.min(30, batches); i++) rawBatch();
  const raw: number[] = [];
  for (let i = 0; i < batches; i++) {
    const start = process.hrtime.bigint();
    rawBatch();
    raw.push(REQUESTS / (Number(process.hrtime.bigint() - start) / 1e9));
  }
  close(a);
  close(b);

  return [
    {
      name: `client requests dispatched by the server, ${FRAMES} frames per roundtrip`,
      unit: "msg/s",
      value: stats(endToEnd),
      baseline: { name: "same bytes through sendmsg/recvmsg, no codec", value: stats(raw) },
      better: "higher",
      notes: [
        "one process, one thread: client proxies, server handlers, frame callbacks (done + delete_id) all included",
        `${(1e9 / stats(endToEnd).median).toFixed(0)} ns per request end to end; the baseline moves the batch in one syscall pair`,
      ],
    },
  ];
}
