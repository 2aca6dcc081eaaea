/**
 * The two Wayland servers the `wayland` fuzz target attacks, both in the
 * fuzz process (so that the harness's leak checks see their fds, mappings
 * and guard slots): the agent's compositor (compositor/ with a driver that
 * does what gui-agent does with it: copies each commit's damaged pixels,
 * calls frameDone, configures, focuses, moves the pointer, reads and sets
 * the clipboard) and the desktop (desktop/'s Desktop, driven through its
 * viewer input). Each server watches for what must never happen: a request
 * handler that threw, a client whose accounting is not back to zero once it
 * is gone; and each can be probed by a fresh valid client that must get a
 * window configured and mapped.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";

import pino from "pino";

import {
  compileKeymap,
  createCompositor,
  type Compositor,
  type Keymap,
  type ShellWindow,
} from "../../../compositor/index.ts";
import { Desktop } from "../../../desktop/index.ts";
import { Display, type Client } from "../../../wayland/index.ts";
import { RawClient } from "../../helpers/raw-client.ts";
import { react, unexpected, type FuzzStats, type Random } from "../harness.ts";
import { ClientModel, RequestGenerator, type BuiltRequest } from "./model.ts";
import { sendRequests } from "./send.ts";

/** How long the probe may wait for each answer on a loaded machine (ms). */
export const PROBE_TIMEOUT_MS = 15_000;
const BTN_LEFT = 0x110;

/** One server under attack. */
export interface FuzzServer {
  readonly name: "agent" | "desktop";
  readonly socketPath: string;
  readonly compositor: Compositor;
  /** Clients connected or still being torn down. */
  liveClients(): number;
  /** One action of the trusted side (the daemon's or the user's): configure, focus, input, clipboard. */
  poke(random: Random): void;
  /** Resolves once every clipboard read the driver started has ended. */
  settle(): Promise<void>;
  destroy(): void;
}

/**
 * The Display behind a compositor, for the per-client checks. It is not
 * part of the compositor's API: createCompositor keeps it private, and the
 * seat (compositor/seat.ts) holds it. Throws when that changed, so that the
 * checks are never silently skipped.
 */
function displayOf(compositor: Compositor): Display {
  const display = (compositor.seat as unknown as { display?: unknown }).display;
  if (!(display instanceof Display)) {
    throw new Error("the compositor's seat no longer holds its Display: update test/fuzz/wayland/servers.ts");
  }
  return display;
}

/** Watches a server's display for handler errors and per-client accounting left after a client is gone. */
function watchDisplay(display: Display, stats: FuzzStats, name: string): void {
  display.events.handlerError.add(({ resource, request, error }) =>
    unexpected(stats, error, `${name}: ${resource.interface.name}.${request} threw`),
  );
  display.events.disconnect.add((client: Client) => {
    const usage = client.usage;
    if (usage.objects !== 0 || usage.pools !== 0 || usage.fds !== 0 || usage.mappedBytes !== 0) {
      unexpected(stats, new Error(`a gone client still holds ${JSON.stringify(usage)}`), `${name}: accounting`);
    }
  });
}

/** Counts each mapped window of a hostile client (a deep state reached). */
function countMaps(compositor: Compositor, stats: FuzzStats): void {
  compositor.events.newWindow.add((window) => {
    window.events.map.add(() => react(stats, "mapped"));
    if (window.kind === "popup") react(stats, "popup");
  });
}

