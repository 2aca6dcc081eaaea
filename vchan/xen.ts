/**
 * The `xen` vchan backend: libxenvchan itself (Debian's libxen-dev) through
 * the addon, non-blocking, its event channel fd watched by a Poll. It runs
 * only on Xen; elsewhere creating it fails with BACKEND_NOT_AVAILABLE and a
 * message saying why. The xenstore paths are Qubes' (qubes-core-vchan-xen):
 * the server publishes under its own `data/vchan/<client>/<port>`, the client
 * reads `/local/domain/<server>/data/vchan/<own>/<port>`.
 */
import { existsSync } from "node:fs";

import * as native from "../native/index.ts";
import { checkDomainId, ownDomainFromEnvironment, type DomainId } from "../shm/index.ts";
import { VchanBase, checkPort } from "./base.ts";
import { VchanError } from "./errors.ts";
import {
  VCHAN_CONNECTED,
  VCHAN_DISCONNECTED,
  VCHAN_WAITING,
  type VchanClientOptions,
  type VchanServerOptions,
  type VchanState,
} from "./types.ts";

/** The event channel device libxenvchan needs. */
export const EVTCHN_DEVICE = "/dev/xen/evtchn";

/** Whether this machine can run the xen vchan backend, and if not, why. */
export function xenVchanAvailability(): { available: true } | { available: false; reason: string } {
  if (!native.xenVchan.compiled) {
    return { available: false, reason: "xen vchan backend not available: the addon was built without libxenvchan.h" };
  }
  for (const device of [EVTCHN_DEVICE, "/dev/xen/gntdev"]) {
    if (!existsSync(device)) {
      return {
        available: false,
        reason: `xen vchan backend not available: ${device} does not exist (not running on Xen)`,
      };
    }
  }
  return { available: true };
}

function requireXen(): NonNullable<native.XenVchanBinding["XenVchan"]> {
  const availability = xenVchanAvailability();
  if (!availability.available) throw new VchanError("BACKEND_NOT_AVAILABLE", availability.reason);
  const constructor = native.xenVchan.XenVchan;
  if (constructor === undefined) throw new VchanError("BACKEND_NOT_AVAILABLE", "libxenvchan binding missing");
  return constructor;
}

/** A vchan end on libxenvchan. */
export class XenVchanChannel extends VchanBase {
  readonly backend = "xen" as const;
  readonly readRingSize: number;
  readonly writeRingSize: number;
  readonly #ctrl: native.XenVchan;
  readonly #poll: native.Poll;
  #state: VchanState;
  #closed = false;
  #wantDrain = false;

  /** @internal Use createXenServer / connectXenClient. */
  constructor(role: "server" | "client", domain: DomainId, port: number, ctrl: native.XenVchan) {
    super(role, domain, port);
    this.#ctrl = ctrl;
    this.#state = ctrl.isOpen() as VchanState;
    [this.readRingSize, this.writeRingSize] = ctrl.ringSizes();
    this.#poll = new native.Poll(ctrl.fdForSelect(), () => this.#onEvent());
    this.#poll.start(native.POLL_READABLE);
  }

  isOpen(): VchanState {
    return this.#closed ? VCHAN_DISCONNECTED : this.#state;
  }

  dataReady(): number {
    return this.#closed ? 0 : this.#ctrl.dataReady();
  }

  bufferSpace(): number {
    return this.isOpen() === VCHAN_CONNECTED ? this.#ctrl.bufferSpace() : 0;
  }

  read(into: Uint8Array): number {
    if (this.#closed) return 0;
    const n = this.#ctrl.read(into);
    if (this.#ctrl.dataReady() > 0) this.schedule("data");
    return n;
  }

  recv(into: Uint8Array): boolean {
    this.checkFits(into.length, this.readRingSize, "recv");
    if (this.#closed) return false;
    return this.#ctrl.recv(into) === into.length;
  }

  write(data: Uint8Array): number {
    this.#checkConnected();
    const n = this.#ctrl.write(data);
    if (n < data.length) this.#wantDrain = true;
    return n;
  }

  send(data: Uint8Array): boolean {
    this.checkFits(data.length, this.writeRingSize, "send");
    this.#checkConnected();
    const sent = this.#ctrl.send(data) === data.length;
    if (!sent) this.#wantDrain = true;
    return sent;
  }

  close(): void {
    if (this.#closed) return;
    const wasOpen = this.#state !== VCHAN_DISCONNECTED;
    this.#closed = true;
    this.#poll.close();
    this.#ctrl.close();
    if (wasOpen) this.schedule("disconnect");
  }

  #checkConnected(): void {
    if (this.isOpen() !== VCHAN_CONNECTED) {
      throw new VchanError(
        "VCHAN_DISCONNECTED",
        `vchan ${this.role} for domain ${this.domain} port ${this.port} is not connected`,
      );
    }
  }

  #onEvent(): void {
    if (this.#closed) return;
    this.#ctrl.wait();
    const state = this.#ctrl.isOpen() as VchanState;
    if (state !== this.#state) {
      const before = this.#state;
      this.#state = state;
      if (before === VCHAN_WAITING && state === VCHAN_CONNECTED) this.schedule("connect");
      if (state === VCHAN_DISCONNECTED) this.schedule("disconnect");
    }
    if (this.#ctrl.dataReady() > 0) this.schedule("data");
    if (this.#wantDrain && this.#state === VCHAN_CONNECTED && this.#ctrl.bufferSpace() > 0) {
      this.#wantDrain = false;
      this.schedule("drain");
    }
  }
}

/** libvchan_server_init on Xen. Throws BACKEND_NOT_AVAILABLE off Xen. */
export function createXenServer(options: VchanServerOptions): XenVchanChannel {
  const XenVchan = requireXen();
  const domain = checkDomainId(options.domain);
  const port = checkPort(options.port);
  const ctrl = XenVchan.serverInit(
    domain,
    `data/vchan/${domain}/${port}`,
    options.readMin ?? 4096,
    options.writeMin ?? 4096,
  );
  return new XenVchanChannel("server", domain, port, ctrl);
}

/**
 * libvchan_client_init on Xen: retries until the server has published its
 * keys (every 10 ms), without blocking the loop. Throws BACKEND_NOT_AVAILABLE
 * off Xen.
 */
export async function connectXenClient(options: VchanClientOptions): Promise<XenVchanChannel> {
  const XenVchan = requireXen();
  const domain = checkDomainId(options.domain);
  const port = checkPort(options.port);
  const own = checkDomainId(options.ownDomain ?? ownDomainFromEnvironment(), "ownDomain");
  const xsPath = `/local/domain/${domain}/data/vchan/${own}/${port}`;
  for (;;) {
    options.signal?.throwIfAborted();
    try {
      return new XenVchanChannel("client", domain, port, XenVchan.clientInit(domain, xsPath));
    } catch (error) {
      if (!native.isSyscallError(error)) throw error;
    }
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
