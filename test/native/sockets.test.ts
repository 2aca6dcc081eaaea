import { describe, expect, it } from "vitest";

import * as native from "../../native/index.ts";
import { trackFds } from "../helpers/fds.ts";
import { temporaryDirectory } from "../helpers/processes.ts";

const track = trackFds();

function pair(type: native.SocketType): [number, number] {
  const [a, b] = native.socketpair(type);
  return [track(a), track(b)];
}

function readMarker(fd: number): number {
  const buffer = native.mmap(fd, 0, native.PAGE_SIZE);
  const value = new Uint32Array(buffer)[0] as number;
  native.munmap(buffer);
  return value;
}

describe.each(["stream", "seqpacket"] as const)("AF_UNIX %s sockets", (type) => {
  it("carries bytes and fds; the receiver gets working fds with new numbers", () => {
    const [a, b] = pair(type);
    const memfd = track(native.memfdCreate("passed", native.PAGE_SIZE));
    const view = native.mmap(memfd, 0, native.PAGE_SIZE, { writable: true });
    new Uint32Array(view)[0] = 0xdecafbad;
    native.munmap(view);

    expect(native.sendmsg(a, new Uint8Array([9, 8, 7]), [memfd])).toBe(3);
    const buffer = new Uint8Array(64);
    const received = native.recvmsg(b, buffer, 4);
    expect(received?.bytes).toBe(3);
    expect([...buffer.subarray(0, 3)]).toEqual([9, 8, 7]);
    expect(received?.fds).toHaveLength(1);
    const fd = track(received?.fds[0] as number);
    expect(fd).not.toBe(memfd);
    expect(readMarker(fd)).toBe(0xdecafbad);
  });

  it("keeps fds with their own message, in order, across several messages", () => {
    const [a, b] = pair(type);
    const first = track(native.eventfdCreate({ initial: 1 }));
    const second = track(native.eventfdCreate({ initial: 2 }));
    const third = track(native.eventfdCreate({ initial: 3 }));
    native.sendmsg(a, new Uint8Array([1]), [first, second]);
    native.sendmsg(a, new Uint8Array([2]), [third]);
    const buffer = new Uint8Array(1);
    const one = native.recvmsg(b, buffer, 8);
    const two = native.recvmsg(b, buffer, 8);
    const counters = [...(one?.fds ?? []), ...(two?.fds ?? [])].map((fd) => native.eventfdConsume(track(fd)));
    expect(one?.fds).toHaveLength(2);
    expect(two?.fds).toHaveLength(1);
    expect(counters).toEqual([1, 2, 3]);
  });

  it("never blocks in recvmsg or sendmsg, even on a socket someone made blocking", () => {
    const [a, b] = pair(type);
    native.setNonBlocking(b, false);
    expect(native.recvmsg(b, new Uint8Array(8), 0)).toBeNull();
    native.setNonBlocking(a, false);
    const chunk = new Uint8Array(type === "stream" ? 65536 : 4096);
    let full = false;
    for (let i = 0; i < 10_000 && !full; i++) full = native.sendmsg(a, chunk) === null;
    expect(full).toBe(true);
  });

  it("returns null when nothing is there and bytes 0 once the peer closed", () => {
    const [a, b] = pair(type);
    expect(native.recvmsg(b, new Uint8Array(8), 0)).toBeNull();
    native.close(a);
    expect(native.recvmsg(b, new Uint8Array(8), 0)).toEqual({ bytes: 0, fds: [] });
  });

  it("gives a clear EMSGSIZE error when more fds arrive than there is room for, closing them", () => {
    const [a, b] = pair(type);
    const fds = Array.from({ length: 6 }, () => track(native.eventfdCreate()));
    native.sendmsg(a, new Uint8Array([1]), fds);
    expect(() => native.recvmsg(b, new Uint8Array(8), 1)).toThrow(
      expect.objectContaining({ code: "EMSGSIZE", syscall: "recvmsg", message: expect.stringContaining("MSG_CTRUNC") }),
    );
  });

  it("fails with EPIPE when the peer is gone and EBADF on a closed socket", () => {
    const [a, b] = pair(type);
    native.close(b);
    expect(() => native.sendmsg(a, new Uint8Array([1]))).toThrow(
      expect.objectContaining({ code: "EPIPE", syscall: "sendmsg" }),
    );
    native.close(a);
    expect(() => native.recvmsg(a, new Uint8Array(1), 0)).toThrow(
      expect.objectContaining({ code: "EBADF", syscall: "recvmsg" }),
    );
  });

  it("rejects oversize requests: 254 fds, fds without data, a bad fd in the list", () => {
    const [a] = pair(type);
    const fd = track(native.eventfdCreate());
    expect(() => native.sendmsg(a, new Uint8Array([1]), new Array<number>(254).fill(fd))).toThrow(RangeError);
    expect(() => native.sendmsg(a, new Uint8Array(0), [fd])).toThrow(/at least one data byte/);
    expect(() => native.sendmsg(a, new Uint8Array([1]), [-3])).toThrow(RangeError);
    expect(() => native.binding.sendmsg(a, new Uint8Array([1]), [987654])).toThrow(
      expect.objectContaining({ code: "EBADF" }),
    );
    expect(() => native.recvmsg(a, new Uint8Array(1), 254)).toThrow(RangeError);
  });

  it("listens, connects and accepts by path; accept returns null when nobody waits", () => {
    const tmp = temporaryDirectory();
    const socketPath = `${tmp.dir}/listen.sock`;
    const listener = track(native.listen(type, socketPath));
    expect(native.accept(listener)).toBeNull();
    const client = track(native.socket(type));
    expect(native.connect(client, socketPath)).toBe(true);
    const server = track(native.accept(listener) as number);
    native.sendmsg(client, new TextEncoder().encode("hello"));
    const buffer = new Uint8Array(16);
    expect(native.recvmsg(server, buffer, 0)?.bytes).toBe(5);
    expect(native.peerCredentials(server)).toEqual({
      pid: process.pid,
      uid: process.getuid?.(),
      gid: process.getgid?.(),
    });
    tmp.remove();
  });

  it("reports a missing listener as ENOENT and a busy path as EADDRINUSE", () => {
    const tmp = temporaryDirectory();
    const client = track(native.socket(type));
    expect(() => native.connect(client, `${tmp.dir}/missing.sock`)).toThrow(
      expect.objectContaining({ code: "ENOENT", syscall: "connect" }),
    );
    track(native.listen(type, `${tmp.dir}/busy.sock`));
    expect(() => native.listen(type, `${tmp.dir}/busy.sock`)).toThrow(
      expect.objectContaining({ code: "EADDRINUSE", syscall: "bind" }),
    );
    expect(() => native.listen(type, `${tmp.dir}/${"x".repeat(120)}`)).toThrow(RangeError);
    tmp.remove();
  });
});

