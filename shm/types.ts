/**
 * The grant-table API every shm/ backend implements, in Xen's terms: a domain
 * shares pages with one peer domain and gets a grant reference per page; the
 * peer maps a list of refs from that domain as one zero-copy view.
 */

/** A domain id, 0..0x7fef (DOMID_FIRST_RESERVED - 1). */
export type DomainId = number;

/** A grant reference: an index into the granting domain's grant table (u32). */
export type GrantRef = number;

/** The highest domain id a grant may name (Xen reserves 0x7ff0 and up). */
export const MAX_DOMAIN_ID = 0x7fef;

/** The most refs one map call takes: the GUI protocol's limit on a WINDOW_DUMP (98 304 pages = 384 MiB). */
export const MAX_REFS_PER_MAP = 98_304;

/**
 * Memory that is one contiguous range of one file: what a Wayland client
 * needs to create a wl_shm pool, and what mmap needs to map it again.
 */
export interface ContiguousRange {
  /** The file (memfd pool or gntdev/gntalloc device). Owned by the grant table: dup it to keep it longer. */
  readonly fd: number;
  /** Byte offset of the range in `fd`, page aligned. */
  readonly offset: number;
  /** Length of the range in bytes, a multiple of the page size. */
  readonly length: number;
}

/** Pages this domain shares with a peer (granter side). */
export interface SharedPages {
  /** The domain the pages are granted to. */
  readonly peer: DomainId;
  /** One grant reference per page, in page order: what goes on the wire. */
  readonly refs: readonly GrantRef[];
  /** Number of pages; the byte length is pages × PAGE_SIZE. */
  readonly pages: number;
  /** Whether the peer may map the pages writable. */
  readonly writable: boolean;
  /** This domain's own writable view of the pages. Detached (length 0) once revoked. */
  readonly buffer: ArrayBuffer;
  /** The same pages as one range of a file. */
  readonly contiguous: ContiguousRange;
}

/** A peer's pages mapped here (mapper side). */
export interface GrantMapping {
  /** The domain that granted the pages. */
  readonly domain: DomainId;
  /** The refs mapped, in the order they appear in `buffer`. */
  readonly refs: readonly GrantRef[];
  /** Whether the view is writable. */
  readonly writable: boolean;
  /** The pages as one zero-copy view, refs in order. Detached (length 0) once unmapped. */
  readonly buffer: ArrayBuffer;
  /**
   * The same memory as one range of a file when the refs are one contiguous
   * run (always on Xen, where gntdev gives one range for any list); null for
   * a scattered list on the memfd backend.
   */
  readonly contiguous: ContiguousRange | null;
}

/** Counters a test or benchmark can assert on ("the daemon copied 0 bytes"). */
export interface GrantCounters {
  /** Pages currently shared by this domain (all peers). */
  pagesShared: number;
  /** share() calls that succeeded. */
  shares: number;
  /** map() calls that succeeded. */
  maps: number;
  /** mmap system calls made by map() (1 per contiguous list; 1 per run for a scattered list). */
  mmapCalls: number;
  /** Bytes copied by map(): always 0 (every mapping is a view of the shared pages). */
  bytesCopied: number;
}

/** Options of {@link GrantTable.share}. */
export interface ShareOptions {
  /** Whether the peer may map the pages writable. Default false (the GUI's framebuffers are read-only for the daemon). */
  writable?: boolean;
  /** Fault this domain's view of the pages in now (MAP_POPULATE). Default false: pages are allocated on first touch. */
  populate?: boolean;
  /**
   * Zero pages that were granted before (default true). False skips that
   * (0.5 s for 400 MB) for a caller that overwrites every byte before it
   * names the refs to the peer: the pages may still hold what was granted
   * to this same peer before (each peer has a pool of its own), never
   * another peer's bytes. Backends whose pages come zeroed ignore it.
   */
  zero?: boolean;
}

/** Options of {@link GrantTable.map}. */
export interface MapOptions {
  /** Map writable (the ref must have been granted writable). Default false. */
  writable?: boolean;
  /** Fault every page in now (MAP_POPULATE), not on first touch. Default true. */
  populate?: boolean;
}

/**
 * One domain's grant table: the same API over Xen's gntalloc/gntdev and over
 * memfd pools, so agent and daemon code is the same in both worlds.
 */
export interface GrantTable {
  /** The backend's name. */
  readonly backend: "memfd" | "xen";
  /** This domain's id. */
  readonly domain: DomainId;
  /** Live counters. */
  readonly counters: Readonly<GrantCounters>;
  /**
   * Makes this domain's grants reachable by `peer` before the first share
   * (memfd: creates the pair's pool and starts offering it, so the peer's
   * attach() can finish at once; xen: nothing to do). share() does it too.
   */
  offer(peer: DomainId): void;
  /** Shares `pages` fresh zeroed pages with `peer`: one ref per page. Throws GRANT_LIMIT past the domain's limit. */
  share(peer: DomainId, pages: number, options?: ShareOptions): SharedPages;
  /** Ends the sharing: the refs become invalid for new maps and this domain's view is detached. */
  revoke(shared: SharedPages): void;
  /**
   * Makes `domain`'s grants mappable here. memfd: fetches that domain's pool
   * for this pair over its socket, retrying until the granter offers it; xen:
   * nothing to do.
   */
  attach(domain: DomainId, options?: { signal?: AbortSignal }): Promise<void>;
  /**
   * Forgets `domain`'s grants: unmaps every live mapping of that domain and
   * lets go of what attach() fetched, so the next attach() fetches afresh
   * (memfd: the domain's agent was replaced by a new process with a new
   * pool; xen: unmaps only). Idempotent.
   */
  detach(domain: DomainId): void;
  /** Maps refs granted by `domain` as one zero-copy view. Throws a {@link ShmError} for a bad ref. */
  map(domain: DomainId, refs: readonly GrantRef[], options?: MapOptions): GrantMapping;
  /** Unmaps a mapping now; its buffer is detached. */
  unmap(mapping: GrantMapping): void;
  /** Revokes every share, unmaps every mapping, closes every fd and socket. */
  destroy(): void;
}
