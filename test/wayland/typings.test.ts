// The generated typings: handlers and listeners get typed arguments, and
// wrong names or argument types fail to compile (checked by tsc over the
// test folder; the runtime half checks the same calls throw).
import { describe, expect, expectTypeOf, it } from "vitest";

import { socketpair } from "../../native/index.ts";
import { ClientConnection, Display, type Proxy, type Resource } from "../../wayland/index.ts";

describe("typed requests, events and handlers", () => {
  it("types server handlers, client requests and event listeners from the XML", async () => {
    const display = new Display();
    const seen: string[] = [];
    display.createGlobal("wl_compositor", 5, (compositor) => {
      compositor.implement({
        create_surface: (surface) => {
          expectTypeOf(surface).toEqualTypeOf<Resource<"wl_surface">>();
          surface.implement({
            attach: (buffer, x, y) => {
              expectTypeOf(buffer).toEqualTypeOf<Resource<"wl_buffer"> | null>();
              seen.push(`attach ${buffer === null ? "null" : buffer.id} ${x} ${y}`);
            },
            // @ts-expect-error wl_surface has no request "paint"
            paint: () => undefined,
          });
          // @ts-expect-error wl_surface.enter takes a wl_output, not a number
          expect(() => surface.send("enter", 5)).toThrow(TypeError);
        },
      });
    });
    const [serverEnd, clientEnd] = socketpair("stream");
    display.addClient(serverEnd);
    const connection = new ClientConnection(clientEnd);
    await connection.roundtrip();
    const surface = connection.bind("wl_compositor", 5).request("create_surface");
    expectTypeOf(surface).toEqualTypeOf<Proxy<"wl_surface">>();
    surface.request("attach", null, 1, 2);
    // @ts-expect-error attach takes three arguments
    expect(() => surface.request("attach", null, 1)).toThrow(TypeError);
    // @ts-expect-error wl_surface has no request "paint"
    expect(() => surface.request("paint")).toThrow(TypeError);
    // @ts-expect-error wl_surface (version 5) has no event "preferred_buffer_scale"
    expect(() => surface.on("preferred_buffer_scale", () => undefined)).toThrow(TypeError);
    const callback = surface.request("frame");
    expectTypeOf(callback).toEqualTypeOf<Proxy<"wl_callback">>();
    callback.on("done", (time) => expectTypeOf(time).toEqualTypeOf<number>());
    await connection.roundtrip();
    expect(seen).toEqual(["attach null 1 2"]);
    connection.destroy();
    display.destroy();
  });
});
