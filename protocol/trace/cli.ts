/**
 * `qubes-gui-trace`, the protocol's WAYLAND_DEBUG: decodes raw GUI protocol
 * bytes into one JSON object per line, encodes such lines back into bytes, and
 * sits between an agent and a daemon on vchan-socket paths printing both
 * directions live without changing a byte. Exit status 2 on bad flags or
 * malformed input.
 */
import { createReadStream, unlinkSync } from "node:fs";
import net from "node:net";
import { createInterface } from "node:readline";
import { parseArgs } from "node:util";

import {
  QUBES_GUID_PROTOCOL_VERSION,
  StreamDecoder,
  encodeMessage,
  encodeVersion,
  encodeXconf,
  negotiateVersion,
  protocolVersion,
  type DecodeResult,
  type Side,
} from "../index.ts";
import { messageFromJson, messageToJson } from "./json.ts";

const USAGE = `usage:
  qubes-gui-trace decode --from agent|daemon [--handshake] [--version 1.x] [FILE]
  qubes-gui-trace encode --from agent|daemon [--handshake] [--version 1.x] [--any-direction]
  qubes-gui-trace proxy --listen PATH --connect PATH [--version 1.x] [--no-handshake]
`;

/** A problem with the command line: reported with the usage, exit status 2. */
class UsageError extends Error {}

function parseSide(value: string | undefined): Side {
  if (value === "agent" || value === "daemon") return value;
  throw new UsageError(
    value === undefined ? "--from is required (agent or daemon)" : `--from must be agent or daemon, got "${value}"`,
  );
}

function parseVersion(value: string | undefined): number {
  if (value === undefined) return QUBES_GUID_PROTOCOL_VERSION;
  const match = /^(\d+)\.(\d+)$/.exec(value);
  if (match === null || Number(match[1]) !== 1 || Number(match[2]) > 0xffff) {
    throw new UsageError(`--version must look like 1.8, got "${value}"`);
  }
  return protocolVersion(1, Number(match[2]));
}

/** Writes lines to stdout in batches, respecting back-pressure. */
class LineWriter {
  private pending: string[] = [];
  private size = 0;

  line(text: string): void {
    this.pending.push(text);
    this.size += text.length;
    if (this.size > 1 << 16) this.flushSoon();
  }

  private flushSoon(): void {
    const text = this.pending.join("\n") + "\n";
    this.pending = [];
    this.size = 0;
    process.stdout.write(text);
  }

  async flush(): Promise<void> {
    if (this.pending.length > 0) this.flushSoon();
    await new Promise<void>((resolve) => process.stdout.write("", () => resolve()));
  }
}

async function decode(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    options: {
      from: { type: "string" },
      handshake: { type: "boolean", default: false },
      version: { type: "string" },
    },
    allowPositionals: true,
    strict: true,
  });
  const from = parseSide(values.from);
  const version = parseVersion(values.version);
  if (positionals.length > 1) throw new UsageError(`decode takes at most one FILE, got ${positionals.length}`);
  const decoder = new StreamDecoder({ from, version, handshake: values.handshake });
  const out = new LineWriter();
  const input = positionals[0] === undefined ? process.stdin : createReadStream(positionals[0]);
  let fatal: DecodeResult | null = null;
  const onResult = (result: DecodeResult) => {
    if (result.ok) {
      out.line(JSON.stringify(messageToJson(result.value)));
      if (result.warning !== undefined) {
        process.stderr.write(`offset ${result.offset}: ${result.warning.code}: ${result.warning.message}\n`);
      }
    } else if (result.error.reaction === "end-session") {
      fatal = result;
    } else {
      process.stderr.write(`offset ${result.offset}: skipped: ${result.error.code}: ${result.error.message}\n`);
    }
  };
  try {
    for await (const chunk of input) {
      decoder.feed(chunk as Uint8Array, onResult);
      if (fatal !== null) break;
    }
  } catch (error) {
    await out.flush();
    process.stderr.write(`qubes-gui-trace: cannot read ${positionals[0] ?? "stdin"}: ${(error as Error).message}\n`);
    return 2;
  }
  await out.flush();
  const failure = fatal as DecodeResult | null;
  if (failure !== null && !failure.ok) {
    process.stderr.write(`offset ${failure.offset}: ${failure.error.code}: ${failure.error.message}\n`);
    return 2;
  }
  if (!decoder.atBoundary) {
    process.stderr.write(`offset ${decoder.offset}: TRUNCATED: the input ends inside a message\n`);
    return 2;
  }
  return 0;
}

