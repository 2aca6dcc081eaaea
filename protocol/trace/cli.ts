/**
 * `qubes-gui-trace`, the protocol's WAYLAND_DEBUG: decodes raw GUI protocol
 * bytes into one JSON object per line, encodes such lines (decode's or
 * proxy's) back into bytes, and sits between an agent and a daemon on
 * vchan-socket paths printing both directions live without changing a byte,
 * optionally keeping each direction's raw bytes. Exit status 2 on bad flags
 * or malformed input, 1 when proxy cannot listen.
 */
import { createReadStream, createWriteStream, lstatSync, readFileSync, unlinkSync, type WriteStream } from "node:fs";
import net from "node:net";
import { createInterface } from "node:readline";
import { parseArgs, type ParseArgsConfig } from "node:util";

import {
  MSG_HEADER_SIZE,
  MSG_VERSION_SIZE,
  MSG_XCONF_SIZE,
  QUBES_GUID_PROTOCOL_VERSION,
  StreamDecoder,
  encodeMessage,
  encodeVersion,
  encodeXconf,
  encodedSize,
  formatVersion,
  negotiateVersion,
  protocolVersion,
  type DecodeResult,
  type Decoded,
  type Side,
} from "../index.ts";
import { captureLine, messageFromJson, messageToJson } from "./json.ts";

const COMMAND_USAGE = {
  decode: `usage: qubes-gui-trace decode --from agent|daemon [--handshake] [--protocol-version 1.x] [FILE]

Prints one JSON object per message of one direction's raw bytes (FILE, else stdin).

  --from agent|daemon        whose bytes these are
  --handshake                the bytes start with the handshake: the version word (and, from the
                             daemon, the xconf); a capture of a whole connection does
  --protocol-version 1.x     the version in force; with --handshake the receiver's own (default 1.8)
  -h, --help                 this text

Exit status: 0; 2 on bad flags or malformed input (its offset and reason on stderr).
`,
  encode: `usage: qubes-gui-trace encode --from agent|daemon [--handshake] [--protocol-version 1.x] [--any-direction]

Turns JSON lines on stdin back into the bytes of one direction on stdout: decode's lines, or proxy's
(their time is ignored; events and the other direction's messages are skipped).

  --from agent|daemon        whose bytes to write
  --handshake                VERSION and XCONF lines are allowed (as the stream's first)
  --protocol-version 1.x     the version in force (default 1.8; a VERSION line sets it)
  --any-direction            allow messages the other side sends (to craft hostile bytes)
  -h, --help                 this text

Exit status: 0; 2 on bad flags or a bad line (its number and reason on stderr).
`,
  proxy: `usage: qubes-gui-trace proxy --listen PATH --connect PATH [--raw FILE] [--protocol-version 1.x] [--no-handshake]

Sits between a GUI daemon and an agent on vchan-socket paths, passes both directions unchanged and
prints each message as a JSON line with its time and from (agent or daemon), and the events
connected and closed (with the error of an abrupt disconnect) of each connection.

  --listen PATH              where the daemon connects; a stale socket there is replaced, a socket a
                             live process serves or any other file is an error
  --connect PATH             the agent's socket (vchan.<agent>.<daemon>.6000.sock)
  --raw FILE                 also write each direction's bytes, for decode: FILE.agent and
                             FILE.daemon (connection N after the first: FILE.N.agent, FILE.N.daemon)
  --protocol-version 1.x     the daemon's version (default 1.8)
  --no-handshake             the streams start after the handshake
  -h, --help                 this text

Runs until SIGINT or SIGTERM. Exit status: 0 then; 1 when PATH cannot be listened on; 2 on bad flags.
`,
} as const;

type Command = keyof typeof COMMAND_USAGE;

const USAGE = `usage:
  qubes-gui-trace decode --from agent|daemon [--handshake] [--protocol-version 1.x] [FILE]
  qubes-gui-trace encode --from agent|daemon [--handshake] [--protocol-version 1.x] [--any-direction]
  qubes-gui-trace proxy --listen PATH --connect PATH [--raw FILE] [--protocol-version 1.x] [--no-handshake]
  qubes-gui-trace COMMAND --help
  qubes-gui-trace --version
`;

