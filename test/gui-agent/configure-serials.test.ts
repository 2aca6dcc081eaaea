/**
 * xdg_surface.ack_configure against the agent's compositor: an app is
 * never ended for acking a configure the compositor sent, however many
 * were sent in a burst (the compositor remembers the last 256 serials
 * exactly, and takes older ones it may have sent); a serial it never sent
 * still ends the app with invalid_serial.
 */
import { describe, expect, it } from "vitest";

import { connect, type ClientConnection } from "../../wayland/index.ts";
import { useCompositorUnderTest, waitForWindow, type CompositorUnderTest, type RunningApp } from "../helpers/apps.ts";
import { PatternClient } from "../helpers/pattern-client.ts";
import { within, withStartup } from "../helpers/processes.ts";

/** How long a round trip to the compositor may take (ms). */
const ROUNDTRIP_MS = 10_000;

let under: CompositorUnderTest;
const apps: RunningApp[] = [];
const clients: Array<{ destroy(): void }> = [];

useCompositorUnderTest((started) => (under = started), apps, clients);

describe("ack_configure", { timeout: withStartup(10_000) }, () => {
  it("takes the ack of each of 300 configures sent in one burst, the oldest ones included", async () => {
    const client = await within(
      PatternClient.open(under.compositor.socketPath, 100, 100, "serials"),
      ROUNDTRIP_MS,
      "the pattern client's window",
    );
    clients.push({ destroy: () => client.close() });
    const window = await waitForWindow(under.compositor, null, (w) => w.title === "serials");
    const acked: number[] = [];
    window.events.ackConfigure.add((serial) => void acked.push(serial));
    const sent: number[] = [];
    for (let i = 0; i < 300; i++) sent.push(window.configure({ width: 100 + i, height: 100 }));
    // The client acks every configure as it reads it, oldest first.
    await within(client.connection.roundtrip(), ROUNDTRIP_MS, "the client's first round trip after the configures");
    await within(client.connection.roundtrip(), ROUNDTRIP_MS, "the client's round trip after its acks");
    expect(client.connection.error).toBeUndefined();
    expect(acked).toEqual(sent);
  });

  it("ends an app that acks a serial it was never sent", async () => {
    const connection: ClientConnection = await within(
      connect({ display: under.compositor.socketPath }),
      ROUNDTRIP_MS,
      "the connection to the compositor",
    );
    clients.push(connection);
    const surface = connection.bind("wl_compositor", 4).request("create_surface");
    const xdgSurface = connection.bind("xdg_wm_base", 2).request("get_xdg_surface", surface);
    xdgSurface.request("get_toplevel");
    const configured = new Promise<number>((resolve) => xdgSurface.on("configure", (serial) => resolve(serial)));
    surface.request("commit");
    const serial = await within(configured, ROUNDTRIP_MS, "the initial configure");
    xdgSurface.request("ack_configure", serial + 1000);
    await expect(within(connection.roundtrip(), ROUNDTRIP_MS, "the protocol error")).rejects.toThrow(/unknown serial/);
  });
});
