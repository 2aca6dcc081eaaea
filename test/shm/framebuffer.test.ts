import { afterEach, beforeEach, describe, expect, it } from "vitest";
import fc from "fast-check";

import {
  DumpQueue,
  Framebuffer,
  MappedFramebuffer,
  MemfdGrantTable,
  ShmError,
  checkFramebufferGeometry,
  framebufferPages,
  type GrantTable,
} from "../../shm/index.ts";
import { checkDumpGeometry } from "../../protocol/index.ts";
import { finished, spawnTs, temporaryDirectory, whenReady, withStartup } from "../helpers/processes.ts";
import { LineChannel } from "./lines.ts";

const AGENT = 1;
const GUI = 2;

describe("framebuffer geometry", () => {
  it("takes ceil(width × height × 4 / 4096) pages", () => {
    expect(framebufferPages(1920, 1080)).toBe(2025);
    expect(framebufferPages(1, 1)).toBe(1);
    expect(framebufferPages(1025, 1)).toBe(2);
    expect(framebufferPages(16384, 6144)).toBe(98304);
  });

  it("accepts the largest framebuffer qubes-guid accepts", () => {
    expect(checkFramebufferGeometry(16384, 6144, 98304)).toBeNull();
  });

  it("refuses to map a 0 x 1 dump, which the protocol's rule calls no image", () => {
    expect(checkFramebufferGeometry(0, 1, 98304)).toMatch(/no image/);
    expect(checkFramebufferGeometry(0, 0, 0)).toMatch(/no image/);
  });

  it("follows the validator's rule: every geometry it accepts as an image maps, every other is refused", () => {
    fc.assert(
      fc.property(
        fc.oneof(fc.integer({ min: -2, max: 16386 }), fc.constantFrom(2 ** 31, 2 ** 32 - 1)),
        fc.oneof(fc.integer({ min: -2, max: 6146 }), fc.constantFrom(2 ** 31, 2 ** 32 - 1)),
        fc.integer({ min: 0, max: 98305 }),
        (width, height, refs) => {
          const rule = checkDumpGeometry(width, height, refs);
          const image = rule.ok && rule.value.kind === "image";
          expect(checkFramebufferGeometry(width, height, refs) === null).toBe(image);
        },
      ),
    );
  });

  it.each([
    [-1, 1],
    [16385, 1],
    [1, 6145],
    [2 ** 31, 1],
    [1, 2 ** 32 - 1],
    [Number.NaN, 1],
    [1.5, 1],
  ])("rejects a %s x %s framebuffer", (width, height) => {
    expect(checkFramebufferGeometry(width, height, 98304)).toMatch(/at most 16384x6144/);
  });

  it("rejects too few refs for the image, and more than 98 304", () => {
    expect(checkFramebufferGeometry(1920, 1080, 2024)).toMatch(/cannot hold/);
    expect(checkFramebufferGeometry(1, 1, 98305)).toMatch(/grant refs/);
    expect(checkFramebufferGeometry(1, 1, 0)).toMatch(/cannot hold/);
  });
});

describe("framebuffers on the memfd backend, one process", () => {
  let dir: { dir: string; remove: () => void };
  let agent: GrantTable;
  let gui: GrantTable;

  beforeEach(async () => {
    dir = temporaryDirectory();
    agent = new MemfdGrantTable({ domain: AGENT, socketDir: dir.dir });
    gui = new MemfdGrantTable({ domain: GUI, socketDir: dir.dir });
    (agent as MemfdGrantTable).offer(GUI);
    await gui.attach(AGENT);
  });
  afterEach(() => {
    agent.destroy();
    gui.destroy();
    dir.remove();
  });

  it("shares and maps a framebuffer at the size limits: stride width × 4, image at byte 0", () => {
    const framebuffer = new Framebuffer(agent, GUI, 16384, 6144);
    expect(framebuffer.stride).toBe(65536);
    expect(framebuffer.refs).toHaveLength(98304);
    const last = 16384 * 6144 * 4 - 4;
    framebuffer.pixels[0] = 1;
    framebuffer.pixels[last] = 2;
    const mapped = new MappedFramebuffer(gui, AGENT, 16384, 6144, framebuffer.refs);
    expect(mapped.pixels[0]).toBe(1);
    expect(mapped.pixels[last]).toBe(2);
    expect(mapped.contiguous?.length).toBe(98304 * 4096);
    mapped.unmap();
    framebuffer.destroy();
  });

  it("refuses a WINDOW_DUMP whose refs are too few for its size", () => {
    const framebuffer = new Framebuffer(agent, GUI, 64, 64);
    expect(() => new MappedFramebuffer(gui, AGENT, 64, 65, framebuffer.refs)).toThrow(
      expect.objectContaining({ code: "FRAMEBUFFER_GEOMETRY" }),
    );
    expect(() => new Framebuffer(agent, GUI, 16385, 1)).toThrow(ShmError);
  });

  it("keeps the pages shared until every WINDOW_DUMP naming them is acknowledged", () => {
    const framebuffer = new Framebuffer(agent, GUI, 32, 32);
    const dumps = new DumpQueue();
    dumps.sent(framebuffer);
    dumps.sent(framebuffer);
    framebuffer.destroy();
    expect(framebuffer.revoked).toBe(false);
    gui.unmap(gui.map(AGENT, framebuffer.refs));
    expect(dumps.acknowledge()).toBe(true);
    expect(framebuffer.revoked).toBe(false);
    expect(dumps.acknowledge()).toBe(true);
    expect(framebuffer.revoked).toBe(true);
    expect(() => gui.map(AGENT, framebuffer.refs)).toThrow(expect.objectContaining({ code: "GRANT_REVOKED" }));
    expect(dumps.acknowledge()).toBe(false);
  });

  it("releases every dump in flight on reconnect", () => {
    const framebuffer = new Framebuffer(agent, GUI, 8, 8);
    const dumps = new DumpQueue();
    dumps.sent(framebuffer);
    framebuffer.destroy();
    dumps.releaseAll();
    expect(framebuffer.revoked).toBe(true);
    expect(dumps.length).toBe(0);
  });
});

