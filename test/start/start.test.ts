/**
 * `npm start` as a user runs it on a machine without a desktop: a headless
 * sway, two domains each with an agent, foot and a qubes-guid; both windows
 * on screen framed in their labels' colours; Ctrl+C stops every process and
 * removes what it made.
 */
import { spawn, spawnSync } from "node:child_process";
import { existsSync } from "node:fs";

import { describe, expect, it } from "vitest";

import { parsePpm, requireProgram } from "../helpers/compositors.ts";
import { pixelAt } from "../helpers/guid-harness.ts";
import { READY_TIMEOUT_MS, finished, repoRoot, within, withStartup } from "../helpers/processes.ts";

const BLUE = 0x3465a4;
const GREEN = 0x73d216;

describe("npm start", () => {
  it(
    "shows two domains' windows framed in blue and green on a headless sway, and stops everything on Ctrl+C",
    async () => {
      requireProgram("sway");
      requireProgram("foot");
      const child = spawn("npm", ["start", "--", "--headless", "--vnc-port", "0", "--app", "foot"], {
        cwd: repoRoot,
        env: { ...process.env, WAYLAND_DISPLAY: "" },
        stdio: ["ignore", "pipe", "pipe"],
        // Its own process group, as a terminal's foreground job: Ctrl+C signals the whole group.
        detached: true,
      });
      const result = finished(child);
      let output = "";
      child.stdout.on("data", (chunk: Buffer) => (output += chunk.toString("utf8")));
      // The whole start-up (sway, two agents, two guids, two foots) is the readiness allowance.
      await within(
        new Promise<void>((resolve, reject) => {
          const check = (): void => {
            if (/^ready: 2 domains/m.test(output)) resolve();
          };
          child.stdout.on("data", check);
          child.once("exit", (code) => reject(new Error(`npm start exited (${code}) before ready:\n${output}`)));
        }),
        READY_TIMEOUT_MS,
        "npm start's ready line",
      );
      const runtimeDir = /XDG_RUNTIME_DIR=(\S+) WAYLAND_DISPLAY=wayland-1/.exec(output)?.[1];
      if (runtimeDir === undefined) throw new Error(`npm start named no sway runtime dir:\n${output}`);
      const grim = spawnSync("grim", ["-t", "ppm", "-"], {
        env: { PATH: process.env.PATH, XDG_RUNTIME_DIR: runtimeDir, WAYLAND_DISPLAY: "wayland-1" },
        timeout: READY_TIMEOUT_MS,
        maxBuffer: 64 << 20,
      });
      expect(grim.status, grim.stderr?.toString()).toBe(0);
      const image = parsePpm(grim.stdout);
      const counts = new Map<number, number>();
      for (let y = 0; y < image.height; y++) {
        for (let x = 0; x < image.width; x++) {
          const pixel = pixelAt(image, x, y);
          if (pixel === BLUE || pixel === GREEN) counts.set(pixel, (counts.get(pixel) ?? 0) + 1);
        }
      }
      // Each frame is a 2 px ring around a window of a few hundred pixels a side.
      expect(counts.get(BLUE) ?? 0).toBeGreaterThan(1000);
      expect(counts.get(GREEN) ?? 0).toBeGreaterThan(500);

      process.kill(-(child.pid as number), "SIGINT");
      const { code, signal, stdout: printed } = await within(result, 15_000, "npm start's end after SIGINT");
      // npm itself ends by the signal, as a shell job does; the script under it ends cleanly.
      expect(code === 0 || signal === "SIGINT").toBe(true);
      expect(printed).not.toMatch(/npm start: /);
      expect(existsSync(runtimeDir)).toBe(false);
      const vchanDir = /"socket":"([^"]*qubes-start-vchan-[^/"]+)\//.exec(output)?.[1];
      expect(vchanDir, "the agents' socket directory in npm start's output").toBeDefined();
      expect(existsSync(vchanDir as string)).toBe(false);
    },
    withStartup(60_000),
  );
});