/** A problem with the command line: reported with the usage, exit status 2. */
class UsageError extends Error {
  constructor(
    message: string,
    readonly command: Command | null = null,
  ) {
    super(message);
  }
}

/** proxy cannot take its --listen path: one line, exit status 1. */
class ListenError extends Error {}

function packageVersion(): string {
  const text = readFileSync(new URL("../../package.json", import.meta.url), "utf8");
  return (JSON.parse(text) as { version: string }).version;
}

/** parseArgs for `command`, with --help; a usage error names the command (and --version's new meaning). */
function parseCommand<T extends NonNullable<ParseArgsConfig["options"]>>(command: Command, argv: string[], options: T) {
  try {
    return parseArgs({
      args: argv,
      options: { ...options, help: { type: "boolean", short: "h" } },
      allowPositionals: true,
      strict: true,
    });
  } catch (error) {
    if (argv.includes("--version")) {
      throw new UsageError(
        `--version is not an option of ${command}: the protocol version is --protocol-version 1.x ` +
          "(qubes-gui-trace --version prints the program's)",
        command,
      );
    }
    throw new UsageError((error as Error).message, command);
  }
}

function parseSide(value: string | undefined, command: Command): Side {
  if (value === "agent" || value === "daemon") return value;
  throw new UsageError(
    value === undefined ? "--from is required (agent or daemon)" : `--from must be agent or daemon, got "${value}"`,
    command,
  );
}

