/**
 * The fuzz harness: what every target under test/fuzz/targets/ implements,
 * the corpus it starts from, the mutations it applies, and the run that
 * feeds a target and checks the process for leaks around it.
 *
 * A target is opened once, fed a warm-up slice, measured, fed the main
 * count, measured again, and closed. Leaks are what grew between the two
 * measurements while the target ran (fds, mappings, SIGBUS guard slots,
 * RSS and heap after a collection) and what the closed target left behind
 * (fds, mappings, guard slots). "Unexpected" is anything that threw outside
 * the reactions a target names (for protocol/: clamp, drop, end the
 * session), counted by the target and by the process's own handlers of
 * uncaught exceptions and unhandled rejections while the run lasts.
 *
 * `npm test` runs every target at its `testCount` (test/fuzz/fuzz.test.ts);
 * `npm run fuzz -- TARGET --count N` runs one for as long as asked
 * (scripts/fuzz.ts).
 */
import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

import { memoryStats } from "../../native/index.ts";
import { concat } from "../protocol/bytes.ts";

export { concat };

/** What a target counted so far. */
export interface FuzzStats {
  /** Inputs fed (messages, requests, files: the target's `unit`). */
  inputs: number;
  bytes: number;
  /** How often each expected reaction happened, by the target's names for them. */
  reactions: Record<string, number>;
  /** Exceptions outside the expected reactions. */
  unexpected: number;
  firstUnexpected: string | null;
  /** Extra figures a target reports (peak queue, windows shown, ...). */
  notes: Record<string, number | string>;
}

/** One opened target. */
export interface FuzzInstance {
  /** Feeds `count` more inputs. Hostile input never makes it reject: what threw is counted in `stats.unexpected`. */
  run(count: number): Promise<void>;
  readonly stats: FuzzStats;
  /** Releases everything the target opened; bounded. */
  close(): Promise<void>;
}

/** What {@link FuzzTarget.open} gets. */
export interface FuzzOpenOptions {
  seed: number;
  /** The target's corpus: test/fuzz/corpus/TARGET/*, each file one input. */
  corpus: readonly Uint8Array[];
  /** Progress lines (the long runs print them). */
  log: (line: string) => void;
}

/** A parser of untrusted bytes, and how to fuzz it. */
export interface FuzzTarget {
  readonly name: string;
  /** One line: what is fed to what. */
  readonly summary: string;
  /** What an input is ("messages", "requests", ...). */
  readonly unit: string;
  /** The count `npm test` feeds. */
  readonly testCount: number;
  /** Reactions a run of `testCount` must reach (so that a fuzzer that only ever hits one path fails). */
  readonly expectReactions: readonly string[];
  open(options: FuzzOpenOptions): Promise<FuzzInstance>;
}

/** A fresh {@link FuzzStats}. */
export function newStats(): FuzzStats {
  return { inputs: 0, bytes: 0, reactions: {}, unexpected: 0, firstUnexpected: null, notes: {} };
}

/** Counts one reaction. */
export function react(stats: FuzzStats, reaction: string, count = 1): void {
  stats.reactions[reaction] = (stats.reactions[reaction] ?? 0) + count;
}

/** Counts one exception outside the expected reactions, keeping the first. */
export function unexpected(stats: FuzzStats, error: unknown, where = ""): void {
  stats.unexpected += 1;
  const text = error instanceof Error ? (error.stack ?? error.message) : String(error);
  stats.firstUnexpected ??= where === "" ? text : `${where}: ${text}`;
}

// ---- randomness and mutation ----

/** A small deterministic PRNG (xorshift32), so that a failing seed replays. */
export class Random {
  #state: number;
  constructor(seed: number) {
    this.#state = seed >>> 0 || 0x9e3779b9;
  }
  u32(): number {
    let x = this.#state;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    this.#state = x >>> 0;
    return this.#state;
  }
  /** 0 ≤ n < `bound`. */
  below(bound: number): number {
    return this.u32() % bound;
  }
  /** True one time in `n`. */
  oneIn(n: number): boolean {
    return this.below(n) === 0;
  }
  pick<T>(items: readonly T[]): T {
    return items[this.below(items.length)] as T;
  }
  bytes(n: number): Uint8Array {
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i++) out[i] = this.u32() & 0xff;
    return out;
  }
}