async function encode(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    options: {
      from: { type: "string" },
      handshake: { type: "boolean", default: false },
      version: { type: "string" },
      "any-direction": { type: "boolean", default: false },
    },
    allowPositionals: true,
    strict: true,
  });
  const from = parseSide(values.from);
  let version = parseVersion(values.version);
  if (positionals.length > 0) throw new UsageError(`encode reads stdin only; unexpected "${positionals[0]}"`);
  const lines = createInterface({ input: process.stdin, crlfDelay: Infinity });
  const chunks: Uint8Array[] = [];
  let size = 0;
  let lineNumber = 0;
  const flush = async () => {
    if (chunks.length === 0) return;
    const data = Buffer.concat(chunks);
    chunks.length = 0;
    size = 0;
    await new Promise<void>((resolve) => process.stdout.write(data, () => resolve()));
  };
  for await (const line of lines) {
    lineNumber++;
    if (line.trim() === "") continue;
    let json: unknown;
    try {
      json = JSON.parse(line);
    } catch (error) {
      await flush();
      process.stderr.write(`line ${lineNumber}: not JSON: ${(error as Error).message}\n`);
      return 2;
    }
    const parsed = messageFromJson(json);
    if (!parsed.ok) {
      await flush();
      process.stderr.write(`line ${lineNumber}: ${parsed.error}\n`);
      return 2;
    }
    const message = parsed.value;
    let bytes: Uint8Array;
    try {
      if (message.type === "VERSION" || message.type === "XCONF") {
        if (!values.handshake) throw new Error(`${message.type} needs --handshake`);
        if (message.type === "VERSION") {
          const negotiation = negotiateVersion(message.version, version);
          version = from === "agent" && negotiation.ok ? negotiation.value.version : message.version;
          bytes = encodeVersion(message);
        } else {
          bytes = encodeXconf(message);
        }
      } else {
        bytes = encodeMessage(message, {
          from,
          version,
          allowObsolete: true,
          anyDirection: values["any-direction"],
        });
      }
    } catch (error) {
      await flush();
      process.stderr.write(`line ${lineNumber}: ${(error as Error).message}\n`);
      return 2;
    }
    chunks.push(bytes);
    size += bytes.length;
    if (size > 1 << 16) await flush();
  }
  await flush();
  return 0;
}

async function proxy(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    options: {
      listen: { type: "string" },
      connect: { type: "string" },
      version: { type: "string" },
      "no-handshake": { type: "boolean", default: false },
    },
    allowPositionals: true,
    strict: true,
  });
  if (values.listen === undefined) throw new UsageError("--listen PATH is required (where the daemon connects)");
  if (values.connect === undefined) throw new UsageError("--connect PATH is required (the agent's socket)");
  if (positionals.length > 0) throw new UsageError(`proxy takes no positional arguments; got "${positionals[0]}"`);
  const listenPath = values.listen;
  const connectPath = values.connect;
  const ownVersion = parseVersion(values.version);
  const handshake = !values["no-handshake"];
  const print = (object: Record<string, unknown>) => process.stdout.write(`${JSON.stringify(object)}\n`);

  const sockets = new Set<net.Socket>();
  const server = net.createServer({ pauseOnConnect: true }, (daemonSide) => {
    const agentSide = net.connect(connectPath);
    for (const socket of [daemonSide, agentSide]) {
      sockets.add(socket);
      socket.on("close", () => sockets.delete(socket));
    }
    // The daemon side's framing depends on the agent's version word, so it is created lazily.
    const agentDecoder = new StreamDecoder({ from: "agent", version: ownVersion, handshake });
    let agentVersion = ownVersion;
    let daemonDecoder: StreamDecoder | null = null;
    const trace = (from: Side, decoder: StreamDecoder, chunk: Uint8Array) => {
      if (decoder.failed !== null) return;
      decoder.feed(chunk, (result) => {
        const time = new Date().toISOString();
        if (result.ok) {
          if (from === "agent" && result.value.type === "VERSION") agentVersion = result.value.version;
          print({ time, from, ...messageToJson(result.value) });
        } else {
          print({ time, from, error: result.error.code, offset: result.offset, reason: result.error.message });
        }
      });
    };
    agentSide.on("connect", () => {
      print({ time: new Date().toISOString(), event: "connected" });
      daemonSide.pipe(agentSide);
      agentSide.pipe(daemonSide);
      daemonSide.resume();
    });
    agentSide.on("data", (chunk: Buffer) => trace("agent", agentDecoder, chunk));
    daemonSide.on("data", (chunk: Buffer) => {
      daemonDecoder ??= new StreamDecoder({ from: "daemon", version: agentVersion, handshake });
      trace("daemon", daemonDecoder, chunk);
    });
    const close = (from: Side) => () => {
      print({ time: new Date().toISOString(), event: "closed", from });
      agentSide.end();
      daemonSide.end();
    };
    agentSide.on("end", close("agent"));
    daemonSide.on("end", close("daemon"));
    agentSide.on("error", (error) => {
      process.stderr.write(`qubes-gui-trace: ${connectPath}: ${error.message}\n`);
      daemonSide.destroy();
    });
    daemonSide.on("error", () => agentSide.destroy());
  });
  try {
    unlinkSync(listenPath);
  } catch {
    // No stale socket to remove.
  }
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(listenPath, () => resolve());
  });
  process.stderr.write(`qubes-gui-trace: listening on ${listenPath}, forwarding to ${connectPath}\n`);
  await new Promise<void>((resolve) => {
    const stop = () => {
      server.close();
      for (const socket of sockets) socket.destroy();
      resolve();
    };
    process.once("SIGINT", stop);
    process.once("SIGTERM", stop);
  });
  return 0;
}

/** Runs the CLI with `argv` (without node and script) and resolves with the exit status. */
export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  try {
    switch (command) {
      case "decode":
        return await decode(rest);
      case "encode":
        return await encode(rest);
      case "proxy":
        return await proxy(rest);
      case undefined:
        throw new UsageError("missing command (decode, encode or proxy)");
      case "-h":
      case "--help":
        process.stdout.write(USAGE);
        return 0;
      default:
        throw new UsageError(`unknown command "${command}"`);
    }
  } catch (error) {
    const isUsage = error instanceof UsageError || (error as { code?: string }).code?.startsWith("ERR_PARSE_ARGS");
    if (!isUsage) throw error;
    process.stderr.write(`qubes-gui-trace: ${(error as Error).message}\n${USAGE}`);
    return 2;
  }
}

process.exitCode = await main(process.argv.slice(2));
