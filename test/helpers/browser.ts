/**
 * A real browser for tests: Debian's chromium driven by playwright-core.
 * One browser per test file (launching takes seconds); tests open pages in
 * it. A machine without /usr/bin/chromium fails the test with a message
 * saying how to install it: the browser is a test dependency, never a reason
 * to skip (.ci/apt-packages.txt lists it).
 */
import { existsSync } from "node:fs";

import { chromium, type Browser } from "playwright-core";

import { temporaryDirectory } from "./processes.ts";

/** Where Debian's chromium package puts the browser. */
export const CHROMIUM_PATH = "/usr/bin/chromium";

/** Headless, no GPU, and nothing that reaches the network or writes outside the test's directories. */
export const CHROMIUM_ARGS: readonly string[] = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

/**
 * How long the browser may take to start (ms): measured at 6–10 s on a busy
 * two-core machine, so this bounds a hang, not the machine.
 */
export const BROWSER_LAUNCH_TIMEOUT_MS = 60_000;

/** How long closing the browser may take before the test gives up on it (ms). */
const BROWSER_CLOSE_TIMEOUT_MS = 15_000;

/** A launched browser and the way to end it. */
export interface TestBrowser {
  readonly browser: Browser;
  /** Closes the browser (bounded) and removes its temporary home. */
  close(): Promise<void>;
}

/**
 * Launches chromium headless with {@link CHROMIUM_ARGS}, a fresh temporary
 * HOME (crash reports, dconf) and Playwright's fresh temporary profile.
 * Rejects with a clear message when chromium is not installed or does not
 * come up within {@link BROWSER_LAUNCH_TIMEOUT_MS}.
 */
export async function launchBrowser(): Promise<TestBrowser> {
  if (!existsSync(CHROMIUM_PATH)) {
    throw new Error(
      `${CHROMIUM_PATH} is missing: the desktop viewer tests need a real browser ` +
        "(apt-get install -y --no-install-recommends chromium; it is in .ci/apt-packages.txt)",
    );
  }
  const home = temporaryDirectory("qubes-browser-");
  let browser: Browser;
  try {
    browser = await chromium.launch({
      executablePath: CHROMIUM_PATH,
      args: [...CHROMIUM_ARGS],
      headless: true,
      timeout: BROWSER_LAUNCH_TIMEOUT_MS,
      env: { ...process.env, HOME: home.dir },
    });
  } catch (error) {
    home.remove();
    throw new Error(
      `chromium (${CHROMIUM_PATH}) did not start within ${BROWSER_LAUNCH_TIMEOUT_MS} ms: ${(error as Error).message}`,
    );
  }
  return {
    browser,
    async close() {
      let timer: NodeJS.Timeout | undefined;
      try {
        await Promise.race([
          browser.close(),
          new Promise<void>((_, reject) => {
            timer = setTimeout(
              () => reject(new Error(`chromium did not close within ${BROWSER_CLOSE_TIMEOUT_MS} ms`)),
              BROWSER_CLOSE_TIMEOUT_MS,
            );
          }),
        ]);
      } finally {
        clearTimeout(timer);
        home.remove();
      }
    },
  };
}
