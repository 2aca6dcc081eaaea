// Turn-taking in the Wayland server: the work done for one client in one
// turn of the event loop is bounded (messages and time), so another
// client's request waits for a turn's share of the flood, not for the whole
// flood. A flood is dispatched whole and in order across turns, with the
// fds of requests left for a later turn, and a client that keeps flooding
// waits between its turns.
import { afterEach, beforeEach, describe, expect, it } from "vitest";

import { close, memfdCreate, mmap, munmap, recvmsg, sendmsg, socketpair } from "../../native/index.ts";
import {
  DEFAULT_MAX_MESSAGES_PER_TURN,
  DEFAULT_MAX_TURN_MS,
  Display,
  Connection,
  FLOOD_TURNS,
  ShmPool,
  compileInterface,
  createShmGlobal,
  type Client,
  type DisplayOptions,
  wl_callback,
} from "../../wayland/index.ts";
import { RawClient, concatMessages, rawMessage } from "../helpers/raw-client.ts";

const WL_COMPOSITOR_CREATE_REGION = 1;
const WL_SHM_CREATE_POOL = 0;

/** One handled create_region: whose, which id, and in which turn of the event loop. */
interface Handled {
  client: Client;
  id: number;
  turn: number;
}

let display: Display;
let handled: Handled[];
/** Requests handled per client. */
let counts: Map<Client, number>;
let onRegion: (entry: Handled) => void;
let onRegionDestroyed: (id: number) => void;
let turn: number;
let ticking: boolean;
const raws: RawClient[] = [];
const fds: number[] = [];

/** Counts turns of the event loop: one setImmediate per turn, for as long as the test runs. */
function tick(): void {
  if (!ticking) return;
  turn += 1;
  setImmediate(tick);
}

function createDisplay(options: DisplayOptions): void {
  display = new Display(options);
  createShmGlobal(display);
  display.createGlobal("wl_compositor", 5, (resource) =>
    resource.implement({
      create_region: (region) => {
        region.implement({});
        region.events.destroy.add(() => onRegionDestroyed(region.id));
        const entry = { client: region.client, id: region.id, turn };
        handled.push(entry);
        counts.set(entry.client, (counts.get(entry.client) ?? 0) + 1);
        onRegion(entry);
      },
    }),
  );
}

beforeEach(() => {
  handled = [];
  counts = new Map();
  onRegion = () => undefined;
  onRegionDestroyed = () => undefined;
  turn = 0;
  ticking = true;
  setImmediate(tick);
});

afterEach(() => {
  ticking = false;
  for (const raw of raws.splice(0)) raw.destroy();
  for (const fd of fds.splice(0)) close(fd);
  display.destroy();
});

/** A raw client over a socketpair with wl_compositor at id 3 and wl_shm at id 4. */
async function rawClient(): Promise<{ client: Client; raw: RawClient }> {
  const pair = RawClient.pair(display);
  raws.push(pair.raw);
  await pair.raw.bindGlobals([["wl_compositor", 4], "wl_shm"]);
  await pair.raw.sync("the binds");
  return pair;
}

function regions(ids: readonly number[]): Uint8Array {
  return concatMessages(ids.map((id) => rawMessage(3, WL_COMPOSITOR_CREATE_REGION, [id])));
}

function range(from: number, count: number): number[] {
  return Array.from({ length: count }, (_, i) => from + i);
}

/** Resolves once `count` requests of `client` were handled; rejects naming what never came. */
function handledCount(client: Client, count: number, timeoutMs = 20_000): Promise<void> {
  return new Promise((resolve, reject) => {
    const done = (): boolean => (counts.get(client) ?? 0) >= count;
    if (done()) return resolve();
    const timer = setTimeout(() => {
      const got = counts.get(client) ?? 0;
      reject(new Error(`${count} requests of the client were never handled within ${timeoutMs} ms (only ${got})`));
    }, timeoutMs);
    const previous = onRegion;
    onRegion = (entry) => {
      previous(entry);
      if (done()) {
        clearTimeout(timer);
        resolve();
      }
    };
  });
}

