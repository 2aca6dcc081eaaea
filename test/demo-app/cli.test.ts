// qubes-demo-app's command line as a user meets it: bad flags are one line
// naming the problem and status 2; no compositor is one line and status 1;
// --help and --version print and exit 0. The flag parsing and the key table
// are also checked in-process.
import { describe, expect, it } from "vitest";

import { characterOf, parseCli, parseSize } from "../../demo-app/index.ts";
import { Display, createShmGlobal } from "../../wayland/index.ts";
import { temporaryDirectory, within, withStartup } from "../helpers/processes.ts";
import { spawnDemoApp } from "./harness.ts";

/** Runs the program to its end (start-up bounded by withStartup, the run itself by `ms`). */
async function run(args: string[], env: NodeJS.ProcessEnv = {}) {
  const app = spawnDemoApp(args, env);
  try {
    return await within(app.done, 110_000, `qubes-demo-app ${args.join(" ")} ending`);
  } finally {
    await app.stop();
  }
}

describe("qubes-demo-app's command line", { timeout: withStartup(30_000) }, () => {
  it("exits with status 2 and one line naming the problem for each bad flag", async () => {
    const cases: Array<[string[], RegExp]> = [
      [["--bogus"], /Unknown option '--bogus'/],
      [["--size", "10x10"], /--size width must be 64\.\.8192, got 10/],
      [["--size", "big"], /--size must be WIDTHxHEIGHT/],
      [["--name", ""], /--name must not be empty/],
      [["--name"], /--name/],
      [["extra"], /Unexpected argument 'extra'/],
    ];
    const results = await Promise.all(cases.map(([args]) => run(args, { WAYLAND_DISPLAY: "nowhere" })));
    results.forEach((result, i) => {
      const [args, message] = cases[i]!;
      expect(result.code, args.join(" ")).toBe(2);
      expect(result.stdout).toBe("");
      expect(result.stderr).toMatch(message);
      expect(result.stderr).toMatch(/^qubes-demo-app: [^\n]+ \(see --help\)\n$/);
    });
  });

  it("exits with status 1 and one line without WAYLAND_DISPLAY, or when nothing listens there", async () => {
    const { dir, remove } = temporaryDirectory("demo-app-");
    try {
      const [unset, missing] = await Promise.all([
        run(["--name", "work"], { XDG_RUNTIME_DIR: dir }),
        run(["--name", "work"], { XDG_RUNTIME_DIR: dir, WAYLAND_DISPLAY: "wayland-none" }),
      ]);
      expect(unset.code).toBe(1);
      expect(unset.stderr).toBe(
        "qubes-demo-app: WAYLAND_DISPLAY is not set: no Wayland compositor to show the window on\n",
      );
      expect(missing.code).toBe(1);
      expect(missing.stderr).toMatch(
        /^qubes-demo-app: cannot connect to the Wayland display: [^\n]*wayland-none[^\n]*\n$/,
      );
      expect(unset.stdout + missing.stdout).toBe("");
    } finally {
      remove();
    }
  });

  it("exits with status 1 and one line naming a global the compositor lacks (xdg_wm_base)", async () => {
    const { dir, remove } = temporaryDirectory("demo-app-");
    const display = new Display();
    try {
      display.createGlobal("wl_compositor", 4, (compositor) =>
        compositor.implement({ create_surface: (surface) => surface.implement({}) }),
      );
      createShmGlobal(display);
      const name = display.addSocketAuto(dir);
      const result = await run(["--name", "work"], { XDG_RUNTIME_DIR: dir, WAYLAND_DISPLAY: name });
      expect(result.code).toBe(1);
      expect(result.stderr).toBe("qubes-demo-app: the compositor has no xdg_wm_base, which the app needs\n");
      expect(result.stdout).toBe("");
    } finally {
      display.destroy();
      remove();
    }
  });

  it("prints its usage with --help and its version with --version", async () => {
    const [help, version] = await Promise.all([run(["--help"]), run(["--version"])]);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/^usage: qubes-demo-app \[--name NAME\] \[--size WxH\]/);
    expect(help.stdout).toContain("Enter clears the line");
    expect(version.code).toBe(0);
    expect(version.stdout).toMatch(/^qubes-demo-app \d+\.\d+\.\d+\n$/);
  });
});

describe("flag parsing", () => {
  it("takes the name from --name, then QUBES_VM_NAME, then the host name", () => {
    expect(parseCli(["--name", "work"], { QUBES_VM_NAME: "other" })).toEqual({ name: "work", width: 480, height: 320 });
    expect(parseCli([], { QUBES_VM_NAME: "other" })).toMatchObject({ name: "other" });
    expect(parseCli([], {})).toMatchObject({ name: expect.any(String) });
    expect(parseCli(["-h"])).toBe("help");
  });

  it("accepts sizes 64..8192 and rejects 0, 63, 8193 and junk", () => {
    expect(parseSize("64x8192")).toEqual({ width: 64, height: 8192 });
    for (const bad of ["0x100", "63x100", "100x8193", "100", "x100", "-1x100", "100x100x1", "1e3x100"]) {
      expect(() => parseSize(bad), bad).toThrow(/--size/);
    }
  });

  it("rejects names with control characters or longer than 64 characters", () => {
    expect(() => parseCli(["--name", "a\nb"])).toThrow(/control characters/);
    expect(() => parseCli(["--name", "x".repeat(65)])).toThrow(/longer than 64/);
    expect(parseCli(["--name", "x".repeat(64)])).toMatchObject({ name: "x".repeat(64) });
  });
});

describe("the US key table", () => {
  it("maps letters, digits, punctuation and space, with Shift and Caps Lock", () => {
    expect(characterOf(30, false)).toBe("a");
    expect(characterOf(30, true)).toBe("A");
    expect(characterOf(30, false, true)).toBe("A");
    expect(characterOf(30, true, true)).toBe("a");
    expect(characterOf(2, false, true)).toBe("1");
    expect(characterOf(2, true)).toBe("!");
    expect(characterOf(12, true)).toBe("_");
    expect(characterOf(40, true)).toBe('"');
    expect(characterOf(43, false)).toBe("\\");
    expect(characterOf(53, true)).toBe("?");
    expect(characterOf(57, false)).toBe(" ");
    expect(characterOf(14, false)).toBeNull();
    expect(characterOf(28, false)).toBeNull();
    expect(characterOf(0xffff, false)).toBeNull();
  });
});
