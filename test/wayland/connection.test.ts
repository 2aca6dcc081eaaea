// The Connection: framing that survives any split of the byte stream,
// hostile header sizes, fds matched to their messages in order across many
// messages and sendmsg calls, partial writes, and back-pressure.
import { afterEach, describe, expect, it } from "vitest";

import { close, fileSize, memfdCreate, sendmsg, socketpair } from "../../native/index.ts";
import {
  Connection,
  FdQueue,
  MessageWriter,
  compileInterface,
  decodeArgs,
  encodeMessage,
  wl_shm,
  wl_surface,
  xdg_toplevel,
  type WaylandError,
} from "../../wayland/index.ts";

const surface = compileInterface(wl_surface);
const [attach, damage, frame, commit] = ["attach", "damage_buffer", "frame", "commit"].map((name) =>
  surface.requests.find((message) => message.spec.name === name)!,
) as [
  (typeof surface.requests)[number],
  (typeof surface.requests)[number],
  (typeof surface.requests)[number],
  (typeof surface.requests)[number],
];

interface Seen {
  objectId: number;
  opcode: number;
  body: number[];
}

/** A connection on one end of a socketpair that records every message; the other end is returned raw. */
function recordingConnection(options: { maxPendingBytes?: number } = {}): {
  connection: Connection;
  peer: number;
  seen: Seen[];
  closed: Promise<WaylandError | undefined>;
} {
  const [mine, peer] = socketpair("stream");
  const seen: Seen[] = [];
  let closedWith!: (error: WaylandError | undefined) => void;
  const closed = new Promise<WaylandError | undefined>((resolve) => (closedWith = resolve));
  const connection = new Connection(
    mine,
    {
      message: (objectId, opcode, bytes, _view, start, end) => {
        seen.push({ objectId, opcode, body: [...bytes.subarray(start, end)] });
        return true;
      },
      closed: (error) => closedWith(error),
    },
    options,
  );
  opened.push(connection);
  peers.push(peer);
  return { connection, peer, seen, closed };
}

const opened: Connection[] = [];
const peers: number[] = [];
afterEach(() => {
  for (const connection of opened.splice(0)) connection.destroy();
  for (const fd of peers.splice(0)) {
    try {
      close(fd);
    } catch {
      // Already closed by the test.
    }
  }
});

/** A typical frame: attach, damage_buffer, frame, commit on surface 3. */
function frameBytes(): Uint8Array {
  const out = new MessageWriter();
  encodeMessage(out, 3, attach, [5, 0, 0], []);
  encodeMessage(out, 3, damage, [0, 0, 64, 48], []);
  encodeMessage(out, 3, frame, [6], []);
  encodeMessage(out, 3, commit, [], []);
  return out.bytes.slice(0, out.length);
}

describe("connection framing", () => {
  it("dispatches the same messages whatever byte offset the stream is split at, glued to the next frame", () => {
    const { connection, seen } = recordingConnection();
    const bytes = frameBytes();
    const expected = [
      { objectId: 3, opcode: 1, body: [5, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0] },
      { objectId: 3, opcode: 9, body: [0, 0, 0, 0, 0, 0, 0, 0, 64, 0, 0, 0, 48, 0, 0, 0] },
      { objectId: 3, opcode: 3, body: [6, 0, 0, 0] },
      { objectId: 3, opcode: 6, body: [] },
    ];
    for (let split = 0; split <= bytes.length; split++) {
      seen.length = 0;
      // The first piece ends mid-frame; the second carries the rest and the start of the next frame.
      const twice = new Uint8Array(bytes.length * 2);
      twice.set(bytes);
      twice.set(bytes, bytes.length);
      expect(connection.receiveForTest(twice.subarray(0, split))).toBe(true);
      expect(connection.receiveForTest(twice.subarray(split, bytes.length + 5))).toBe(true);
      expect(connection.receiveForTest(twice.subarray(bytes.length + 5))).toBe(true);
      expect(seen).toEqual([...expected, ...expected]);
    }
  });

  it.each([
    ["0", 0],
    ["4 (shorter than the header)", 4],
    ["10 (not a multiple of 4)", 10],
    ["4100 (over 4096)", 4100],
    ["65532 (the largest the header can say)", 65532],
  ])("ends the connection on a message size of %s", async (_name, size) => {
    const { connection, closed, seen } = recordingConnection();
    const bytes = new Uint8Array(16);
    new DataView(bytes.buffer).setUint32(0, 3, true);
    new DataView(bytes.buffer).setUint32(4, ((size << 16) | 1) >>> 0, true);
    expect(connection.receiveForTest(bytes)).toBe(false);
    expect((await closed)?.code).toBe("protocol-error");
    expect(seen).toEqual([]);
  });

  it("waits for the rest of a 4096-byte message that arrives one byte at a time", () => {
    const { connection, seen } = recordingConnection();
    const bytes = new Uint8Array(4096);
    new DataView(bytes.buffer).setUint32(0, 3, true);
    new DataView(bytes.buffer).setUint32(4, ((4096 << 16) | 2) >>> 0, true);
    for (let i = 0; i < bytes.length; i++) {
      connection.receiveForTest(bytes.subarray(i, i + 1));
      expect(seen.length).toBe(i === bytes.length - 1 ? 1 : 0);
    }
  });
});

