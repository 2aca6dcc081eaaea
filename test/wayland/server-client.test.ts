// Our server side and our client side against each other over socketpairs:
// registry and globals with versions, bind negotiation, sync and callbacks,
// delete_id and id reuse, version-gated requests, protocol errors on the
// right object ending only that client, destroy signals, credentials,
// server-created objects, wl_shm pools and keymaps by fd.
import { readFileSync, writeFileSync } from "node:fs";
import path from "node:path";

import { afterEach, beforeEach, describe, expect, it } from "vitest";

import {
  close,
  fileSize,
  isMapped,
  listen,
  memfdCreate,
  mmap,
  munmap,
  resize,
  recvmsg,
  socketpair,
} from "../../native/index.ts";
import {
  ClientConnection,
  ClientShmPool,
  Display,
  ProtocolError,
  SHM_FORMAT_XRGB8888,
  connect,
  createKeymapFd,
  createShmGlobal,
  readKeymap,
  shmBufferOf,
  wl_shm,
  type Client,
  type Resource,
} from "../../wayland/index.ts";
import { temporaryDirectory } from "../helpers/processes.ts";

let display: Display;
const connections: ClientConnection[] = [];

beforeEach(() => {
  display = new Display();
});

afterEach(() => {
  for (const connection of connections.splice(0)) connection.destroy();
  display.destroy();
});

/** A client of `display` over a socketpair, after its first roundtrip; and the server's Client for it. */
async function pair(): Promise<{ connection: ClientConnection; client: Client }> {
  const [serverEnd, clientEnd] = socketpair("stream");
  const client = display.addClient(serverEnd);
  const connection = new ClientConnection(clientEnd);
  connections.push(connection);
  await connection.roundtrip();
  return { connection, client };
}

/** wl_compositor whose surfaces record their requests. */
function addCompositor(version = 5): { surfaces: Array<Resource<"wl_surface">> } {
  const surfaces: Array<Resource<"wl_surface">> = [];
  display.createGlobal("wl_compositor", version, (compositor) => {
    compositor.implement({
      create_surface: (surface) => {
        surfaces.push(surface);
        surface.implement({});
      },
      create_region: (region) => region.implement({}),
    });
  });
  return { surfaces };
}

