/**
 * One connection of the agent to a GUI daemon over a vchan: the agent's side
 * of the handshake (its version word; the daemon's negotiated version and
 * xconf), the decoder of daemon messages, and an output queue that writes
 * what the ring takes and keeps the rest until the daemon reads. Messages
 * sent in one {@link DaemonLink.batch} go out in one write.
 */
import { EventEmitter } from "node:events";

import {
  MessageEncoder,
  QUBES_GUID_PROTOCOL_VERSION,
  StreamDecoder,
  acceptDaemonVersion,
  encodeVersion,
  type Message,
  type XconfMessage,
} from "../protocol/index.ts";
import { VchanWriter, type Vchan } from "../vchan/index.ts";

/** Bytes the agent queues for a daemon that stopped reading before it gives up on that daemon. */
export const MAX_OUTPUT_QUEUE = 64 << 20;

/** What the link announces. */
export interface DaemonLinkEvents {
  /** The handshake finished: the negotiated version and the daemon's screen. */
  ready: [version: number, xconf: XconfMessage];
  /** A message from the daemon (trusted: the agent trusts its GUI domain). */
  message: [message: Message];
  /** The link is over: the daemon went away, or broke the protocol (`reason` says which). */
  close: [reason: string];
}

/** Counters of one link. */
export interface LinkCounters {
  messagesSent: number;
  bytesSent: number;
  messagesReceived: number;
}

/**
 * The agent's end of one daemon connection. Create it on a connected vchan;
 * it sends the version word at once. Messages sent before `ready` are a
 * programmer error.
 */
export class DaemonLink extends EventEmitter<DaemonLinkEvents> {
  /** The negotiated protocol version (0 until ready). */
  version = 0;
  /** The daemon's screen (null until ready). */
  xconf: XconfMessage | null = null;
  readonly counters: LinkCounters = { messagesSent: 0, bytesSent: 0, messagesReceived: 0 };
  readonly #vchan: Vchan;
  readonly #decoder: StreamDecoder;
  readonly #readBuffer: Uint8Array;
  /** Encodes messages into one reused buffer (made once the version is known); written after each send, or at a batch's end. */
  #encoder: MessageEncoder | null = null;
  /** Depth of {@link DaemonLink.batch} calls in progress: while above 0, sends only encode. */
  #batching = 0;
  readonly #writer: VchanWriter;
  #closed = false;
  #negotiated = 0;

  constructor(vchan: Vchan) {
    super();
    this.#vchan = vchan;
    this.#readBuffer = new Uint8Array(Math.max(4096, vchan.readRingSize));
    this.#decoder = new StreamDecoder({ from: "daemon", handshake: true, version: QUBES_GUID_PROTOCOL_VERSION });
    this.#writer = new VchanWriter(vchan, MAX_OUTPUT_QUEUE, (failure) =>
      this.close(
        failure.kind === "overflow"
          ? `the daemon stopped reading: ${failure.queued} bytes queued`
          : "the daemon went away",
      ),
    );
    vchan.on("data", this.#onData);
    vchan.on("disconnect", this.#onDisconnect);
    this.#write(encodeVersion(QUBES_GUID_PROTOCOL_VERSION));
    // Bytes may already be waiting (the daemon answers fast); read them on the next turn.
    queueMicrotask(this.#onData);
  }

  /** True once the link is over. */
  get closed(): boolean {
    return this.#closed;
  }

  /** Bytes waiting for ring space. */
  get queuedBytes(): number {
    return this.#writer.queuedBytes;
  }

  /** Sends one message (queued when the ring is full). */
  send(message: Message): void {
    if (this.#closed) return;
    if (this.version === 0) throw new Error(`cannot send ${message.type} before the handshake finished`);
    this.#encoder ??= new MessageEncoder({ from: "agent", version: this.version });
    this.#encoder.encode(message);
    this.counters.messagesSent += 1;
    if (this.#batching === 0) this.#writeEncoded();
  }

  /**
   * Runs `fn`, and writes every message it sends at its end, in order, as
   * one buffer: one write (one sendmsg on the socket vchan) for a commit's
   * SHMIMAGEs and what precedes them, instead of one per message. Nests.
   */
  batch(fn: () => void): void {
    this.#batching += 1;
    try {
      fn();
    } finally {
      this.#batching -= 1;
      if (this.#batching === 0) this.#writeEncoded();
    }
  }

  /** Ends the link and closes the vchan (idempotent). */
  close(reason = "closed by the agent"): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#vchan.off("data", this.#onData);
    this.#vchan.off("disconnect", this.#onDisconnect);
    this.#writer.close();
    this.#vchan.close();
    this.emit("close", reason);
  }

  /** Writes the messages encoded so far (if any) and starts the encoder over. */
  #writeEncoded(): void {
    const encoder = this.#encoder;
    if (encoder === null || encoder.length === 0) return;
    if (!this.#closed) this.#write(encoder.bytes());
    encoder.clear();
  }

  /** Writes what the ring takes now and queues a copy of the rest (`bytes` may be reused by the caller). */
  #write(bytes: Uint8Array): void {
    this.counters.bytesSent += bytes.length;
    this.#writer.write(bytes);
  }

  readonly #onData = (): void => {
    while (!this.#closed && this.#vchan.dataReady() > 0) {
      const count = this.#vchan.read(this.#readBuffer);
      if (count === 0) break;
      for (const result of this.#decoder.push(this.#readBuffer.subarray(0, count))) {
        if (this.#closed) return;
        if (!result.ok) {
          if (result.error.reaction === "end-session") {
            this.close(`protocol error from the daemon at byte ${result.offset}: ${result.error.message}`);
            return;
          }
          continue;
        }
        const value = result.value;
        if (value.type === "VERSION") {
          const accepted = acceptDaemonVersion(value.version);
          if (!accepted.ok) {
            this.close(accepted.error.message);
            return;
          }
          this.#negotiated = accepted.value;
        } else if (value.type === "XCONF") {
          this.version = this.#negotiated;
          this.xconf = value;
          this.emit("ready", this.version, value);
        } else {
          this.counters.messagesReceived += 1;
          this.emit("message", value);
        }
      }
    }
  };

  readonly #onDisconnect = (): void => {
    // Whatever arrived before the disconnect is still readable: handle it first.
    this.#onData();
    this.close("the daemon went away");
  };
}