/** Starts the agent's compositor on `socket`, driven as gui-agent drives it. */
export function startAgentServer(socket: string, keymap: Keymap, stats: FuzzStats): FuzzServer {
  const compositor = createCompositor({ socket, outputSize: { width: 1280, height: 800 }, keymap });
  const display = displayOf(compositor);
  watchDisplay(display, stats, "agent");
  countMaps(compositor, stats);
  const reads = new Set<Promise<unknown>>();
  compositor.events.newWindow.add((window) => {
    window.events.commit.add((commit) => {
      // What the agent does with a commit: copy the damaged rows of every layer (here: read them).
      for (const layer of commit.layers) {
        for (const rect of commit.damage) {
          const y = Math.max(0, rect.y - layer.y);
          const rows = Math.min(layer.pixels.height - y, rect.height);
          if (rows <= 0) continue;
          const bytes = layer.pixels.rows(y, rows);
          // Kept in the notes, so that the reads (which fault on a shrunk pool) are not optimised away.
          const sum = (bytes[y * layer.pixels.stride] ?? 0) + (bytes[bytes.length - 1] ?? 0);
          stats.notes.pixelSum = (Number(stats.notes.pixelSum ?? 0) + sum) | 0;
        }
      }
      setImmediate(() => window.frameDone());
    });
    window.events.map.add(() => {
      window.configure({ width: window.size.width, height: window.size.height }, { activated: true });
    });
  });
  const pick = (random: Random): ShellWindow | undefined => {
    const windows = compositor.windows;
    return windows.length === 0 ? undefined : random.pick(windows);
  };
  return {
    name: "agent",
    socketPath: compositor.socketPath,
    compositor,
    liveClients: () => display.clients.size + display.tearingDown.size,
    poke(random) {
      const window = pick(random);
      switch (random.below(9)) {
        case 0:
          window?.configure({ width: random.below(900), height: random.below(700) }, { activated: random.oneIn(2) });
          break;
        case 1:
          compositor.seat.focus(window ?? null);
          break;
        case 2:
          if (window !== undefined) compositor.seat.pointerMove(window, random.below(100), random.below(100));
          break;
        case 3:
          compositor.seat.pointerButton(BTN_LEFT, random.oneIn(2));
          break;
        case 4:
          compositor.seat.key(30, random.oneIn(2));
          break;
        case 5:
          compositor.clipboard.set(new TextEncoder().encode(`clip ${random.u32()}`));
          break;
        case 6: {
          const read = compositor.clipboard
            .read(4096)
            .catch((error: unknown) => unexpected(stats, error, "agent: clipboard read"));
          reads.add(read);
          void read.finally(() => reads.delete(read));
          break;
        }
        case 7:
          window?.setShown(random.oneIn(3));
          window?.placeOnScreen(random.below(1280), random.below(800));
          break;
        default:
          if (random.oneIn(4)) window?.close();
          else compositor.seat.pointerLeave();
      }
    },
    settle: async () => {
      while (reads.size > 0) await Promise.all([...reads]);
    },
    destroy: () => compositor.destroy(),
  };
}

/** Starts the desktop on `socket`, driven through its viewer input as a user's browser would. */
export function startDesktopServer(socket: string, keymap: Keymap, stats: FuzzStats): FuzzServer {
  const log = pino({ level: "silent" });
  const desktop = new Desktop({ socket, size: { width: 1280, height: 800 }, keymap, log });
  const compositor = desktop.compositor;
  const display = displayOf(compositor);
  watchDisplay(display, stats, "desktop");
  countMaps(compositor, stats);
  return {
    name: "desktop",
    socketPath: desktop.socketPath,
    compositor,
    liveClients: () => display.clients.size + display.tearingDown.size,
    poke(random) {
      const shown = desktop.shown;
      const target = shown.length > 0 && random.below(4) !== 0 ? random.pick(shown).rect : null;
      switch (random.below(5)) {
        case 0:
        case 1:
          if (target !== null)
            desktop.pointerMove(target.x + random.below(Math.max(1, target.width)), target.y - random.below(30));
          else desktop.pointerMove(random.below(1280), random.below(800));
          break;
        case 2:
          desktop.pointerButton(BTN_LEFT, random.oneIn(2));
          break;
        case 3:
          desktop.key(30 + random.below(10), random.oneIn(2));
          break;
        default:
          if (random.oneIn(3)) desktop.releaseAll();
          else desktop.pointerAxis(random.below(2) as 0 | 1, random.oneIn(2) ? 1 : -1);
      }
    },
    settle: () => Promise.resolve(),
    destroy: () => desktop.destroy(),
  };
}

