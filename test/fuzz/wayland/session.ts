/**
 * One hostile client of a fuzzed server: a connection that sends rounds of
 * generated requests (mostly valid, some mutated, now and then the whole
 * stream mutated, cut, or a flood of fds without messages), syncs after
 * most rounds to learn what it has and how the server took it, and ends
 * with a sync, a hang-up, or a cut. A replay session sends a real client's
 * captured requests instead, whole or mutated, with fresh fds where the
 * capture had them. Each session counts the server's reaction.
 */
import { RawClient } from "../../helpers/raw-client.ts";
import { Random, concat, mutate, react, unexpected, type FuzzStats } from "../harness.ts";
import { ClientModel, RequestGenerator, mutateRequest, type Style } from "./model.ts";
import { sendBytes, sendRequests, shrinkHeld, type HeldFds } from "./send.ts";
import type { FuzzServer } from "./servers.ts";
import type { CapturedChunk, FdSpec } from "./wire.ts";

/** How long a sync may take to be answered (ms): past it the server is stuck. */
export const SYNC_TIMEOUT_MS = 20_000;

/** How long a sync after a mutated stream may wait before the client concludes the server waits for the rest of a message (ms). */
const GARBLED_SYNC_TIMEOUT_MS = 1000;

/** wl_display.error codes (wayland.xml). */
const ERROR_NO_MEMORY = 2;
const ERROR_IMPLEMENTATION = 3;

/** What every session shares. */
export interface SessionContext {
  readonly stats: FuzzStats;
  /** The corpus: real clients' captured requests. */
  readonly corpus: ReadonlyArray<readonly CapturedChunk[]>;
  /** Stop sending once stats.inputs reaches it. */
  readonly goal: number;
}

/** Counts how the server ended (or kept) a client after a sync was answered or refused. */
function countEnd(stats: FuzzStats, model: ClientModel): void {
  const error = model.error;
  if (error === null) {
    react(stats, "disconnected");
    return;
  }
  // Codes are the interface's own: these two are wl_display's.
  const display = error.interface === "wl_display";
  if (display && error.code === ERROR_NO_MEMORY && error.message.includes("limit")) {
    react(stats, "limit");
  } else if (display && error.code === ERROR_IMPLEMENTATION) {
    react(stats, "implementation-error");
  } else {
    react(stats, "protocol-error");
    if (error.message.includes("shrank")) react(stats, "pool-shrank");
  }
  const key = `error ${error.interface}.${error.code}`;
  stats.notes[key] = Number(stats.notes[key] ?? 0) + 1;
}

/** Syncs; true when answered, false (with the end counted) when the server hung up first. */
async function syncAndCount(
  raw: RawClient,
  model: ClientModel,
  stats: FuzzStats,
  server: FuzzServer,
  pending: { requests: number },
): Promise<boolean> {
  const answer = await raw.sync(`${server.name}: a hostile client's sync`, SYNC_TIMEOUT_MS);
  model.absorb(raw.events.splice(0));
  if (answer === "answered") {
    react(stats, "accepted", pending.requests);
    pending.requests = 0;
    return true;
  }
  countEnd(stats, model);
  return false;
}

/** Sends 2 × 200 fds with a byte that never completes a message: the server must end the client, not keep the fds. */
async function floodFds(raw: RawClient): Promise<void> {
  const fds: FdSpec[] = Array.from({ length: 200 }, () => ({ kind: "eventfd" }));
  for (let i = 0; i < 2 && !raw.closed; i++) await sendBytes(raw, new Uint8Array([1]), fds);
}

async function hostile(raw: RawClient, random: Random, server: FuzzServer, context: SessionContext): Promise<void> {
  const model = new ClientModel();
  const style: Style = random.pick(["clean", "app", "app", "mixed", "chaos"] as const);
  const round: Round = {
    generator: new RequestGenerator(random, model, style),
    model,
    pending: { requests: 0 },
    held: [],
    style,
    last: false,
  };
  const rounds = 1 + random.below(style === "app" || style === "clean" ? 16 : 8);
  try {
    for (let i = 0; i < rounds && !raw.closed && context.stats.inputs < context.goal; i++) {
      // The pools of the last round are mapped now: shrink the files meant to shrink, then show their buffers.
      shrinkHeld(round.held);
      round.last = i === rounds - 1;
      if (!(await hostileRound(raw, random, server, context, round))) return;
    }
  } finally {
    shrinkHeld(round.held, false);
  }
}

/** What one round of a hostile client works with. */
interface Round {
  generator: RequestGenerator;
  model: ClientModel;
  pending: { requests: number };
  held: HeldFds;
  style: Style;
  last: boolean;
}

