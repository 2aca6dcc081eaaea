/**
 * eventfd round trip between two Node processes through the addon (signal,
 * Poll wakes the peer, it signals back, our Poll wakes), beside the same
 * round trip between two C processes compiled and run in this run.
 */
import { execFileSync, spawn } from "node:child_process";
import path from "node:path";

import * as native from "../native/index.ts";
import {
  C_PIN_FUNCTION,
  benchDir,
  compileC,
  pinSelf,
  pinnedCommand,
  placementCpus,
  placements,
  stats,
  type BenchContext,
  type BenchRow,
  type Placement,
} from "./lib.ts";

const C_SOURCE = String.raw`
#define _GNU_SOURCE
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

${C_PIN_FUNCTION}
/* usage: eventfd-roundtrip N [PARENT_CPU CHILD_CPU] (-1 = not pinned) */
int main(int argc, char** argv) {
  int n = argc > 1 ? atoi(argv[1]) : 10000;
  int parentCpu = argc > 3 ? atoi(argv[2]) : -1, childCpu = argc > 3 ? atoi(argv[3]) : -1;
  int ping = eventfd(0, 0), pong = eventfd(0, 0);
  uint64_t one = 1, value;
  pid_t child = fork();
  if (child == 0) {
    pin(childCpu);
    for (;;) {
      if (read(ping, &value, 8) != 8) return 1;
      if (value >= 1000000) return 0;
      if (write(pong, &one, 8) != 8) return 1;
    }
  }
  pin(parentCpu);
  double* samples = malloc(sizeof(double) * n);
  for (int i = -100; i < n; i++) {
    struct timespec start, end;
    clock_gettime(CLOCK_MONOTONIC, &start);
    if (write(ping, &one, 8) != 8) return 1;
    if (read(pong, &value, 8) != 8) return 1;
    clock_gettime(CLOCK_MONOTONIC, &end);
    if (i >= 0) samples[i] = (end.tv_sec - start.tv_sec) * 1e6 + (end.tv_nsec - start.tv_nsec) / 1e3;
  }
  uint64_t stop = 1000000;
  if (write(ping, &stop, 8) != 8) return 1;
  waitpid(child, NULL, 0);
  for (int i = 0; i < n; i++) printf("%.3f\n", samples[i]);
  return 0;
}
`;

/**
 * The Node side: the Poll callback consumes the pong, records the time and
 * signals the next ping at once (no promise per round trip), so the figure
 * is the addon's and libuv's cost, not the harness's.
 */
async function nodeRoundTrips(iterations: number, placement: Placement): Promise<number[]> {
  const ping = native.eventfdCreate();
  const pong = native.eventfdCreate();
  const [own, peer] = placementCpus(placement);
  const [command, args] = pinnedCommand(peer, process.execPath, [
    "--import",
    "tsx",
    path.join(benchDir, "peers", "eventfd-echo.ts"),
  ]);
  const child = spawn(command, args, { stdio: ["ignore", "inherit", "inherit", ping, pong] });
  pinSelf(own);
  const warmup = 500;
  const samples: number[] = [];
  let start = 0n;
  let round = 0;
  await new Promise<void>((resolve) => {
    const poll = new native.Poll(pong, () => {
      if (native.eventfdConsume(pong) === 0) return;
      const end = process.hrtime.bigint();
      if (round >= warmup) samples.push(Number(end - start) / 1000);
      round += 1;
      if (samples.length === iterations) {
        poll.close();
        resolve();
        return;
      }
      start = process.hrtime.bigint();
      native.eventfdSignal(ping);
    });
    poll.start(native.POLL_READABLE);
    start = process.hrtime.bigint();
    native.eventfdSignal(ping);
  });
  pinSelf(-1);
  native.eventfdSignal(ping, 1_000_000);
  await new Promise((resolve) => child.on("exit", resolve));
  native.close(ping);
  native.close(pong);
  return samples;
}

/**
 * `iterations` eventfd round trips between two C processes placed as
 * `placement` says, each in µs: the baseline other cases stand beside.
 */
export function cEventfdRoundTrips(iterations: number, placement: Placement): number[] {
  return cRoundTrips(compileC("eventfd-roundtrip", C_SOURCE), iterations, placement);
}

function cRoundTrips(binary: string, iterations: number, placement: Placement): number[] {
  const [parent, child] = placementCpus(placement);
  return execFileSync(binary, [String(iterations), String(parent), String(child)], { encoding: "utf8" })
    .trim()
    .split("\n")
    .map(Number);
}

export default async function eventfdRoundTrip(context: BenchContext): Promise<BenchRow[]> {
  const iterations = context.iterations(20_000, 500);
  const binary = compileC("eventfd-roundtrip", C_SOURCE);
  // The Node process runs pinned as the C parent is, so both sides see the same placement.
  const rows: BenchRow[] = [];
  for (const placement of placements()) {
    const cSamples = cRoundTrips(binary, iterations, placement);
    const nodeSamples = await nodeRoundTrips(iterations, placement);
    rows.push({
      name: `eventfd round trip, 2 Node processes (addon + uv_poll), ${placement}`,
      unit: "µs",
      value: stats(nodeSamples),
      baseline: { name: `same round trip, 2 C processes (blocking read), ${placement}`, value: stats(cSamples) },
      better: "lower",
      target: placement === "two CPUs" ? "≤ 2" : undefined,
    });
  }
  return rows;
}
