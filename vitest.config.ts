import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    // The addon and the real programs the tests start are per process: forks,
    // not worker threads.
    pool: "forks",
    // The fuzz targets' leak checks collect garbage before they measure.
    execArgv: ["--expose-gc"],
    testTimeout: 30_000,
    hookTimeout: 30_000,
  },
});