/** 32-bit values that sit on the edges of the protocol's and the system's limits. */
export const HOSTILE_U32: readonly number[] = [
  0, 1, 2, 0x7f, 0x80, 0xff, 0x100, 0xffff, 0x10000, 6144, 6145, 16384, 16385, 256000, 256001, 0x7fffffff, 0x80000000,
  0xfffffffe, 0xffffffff,
];

/**
 * One random mutation of `input` (a new array; `input` is not changed):
 * bytes flipped, a 32-bit word set to a hostile value, a cut, a random
 * insertion, a slice repeated, or a splice with `other`.
 */
export function mutate(random: Random, input: Uint8Array, other?: Uint8Array): Uint8Array {
  const bytes = new Uint8Array(input);
  if (bytes.length === 0) return random.bytes(1 + random.below(32));
  switch (random.below(7)) {
    case 0: {
      const flips = 1 + random.below(4);
      for (let i = 0; i < flips; i++) {
        const at = random.below(bytes.length);
        bytes[at] = (bytes[at] as number) ^ (1 << random.below(8));
      }
      return bytes;
    }
    case 1: {
      if (bytes.length < 4) return bytes;
      const at = random.below(bytes.length - 3) & ~(random.oneIn(4) ? 0 : 3);
      new DataView(bytes.buffer).setUint32(at, random.pick(HOSTILE_U32), true);
      return bytes;
    }
    case 2:
      return bytes.subarray(0, random.below(bytes.length));
    case 3: {
      const at = random.below(bytes.length + 1);
      return concat(bytes.subarray(0, at), random.bytes(1 + random.below(16)), bytes.subarray(at));
    }
    case 4: {
      const start = random.below(bytes.length);
      const slice = bytes.subarray(start, start + 1 + random.below(64));
      return concat(bytes, ...Array.from({ length: 1 + random.below(8) }, () => slice));
    }
    case 5: {
      if (other === undefined || other.length === 0) return bytes.subarray(random.below(bytes.length));
      return concat(bytes.subarray(0, random.below(bytes.length)), other.subarray(random.below(other.length)));
    }
    default:
      bytes[random.below(bytes.length)] = random.u32() & 0xff;
      return bytes;
  }
}

// ---- corpus ----

const FUZZ_DIR = path.dirname(fileURLToPath(import.meta.url));

/** The targets, by the files in test/fuzz/targets/ (one module each, exporting `target`). */
export function targetNames(): string[] {
  return readdirSync(path.join(FUZZ_DIR, "targets"))
    .filter((file) => file.endsWith(".ts"))
    .map((file) => file.slice(0, -3))
    .sort();
}

/** Loads a target by name; rejects naming the known ones when there is no such target. */
export async function loadTarget(name: string): Promise<FuzzTarget> {
  const names = targetNames();
  if (!names.includes(name)) throw new Error(`no fuzz target "${name}"; the targets are: ${names.join(", ")}`);
  const module = (await import(path.join(FUZZ_DIR, "targets", `${name}.ts`))) as { target?: FuzzTarget };
  if (module.target === undefined) throw new Error(`test/fuzz/targets/${name}.ts exports no target`);
  return module.target;
}

/** test/fuzz/corpus/NAME/*: each file one input, in name order (README.md, which says how they were made, aside); empty when there is no such directory. */
export function loadCorpus(name: string): Uint8Array[] {
  const dir = path.join(FUZZ_DIR, "corpus", name);
  let files: string[];
  try {
    files = readdirSync(dir).sort();
  } catch {
    return [];
  }
  return files.filter((file) => file !== "README.md").map((file) => new Uint8Array(readFileSync(path.join(dir, file))));
}

// ---- leaks ----

/** What the process holds at one moment. */
export interface ResourceSnapshot {
  fds: number;
  mappings: number;
  mappedBytes: number;
  guardSlots: number;
  rssMiB: number;
  heapMiB: number;
}