describe("connection over a socket", () => {
  it("matches fds to their messages in order across 600 messages and several sendmsg calls", async () => {
    const [a, b] = socketpair("stream");
    peers.push(b);
    const shm = compileInterface(wl_shm).requests.find((message) => message.spec.name === "create_pool")!;
    const sizes: number[] = [];
    const received: Array<{ id: number; size: number; fdSize: number }> = [];
    let done!: () => void;
    const all = new Promise<void>((resolve) => (done = resolve));
    const reader: Connection = new Connection(b, {
      message: (objectId, _opcode, bytes, view, start, end) => {
        const args = decodeArgs(shm, bytes, view, start, end, reader.fds);
        if (!Array.isArray(args)) throw new Error(args.error);
        const fd = args[1] as number;
        received.push({ id: objectId, size: args[2] as number, fdSize: fileSize(fd) });
        close(fd);
        if (received.length === sizes.length) done();
        return true;
      },
      closed: () => undefined,
    });
    peers.pop();
    opened.push(reader);
    const writer = new Connection(a, { message: () => true, closed: () => undefined });
    opened.push(writer);
    for (let i = 0; i < 600; i++) {
      const size = 4096 * ((i % 7) + 1);
      const fd = memfdCreate(`fd-${i}`, size);
      writer.send(10 + i, shm, [20 + i, fd, size]);
      close(fd);
      sizes.push(size);
    }
    await all;
    expect(received).toEqual(sizes.map((size, i) => ({ id: 10 + i, size, fdSize: size })));
  });

  it("keeps fds with their messages through many partial writes of a 5 MB burst", async () => {
    const [a, b] = socketpair("stream");
    const title = compileInterface(xdg_toplevel).requests.find((message) => message.spec.name === "set_title")!;
    const pool = compileInterface(wl_shm).requests.find((message) => message.spec.name === "create_pool")!;
    const writer = new Connection(a, { message: () => true, closed: () => undefined }, { maxPendingBytes: 16 << 20 });
    opened.push(writer);
    const expected: string[] = [];
    for (let i = 0; i < 1700; i++) {
      if (i % 17 === 0) {
        const size = 4096 * (1 + (i % 5));
        const fd = memfdCreate(`burst-${i}`, size);
        writer.send(7, pool, [100 + i, fd, size]);
        close(fd);
        expected.push(`pool ${100 + i} ${size} ${size}`);
      } else {
        const text = String(i).padEnd(3000, ".");
        writer.send(8, title, [text]);
        expected.push(`title ${text.length} ${i}`);
      }
    }
    await new Promise<void>((resolve) => queueMicrotask(resolve));
    expect(writer.pendingBytes).toBeGreaterThan(1 << 20);
    const seen: string[] = [];
    let done!: () => void;
    const all = new Promise<void>((resolve) => (done = resolve));
    const reader: Connection = new Connection(b, {
      message: (objectId, _opcode, bytes, view, start, end) => {
        const args = decodeArgs(objectId === 7 ? pool : title, bytes, view, start, end, reader.fds);
        if (!Array.isArray(args)) throw new Error(args.error);
        if (objectId === 7) {
          seen.push(`pool ${args[0]} ${args[2]} ${fileSize(args[1] as number)}`);
          close(args[1] as number);
        } else {
          seen.push(`title ${(args[0] as string).length} ${parseInt(args[0] as string, 10)}`);
        }
        if (seen.length === expected.length) done();
        return true;
      },
      closed: () => undefined,
    });
    opened.push(reader);
    await all;
    expect(seen).toEqual(expected);
  });

  it("keeps a burst the peer reads late and delivers all of it after partial writes", async () => {
    const { connection: writer, peer } = recordingConnection();
    peers.pop();
    let count = 0;
    let done!: () => void;
    const all = new Promise<void>((resolve) => (done = resolve));
    const messages = 50_000;
    for (let i = 0; i < messages; i++) writer.send(3, damage, [i, 0, 64, 48]);
    await new Promise<void>((resolve) => queueMicrotask(resolve));
    expect(writer.pendingBytes).toBeGreaterThan(0);
    const reader = new Connection(peer, {
      message: (_id, _opcode, _bytes, view, start) => {
        expect(view.getInt32(start, true)).toBe(count);
        count += 1;
        if (count === messages) done();
        return true;
      },
      closed: () => undefined,
    });
    opened.push(reader);
    await all;
    expect(count).toBe(messages);
  });

  it("ends the connection with peer-not-reading once pending bytes pass the limit", async () => {
    const { connection: writer, closed } = recordingConnection({ maxPendingBytes: 64 * 1024 });
    for (let i = 0; i < 50_000; i++) writer.send(3, damage, [i, 0, 64, 48]);
    expect((await closed)?.code).toBe("peer-not-reading");
    expect(writer.destroyed).toBe(true);
  });

  it("ends the connection when fds keep arriving without the messages that would take them", async () => {
    const { peer, closed, seen } = recordingConnection();
    const fd = memfdCreate("flood", 0);
    const oneByte = new Uint8Array(1);
    for (let i = 0; i < 3; i++)
      sendmsg(
        peer,
        oneByte,
        Array.from({ length: 200 }, () => fd),
      );
    close(fd);
    const error = await closed;
    expect(error?.code).toBe("protocol-error");
    expect(error?.message).toMatch(/fds received without their messages/);
    expect(seen).toEqual([]);
  });

  it("reports end of stream when the peer closes", async () => {
    const { peer, closed } = recordingConnection();
    close(peer);
    peers.pop();
    expect(await closed).toBeUndefined();
  });

  it("closes received fds that no message took when it is destroyed", () => {
    const queue = new FdQueue();
    const fd = memfdCreate("left", 0);
    queue.push([fd]);
    queue.destroy();
    expect(() => fileSize(fd)).toThrow(/EBADF/);
  });
});
