/**
 * Fuzz target `config`: guid.conf, through the parser guid runs
 * (parseGuidConfig; every 64th input also through loadGuidConfig from a
 * file). Inputs are the corpus's files (the example guid.conf of the README
 * and hand-written ones), random settings built from the keys guid.conf
 * knows with valid and hostile values in random libconfig spellings, and
 * byte-level mutations of both. The parser may only return a configuration
 * whose every field is within its documented range, or throw a ConfigError
 * whose message names the file and a line inside it. Anything else — another
 * exception, an out-of-range value, an error without its place, a parse
 * that takes over a second — is unexpected.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";

import {
  ConfigError,
  MAX_GUID_CONFIG_BYTES,
  TRAYICON_MODES,
  loadGuidConfig,
  parseGuidConfig,
  type GuidConfig,
} from "../../../guid/config.ts";
import {
  HOSTILE_U32,
  Random,
  mutate,
  newStats,
  react,
  unexpected,
  type FuzzInstance,
  type FuzzStats,
  type FuzzTarget,
} from "../harness.ts";

const FILE = "fuzz/guid.conf";
/** A parse of at most a MiB that takes longer than this is a complexity bug. */
const SLOW_PARSE_MS = 1000;

const BOOLEAN_KEYS = ["allow_fullscreen", "override_redirect_protection", "allow_utf8_titles"];
const INTEGER_KEYS = ["max_clipboard_size", "startup_timeout", "log_level", "events_max_delay", "border_width"];
const STRING_KEYS = [
  "secure_copy_sequence",
  "secure_paste_sequence",
  "trayicon_mode",
  "override_redirect",
  "window_background_color",
];
const STRINGS = [
  "Ctrl-Shift-c",
  "Ctrl-Shift-v",
  "Mod4-Alt-Ctrl-Shift-Super-x",
  "none",
  "",
  "Ctrl-",
  "-",
  "Shift-Shift-c",
  ...TRAYICON_MODES,
  "allow",
  "disabled",
  "0x3465a4",
  "#73d216",
  "green",
  "grey",
  "0x1000000",
  "not a colour",
  "\u00e9\u{1f600}",
  "\\\\\\",
  "a".repeat(300),
];
const QUBES = ["work", "personal", "dom0", "*", "a", "A-b_c.d", "1bad", "x".repeat(40), "é"];

function randomScalar(random: Random): string {
  switch (random.below(8)) {
    case 0:
      return random.pick(["true", "false", "TRUE", "False", "yes", "on"]);
    case 1:
      return String(random.below(4) === 0 ? random.pick(HOSTILE_U32) : random.below(70000));
    case 2:
      return `0x${random.pick(HOSTILE_U32).toString(16)}${random.oneIn(4) ? "L" : ""}`;
    case 3:
      return `-${random.below(100000)}`;
    case 4:
      return random.pick(["1.5", "1e3", "-0.0", ".5", "1e999", "0x", "08", "9999999999999999999999"]);
    default:
      return JSON.stringify(random.pick(STRINGS));
  }
}

function randomKey(random: Random): string {
  const roll = random.below(20);
  if (roll < 5) return random.pick(BOOLEAN_KEYS);
  if (roll < 11) return random.pick(INTEGER_KEYS);
  if (roll < 17) return random.pick(STRING_KEYS);
  if (roll < 18) return "paste_policy";
  return random.pick(["unknown_key", "Max_Clipboard_Size", "_x", "a.b", "global", "VM"]);
}

function randomSetting(random: Random, depth: number): string {
  const key = randomKey(random);
  const assign = random.pick([" = ", ": ", "=", " :"]);
  const end = random.pick([";", ";", ",", "", ";;"]);
  if (key === "paste_policy" || (depth < 3 && random.oneIn(12))) {
    const rules = Array.from({ length: random.below(4) }, () => {
      const fields = [
        `source = ${JSON.stringify(random.pick(QUBES))};`,
        `target = ${JSON.stringify(random.pick(QUBES))};`,
        `action = ${JSON.stringify(random.pick(["allow", "deny", "ask", ""]))};`,
      ].filter(() => !random.oneIn(8));
      return `{ ${fields.join(" ")} }`;
    });
    const [open, close] = random.oneIn(6) ? ["[", "]"] : ["(", ")"];
    return `${key}${assign}${open} ${rules.join(", ")} ${close}${end}`;
  }
  if (depth < 3 && random.oneIn(16)) return `${key}${assign}{ ${randomSettings(random, depth + 1)} }${end}`;
  return `${key}${assign}${randomScalar(random)}${end}`;
}

function randomSettings(random: Random, depth: number): string {
  return Array.from({ length: random.below(6) }, () => randomSetting(random, depth)).join(
    random.pick(["\n", " ", "\n# c\n", "\n// c\n", "/* c\n */"]),
  );
}

/** A guid.conf built from the keys guid knows: mostly well-formed, often with values out of range. */
function randomConfig(random: Random): string {
  const parts: string[] = [];
  if (!random.oneIn(6)) parts.push(`global: {\n${randomSettings(random, 1)}\n};`);
  if (random.oneIn(2)) {
    const vms = Array.from(
      { length: random.below(3) },
      () => `${random.pick(QUBES)}: {\n${randomSettings(random, 2)}\n};`,
    );
    parts.push(`VM: {\n${vms.join("\n")}\n};`);
  }
  if (random.oneIn(20)) parts.push(random.pick(['@include "/etc/passwd"', "other = 1;", "{", "}", "};", "\0"]));
  return parts.join("\n");
}

