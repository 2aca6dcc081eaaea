/**
 * The libxenvchan control page, as qubes-core-vchan-xen lays it out on the
 * one page the server grants (all little-endian):
 *
 * | offset | size | field |
 * |---|---|---|
 * | 0 | 4 | left.cons (u32) |
 * | 4 | 4 | left.prod |
 * | 8 | 4 | right.cons |
 * | 12 | 4 | right.prod |
 * | 16 | 2 | left_order (u16) |
 * | 18 | 2 | right_order |
 * | 20 | 1 | cli_live (u8) |
 * | 21 | 1 | srv_live |
 * | 22 | 1 | cli_notify |
 * | 23 | 1 | srv_notify |
 * | 24.. | 4 each | grants[]: the external ring pages, left's first |
 *
 * Left ring: the client writes, the server reads. Right ring: the server
 * writes, the client reads. Order = log2(ring bytes): 10 is a ring inside the
 * control page at 1024, 11 at 2048, 12..20 are 2^(order-12) granted pages.
 */

/** Offset of left.cons: how far the server has read the left ring (u32, free-running). */
export const LEFT_CONS = 0;
/** Offset of left.prod: how far the client has written the left ring. */
export const LEFT_PROD = 4;
/** Offset of right.cons: how far the client has read the right ring. */
export const RIGHT_CONS = 8;
/** Offset of right.prod: how far the server has written the right ring. */
export const RIGHT_PROD = 12;
/** Offset of left_order (u16): log2 of the left ring's size. */
export const LEFT_ORDER = 16;
/** Offset of right_order (u16): log2 of the right ring's size. */
export const RIGHT_ORDER = 18;
/** Offset of cli_live (u8): the client's liveness. */
export const CLI_LIVE = 20;
/** Offset of srv_live (u8): the server's liveness. */
export const SRV_LIVE = 21;
/** Offset of cli_notify (u8): what the client must signal (bits set by the server). */
export const CLI_NOTIFY = 22;
/** Offset of srv_notify (u8): what the server must signal (bits set by the client). */
export const SRV_NOTIFY = 23;
/** Offset of grants[] (u32 each): refs of the ring pages, the left ring's first. */
export const GRANTS = 24;

/** The control page's size: one 4096-byte grant page. */
export const CONTROL_PAGE_SIZE = 4096;

/** The most grant refs the control page has room for after its header. */
export const MAX_RING_GRANTS = (CONTROL_PAGE_SIZE - GRANTS) / 4;

/** Live byte: the side closed or died. */
export const LIVE_GONE = 0;
/** Live byte: the side is connected. */
export const LIVE_CONNECTED = 1;
/** Live byte: the client has not connected yet (set by the server). */
export const LIVE_WAITING = 2;

/** Notify bit: "tell me when you write". */
export const VCHAN_NOTIFY_WRITE = 1;
/** Notify bit: "tell me when you consume". */
export const VCHAN_NOTIFY_READ = 2;

/** The smallest ring order a client accepts (1 KiB, inside the control page). */
export const MIN_ORDER = 10;
/** The largest ring order a client accepts (1 MiB of pages). */
export const MAX_ORDER = 20;

/** Where a ring of `order` lives: inside the control page (at `offset`), or on its own pages. */
export type RingPlace = { inPage: true; offset: number } | { inPage: false; pages: number };

/** The place of a ring of a valid order (10..20). */
export function ringPlace(order: number): RingPlace {
  if (order === 10) return { inPage: true, offset: 1024 };
  if (order === 11) return { inPage: true, offset: 2048 };
  return { inPage: false, pages: 2 ** (order - 12) };
}

/**
 * The server's choice of (left order, right order) for its read_min (left
 * ring, which it reads) and write_min, as libxenvchan chooses: both small
 * rings inside the control page when they fit, otherwise pages.
 */
export function chooseOrders(readMin: number, writeMin: number): [left: number, right: number] {
  const pagesOrder = (min: number): number => Math.max(12, Math.ceil(Math.log2(Math.max(min, 1))));
  if (readMin <= 1024 && writeMin <= 2048) return [10, 11];
  if (readMin <= 2048 && writeMin <= 1024) return [11, 10];
  if (readMin <= 2048) return [11, pagesOrder(writeMin)];
  if (writeMin <= 2048) return [pagesOrder(readMin), 11];
  return [pagesOrder(readMin), pagesOrder(writeMin)];
}

/**
 * Checks a pair of orders read from a server's control page (hostile): null
 * when both are 10..20 and they do not share the control page's space.
 */
export function checkOrders(untrustedLeft: number, untrustedRight: number): string | null {
  for (const order of [untrustedLeft, untrustedRight]) {
    if (!Number.isInteger(order) || order < MIN_ORDER || order > MAX_ORDER) {
      return `ring order ${order} is outside ${MIN_ORDER}..${MAX_ORDER}`;
    }
  }
  if (untrustedLeft === untrustedRight && untrustedLeft < 12) {
    return `both rings have order ${untrustedLeft}: they would overlap in the control page`;
  }
  const left = ringPlace(untrustedLeft);
  const right = ringPlace(untrustedRight);
  const grants = (left.inPage ? 0 : left.pages) + (right.inPage ? 0 : right.pages);
  if (grants > MAX_RING_GRANTS) return `the rings need ${grants} grant refs; the control page holds ${MAX_RING_GRANTS}`;
  return null;
}
