/**
 * `npm run fuzz -- TARGET [--count N] [--seed S] [--json FILE]`: runs one
 * fuzz target of test/fuzz/targets/ (or `all` of them) for N inputs, with
 * the leak checks of test/fuzz/harness.ts, prints what it saw and exits 1
 * on an unexpected exception, a leak or a reaction never reached.
 * `npm test` runs the same targets at their short counts.
 */
import { writeFileSync } from "node:fs";
import { parseArgs } from "node:util";

import {
  describeReport,
  fuzzFailures,
  loadTarget,
  runTarget,
  targetNames,
  type FuzzReport,
} from "../test/fuzz/harness.ts";

const USAGE = `usage: npm run fuzz -- TARGET [--count N] [--seed S] [--json FILE]
  TARGET      one of: ${targetNames().join(", ")}, or all
  --count N   inputs to feed (default: 100 times the target's npm test count)
  --seed S    the PRNG's seed, to replay a run (default 1)
  --json F    also write the reports to F
Run it as node --expose-gc (npm run fuzz does) so that the leak checks collect first.`;

function fail(message: string): never {
  process.stderr.write(`fuzz: ${message}\n${USAGE}\n`);
  process.exit(2);
}

function positiveInteger(text: string | undefined, name: string): number | undefined {
  if (text === undefined) return undefined;
  const value = Number(text.replaceAll("_", ""));
  if (!Number.isSafeInteger(value) || value <= 0) fail(`${name} must be a positive integer, got "${text}"`);
  return value;
}

let parsed;
try {
  parsed = parseArgs({
    allowPositionals: true,
    options: {
      count: { type: "string" },
      seed: { type: "string" },
      json: { type: "string" },
      help: { type: "boolean", short: "h" },
    },
  });
} catch (error) {
  fail((error as Error).message);
}
if (parsed.values.help === true) {
  process.stdout.write(`${USAGE}\n`);
  process.exit(0);
}
if (parsed.positionals.length !== 1) fail("name one target");
const [name] = parsed.positionals as [string];
const names = name === "all" ? targetNames() : [name];
if (name !== "all" && !targetNames().includes(name)) fail(`no fuzz target "${name}"`);
const count = positiveInteger(parsed.values.count, "--count");
const seed = positiveInteger(parsed.values.seed, "--seed") ?? 1;
if ((globalThis as { gc?: unknown }).gc === undefined) {
  process.stderr.write("fuzz: warning: run without --expose-gc; RSS and heap growth include uncollected garbage\n");
}

const reports: FuzzReport[] = [];
let failed = false;
for (const targetName of names) {
  const target = await loadTarget(targetName);
  const inputs = count ?? target.testCount * 100;
  process.stdout.write(`${target.name}: ${target.summary}; ${inputs} ${target.unit}, seed ${seed}\n`);
  const report = await runTarget(target, {
    count: inputs,
    seed,
    log: (line) => process.stdout.write(`  ${line}\n`),
  });
  reports.push(report);
  process.stdout.write(`${describeReport(report)}\n`);
  const failures = fuzzFailures(report);
  for (const failure of failures) process.stdout.write(`  FAILED: ${failure}\n`);
  process.stdout.write(failures.length === 0 ? "  ok\n" : "");
  failed ||= failures.length > 0;
}
if (parsed.values.json !== undefined) writeFileSync(parsed.values.json, `${JSON.stringify(reports, null, 2)}\n`);
process.exit(failed ? 1 : 0);