/** What a returned configuration must satisfy (its documented ranges). */
function outOfRange(config: GuidConfig): string | null {
  const within = (value: number, low: number, high: number): boolean =>
    Number.isInteger(value) && value >= low && value <= high;
  if (!within(config.maxClipboardSize, 256, 256000)) return `maxClipboardSize ${config.maxClipboardSize}`;
  if (!within(config.startupTimeout, 0, 3600)) return `startupTimeout ${config.startupTimeout}`;
  if (!within(config.logLevel, 0, 2)) return `logLevel ${config.logLevel}`;
  if (!within(config.eventsMaxDelay, 0, 5000)) return `eventsMaxDelay ${config.eventsMaxDelay}`;
  if (!within(config.borderWidth, 1, 16)) return `borderWidth ${config.borderWidth}`;
  if (!within(config.windowBackgroundColor, 0, 0xffffff))
    return `windowBackgroundColor ${config.windowBackgroundColor}`;
  if (!TRAYICON_MODES.includes(config.trayiconMode)) return `trayiconMode ${config.trayiconMode}`;
  if (config.overrideRedirect !== "allow" && config.overrideRedirect !== "disabled") return "overrideRedirect";
  for (const rule of config.pastePolicy) {
    if (rule.action !== "allow" && rule.action !== "deny") return `paste rule action ${rule.action}`;
  }
  if (!Object.isFrozen(config)) return "the configuration is not frozen";
  return null;
}

/** Checks one outcome of a parse of `text`; counts it. */
function judge(stats: FuzzStats, text: string, file: string, run: () => GuidConfig): void {
  const started = performance.now();
  try {
    const config = run();
    const wrong = outOfRange(config);
    if (wrong === null) react(stats, "parsed");
    else unexpected(stats, new Error(`accepted an out-of-range value: ${wrong}`), JSON.stringify(text.slice(0, 200)));
  } catch (error) {
    if (!(error instanceof ConfigError)) {
      unexpected(stats, error, JSON.stringify(text.slice(0, 200)));
      return;
    }
    const lines = text.split("\n").length;
    if (error.file !== file || !error.message.startsWith(file) || error.line < 0 || error.line > lines + 1) {
      unexpected(stats, new Error(`a ConfigError without its place: ${error.message}`), JSON.stringify(text));
      return;
    }
    react(stats, error.code.toLowerCase());
  }
  const elapsed = performance.now() - started;
  if (elapsed > SLOW_PARSE_MS) {
    unexpected(stats, new Error(`parsing ${text.length} characters took ${elapsed.toFixed(0)} ms`));
  }
}

export const target: FuzzTarget = {
  name: "config",
  summary: "guid.conf through parseGuidConfig (and loadGuidConfig from a file)",
  unit: "files",
  testCount: 20_000,
  expectReactions: ["parsed", "syntax", "unknown_key", "out_of_range", "wrong_type", "bad_value", "duplicate_key"],
  open({ seed, corpus }): Promise<FuzzInstance> {
    const random = new Random(seed);
    const stats = newStats();
    const dir = mkdtempSync(path.join(tmpdir(), "fuzz-config-"));
    const texts = corpus.map((bytes) => Buffer.from(bytes).toString("utf8"));
    const encoder = new TextEncoder();
    return Promise.resolve({
      stats,
      async run(count: number): Promise<void> {
        for (let i = 0; i < count; i++) {
          let text: string;
          const roll = random.below(10);
          if (roll < 3 && texts.length > 0) {
            text = random.pick(texts);
          } else {
            text = roll < 6 || texts.length === 0 ? randomConfig(random) : random.pick(texts);
            if (random.below(3) > 0) {
              const other = texts.length > 0 ? encoder.encode(random.pick(texts)) : undefined;
              // latin1 keeps every mutated byte as one character: control bytes, NULs and lone high bytes reach the parser.
              text = Buffer.from(mutate(random, encoder.encode(text), other)).toString(
                random.oneIn(2) ? "latin1" : "utf8",
              );
            }
          }
          if (random.oneIn(2000)) text = text.repeat(Math.ceil(MAX_GUID_CONFIG_BYTES / Math.max(1, text.length)) + 1);
          stats.inputs += 1;
          stats.bytes += text.length;
          const vmName = random.oneIn(2) ? random.pick(QUBES) : undefined;
          if (random.oneIn(64)) {
            const file = path.join(dir, "guid.conf");
            writeFileSync(file, text, "latin1");
            let config: GuidConfig | null = null;
            let failure: unknown = null;
            try {
              config = await loadGuidConfig(file, vmName);
            } catch (error) {
              failure = error;
            }
            judge(stats, text, file, () => {
              if (config !== null) return config;
              throw failure;
            });
          } else {
            judge(stats, text, FILE, () => parseGuidConfig(text, FILE, vmName));
          }
        }
      },
      close(): Promise<void> {
        rmSync(dir, { recursive: true, force: true });
        return Promise.resolve();
      },
    });
  },
};
