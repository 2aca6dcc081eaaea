/**
 * Where the programs (qubes-gui-agent, qubes-guid) write their logs: on a
 * terminal, one human-readable line per entry (pino-pretty, in this process);
 * anywhere else (a file, a pipe, journald) pino's JSON lines, one object per
 * line, for machines to read. Both go to stderr and are written synchronously,
 * so the last line before an exit is never lost.
 */
import pino from "pino";
import pretty from "pino-pretty";

/** The destination for `pino(options, logDestination())`: pretty on a TTY, JSON otherwise. */
export function logDestination(
  stderr: NodeJS.WriteStream = process.stderr,
  env: NodeJS.ProcessEnv = process.env,
): pino.DestinationStream {
  if (stderr.isTTY !== true) return pino.destination({ dest: 2, sync: true });
  return pretty({
    destination: 2,
    sync: true,
    colorize: env["NO_COLOR"] === undefined && stderr.hasColors(),
    translateTime: "SYS:HH:MM:ss.l",
    ignore: "pid,hostname",
    singleLine: true,
  });
}
