/**
 * What every backend's Vchan shares: the event plumbing (events emitted on
 * the event loop, coalesced, never from inside a call on the channel; `data`
 * repeats while bytes stay unread and reaches late listeners) and
 * whenConnected().
 */
import { EventEmitter } from "node:events";

import type { DomainId } from "../shm/index.ts";
import { VchanError } from "./errors.ts";
import {
  VCHAN_CONNECTED,
  VCHAN_DISCONNECTED,
  type Vchan,
  type VchanBackend,
  type VchanEvents,
  type VchanState,
} from "./types.ts";

/** The common half of every backend's {@link Vchan}. */
export abstract class VchanBase extends EventEmitter<VchanEvents> implements Vchan {
  abstract readonly backend: VchanBackend;
  abstract readonly writeRingSize: number;
  abstract readonly readRingSize: number;
  readonly role: "server" | "client";
  readonly domain: DomainId;
  readonly port: number;
  /** Events waiting for the next turn of the loop (coalesced). */
  #pending = new Set<keyof VchanEvents>();
  #scheduled = false;

  protected constructor(role: "server" | "client", domain: DomainId, port: number) {
    super();
    this.role = role;
    this.domain = domain;
    this.port = port;
    // A listener added after bytes arrived still hears of them: `data` is level-triggered.
    (this as EventEmitter).on("newListener", (event: string | symbol) => {
      if (event === "data" && this.dataReady() > 0) this.schedule("data");
    });
  }

  abstract isOpen(): VchanState;
  abstract dataReady(): number;
  abstract bufferSpace(): number;
  abstract read(into: Uint8Array): number;
  abstract recv(into: Uint8Array): boolean;
  abstract write(data: Uint8Array): number;
  abstract send(data: Uint8Array): boolean;
  abstract close(): void;

  whenConnected(): Promise<void> {
    const state = this.isOpen();
    if (state === VCHAN_CONNECTED) return Promise.resolve();
    if (state === VCHAN_DISCONNECTED) {
      return Promise.reject(new VchanError("VCHAN_DISCONNECTED", "the vchan closed before it connected"));
    }
    return new Promise((resolve, reject) => {
      const onConnect = (): void => {
        this.off("disconnect", onDisconnect);
        resolve();
      };
      const onDisconnect = (): void => {
        this.off("connect", onConnect);
        reject(new VchanError("VCHAN_DISCONNECTED", "the vchan closed before it connected"));
      };
      this.once("connect", onConnect);
      this.once("disconnect", onDisconnect);
    });
  }

  /** Emits `event` on a later turn of the loop; several requests before then give one emission. */
  protected schedule(event: keyof VchanEvents): void {
    this.#pending.add(event);
    if (this.#scheduled) return;
    this.#scheduled = true;
    setImmediate(() => {
      this.#scheduled = false;
      const events = [...this.#pending];
      this.#pending.clear();
      for (const name of events) this.emit(name);
    });
  }

  /**
   * Emits `event` now: for readiness found by a Poll callback, which runs on
   * the event loop and not inside a call on the channel (a loop turn saved
   * per message).
   */
  protected emitNow(event: keyof VchanEvents): void {
    this.#pending.delete(event);
    this.emit(event);
  }

  /** Throws VCHAN_TOO_LARGE for an all-or-nothing transfer that can never fit a ring of `size` bytes. */
  protected checkFits(length: number, size: number, what: "send" | "recv"): void {
    if (length > size) {
      throw new VchanError("VCHAN_TOO_LARGE", `${what} of ${length} bytes can never fit a ${size}-byte ring`);
    }
  }
}

/** Checks a port number (libvchan takes any non-negative int). */
export function checkPort(port: unknown): number {
  if (typeof port !== "number" || !Number.isInteger(port) || port < 0 || port > 0x7fffffff) {
    throw new RangeError(`port must be an integer 0..2^31-1, got ${String(port)}`);
  }
  return port;
}
