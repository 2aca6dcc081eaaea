import { once } from "node:events";

import { afterEach, beforeEach, describe, expect, it } from "vitest";

import {
  VCHAN_CONNECTED,
  VCHAN_DISCONNECTED,
  VCHAN_WAITING,
  VchanError,
  connectVchanClient,
  createVchanServer,
  type Vchan,
  type VchanBackend,
} from "../../vchan/index.ts";
import { temporaryDirectory } from "../helpers/processes.ts";
import { matchesPattern, pattern, readPattern, runnableBackends, writePattern } from "./helpers.ts";

const SERVER_DOMAIN = 1;
const CLIENT_DOMAIN = 2;
const PORT = 6000;

function expectVchanError(run: () => unknown, code: string): void {
  let caught: unknown;
  try {
    run();
  } catch (error) {
    caught = error;
  }
  expect(caught).toBeInstanceOf(VchanError);
  expect((caught as VchanError).code).toBe(code);
}

async function pair(
  backend: VchanBackend,
  dir: string,
  sizes: { readMin?: number; writeMin?: number } = {},
): Promise<[Vchan, Vchan]> {
  const server = createVchanServer({
    backend,
    domain: CLIENT_DOMAIN,
    ownDomain: SERVER_DOMAIN,
    port: PORT,
    socketDir: dir,
    ...sizes,
  });
  const client = await connectVchanClient({
    backend,
    domain: SERVER_DOMAIN,
    ownDomain: CLIENT_DOMAIN,
    port: PORT,
    socketDir: dir,
  });
  await server.whenConnected();
  return [server, client];
}

