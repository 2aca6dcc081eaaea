/**
 * Fuzz target `session`: guid end to end, from the agent's bytes to the
 * host compositor's pixels. Each lane is one domain with its own real guid
 * (startGuid in this process, so the harness's leak checks see guid's fds,
 * grant mappings and SIGBUS guard slots) on the real socket vchan and memfd
 * grant backends, and a hostile agent (test/fuzz/session/agent.ts) that
 * connects again and again: handshakes (some refused, cut or silent), then
 * long streams of generated and mutated messages (test/fuzz/session/
 * generator.ts: most valid for the session's state, some at the protocol's
 * edges, a few attacks), corpus replays, answers to real CLIPBOARD_REQs
 * after a Ctrl+Shift+C on the host, and ends that are clean, cut or abrupt.
 * The hosts are real compositors: four lanes on our Desktop in this
 * process, and with FUZZ_SESSION_SWAY_LANES=N also N on a headless sway.
 * After every session guid must hold none of its
 * windows and the Desktop show none; after every run each guid's host
 * connection must answer and a fresh session's window must show its exact
 * pixels in its exact frame.
 *
 * An input is an agent message guid decoded (its `messages` counter).
 * Reactions: `handled` (a trusted message the registry applied), `clamp`,
 * `drop`, `end-session` (a violation ended the session; guid must serve
 * the next connection), `refused-grant` (a WINDOW_DUMP guid could not map),
 * `handshake-refused`, `agent-gone`, `secure-copy` / `paste` /
 * `clipboard-refused` (the clipboard), `throttled` (guid's read rate), and
 * for sway (a third-party host whose 1.7 crashes under this load, see
 * test/fuzz/session/lane.ts) `host-crashed` / `host-dropped`, after which
 * the lane starts a new sway and guid; on the Desktop a lost host is
 * unexpected.
 * Unexpected: an exception escaping guid (the process's handlers, guid's
 * `done` rejecting, a handler's error ending a session), a registry or host
 * window outliving its session, guid not serving the next connection, the
 * host dropping guid, a daemon message that does not decode, a wrong pixel.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";

import { newStats, unexpected, type FuzzInstance, type FuzzTarget } from "../harness.ts";
import { CorpusTemplates } from "../session/corpus.ts";
import { startDesktopHost, startSwayHost, type FuzzHost } from "../session/hosts.ts";
import { InputLock, Lane } from "../session/lane.ts";

/**
 * Lanes on the Desktop, and on sway (FUZZ_SESSION_SWAY_LANES, default 0):
 * sway's lanes are the slice on a compositor of another code base. Not by
 * default, because sway 1.7 crashes under this load (from 7 times in 60 000
 * messages to 40 in 470 000, and once hung): in `npm test` its lane made
 * the run fail now and then. The crashes are an open item of
 * docs/security.md; `FUZZ_SESSION_SWAY_LANES=1 npm run fuzz -- session`
 * reproduces them.
 */
const DESKTOP_LANES = 4;
const SWAY_LANES = swayLanes(process.env["FUZZ_SESSION_SWAY_LANES"]);

function swayLanes(untrusted: string | undefined): number {
  if (untrusted === undefined || untrusted === "") return 0;
  const lanes = Number(untrusted);
  if (!Number.isInteger(lanes) || lanes < 0 || lanes > 4) {
    throw new RangeError(`FUZZ_SESSION_SWAY_LANES must be 0..4, got ${JSON.stringify(untrusted)}`);
  }
  return lanes;
}
const DESKTOP_SIZE = { width: 1280, height: 800 };
const SWAY_SIZE = { width: 1024, height: 768 };
/** Messages fed while opening, before the harness measures anything. */
const PRIMING_MESSAGES = 20_000;
/** Agent domain ids: one per lane from here. */
const FIRST_DOMAIN = 40;