describe("registry and globals", () => {
  it("announces each global with its interface and version, in creation order", async () => {
    addCompositor(5);
    createShmGlobal(display);
    display.createGlobal("xdg_wm_base", 3, (resource) => resource.implement({}));
    const { connection } = await pair();
    expect([...connection.globals.values()]).toEqual([
      { name: 1, interface: "wl_compositor", version: 5 },
      { name: 2, interface: "wl_shm", version: 1 },
      { name: 3, interface: "xdg_wm_base", version: 3 },
    ]);
  });

  it("binds at the lower of the client's and the server's versions", async () => {
    addCompositor(3);
    const bound: number[] = [];
    display.createGlobal("wl_seat", 7, (seat) => {
      bound.push(seat.version);
      seat.implement({});
    });
    const { connection } = await pair();
    expect(connection.bind("wl_compositor", 5).version).toBe(3);
    expect(connection.bind("wl_seat", 5).version).toBe(5);
    await connection.roundtrip();
    expect(bound).toEqual([5]);
  });

  it("refuses a bind above the advertised version with invalid_object on the registry", async () => {
    addCompositor(3);
    const { connection } = await pair();
    connection.registry.request("bind", 1, "wl_compositor", 4);
    const error = await connection.roundtrip().then(
      () => undefined,
      (reason: unknown) => reason,
    );
    expect(error).toBeInstanceOf(ProtocolError);
    expect(error).toMatchObject({
      code: "server-error",
      objectId: connection.registry.id,
      interfaceName: "wl_registry",
      errorCode: 0,
    });
    expect((error as Error).message).toContain("global 1 (wl_compositor) offers up to version 3, bind asked for 4");
  });

  it("refuses a bind to an unknown name or with the wrong interface", async () => {
    addCompositor(3);
    for (const [name, iface] of [
      [99, "wl_compositor"],
      [1, "wl_shm"],
    ] as const) {
      const { connection } = await pair();
      connection.registry.request("bind", name, iface, 1);
      await expect(connection.roundtrip()).rejects.toMatchObject({ objectId: connection.registry.id, errorCode: 0 });
    }
  });

  it("announces globals added later and removes destroyed ones, and a late bind to a removed one is harmless", async () => {
    const { connection } = await pair();
    const added = new Promise((resolve) => connection.events.global.add(resolve));
    const seat = display.createGlobal("wl_seat", 8, (resource) => resource.implement({}));
    expect(await added).toEqual({ name: seat.name, interface: "wl_seat", version: 8 });
    const info = connection.findGlobal("wl_seat")!;
    const removed = new Promise((resolve) => connection.events.globalRemove.add(resolve));
    let destroyed = 0;
    seat.events.destroy.add(() => destroyed++);
    seat.destroy();
    expect(await removed).toEqual(info);
    expect(destroyed).toBe(1);
    connection.bind("wl_seat", 8, info);
    await connection.roundtrip();
    expect(connection.error).toBeUndefined();
  });

  it("hides a global from the clients its filter refuses", async () => {
    const { client: first } = await pair();
    display.createGlobal(
      "wl_seat",
      1,
      (resource) => resource.implement({}),
      (client) => client !== first,
    );
    const firstConnection = connections[0]!;
    const { connection: second } = await pair();
    await firstConnection.roundtrip();
    expect(firstConnection.findGlobal("wl_seat")).toBeUndefined();
    expect(second.findGlobal("wl_seat")).toBeDefined();
  });
});