/** Both servers in a fresh runtime directory. */
export interface FuzzServers {
  readonly servers: readonly FuzzServer[];
  destroy(): void;
}

export async function startServers(stats: FuzzStats): Promise<FuzzServers> {
  const dir = mkdtempSync(path.join(tmpdir(), "fuzz-wayland-"));
  const servers: FuzzServer[] = [];
  try {
    const keymap = await compileKeymap({ layout: "us" });
    servers.push(startAgentServer(path.join(dir, "wayland-agent"), keymap, stats));
    servers.push(startDesktopServer(path.join(dir, "wayland-desktop"), keymap, stats));
  } catch (error) {
    for (const server of servers) server.destroy();
    rmSync(dir, { recursive: true, force: true });
    throw error;
  }
  return {
    servers,
    destroy: () => {
      for (const server of servers) server.destroy();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

let probes = 0;

/**
 * A fresh valid client of `server`: binds, makes a toplevel, waits for its
 * configure, acks it, commits a buffer and waits for the window to map.
 * Rejects naming what never came (each wait bounded).
 */
export async function probe(server: FuzzServer, random: Random): Promise<void> {
  const title = `fuzz-probe-${++probes}`;
  const mapped = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(
      () =>
        reject(new Error(`${server.name}: the probe's window "${title}" never mapped within ${PROBE_TIMEOUT_MS} ms`)),
      PROBE_TIMEOUT_MS,
    );
    const remove = server.compositor.events.newWindow.add((window) => {
      window.events.map.add(() => {
        if (window.title !== title) return;
        clearTimeout(timer);
        remove();
        resolve();
      });
    });
  });
  mapped.catch(() => undefined);
  const raw = RawClient.connect(server.socketPath);
  try {
    const model = new ClientModel();
    const generator = new RequestGenerator(random, model, "app");
    generator.title = title;
    const step = async (what: string, requests: Parameters<typeof sendRequests>[1]): Promise<void> => {
      await sendRequests(raw, requests);
      if ((await raw.sync(`${server.name}: the probe's ${what}`, PROBE_TIMEOUT_MS)) === "closed") {
        throw new Error(`${server.name} hung up on the probe at its ${what}: ${JSON.stringify(raw.error())}`);
      }
      model.absorb(raw.events);
      raw.events.length = 0;
    };
    await step("get_registry", [model.call(1, "get_registry")]);
    const window: BuiltRequest[] = [];
    generator.window(window);
    generator.bind(window, "wl_shm");
    await step("toplevel", window);
    const xdgSurface = model.all("xdg_surface")[0];
    if (xdgSurface === undefined || !model.configures.has(xdgSurface.id)) {
      throw new Error(`${server.name}: the probe's xdg_surface.configure never came`);
    }
    const serial = model.configures.get(xdgSurface.id) as number;
    model.configures.delete(xdgSurface.id);
    const surface = model.all("wl_surface")[0]!;
    const shm = model.any(random, "wl_shm")!;
    const pool = model.call(shm.id, "create_pool", [{ fd: { kind: "memfd", size: 64 * 64 * 4 } }, 64 * 64 * 4]);
    const buffer = model.call(pool.created, "create_buffer", [0, 64, 64, 256, 1]);
    await step("buffer", [
      model.call(xdgSurface.id, "ack_configure", [serial]),
      pool,
      buffer,
      model.call(surface.id, "attach", [buffer.created, 0, 0]),
      model.call(surface.id, "damage", [0, 0, 64, 64]),
      model.call(surface.id, "commit"),
    ]);
    await mapped;
  } finally {
    raw.destroy();
  }
}
