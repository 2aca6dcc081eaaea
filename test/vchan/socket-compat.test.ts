// The socket backend against a C peer that follows qubes-core-vchan-socket's
// rules (written here from the documented behaviour, not from its source):
// path vchan.<server>.<client>.<port>.sock in $VCHAN_SOCKET_DIR, own domain
// from $VCHAN_DOMAIN, raw bytes with no framing, the server unlinks a stale
// path and accepts one connection, the client retries until the path exists.
import { execFileSync, spawn } from "node:child_process";
import { existsSync, unlinkSync, writeFileSync } from "node:fs";
import path from "node:path";

import { afterAll, beforeAll, describe, expect, it } from "vitest";

import * as native from "../../native/index.ts";
import { connectVchanClient, createVchanServer, vchanSocketPath } from "../../vchan/index.ts";
import { READY_TIMEOUT_MS, finished, temporaryDirectory, withStartup } from "../helpers/processes.ts";
import { readPattern, writePattern } from "./helpers.ts";

const C_PEER = String.raw`
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

/* vchan-c-peer server|client DOMAIN PORT BYTES
   server: echoes BYTES bytes back; client: sends BYTES pattern bytes and
   checks the echo. Exits 0 on success. */
static int socket_path(struct sockaddr_un *addr, int server, int client, int port) {
  const char *dir = getenv("VCHAN_SOCKET_DIR");
  if (dir == NULL) dir = "/var/run/vchan";
  memset(addr, 0, sizeof *addr);
  addr->sun_family = AF_UNIX;
  return snprintf(addr->sun_path, sizeof addr->sun_path, "%s/vchan.%d.%d.%d.sock", dir, server, client, port);
}

static unsigned char pattern(long i) { return (unsigned char)((i % 251) ^ 0x5a); }

int main(int argc, char **argv) {
  if (argc != 5) return 2;
  const char *own_env = getenv("VCHAN_DOMAIN");
  int own = own_env ? atoi(own_env) : 0, domain = atoi(argv[2]), port = atoi(argv[3]);
  long bytes = atol(argv[4]);
  struct sockaddr_un addr;
  int fd;
  if (strcmp(argv[1], "server") == 0) {
    socket_path(&addr, own, domain, port);
    unlink(addr.sun_path);
    int listener = socket(AF_UNIX, SOCK_STREAM, 0);
    if (bind(listener, (struct sockaddr *)&addr, sizeof addr) != 0 || listen(listener, 1) != 0) return 3;
    printf("listening\n");
    fflush(stdout);
    fd = accept(listener, NULL, NULL);
    if (fd < 0) return 4;
    close(listener);
    char buffer[8192];
    long done = 0;
    while (done < bytes) {
      ssize_t n = read(fd, buffer, sizeof buffer);
      if (n <= 0) return 5;
      for (ssize_t off = 0; off < n;) {
        ssize_t w = write(fd, buffer + off, (size_t)(n - off));
        if (w <= 0) return 6;
        off += w;
      }
      done += n;
    }
    close(fd);
    return 0;
  }
  socket_path(&addr, domain, own, port);
  fd = socket(AF_UNIX, SOCK_STREAM, 0);
  while (connect(fd, (struct sockaddr *)&addr, sizeof addr) != 0) {
    if (errno != ENOENT && errno != ECONNREFUSED) return 7;
    struct timespec pause = {0, 100000};
    nanosleep(&pause, NULL);
  }
  unsigned char out[4096], in[4096];
  long sent = 0, got = 0;
  while (got < bytes) {
    if (sent < bytes) {
      long n = bytes - sent < (long)sizeof out ? bytes - sent : (long)sizeof out;
      for (long i = 0; i < n; i++) out[i] = pattern(sent + i);
      for (long off = 0; off < n;) {
        ssize_t w = write(fd, out + off, (size_t)(n - off));
        if (w <= 0) return 8;
        off += w;
      }
      sent += n;
    }
    while (got < sent) {
      ssize_t r = read(fd, in, (size_t)(sent - got < (long)sizeof in ? sent - got : (long)sizeof in));
      if (r <= 0) return 9;
      for (ssize_t i = 0; i < r; i++) if (in[i] != pattern(got + i)) return 10;
      got += r;
    }
  }
  close(fd);
  printf("ok %ld\n", got);
  return 0;
}
`;

let build: { dir: string; remove: () => void };
let binary: string;
beforeAll(() => {
  build = temporaryDirectory("vchan-c-peer-");
  writeFileSync(path.join(build.dir, "peer.c"), C_PEER);
  binary = path.join(build.dir, "peer");
  execFileSync("cc", ["-O2", "-Wall", "-o", binary, path.join(build.dir, "peer.c")]);
  // Compiling is starting processes (cc, cc1, as, ld): as long as the machine needs.
}, READY_TIMEOUT_MS);
afterAll(() => build.remove());

