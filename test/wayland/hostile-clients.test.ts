// Hostile peers. Against the server side: random message streams (framed
// and unframed) either get answered or end their own client, never throw in
// the server, and never disturb a well-behaved client of the same display.
// Against the client side: malformed events end the connection with a
// protocol-error instead of throwing.
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

import { Poll, POLL_READABLE, close, recvmsg, sendmsg, shutdown, socketpair } from "../../native/index.ts";
import { ClientConnection, type Display } from "../../wayland/index.ts";
import { temporaryDirectory } from "../helpers/processes.ts";
import { createTestCompositor, type TestCompositor } from "../helpers/test-compositor.ts";

let dir: { dir: string; remove: () => void };
let compositor: TestCompositor;
let display: Display;
let witness: ClientConnection;

beforeAll(async () => {
  dir = temporaryDirectory("wayland-hostile-");
  compositor = createTestCompositor(`${dir.dir}/wayland-hostile`);
  display = compositor.display;
  const [serverEnd, clientEnd] = socketpair("stream");
  display.addClient(serverEnd);
  witness = new ClientConnection(clientEnd);
  await witness.roundtrip();
});

afterAll(() => {
  witness.destroy();
  compositor.destroy();
  dir.remove();
});

/** One message with a correct header around a random body. */
const framedMessage = fc
  .record({
    objectId: fc.oneof(fc.constantFrom(1, 2, 3, 4, 5, 6), fc.nat(), fc.constant(0xff000000)),
    opcode: fc.oneof(fc.nat(12), fc.nat(0xffff)),
    words: fc.array(fc.oneof(fc.nat(16), fc.nat(0xffffffff), fc.constant(0xffffffff)), { maxLength: 12 }),
  })
  .map(({ objectId, opcode, words }) => {
    const bytes = new Uint8Array(8 + words.length * 4);
    const view = new DataView(bytes.buffer);
    view.setUint32(0, objectId >>> 0, true);
    view.setUint32(4, ((bytes.length << 16) | opcode) >>> 0, true);
    words.forEach((word, i) => view.setUint32(8 + i * 4, word >>> 0, true));
    return bytes;
  });

/** The start every real client makes: get_registry(2), then a bind of four globals at version 1 (ids 3..6). */
function prologue(): Uint8Array[] {
  const getRegistry = new Uint8Array(12);
  const registryView = new DataView(getRegistry.buffer);
  registryView.setUint32(0, 1, true);
  registryView.setUint32(4, ((12 << 16) | 1) >>> 0, true);
  registryView.setUint32(8, 2, true);
  const messages = [getRegistry];
  ["wl_compositor", "wl_shm", "wl_output", "wl_subcompositor"].forEach((name, i) => {
    // wl_registry.bind(name, interface, version, id): the untyped new_id is string, version, id.
    const text = [...Buffer.from(name), 0];
    while (text.length % 4 !== 0) text.push(0);
    const bytes = new Uint8Array(8 + 4 + 4 + text.length + 8);
    const view = new DataView(bytes.buffer);
    view.setUint32(0, 2, true);
    view.setUint32(4, ((bytes.length << 16) | 0) >>> 0, true);
    view.setUint32(8, i + 1, true);
    view.setUint32(12, name.length + 1, true);
    bytes.set(text, 16);
    view.setUint32(16 + text.length, 1, true);
    view.setUint32(20 + text.length, 3 + i, true);
    messages.push(bytes);
  });
  return messages;
}