describe("objects and ids", () => {
  it("reuses a callback's id once the server's delete_id arrived", async () => {
    const { connection } = await pair();
    const ids: number[] = [];
    for (let i = 0; i < 3; i++) {
      const callback = connection.display.request("sync");
      ids.push(callback.id);
      await new Promise<void>((resolve) => callback.on("done", () => resolve()));
      await connection.roundtrip();
    }
    expect(new Set(ids).size).toBe(1);
  });

  it("keeps a destroyed object's id reserved until delete_id, then reuses it", async () => {
    addCompositor();
    const { connection, client } = await pair();
    const compositor = connection.bind("wl_compositor", 5);
    const first = compositor.request("create_surface");
    await connection.roundtrip();
    expect(client.getObject(first.id)?.interface.name).toBe("wl_surface");
    first.request("destroy");
    expect(first.destroyed).toBe(true);
    const second = compositor.request("create_surface");
    expect(second.id).not.toBe(first.id);
    await connection.roundtrip();
    expect(client.getObject(first.id)).toBeUndefined();
    // Freed ids come back before any new one (the last freed first, as libwayland's free list).
    const reused = [compositor.request("create_surface"), compositor.request("create_surface")];
    expect(reused.map((proxy) => proxy.id)).toContain(first.id);
    expect(Math.max(...reused.map((proxy) => proxy.id))).toBeLessThan(second.id + 2);
    await connection.roundtrip();
    expect(client.getObject(first.id)?.interface.name).toBe("wl_surface");
  });

  it("drops events for a proxy destroyed locally and reuses its id after the compositor's delete_id", async () => {
    let serverCallback: Resource<"wl_callback"> | undefined;
    display.createGlobal("wl_compositor", 5, (compositor) => {
      compositor.implement({
        create_surface: (surface) => surface.implement({ frame: (callback) => (serverCallback = callback) }),
      });
    });
    const { connection } = await pair();
    const surface = connection.bind("wl_compositor", 5).request("create_surface");
    const callback = surface.request("frame");
    let fired = 0;
    callback.on("done", () => fired++);
    await connection.roundtrip();
    callback.destroy();
    serverCallback!.send("done", 1);
    serverCallback!.destroy();
    await connection.roundtrip();
    expect(fired).toBe(0);
    expect(connection.error).toBeUndefined();
    const again = [surface.request("frame"), surface.request("frame")];
    expect(again.map((proxy) => proxy.id)).toContain(callback.id);
  });

  it("refuses on the client a request newer than the bound version, before sending anything", async () => {
    addCompositor();
    const { connection } = await pair();
    const surface = connection.bind("wl_compositor", 2).request("create_surface");
    expect(() => surface.request("set_buffer_scale", 2)).toThrow(/needs version 3; bound 2/);
    expect(() => surface.request("damage_buffer", 0, 0, 1, 1)).toThrow(/needs version 4; bound 2/);
    await connection.roundtrip();
    expect(connection.error).toBeUndefined();
  });

  it("answers a request newer than the object's version with invalid_method on that object", async () => {
    const { surfaces } = addCompositor();
    const { connection } = await pair();
    const surface = connection.bind("wl_compositor", 2).request("create_surface");
    await connection.roundtrip();
    // wl_surface.set_buffer_scale (opcode 8, since 3) written by hand past the client-side check.
    const bytes = new Uint8Array(12);
    const view = new DataView(bytes.buffer);
    view.setUint32(0, surface.id, true);
    view.setUint32(4, ((12 << 16) | 8) >>> 0, true);
    view.setInt32(8, 2, true);
    connection.sendRaw(bytes);
    await expect(connection.roundtrip()).rejects.toMatchObject({
      objectId: surface.id,
      interfaceName: "wl_surface",
      errorCode: 1,
    });
    expect(surfaces[0]?.destroyed).toBe(true);
  });

  it("refuses to send an event newer than the client's version", async () => {
    let output: Resource<"wl_output"> | undefined;
    display.createGlobal("wl_output", 4, (resource) => {
      output = resource;
      resource.implement({});
    });
    const { connection } = await pair();
    connection.bind("wl_output", 1);
    await connection.roundtrip();
    expect(() => output!.send("done")).toThrow(/needs version 2; the client bound 1/);
  });

  it("gives the client a proxy for an object the server creates (new_id in an event)", async () => {
    let device: Resource<"wl_data_device"> | undefined;
    display.createGlobal("wl_seat", 5, (seat) => seat.implement({}));
    display.createGlobal("wl_data_device_manager", 3, (manager) => {
      manager.implement({
        get_data_device: (resource) => {
          device = resource;
          resource.implement({});
        },
        create_data_source: (source) => source.implement({}),
      });
    });
    const { connection, client } = await pair();
    const seat = connection.bind("wl_seat", 5);
    const clientDevice = connection.bind("wl_data_device_manager", 3).request("get_data_device", seat);
    const offered = new Promise<{ id: number; name: string; mime: string }>((resolve) =>
      clientDevice.on("data_offer", (offer) =>
        offer.on("offer", (mime) => resolve({ id: offer.id, name: offer.interface.name, mime })),
      ),
    );
    await connection.roundtrip();
    const offer = client.createResource("wl_data_offer", 3);
    offer.implement({});
    device!.send("data_offer", offer);
    offer.send("offer", "text/plain");
    expect(await offered).toEqual({ id: 0xff000000, name: "wl_data_offer", mime: "text/plain" });
  });
});

describe("fds and objects the server destroyed", () => {
  it("drops a request to an object the server destroyed, taking its fd, so the next request gets its own fd", async () => {
    const shms: Array<Resource<"wl_shm">> = [];
    const received: number[] = [];
    display.createGlobal("wl_shm", 1, (shm) => {
      shms.push(shm);
      shm.implement({
        create_pool: (pool, fd) => {
          received.push(fileSize(fd));
          close(fd);
          pool.implement({});
        },
      });
    });
    const { connection } = await pair();
    const doomed = connection.bind("wl_shm", 1);
    const kept = connection.bind("wl_shm", 1);
    await connection.roundtrip();
    shms[0]!.destroy();
    const first = memfdCreate("first", 4096);
    const second = memfdCreate("second", 8192);
    doomed.request("create_pool", first, 4096);
    kept.request("create_pool", second, 8192);
    close(first);
    close(second);
    await connection.roundtrip();
    expect(connection.error).toBeUndefined();
    expect(received).toEqual([8192]);
  });
});