function parseVersion(value: string | undefined, command: Command): number {
  if (value === undefined) return QUBES_GUID_PROTOCOL_VERSION;
  const match = /^(\d+)\.(\d+)$/.exec(value);
  if (match === null || Number(match[1]) !== 1 || Number(match[2]) > 0xffff) {
    throw new UsageError(`--protocol-version must look like 1.8, got "${value}"`, command);
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

/** Bytes one decoded item took on the wire. */
function wireSize(value: Decoded): number {
  if (value.type === "VERSION") return MSG_VERSION_SIZE;
  if (value.type === "XCONF") return MSG_XCONF_SIZE;
  return encodedSize(value);
}

/**
 * Follows the items a decoder yields (they tile the stream) so that, when
 * the input ends inside one, it can say where that one starts. It keeps the
 * last item and the last header's bytes: a skipped item's size is only in
 * its header, which always ends in the chunk that yields it.
 */
class ItemTracker {
  /** The last item's start, and its size once known (a skipped item's from its header). */
  private lastStart = -1;
  private lastValue: Decoded | null = null;
  private lastSkipSize = 0;
  /** The stream's last bytes before the current chunk (a header may straddle chunks). */
  private carry: Uint8Array = new Uint8Array(0);
  private chunk: Uint8Array = new Uint8Array(0);
  private chunkStart = 0;

  /** Call before feeding `chunk`, which starts at stream offset `start`. */
  begin(chunk: Uint8Array, start: number): void {
    this.chunk = chunk;
    this.chunkStart = start;
  }

  /** Call after feeding the chunk. */
  end(): void {
    const keep = MSG_HEADER_SIZE - 1;
    if (this.chunk.length >= keep) {
      this.carry = this.chunk.slice(this.chunk.length - keep);
      return;
    }
    const joined = new Uint8Array(this.carry.length + this.chunk.length);
    joined.set(this.carry);
    joined.set(this.chunk, this.carry.length);
    this.carry = joined.slice(Math.max(0, joined.length - keep));
  }

  /** Call for every item the decoder yields while the current chunk is fed. */
  note(result: DecodeResult): void {
    this.lastStart = result.offset;
    this.lastValue = result.ok ? result.value : null;
    if (!result.ok) {
      // A skipped message: header (12 bytes) and the body length it declares.
      const base = this.chunkStart - this.carry.length;
      const at = result.offset - base;
      const header = new Uint8Array(MSG_HEADER_SIZE);
      for (let i = 0; i < MSG_HEADER_SIZE; i++) {
        const index = at + i;
        header[i] = (index < this.carry.length ? this.carry[index] : this.chunk[index - this.carry.length]) ?? 0;
      }
      this.lastSkipSize = MSG_HEADER_SIZE + new DataView(header.buffer).getUint32(8, true);
    }
  }

  /** Where the item that `end` (the input's length) cuts off starts. */
  partialStart(end: number): number {
    if (this.lastStart < 0) return 0;
    const size = this.lastValue === null ? this.lastSkipSize : wireSize(this.lastValue);
    const after = this.lastStart + size;
    // The last item itself is cut off only when it was being skipped.
    return after > end ? this.lastStart : after;
  }
}

/** True when `head` starts with a handshake version word of this major version (e.g. 0x00010008). */
function startsWithVersionWord(head: Uint8Array): boolean {
  if (head.length < MSG_VERSION_SIZE) return false;
  return new DataView(head.buffer, head.byteOffset, MSG_VERSION_SIZE).getUint32(0, true) >>> 16 === 1;
}

async function decode(argv: string[]): Promise<number> {
  const { values, positionals } = parseCommand("decode", argv, {
    from: { type: "string" },
    handshake: { type: "boolean", default: false },
    "protocol-version": { type: "string" },
  });
  if (values.help === true) {
    process.stdout.write(COMMAND_USAGE.decode);
    return 0;
  }
  const from = parseSide(values.from, "decode");
  const version = parseVersion(values["protocol-version"], "decode");
  if (positionals.length > 1) {
    throw new UsageError(`decode takes at most one FILE, got ${positionals.length}`, "decode");
  }
  const handshake = values.handshake === true;
  const decoder = new StreamDecoder({ from, version, handshake });
  const tracker = new ItemTracker();
  const out = new LineWriter();
  const input = positionals[0] === undefined ? process.stdin : createReadStream(positionals[0]);
  let head = new Uint8Array(0);
  let fatal: DecodeResult | null = null;
  let hinted = false;
  const hintHandshake = (offset: number): void => {
    if (hinted || handshake || offset !== 0 || !startsWithVersionWord(head)) return;
    hinted = true;
    const word = new DataView(head.buffer, head.byteOffset, MSG_VERSION_SIZE).getUint32(0, true);
    process.stderr.write(
      `hint: the input starts with the version word ${word} (protocol ${formatVersion(word)}): ` +
        `a capture of a whole connection starts with the handshake; decode it with --handshake\n`,
    );
  };
  const onResult = (result: DecodeResult) => {
    tracker.note(result);
    if (result.ok) {
      out.line(JSON.stringify(messageToJson(result.value)));
      if (result.warning !== undefined) {
        process.stderr.write(`offset ${result.offset}: ${result.warning.code}: ${result.warning.message}\n`);
      }
    } else if (result.error.reaction === "end-session") {
      fatal = result;
    } else {
      process.stderr.write(`offset ${result.offset}: skipped: ${result.error.code}: ${result.error.message}\n`);
      hintHandshake(result.offset);
    }
  };
  try {
    for await (const data of input) {
      const chunk = data as Uint8Array;
      if (head.length < MSG_VERSION_SIZE) {
        const joined = new Uint8Array(head.length + chunk.length);
        joined.set(head);
        joined.set(chunk, head.length);
        head = joined.slice(0, MSG_VERSION_SIZE);
      }
      tracker.begin(chunk, decoder.offset);
      decoder.feed(chunk, onResult);
      tracker.end();
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
    hintHandshake(failure.offset);
    return 2;
  }
  if (!decoder.atBoundary) {
    const end = decoder.offset;
    const start = tracker.partialStart(end);
    process.stderr.write(
      `offset ${start}: TRUNCATED: the input ends ${end - start} bytes into the message that starts here\n`,
    );
    hintHandshake(start);
    return 2;
  }
  return 0;
}

async function encode(argv: string[]): Promise<number> {
  const { values, positionals } = parseCommand("encode", argv, {
    from: { type: "string" },
    handshake: { type: "boolean", default: false },
    "protocol-version": { type: "string" },
    "any-direction": { type: "boolean", default: false },
  });
  if (values.help === true) {
    process.stdout.write(COMMAND_USAGE.encode);
    return 0;
  }
  const from = parseSide(values.from, "encode");
  let version = parseVersion(values["protocol-version"], "encode");
  if (positionals.length > 0) {
    throw new UsageError(`encode reads stdin only; unexpected "${positionals[0]}"`, "encode");
  }
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
  const fail = async (reason: string): Promise<number> => {
    await flush();
    process.stderr.write(`line ${lineNumber}: ${reason}\n`);
    return 2;
  };
  for await (const line of lines) {
    lineNumber++;
    if (line.trim() === "") continue;
    let json: unknown;
    try {
      json = JSON.parse(line);
    } catch (error) {
      return fail(`not JSON: ${(error as Error).message}`);
    }
    const sorted = captureLine(json, from);
    if (sorted.kind === "skip") continue;
    if (sorted.kind === "gap") {
      return fail(
        `the capture could not decode the ${from}'s bytes here (${sorted.reason}): they are not in it; ` +
          "record the bytes themselves with proxy --raw",
      );
    }
    const parsed = messageFromJson(sorted.json);
    if (!parsed.ok) return fail(parsed.error);
    const message = parsed.value;
    let bytes: Uint8Array;
    try {
      if (message.type === "VERSION" || message.type === "XCONF") {
        if (values.handshake !== true) throw new Error(`${message.type} needs --handshake`);
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
          anyDirection: values["any-direction"] === true,
        });
      }
    } catch (error) {
      return fail((error as Error).message);
    }
    chunks.push(bytes);
    size += bytes.length;
    if (size > 1 << 16) await flush();
  }
  await flush();
  return 0;
}

/** What a connect to a socket path says: a live process accepts, a stale socket refuses. */
function probeSocket(socketPath: string): Promise<"live" | "stale" | "missing"> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(socketPath);
    socket.once("connect", () => {
      socket.destroy();
      resolve("live");
    });
    socket.once("error", (error: NodeJS.ErrnoException) => {
      if (error.code === "ECONNREFUSED") resolve("stale");
      else if (error.code === "ENOENT") resolve("missing");
      else if (error.code === "EAGAIN") resolve("live");
      else reject(new ListenError(`cannot tell whether a live process serves --listen ${socketPath}: ${error.code}`));
    });
  });
}

