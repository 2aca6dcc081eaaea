import { describe, expect, it } from "vitest";

import * as native from "../../native/index.ts";
import { connectVchanClient, createVchanServer, defaultVchanBackend, xenVchanAvailability } from "../../vchan/index.ts";

const offXen = !xenVchanAvailability().available;

describe("xen vchan backend", () => {
  it("is compiled into the addon where libxenvchan's header exists", () => {
    expect(typeof native.xenVchan.compiled).toBe("boolean");
    if (native.xenVchan.compiled) expect(typeof native.xenVchan.XenVchan?.serverInit).toBe("function");
  });

  it.skipIf(!offXen)("says clearly that it is not available off Xen, for servers and clients", async () => {
    const availability = xenVchanAvailability();
    if (availability.available) return;
    expect(availability.reason).toMatch(
      /^xen vchan backend not available: .*(\/dev\/xen\/\w+ does not exist|built without)/,
    );
    expect(() => createVchanServer({ backend: "xen", domain: 0, port: 6000 })).toThrow(
      expect.objectContaining({ code: "BACKEND_NOT_AVAILABLE", message: availability.reason }),
    );
    await expect(connectVchanClient({ backend: "xen", domain: 0, port: 6000 })).rejects.toMatchObject({
      code: "BACKEND_NOT_AVAILABLE",
      message: availability.reason,
    });
  });

  it.skipIf(!offXen || !native.xenVchan.compiled)(
    "reports libxenvchan's failures off Xen as errno errors naming the call",
    () => {
      const XenVchan = native.xenVchan.XenVchan;
      if (XenVchan === undefined) return;
      expect(() => XenVchan.serverInit(0, "data/vchan/0/6000", 4096, 4096)).toThrow(
        expect.objectContaining({ syscall: "libxenvchan_server_init", code: expect.stringMatching(/^E[A-Z]+$/) }),
      );
      expect(() => XenVchan.clientInit(0, "/local/domain/0/data/vchan/0/6000")).toThrow(
        expect.objectContaining({ syscall: "libxenvchan_client_init" }),
      );
      expect(() => XenVchan.serverInit(0x7ff0, "x", 0, 0)).toThrow(RangeError);
      const unopened = new XenVchan();
      expect(() => unopened.read(new Uint8Array(4))).toThrow(expect.objectContaining({ code: "EBADF" }));
      expect(unopened.isOpen()).toBe(0);
    },
  );

  it.skipIf(!offXen)("makes socket the default backend off Xen", () => {
    expect(defaultVchanBackend()).toBe("socket");
  });
});
