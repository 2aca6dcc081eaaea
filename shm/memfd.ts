/**
 * The memfd grant backend: Xen grant tables emulated on plain Linux.
 *
 * For each peer it shares with, a domain owns one *pool* (a memfd that grows
 * in runs of pages, sealed against shrinking) and one *table* (a memfd with
 * one u32 entry per page, recording state and grantee). A grant reference is
 * the index of its page in the pool. The peer gets both fds once, out of
 * band, on the pair's own AF_UNIX socket `qubes-grant.<granter>.<grantee>.sock`
 * (SCM_RIGHTS), never in a vchan byte stream, so that stream stays identical
 * to real Qubes. One pool per pair keeps domains apart: a peer holding a
 * pool's fd can only ever reach pages that were granted to it.
 *
 * Trust: the mapper reads the granter's table and pool size as hostile
 * values. It checks every ref against the table, the table's own size and
 * the pool's size, and requires the pool and table to be sealed against
 * shrinking (so a granter cannot truncate pages under a live mapping and
 * make the mapper fault).
 *
 * Costs: a contiguous run of refs (what share() always hands out) maps with
 * one mmap; a scattered list maps with one mmap per run into one reserved
 * range, still zero copies. Pages granted again are zeroed by the granter
 * (unless the caller overwrites them all itself: ShareOptions.zero).
 */
import path from "node:path";

import * as native from "../native/index.ts";
import { checkDomainId, ownDomainFromEnvironment, socketDirectoryFromEnvironment } from "./environment.ts";
import { ShmError } from "./errors.ts";
import {
  acceptAllowedPeer,
  allowedPeerUids,
  connectWhenListening,
  listenReplacing,
  unlinkIfOwn,
  whenReadable,
  type BoundListener,
} from "./rendezvous.ts";
import {
  MAX_REFS_PER_MAP,
  type ContiguousRange,
  type DomainId,
  type GrantCounters,
  type GrantMapping,
  type GrantRef,
  type GrantTable,
  type MapOptions,
  type ShareOptions,
  type SharedPages,
} from "./types.ts";

const PAGE = native.PAGE_SIZE;

/** Magic of a table header ("QGNT") and of the hello message on the pair socket ("QGRP"). */
const TABLE_MAGIC = 0x51474e54;
const HELLO_MAGIC = 0x51475250;
const FORMAT_VERSION = 1;

/** Table layout: a 64-byte header (u32 magic, version, granter, grantee, capacity), then one u32 per ref. */
const TABLE_HEADER_BYTES = 64;
const TABLE_HEADER_WORDS = TABLE_HEADER_BYTES / 4;

/**
 * The most table entries a mapper will consider: a granter's table has one
 * entry per page it may grant, and no domain may grant more than 2^24 pages
 * (the limit of {@link MemfdGrantTableOptions.maxGrantedPages}).
 */
const MAX_TABLE_ENTRIES = 2 ** 24;

/** The largest table the format can need: the header and MAX_TABLE_ENTRIES entries, rounded up to a page (64 MiB + 1 page). */
const MAX_TABLE_BYTES = Math.ceil((TABLE_HEADER_BYTES + MAX_TABLE_ENTRIES * 4) / PAGE) * PAGE;

/** Entry bits: state in bits 0..1, writable in bit 2, grantee domain in bits 16..31. */
const ENTRY_NEVER = 0;
const ENTRY_GRANTED = 1;
const ENTRY_REVOKED = 2;
const ENTRY_STATE_MASK = 0x3;
const ENTRY_WRITABLE = 0x4;

/**
 * The seals of an fd a granter sent; 0 for an fd that takes none (F_GET_SEALS
 * fails with EINVAL on anything but a memfd or tmpfs file: a socket, a pipe,
 * a directory, an eventfd), which is then refused as unsealed.
 */
function sealsOf(untrustedFd: number): number {
  try {
    return native.getSeals(untrustedFd);
  } catch (error) {
    if (native.isSyscallError(error, "EINVAL")) return 0;
    throw error;
  }
}

/** The pool grows in runs of this many pages (1 MiB). */
export const POOL_GROWTH_PAGES = 256;

/** Default per-domain limit on pages granted at once (all peers): 1 GiB. */
export const DEFAULT_MAX_GRANTED_PAGES = 262_144;

