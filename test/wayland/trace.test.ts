// WAYLAND_DEBUG tracing: one line per message on the side it names, with
// peer strings escaped so they cannot forge lines.
import { afterEach, describe, expect, it, vi } from "vitest";

import { socketpair } from "../../native/index.ts";
import { ClientConnection, Display, traceEnabled } from "../../wayland/index.ts";

afterEach(() => {
  delete process.env.WAYLAND_DEBUG;
  vi.restoreAllMocks();
});

describe("WAYLAND_DEBUG", () => {
  it("selects the sides as libwayland programs do: 1 both, client or server one", () => {
    process.env.WAYLAND_DEBUG = "1";
    expect([traceEnabled("client"), traceEnabled("server")]).toEqual([true, true]);
    process.env.WAYLAND_DEBUG = "server";
    expect([traceEnabled("client"), traceEnabled("server")]).toEqual([false, true]);
    delete process.env.WAYLAND_DEBUG;
    expect([traceEnabled("client"), traceEnabled("server")]).toEqual([false, false]);
  });

  it("traces requests received and events sent on the server, escaping a hostile title", async () => {
    process.env.WAYLAND_DEBUG = "server";
    const lines: string[] = [];
    vi.spyOn(process.stderr, "write").mockImplementation((chunk: string | Uint8Array) => {
      lines.push(String(chunk));
      return true;
    });
    const display = new Display();
    display.createGlobal("xdg_wm_base", 5, (wmBase) =>
      wmBase.implement({
        get_xdg_surface: (xdgSurface) => xdgSurface.implement({ get_toplevel: (toplevel) => toplevel.implement({}) }),
      }),
    );
    display.createGlobal("wl_compositor", 5, (compositor) =>
      compositor.implement({ create_surface: (surface) => surface.implement({}) }),
    );
    const [serverEnd, clientEnd] = socketpair("stream");
    display.addClient(serverEnd);
    const connection = new ClientConnection(clientEnd);
    await connection.roundtrip();
    const surface = connection.bind("wl_compositor", 5).request("create_surface");
    const toplevel = connection.bind("xdg_wm_base", 5).request("get_xdg_surface", surface).request("get_toplevel");
    toplevel.request("set_title", "evil\n[   0.000] server <- forged");
    await connection.roundtrip();
    connection.destroy();
    display.destroy();
    const text = lines.join("");
    expect(text).toMatch(/server <- wl_display#1\.get_registry\(wl_registry#2\)\n/);
    expect(text).toMatch(/server -> wl_registry#2\.global\(1, "xdg_wm_base", 5\)\n/);
    expect(text).toContain(`xdg_toplevel#${toplevel.id}.set_title("evil\\n[   0.000] server <- forged")\n`);
    expect(text).not.toContain("client ->");
    expect(text.split("\n").filter((line) => line.includes("forged"))).toHaveLength(1);
  });
});