const MiB = 2 ** 20;

function gc(): void {
  (globalThis as { gc?: () => void }).gc?.();
}

export function snapshot(): ResourceSnapshot {
  const memory = process.memoryUsage();
  const mapped = memoryStats();
  return {
    // The listing's own directory fd is open while it is read: not counted.
    fds: readdirSync("/proc/self/fd").length - 1,
    mappings: mapped.mappings,
    mappedBytes: mapped.mappedBytes,
    guardSlots: mapped.guardSlotsInUse,
    rssMiB: memory.rss / MiB,
    heapMiB: memory.heapUsed / MiB,
  };
}

const tick = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * A snapshot once the process has settled: closes and finalizers that were
 * pending have run. Collects (when --expose-gc) and waits up to `boundMs`
 * for the fd, mapping and slot counts to come down to `floor`.
 */
export async function settledSnapshot(floor?: ResourceSnapshot, boundMs = 3000): Promise<ResourceSnapshot> {
  const deadline = performance.now() + boundMs;
  for (;;) {
    gc();
    await tick(20);
    gc();
    const now = snapshot();
    const down =
      floor === undefined ||
      (now.fds <= floor.fds && now.mappings <= floor.mappings && now.guardSlots <= floor.guardSlots);
    if (down || performance.now() > deadline) return now;
    await tick(100);
  }
}

/** How much may grow while a target runs before it counts as a leak. */
export interface LeakBounds {
  /** RSS growth over the main run, after a collection. */
  rssMiB: number;
  heapMiB: number;
}

export const DEFAULT_LEAK_BOUNDS: LeakBounds = { rssMiB: 64, heapMiB: 32 };

/** What a run found. */
export interface FuzzReport {
  target: string;
  unit: string;
  seed: number;
  count: number;
  stats: FuzzStats;
  seconds: number;
  perSecond: number;
  /** Process-wide uncaught exceptions and unhandled rejections during the run. */
  uncaught: number;
  firstUncaught: string | null;
  /** Before opening, after the warm-up, after the main run, after closing. */
  resources: { before: ResourceSnapshot; warm: ResourceSnapshot; run: ResourceSnapshot; closed: ResourceSnapshot };
  /** Each leak found, in words; empty when none. */
  leaks: string[];
  /** Expected reactions the run never reached. */
  missingReactions: string[];
}

/** Whether a report shows a failure: an unexpected exception, a leak, too few inputs, or a reaction never reached. */
export function fuzzFailures(report: FuzzReport, options: { requireReactions?: boolean } = {}): string[] {
  const failures: string[] = [];
  if (report.stats.unexpected > 0) {
    failures.push(`${report.stats.unexpected} unexpected exception(s), the first: ${report.stats.firstUnexpected}`);
  }
  if (report.uncaught > 0) failures.push(`${report.uncaught} uncaught, the first: ${report.firstUncaught}`);
  failures.push(...report.leaks.map((leak) => `leak: ${leak}`));
  if (report.stats.inputs < report.count) failures.push(`only ${report.stats.inputs} of ${report.count} inputs fed`);
  if (options.requireReactions ?? true) {
    failures.push(...report.missingReactions.map((reaction) => `the reaction "${reaction}" was never reached`));
  }
  return failures;
}

function leaksBetween(from: ResourceSnapshot, to: ResourceSnapshot, what: string, bounds: LeakBounds | null): string[] {
  const leaks: string[] = [];
  if (to.fds > from.fds) leaks.push(`${to.fds - from.fds} fd(s) ${what}`);
  if (to.mappings > from.mappings) leaks.push(`${to.mappings - from.mappings} mapping(s) ${what}`);
  if (to.guardSlots > from.guardSlots) leaks.push(`${to.guardSlots - from.guardSlots} SIGBUS guard slot(s) ${what}`);
  if (bounds !== null) {
    const rss = to.rssMiB - from.rssMiB;
    const heap = to.heapMiB - from.heapMiB;
    if (rss > bounds.rssMiB) leaks.push(`RSS grew ${rss.toFixed(1)} MiB ${what} (bound ${bounds.rssMiB})`);
    if (heap > bounds.heapMiB) leaks.push(`heap grew ${heap.toFixed(1)} MiB ${what} (bound ${bounds.heapMiB})`);
  }
  return leaks;
}

