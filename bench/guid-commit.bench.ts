/**
 * The whole hot path, domain to host: from an app's commit of a 1920×1080
 * window in a domain to the daemon's commit of that window's surface at the
 * host compositor, for full-frame damage and for one 64×64 rectangle.
 *
 * Four processes as on a real machine: the app (our pattern client), the
 * agent (this process), guid (`qubes-guid`, the real program) and the host
 * compositor (a minimal one on wayland/, bench/peers/host-compositor.ts).
 * Both timestamps are CLOCK_MONOTONIC: the app's just before its commit, the
 * host compositor's when it reads guid's commit. One frame is in flight at a
 * time, so each app commit maps to one host commit.
 *
 * Beside it, in the same run: memcpy (TypedArray.set) of the damaged bytes
 * and one eventfd round trip between two C processes. guid's own counters
 * (SIGUSR1) give the bytes it copied per frame: 0 on the zero-copy path.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";

import pino from "pino";

import { startAgent } from "../gui-agent/index.ts";
import {
  READY_TIMEOUT_MS,
  benchDir,
  childLines,
  sample,
  single,
  stats,
  type BenchContext,
  type BenchRow,
} from "./lib.ts";
import { cEventfdRoundTrips } from "./native-eventfd-roundtrip.bench.ts";

const WIDTH = 1920;
const HEIGHT = 1080;
const AGENT_DOMAIN = 9;

function tsChild(script: string, args: string[], env: NodeJS.ProcessEnv): ChildProcess {
  return spawn(process.execPath, ["--import", "tsx", script, ...args], { env, stdio: ["pipe", "pipe", "inherit"] });
}

/** Reads guid's counters: SIGUSR1 makes it print one JSON line on stdout. */
async function guidCounters(
  guid: ChildProcess,
  next: (what: string) => Promise<string>,
): Promise<Record<string, number>> {
  guid.kill("SIGUSR1");
  for (;;) {
    const line = await next("its counters");
    if (line.startsWith("{")) return (JSON.parse(line) as { counters: Record<string, number> }).counters;
  }
}

export default async function guidCommit(context: BenchContext): Promise<BenchRow[]> {
  const dir = mkdtempSync(path.join(tmpdir(), "qubes-guid-bench-"));
  const hostSocket = path.join(dir, "host-wayland");
  const host = tsChild(path.join(benchDir, "peers", "host-compositor.ts"), [hostSocket], process.env);
  const hostLine = childLines(host, "the host compositor");
  await hostLine("ready", READY_TIMEOUT_MS);
  const agent = await startAgent({
    guiDomain: 0,
    ownDomain: AGENT_DOMAIN,
    vchan: "socket",
    grants: "memfd",
    socketDir: dir,
    waylandDisplay: path.join(dir, "wayland-domain"),
    log: pino({ level: "silent" }),
  });
  const guid = tsChild(
    path.join(benchDir, "..", "bin", "qubes-guid.js"),
    ["-d", String(AGENT_DOMAIN), "-N", "bench", "-c", "blue", "-q"],
    { ...process.env, WAYLAND_DISPLAY: hostSocket, VCHAN_SOCKET_DIR: dir, VCHAN_DOMAIN: "0", XDG_RUNTIME_DIR: dir },
  );
  const guidLine = childLines(guid, "qubes-guid");
  const app = tsChild(path.join(benchDir, "peers", "pattern-app.ts"), [], {
    ...process.env,
    WAYLAND_DISPLAY: agent.compositor.socketPath,
  });
  const appLine = childLines(app, "the app");
  try {
    await appLine("ready", READY_TIMEOUT_MS);
    // The first content commit at the host: guid has shown the window.
    await hostLine("the window's first commit", READY_TIMEOUT_MS);

    /** One frame: the app commits, the host reports guid's commit; µs between the two. */
    const frame = async (kind: "full" | "small"): Promise<number> => {
      // Commits of the window's start (its first image, then its first damage) are not frames of this run.
      hostLine.drop();
      app.stdin?.write(`${kind} 1\n`);
      const start = BigInt(await appLine("its commit time"));
      const line = await hostLine("guid's commit of the frame");
      return Number(BigInt(line.split(" ")[1] as string) - start) / 1000;
    };
    const measure = async (kind: "full" | "small", iterations: number): Promise<number[]> => {
      for (let i = 0; i < Math.min(20, iterations); i++) await frame(kind);
      const samples: number[] = [];
      for (let i = 0; i < iterations; i++) samples.push(await frame(kind));
      return samples;
    };

    const before = await guidCounters(guid, guidLine);
    const full = await measure("full", context.iterations(200, 5));
    const afterFull = await guidCounters(guid, guidLine);
    const small = await measure("small", context.iterations(2000, 20));
    const afterSmall = await guidCounters(guid, guidLine);

    const roundTrips = cEventfdRoundTrips(context.iterations(20_000, 500), "free");
    const frameBytes = WIDTH * HEIGHT * 4;
    const source = new Uint8Array(frameBytes).fill(7);
    const target = new Uint8Array(frameBytes);
    const memcpyFull = sample(() => target.set(source), context.iterations(200, 5), 10);
    const smallSource = source.subarray(0, 64 * 64 * 4);
    const memcpySmall = sample(() => target.set(smallSource, 4096), context.iterations(2000, 20), 100);
    const rt = stats(roundTrips);
    const copied = (from: Record<string, number>, to: Record<string, number>, frames: number): number =>
      ((to.bytesCopied ?? 0) - (from.bytesCopied ?? 0)) / frames;
    const fullBaseline = memcpyFull.map((value) => value + rt.median);
    return [
      {
        name: "guid: 1920×1080 app commit in a domain to guid's commit at the host, full-frame damage (4 processes)",
        unit: "µs",
        value: stats(full),
        baseline: { name: "memcpy of 8,294,400 bytes + one C eventfd round trip", value: stats(fullBaseline) },
        better: "lower",
        target: "≤ 1.5",
        notes: [
          `bytes copied by guid per frame: ${copied(before, afterFull, full.length)}`,
          `memcpy alone: median ${stats(memcpyFull).median.toFixed(0)} µs; C round trip: median ${rt.median.toFixed(1)} µs`,
        ],
      },
      {
        name: "guid: 1920×1080 app commit in a domain to guid's commit at the host, one 64×64 damage (4 processes)",
        unit: "µs",
        value: stats(small),
        baseline: { name: "one eventfd round trip between two C processes", value: rt },
        better: "lower",
        target: "≤ 3",
        notes: [
          `bytes copied by guid per frame: ${copied(afterFull, afterSmall, small.length)}`,
          `memcpy of the 16,384 damaged bytes: median ${stats(memcpySmall).median.toFixed(2)} µs`,
          "placement: free (the four processes and the C pair unpinned, the scheduler spreads them over the CPUs)",
        ],
      },
      {
        name: "guid: bytes copied by the daemon per frame, both cases",
        unit: "B",
        value: single(copied(before, afterSmall, full.length + small.length)),
      },
    ];
  } finally {
    app.stdin?.end();
    guid.kill("SIGTERM");
    host.stdin?.end();
    await Promise.all(
      [app, guid, host].map(
        (child) =>
          new Promise((resolve) => {
            if (child.exitCode !== null || child.signalCode !== null) resolve(undefined);
            else child.once("exit", resolve);
          }),
      ),
    );
    agent.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}