describe("errors and lifetimes", () => {
  it("posts a protocol error on the named object and ends that client only", async () => {
    display.createGlobal("wl_compositor", 5, (compositor) => {
      compositor.implement({
        create_surface: (surface) =>
          surface.implement({ set_buffer_scale: (scale) => scale < 1 && surface.postError(0, `bad scale ${scale}`) }),
        create_region: (region) => region.implement({}),
      });
    });
    const { connection: bad, client: badClient } = await pair();
    const { connection: good } = await pair();
    const surface = bad.bind("wl_compositor", 5).request("create_surface");
    surface.request("set_buffer_scale", 0);
    const error = await bad.roundtrip().catch((reason: unknown) => reason);
    expect(error).toMatchObject({ objectId: surface.id, interfaceName: "wl_surface", errorCode: 0 });
    expect(bad.destroyed).toBe(true);
    expect(badClient.destroyed).toBe(true);
    expect(badClient.error?.code).toBe("protocol-error");
    expect(display.clients.size).toBe(1);
    good.bind("wl_compositor", 5).request("create_surface").request("set_buffer_scale", 2);
    await good.roundtrip();
    expect(good.error).toBeUndefined();
  });

  it("sends invalid_object when a request names an object of the wrong interface", async () => {
    addCompositor();
    const { connection } = await pair();
    const compositor = connection.bind("wl_compositor", 5);
    const surface = compositor.request("create_surface");
    const region = compositor.request("create_region");
    // wl_surface.attach takes a wl_buffer: pass the region's id by hand.
    const bytes = new Uint8Array(20);
    const view = new DataView(bytes.buffer);
    view.setUint32(0, surface.id, true);
    view.setUint32(4, ((20 << 16) | 1) >>> 0, true);
    view.setUint32(8, region.id, true);
    connection.sendRaw(bytes);
    await expect(connection.roundtrip()).rejects.toMatchObject({ objectId: 1, errorCode: 0 });
  });

  it("sends invalid_object for a new_id already in use", async () => {
    addCompositor();
    const { connection } = await pair();
    const compositor = connection.bind("wl_compositor", 5);
    const bytes = new Uint8Array(12);
    const view = new DataView(bytes.buffer);
    view.setUint32(0, compositor.id, true);
    view.setUint32(4, ((12 << 16) | 0) >>> 0, true);
    view.setUint32(8, compositor.id, true);
    connection.sendRaw(bytes);
    const error = await connection.roundtrip().catch((reason: unknown) => reason);
    expect((error as Error).message).toContain(`new object id ${compositor.id} is taken`);
  });

  it("turns a handler that throws into an implementation error for that client and a handlerError signal", async () => {
    display.createGlobal("wl_compositor", 5, (compositor) => {
      compositor.implement({
        create_surface: () => {
          throw new Error("broken compositor");
        },
      });
    });
    const failures: string[] = [];
    display.events.handlerError.add((failure) =>
      failures.push(`${failure.request}: ${(failure.error as Error).message}`),
    );
    const { connection } = await pair();
    connection.bind("wl_compositor", 5).request("create_surface");
    await expect(connection.roundtrip()).rejects.toMatchObject({ objectId: 1, errorCode: 3 });
    expect(failures).toEqual(["create_surface: broken compositor"]);
  });

  it("emits destroy for a resource on its destructor request and for every resource when the client leaves", async () => {
    const { surfaces } = addCompositor();
    const { connection, client } = await pair();
    const compositor = connection.bind("wl_compositor", 5);
    const doomed = compositor.request("create_surface");
    compositor.request("create_surface");
    await connection.roundtrip();
    const destroyed: string[] = [];
    for (const surface of surfaces) surface.events.destroy.add((resource) => destroyed.push(`surface ${resource.id}`));
    doomed.request("destroy");
    await connection.roundtrip();
    expect(destroyed).toEqual([`surface ${doomed.id}`]);
    const gone = new Promise<Client>((resolve) => client.events.destroy.add(resolve));
    connection.destroy();
    expect(await gone).toBe(client);
    expect(destroyed).toEqual([`surface ${doomed.id}`, `surface ${surfaces[1]!.id}`]);
    expect(client.objectCount).toBe(0);
  });

  it("ends a client with no_memory when it creates more objects than the display allows", async () => {
    display.destroy();
    display = new Display({ maxObjectsPerClient: 50 });
    addCompositor();
    const { connection } = await pair();
    const compositor = connection.bind("wl_compositor", 5);
    for (let i = 0; i < 60; i++) compositor.request("create_region");
    await expect(connection.roundtrip()).rejects.toMatchObject({ objectId: 1, errorCode: 2 });
  });

  it("knows the client's pid, uid and gid", async () => {
    const { client } = await pair();
    expect(client.credentials).toEqual({ pid: process.pid, uid: process.getuid!(), gid: process.getgid!() });
  });

  it("disconnects a client that stops reading once its events pass the limit, and keeps serving others", async () => {
    display.destroy();
    display = new Display({ maxPendingBytes: 32 * 1024 });
    let output: Resource<"wl_output"> | undefined;
    display.createGlobal("wl_output", 4, (resource) => {
      output = resource;
      resource.implement({});
    });
    const [serverEnd, clientEnd] = socketpair("stream");
    const client = display.addClient(serverEnd);
    const { connection: good } = await pair();
    good.bind("wl_output", 4);
    await good.roundtrip();
    const silent = client;
    const resourceForSilent = silent.createResource("wl_output", 4);
    for (let i = 0; i < 100_000 && !silent.destroyed; i++) resourceForSilent.send("name", `output ${i}`);
    await new Promise<void>((resolve) => (silent.destroyed ? resolve() : silent.events.destroy.add(() => resolve())));
    expect(silent.error?.code).toBe("peer-not-reading");
    output!.send("done");
    await good.roundtrip();
    expect(good.error).toBeUndefined();
    void clientEnd;
  });
});

