/**
 * The agent's DaemonLink on a stand-in vchan that records each write: a
 * batch of messages goes out as one write, in order, byte for byte what
 * separate sends would have written.
 */
import { EventEmitter } from "node:events";

import { describe, expect, it } from "vitest";

import { DaemonLink } from "../../gui-agent/index.ts";
import {
  QUBES_GUID_PROTOCOL_VERSION,
  StreamDecoder,
  encodeVersion,
  encodeXconf,
  makeXconf,
  type Message,
} from "../../protocol/index.ts";
import { VCHAN_CONNECTED, type Vchan, type VchanEvents } from "../../vchan/index.ts";

/** A connected vchan whose peer's bytes are queued by hand and whose writes are kept, one entry per write. */
class RecordingVchan extends EventEmitter<VchanEvents> {
  readonly backend = "socket" as const;
  readonly role = "server" as const;
  readonly domain = 0;
  readonly port = 6000;
  readonly writeRingSize = 1 << 16;
  readonly readRingSize = 1 << 16;
  readonly writes: Uint8Array[] = [];
  #incoming = new Uint8Array(0);

  /** The daemon's bytes arrive. */
  deliver(bytes: Uint8Array): void {
    const joined = new Uint8Array(this.#incoming.length + bytes.length);
    joined.set(this.#incoming);
    joined.set(bytes, this.#incoming.length);
    this.#incoming = joined;
    this.emit("data");
  }
  isOpen(): typeof VCHAN_CONNECTED {
    return VCHAN_CONNECTED;
  }
  dataReady(): number {
    return this.#incoming.length;
  }
  bufferSpace(): number {
    return this.writeRingSize;
  }
  read(into: Uint8Array): number {
    const count = Math.min(into.length, this.#incoming.length);
    into.set(this.#incoming.subarray(0, count));
    this.#incoming = this.#incoming.slice(count);
    return count;
  }
  recv(): boolean {
    return false;
  }
  write(data: Uint8Array): number {
    this.writes.push(data.slice());
    return data.length;
  }
  send(data: Uint8Array): boolean {
    this.write(data);
    return true;
  }
  whenConnected(): Promise<void> {
    return Promise.resolve();
  }
  close(): void {}
}

/** A link whose handshake with a 1.8 daemon is done, and its vchan with the version word's write dropped. */
async function readyLink(): Promise<{ link: DaemonLink; vchan: RecordingVchan }> {
  const vchan = new RecordingVchan();
  const link = new DaemonLink(vchan as unknown as Vchan);
  const ready = new Promise<void>((resolve) => link.once("ready", () => resolve()));
  vchan.deliver(encodeVersion(QUBES_GUID_PROTOCOL_VERSION));
  vchan.deliver(encodeXconf(makeXconf({ width: 1920, height: 1080 })));
  await ready;
  vchan.writes.length = 0;
  return { link, vchan };
}

/** The agent messages in `bytes`, as a daemon decodes them. */
function decodeAgent(bytes: Uint8Array): Message[] {
  const decoder = new StreamDecoder({ from: "agent", version: QUBES_GUID_PROTOCOL_VERSION });
  return decoder.push(bytes).map((result) => {
    if (!result.ok) throw new Error(result.error.message);
    return result.value as Message;
  });
}

function joined(chunks: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(chunks.reduce((sum, chunk) => sum + chunk.length, 0));
  let at = 0;
  for (const chunk of chunks) {
    out.set(chunk, at);
    at += chunk.length;
  }
  return out;
}

const images: Message[] = [
  { type: "SHMIMAGE", window: 3, x: 0, y: 0, width: 64, height: 64 },
  { type: "SHMIMAGE", window: 3, x: 100, y: 10, width: 8, height: 2 },
  { type: "SHMIMAGE", window: 4, x: 5, y: 6, width: 7, height: 8 },
];

describe("DaemonLink batches", () => {
  it("write each message at once outside a batch, and a batch's messages in one write at its end, the same bytes in order", async () => {
    const { link, vchan } = await readyLink();
    for (const message of images) link.send(message);
    expect(vchan.writes).toHaveLength(3);
    const separate = joined(vchan.writes);
    vchan.writes.length = 0;

    link.batch(() => {
      link.send(images[0]!);
      // Nested batches write once, at the outermost end.
      link.batch(() => link.send(images[1]!));
      link.send(images[2]!);
      expect(vchan.writes).toHaveLength(0);
    });
    expect(vchan.writes).toHaveLength(1);
    expect(vchan.writes[0]).toEqual(separate);
    expect(decodeAgent(vchan.writes[0]!)).toEqual(images);
    expect(link.counters.messagesSent).toBe(6);
    expect(link.counters.bytesSent).toBe(2 * separate.length + 4);
  });

  it("write nothing for an empty batch, and what a batch sent before it threw", async () => {
    const { link, vchan } = await readyLink();
    link.batch(() => {});
    expect(vchan.writes).toHaveLength(0);
    expect(() =>
      link.batch(() => {
        link.send(images[0]!);
        throw new Error("a bug in the caller");
      }),
    ).toThrow("a bug in the caller");
    expect(vchan.writes).toHaveLength(1);
    expect(decodeAgent(vchan.writes[0]!)).toEqual([images[0]]);
  });

  it("drop what a batch encoded once the link closed under it", async () => {
    const { link, vchan } = await readyLink();
    link.batch(() => {
      link.send(images[0]!);
      link.close("the daemon went away");
      link.send(images[1]!);
    });
    expect(vchan.writes).toHaveLength(0);
    expect(link.closed).toBe(true);
  });
});
