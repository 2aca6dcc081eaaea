/**
 * A client that shrinks its pool's file under a buffer the server is reading
 * must end only that client: the server's read gives zeros instead of a
 * SIGBUS that would kill the compositor, and the client gets
 * wl_shm.error.invalid_fd.
 */
import path from "node:path";

import { afterEach, describe, expect, it } from "vitest";

import * as native from "../../native/index.ts";
import type { WaylandError } from "../../wayland/index.ts";
import {
  ClientShmPool,
  Display,
  SHM_FORMAT_XRGB8888,
  connect,
  createShmGlobal,
  shmBufferOf,
  type ClientConnection,
  type Resource,
} from "../../wayland/index.ts";
import { temporaryDirectory } from "../helpers/processes.ts";

const cleanup: Array<() => void> = [];
afterEach(() => {
  for (const step of cleanup.splice(0).reverse()) step();
});

function serve(): { display: Display; socketPath: string; attached: Promise<Resource<"wl_buffer">> } {
  const tmp = temporaryDirectory();
  const display = new Display();
  cleanup.push(
    () => tmp.remove(),
    () => display.destroy(),
  );
  const socketPath = display.addSocket(path.join(tmp.dir, "wayland-sigbus"));
  createShmGlobal(display);
  let attach: (buffer: Resource<"wl_buffer">) => void = () => undefined;
  const attached = new Promise<Resource<"wl_buffer">>((resolve) => (attach = resolve));
  display.createGlobal("wl_compositor", 4, (compositor) => {
    compositor.implement({
      create_surface: (surface) =>
        surface.implement({
          attach: (buffer) => {
            if (buffer !== null) attach(buffer);
          },
        }),
      create_region: (region) => region.implement({}),
    });
  });
  return { display, socketPath, attached };
}

async function client(socketPath: string, fd: number, size: number): Promise<ClientConnection> {
  const connection = await connect({ display: socketPath });
  cleanup.push(() => connection.destroy());
  const shm = connection.bind("wl_shm", 1);
  const surface = connection.bind("wl_compositor", 4).request("create_surface");
  const pool = new ClientShmPool(shm, size, { fd });
  const { proxy } = pool.createBuffer(0, 64, 64, 256, SHM_FORMAT_XRGB8888);
  surface.request("attach", proxy, 0, 0);
  surface.request("commit");
  await connection.roundtrip();
  return connection;
}

describe("a pool whose file shrinks under the server", () => {
  it("reads as zeros, ends that client with invalid_fd, and the server keeps serving others", async () => {
    const { socketPath, attached } = serve();
    const size = 64 * 256;
    const fd = native.memfdCreate("shrinking-pool", size);
    cleanup.push(() => native.close(fd));
    const filler = native.mmap(fd, 0, size, { writable: true });
    new Uint8Array(filler).fill(0x5a);
    native.munmap(filler);
    const hostile = await client(socketPath, fd, size);
    const buffer = await attached;
    const shm = shmBufferOf(buffer);
    expect(shm).toBeDefined();
    const pool = shm!.pool;
    expect(new Uint8Array(pool.memory)[size - 1]).toBe(0x5a);
    expect(pool.checkIntact()).toBe(true);

    native.resize(fd, 0);
    // What a reader racing the truncation does: read the mapping directly.
    const copy = new Uint8Array(size);
    copy.set(new Uint8Array(pool.memory));
    expect(copy.every((byte) => byte === 0)).toBe(true);
    expect(pool.faulted).toBe(true);

    const ended = new Promise<WaylandError>((resolve) => hostile.events.error.add(resolve));
    expect(pool.checkIntact()).toBe(false);
    const error = await ended;
    expect(error.message).toMatch(/wl_shm_pool.*error 2|shrank/);

    const otherFd = native.memfdCreate("intact-pool", size);
    cleanup.push(() => native.close(otherFd));
    const other = await client(socketPath, otherFd, size);
    expect(other.destroyed).toBe(false);
  });
});