/**
 * The socket a granter offers its pool for one peer on:
 * `qubes-grant.<granter>.<grantee>[.<poolName>].sock`. A pool name keeps two
 * tables of one domain apart (the vchan shm backend's own table uses
 * `vchan-<port>`); granter and mapper must use the same name.
 */
export function grantSocketPath(socketDir: string, granter: DomainId, grantee: DomainId, poolName = ""): string {
  if (!/^[A-Za-z0-9_-]*$/.test(poolName)) throw new RangeError(`pool name must be [A-Za-z0-9_-]*, got ${poolName}`);
  const suffix = poolName === "" ? "" : `.${poolName}`;
  return path.join(socketDir, `qubes-grant.${granter}.${grantee}${suffix}.sock`);
}

/** Options of {@link MemfdGrantTable}. */
export interface MemfdGrantTableOptions {
  /** This domain's id. Default: VCHAN_DOMAIN, else 0. */
  domain?: DomainId;
  /** Rendezvous directory. Default: VCHAN_SOCKET_DIR, else /var/run/vchan. */
  socketDir?: string;
  /** Most pages this domain may have granted at once, all peers together. Default 262 144 (1 GiB). */
  maxGrantedPages?: number;
  /**
   * Names this table's pools when one domain keeps several tables (see
   * {@link grantSocketPath}); default "" (the domain's main table). Two tables
   * of one domain with the same name would replace each other's offers.
   */
  poolName?: string;
  /**
   * How long attach() waits, once connected to a granter's pair socket, for
   * its pool offer before rejecting with GRANT_TIMEOUT, in ms. Default 10 000:
   * a granter that accepts and then says nothing must not hold attach() forever.
   */
  offerTimeoutMs?: number;
}

/** Default of {@link MemfdGrantTableOptions.offerTimeoutMs}. */
export const DEFAULT_OFFER_TIMEOUT_MS = 10_000;

/** Granter-side state for one peer: the pool, the table, the listener. */
interface OwnPool {
  readonly peer: DomainId;
  /** memfd of the pages; owned here. */
  readonly poolFd: number;
  /** memfd of the table; owned here. */
  readonly tableFd: number;
  /** Writable view of the table (the published copy; our own truth is `used`). */
  readonly table: Uint32Array;
  readonly tableBuffer: ArrayBuffer;
  /** Pages the pool holds now. */
  poolPages: number;
  /** Per page: 1 while granted (private truth, never read back from shared memory). */
  readonly used: Uint8Array;
  /** Per page: 1 once ever granted, so it is zeroed when granted again. */
  readonly dirty: Uint8Array;
  /** The pair socket's listener and its poll handle. */
  readonly listener: BoundListener;
  readonly listenPoll: native.Poll;
}

/** Mapper-side state for one granting domain. */
interface PeerPool {
  /** The granter's pool memfd; owned here. */
  readonly poolFd: number;
  /** The granter's table memfd; owned here. */
  readonly tableFd: number;
  /** Read-only view of the granter's table: hostile content. */
  readonly untrustedTable: Uint32Array;
  readonly tableBuffer: ArrayBuffer;
  /** Number of entries the table's size holds (computed here, not read from the header). */
  readonly capacity: number;
}

/** One fetch of a granter's pool, shared by every attach() call for that domain while it runs. */
interface Attaching {
  readonly promise: Promise<void>;
  /** Aborts the fetch once every caller waiting on it has given up. */
  readonly controller: AbortController;
  /** Callers still waiting on `promise`. */
  waiters: number;
}

interface ShareRecord {
  readonly pool: OwnPool;
  readonly firstPage: number;
  live: boolean;
}

interface MapRecord {
  readonly scattered: boolean;
  live: boolean;
}

/**
 * A domain's grant table on memfd pools: the default backend off Xen. See the
 * file comment for the layout and the trust rules.
 */
export class MemfdGrantTable implements GrantTable {
  readonly backend = "memfd" as const;
  readonly domain: DomainId;
  /** Rendezvous directory of the pair sockets. */
  readonly socketDir: string;
  /** Most pages granted at once, all peers. */
  readonly maxGrantedPages: number;
  /** The pools' name ("" for the domain's main table). */
  readonly poolName: string;
  readonly counters: GrantCounters = { pagesShared: 0, shares: 0, maps: 0, mmapCalls: 0, bytesCopied: 0 };

