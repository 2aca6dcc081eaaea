/**
 * shm/: grant tables and framebuffers. A domain *shares* pages with a peer
 * domain and gets one grant reference per page; the peer *maps* a list of
 * refs as one zero-copy view. Backends: `memfd` (the emulation on plain
 * Linux, the default) and `xen` (gntalloc/gntdev). Framebuffers (BGRX,
 * stride = width × 4, image at byte 0) and the WINDOW_DUMP lifetime rule are
 * built on top.
 */
import { MemfdGrantTable, type MemfdGrantTableOptions } from "./memfd.ts";
import type { DomainId, GrantTable } from "./types.ts";
import { XenGrantTable, xenGrantAvailability } from "./xen.ts";

export type {
  ContiguousRange,
  DomainId,
  GrantCounters,
  GrantMapping,
  GrantRef,
  GrantTable,
  MapOptions,
  ShareOptions,
  SharedPages,
} from "./types.ts";
export { MAX_DOMAIN_ID, MAX_REFS_PER_MAP } from "./types.ts";
export { ShmError, type ShmErrorCode } from "./errors.ts";
export {
  DEFAULT_SOCKET_DIR,
  checkDomainId,
  isDomainId,
  ownDomainFromEnvironment,
  socketDirectoryFromEnvironment,
} from "./environment.ts";
export {
  connectWhenListening,
  ACCEPT_RETRY_MS,
  acceptAllowedPeer,
  allowedPeerUids,
  listenReplacing,
  unlinkIfOwn,
  unlinkStale,
  whenReadable,
  type BoundListener,
  type ConnectOptions,
} from "./rendezvous.ts";
export {
  DEFAULT_MAX_GRANTED_PAGES,
  DEFAULT_OFFER_TIMEOUT_MS,
  MemfdGrantTable,
  POOL_GROWTH_PAGES,
  grantSocketPath,
  type MemfdGrantTableOptions,
} from "./memfd.ts";
export { GNTALLOC_DEVICE, GNTDEV_DEVICE, XenGrantTable, xenGrantAvailability } from "./xen.ts";
export {
  BYTES_PER_PIXEL,
  DumpQueue,
  Framebuffer,
  GRANT_PAGE_SIZE,
  MAX_FRAMEBUFFER_HEIGHT,
  MAX_FRAMEBUFFER_WIDTH,
  MappedFramebuffer,
  checkFramebufferGeometry,
  framebufferPages,
} from "./framebuffer.ts";

/** The grant backends by name. */
export type GrantBackend = "memfd" | "xen";

/**
 * Creates this domain's grant table on `backend`, or on the default one:
 * `xen` when it is available here, else `memfd`. Why a default: agent and
 * daemon code runs unchanged on Qubes and on a plain Linux machine.
 */
export function createGrantTable(
  options: MemfdGrantTableOptions & { backend?: GrantBackend; domain?: DomainId } = {},
): GrantTable {
  const backend = options.backend ?? (xenGrantAvailability().available ? "xen" : "memfd");
  if (backend === "xen")
    return options.domain === undefined ? new XenGrantTable() : new XenGrantTable({ domain: options.domain });
  return new MemfdGrantTable(options);
}