describe("sockets", () => {
  it("connects through WAYLAND_DISPLAY relative to XDG_RUNTIME_DIR and through an absolute path", async () => {
    const dir = temporaryDirectory("wayland-socket-");
    try {
      addCompositor();
      const socketPath = display.addSocket("wayland-unit", dir.dir);
      expect(socketPath).toBe(path.join(dir.dir, "wayland-unit"));
      const relative = await connect({ display: "wayland-unit", runtimeDir: dir.dir });
      connections.push(relative);
      const absolute = await connect({ display: socketPath });
      connections.push(absolute);
      expect(relative.findGlobal("wl_compositor")).toBeDefined();
      expect(absolute.findGlobal("wl_compositor")).toBeDefined();
    } finally {
      dir.remove();
    }
  });

  it("never removes a file that is not a socket at its socket path", () => {
    const dir = temporaryDirectory("wayland-socket-");
    try {
      const file = path.join(dir.dir, "wayland-file");
      writeFileSync(file, "precious");
      expect(() => display.addSocket("wayland-file", dir.dir)).toThrow(/exists and is not a socket: not removed/);
      expect(readFileSync(file, "utf8")).toBe("precious");
    } finally {
      dir.remove();
    }
  });

  it("picks the first free wayland-N for a second display in the same runtime dir", async () => {
    const dir = temporaryDirectory("wayland-socket-");
    const other = new Display();
    try {
      expect(display.addSocketAuto(dir.dir)).toBe("wayland-0");
      expect(other.addSocketAuto(dir.dir)).toBe("wayland-1");
    } finally {
      other.destroy();
      dir.remove();
    }
  });

  it("uses WAYLAND_SOCKET once when it is set, and removes it from the environment", async () => {
    addCompositor();
    const [serverEnd, clientEnd] = socketpair("stream");
    display.addClient(serverEnd);
    process.env.WAYLAND_SOCKET = String(clientEnd);
    const connection = await connect();
    connections.push(connection);
    expect(process.env.WAYLAND_SOCKET).toBeUndefined();
    expect(connection.findGlobal("wl_compositor")).toBeDefined();
  });

  it("flush() writes the requests queued so far at once, not at the end of the job", () => {
    const [serverEnd, clientEnd] = socketpair("stream");
    const connection = new ClientConnection(clientEnd);
    connections.push(connection);
    const buffer = new Uint8Array(4096);
    // The constructor's get_registry waits for the end of the job; flush sends it now.
    expect(recvmsg(serverEnd, buffer, 0)).toBeNull();
    expect(connection.flush()).toBe(true);
    expect(recvmsg(serverEnd, buffer, 0)?.bytes).toBe(12);
    close(serverEnd);
  });

  it("gives up with no-display when the compositor accepts but never answers, within timeoutMs", async () => {
    const dir = temporaryDirectory("wayland-socket-");
    const listener = listen("stream", path.join(dir.dir, "wayland-silent"));
    try {
      await expect(connect({ display: "wayland-silent", runtimeDir: dir.dir, timeoutMs: 200 })).rejects.toMatchObject({
        code: "no-display",
        message: expect.stringMatching(/did not answer within 200 ms/) as unknown,
      });
    } finally {
      close(listener);
      dir.remove();
    }
  });

  it("fails with no-display when nothing listens", async () => {
    const dir = temporaryDirectory("wayland-socket-");
    try {
      await expect(connect({ display: "wayland-none", runtimeDir: dir.dir })).rejects.toMatchObject({
        code: "no-display",
      });
    } finally {
      dir.remove();
    }
  });
});

