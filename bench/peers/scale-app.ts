// The app of the scale benchmark, run by a qubes-gui-agent inside a domain:
// a Wayland client on wayland/'s client side that maps WINDOWS xdg_toplevels
// (argv[2]) of SIZE × SIZE XRGB8888 pixels (argv[3]), titled `w0`, `w1` ...,
// each with two shm buffers, drawn as scale-square.ts says (TAG, argv[4],
// in each window's identity pixel), and takes its orders on the unix socket
// CONTROL (argv[5]), one line each way:
//
// - it sends `ready` once every window's first frame callback has come;
// - `animate`: from now on, 60 times a second (a drift-free timer: the
//   agent's frame callbacks come once it has copied a frame, not at any
//   display's rate, so they only gate), every window whose last frame
//   callback has come and whose next buffer is free fills the AREA × AREA
//   square at (AREA/2, AREA/2) with its next sequence number as the pixel
//   value (0x00RRGGBB = seq, 1, 2 ...),
//   takes CLOCK_MONOTONIC just before wl_surface.commit and commits with
//   exactly that damage; a window that is not ready skips the tick (counted);
// - `stop`: stops animating and sends every stamp taken since `animate`, as
//   `stamps N`, N lines `window seq ns`, then `counts TICKS LATE_TICKS
//   FRAME_PENDING BUFFER_BUSY`.
import { createConnection } from "node:net";
import { createInterface } from "node:readline";

import { connect, type Proxy } from "../../wayland/index.ts";
import { AREA, BASE, identityPixel } from "./scale-square.ts";
import { bindGlobals, openToplevel, type ShmBuffer } from "./toplevel.ts";

const PERIOD_NS = 1_000_000_000n / 60n;

interface AppWindow {
  readonly surface: Proxy<"wl_surface">;
  readonly buffers: [ShmBuffer, ShmBuffer];
  next: number;
  seq: number;
  framePending: boolean;
}

const windows = Number(process.argv[2]);
const size = Number(process.argv[3]);
const tag = Number(process.argv[4]);
const controlPath = process.argv[5];
const display = process.env.WAYLAND_DISPLAY;
if (!(windows > 0 && size >= 2 * AREA && tag >= 0) || controlPath === undefined || display === undefined) {
  throw new Error("usage: WAYLAND_DISPLAY=SOCKET scale-app.ts WINDOWS SIZE TAG CONTROL_SOCKET");
}

const connection = await connect({ display });
const globals = bindGlobals(connection);

async function openWindow(index: number): Promise<AppWindow> {
  const { surface, buffers } = await openToplevel(globals, {
    title: `w${index}`,
    appId: "bench.scale",
    width: size,
    height: size,
  });
  for (const { words } of buffers) {
    words.fill(BASE);
    words[(AREA / 2 - 1) * size + AREA / 2 - 1] = identityPixel(tag, index);
  }
  const window: AppWindow = { surface, buffers, next: 0, seq: 0, framePending: false };
  // The first image: the whole window in BASE; its frame callback says it is up.
  const first = buffers[0];
  first.busy = true;
  window.next = 1;
  window.framePending = true;
  const shown = new Promise<void>((resolve) =>
    surface.request("frame").on("done", () => {
      window.framePending = false;
      resolve();
    }),
  );
  surface.request("attach", first.proxy, 0, 0);
  surface.request("damage_buffer", 0, 0, size, size);
  surface.request("commit");
  await shown;
  return window;
}

const opened: AppWindow[] = [];
for (let i = 0; i < windows; i++) opened.push(await openWindow(i));

/** Stamps since `animate`: window index, seq, commit time (ns, exact as a double below 2^53). */
let stampWindow: number[] = [];
let stampSeq: number[] = [];
let stampTime: number[] = [];
const counts = { ticks: 0, lateTicks: 0, framePending: 0, bufferBusy: 0 };
let timer: NodeJS.Timeout | null = null;

/** One update of one window, if it may draw now (else the tick's skip is counted). */
function update(index: number, window: AppWindow): void {
  if (window.framePending) {
    counts.framePending++;
    return;
  }
  const buffer = window.buffers[window.next] as ShmBuffer;
  if (buffer.busy) {
    counts.bufferBusy++;
    return;
  }
  window.next ^= 1;
  const seq = ++window.seq & 0xffffff;
  const from = AREA / 2;
  for (let y = from; y < from + AREA; y++) buffer.words.fill(seq, y * size + from, y * size + from + AREA);
  buffer.busy = true;
  window.framePending = true;
  window.surface.request("attach", buffer.proxy, 0, 0);
  window.surface.request("damage_buffer", from, from, AREA, AREA);
  window.surface.request("frame").on("done", () => (window.framePending = false));
  const now = process.hrtime.bigint();
  window.surface.request("commit");
  stampWindow.push(index);
  stampSeq.push(seq);
  stampTime.push(Number(now));
}

function animate(): void {
  if (timer !== null) return;
  stampWindow = [];
  stampSeq = [];
  stampTime = [];
  Object.assign(counts, { ticks: 0, lateTicks: 0, framePending: 0, bufferBusy: 0 });
  let due = process.hrtime.bigint();
  const tick = (): void => {
    counts.ticks++;
    opened.forEach((window, index) => update(index, window));
    due += PERIOD_NS;
    const now = process.hrtime.bigint();
    // A tick more than a period late is not made up: those updates were never asked for.
    while (due <= now) {
      due += PERIOD_NS;
      counts.lateTicks++;
    }
    timer = setTimeout(tick, Number(due - now) / 1e6);
  };
  tick();
}

const control = createConnection(controlPath);
control.on("error", () => process.exit(1));
control.on("close", () => {
  connection.destroy();
  process.exit(0);
});
control.write("ready\n");
for await (const line of createInterface({ input: control })) {
  if (line === "animate") animate();
  else if (line === "stop") {
    if (timer !== null) clearTimeout(timer);
    timer = null;
    const out: string[] = [`stamps ${stampTime.length}`];
    for (let i = 0; i < stampTime.length; i++) out.push(`${stampWindow[i]} ${stampSeq[i]} ${stampTime[i]}`);
    out.push(`counts ${counts.ticks} ${counts.lateTicks} ${counts.framePending} ${counts.bufferBusy}`);
    control.write(`${out.join("\n")}\n`);
  }
}
