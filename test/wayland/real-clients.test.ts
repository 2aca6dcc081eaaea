// Real libwayland clients against a small compositor built on our server
// side: wayland-info lists our globals, weston-simple-shm animates for many
// frames with WAYLAND_DEBUG=1 and no protocol error, foot and gtk3-demo draw
// their windows (and take our xkb keymap), and a client writing
// malformed bytes on a raw socket gets wl_display.error and is cut off while
// the others keep being served.
import { spawn } from "node:child_process";
import path from "node:path";

import { afterEach, beforeEach, describe, expect, it } from "vitest";

import { connect, type ClientConnection } from "../../wayland/index.ts";
import { rawExchange } from "../helpers/raw-wayland.ts";
import { requireProgram } from "../helpers/compositors.ts";
import { READY_TIMEOUT_MS, temporaryDirectory, withStartup, within } from "../helpers/processes.ts";
import { createTestCompositor, type TestCompositor } from "../helpers/test-compositor.ts";

let dir: { dir: string; remove: () => void };
let compositor: TestCompositor;

beforeEach(() => {
  dir = temporaryDirectory("wayland-real-clients-");
  compositor = createTestCompositor(path.join(dir.dir, "wayland-test"));
});

afterEach(() => {
  compositor.destroy();
  dir.remove();
});

function clientEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  return { PATH: process.env.PATH, XDG_RUNTIME_DIR: dir.dir, WAYLAND_DISPLAY: "wayland-test", ...extra };
}

/** Debian packages of the programs run here, for the message when one is missing. */
const aptPackages: Record<string, string> = { "wayland-info": "wayland-utils" };

/** Runs a program to its end and returns its exit code and output. */
function run(program: string, args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number | null; out: string }> {
  requireProgram(program, aptPackages[program]);
  return new Promise((resolve, reject) => {
    const child = spawn(program, args, { env, stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => (out += chunk));
    child.stderr.setEncoding("utf8").on("data", (chunk: string) => (out += chunk));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, out }));
  });
}

/** Builds one message by hand (independently of the encoder): header then 32-bit words. */
function message(objectId: number, opcode: number, words: number[]): Uint8Array {
  const bytes = new Uint8Array(8 + words.length * 4);
  const view = new DataView(bytes.buffer);
  view.setUint32(0, objectId, true);
  view.setUint32(4, ((bytes.length << 16) | opcode) >>> 0, true);
  words.forEach((word, i) => view.setUint32(8 + i * 4, word >>> 0, true));
  return bytes;
}

/** The wl_display.error events in a byte stream: object, code, message. */
function displayErrors(bytes: Uint8Array): Array<{ object: number; code: number; text: string }> {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const errors: Array<{ object: number; code: number; text: string }> = [];
  for (let at = 0; at + 8 <= bytes.length;) {
    const size = view.getUint32(at + 4, true) >>> 16;
    if (view.getUint32(at, true) === 1 && (view.getUint32(at + 4, true) & 0xffff) === 0) {
      const length = view.getUint32(at + 16, true);
      errors.push({
        object: view.getUint32(at + 8, true),
        code: view.getUint32(at + 12, true),
        text: Buffer.from(bytes.subarray(at + 20, at + 20 + length - 1)).toString("utf8"),
      });
    }
    at += size;
  }
  return errors;
}

