/**
 * Where a domain learns who it is and where the rendezvous sockets live: the
 * conventions of qubes-core-vchan-socket (VCHAN_DOMAIN, VCHAN_SOCKET_DIR),
 * shared by the grant pools so one directory serves a whole emulated machine.
 */
import { MAX_DOMAIN_ID, type DomainId } from "./types.ts";

/** The default rendezvous directory of qubes-core-vchan-socket. */
export const DEFAULT_SOCKET_DIR = "/var/run/vchan";

/** True when `value` is a valid domain id (an integer 0..0x7fef). */
export function isDomainId(value: unknown): value is DomainId {
  return typeof value === "number" && Number.isInteger(value) && value >= 0 && value <= MAX_DOMAIN_ID;
}

/** Throws a RangeError (a programmer error) unless `value` is a domain id. */
export function checkDomainId(value: unknown, name = "domain"): DomainId {
  if (!isDomainId(value)) throw new RangeError(`${name} must be a domain id 0..${MAX_DOMAIN_ID}, got ${String(value)}`);
  return value;
}

/**
 * This process's own domain id: `VCHAN_DOMAIN` (default 0), because the
 * libvchan API cannot pass it (qubes-core-vchan-socket's rule).
 */
export function ownDomainFromEnvironment(env: NodeJS.ProcessEnv = process.env): DomainId {
  const raw = env["VCHAN_DOMAIN"];
  if (raw === undefined || raw === "") return 0;
  const value = Number(raw);
  if (!/^\d+$/.test(raw) || !isDomainId(value)) {
    throw new RangeError(`VCHAN_DOMAIN must be a domain id 0..${MAX_DOMAIN_ID}, got ${JSON.stringify(raw)}`);
  }
  return value;
}

/** The rendezvous directory: `VCHAN_SOCKET_DIR`, default /var/run/vchan. */
export function socketDirectoryFromEnvironment(env: NodeJS.ProcessEnv = process.env): string {
  const dir = env["VCHAN_SOCKET_DIR"];
  return dir === undefined || dir === "" ? DEFAULT_SOCKET_DIR : dir;
}
