/**
 * The xen grant backend: real grant tables through the kernel's gntalloc
 * (share) and gntdev (map) devices, via the addon's ioctls. It runs only on
 * Xen; elsewhere creating it fails with BACKEND_NOT_AVAILABLE and a message
 * saying why (built without the headers, or no /dev/xen).
 */
import { existsSync } from "node:fs";

import * as native from "../native/index.ts";
import { checkDomainId, ownDomainFromEnvironment } from "./environment.ts";
import { ShmError } from "./errors.ts";
import {
  MAX_REFS_PER_MAP,
  type DomainId,
  type GrantCounters,
  type GrantMapping,
  type GrantRef,
  type GrantTable,
  type MapOptions,
  type ShareOptions,
  type SharedPages,
} from "./types.ts";

/** The device that shares pages (VM side). */
export const GNTALLOC_DEVICE = "/dev/xen/gntalloc";
/** The device that maps a peer's pages (GUI-domain side). */
export const GNTDEV_DEVICE = "/dev/xen/gntdev";

/** Whether this machine can run the xen grant backend, and if not, why. */
export function xenGrantAvailability(): { available: true } | { available: false; reason: string } {
  if (!native.xen.compiled) {
    return {
      available: false,
      reason: "xen grant backend not available: the addon was built without <xen/gntalloc.h> and <xen/gntdev.h>",
    };
  }
  for (const device of [GNTALLOC_DEVICE, GNTDEV_DEVICE]) {
    if (!existsSync(device)) {
      return {
        available: false,
        reason: `xen grant backend not available: ${device} does not exist (not running on Xen)`,
      };
    }
  }
  return { available: true };
}

interface XenShare {
  readonly index: number;
  live: boolean;
}

interface XenMap {
  readonly index: number;
  live: boolean;
}

/** A domain's grant table on Xen: gntalloc to share, gntdev to map. */
export class XenGrantTable implements GrantTable {
  readonly backend = "xen" as const;
  readonly domain: DomainId;
  readonly counters: GrantCounters = { pagesShared: 0, shares: 0, maps: 0, mmapCalls: 0, bytesCopied: 0 };
  /** gntalloc fd, opened on first share; owned here. */
  #gntalloc = -1;
  /** gntdev fd, opened on first map; owned here. */
  #gntdev = -1;
  readonly #shares = new Map<SharedPages, XenShare>();
  readonly #mappings = new Map<GrantMapping, XenMap>();

  /** Throws BACKEND_NOT_AVAILABLE off Xen. */
  constructor(options: { domain?: DomainId } = {}) {
    const availability = xenGrantAvailability();
    if (!availability.available) throw new ShmError("BACKEND_NOT_AVAILABLE", availability.reason);
    this.domain = checkDomainId(options.domain ?? ownDomainFromEnvironment());
  }