  readonly #ownPools = new Map<DomainId, OwnPool>();
  readonly #peerPools = new Map<DomainId, PeerPool>();
  readonly #shares = new Map<SharedPages, ShareRecord>();
  readonly #mappings = new Map<GrantMapping, MapRecord>();
  readonly #attaching = new Map<DomainId, Attaching>();
  readonly #offerTimeoutMs: number;
  #destroyed = false;

  constructor(options: MemfdGrantTableOptions = {}) {
    this.domain = checkDomainId(options.domain ?? ownDomainFromEnvironment());
    this.socketDir = options.socketDir ?? socketDirectoryFromEnvironment();
    const limit = options.maxGrantedPages ?? DEFAULT_MAX_GRANTED_PAGES;
    if (!Number.isInteger(limit) || limit < 1 || limit > 2 ** 24) {
      throw new RangeError(`maxGrantedPages must be 1..2^24, got ${String(limit)}`);
    }
    this.maxGrantedPages = limit;
    this.poolName = options.poolName ?? "";
    const timeout = options.offerTimeoutMs ?? DEFAULT_OFFER_TIMEOUT_MS;
    if (!Number.isInteger(timeout) || timeout < 1 || timeout > 0x7fffffff) {
      throw new RangeError(`offerTimeoutMs must be 1..2^31-1, got ${String(timeout)}`);
    }
    this.#offerTimeoutMs = timeout;
    grantSocketPath(this.socketDir, this.domain, this.domain, this.poolName);
  }

  offer(peer: DomainId): void {
    this.#pool(checkDomainId(peer, "peer"));
  }

  share(peer: DomainId, pages: number, options: ShareOptions = {}): SharedPages {
    this.#checkAlive();
    checkDomainId(peer, "peer");
    if (!Number.isInteger(pages) || pages < 1 || pages > MAX_REFS_PER_MAP) {
      throw new RangeError(`pages must be 1..${MAX_REFS_PER_MAP}, got ${String(pages)}`);
    }
    if (this.counters.pagesShared + pages > this.maxGrantedPages) {
      throw new ShmError(
        "GRANT_LIMIT",
        `domain ${this.domain} may grant at most ${this.maxGrantedPages} pages; ${this.counters.pagesShared} are granted, ${pages} more asked`,
      );
    }
    const pool = this.#pool(peer);
    const first = this.#allocate(pool, pages);
    const writable = options.writable ?? false;
    const buffer = native.mmap(pool.poolFd, first * PAGE, pages * PAGE, {
      writable: true,
      populate: options.populate ?? false,
    });
    // Pages granted before hold an earlier grant to this peer's bytes: zero them now (a run of
    // them at a time), unless the caller overwrites them.
    if (options.zero ?? true) {
      const view = new Uint8Array(buffer);
      let run = -1;
      for (let page = first; page <= first + pages; page++) {
        const dirty = page < first + pages && pool.dirty[page] === 1;
        if (dirty && run < 0) run = page;
        if (!dirty && run >= 0) {
          view.fill(0, (run - first) * PAGE, (page - first) * PAGE);
          run = -1;
        }
      }
    }
    pool.used.fill(1, first, first + pages);
    pool.dirty.fill(1, first, first + pages);
    const entry = ENTRY_GRANTED | (writable ? ENTRY_WRITABLE : 0) | (peer << 16);
    // One aligned 32-bit store per entry (never torn for the mapper's Atomics.load); the refs reach
    // the peer only later, through a syscall. A fill, not a loop of Atomics.store: 98,304 entries
    // (a 16384×6144 framebuffer) took 10-15 ms that way.
    pool.table.fill(entry, TABLE_HEADER_WORDS + first, TABLE_HEADER_WORDS + first + pages);
    const refs: GrantRef[] = new Array<GrantRef>(pages);
    for (let i = 0; i < pages; i++) refs[i] = first + i;
    const contiguous: ContiguousRange = { fd: pool.poolFd, offset: first * PAGE, length: pages * PAGE };
    const shared: SharedPages = { peer, refs, pages, writable, buffer, contiguous };
    this.#shares.set(shared, { pool, firstPage: first, live: true });
    this.counters.pagesShared += pages;
    this.counters.shares += 1;
    return shared;
  }

