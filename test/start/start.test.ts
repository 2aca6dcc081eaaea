/**
 * `npm start` as a user runs it: a fresh clone of the repository, `npm ci`,
 * then `npm start`; the URL it prints opened in chromium shows both domains'
 * windows, framed in blue and green; Ctrl+C stops every process and removes
 * what it made.
 */
import { spawn, spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import path from "node:path";

import sharp from "sharp";
import { afterAll, describe, expect, it } from "vitest";

import { labelByName } from "../../decorator/index.ts";
import { launchBrowser, type TestBrowser } from "../helpers/browser.ts";
import { pollUntil } from "../helpers/guid-harness.ts";
import { READY_TIMEOUT_MS, finished, repoRoot, temporaryDirectory, within, withStartup } from "../helpers/processes.ts";

const BLUE = (labelByName("blue") as { color: number }).color;
const GREEN = (labelByName("green") as { color: number }).color;
/** `npm ci` in the clone: the packages from npm's cache, and the addon's build. */
const NPM_CI_MS = 600_000;

describe("npm start", () => {
  const clone = temporaryDirectory("qubes-start-clone-");
  let browser: TestBrowser | undefined;
  afterAll(async () => {
    await browser?.close();
    clone.remove();
  });

  it(
    "on a fresh clone after npm ci: the page shows two domains' windows framed in blue and green; Ctrl+C stops everything",
    async () => {
      const checkout = path.join(clone.dir, "repo");
      const cloned = spawnSync("git", ["clone", "--quiet", repoRoot, checkout], { encoding: "utf8" });
      expect(cloned.status, cloned.stderr).toBe(0);
      const ci = spawnSync("npm", ["ci", "--prefer-offline", "--no-audit", "--no-fund"], {
        cwd: checkout,
        encoding: "utf8",
        timeout: NPM_CI_MS,
        maxBuffer: 64 << 20,
      });
      expect(ci.status, `npm ci failed:\n${ci.stdout.slice(-3000)}\n${ci.stderr.slice(-3000)}`).toBe(0);

      const browserStarting = launchBrowser();
      const child = spawn("npm", ["start"], {
        cwd: checkout,
        env: { ...process.env, WAYLAND_DISPLAY: "" },
        stdio: ["ignore", "pipe", "pipe"],
        // Its own process group, as a terminal's foreground job: Ctrl+C signals the whole group.
        detached: true,
      });
      const result = finished(child);
      let output = "";
      child.stdout.on("data", (chunk: Buffer) => (output += chunk.toString("utf8")));
      try {
        // The whole start-up (the desktop, two agents with their apps, two guids) is the readiness allowance.
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
        const url = /^open (http:\/\/127\.0\.0\.1:\d+\/\?token=\S+)$/m.exec(output)?.[1];
        expect(url, `npm start's URL line in:\n${output}`).toBeDefined();
        browser = await browserStarting;
        const page = await browser.browser.newPage({ viewport: { width: 1400, height: 900 }, deviceScaleFactor: 1 });
        await page.goto(url as string);
        // Each frame is a 2 px ring around a window of a few hundred pixels a side.
        const counts = await pollUntil(
          async () => {
            const dataUrl = await page.evaluate<string>('document.getElementById("output").toDataURL("image/png")');
            const png = Buffer.from(dataUrl.slice(dataUrl.indexOf(",") + 1), "base64");
            const { data } = await sharp(png).removeAlpha().raw().toBuffer({ resolveWithObject: true });
            let blue = 0;
            let green = 0;
            for (let at = 0; at < data.length; at += 3) {
              const rgb = ((data[at] as number) << 16) | ((data[at + 1] as number) << 8) | (data[at + 2] as number);
              if (rgb === BLUE) blue++;
              else if (rgb === GREEN) green++;
            }
            return blue > 1000 && green > 1000 ? { blue, green } : undefined;
          },
          "both domains' frames on the page",
          60_000,
        );
        expect(counts.blue).toBeGreaterThan(1000);
        expect(counts.green).toBeGreaterThan(1000);
        await page.close();
      } finally {
        process.kill(-(child.pid as number), "SIGINT");
      }
      const { code, signal } = await within(result, 15_000, "npm start's end after SIGINT");
      // npm itself ends by the signal, as a shell job does; the script under it ends cleanly.
      expect(code === 0 || signal === "SIGINT").toBe(true);
      expect(output).not.toMatch(/npm start: /);
      for (const dir of output.matchAll(/Wayland socket (\S+)\/wayland-qubes-desktop/g)) {
        expect(existsSync(dir[1] as string)).toBe(false);
      }
      const leftovers = spawnSync("pgrep", ["-f", checkout], { encoding: "utf8" }).stdout.trim();
      expect(leftovers, "processes of the clone still running").toBe("");
    },
    withStartup(NPM_CI_MS, 3),
  );
});
