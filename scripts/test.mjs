#!/usr/bin/env node
// The README's test command: static checks (types, lint with the layer rules,
// formatting), then the vitest suite, then one closing line of our own,
// `N passed, M failed` (`, K skipped` when any were), computed from this run.
// Each static check counts as one test. Extra arguments go to vitest.
import { spawnSync } from "node:child_process";
import { readFileSync, rmSync } from "node:fs";

const resultsFile = ".vitest-results.json";
let passed = 0;
let failed = 0;
let skipped = 0;

function check(name, command, args) {
  process.stdout.write(`\n== ${name}: ${command} ${args.join(" ")}\n`);
  const run = spawnSync(command, args, { stdio: "inherit" });
  if (run.status === 0) {
    passed += 1;
  } else {
    failed += 1;
    process.stdout.write(`== ${name} FAILED (exit ${run.status ?? run.signal})\n`);
  }
}

const extra = process.argv.slice(2);
if (extra.length === 0) {
  check("typecheck", "npx", ["tsc", "--noEmit", "-p", "tsconfig.json"]);
  check("lint", "npx", ["eslint", "."]);
  check("format", "npx", ["prettier", "--check", "."]);
}

rmSync(resultsFile, { force: true });
process.stdout.write("\n== tests: vitest run\n");
const vitest = spawnSync(
  "npx",
  ["vitest", "run", "--reporter=default", "--reporter=json", `--outputFile.json=${resultsFile}`, ...extra],
  { stdio: "inherit" },
);
let report;
try {
  report = JSON.parse(readFileSync(resultsFile, "utf8"));
} catch {
  report = undefined;
}
if (report === undefined) {
  failed += 1;
  process.stdout.write(`== vitest produced no report (exit ${vitest.status ?? vitest.signal})\n`);
} else {
  passed += report.numPassedTests;
  failed += report.numFailedTests;
  skipped += report.numPendingTests + report.numTodoTests;
  // A file that failed to load has no tests but counts as a failure.
  for (const file of report.testResults) {
    if (file.status === "failed" && file.assertionResults.length === 0) failed += 1;
  }
  if (vitest.status !== 0 && failed === 0) failed += 1;
}

process.stdout.write(`\n${passed} passed, ${failed} failed${skipped > 0 ? `, ${skipped} skipped` : ""}\n`);
process.exit(failed > 0 ? 1 : 0);