  revoke(shared: SharedPages): void {
    const record = this.#shares.get(shared);
    if (record === undefined || !record.live) {
      throw new ShmError("GRANT_STALE", "these pages are not shared by this table (revoked already?)");
    }
    record.live = false;
    this.#shares.delete(shared);
    const { pool, firstPage } = record;
    const end = firstPage + shared.pages;
    pool.table.fill(ENTRY_REVOKED | (shared.peer << 16), TABLE_HEADER_WORDS + firstPage, TABLE_HEADER_WORDS + end);
    pool.used.fill(0, firstPage, end);
    if (native.isMapped(shared.buffer)) native.munmap(shared.buffer);
    this.counters.pagesShared -= shared.pages;
  }

  /**
   * Fetches `domain`'s pool (see {@link GrantTable.attach}). Callers for one
   * domain share one fetch, but each one's `signal` ends only its own wait;
   * the fetch itself ends when its last waiter gives up, or with GRANT_TIMEOUT
   * when the granter accepts and sends no offer in `offerTimeoutMs`.
   */
  attach(domain: DomainId, options: { signal?: AbortSignal } = {}): Promise<void> {
    this.#checkAlive();
    checkDomainId(domain);
    if (this.#peerPools.has(domain)) return Promise.resolve();
    const signal = options.signal;
    if (signal?.aborted === true) return Promise.reject(signal.reason ?? new Error("aborted"));
    let attaching = this.#attaching.get(domain);
    if (attaching === undefined) {
      const controller = new AbortController();
      const promise = this.#fetchPool(domain, controller.signal).finally(() => {
        if (this.#attaching.get(domain) === entry) this.#attaching.delete(domain);
      });
      const entry: Attaching = { promise, controller, waiters: 0 };
      attaching = entry;
      this.#attaching.set(domain, entry);
    }
    const shared = attaching;
    shared.waiters += 1;
    if (signal === undefined) {
      return shared.promise.finally(() => {
        shared.waiters -= 1;
      });
    }
    return new Promise<void>((resolve, reject) => {
      const onAbort = (): void => {
        shared.waiters -= 1;
        if (shared.waiters === 0) {
          // Nobody waits any more: stop connecting or waiting for the offer.
          if (this.#attaching.get(domain) === shared) this.#attaching.delete(domain);
          shared.controller.abort(signal.reason);
        }
        reject(signal.reason ?? new Error("aborted"));
      };
      signal.addEventListener("abort", onAbort, { once: true });
      shared.promise.then(
        () => {
          if (signal.aborted) return;
          signal.removeEventListener("abort", onAbort);
          shared.waiters -= 1;
          resolve();
        },
        (error: unknown) => {
          if (signal.aborted) return;
          signal.removeEventListener("abort", onAbort);
          shared.waiters -= 1;
          reject(error);
        },
      );
    });
  }

  /** Whether `domain`'s pool is attached (map() can run). */
  isAttached(domain: DomainId): boolean {
    return this.#peerPools.has(domain);
  }

  detach(domain: DomainId): void {
    const attaching = this.#attaching.get(domain);
    if (attaching !== undefined) {
      this.#attaching.delete(domain);
      attaching.controller.abort(new ShmError("GRANT_STALE", `domain ${domain} was detached`));
    }
    for (const mapping of [...this.#mappings.keys()]) if (mapping.domain === domain) this.unmap(mapping);
    const pool = this.#peerPools.get(domain);
    if (pool === undefined) return;
    this.#peerPools.delete(domain);
    native.munmap(pool.tableBuffer);
    native.close(pool.poolFd);
    native.close(pool.tableFd);
  }

  map(domain: DomainId, untrustedRefs: readonly GrantRef[], options: MapOptions = {}): GrantMapping {
    this.#checkAlive();
    const pool = this.#peerPools.get(domain);
    if (pool === undefined) {
      throw new ShmError(
        "GRANT_NO_PEER",
        `no grant pool of domain ${domain} is attached (call attach(${domain}) first)`,
      );
    }
    const count = untrustedRefs.length;
    if (count < 1 || count > MAX_REFS_PER_MAP) {
      throw new ShmError("GRANT_OUT_OF_RANGE", `a mapping takes 1..${MAX_REFS_PER_MAP} refs, got ${count}`);
    }
    const writable = options.writable ?? false;
    // The pool is sealed against shrinking: once checked, this size holds for the mapping's life.
    const poolPages = Math.floor(native.fileSize(pool.poolFd) / PAGE);
    let contiguousRun = true;
    for (let i = 0; i < count; i++) {
      const ref = untrustedRefs[i] as GrantRef;
      this.#checkRef(domain, pool, poolPages, ref, writable);
      if (i > 0 && ref !== (untrustedRefs[0] as GrantRef) + i) contiguousRun = false;
    }
    const refs = untrustedRefs.slice();
    const populate = options.populate ?? true;
    let buffer: ArrayBuffer;
    let contiguous: ContiguousRange | null;
    try {
      if (contiguousRun) {
        const first = refs[0] as GrantRef;
        buffer = native.mmap(pool.poolFd, first * PAGE, count * PAGE, { writable, populate });
        contiguous = { fd: pool.poolFd, offset: first * PAGE, length: count * PAGE };
        this.counters.mmapCalls += 1;
      } else {
        const runs: native.PageRun[] = [];
        for (const ref of refs) {
          const last = runs[runs.length - 1];
          if (last !== undefined && last.offset + last.length === ref * PAGE) last.length += PAGE;
          else runs.push({ offset: ref * PAGE, length: PAGE });
        }
        buffer = native.mmapRuns(pool.poolFd, runs, { writable, populate });
        contiguous = null;
        this.counters.mmapCalls += runs.length;
      }
    } catch (error) {
      // The granter holds the pool's fd: it can seal it against writing (F_SEAL_WRITE,
      // F_SEAL_FUTURE_WRITE) at any time, and a writable mmap then fails with EPERM.
      if (native.isSyscallError(error, "EPERM") || native.isSyscallError(error, "EACCES")) {
        throw new ShmError(
          "GRANT_BAD_POOL",
          `domain ${domain}'s pool cannot be mapped ${writable ? "writable" : "readable"} (${error.code}): sealed against writing?`,
          { cause: error },
        );
      }
      throw error;
    }
    const mapping: GrantMapping = { domain, refs, writable, buffer, contiguous };
    this.#mappings.set(mapping, { scattered: !contiguousRun, live: true });
    this.counters.maps += 1;
    return mapping;
  }

  unmap(mapping: GrantMapping): void {
    const record = this.#mappings.get(mapping);
    if (record === undefined || !record.live) {
      throw new ShmError("GRANT_STALE", "this mapping is not live in this table (unmapped already?)");
    }
    record.live = false;
    this.#mappings.delete(mapping);
    if (record.scattered) native.munmapRuns(mapping.buffer);
    else native.munmap(mapping.buffer);
  }

  destroy(): void {
    if (this.#destroyed) return;
    for (const attaching of this.#attaching.values()) {
      attaching.controller.abort(new ShmError("GRANT_STALE", "this grant table was destroyed"));
    }
    this.#attaching.clear();
    for (const mapping of [...this.#mappings.keys()]) this.unmap(mapping);
    for (const shared of [...this.#shares.keys()]) this.revoke(shared);
    for (const pool of this.#ownPools.values()) {
      pool.listenPoll.close();
      native.close(pool.listener.fd);
      unlinkIfOwn(pool.listener);
      native.munmap(pool.tableBuffer);
      native.close(pool.poolFd);
      native.close(pool.tableFd);
    }
    this.#ownPools.clear();
    for (const pool of this.#peerPools.values()) {
      native.munmap(pool.tableBuffer);
      native.close(pool.poolFd);
      native.close(pool.tableFd);
    }
    this.#peerPools.clear();
    this.#destroyed = true;
  }

  #checkAlive(): void {
    if (this.#destroyed) throw new ShmError("GRANT_STALE", "this grant table was destroyed");
  }

  /** Validates one hostile ref against the granter's table and pool; throws the gntdev-like error. */
  #checkRef(domain: DomainId, pool: PeerPool, poolPages: number, ref: GrantRef, writable: boolean): void {
    if (!Number.isInteger(ref) || ref < 0 || ref >= pool.capacity) {
      throw new ShmError(
        "GRANT_OUT_OF_RANGE",
        `ref ${String(ref)} is outside domain ${domain}'s grant table (0..${pool.capacity - 1})`,
      );
    }
    const untrustedEntry = Atomics.load(pool.untrustedTable, TABLE_HEADER_WORDS + ref);
    const state = untrustedEntry & ENTRY_STATE_MASK;
    if (state === ENTRY_NEVER) {
      throw new ShmError("GRANT_NOT_GRANTED", `ref ${ref} was never granted by domain ${domain}`);
    }
    if (state === ENTRY_REVOKED) throw new ShmError("GRANT_REVOKED", `ref ${ref} of domain ${domain} was revoked`);
    if (state !== ENTRY_GRANTED) {
      throw new ShmError("GRANT_BAD_POOL", `ref ${ref} of domain ${domain} has a malformed table entry`);
    }
    const grantee = untrustedEntry >>> 16;
    if (grantee !== this.domain) {
      throw new ShmError("GRANT_WRONG_DOMAIN", `ref ${ref} of domain ${domain} is granted to domain ${grantee}`);
    }
    if (writable && (untrustedEntry & ENTRY_WRITABLE) === 0) {
      throw new ShmError("GRANT_READ_ONLY", `ref ${ref} of domain ${domain} is granted read-only`);
    }
    // Now 0 ≤ ref < capacity and granted to us; the page must exist in the pool.
    if (ref >= poolPages) {
      throw new ShmError("GRANT_OUT_OF_RANGE", `ref ${ref} of domain ${domain} lies past the end of its pool`);
    }
  }

  /** The pool for `peer`, created and offered on first use. */
  #pool(peer: DomainId): OwnPool {
    const existing = this.#ownPools.get(peer);
    if (existing !== undefined) return existing;
    this.#checkAlive();
    const capacity = this.maxGrantedPages;
    const poolFd = native.memfdCreate(`qubes-grant-pool.${this.domain}.${peer}`, 0);
    let tableFd = -1;
    try {
      native.addSeals(poolFd, native.SEAL_SHRINK);
      const tableBytes = Math.ceil((TABLE_HEADER_BYTES + capacity * 4) / PAGE) * PAGE;
      tableFd = native.memfdCreate(`qubes-grant-table.${this.domain}.${peer}`, tableBytes);
      native.addSeals(tableFd, native.SEAL_SHRINK | native.SEAL_GROW | native.SEAL_SEAL);
      const tableBuffer = native.mmap(tableFd, 0, tableBytes, { writable: true });
      const table = new Uint32Array(tableBuffer);
      table.set([TABLE_MAGIC, FORMAT_VERSION, this.domain, peer, capacity], 0);
      const listener = listenReplacing(grantSocketPath(this.socketDir, this.domain, peer, this.poolName), 16);
      const listenFd = listener.fd;
      const hello = new Uint8Array(new Uint32Array([HELLO_MAGIC, FORMAT_VERSION, this.domain, peer]).buffer);
      const allowed = allowedPeerUids();
      const listenPoll = new native.Poll(listenFd, () => {
        for (;;) {
          // Only the users allowed get the pool and table fds; anyone else is hung up on.
          const connection = acceptAllowedPeer(listenFd, allowed, listenPoll);
          if (connection === null) return;
          try {
            native.sendmsg(connection, hello, [poolFd, tableFd]);
          } catch {
            // The peer went away before taking the pool: it can attach again.
          } finally {
            native.close(connection);
          }
        }
      });
      listenPoll.start(native.POLL_READABLE);
      const pool: OwnPool = {
        peer,
        poolFd,
        tableFd,
        table,
        tableBuffer,
        poolPages: 0,
        used: new Uint8Array(capacity),
        dirty: new Uint8Array(capacity),
        listener,
        listenPoll,
      };
      this.#ownPools.set(peer, pool);
      return pool;
    } catch (error) {
      native.close(poolFd);
      if (tableFd >= 0) native.close(tableFd);
      throw error;
    }
  }

  /** First fit of `pages` free consecutive pages; grows the pool in runs when none fits. */
  #allocate(pool: OwnPool, pages: number): number {
    let runStart = 0;
    let runLength = 0;
    for (let page = 0; page < pool.poolPages; page++) {
      if (pool.used[page] === 1) {
        runLength = 0;
        runStart = page + 1;
        continue;
      }
      runLength += 1;
      if (runLength === pages) return runStart;
    }
    // The free run at the end (possibly empty) is extended by growing the pool.
    const needed = runStart + pages;
    const capacity = pool.used.length;
    if (needed > capacity) {
      throw new ShmError(
        "GRANT_LIMIT",
        `domain ${this.domain}'s pool for domain ${pool.peer} cannot hold ${pages} more contiguous pages (limit ${capacity})`,
      );
    }
    const grown = Math.min(capacity, Math.ceil(needed / POOL_GROWTH_PAGES) * POOL_GROWTH_PAGES);
    native.resize(pool.poolFd, grown * PAGE);
    pool.poolPages = grown;
    return runStart;
  }

  /** Connects to `domain`'s pair socket and takes its pool and table fds. */
  async #fetchPool(domain: DomainId, signal: AbortSignal): Promise<void> {
    const socketPath = grantSocketPath(this.socketDir, domain, this.domain, this.poolName);
    const fd = await connectWhenListening(socketPath, { signal });
    let fds: number[] = [];
    // Connected: the granter has had its chance to listen; now it must answer in time.
    const wait = new AbortController();
    const onAbort = (): void => wait.abort(signal.reason);
    if (signal.aborted) onAbort();
    else signal.addEventListener("abort", onAbort, { once: true });
    const timer = setTimeout(() => {
      wait.abort(
        new ShmError(
          "GRANT_TIMEOUT",
          `domain ${domain} sent no grant pool offer on ${socketPath} within ${this.#offerTimeoutMs} ms`,
        ),
      );
    }, this.#offerTimeoutMs);
    try {
      const hello = new Uint8Array(16);
      for (;;) {
        await whenReadable(fd, wait.signal);
        let received: native.Received | null;
        try {
          received = native.recvmsg(fd, hello, 2);
        } catch (error) {
          // More than two fds (the kernel dropped the rest; native closed those that came).
          if (native.isSyscallError(error, "EMSGSIZE")) {
            throw new ShmError("GRANT_BAD_POOL", `domain ${domain} sent a pool offer with more than 2 fds`, {
              cause: error,
            });
          }
          throw error;
        }
        if (received === null) continue;
        fds = received.fds;
        if (received.bytes !== 16 || fds.length !== 2) {
          throw new ShmError("GRANT_BAD_POOL", `domain ${domain} sent a malformed pool offer`);
        }
        break;
      }
      const words = new Uint32Array(hello.buffer);
      if (words[0] !== HELLO_MAGIC || words[1] !== FORMAT_VERSION || words[2] !== domain || words[3] !== this.domain) {
        throw new ShmError("GRANT_BAD_POOL", `domain ${domain} sent a pool offer with a bad header`);
      }
      if (this.#destroyed || this.#peerPools.has(domain)) return;
      const [poolFd, tableFd] = fds as [number, number];
      if ((sealsOf(poolFd) & native.SEAL_SHRINK) === 0 || (sealsOf(tableFd) & native.SEAL_SHRINK) === 0) {
        throw new ShmError(
          "GRANT_BAD_POOL",
          `domain ${domain}'s pool or table is not a memfd sealed against shrinking`,
        );
      }
      const untrustedTableBytes = native.fileSize(tableFd);
      if (
        untrustedTableBytes < TABLE_HEADER_BYTES + 4 ||
        untrustedTableBytes % PAGE !== 0 ||
        untrustedTableBytes > MAX_TABLE_BYTES
      ) {
        throw new ShmError(
          "GRANT_BAD_POOL",
          `domain ${domain}'s grant table has a bad size (${untrustedTableBytes} bytes; a table is ${TABLE_HEADER_BYTES + 4}..${MAX_TABLE_BYTES} bytes, page aligned)`,
        );
      }
      // Now the table is 1..MAX_TABLE_BYTES / PAGE pages: mapping it costs at most 64 MiB of address space.
      const tableBytes = untrustedTableBytes;
      const capacity = Math.min(tableBytes / 4 - TABLE_HEADER_WORDS, MAX_TABLE_ENTRIES);
      const untrustedPoolBytes = native.fileSize(poolFd);
      if (untrustedPoolBytes > capacity * PAGE) {
        throw new ShmError(
          "GRANT_BAD_POOL",
          `domain ${domain}'s pool (${untrustedPoolBytes} bytes) is larger than its table's ${capacity} pages`,
        );
      }
      const tableBuffer = native.mmap(tableFd, 0, tableBytes);
      const untrustedTable = new Uint32Array(tableBuffer);
      if (untrustedTable[0] !== TABLE_MAGIC || untrustedTable[1] !== FORMAT_VERSION) {
        native.munmap(tableBuffer);
        throw new ShmError("GRANT_BAD_POOL", `domain ${domain}'s grant table has a bad header`);
      }
      this.#peerPools.set(domain, { poolFd, tableFd, untrustedTable, tableBuffer, capacity });
      fds = [];
    } finally {
      clearTimeout(timer);
      signal.removeEventListener("abort", onAbort);
      native.close(fd);
      for (const extra of fds) native.close(extra);
    }
  }
}
