/**
 * Fuzz target `wayland`: hostile clients of the Wayland server wire, against
 * the agent's compositor (compositor/ driven as gui-agent drives it) and the
 * desktop (desktop/'s Desktop), both in this process so that the leak checks
 * see their fds, mappings and SIGBUS guard slots. Each client is a real
 * connection on the server's Unix socket; a few run at once. A client sends
 * rounds of requests built from a model of its objects: recipes that walk
 * real apps' paths (binds at random versions, toplevels through the
 * configure handshake to a mapped buffer, popups, subsurfaces, viewports,
 * the clipboard, shm pools over real memfds, some shorter than the pool or
 * shrunk after it is mapped), random requests of any live object by its
 * schema, and mutations (bad ids and opcodes, lying lengths, strings without
 * NUL, huge arrays, reused new_ids, missing, extra or wrong fds, fd floods,
 * mutated and cut streams). One client in eight replays a real client's
 * capture (test/fuzz/corpus/wayland/). Between rounds the trusted side acts
 * (configures, focus, input, the clipboard).
 *
 * Reactions: `accepted` (requests dispatched, as the next sync's answer
 * shows), `protocol-error` (wl_display.error, then the hang-up), `limit`
 * (no_memory for a per-client limit), `disconnected` (hang-up without an
 * error: bad framing, fds without messages), `pool-shrank` (a pool's file
 * shrank under a buffer the server read), `waiting` (a mutated stream left
 * a message incomplete: the server rightly waits for its rest), `mapped` and
 * `popup` (deep states reached), `cut` and `replayed` (what the fuzzer did);
 * `implementation-error` would mean a handler threw. Unexpected: a
 * request handler that threw, an exception escaping the server, a gone
 * client whose accounting is not zero, a sync or write the server never
 * answered, a fresh valid client that does not get a configured, mapped
 * window (probed every PROBE_EVERY clients and at the end of each run), and
 * clients or windows left once every client has gone.
 */
import { Random, newStats, react, unexpected, type FuzzInstance, type FuzzTarget } from "../harness.ts";
import { probe, startServers, type FuzzServer } from "../wayland/servers.ts";
import { runSession, type SessionContext } from "../wayland/session.ts";
import { decodeCapture, type CapturedChunk } from "../wayland/wire.ts";

/** Clients connected at once. */
const PARALLEL = 4;
/** A liveness probe of both servers after this many clients. */
const PROBE_EVERY = 150;
/** How long the servers may take to let go of every client and window once all have gone (ms). */
const QUIET_TIMEOUT_MS = 15_000;

const tick = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Waits until `server` holds no client and no window; counts it as unexpected past the bound. */
async function waitQuiet(server: FuzzServer, stats: ReturnType<typeof newStats>): Promise<void> {
  await server.settle();
  const deadline = performance.now() + QUIET_TIMEOUT_MS;
  while (server.liveClients() > 0 || server.compositor.windows.length > 0) {
    if (performance.now() > deadline) {
      unexpected(
        stats,
        new Error(
          `${server.liveClients()} client(s) and ${server.compositor.windows.length} window(s) were still there ` +
            `${QUIET_TIMEOUT_MS} ms after every client had gone`,
        ),
        `${server.name}: quiet`,
      );
      return;
    }
    await tick(20);
  }
}

export const target: FuzzTarget = {
  name: "wayland",
  summary: "hostile Wayland clients on real sockets of the agent's compositor and the desktop, in-process",
  unit: "requests",
  testCount: 25_000,
  expectReactions: ["accepted", "protocol-error", "disconnected", "limit", "mapped", "popup", "pool-shrank"],
  async open({ seed, corpus, log }): Promise<FuzzInstance> {
    const stats = newStats();
    const random = new Random(seed);
    const captures = corpus.map(decodeCapture).filter((chunks): chunks is CapturedChunk[] => chunks !== null);
    stats.notes.corpus = captures.length;
    const { servers, destroy } = await startServers(stats);
    let clients = 0;
    let lastLog = performance.now();
    const started = performance.now();

    const probeAll = async (): Promise<void> => {
      for (const server of servers) {
        try {
          await probe(server, random);
          react(stats, "probe");
        } catch (error) {
          unexpected(stats, error, `${server.name}: liveness`);
        }
      }
    };

    return {
      stats,
      async run(count) {
        const context: SessionContext = { stats, corpus: captures, goal: stats.inputs + count };
        const worker = async (): Promise<void> => {
          while (stats.inputs < context.goal) {
            const server = random.pick(servers);
            await runSession(server, random.u32(), context);
            clients += 1;
            if (clients % PROBE_EVERY === 0) await probeAll();
            if (performance.now() - lastLog > 10_000) {
              lastLog = performance.now();
              const seconds = (lastLog - started) / 1000;
              log(
                `${stats.inputs} requests, ${clients} clients in ${seconds.toFixed(0)} s ` +
                  `(${Math.round(stats.inputs / seconds)}/s); ${JSON.stringify(stats.reactions)}`,
              );
            }
          }
        };
        await Promise.all(Array.from({ length: PARALLEL }, worker));
        stats.notes.clients = clients;
        for (const server of servers) await waitQuiet(server, stats);
        await probeAll();
        for (const server of servers) await waitQuiet(server, stats);
      },
      close: () => {
        destroy();
        return Promise.resolve();
      },
    };
  },
};
