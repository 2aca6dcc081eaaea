/**
 * `npm run bench [-- --smoke] [--json FILE] [FILTER...]`: runs every
 * bench/*.bench.ts whose file name contains one of the filters (all when
 * none), one case file at a time, and prints each figure beside its baseline.
 */
import { readdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import { parseArgs } from "node:util";

import { benchDir, formatRows, ratio, type BenchContext, type BenchRow } from "./lib.ts";

const { values, positionals } = parseArgs({
  options: { smoke: { type: "boolean", default: false }, json: { type: "string" } },
  allowPositionals: true,
});

const smoke = values.smoke ?? false;
const context: BenchContext = {
  smoke,
  iterations: (full, smokeCount = Math.max(1, Math.ceil(full / 100))) => (smoke ? smokeCount : full),
};

const files = readdirSync(benchDir)
  .filter((file) => file.endsWith(".bench.ts"))
  .filter((file) => positionals.length === 0 || positionals.some((filter) => file.includes(filter)))
  .sort();
if (files.length === 0) {
  process.stderr.write(`no benchmark matches ${positionals.join(", ")}\n`);
  process.exit(2);
}

const all: Array<BenchRow & { file: string; ratio?: number }> = [];
for (const file of files) {
  process.stdout.write(`\n${file}${smoke ? " (smoke)" : ""}\n`);
  const module = (await import(path.join(benchDir, file))) as {
    default: (context: BenchContext) => Promise<BenchRow[]>;
  };
  const rows = await module.default(context);
  for (const line of formatRows(rows)) process.stdout.write(`${line}\n`);
  for (const row of rows) all.push({ ...row, file, ratio: ratio(row) });
}
if (values.json !== undefined) writeFileSync(values.json, JSON.stringify(all, null, 2));
