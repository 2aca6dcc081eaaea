/**
 * eventfd round trip between two Node processes through the addon (signal,
 * Poll wakes the peer, it signals back, our Poll wakes), beside the same
 * round trip between two C processes compiled and run in this run.
 */
import { execFileSync, spawn } from "node:child_process";
import path from "node:path";

import * as native from "../native/index.ts";
import { benchDir, compileC, sampleAsync, stats, type BenchContext, type BenchRow } from "./lib.ts";

const C_SOURCE = String.raw`
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char** argv) {
  int n = argc > 1 ? atoi(argv[1]) : 10000;
  int ping = eventfd(0, 0), pong = eventfd(0, 0);
  uint64_t one = 1, value;
  pid_t child = fork();
  if (child == 0) {
    for (;;) {
      if (read(ping, &value, 8) != 8) return 1;
      if (value >= 1000000) return 0;
      if (write(pong, &one, 8) != 8) return 1;
    }
  }
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

async function nodeRoundTrips(iterations: number): Promise<number[]> {
  const ping = native.eventfdCreate();
  const pong = native.eventfdCreate();
  const child = spawn(process.execPath, ["--import", "tsx", path.join(benchDir, "peers", "eventfd-echo.ts")], {
    stdio: ["ignore", "inherit", "inherit", ping, pong],
  });
  let wake: (() => void) | undefined;
  const poll = new native.Poll(pong, () => {
    if (native.eventfdConsume(pong) > 0) wake?.();
  });
  poll.start(native.POLL_READABLE);
  const roundTrip = (): Promise<void> =>
    new Promise((resolve) => {
      wake = resolve;
      native.eventfdSignal(ping);
    });
  // The first round trip waits for the child to start.
  await roundTrip();
  const samples = await sampleAsync(roundTrip, iterations, 200);
  native.eventfdSignal(ping, 1_000_000);
  await new Promise((resolve) => child.on("exit", resolve));
  poll.close();
  native.close(ping);
  native.close(pong);
  return samples;
}

export default async function eventfdRoundTrip(context: BenchContext): Promise<BenchRow[]> {
  const iterations = context.iterations(20_000, 500);
  const binary = compileC("eventfd-roundtrip", C_SOURCE);
  const cSamples = execFileSync(binary, [String(iterations)], { encoding: "utf8" })
    .trim()
    .split("\n")
    .map(Number);
  const nodeSamples = await nodeRoundTrips(iterations);
  return [
    {
      name: "eventfd round trip, 2 Node processes (addon + uv_poll)",
      unit: "µs",
      value: stats(nodeSamples),
      baseline: { name: "same round trip, 2 C processes (blocking read)", value: stats(cSamples) },
      better: "lower",
      target: "≤ 2",
    },
  ];
}