describe("a 1920x1080 framebuffer granted by another process", () => {
  it(
    "maps with one mmap and zero bytes copied, shows every later frame without mapping again, and lives until the ack",
    { timeout: withStartup(30_000) },
    async () => {
      const dir = temporaryDirectory();
      const child = spawnTs("test/shm/peers/framebuffer-granter.ts", [dir.dir, "1920", "1080"], {
        stdio: ["pipe", "pipe", "pipe"],
      });
      const done = finished(child);
      const lines = new LineChannel(child);
      // Its refs line is its readiness signal: the framebuffer is granted and painted.
      const ready = whenReady(child, /^\{"refs":/);
      const gui = new MemfdGrantTable({ domain: GUI, socketDir: dir.dir });
      try {
        await ready;
        const { refs } = JSON.parse(await lines.next()) as { refs: number[] };
        expect(refs).toHaveLength(2025);
        await gui.attach(AGENT);
        // One map per WINDOW_DUMP ...
        const mapped = new MappedFramebuffer(gui, AGENT, 1920, 1080, refs);
        expect(gui.counters.maps).toBe(1);
        expect(gui.counters.mmapCalls).toBe(1);
        expect(gui.counters.bytesCopied).toBe(0);
        expect(mapped.contiguous).not.toBeNull();
        expect(mapped.pixels[0]).toBe(0x40);
        // Refs the other process never granted are refused, as gntdev would.
        expect(() => gui.map(AGENT, [2025])).toThrow(expect.objectContaining({ code: "GRANT_NOT_GRANTED" }));
        expect(() => gui.map(AGENT, [2 ** 32 - 1])).toThrow(expect.objectContaining({ code: "GRANT_OUT_OF_RANGE" }));
        expect(mapped.pixels[1920 * 1080 * 4 - 2]).toBe(0x40);
        // ... not per frame: the agent paints, we read the same mapping.
        for (const value of [0x11, 0x22, 0x33]) {
          expect(await lines.ask(`paint ${value}`)).toBe("painted");
          expect(mapped.pixels[0]).toBe(value);
          expect(mapped.pixels[1920 * 1080 * 4 - 2]).toBe(value);
        }
        expect(gui.counters.maps).toBe(1);
        expect(gui.counters.bytesCopied).toBe(0);
        // The lifetime rule across processes: destroy waits for the ack.
        expect(await lines.ask("dump")).toBe("dumped");
        expect(await lines.ask("destroy")).toBe("revoked false");
        const second = gui.map(AGENT, refs);
        gui.unmap(second);
        expect(await lines.ask("ack")).toBe("revoked true");
        expect(() => gui.map(AGENT, refs)).toThrow(expect.objectContaining({ code: "GRANT_REVOKED" }));
        mapped.unmap();
        expect(mapped.pixels.length).toBe(0);
        child.stdin?.write("exit\n");
        const result = await done;
        expect(result.stderr).toBe("");
        expect(result.code).toBe(0);
      } finally {
        child.kill();
        gui.destroy();
        dir.remove();
      }
    },
  );
});