/** Options of {@link runTarget}. */
export interface RunOptions {
  count: number;
  seed?: number;
  /** Inputs fed before the first measurement; default a tenth of `count`, at least 1, at most 100 000. */
  warmup?: number;
  bounds?: LeakBounds;
  log?: (line: string) => void;
}

/** Opens `target`, feeds it, measures around it, closes it, and reports; rejects only when opening or closing fails. */
export async function runTarget(target: FuzzTarget, options: RunOptions): Promise<FuzzReport> {
  const seed = options.seed ?? 1;
  const log = options.log ?? (() => undefined);
  const warmup = options.warmup ?? Math.min(100_000, Math.max(1, Math.floor(options.count / 10)));
  let uncaught = 0;
  let firstUncaught: string | null = null;
  const onUncaught = (error: unknown): void => {
    uncaught += 1;
    firstUncaught ??= error instanceof Error ? (error.stack ?? error.message) : String(error);
  };
  process.on("uncaughtException", onUncaught);
  process.on("unhandledRejection", onUncaught);
  try {
    const before = await settledSnapshot();
    const instance = await target.open({ seed, corpus: loadCorpus(target.name), log });
    let warm: ResourceSnapshot;
    let run: ResourceSnapshot;
    let seconds: number;
    let fed: number;
    try {
      await instance.run(warmup);
      warm = await settledSnapshot();
      const fedBefore = instance.stats.inputs;
      const started = performance.now();
      await instance.run(options.count);
      seconds = (performance.now() - started) / 1000;
      fed = instance.stats.inputs - fedBefore;
      run = await settledSnapshot(warm);
    } finally {
      await instance.close();
    }
    const closed = await settledSnapshot(before);
    const stats = instance.stats;
    const leaks = [
      ...leaksBetween(warm, run, "while it ran", options.bounds ?? DEFAULT_LEAK_BOUNDS),
      ...leaksBetween(before, closed, "left after closing", null),
    ];
    const missingReactions = target.expectReactions.filter((reaction) => (stats.reactions[reaction] ?? 0) === 0);
    return {
      target: target.name,
      unit: target.unit,
      seed,
      count: options.count,
      stats: { ...stats, inputs: fed },
      seconds,
      perSecond: seconds > 0 ? fed / seconds : 0,
      uncaught,
      firstUncaught,
      resources: { before, warm, run, closed },
      leaks,
      missingReactions,
    };
  } finally {
    process.off("uncaughtException", onUncaught);
    process.off("unhandledRejection", onUncaught);
  }
}

/** One line of a report, for people. */
export function describeReport(report: FuzzReport): string {
  const { stats, resources } = report;
  const reactions = Object.entries(stats.reactions)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([name, count]) => `${name} ${count}`)
    .join(", ");
  const growth = (key: "rssMiB" | "heapMiB"): string => (resources.run[key] - resources.warm[key]).toFixed(1);
  return (
    `${report.target}: ${stats.inputs} ${report.unit} (${(stats.bytes / MiB).toFixed(1)} MiB) in ` +
    `${report.seconds.toFixed(1)} s, ${Math.round(report.perSecond)} ${report.unit}/s, seed ${report.seed}; ` +
    `reactions: ${reactions === "" ? "none" : reactions}; unexpected ${stats.unexpected + report.uncaught}; ` +
    `leaks ${report.leaks.length} (fds ${resources.warm.fds}→${resources.run.fds}→${resources.closed.fds} of ` +
    `${resources.before.fds}, mappings ${resources.run.mappings - resources.warm.mappings}, guard slots ` +
    `${resources.run.guardSlots - resources.warm.guardSlots}, RSS +${growth("rssMiB")} MiB, heap +${growth("heapMiB")} MiB)`
  );
}