describe("the socket backend and a C program with qubes-core-vchan-socket's conventions", () => {
  it("names its socket vchan.<server>.<client>.<port>.sock in VCHAN_SOCKET_DIR", () => {
    expect(vchanSocketPath("/var/run/vchan", 5, 0, 6000)).toBe("/var/run/vchan/vchan.5.0.6000.sock");
  });

  it("reads its own domain from VCHAN_DOMAIN: with VCHAN_DOMAIN=5, a server for domain 0 listens on vchan.5.0.6000.sock", () => {
    const dir = temporaryDirectory();
    const saved = { domain: process.env["VCHAN_DOMAIN"], socketDir: process.env["VCHAN_SOCKET_DIR"] };
    process.env["VCHAN_DOMAIN"] = "5";
    process.env["VCHAN_SOCKET_DIR"] = dir.dir;
    try {
      const server = createVchanServer({ backend: "socket", domain: 0, port: 6000 });
      expect(existsSync(path.join(dir.dir, "vchan.5.0.6000.sock"))).toBe(true);
      server.close();
    } finally {
      for (const [name, value] of [
        ["VCHAN_DOMAIN", saved.domain],
        ["VCHAN_SOCKET_DIR", saved.socketDir],
      ] as const) {
        if (value === undefined) delete process.env[name];
        else process.env[name] = value;
      }
      dir.remove();
    }
  });

  // The C peer's connection is its readiness signal; the guard allows for its start-up.
  it(
    "serves a C client (VCHAN_DOMAIN=0, server domain 5): raw bytes both ways, no framing",
    { timeout: withStartup(30_000) },
    async () => {
      const dir = temporaryDirectory();
      const server = createVchanServer({ backend: "socket", domain: 0, ownDomain: 5, port: 6000, socketDir: dir.dir });
      const child = spawn(binary, ["client", "5", "6000", String(1 << 20)], {
        env: { ...process.env, VCHAN_SOCKET_DIR: dir.dir, VCHAN_DOMAIN: "0" },
        stdio: ["ignore", "pipe", "pipe"],
      });
      const done = finished(child);
      try {
        await server.whenConnected();
        // Echo every byte back, as it comes.
        const buffer = new Uint8Array(65536);
        let echoed = 0;
        while (echoed < 1 << 20) {
          const n = server.read(buffer);
          if (n === 0) {
            await new Promise<void>((resolve) => server.once("data", () => resolve()));
            continue;
          }
          let off = 0;
          while (off < n) {
            const w = server.write(buffer.subarray(off, n));
            off += w;
            if (w === 0) await new Promise<void>((resolve) => server.once("drain", () => resolve()));
          }
          echoed += n;
        }
        const result = await done;
        expect(result.stdout).toBe(`ok ${1 << 20}\n`);
        expect(result.code).toBe(0);
      } finally {
        server.close();
        child.kill();
        dir.remove();
      }
    },
  );

  it(
    "connects to a C server that started later, and replaces only a stale path when serving",
    { timeout: withStartup(30_000) },
    async () => {
      const dir = temporaryDirectory();
      const name = vchanSocketPath(dir.dir, 5, 9, 1);
      const options = { backend: "socket", domain: 9, ownDomain: 5, port: 1, socketDir: dir.dir } as const;
      // A socket file left by a crashed server: ours must replace it, not fail with EADDRINUSE.
      native.close(native.listen("stream", name));
      const replacing = createVchanServer(options);
      // A second server on a name a live one serves is refused: one name, one server.
      expect(() => createVchanServer(options)).toThrow(`${name} is served by another live process`);
      // A newer server on the name after it was removed: closing the older one leaves the newer one's name alone.
      unlinkSync(name);
      const newer = createVchanServer(options);
      replacing.close();
      expect(existsSync(name)).toBe(true);
      newer.close();
      expect(existsSync(name)).toBe(false);
      const connecting = connectVchanClient({
        backend: "socket",
        domain: 5,
        ownDomain: 0,
        port: 6001,
        socketDir: dir.dir,
      });
      const child = spawn(binary, ["server", "0", "6001", String(1 << 20)], {
        env: { ...process.env, VCHAN_SOCKET_DIR: dir.dir, VCHAN_DOMAIN: "5" },
        stdio: ["ignore", "pipe", "pipe"],
      });
      const done = finished(child);
      try {
        const client = await connecting;
        await Promise.all([writePattern(client, 1 << 20), readPattern(client, 1 << 20)]);
        client.close();
        expect((await done).code).toBe(0);
      } finally {
        child.kill();
        dir.remove();
      }
    },
  );
});
