/**
 * What a client's objects cost the compositor's heap, and that nothing
 * keeps them once the client is gone. A client of 100,000 objects left the
 * agent at 650 MB RSS: garbage V8 had not collected yet (an idle agent
 * allocates too little to start a full collection), ~5 KB per wl_surface,
 * most of it a 256-byte property store per request handler, made by tsx's
 * keepNames (each arrow function in an object literal is wrapped in
 * __name()). The compositor therefore runs here as the agent does, under
 * tsx, in a process of its own (peers/compositor-host.ts), which reports
 * its heap after full collections; the client is another process
 * (peers/frame-client.ts).
 */
import { createInterface } from "node:readline";

import { afterEach, describe, expect, it } from "vitest";

import { startFrameClient, type FrameClient } from "../helpers/frame-client.ts";
import { spawnTs, whenReady, withStartup } from "../helpers/processes.ts";

/** Surfaces the client creates (well below the per-client object limit). */
const SURFACES = 5000;
/** What one wl_surface may cost the compositor's heap, its wl_surface resource included (bytes). */
const MAX_BYTES_PER_SURFACE = 3000;
/** How long the host may take to answer (ms). */
const ANSWER_TIMEOUT_MS = 30_000;

let client: FrameClient | null = null;
let host: ReturnType<typeof spawnTs> | null = null;

afterEach(async () => {
  await client?.stop();
  client = null;
  host?.kill("SIGKILL");
  host = null;
});

describe("a client's objects", { timeout: withStartup(3 * ANSWER_TIMEOUT_MS, 2) }, () => {
  it(`cost the compositor under ${MAX_BYTES_PER_SURFACE} heap bytes per wl_surface, and nothing once the client is gone`, async () => {
    host = spawnTs("test/gui-agent/peers/compositor-host.ts", [], { stdio: ["pipe", "pipe", "pipe"] }, ["--expose-gc"]);
    const child = host;
    const socketPath = (await whenReady(child, /^ready (.+)$/)).slice("ready ".length);
    const answers: string[] = [];
    const waiting: Array<(line: string) => void> = [];
    createInterface({ input: child.stdout! }).on("line", (line) => {
      const waiter = waiting.shift();
      if (waiter !== undefined) waiter(line);
      else answers.push(line);
    });
    const heap = (): Promise<number> => {
      child.stdin!.write("heap\n");
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error("the compositor host never told its heap")), ANSWER_TIMEOUT_MS);
        const take = (line: string): void => {
          clearTimeout(timer);
          resolve(Number(line.split(" ")[1]));
        };
        const queued = answers.shift();
        if (queued !== undefined) take(queued);
        else waiting.push(take);
      });
    };

    client = await startFrameClient(socketPath);
    const before = await heap();
    client.send(`surfaces ${SURFACES}`);
    await client.waitForLine(/^surfaces$/, `${SURFACES} surfaces made`, ANSWER_TIMEOUT_MS);
    const perSurface = ((await heap()) - before) / SURFACES;
    client.send("quit");
    await client.stop();
    client = null;
    // The compositor learns of the hang-up on its next read: ask until the heap is back, bounded.
    const started = performance.now();
    let left = (await heap()) - before;
    while (left > 1024 * 1024 && performance.now() - started < ANSWER_TIMEOUT_MS) left = (await heap()) - before;
    if (process.env.SHOW_FIGURES !== undefined) console.log(JSON.stringify({ perSurface, left }));
    expect(perSurface, "heap bytes per wl_surface").toBeLessThan(MAX_BYTES_PER_SURFACE);
    expect(left, "heap bytes still in use after the client left").toBeLessThan(1024 * 1024);
  });
});