describe("seqpacket boundaries", () => {
  it("reports a datagram larger than the buffer as EMSGSIZE instead of losing its tail silently", () => {
    const [a, b] = pair("seqpacket");
    native.sendmsg(a, new Uint8Array(100));
    expect(() => native.recvmsg(b, new Uint8Array(10), 0)).toThrow(expect.objectContaining({ code: "EMSGSIZE" }));
  });
});

describe("stream back-pressure", () => {
  it("returns null from sendmsg once the peer stops reading, and accepts more after it reads", () => {
    const [a, b] = pair("stream");
    const chunk = new Uint8Array(65536);
    let sent = 0;
    for (let i = 0; i < 1000; i++) {
      const n = native.sendmsg(a, chunk);
      if (n === null) break;
      sent += n;
    }
    expect(native.sendmsg(a, chunk)).toBeNull();
    const buffer = new Uint8Array(1 << 20);
    let drained = 0;
    for (;;) {
      const received = native.recvmsg(b, buffer, 0);
      if (received === null) break;
      drained += received.bytes;
    }
    expect(drained).toBe(sent);
    expect(native.sendmsg(a, chunk)).not.toBeNull();
  });
});

describe("fd helpers", () => {
  it("dups an fd into a new number that reaches the same file", () => {
    const fd = track(native.eventfdCreate());
    const copy = track(native.dup(fd));
    expect(copy).not.toBe(fd);
    native.eventfdSignal(copy, 3);
    expect(native.eventfdConsume(fd)).toBe(3);
  });

  it("names the syscall and errno of a failed close", () => {
    expect(() => native.close(987654)).toThrow(
      expect.objectContaining({
        syscall: "close",
        code: "EBADF",
        errno: -9,
        message: "close failed: EBADF (Bad file descriptor)",
      }),
    );
    expect(native.isSyscallError(Object.assign(new Error("x"), { syscall: "open", code: "ENOENT" }), "ENOENT")).toBe(
      true,
    );
  });
});
