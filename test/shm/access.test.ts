/**
 * Who may take a domain's grant pool or a vchan: the rendezvous sockets are
 * mode 0600, and a connection from a user not allowed (SO_PEERCRED) is hung
 * up on before anything is sent, while the allowed peer still gets through.
 * The other user is a real process run as nobody (uid 65534) by setpriv.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { chmodSync, statSync } from "node:fs";

import { afterEach, beforeEach, describe, expect, it } from "vitest";

import { MemfdGrantTable, allowedPeerUids, grantSocketPath } from "../../shm/index.ts";
import { VCHAN_CONNECTED, connectSocketClient, createSocketServer, type Vchan } from "../../vchan/index.ts";
import { requireProgram } from "../helpers/compositors.ts";
import { finished, temporaryDirectory, whenReady, within, withStartup } from "../helpers/processes.ts";

const NOBODY = 65534;
const GRANTER = 3;
const MAPPER = 4;

/**
 * Connects to the Unix socket at `path` as nobody and reports what came:
 * `bytes N` when the server hung up after N bytes, `error CODE` when the
 * connection failed.
 */
async function connectAsNobody(path: string): Promise<string> {
  requireProgram("setpriv", "util-linux");
  const script = [
    "const s = require('node:net').connect(process.argv[1]);",
    "let n = 0;",
    "s.on('data', (d) => { n += d.length; });",
    "s.on('error', (e) => { console.log('error ' + e.code); process.exit(0); });",
    "s.on('close', () => { console.log('bytes ' + n); });",
  ].join(" ");
  const child = spawn(
    "setpriv",
    [`--reuid=${NOBODY}`, `--regid=${NOBODY}`, "--clear-groups", process.execPath, "-e", script, path],
    { stdio: ["ignore", "pipe", "pipe"] },
  );
  const result = await within(finished(child), withStartup(10_000), "the nobody process's end");
  return result.stdout.trim();
}

/** Listens on `path` as nobody until killed; resolves once it listens. */
async function listenAsNobody(path: string): Promise<ChildProcess> {
  requireProgram("setpriv", "util-linux");
  const script = [
    "require('node:net').createServer(() => {}).listen(process.argv[1], () => console.log('listening'));",
  ].join(" ");
  const child = spawn(
    "setpriv",
    [`--reuid=${NOBODY}`, `--regid=${NOBODY}`, "--clear-groups", process.execPath, "-e", script, path],
    { stdio: ["ignore", "pipe", "pipe"] },
  );
  await whenReady(child, "listening");
  return child;
}

describe("rendezvous access", () => {
  let dir: { dir: string; remove: () => void };
  beforeEach(() => {
    dir = temporaryDirectory("qubes-access-");
    // nobody may reach the sockets' directory, so that only the sockets' own checks stand in the way.
    chmodSync(dir.dir, 0o711);
  });
  afterEach(() => dir.remove());

  it("allows this user, root, and the users QUBES_PEER_UIDS names; a malformed list is an error naming it", () => {
    const own = process.getuid?.() ?? 0;
    expect([...allowedPeerUids({})].sort()).toEqual([...new Set([0, own])].sort());
    expect(allowedPeerUids({ QUBES_PEER_UIDS: "1000, 1001" }).has(1001)).toBe(true);
    expect(() => allowedPeerUids({ QUBES_PEER_UIDS: "1000,bob" })).toThrow(/QUBES_PEER_UIDS/);
    expect(() => allowedPeerUids({ QUBES_PEER_UIDS: "4294967295" })).toThrow(/QUBES_PEER_UIDS/);
  });

  it("gives a grant pool only to an allowed user: the socket is 0600, and another user is hung up on with nothing", async () => {
    const granter = new MemfdGrantTable({ domain: GRANTER, socketDir: dir.dir });
    const mapper = new MemfdGrantTable({ domain: MAPPER, socketDir: dir.dir });
    try {
      granter.offer(MAPPER);
      const socket = grantSocketPath(dir.dir, GRANTER, MAPPER);
      expect(statSync(socket).mode & 0o777).toBe(0o600);
      expect(await connectAsNobody(socket)).toBe("error EACCES");
      // Past the mode (a socket made by a looser umask or a directory shared on purpose): SO_PEERCRED.
      chmodSync(socket, 0o666);
      expect(await connectAsNobody(socket)).toBe("bytes 0");
      // The allowed peer still gets the pool.
      await within(mapper.attach(GRANTER), 10_000, "the allowed peer's attach");
      const shared = granter.share(MAPPER, 1);
      const mapping = mapper.map(GRANTER, shared.refs);
      expect(mapping.buffer.byteLength).toBeGreaterThan(0);
      mapper.unmap(mapping);
    } finally {
      granter.destroy();
      mapper.destroy();
    }
  });

  it("keeps a vchan server waiting for its client when another user connects first", async () => {
    const server = createSocketServer({ domain: MAPPER, port: 6000, ownDomain: GRANTER, socketDir: dir.dir });
    let client: Vchan | undefined;
    try {
      const socket = `${dir.dir}/vchan.${GRANTER}.${MAPPER}.6000.sock`;
      expect(statSync(socket).mode & 0o777).toBe(0o600);
      chmodSync(socket, 0o666);
      expect(await connectAsNobody(socket)).toBe("bytes 0");
      expect(server.isOpen()).not.toBe(VCHAN_CONNECTED);
      client = await within(
        connectSocketClient({ domain: GRANTER, port: 6000, ownDomain: MAPPER, socketDir: dir.dir }),
        10_000,
        "the allowed client's connection",
      );
      await within(
        new Promise<void>((resolve) =>
          server.isOpen() === VCHAN_CONNECTED ? resolve() : server.once("connect", () => resolve()),
        ),
        10_000,
        "the server's connect",
      );
      client.write(Uint8Array.of(1, 2, 3));
      await within(
        new Promise<void>((resolve) => (server.dataReady() >= 3 ? resolve() : server.once("data", () => resolve()))),
        10_000,
        "the client's bytes at the server",
      );
      const received = new Uint8Array(3);
      expect(server.read(received)).toBe(3);
      expect([...received]).toEqual([1, 2, 3]);
    } finally {
      client?.close();
      server.close();
    }
  });

  it("refuses a grant pool or vchan served by another user who took the socket's name first", async () => {
    // A directory anyone may write in (as /tmp is): nobody listens at the names first.
    chmodSync(dir.dir, 0o1777);
    const squatter = await listenAsNobody(grantSocketPath(dir.dir, GRANTER, MAPPER));
    const vchanSquatter = await listenAsNobody(`${dir.dir}/vchan.${GRANTER}.${MAPPER}.6001.sock`);
    const mapper = new MemfdGrantTable({ domain: MAPPER, socketDir: dir.dir });
    try {
      await expect(within(mapper.attach(GRANTER), 10_000, "the refusal")).rejects.toThrow(
        new RegExp(`served by uid ${NOBODY}, not by this user`),
      );
      await expect(
        within(
          connectSocketClient({ domain: GRANTER, port: 6001, ownDomain: MAPPER, socketDir: dir.dir }),
          10_000,
          "the vchan refusal",
        ),
      ).rejects.toThrow(new RegExp(`served by uid ${NOBODY}`));
    } finally {
      mapper.destroy();
      squatter.kill();
      vchanSquatter.kill();
    }
  });
});