/** One round: requests written, then (mostly) a sync; false once the client is over. */
async function hostileRound(
  raw: RawClient,
  random: Random,
  server: FuzzServer,
  context: SessionContext,
  { generator, model, pending, held, style, last }: Round,
): Promise<boolean> {
  const { stats } = context;
  const clean = style === "clean";
  const mutateOneIn = style === "app" ? 80 : style === "mixed" ? 12 : 5;
  if (!clean && random.oneIn(120)) {
    await floodFds(raw);
    stats.inputs += 1;
    return syncAndCount(raw, model, stats, server, pending);
  }
  const requests = generator
    .round(1 + random.below(24))
    .map((request) => (!clean && random.oneIn(mutateOneIn) ? mutateRequest(random, model, request) : request));
  const cut = last && random.oneIn(5);
  const garble = !clean && random.oneIn(style === "app" ? 200 : 30);
  const transform =
    cut || garble
      ? (bytes: Uint8Array): Uint8Array => {
          const mutated = garble ? mutate(random, bytes) : bytes;
          return cut ? mutated.subarray(0, random.below(mutated.length + 1)) : mutated;
        }
      : undefined;
  const written = await sendRequests(raw, requests, transform, held);
  stats.inputs += requests.length;
  stats.bytes += Math.max(0, written);
  pending.requests += requests.length;
  if (random.oneIn(3)) server.poke(random);
  if (cut) {
    // Hung up mid-stream: nothing to wait for; the server must free what it held.
    react(stats, "cut");
    return false;
  }
  if (garble) return endGarbled(raw, model, stats, server, pending);
  if (!last && random.oneIn(5)) return true;
  return syncAndCount(raw, model, stats, server, pending);
}

/**
 * After a mutated stream: a sync, answered, refused, or left waiting behind
 * a message the mutation made longer than what was sent (the server rightly
 * waits for the rest; then the client hangs up). False: the client is over.
 */
async function endGarbled(
  raw: RawClient,
  model: ClientModel,
  stats: FuzzStats,
  server: FuzzServer,
  pending: { requests: number },
): Promise<false> {
  let answer: "answered" | "closed";
  try {
    answer = await raw.sync(`${server.name}: the sync after a mutated stream`, GARBLED_SYNC_TIMEOUT_MS);
  } catch {
    react(stats, "waiting");
    return false;
  }
  model.absorb(raw.events.splice(0));
  if (answer === "answered") react(stats, "accepted", pending.requests);
  else countEnd(stats, model);
  return false;
}

function fdSpecOf(captured: CapturedChunk["fds"][number]): FdSpec {
  // foot maps a sparse 512 MiB pool: the replay gives it the same (within the per-client 1 GiB limit).
  if (captured.kind === "file") return { kind: "memfd", size: Math.min(captured.size, 1 << 30) };
  return captured.kind === "pipe" ? { kind: "pipe-write" } : { kind: "socket" };
}

/** Counts the messages a stream frames (as the server would, up to the first bad header). */
function countMessages(bytes: Uint8Array): number {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let count = 0;
  for (let at = 0; at + 8 <= bytes.length; count++) {
    const size = view.getUint32(at + 4, true) >>> 16;
    if (size < 8 || size % 4 !== 0) return count + 1;
    at += size;
  }
  return count;
}

/** Replays a captured real client, whole or mutated, with fresh fds where it had them. */
async function replay(raw: RawClient, random: Random, server: FuzzServer, context: SessionContext): Promise<void> {
  const { stats } = context;
  const chunks = random.pick(context.corpus);
  const starts: number[] = [];
  let length = 0;
  for (const chunk of chunks) {
    starts.push(length);
    length += chunk.bytes.length;
  }
  let stream = concat(...chunks.map((chunk) => chunk.bytes));
  const mutated = !random.oneIn(3);
  if (mutated) {
    const other = concat(...random.pick(context.corpus).map((chunk) => chunk.bytes));
    for (let i = 1 + random.below(3); i > 0; i--) stream = mutate(random, stream, other);
  }
  const model = new ClientModel();
  const pending = { requests: countMessages(stream) };
  for (let i = 0; i < chunks.length && !raw.closed; i++) {
    const end = i + 1 < chunks.length ? (starts[i + 1] as number) : stream.length;
    const bytes = stream.subarray(Math.min(starts[i] as number, stream.length), Math.max(end, 0));
    const written = await sendBytes(raw, bytes, (chunks[i] as CapturedChunk).fds.map(fdSpecOf));
    stats.bytes += Math.max(0, written);
  }
  stats.inputs += pending.requests;
  react(stats, "replayed");
  // The capture's own objects are unknown to the model: only the display's events are read.
  if (mutated) await endGarbled(raw, model, stats, server, pending);
  else await syncAndCount(raw, model, stats, server, pending);
}

/**
 * Runs one client of `server` with its own PRNG (seeded from `seed`, so
 * that its requests replay), counting what happened; what threw is counted
 * as unexpected with the seed.
 */
export async function runSession(server: FuzzServer, seed: number, context: SessionContext): Promise<void> {
  const random = new Random(seed);
  let raw: RawClient | null = null;
  try {
    raw = RawClient.connect(server.socketPath);
    if (context.corpus.length > 0 && random.oneIn(8)) await replay(raw, random, server, context);
    else await hostile(raw, random, server, context);
  } catch (error) {
    unexpected(context.stats, error, `${server.name} session seed ${seed}`);
  } finally {
    raw?.destroy();
  }
}
