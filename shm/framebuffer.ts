/**
 * Framebuffers on granted pages, as MSG_WINDOW_DUMP carries them (protocol ≥
 * 1.2): 32-bit BGRX pixels, stride = width × 4, the image at byte 0 of the
 * first page, ceil(width × height × 4 / 4096) pages, one grant ref per page
 * in page order. Width ≤ 16384, height ≤ 6144 (qubes-guid's limits).
 *
 * The agent side ({@link Framebuffer}) follows the WINDOW_DUMP lifetime rule:
 * pages stay shared until the daemon acknowledges every dump that named them
 * (MSG_WINDOW_DUMP_ACK, protocol ≥ 1.7), so destroying a framebuffer with
 * dumps in flight defers the revoke. The daemon side
 * ({@link MappedFramebuffer}) maps the refs once per WINDOW_DUMP, zero copies.
 */
import { PAGE_SIZE } from "../native/index.ts";
import {
  FRAMEBUFFER_BYTES_PER_PIXEL,
  MAX_WINDOW_HEIGHT,
  MAX_WINDOW_WIDTH,
  XC_PAGE_SIZE,
  checkDumpGeometry,
  framebufferPages,
} from "../protocol/index.ts";
import { ShmError } from "./errors.ts";
import {
  type ContiguousRange,
  type DomainId,
  type GrantMapping,
  type GrantRef,
  type GrantTable,
  type MapOptions,
  type SharedPages,
} from "./types.ts";

/** Largest framebuffer width qubes-guid accepts, in pixels. */
export const MAX_FRAMEBUFFER_WIDTH = MAX_WINDOW_WIDTH;
/** Largest framebuffer height qubes-guid accepts, in pixels. */
export const MAX_FRAMEBUFFER_HEIGHT = MAX_WINDOW_HEIGHT;
/** Bytes per BGRX pixel. */
export const BYTES_PER_PIXEL = FRAMEBUFFER_BYTES_PER_PIXEL;
/** The page size of grant references (Xen's, whatever the host's). */
export const GRANT_PAGE_SIZE = XC_PAGE_SIZE;

export { framebufferPages };

/**
 * Checks a framebuffer's geometry (hostile values welcome) by the protocol's
 * one WINDOW_DUMP rule ({@link checkDumpGeometry}): null when it is an image
 * that `refCount` pages hold, otherwise why not. An empty image (a zero
 * width or height, which the validator accepts as "no image") has nothing
 * to map or draw, so it is refused here. Never throws.
 */
export function checkFramebufferGeometry(
  untrustedWidth: number,
  untrustedHeight: number,
  untrustedRefCount: number,
): string | null {
  const checked = checkDumpGeometry(untrustedWidth, untrustedHeight, untrustedRefCount);
  if (!checked.ok) return checked.error.message;
  if (checked.value.kind === "empty") {
    return `a ${untrustedWidth}x${untrustedHeight} dump means "no image": there is nothing to map`;
  }
  return null;
}

function requireGeometry(width: number, height: number, refCount: number): void {
  const problem = checkFramebufferGeometry(width, height, refCount);
  if (problem !== null) throw new ShmError("FRAMEBUFFER_GEOMETRY", problem);
}

function requireGrantPages(): void {
  if (PAGE_SIZE !== GRANT_PAGE_SIZE) {
    throw new ShmError("BACKEND_NOT_AVAILABLE", `framebuffers need 4096-byte pages; this host's are ${PAGE_SIZE}`);
  }
}

/**
 * A framebuffer this domain draws into and grants to the GUI domain (agent
 * side). Tracks the WINDOW_DUMPs in flight that name its refs.
 */
export class Framebuffer {
  /** Width in pixels. */
  readonly width: number;
  /** Height in pixels. */
  readonly height: number;
  /** Bytes per row: width × 4. */
  readonly stride: number;
  /** The grant refs, in page order: the body of a WINDOW_DUMP after its header. */
  readonly refs: readonly GrantRef[];
  /** The GUI domain the pages are granted to. */
  readonly peer: DomainId;
  /** The BGRX pixels (width × height × 4 bytes), a view of the shared pages; empty once revoked. */
  readonly pixels: Uint8Array;
  /** The pages as one file range (what a wl_shm pool or a second mapping needs). */
  readonly contiguous: ContiguousRange;
  readonly #table: GrantTable;
  readonly #shared: SharedPages;
  /** WINDOW_DUMPs sent and not yet acknowledged. */
  #dumpsInFlight = 0;
  #destroyRequested = false;
  #revoked = false;