  share(peer: DomainId, pages: number, options: ShareOptions = {}): SharedPages {
    checkDomainId(peer, "peer");
    if (!Number.isInteger(pages) || pages < 1 || pages > MAX_REFS_PER_MAP) {
      throw new RangeError(`pages must be 1..${MAX_REFS_PER_MAP}, got ${String(pages)}`);
    }
    const share = native.xen.gntallocShare;
    const revoke = native.xen.gntallocRevoke;
    if (share === undefined || revoke === undefined)
      throw new ShmError("BACKEND_NOT_AVAILABLE", "gntalloc ioctls missing");
    if (this.#gntalloc < 0) this.#gntalloc = native.xen.openDevice(GNTALLOC_DEVICE);
    const writable = options.writable ?? false;
    let granted: { index: number; refs: number[] };
    try {
      granted = share(this.#gntalloc, peer, pages, writable);
    } catch (error) {
      if (native.isSyscallError(error, "ENOSPC") || native.isSyscallError(error, "ENOMEM")) {
        throw new ShmError("GRANT_LIMIT", `Xen refused to grant ${pages} more pages`, { cause: error });
      }
      throw error;
    }
    let buffer: ArrayBuffer;
    try {
      buffer = native.mmap(this.#gntalloc, granted.index, pages * native.PAGE_SIZE, { writable: true });
    } catch (error) {
      revoke(this.#gntalloc, granted.index, pages);
      throw error;
    }
    const shared: SharedPages = {
      peer,
      refs: granted.refs,
      pages,
      writable,
      buffer,
      contiguous: { fd: this.#gntalloc, offset: granted.index, length: pages * native.PAGE_SIZE },
    };
    this.#shares.set(shared, { index: granted.index, live: true });
    this.counters.pagesShared += pages;
    this.counters.shares += 1;
    return shared;
  }

  revoke(shared: SharedPages): void {
    const record = this.#shares.get(shared);
    if (record === undefined || !record.live)
      throw new ShmError("GRANT_STALE", "these pages are not shared by this table");
    record.live = false;
    this.#shares.delete(shared);
    if (native.isMapped(shared.buffer)) native.munmap(shared.buffer);
    native.xen.gntallocRevoke?.(this.#gntalloc, record.index, shared.pages);
    this.counters.pagesShared -= shared.pages;
  }

  offer(peer: DomainId): void {
    checkDomainId(peer, "peer");
  }

  attach(domain: DomainId): Promise<void> {
    checkDomainId(domain);
    return Promise.resolve();
  }

  detach(domain: DomainId): void {
    for (const mapping of [...this.#mappings.keys()]) if (mapping.domain === domain) this.unmap(mapping);
  }

  map(domain: DomainId, untrustedRefs: readonly GrantRef[], options: MapOptions = {}): GrantMapping {
    checkDomainId(domain);
    const count = untrustedRefs.length;
    if (count < 1 || count > MAX_REFS_PER_MAP) {
      throw new ShmError("GRANT_OUT_OF_RANGE", `a mapping takes 1..${MAX_REFS_PER_MAP} refs, got ${count}`);
    }
    for (const ref of untrustedRefs) {
      if (!Number.isInteger(ref) || ref < 0 || ref > 0xffffffff) {
        throw new ShmError("GRANT_OUT_OF_RANGE", `ref ${String(ref)} is not a grant reference`);
      }
    }
    const gntdevMap = native.xen.gntdevMap;
    const gntdevUnmap = native.xen.gntdevUnmap;
    if (gntdevMap === undefined || gntdevUnmap === undefined)
      throw new ShmError("BACKEND_NOT_AVAILABLE", "gntdev ioctls missing");
    if (this.#gntdev < 0) this.#gntdev = native.xen.openDevice(GNTDEV_DEVICE);
    const refs = untrustedRefs.slice();
    const index = gntdevMap(this.#gntdev, domain, refs);
    const writable = options.writable ?? false;
    let buffer: ArrayBuffer;
    try {
      // The hypervisor checks each ref here: a ref not granted to us fails the mmap.
      buffer = native.mmap(this.#gntdev, index, count * native.PAGE_SIZE, {
        writable,
        populate: options.populate ?? true,
      });
    } catch (error) {
      gntdevUnmap(this.#gntdev, index, count);
      throw new ShmError("GRANT_NOT_GRANTED", `domain ${domain} did not grant these ${count} refs to us`, {
        cause: error,
      });
    }
    const mapping: GrantMapping = {
      domain,
      refs,
      writable,
      buffer,
      contiguous: { fd: this.#gntdev, offset: index, length: count * native.PAGE_SIZE },
    };
    this.#mappings.set(mapping, { index, live: true });
    this.counters.maps += 1;
    this.counters.mmapCalls += 1;
    return mapping;
  }

  unmap(mapping: GrantMapping): void {
    const record = this.#mappings.get(mapping);
    if (record === undefined || !record.live)
      throw new ShmError("GRANT_STALE", "this mapping is not live in this table");
    record.live = false;
    this.#mappings.delete(mapping);
    native.munmap(mapping.buffer);
    native.xen.gntdevUnmap?.(this.#gntdev, record.index, mapping.refs.length);
  }

  destroy(): void {
    for (const mapping of [...this.#mappings.keys()]) this.unmap(mapping);
    for (const shared of [...this.#shares.keys()]) this.revoke(shared);
    if (this.#gntalloc >= 0) native.close(this.#gntalloc);
    if (this.#gntdev >= 0) native.close(this.#gntdev);
    this.#gntalloc = -1;
    this.#gntdev = -1;
  }
}