describe.each(runnableBackends)("vchan on the %s backend, one process", (backend) => {
  let dir: { dir: string; remove: () => void };
  const opened: Vchan[] = [];

  beforeEach(() => {
    dir = temporaryDirectory();
  });
  afterEach(() => {
    for (const vchan of opened.splice(0)) vchan.close();
    dir.remove();
  });

  async function connected(sizes: { readMin?: number; writeMin?: number } = {}): Promise<[Vchan, Vchan]> {
    const [server, client] = await pair(backend, dir.dir, sizes);
    opened.push(server, client);
    return [server, client];
  }

  it("a server waits for its client, then both ends are connected", async () => {
    const server = createVchanServer({
      backend,
      domain: CLIENT_DOMAIN,
      ownDomain: SERVER_DOMAIN,
      port: 7,
      socketDir: dir.dir,
    });
    opened.push(server);
    expect(server.isOpen()).toBe(VCHAN_WAITING);
    expect(server.bufferSpace()).toBe(0);
    expectVchanError(() => server.write(new Uint8Array(1)), "VCHAN_DISCONNECTED");
    const connectEvent = once(server, "connect");
    const client = await connectVchanClient({
      backend,
      domain: SERVER_DOMAIN,
      ownDomain: CLIENT_DOMAIN,
      port: 7,
      socketDir: dir.dir,
    });
    opened.push(client);
    await connectEvent;
    expect(server.isOpen()).toBe(VCHAN_CONNECTED);
    expect(client.isOpen()).toBe(VCHAN_CONNECTED);
  });

  it("a client started before its server waits until the server exists", async () => {
    const connecting = connectVchanClient({
      backend,
      domain: SERVER_DOMAIN,
      ownDomain: CLIENT_DOMAIN,
      port: 8,
      socketDir: dir.dir,
    });
    await new Promise((resolve) => setImmediate(resolve));
    const server = createVchanServer({
      backend,
      domain: CLIENT_DOMAIN,
      ownDomain: SERVER_DOMAIN,
      port: 8,
      socketDir: dir.dir,
    });
    opened.push(server);
    const client = await connecting;
    opened.push(client);
    await server.whenConnected();
    expect(client.write(new Uint8Array([42]))).toBe(1);
    await once(server, "data");
    const byte = new Uint8Array(1);
    expect(server.read(byte)).toBe(1);
    expect(byte[0]).toBe(42);
  });

  it("carries bytes both ways in order, and fires data when they arrive", async () => {
    const [server, client] = await connected();
    const arrived = once(server, "data");
    expect(client.write(pattern(0, 1000))).toBe(1000);
    await arrived;
    expect(server.dataReady()).toBe(1000);
    await readPattern(server, 1000);
    await writePattern(server, 3000, 17);
    await readPattern(client, 3000, 17);
    expect(server.dataReady()).toBe(0);
    expect(client.dataReady()).toBe(0);
  });

  it("tells a data listener added after the bytes arrived that they are there", async () => {
    const [server, client] = await connected();
    client.write(pattern(0, 64));
    await once(server, "data");
    // That emission has passed and nothing was read: a new listener hears again.
    await once(server, "data");
    expect(server.dataReady()).toBe(64);
    await readPattern(server, 64);
  });

  it("calls a handler that waits for a whole 12-byte header again when the rest arrives, and never spins meanwhile", async () => {
    const [server, client] = await connected();
    let calls = 0;
    const header = new Uint8Array(12);
    const complete = new Promise<void>((resolve) => {
      server.on("data", () => {
        calls += 1;
        if (server.dataReady() < 12) return;
        expect(server.recv(header)).toBe(true);
        resolve();
      });
    });
    client.write(pattern(0, 5));
    await once(server, "data");
    // Fifty turns of the loop with 5 of 12 bytes there: no more calls.
    for (let turn = 0; turn < 50; turn++) await new Promise((resolve) => setImmediate(resolve));
    expect(server.recv(header)).toBe(false);
    expect(server.read(new Uint8Array(0))).toBe(0);
    for (let turn = 0; turn < 50; turn++) await new Promise((resolve) => setImmediate(resolve));
    expect(calls).toBe(1);
    client.write(pattern(5, 7));
    await complete;
    expect(calls).toBe(2);
    expect(matchesPattern(header, 0)).toBe(true);
  });

  it("reads partially: a small buffer gets what fits and the rest stays ready", async () => {
    const [server, client] = await connected();
    client.write(pattern(0, 100));
    await once(server, "data");
    const small = new Uint8Array(30);
    expect(server.read(small)).toBe(30);
    expect(matchesPattern(small, 0)).toBe(true);
    expect(server.dataReady()).toBe(70);
    const rest = new Uint8Array(500);
    expect(server.read(rest)).toBe(70);
    expect(matchesPattern(rest.subarray(0, 70), 30)).toBe(true);
    expect(server.read(rest)).toBe(0);
  });

  it("recv takes exactly n bytes or nothing", async () => {
    const [server, client] = await connected();
    client.write(pattern(0, 10));
    await once(server, "data");
    const twelve = new Uint8Array(12);
    expect(server.recv(twelve)).toBe(false);
    expect(server.dataReady()).toBe(10);
    client.write(pattern(10, 2));
    await once(server, "data");
    expect(server.recv(twelve)).toBe(true);
    expect(matchesPattern(twelve, 0)).toBe(true);
    expect(server.dataReady()).toBe(0);
  });

  it("refuses a send or recv that could never fit the ring", async () => {
    const [server, client] = await connected();
    expectVchanError(() => client.send(new Uint8Array(client.writeRingSize + 1)), "VCHAN_TOO_LARGE");
    expectVchanError(() => server.recv(new Uint8Array(server.readRingSize + 1)), "VCHAN_TOO_LARGE");
  });

  it("applies back-pressure when the peer stops reading, then drains once it reads", async () => {
    const [server, client] = await connected();
    const chunk = pattern(0, 1024);
    let written = 0;
    for (;;) {
      const n = client.write(pattern(written, 1024));
      written += n;
      if (n < chunk.length) break;
    }
    expect(client.bufferSpace()).toBe(0);
    expect(client.write(pattern(written, 1024))).toBe(0);
    expect(client.send(pattern(written, 1))).toBe(false);
    const drained = once(client, "drain");
    await readPattern(server, written);
    await drained;
    expect(client.bufferSpace()).toBeGreaterThan(0);
    expect(client.send(pattern(written, 16))).toBe(true);
    await readPattern(server, 16, written);
  });

  it("fires drain after a failed send only once the whole message fits", async () => {
    const [server, client] = await connected();
    // Fill the client's ring (and, on the socket backend, the kernel's buffer).
    let written = 0;
    for (;;) {
      const n = client.write(pattern(written, 1024));
      written += n;
      if (n < 1024) break;
    }
    const size = client.writeRingSize;
    expect(client.send(pattern(written, size))).toBe(false);
    let drains = 0;
    client.on("drain", () => (drains += 1));
    // Read a little at a time: the drain comes once the ring is empty enough for `size` bytes.
    const drained = once(client, "drain");
    await readPattern(server, written, 0, 100);
    await drained;
    expect(drains).toBe(1);
    expect(client.send(pattern(written, size))).toBe(true);
    await readPattern(server, size, written);
  });

  it("moves a megabyte through small rings without losing or reordering a byte", async () => {
    const [server, client] = await connected({ readMin: 1024, writeMin: 2048 });
    await Promise.all([writePattern(client, 1 << 20, 3, 5000), readPattern(server, 1 << 20, 3, 777)]);
    await Promise.all([writePattern(server, 1 << 20, 5, 3000), readPattern(client, 1 << 20, 5, 4096)]);
  });

  it("keeps every byte the writer handed over when it closes, then reports the disconnect", async () => {
    const [server, client] = await connected();
    let accepted = 0;
    for (let i = 0; i < 4; i++) accepted += client.write(pattern(accepted, 1000));
    const disconnected = once(server, "disconnect");
    client.close();
    expect(client.isOpen()).toBe(VCHAN_DISCONNECTED);
    expectVchanError(() => client.write(new Uint8Array(1)), "VCHAN_DISCONNECTED");
    await readPattern(server, accepted);
    if (server.isOpen() !== VCHAN_DISCONNECTED) await disconnected;
    expect(server.isOpen()).toBe(VCHAN_DISCONNECTED);
    expect(server.bufferSpace()).toBe(0);
    expectVchanError(() => server.write(new Uint8Array(1)), "VCHAN_DISCONNECTED");
  });

  it("lets the client read what the server wrote before the server closed", async () => {
    const [server, client] = await connected();
    const accepted = server.write(pattern(0, 3000));
    server.close();
    await readPattern(client, accepted);
    if (client.isOpen() !== VCHAN_DISCONNECTED) await once(client, "disconnect");
    expect(client.isOpen()).toBe(VCHAN_DISCONNECTED);
  });

  it("is closed for good after close(): idempotent, nothing to read or write", async () => {
    const [server, client] = await connected();
    client.close();
    client.close();
    expect(client.isOpen()).toBe(VCHAN_DISCONNECTED);
    expect(client.bufferSpace()).toBe(0);
    expectVchanError(() => client.send(new Uint8Array(1)), "VCHAN_DISCONNECTED");
    server.close();
    await expect(server.whenConnected()).rejects.toMatchObject({ code: "VCHAN_DISCONNECTED" });
  });
});