describe("turn-taking between clients", () => {
  it("handles another client's request after at most two turns' share of a flooding client's requests", async () => {
    createDisplay({ maxMessagesPerTurn: 100, maxTurnMs: 10_000 });
    const flooder = await rawClient();
    const other = await rawClient();
    // The other client asks as soon as the flood is being handled.
    onRegion = (entry) => {
      if (entry.client === flooder.client && entry.id === 100) void other.raw.write(regions([7]));
    };
    const count = 8000;
    void flooder.raw.write(regions(range(100, count)));
    await handledCount(other.client, 1);
    await handledCount(flooder.client, count);

    const flood = handled.filter((entry) => entry.client === flooder.client);
    const before = handled.findIndex((entry) => entry.client === other.client);
    expect(before, "flood requests handled before the other client's").toBeLessThanOrEqual(2 * 100);
    expect(flood.map((entry) => entry.id)).toEqual(range(100, count));
    expect(flooder.client.destroyed).toBe(false);
  });

  it("dispatches a flood whole and in order across turns, each pool with the fd its request carried", async () => {
    createDisplay({ maxMessagesPerTurn: 7, maxTurnMs: 10_000, maxPoolsPerClient: 1000, maxFdsPerClient: 1000 });
    const { client, raw } = await rawClient();
    const count = 600;
    const pools = range(10_000, count);
    // Each pool's memfd holds its index; a region request between every two pools.
    const poolFds = pools.map((_, index) => {
      const fd = memfdCreate(`pool ${index}`, 4096);
      fds.push(fd);
      const memory = mmap(fd, 0, 4096, { writable: true });
      new DataView(memory).setUint32(0, index, true);
      munmap(memory);
      return fd;
    });
    for (let at = 0; at < count; at += 200) {
      const messages = pools
        .slice(at, at + 200)
        .flatMap((id, i) => [
          rawMessage(4, WL_SHM_CREATE_POOL, [id, 4096]),
          rawMessage(3, WL_COMPOSITOR_CREATE_REGION, [20_000 + at + i]),
        ]);
      void raw.write(concatMessages(messages), poolFds.slice(at, at + 200));
    }
    await handledCount(client, count);
    expect(await raw.sync("the sync after the flood")).toBe("answered");

    expect(handled.map((entry) => entry.id)).toEqual(range(20_000, count));
    pools.forEach((id, index) => {
      const pool = client.getObject(id)?.data;
      expect(pool).toBeInstanceOf(ShmPool);
      expect(new DataView((pool as ShmPool).memory).getUint32(0, true), `the marker of pool ${id}`).toBe(index);
    });
    const turns = new Set(handled.map((entry) => entry.turn));
    expect(turns.size, "turns the 1200 requests were spread over").toBeGreaterThanOrEqual((2 * count) / 7 / 2);
    expect(client.usage.fds).toBe(count);
  });

  it("stops dispatching for a client once a turn has taken maxTurnMs, and carries on in a later turn", async () => {
    createDisplay({ maxMessagesPerTurn: 1000, maxTurnMs: 5 });
    const { client, raw } = await rawClient();
    onRegion = () => {
      const until = performance.now() + 3;
      while (performance.now() < until);
    };
    void raw.write(regions(range(100, 20)));
    await handledCount(client, 20);
    const perTurn = new Map<number, number>();
    for (const entry of handled) perTurn.set(entry.turn, (perTurn.get(entry.turn) ?? 0) + 1);
    expect(Math.max(...perTurn.values()), "3 ms requests handled in one turn of at most 5 ms").toBeLessThanOrEqual(2);
  });

  it("makes a client that keeps spending its whole turn wait floodPauseMs between turns", async () => {
    createDisplay({ maxMessagesPerTurn: 10, maxTurnMs: 10_000, floodPauseMs: 20 });
    const { client, raw } = await rawClient();
    const times: number[] = [];
    onRegion = () => times.push(performance.now());
    void raw.write(regions(range(100, 200)));
    await handledCount(client, 200);
    // 20 turns of 10: the first FLOOD_TURNS come at once, the others 20 ms apart.
    const elapsed = (times[199] as number) - (times[0] as number);
    expect(elapsed).toBeGreaterThanOrEqual((20 - FLOOD_TURNS - 1) * 20 - 5);
  });

  it("keeps the default budget of a turn small: 256 requests or 2 ms, a 2 ms wait for a flood", () => {
    expect(DEFAULT_MAX_MESSAGES_PER_TURN).toBe(256);
    expect(DEFAULT_MAX_TURN_MS).toBe(2);
    createDisplay({});
  });

  it("ends a client that waits for its turn without handling the rest of its requests", async () => {
    createDisplay({ maxMessagesPerTurn: 10, maxTurnMs: 10_000 });
    const { client, raw } = await rawClient();
    const bystander = await rawClient();
    // Ended from outside its turn (as a compositor ends a client for what another did), while requests wait.
    onRegion = (entry) => {
      if (entry.client === client && entry.id === 115) setImmediate(() => client.destroy());
    };
    void raw.write(regions(range(100, 1000))).catch(() => undefined);
    await raw.waitForClose("the hang-up of the ended client");
    expect(await bystander.raw.sync("the bystander's sync")).toBe("answered");
    expect(handled.filter((entry) => entry.client === client).map((entry) => entry.id)).toEqual(range(100, 20));
  });

  it("tears down a client with thousands of objects over several turns, newest first, and says it is gone after the last", async () => {
    createDisplay({ maxTurnMs: 2 });
    const { client, raw } = await rawClient();
    const other = await rawClient();
    const count = 5000;
    void raw.write(regions(range(100, count)));
    await handledCount(client, count);
    const destroyed: Array<{ id: number; turn: number }> = [];
    onRegionDestroyed = (id) => {
      destroyed.push({ id, turn });
      // What a compositor's listener may cost (a surface's state, its window).
      const until = performance.now() + 0.02;
      while (performance.now() < until);
    };
    let objectsAtEnd = -1;
    const gone = new Promise<void>((resolve) =>
      client.events.destroy.add(() => {
        objectsAtEnd = client.objectCount;
        resolve();
      }),
    );
    const turnAtEnd = turn;
    raw.destroy();
    // The other client is answered while the teardown goes on.
    await other.raw.sync("the other client's sync during the teardown");
    const destroyedWhenAnswered = destroyed.length;
    await gone;

    expect(destroyed.map((entry) => entry.id)).toEqual(range(100, count).reverse());
    expect(new Set(destroyed.map((entry) => entry.turn)).size, "turns the teardown took").toBeGreaterThan(5);
    expect(destroyedWhenAnswered, "regions destroyed before the other client's sync was answered").toBeLessThan(count);
    expect(destroyed[0]!.turn).toBeGreaterThanOrEqual(turnAtEnd);
    expect(objectsAtEnd).toBe(0);
    expect(display.clients.has(client)).toBe(false);
  });

  it("finishes a teardown in progress at once when the display is destroyed", async () => {
    createDisplay({ maxTurnMs: 1 });
    const { client, raw } = await rawClient();
    void raw.write(regions(range(100, 3000)));
    await handledCount(client, 3000);
    let destroyedRegions = 0;
    onRegionDestroyed = () => {
      destroyedRegions += 1;
      const until = performance.now() + 0.02;
      while (performance.now() < until);
    };
    let gone = false;
    client.events.destroy.add(() => (gone = true));
    client.destroy();
    expect(gone, "the client's destroy before its teardown ended").toBe(false);
    display.destroy();
    expect(destroyedRegions).toBe(3000);
    expect(gone).toBe(true);
  });

  it("answers the requests of one read together, even when their dispatch takes several turns", async () => {
    createDisplay({});
    const [ours, peer] = socketpair("stream");
    fds.push(peer);
    const done = compileInterface(wl_callback).events[0]!;
    // One turn per request; each request is answered with one event.
    const connection = new Connection(
      ours,
      {
        message: (objectId) => {
          connection.send(objectId, done, [turn]);
          return true;
        },
        closed: () => undefined,
      },
      { maxMessagesPerTurn: 1 },
    );
    sendmsg(peer, concatMessages([rawMessage(1, 0, [10]), rawMessage(1, 0, [11]), rawMessage(1, 0, [12])]));
    // What the peer can read after each turn of the event loop.
    const reads: number[] = [];
    const buffer = new Uint8Array(4096);
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`the 3 answers never came (reads: ${reads.join(",")})`)), 10_000);
      const poll = (): void => {
        const got = recvmsg(peer, buffer, 0);
        if (got !== null) reads.push(got.bytes / 12);
        if (reads.reduce((sum, count) => sum + count, 0) >= 3) {
          clearTimeout(timer);
          resolve();
        } else {
          setImmediate(poll);
        }
      };
      setImmediate(poll);
    });
    connection.destroy();
    expect(reads, "events per read of the peer").toEqual([3]);
  });
});