// A real client's first frame is its readiness signal, awaited as long as its
// start-up takes; wayland-info's whole run is little more than its start-up.
describe("real libwayland clients on our server", { timeout: withStartup(60_000) }, () => {
  it("wayland-info lists every global of the test compositor with its version", async () => {
    const { code, out } = await run("wayland-info", [], clientEnv());
    expect(code).toBe(0);
    for (const [name, version] of [
      ["wl_compositor", 5],
      ["wl_shm", 1],
      ["wl_output", 4],
      ["xdg_wm_base", 5],
    ] as const) {
      expect(out).toMatch(new RegExp(`interface: '${name}',\\s+version:\\s+${version},`));
    }
    expect(out).toContain("'XR24'");
    expect(out).toContain("name: TEST-1");
  });

  it("weston-simple-shm animates for 120 frames with WAYLAND_DEBUG=1 and no protocol error", async () => {
    requireProgram("weston-simple-shm", "weston");
    const child = spawn("weston-simple-shm", [], {
      env: clientEnv({ WAYLAND_DEBUG: "1" }),
      stdio: ["ignore", "pipe", "pipe"],
    });
    let trace = "";
    child.stderr.setEncoding("utf8").on("data", (chunk: string) => (trace += chunk));
    const exited = new Promise<number | null>((resolve) => child.on("close", (code) => resolve(code)));
    const sizes = new Set<string>();
    let started!: () => void;
    const firstFrame = new Promise<void>((resolve) => (started = resolve));
    const frames = new Promise<void>((resolve, reject) => {
      child.on("close", (code) =>
        reject(new Error(`weston-simple-shm exited (${code}) early:\n${trace.slice(-2000)}`)),
      );
      compositor.events.commit.add((frame) => {
        sizes.add(`${frame.width}x${frame.height}`);
        started();
        if (compositor.frames === 120) resolve();
      });
    });
    await within(
      Promise.race([firstFrame, frames]),
      READY_TIMEOUT_MS,
      "weston-simple-shm's first frame (its readiness)",
    );
    await within(frames, 30_000, "120 frames of weston-simple-shm after its first");
    child.kill("SIGINT");
    await exited;
    expect(sizes).toEqual(new Set(["250x250"]));
    expect(trace).toContain("xdg_toplevel");
    expect(trace).toMatch(/wl_callback@\d+\.done/);
    expect(trace).not.toMatch(/wl_display@1\.error/);
    expect(trace).not.toMatch(/protocol error/i);
  });

  it.each([
    ["foot", "foot", ["-o", "tweak.render-timer=none", "cat"], {}],
    ["gtk3-demo", "gtk-3-examples", [], { GDK_BACKEND: "wayland" }],
  ] as const)(
    "%s draws a window of at least 300×200 with WAYLAND_DEBUG=1 and no protocol error",
    async (program, aptPackage, args, env) => {
      requireProgram(program, aptPackage);
      const child = spawn(program, [...args], {
        env: clientEnv({ WAYLAND_DEBUG: "1", HOME: dir.dir, ...env }),
        stdio: ["ignore", "pipe", "pipe"],
      });
      let trace = "";
      child.stdout.setEncoding("utf8").on("data", (chunk: string) => (trace += chunk));
      child.stderr.setEncoding("utf8").on("data", (chunk: string) => (trace += chunk));
      const exited = new Promise<void>((resolve) => child.on("close", () => resolve()));
      // Its window is its readiness signal: the wait is as long as start-up may take.
      const frame = await within(
        new Promise<{ width: number; height: number }>((resolve, reject) => {
          child.on("close", (code) => reject(new Error(`${program} exited (${code}) early:\n${trace.slice(-3000)}`)));
          compositor.events.commit.add((committed) => {
            if (committed.width >= 300 && committed.height >= 200) resolve(committed);
          });
        }),
        READY_TIMEOUT_MS,
        `a window of at least 300×200 from ${program} (its readiness)`,
      );
      child.kill("SIGTERM");
      await exited;
      expect(frame.width).toBeGreaterThanOrEqual(300);
      expect(trace).toMatch(/wl_keyboard@\d+\.keymap\(1, fd \d+, \d+\)/);
      expect(trace).not.toMatch(/wl_display@1\.error/);
      expect(trace).not.toMatch(/protocol error|failed to compile keymap/i);
    },
  );

  it("answers a message to an unknown object with wl_display.error invalid_object and hangs up", async () => {
    const { received, closed } = await rawExchange(compositor.socketPath, message(77, 0, []));
    expect(closed).toBe(true);
    expect(displayErrors(received)).toEqual([{ object: 1, code: 0, text: "no object 77" }]);
  });

  it("answers an opcode past the interface with invalid_method on that object", async () => {
    const bytes = Buffer.concat([message(1, 1, [2]), message(2, 5, [])]);
    const { received } = await rawExchange(compositor.socketPath, bytes);
    expect(displayErrors(received)).toEqual([{ object: 2, code: 1, text: "wl_registry#2 has no request 5" }]);
  });

  it("cuts off a client that sends a message size below 8 and keeps serving another client", async () => {
    const other: ClientConnection = await connect({ display: compositor.socketPath });
    const bad = message(1, 0, [2]);
    new DataView(bad.buffer).setUint32(4, (4 << 16) >>> 0, true);
    const { closed } = await rawExchange(compositor.socketPath, bad);
    expect(closed).toBe(true);
    await other.roundtrip();
    expect(other.findGlobal("wl_compositor")?.version).toBe(5);
    other.destroy();
  });

  it("cuts off a client whose string runs past its message and keeps serving a libwayland client", async () => {
    // wl_display.get_registry(2), then wl_registry.bind(1, string of length 4000 in a 24-byte message).
    const bytes = Buffer.concat([message(1, 1, [2]), message(2, 0, [1, 4000, 0x636c77, 1, 3])]);
    const { received, closed } = await rawExchange(compositor.socketPath, bytes);
    expect(closed).toBe(true);
    expect(displayErrors(received)).toEqual([
      {
        object: 1,
        code: 1,
        text: "bad arguments to wl_registry#2.bind: string argument 1 longer than the message",
      },
    ]);
    const { code, out } = await run("wayland-info", [], clientEnv());
    expect(code).toBe(0);
    expect(out).toContain("wl_compositor");
  });
});
