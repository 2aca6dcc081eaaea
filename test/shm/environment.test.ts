import { describe, expect, it } from "vitest";

import {
  DEFAULT_SOCKET_DIR,
  isDomainId,
  ownDomainFromEnvironment,
  socketDirectoryFromEnvironment,
} from "../../shm/index.ts";

describe("domain ids and rendezvous directory from the environment", () => {
  it("takes VCHAN_DOMAIN as this domain's id, 0 when unset", () => {
    expect(ownDomainFromEnvironment({})).toBe(0);
    expect(ownDomainFromEnvironment({ VCHAN_DOMAIN: "5" })).toBe(5);
    expect(ownDomainFromEnvironment({ VCHAN_DOMAIN: "32751" })).toBe(0x7fef);
  });

  it.each(["-1", "32752", "4294967295", "1e3", "0x10", "five", " 5"])("rejects VCHAN_DOMAIN=%s", (value) => {
    expect(() => ownDomainFromEnvironment({ VCHAN_DOMAIN: value })).toThrow(RangeError);
  });

  it("takes VCHAN_SOCKET_DIR, /var/run/vchan when unset", () => {
    expect(socketDirectoryFromEnvironment({})).toBe(DEFAULT_SOCKET_DIR);
    expect(DEFAULT_SOCKET_DIR).toBe("/var/run/vchan");
    expect(socketDirectoryFromEnvironment({ VCHAN_SOCKET_DIR: "/tmp/x" })).toBe("/tmp/x");
  });

  it.each([-1, 0.5, 0x7ff0, 2 ** 31, Number.NaN, "1"])("says %s is not a domain id", (value) => {
    expect(isDomainId(value)).toBe(false);
  });
});