/** Writes the stream on a fresh client, then a sync, then EOF; resolves with how the server reacted. */
function exchange(stream: Uint8Array): Promise<"answered" | "disconnected"> {
  const [serverEnd, clientEnd] = socketpair("stream");
  display.addClient(serverEnd);
  const sync = new Uint8Array(12);
  new DataView(sync.buffer).setUint32(0, 1, true);
  new DataView(sync.buffer).setUint32(4, ((12 << 16) | 0) >>> 0, true);
  new DataView(sync.buffer).setUint32(8, 0xfeff0000, true);
  const all = Buffer.concat([stream, sync]);
  for (let sent = 0; sent < all.length;) {
    const wrote = sendmsg(clientEnd, all.subarray(sent));
    if (wrote === null) break;
    sent += wrote;
  }
  // End of stream after it: a message left incomplete on purpose cannot keep the server waiting.
  shutdown(clientEnd, "write");
  return new Promise((resolve) => {
    const buffer = new Uint8Array(65536);
    const poll = new Poll(clientEnd, () => {
      for (;;) {
        let got;
        try {
          got = recvmsg(clientEnd, buffer, 16);
        } catch {
          got = { bytes: 0, fds: [] };
        }
        if (got === null) return;
        for (const fd of got.fds) close(fd);
        const view = new DataView(buffer.buffer, 0, got.bytes);
        // wl_callback.done on the sync's id means every earlier message was handled.
        for (let at = 0; at + 8 <= got.bytes; at += 4) {
          if (view.getUint32(at, true) === 0xfeff0000) return finish("answered");
        }
        if (got.bytes === 0) return finish("disconnected");
      }
    });
    poll.start(POLL_READABLE);
    function finish(result: "answered" | "disconnected"): void {
      poll.close();
      close(clientEnd);
      resolve(result);
    }
  });
}

describe("hostile clients", () => {
  it("answers or disconnects each random framed stream, and the witness client keeps working", async () => {
    const outcomes = { answered: 0, disconnected: 0 };
    await fc.assert(
      fc.asyncProperty(fc.array(framedMessage, { maxLength: 12 }), async (messages) => {
        const outcome = await exchange(new Uint8Array(Buffer.concat([...prologue(), ...messages])));
        outcomes[outcome] += 1;
        await witness.roundtrip();
      }),
      { numRuns: 150 },
    );
    expect(witness.error).toBeUndefined();
    expect(outcomes.disconnected).toBeGreaterThan(0);
    expect(outcomes.answered).toBeGreaterThan(0);
    expect(display.clients.size).toBe(1);
  });

  it("survives random unframed bytes after a valid prologue", async () => {
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ minLength: 1, maxLength: 300 }), async (bytes) => {
        await exchange(new Uint8Array(Buffer.concat([...prologue(), bytes])));
        await witness.roundtrip();
      }),
      { numRuns: 150 },
    );
    expect(witness.error).toBeUndefined();
    expect(display.clients.size).toBe(1);
  });
});

describe("a hostile compositor", () => {
  /** A ClientConnection whose peer is a raw socket the test writes to. */
  function rawCompositor(): { connection: ClientConnection; write: (bytes: Uint8Array) => void; end: number } {
    const [compositorEnd, clientEnd] = socketpair("stream");
    const connection = new ClientConnection(clientEnd);
    return { connection, write: (bytes) => void sendmsg(compositorEnd, bytes), end: compositorEnd };
  }

  function event(objectId: number, opcode: number, words: number[]): Uint8Array {
    const bytes = new Uint8Array(8 + words.length * 4);
    const view = new DataView(bytes.buffer);
    view.setUint32(0, objectId, true);
    view.setUint32(4, ((bytes.length << 16) | opcode) >>> 0, true);
    words.forEach((word, i) => view.setUint32(8 + i * 4, word >>> 0, true));
    return bytes;
  }

  it.each([
    ["a string longer than its event", event(2, 0, [1, 4000, 0x41414141])],
    ["an opcode the interface does not have", event(2, 9, [])],
    ["a message size of 4", new Uint8Array([2, 0, 0, 0, 0, 0, 4, 0])],
  ])("ends our client with a protocol-error on %s, without throwing", async (_name, bytes) => {
    const { connection, write, end } = rawCompositor();
    const failed = connection.roundtrip().catch((error: unknown) => error);
    write(bytes);
    const error = (await failed) as { code?: string };
    expect(error.code).toBe("protocol-error");
    expect(connection.destroyed).toBe(true);
    close(end);
  });
});
