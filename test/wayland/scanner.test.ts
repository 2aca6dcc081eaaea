// The scanner: the committed tables match the installed protocol XML, carry
// no prose, and the XML reader handles the subset protocol files use.
import { readFileSync } from "node:fs";
import path from "node:path";

import { describe, expect, it } from "vitest";

import { generate, generateAll, outputDir, parseXml } from "../../scripts/wayland-scanner.ts";
import { allInterfaces, wl_output, wl_seat, wl_surface, xdg_toplevel } from "../../wayland/index.ts";

describe("wayland-scanner", () => {
  it("committed generated files match what the installed XML gives (libwayland-dev, wayland-protocols)", () => {
    const generated = generateAll();
    expect(generated.size).toBeGreaterThan(8);
    for (const [name, content] of generated) {
      expect(readFileSync(path.join(outputDir, name), "utf8"), `${name} is stale: run scripts/wayland-scanner.ts`).toBe(
        content,
      );
    }
  });

  it("carries versions, since, destructors, nullability and enums from the XML", () => {
    expect(wl_surface.version).toBe(5);
    const damageBuffer = wl_surface.requests.find((request) => request.name === "damage_buffer");
    expect(damageBuffer?.since).toBe(4);
    expect(wl_surface.requests[0]).toMatchObject({ name: "destroy", destructor: true });
    expect(wl_surface.requests[1]?.args[0]).toEqual({
      name: "buffer",
      type: "object",
      interface: "wl_buffer",
      nullable: true,
    });
    expect(wl_output.enums.transform["flipped_270"]).toBe(7);
    expect(xdg_toplevel.enums.state.tiled_bottom).toBe(8);
    expect(xdg_toplevel.enumSince.state.tiled_bottom).toBe(2);
    expect(wl_seat.bitfields).toEqual(["capability"]);
    for (const name of [
      "xdg_wm_base",
      "wp_viewporter",
      "wp_presentation",
      "zxdg_decoration_manager_v1",
      "zxdg_output_manager_v1",
      "wp_single_pixel_buffer_manager_v1",
    ]) {
      expect(allInterfaces.has(name), name).toBe(true);
    }
  });

  it("generates every interface that an argument of a generated message names", () => {
    const missing: string[] = [];
    for (const spec of allInterfaces.values()) {
      for (const message of [...spec.requests, ...spec.events]) {
        for (const arg of message.args) {
          if (arg.interface !== undefined && !allInterfaces.has(arg.interface)) {
            missing.push(`${spec.name}.${message.name}: ${arg.interface}`);
          }
        }
      }
    }
    expect(missing).toEqual([]);
  });

  it("copies no description or summary text into the generated code", () => {
    const xml = readFileSync("/usr/share/wayland/wayland.xml", "utf8");
    const output = generate(xml, "wayland.xml");
    expect(output).not.toContain("The core global object");
    expect(output).not.toContain("summary");
    expect(output).not.toContain("Copyright");
  });

  it("reads elements, attributes with entities, comments and self-closing tags, and rejects a mismatched end tag", () => {
    const root = parseXml(
      `<?xml version="1.0"?><!-- c --><protocol name="p"><interface name="a&amp;b" version="2"><request name="r"/></interface></protocol>`,
    );
    const protocol = root.children[0]!;
    expect(protocol.attributes.name).toBe("p");
    expect(protocol.children[0]?.attributes).toEqual({ name: "a&b", version: "2" });
    expect(protocol.children[0]?.children[0]?.name).toBe("request");
    expect(() => parseXml("<a><b></a>")).toThrow(/unexpected <\/a>/);
  });
});