  /**
   * Grants a width × height framebuffer to `peer` (read-only for the peer).
   * It is zeroed, unless `options.zero` is false: then the image's bytes
   * may hold what this peer was granted before, and the caller overwrites
   * every pixel before it sends a WINDOW_DUMP (the bytes past the image, up
   * to the end of its last page, are zeroed here either way).
   */
  constructor(table: GrantTable, peer: DomainId, width: number, height: number, options: { zero?: boolean } = {}) {
    requireGrantPages();
    requireGeometry(width, height, framebufferPages(width, height));
    this.width = width;
    this.height = height;
    this.stride = width * BYTES_PER_PIXEL;
    this.peer = peer;
    this.#table = table;
    const zero = options.zero ?? true;
    this.#shared = table.share(peer, framebufferPages(width, height), { zero });
    this.refs = this.#shared.refs;
    const imageBytes = width * height * BYTES_PER_PIXEL;
    this.pixels = new Uint8Array(this.#shared.buffer, 0, imageBytes);
    if (!zero) new Uint8Array(this.#shared.buffer, imageBytes).fill(0);
    this.contiguous = this.#shared.contiguous;
  }

  /** WINDOW_DUMPs naming these refs that the peer has not acknowledged yet. */
  get dumpsInFlight(): number {
    return this.#dumpsInFlight;
  }

  /** True once the pages are revoked (destroyed and every dump acknowledged). */
  get revoked(): boolean {
    return this.#revoked;
  }

  /** Records that a WINDOW_DUMP with these refs was sent: the pages stay shared until it is acknowledged. */
  dumped(): void {
    if (this.#revoked) throw new ShmError("GRANT_STALE", "this framebuffer was revoked");
    this.#dumpsInFlight += 1;
  }

  /** Records one acknowledgement (WINDOW_DUMP_ACK); revokes if destroy() is waiting for it. */
  acknowledged(): void {
    if (this.#dumpsInFlight === 0) return;
    this.#dumpsInFlight -= 1;
    if (this.#dumpsInFlight === 0 && this.#destroyRequested) this.#revoke();
  }

  /** Forgets every dump in flight (the peer reconnected) and revokes if destroy() is waiting. */
  releaseAllDumps(): void {
    this.#dumpsInFlight = 0;
    if (this.#destroyRequested) this.#revoke();
  }

  /** Ends this framebuffer: revokes now, or when the last dump in flight is acknowledged. */
  destroy(): void {
    this.#destroyRequested = true;
    if (this.#dumpsInFlight === 0) this.#revoke();
  }

  #revoke(): void {
    if (this.#revoked) return;
    this.#revoked = true;
    this.#table.revoke(this.#shared);
  }
}

/**
 * The agent's queue of WINDOW_DUMPs in flight, oldest first: each
 * WINDOW_DUMP_ACK releases the oldest one, a reconnect releases all (the rule
 * of the Qubes agent's driver commands 'a' and 'A').
 */
export class DumpQueue {
  readonly #queue: Framebuffer[] = [];

  /** Dumps sent and not yet acknowledged. */
  get length(): number {
    return this.#queue.length;
  }

  /** Records a WINDOW_DUMP of `framebuffer` just sent. */
  sent(framebuffer: Framebuffer): void {
    framebuffer.dumped();
    this.#queue.push(framebuffer);
  }

  /** A WINDOW_DUMP_ACK arrived: releases the oldest dump. False when none was in flight (a peer's extra ACK). */
  acknowledge(): boolean {
    const oldest = this.#queue.shift();
    if (oldest === undefined) return false;
    oldest.acknowledged();
    return true;
  }

  /** The peer reconnected (or is gone): releases every dump. */
  releaseAll(): void {
    for (const framebuffer of this.#queue.splice(0)) framebuffer.acknowledged();
  }
}

/**
 * A peer's framebuffer mapped read-only here (daemon side): one map per
 * WINDOW_DUMP, zero bytes copied; the pixels change as the peer draws.
 */
export class MappedFramebuffer {
  /** Width in pixels (validated). */
  readonly width: number;
  /** Height in pixels (validated). */
  readonly height: number;
  /** Bytes per row: width × 4. */
  readonly stride: number;
  /** The domain that granted the pages. */
  readonly domain: DomainId;
  /** The BGRX pixels, a live read-only view of the peer's pages; empty once unmapped. */
  readonly pixels: Uint8Array;
  /** The whole mapping: refs.length pages. */
  readonly mapping: GrantMapping;
  readonly #table: GrantTable;

  /**
   * Maps the refs of a WINDOW_DUMP from `domain` (`options` as for
   * {@link GrantTable.map}; the daemon maps without populating when only the
   * host compositor reads the pages). Throws a {@link ShmError}:
   * FRAMEBUFFER_GEOMETRY for a bad size or too few refs, GRANT_* for a bad ref.
   */
  constructor(
    table: GrantTable,
    domain: DomainId,
    untrustedWidth: number,
    untrustedHeight: number,
    untrustedRefs: readonly GrantRef[],
    options: MapOptions = {},
  ) {
    requireGrantPages();
    requireGeometry(untrustedWidth, untrustedHeight, untrustedRefs.length);
    this.width = untrustedWidth;
    this.height = untrustedHeight;
    this.stride = untrustedWidth * BYTES_PER_PIXEL;
    this.domain = domain;
    this.#table = table;
    this.mapping = table.map(domain, untrustedRefs, options);
    this.pixels = new Uint8Array(this.mapping.buffer, 0, this.width * this.height * BYTES_PER_PIXEL);
  }

  /**
   * The pixels as one file range for a wl_shm pool (fd owned by the grant
   * table: dup it before handing it on); null for a scattered memfd list.
   */
  get contiguous(): ContiguousRange | null {
    return this.mapping.contiguous;
  }

  /** Unmaps now; `pixels` reads as empty afterwards. */
  unmap(): void {
    this.#table.unmap(this.mapping);
  }
}