/** Removes a stale socket at `socketPath`; a live one or a file that is not a socket is a ListenError. */
async function removeStaleSocket(socketPath: string): Promise<void> {
  let isSocket;
  try {
    isSocket = lstatSync(socketPath).isSocket();
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return;
    throw error;
  }
  if (!isSocket) throw new ListenError(`--listen ${socketPath} exists and is not a socket: not removed`);
  const state = await probeSocket(socketPath);
  if (state === "live") throw new ListenError(`--listen ${socketPath} is served by another live process`);
  if (state === "stale") {
    try {
      unlinkSync(socketPath);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
    }
  }
}

/** Listens on `socketPath`, replacing only a stale socket there (bind first: a free path is never probed). */
async function listenReplacing(server: net.Server, socketPath: string): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      await new Promise<void>((resolve, reject) => {
        server.once("error", reject);
        server.listen(socketPath, () => {
          server.off("error", reject);
          resolve();
        });
      });
      return;
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code !== "EADDRINUSE" || attempt === 3) {
        throw new ListenError(`cannot listen on --listen ${socketPath}: ${code ?? (error as Error).message}`);
      }
      await removeStaleSocket(socketPath);
    }
  }
}

/** The raw capture files of connection `n`: FILE.agent and FILE.daemon, FILE.n.* after the first. */
function rawPaths(file: string, n: number): Record<Side, string> {
  const prefix = n === 1 ? file : `${file}.${n}`;
  return { agent: `${prefix}.agent`, daemon: `${prefix}.daemon` };
}

