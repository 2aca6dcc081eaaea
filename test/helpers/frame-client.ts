/**
 * test/gui-agent/peers/frame-client.ts as a child process: started, ready
 * (its "ready" line, allowed all the time a start may take), then driven
 * line by line. Every wait for an answer is bounded and says what never
 * came.
 */
import { type ChildProcess } from "node:child_process";
import { createInterface } from "node:readline";

import { spawnTs, whenReady } from "./processes.ts";

/** A running frame client. */
export interface FrameClient {
  readonly child: ChildProcess;
  /** Every line it printed so far. */
  readonly lines: readonly string[];
  /** Sends one command line. */
  send(line: string): void;
  /**
   * The first line from the `from`-th on (default: the first) that matches
   * `pattern`; rejects naming `what` after `timeoutMs`, or when the client
   * ends first (with what it printed on stderr).
   */
  waitForLine(pattern: RegExp, what: string, timeoutMs: number, from?: number): Promise<RegExpMatchArray>;
  /** Kills it and waits for its end. */
  stop(): Promise<void>;
}

/** Starts a frame client of the compositor at `socketPath` and waits until it is ready. */
export async function startFrameClient(socketPath: string): Promise<FrameClient> {
  const child = spawnTs("test/gui-agent/peers/frame-client.ts", [socketPath], { stdio: ["pipe", "pipe", "pipe"] });
  const ready = whenReady(child);
  const lines: string[] = [];
  let stderr = "";
  let ended = false;
  const watchers = new Set<() => void>();
  createInterface({ input: child.stdout! }).on("line", (line) => {
    lines.push(line);
    for (const watch of [...watchers]) watch();
  });
  child.stderr!.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk));
  const exited = new Promise<void>((resolve) =>
    child.on("close", () => {
      ended = true;
      for (const watch of [...watchers]) watch();
      resolve();
    }),
  );
  await ready;
  return {
    child,
    lines,
    send: (line) => void child.stdin!.write(`${line}\n`),
    waitForLine: (pattern, what, timeoutMs, from = 0) =>
      new Promise((resolve, reject) => {
        const finish = (error: Error | null, match?: RegExpMatchArray): void => {
          clearTimeout(timer);
          watchers.delete(check);
          if (error === null) resolve(match as RegExpMatchArray);
          else reject(error);
        };
        const check = (): void => {
          for (const line of lines.slice(from)) {
            const match = line.match(pattern);
            if (match !== null) {
              finish(null, match);
              return;
            }
          }
          if (ended) finish(new Error(`the frame client ended before ${what}:\n${stderr.slice(-2000)}`));
        };
        const timer = setTimeout(
          () =>
            finish(
              new Error(`no ${what} within ${timeoutMs} ms; the frame client said: ${lines.slice(-5).join(" | ")}`),
            ),
          timeoutMs,
        );
        watchers.add(check);
        check();
      }),
    stop: async () => {
      if (!ended) child.kill("SIGKILL");
      await exited;
    },
  };
}