export const target: FuzzTarget = {
  name: "session",
  summary:
    "guid sessions end to end (vchan, grants, validator, registry, clipboard, host) on our Desktop (and sway with FUZZ_SESSION_SWAY_LANES)",
  unit: "messages",
  testCount: 60_000,
  expectReactions: ["handled", "clamp", "drop", "end-session", "refused-grant", "agent-gone", "secure-copy"],
  async open({ seed, corpus, log }): Promise<FuzzInstance> {
    const stats = newStats();
    const templates = new CorpusTemplates(corpus);
    const socketDir = mkdtempSync(path.join(tmpdir(), "fuzz-session-"));
    const clipboardDir = path.join(socketDir, "clipboard");
    const hosts: FuzzHost[] = [];
    const lanes: Lane[] = [];
    const endCodes = new Map<string, number>();
    const input = new InputLock();
    let reported = 0;
    const report = (error: unknown, where: string): void => {
      unexpected(stats, error, where);
      if (reported++ < 10)
        log(`unexpected: ${where}: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
    };
    const close = async (): Promise<void> => {
      for (const lane of lanes.splice(0)) await lane.close();
      for (const host of hosts.splice(0)) await host.close();
      rmSync(socketDir, { recursive: true, force: true });
    };
    try {
      const desktop = await startDesktopHost(DESKTOP_SIZE);
      hosts.push(desktop);
      for (let index = 0; index < DESKTOP_LANES + SWAY_LANES; index++) {
        const onSway = index >= DESKTOP_LANES;
        lanes.push(
          await Lane.start({
            index,
            domain: FIRST_DOMAIN + index,
            host: onSway ? await startSwayHost(SWAY_SIZE) : desktop,
            ...(onSway ? { restartHost: () => startSwayHost(SWAY_SIZE) } : {}),
            socketDir,
            clipboardDir,
            corpus: templates,
            seed: (seed * 7919 + index * 104_729) >>> 0,
            stats,
            input,
            endCodes,
            unexpected: report,
          }),
        );
      }
      for (const lane of lanes) await lane.warmCaches();
    } catch (error) {
      await close();
      throw error;
    }
    stats.notes.corpusMessages = templates.size;
    const decoded = (): number => lanes.reduce((sum, lane) => sum + lane.counters.messages, 0);
    // Memory first touched by a fresh process (allocator arenas, pool pages, the compositors' buffers) is
    // touched here, before the harness's first measurement, so that its RSS check sees growth, not start-up.
    const primed = decoded() + PRIMING_MESSAGES;
    try {
      await Promise.all(lanes.map((lane) => lane.runUntil(() => decoded() >= primed)));
    } catch (error) {
      await close();
      throw error;
    }
    const sync = (): void => {
      const total = (pick: (lane: Lane) => number): number => lanes.reduce((sum, lane) => sum + pick(lane), 0);
      stats.inputs = decoded();
      stats.reactions.handled = total((lane) => lane.tally.handled + lane.counters.clipboardCopies);
      stats.reactions.clamp = total((lane) => lane.counters.clamped);
      stats.reactions.drop = total((lane) => lane.counters.dropped);
      stats.reactions.throttled = total((lane) => lane.counters.throttled);
      stats.reactions["secure-copy"] = total((lane) => lane.counters.clipboardCopies);
      stats.reactions.paste = total((lane) => lane.counters.clipboardPastes);
      stats.reactions["clipboard-refused"] = total((lane) => lane.counters.clipboardRefused);
      for (const kind of ["desktop", "sway"] as const) {
        stats.notes[`${kind}Messages`] = total((lane) => (lane.host.kind === kind ? lane.counters.messages : 0));
      }
      stats.notes.sessions = total((lane) => lane.sessions);
      stats.notes.unplannedEnds = total((lane) => lane.unplannedEnds);
      stats.notes.exactChecks = total((lane) => lane.exactChecks);
      const crashes = lanes.flatMap((lane) => lane.crashes);
      if (crashes.length > 0) stats.notes.firstHostCrash = crashes[0] as string;
      stats.notes.dumps = total((lane) => lane.counters.dumps);
      stats.notes.frames = total((lane) => lane.counters.frames);
      stats.notes.endCodes = [...endCodes.entries()]
        .sort((a, b) => b[1] - a[1])
        .map(([code, count]) => `${code} ${count}`)
        .join(", ");
    };
    return {
      stats,
      async run(count: number): Promise<void> {
        const goal = decoded() + count;
        const started = performance.now();
        let lastLog = started;
        const enough = (): boolean => {
          const now = performance.now();
          if (now - lastLog > 30_000) {
            lastLog = now;
            const fed = decoded();
            const memory = process.memoryUsage();
            const rss = `${Math.round(memory.rss / 2 ** 20)} MiB (heap ${Math.round(memory.heapUsed / 2 ** 20)})`;
            log(
              `${fed} of ${goal} messages, ${Math.round((fed - (goal - count)) / ((now - started) / 1000))}/s so far, RSS ${rss}`,
            );
          }
          return decoded() >= goal;
        };
        await Promise.all(lanes.map((lane) => lane.runUntil(enough)));
        // Whatever the fuzz did, each guid still has its host, and a fresh window shows exactly.
        for (const lane of lanes) {
          try {
            await lane.ensureHost();
            await lane.checkHostAlive();
            await lane.checkExact();
          } catch (error) {
            report(error, `${lane.vmName} after the run`);
          }
        }
        for (const lane of lanes) {
          const left = await lane.host.leftovers(lane.vmName).catch((error: unknown) => [String(error)]);
          if (left.length > 0) report(new Error(`${lane.host.kind} still shows ${left.join(", ")}`), lane.vmName);
          for (const problem of lane.host.problems.splice(0)) report(new Error(problem), lane.host.kind);
        }
        for (const lane of lanes) {
          for (const error of lane.tally.errors.splice(0)) report(new Error(error), `${lane.vmName}'s guid log`);
          for (const error of lane.agent.daemonErrors.splice(0)) {
            report(new Error(`a daemon message that does not decode, ${error}`), lane.vmName);
          }
        }
        sync();
        const seconds = (performance.now() - started) / 1000;
        log(
          `run of ${count}: ${Math.round(count / seconds)} messages/s; ` +
            Object.entries(stats.notes)
              .map(([name, value]) => `${name}: ${value}`)
              .join("; "),
        );
      },
      close,
    };
  },
};