describe("wl_shm and keymaps", () => {
  it("lets the server read the pixels a client wrote into its pool, without a copy on either side", async () => {
    addCompositor();
    createShmGlobal(display);
    const { connection, client } = await pair();
    const shm = connection.bind("wl_shm", 1);
    const formats: number[] = [];
    shm.on("format", (format) => formats.push(format));
    const pool = new ClientShmPool(shm, 64 * 1024);
    const { proxy, bytes } = pool.createBuffer(4096, 16, 8, 64, SHM_FORMAT_XRGB8888);
    new Uint32Array(bytes.buffer, bytes.byteOffset, 16 * 8).fill(0xff123456);
    await connection.roundtrip();
    expect(formats).toEqual([wl_shm.enums.format.argb8888, wl_shm.enums.format.xrgb8888]);
    const buffer = shmBufferOf(client.getObject(proxy.id)!);
    expect(buffer).toMatchObject({ width: 16, height: 8, stride: 64, offset: 4096, format: SHM_FORMAT_XRGB8888 });
    expect(new DataView(buffer!.bytes()!.buffer, buffer!.offset).getUint32(64 * 7 + 60, true)).toBe(0xff123456);
    pool.destroy();
  });

  it("hands memory the client already mapped to the compositor as a pool, without copying it", async () => {
    createShmGlobal(display);
    const { connection, client } = await pair();
    const fd = memfdCreate("framebuffer", 8192);
    const memory = mmap(fd, 0, 8192, { writable: true });
    new Uint32Array(memory).fill(0xff00ff00);
    const pool = new ClientShmPool(connection.bind("wl_shm", 1), 8192, { fd, memory });
    const { proxy, bytes } = pool.createBuffer(0, 32, 64, 128, SHM_FORMAT_XRGB8888);
    expect(bytes.buffer).toBe(memory);
    await connection.roundtrip();
    const served = shmBufferOf(client.getObject(proxy.id)!)!.bytes()!;
    expect(new DataView(served.buffer, served.byteOffset).getUint32(8188, true)).toBe(0xff00ff00);
    new DataView(memory).setUint32(8188, 0x12345678, true);
    expect(new DataView(served.buffer, served.byteOffset).getUint32(8188, true)).toBe(0x12345678);
    pool.destroy();
    expect(isMapped(memory)).toBe(true);
    munmap(memory);
    close(fd);
  });

  it("refuses a pool larger than its file with invalid_fd", async () => {
    createShmGlobal(display);
    const { connection } = await pair();
    const shm = connection.bind("wl_shm", 1);
    const fd = memfdCreate("short", 4096);
    shm.request("create_pool", fd, 8192);
    close(fd);
    await expect(connection.roundtrip()).rejects.toMatchObject({
      objectId: shm.id,
      errorCode: wl_shm.enums.error.invalid_fd,
    });
  });

  it("reads zeros, not a fault, from a buffer whose file the client shrank, and marks its pool faulted", async () => {
    createShmGlobal(display);
    const { connection, client } = await pair();
    const fd = memfdCreate("shrinking", 16384);
    const pool = connection.bind("wl_shm", 1).request("create_pool", fd, 16384);
    const buffer = pool.request("create_buffer", 8192, 16, 16, 64, SHM_FORMAT_XRGB8888);
    await connection.roundtrip();
    const shmBuffer = shmBufferOf(client.getObject(buffer.id)!)!;
    expect(shmBuffer.bytes()?.byteLength).toBe(1024);
    resize(fd, 4096);
    expect(shmBuffer.bytes()?.every((byte) => byte === 0)).toBe(true);
    expect(shmBuffer.pool.faulted).toBe(true);
    close(fd);
  });

  it.each([
    ["a stride below width × 4", 0, 16, 8, 60, SHM_FORMAT_XRGB8888, "invalid_stride"],
    ["a buffer past the pool's end", 60 * 1024, 16, 128, 64, SHM_FORMAT_XRGB8888, "invalid_stride"],
    ["a negative offset", -4, 16, 8, 64, SHM_FORMAT_XRGB8888, "invalid_stride"],
    ["a height of 0", 0, 16, 0, 64, SHM_FORMAT_XRGB8888, "invalid_stride"],
    ["a width of -1", 0, -1, 8, 64, SHM_FORMAT_XRGB8888, "invalid_stride"],
    ["a format not advertised", 0, 16, 8, 64, 0x34325258, "invalid_format"],
  ] as const)(
    "refuses %s with wl_shm.error on the pool",
    async (_name, offset, width, height, stride, format, code) => {
      createShmGlobal(display);
      const { connection } = await pair();
      const pool = new ClientShmPool(connection.bind("wl_shm", 1), 64 * 1024);
      pool.proxy.request("create_buffer", offset, width, height, stride, format);
      await expect(connection.roundtrip()).rejects.toMatchObject({
        objectId: pool.proxy.id,
        interfaceName: "wl_shm_pool",
        errorCode: wl_shm.enums.error[code],
      });
      pool.destroy();
    },
  );

  it("delivers an xkb keymap by fd with its size, readable on the client", async () => {
    const keymap = 'xkb_keymap { xkb_keycodes "test" { minimum = 8; maximum = 255; }; };';
    display.createGlobal("wl_seat", 7, (seat) => {
      seat.implement({
        get_keyboard: (keyboard) => {
          keyboard.implement({});
          const { fd, size } = createKeymapFd(keymap);
          keyboard.send("keymap", 1, fd, size);
          // The connection sends its own duplicate: ours can go now.
          close(fd);
        },
      });
    });
    const { connection } = await pair();
    const keyboard = connection.bind("wl_seat", 7).request("get_keyboard");
    const received = new Promise<string>((resolve) =>
      keyboard.on("keymap", (format, fd, size) => {
        expect(format).toBe(1);
        resolve(readKeymap(fd, size));
      }),
    );
    expect(await received).toBe(keymap);
  });
});
