import { once } from "node:events";

import { describe, expect, it } from "vitest";

import { VCHAN_DISCONNECTED, connectVchanClient, createVchanServer } from "../../vchan/index.ts";
import { finished, spawnTs, temporaryDirectory, whenReady, withStartup, within } from "../helpers/processes.ts";
import { LineChannel } from "../shm/lines.ts";
import { pattern, readPattern, runnableBackends, writePattern } from "./helpers.ts";

const PEER = "test/vchan/peers/vchan-peer.ts";
const HUNDRED_MB = 100 * 1000 * 1000;

// Each peer process prints "ready" once it started (as a server, listening):
// the start-up takes what the machine needs, and the test's bounds begin there.
describe.each(runnableBackends)("vchan on the %s backend, two processes", (backend) => {
  it(
    "exchanges 100 MB each way with an echoing server process, every byte checked",
    { timeout: withStartup(90_000) },
    async () => {
      const dir = temporaryDirectory();
      const child = spawnTs(PEER, [backend, "server", dir.dir, "6000", "echo"]);
      const done = finished(child);
      try {
        await whenReady(child);
        const client = await connectVchanClient({ backend, domain: 1, ownDomain: 2, port: 6000, socketDir: dir.dir });
        await within(
          Promise.all([writePattern(client, HUNDRED_MB), readPattern(client, HUNDRED_MB)]),
          60_000,
          "the 100 MB echo",
        );
        client.close();
        const result = await done;
        expect(result.stderr).toBe("");
        expect(result.code).toBe(0);
      } finally {
        child.kill();
        dir.remove();
      }
    },
  );

  it(
    "receives what a client process wrote before it closed, then sees it gone",
    { timeout: withStartup(30_000) },
    async () => {
      const dir = temporaryDirectory();
      const server = createVchanServer({ backend, domain: 2, ownDomain: 1, port: 6001, socketDir: dir.dir });
      const child = spawnTs(PEER, [backend, "client", dir.dir, "6001", "send", String(1 << 20)]);
      const done = finished(child);
      try {
        await whenReady(child);
        await server.whenConnected();
        await readPattern(server, 1 << 20);
        if (server.isOpen() !== VCHAN_DISCONNECTED) await once(server, "disconnect");
        expect((await done).code).toBe(0);
      } finally {
        server.close();
        child.kill();
        dir.remove();
      }
    },
  );

  it(
    "reads what a server process wrote before it closed, then sees it gone",
    { timeout: withStartup(30_000) },
    async () => {
      const dir = temporaryDirectory();
      const child = spawnTs(PEER, [backend, "server", dir.dir, "6003", "send", String(1 << 20)]);
      const done = finished(child);
      try {
        await whenReady(child);
        const client = await connectVchanClient({ backend, domain: 1, ownDomain: 2, port: 6003, socketDir: dir.dir });
        await readPattern(client, 1 << 20);
        if (client.isOpen() !== VCHAN_DISCONNECTED) await once(client, "disconnect");
        expect(client.isOpen()).toBe(VCHAN_DISCONNECTED);
        client.close();
        expect((await done).code).toBe(0);
      } finally {
        child.kill();
        dir.remove();
      }
    },
  );

  it("applies back-pressure when the peer process stops reading", { timeout: withStartup(30_000) }, async () => {
    const dir = temporaryDirectory();
    const child = spawnTs(PEER, [backend, "server", dir.dir, "6004", "hold"]);
    const done = finished(child);
    try {
      await whenReady(child);
      const client = await connectVchanClient({ backend, domain: 1, ownDomain: 2, port: 6004, socketDir: dir.dir });
      let written = 0;
      // Write until the ring is full and stays full: the kernel may still take a page from the ring
      // into the socket after a write returned 0 (bufferSpace flushes first), so fill that too.
      const deadline = Date.now() + 10_000;
      for (;;) {
        const n = client.write(pattern(written, 65536));
        written += n;
        if (n === 0 && client.bufferSpace() === 0) break;
        if (Date.now() > deadline) throw new Error(`the ring never stayed full (${written} bytes taken)`);
        if (n < 65536) await new Promise((resolve) => setImmediate(resolve));
      }
      expect(written).toBeGreaterThanOrEqual(client.writeRingSize);
      // Back-pressure: what was taken is bounded by the ring and the socket's buffers, not the writer.
      expect(written).toBeLessThan(client.writeRingSize + 64 * 1024 * 1024);
      expect(client.bufferSpace()).toBe(0);
      expect(client.send(pattern(written, 1))).toBe(false);
      const gone = once(client, "disconnect");
      child.kill("SIGKILL");
      await gone;
      expect(client.isOpen()).toBe(VCHAN_DISCONNECTED);
      client.close();
      await done;
    } finally {
      child.kill();
      dir.remove();
    }
  });

  it("sees a peer process that was killed as disconnected", { timeout: withStartup(30_000) }, async () => {
    const dir = temporaryDirectory();
    const child = spawnTs(PEER, [backend, "server", dir.dir, "6002", "hold"]);
    const done = finished(child);
    const lines = new LineChannel(child);
    try {
      await whenReady(child);
      expect(await lines.next()).toBe("ready");
      const client = await connectVchanClient({ backend, domain: 1, ownDomain: 2, port: 6002, socketDir: dir.dir });
      expect(await lines.next()).toBe("connected");
      const gone = once(client, "disconnect");
      child.kill("SIGKILL");
      await gone;
      expect(client.isOpen()).toBe(VCHAN_DISCONNECTED);
      expect(client.bufferSpace()).toBe(0);
      client.close();
      expect((await done).signal).toBe("SIGKILL");
    } finally {
      child.kill();
      dir.remove();
    }
  });
});
