import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    // The addon and the real programs the tests start are per process: forks,
    // not worker threads.
    pool: "forks",
    testTimeout: 30_000,
    hookTimeout: 30_000,
  },
});