/** Opens a raw capture file; resolves once it is open, rejects with a ListenError naming it. */
function openRaw(filePath: string): Promise<WriteStream> {
  return new Promise((resolve, reject) => {
    const stream = createWriteStream(filePath, { flags: "w" });
    stream.once("open", () => {
      stream.off("error", onError);
      resolve(stream);
    });
    const onError = (error: NodeJS.ErrnoException): void =>
      reject(new ListenError(`cannot write --raw ${filePath}: ${error.code ?? error.message}`));
    stream.once("error", onError);
  });
}

async function proxy(argv: string[]): Promise<number> {
  const { values, positionals } = parseCommand("proxy", argv, {
    listen: { type: "string" },
    connect: { type: "string" },
    raw: { type: "string" },
    "protocol-version": { type: "string" },
    "no-handshake": { type: "boolean", default: false },
  });
  if (values.help === true) {
    process.stdout.write(COMMAND_USAGE.proxy);
    return 0;
  }
  if (values.listen === undefined) {
    throw new UsageError("--listen PATH is required (where the daemon connects)", "proxy");
  }
  if (values.connect === undefined) throw new UsageError("--connect PATH is required (the agent's socket)", "proxy");
  if (values.raw === "") throw new UsageError("--raw needs a FILE name", "proxy");
  if (positionals.length > 0) {
    throw new UsageError(`proxy takes no positional arguments; got "${positionals[0]}"`, "proxy");
  }
  const listenPath = values.listen;
  const connectPath = values.connect;
  const rawFile = values.raw;
  const ownVersion = parseVersion(values["protocol-version"], "proxy");
  const handshake = values["no-handshake"] !== true;
  const print = (object: Record<string, unknown>) => process.stdout.write(`${JSON.stringify(object)}\n`);
  const now = () => new Date().toISOString();

  // The first connection's raw files are opened now, so that a bad --raw is said before anything runs.
  const firstRaw =
    rawFile === undefined
      ? null
      : {
          agent: await openRaw(rawPaths(rawFile, 1).agent),
          daemon: await openRaw(rawPaths(rawFile, 1).daemon),
        };
  const rawStreams = new Set<WriteStream>(firstRaw === null ? [] : [firstRaw.agent, firstRaw.daemon]);
  const sockets = new Set<net.Socket>();
  let connections = 0;
  let stopping = false;

  const serve = async (daemonSide: net.Socket): Promise<void> => {
    const connection = ++connections;
    let raw: Record<Side, WriteStream> | null = null;
    if (rawFile !== undefined) {
      try {
        raw =
          connection === 1 && firstRaw !== null
            ? firstRaw
            : {
                agent: await openRaw(rawPaths(rawFile, connection).agent),
                daemon: await openRaw(rawPaths(rawFile, connection).daemon),
              };
        rawStreams.add(raw.agent).add(raw.daemon);
      } catch (error) {
        process.stderr.write(`qubes-gui-trace: ${(error as Error).message}\n`);
      }
    }
    const agentSide = net.connect(connectPath);
    const side: Record<Side, net.Socket> = { agent: agentSide, daemon: daemonSide };
    for (const socket of [daemonSide, agentSide]) {
      sockets.add(socket);
      socket.on("close", () => sockets.delete(socket));
    }
    // The daemon side's framing depends on the agent's version word, so it is created lazily.
    const agentDecoder = new StreamDecoder({ from: "agent", version: ownVersion, handshake });
    let agentVersion = ownVersion;
    let daemonDecoder: StreamDecoder | null = null;
    const trace = (from: Side, decoder: StreamDecoder, chunk: Uint8Array) => {
      raw?.[from].write(chunk);
      if (decoder.failed !== null) return;
      decoder.feed(chunk, (result) => {
        const time = now();
        if (result.ok) {
          if (from === "agent" && result.value.type === "VERSION") agentVersion = result.value.version;
          print({ time, from, ...messageToJson(result.value) });
        } else {
          print({ time, from, error: result.error.code, offset: result.offset, reason: result.error.message });
        }
      });
    };
    let agentConnected = false;
    // Why each side's connection ended: its peer closed it, it broke (the error code), or the proxy ended it.
    const cause: Record<Side, { error: string } | "end" | "proxy" | null> = { agent: null, daemon: null };
    const other = (from: Side): Side => (from === "agent" ? "daemon" : "agent");
    for (const from of ["agent", "daemon"] as const) {
      const socket = side[from];
      socket.on("end", () => {
        cause[from] ??= "end";
        cause[other(from)] ??= "proxy";
        side[other(from)].end();
      });
      socket.on("error", (error: NodeJS.ErrnoException) => {
        cause[from] ??= { error: error.code ?? error.message };
        if (from === "agent" && !agentConnected) {
          process.stderr.write(`qubes-gui-trace: ${connectPath}: ${error.message}\n`);
        }
        cause[other(from)] ??= "proxy";
        side[other(from)].destroy();
      });
      socket.on("close", () => {
        const why = cause[from] ?? (stopping ? "proxy" : "end");
        print({
          time: now(),
          event: "closed",
          connection,
          from,
          ...(why === "end" ? {} : why === "proxy" ? { by: "proxy" } : why),
        });
        raw?.[from].end();
      });
    }
    agentSide.on("connect", () => {
      agentConnected = true;
      print({
        time: now(),
        event: "connected",
        connection,
        ...(raw === null || rawFile === undefined ? {} : { raw: rawPaths(rawFile, connection) }),
      });
      daemonSide.pipe(agentSide);
      agentSide.pipe(daemonSide);
      daemonSide.resume();
    });
    agentSide.on("data", (chunk: Buffer) => trace("agent", agentDecoder, chunk));
    daemonSide.on("data", (chunk: Buffer) => {
      daemonDecoder ??= new StreamDecoder({ from: "daemon", version: agentVersion, handshake });
      trace("daemon", daemonDecoder, chunk);
    });
  };
  const server = net.createServer({ pauseOnConnect: true }, (daemonSide) => void serve(daemonSide));
  try {
    await listenReplacing(server, listenPath);
  } catch (error) {
    for (const stream of rawStreams) stream.destroy();
    throw error;
  }
  process.stderr.write(`qubes-gui-trace: listening on ${listenPath}, forwarding to ${connectPath}\n`);
  await new Promise<void>((resolve) => {
    const stop = () => {
      stopping = true;
      server.close();
      for (const socket of sockets) socket.destroy();
      resolve();
    };
    process.once("SIGINT", stop);
    process.once("SIGTERM", stop);
  });
  // Every raw byte received is on disk before the exit.
  await Promise.all(
    [...rawStreams].map(
      (stream) =>
        new Promise<void>((resolve) => {
          if (stream.writableFinished || stream.destroyed) resolve();
          else stream.end(() => resolve());
        }),
    ),
  );
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
      case "--version":
        process.stdout.write(
          `qubes-gui-trace ${packageVersion()} (Qubes GUI protocol ${formatVersion(QUBES_GUID_PROTOCOL_VERSION)})\n`,
        );
        return 0;
      default:
        throw new UsageError(`unknown command "${command}"`);
    }
  } catch (error) {
    if (error instanceof ListenError) {
      process.stderr.write(`qubes-gui-trace: ${error.message}\n`);
      return 1;
    }
    if (!(error instanceof UsageError)) throw error;
    const usage = error.command === null ? USAGE : COMMAND_USAGE[error.command];
    process.stderr.write(`qubes-gui-trace: ${error.message}\n${usage}`);
    return 2;
  }
}

process.exitCode = await main(process.argv.slice(2));
