import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, readFileSync, statSync, writeFileSync } from "node:fs";
import net from "node:net";
import path from "node:path";

import { afterEach, describe, expect, it } from "vitest";

import * as native from "../../native/index.ts";
import { messageToJson } from "../../protocol/trace/json.ts";
import { connectWhenListening, listenReplacing, whenReadable } from "../../shm/index.ts";
import { repoRoot, temporaryDirectory } from "../helpers/processes.ts";
import { bytes, concat, fromHex } from "./bytes.ts";
import { fixtures } from "./fixtures.ts";

const cli = path.join(repoRoot, "bin", "qubes-gui-trace.js");

/** How long a test waits for one event between processes that are already running (ms). */
const EVENT_MS = 10_000;

/** Resolves as `promise` does, or rejects after `ms` saying that `what` never came. */
function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} never came (waited ${ms} ms)`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** Everything a running proxy printed, and a wait for a line of it. */
function follow(child: ChildProcess) {
  const output = { stdout: "", stderr: "" };
  const waiters: Array<() => void> = [];
  const wake = () => {
    for (const waiter of [...waiters]) waiter();
  };
  child.stdout?.setEncoding("utf8").on("data", (chunk: string) => {
    output.stdout += chunk;
    wake();
  });
  child.stderr?.setEncoding("utf8").on("data", (chunk: string) => {
    output.stderr += chunk;
    wake();
  });
  const exited = new Promise<number | null>((resolve) => child.on("close", (code) => resolve(code)));
  /** Resolves once `stream` matches `pattern`; rejects if the proxy ends first. No clock: start-up is the machine's. */
  const waitFor = (stream: "stdout" | "stderr", pattern: RegExp) =>
    new Promise<string>((resolve, reject) => {
      const check = () => {
        const match = pattern.exec(output[stream]);
        if (match === null) return;
        waiters.splice(waiters.indexOf(check), 1);
        resolve(match[0]);
      };
      waiters.push(check);
      void exited.then((code) =>
        reject(new Error(`the proxy exited (${code}) before printing ${pattern}:\n${output.stderr}`)),
      );
      check();
    });
  return { output, exited, waitFor };
}

/** The JSON lines a proxy printed. */
function jsonLines(text: string): Array<Record<string, unknown>> {
  return text
    .trim()
    .split("\n")
    .filter((line) => line !== "")
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

function start(args: string[]): ChildProcess {
  return spawn(process.execPath, [cli, ...args], { cwd: repoRoot, stdio: ["pipe", "pipe", "pipe"] });
}

async function run(args: string[], input: Uint8Array | string = "") {
  const child = start(args);
  const chunks: Buffer[] = [];
  let stderr = "";
  child.stdout?.on("data", (chunk: Buffer) => chunks.push(chunk));
  child.stderr?.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk));
  child.stdin?.end(input);
  const code = await new Promise<number | null>((resolve, reject) => {
    child.on("error", reject);
    child.on("close", (status) => resolve(status));
  });
  const raw = Buffer.concat(chunks);
  return { code, stderr, raw, stdout: raw.toString("utf8") };
}

const cleanups: Array<() => void> = [];
afterEach(() => {
  for (const cleanup of cleanups.splice(0)) cleanup();
});

describe("qubes-gui-trace decode", () => {
  it("decodes the reference's CREATE example to exactly its fields", async () => {
    const example = fromHex("82000000 01004000 18000000 | 64000000 64000000 2c010000 c8000000 00000000 00000000");
    const { code, stdout } = await run(["decode", "--from", "agent"], example);
    expect(code).toBe(0);
    expect(stdout).toBe(
      '{"type":"CREATE","window":4194305,"x":100,"y":100,"width":300,"height":200,"parent":0,"override_redirect":0}\n',
    );
  });

  it("reads a FILE argument and prints the handshake structures", async () => {
    const { dir, remove } = temporaryDirectory();
    cleanups.push(remove);
    const file = path.join(dir, "daemon.bin");
    writeFileSync(file, bytes().u32(0x00010008).u32(1280).u32(800).u32(24).u32(4001).build());
    const { code, stdout } = await run(["decode", "--from", "daemon", "--handshake", file]);
    expect(code).toBe(0);
    expect(stdout).toBe(
      '{"type":"VERSION","version":65544}\n{"type":"XCONF","w":1280,"h":800,"depth":24,"mem":4001}\n',
    );
  });

  it("prints field names as upstream, keys as hex, grant refs as an array, clipboard as base64", async () => {
    const stream = concat(
      ...fixtures.filter((f) => f.from === "daemon" && f.message.type === "KEYMAP_NOTIFY").map((f) => f.bytes),
    );
    const keymap = await run(["decode", "--from", "daemon"], stream);
    expect(JSON.parse(keymap.stdout)).toEqual({
      type: "KEYMAP_NOTIFY",
      window: 0,
      keys: "01000000800000000000000000000000000000000000000000000000000000ff",
    });
    const agent = concat(
      ...fixtures
        .filter((f) => f.from === "agent" && ["WINDOW_DUMP", "CLIPBOARD_DATA", "WMCLASS"].includes(f.message.type))
        .filter((f) => f.version === undefined)
        .map((f) => f.bytes),
    );
    const lines = (await run(["decode", "--from", "agent"], agent)).stdout
      .trim()
      .split("\n")
      .map((line) => JSON.parse(line));
    expect(lines).toEqual([
      { type: "CLIPBOARD_DATA", window: 0x400001, data_base64: "aGVsbG8=" },
      { type: "WMCLASS", window: 0x400001, res_class: "XTerm", res_name: "xterm" },
      {
        type: "WINDOW_DUMP",
        window: 0x400001,
        dump_type: 0,
        width: 64,
        height: 48,
        bpp: 32,
        grant_refs: [7, 8, 4294967295],
      },
    ]);
  });

  it("prints what decoded before malformed input, then the offset and reason on stderr, and exits 2", async () => {
    const good = fixtures[0]?.bytes ?? new Uint8Array();
    const stream = concat(good, bytes().header(130, 1, 23).build());
    const { code, stdout, stderr } = await run(["decode", "--from", "agent"], stream);
    expect(code).toBe(2);
    expect(stdout.trim().split("\n")).toHaveLength(1);
    expect(stderr).toMatch(/^offset 36: BAD_LENGTH: MSG_CREATE with untrusted_len 23, expected 24/);
  });

  it("reports where a message that the input cuts off starts", async () => {
    const whole = fixtures[0]?.bytes ?? new Uint8Array();
    expect(whole.length).toBe(36);
    const alone = await run(["decode", "--from", "agent"], whole.subarray(0, 20));
    expect(alone.code).toBe(2);
    expect(alone.stderr).toBe("offset 0: TRUNCATED: the input ends 20 bytes into the message that starts here\n");
    const afterOne = await run(["decode", "--from", "agent"], concat(whole, whole.subarray(0, 20)));
    expect(afterOne.code).toBe(2);
    expect(afterOne.stdout.trim().split("\n")).toHaveLength(1);
    expect(afterOne.stderr).toBe("offset 36: TRUNCATED: the input ends 20 bytes into the message that starts here\n");
  });

  it("reports where a cut-off message starts after a skipped one, and a skipped one that is cut off", async () => {
    // From the daemon an unknown type is skipped whole (its header says how long it is).
    const skipped = bytes().header(200, 0, 4).u32(0).build();
    const keypress = fixtures.find((f) => f.from === "daemon" && f.message.type === "KEYPRESS")?.bytes;
    expect(keypress).toBeDefined();
    const cut = await run(["decode", "--from", "daemon"], concat(skipped, (keypress as Uint8Array).subarray(0, 15)));
    expect(cut.code).toBe(2);
    expect(cut.stderr).toMatch(/^offset 0: skipped: UNKNOWN_TYPE/);
    expect(cut.stderr).toMatch(/\noffset 16: TRUNCATED: the input ends 15 bytes into the message that starts here\n$/);
    const cutSkip = await run(["decode", "--from", "daemon"], concat(keypress as Uint8Array, skipped.subarray(0, 14)));
    expect(cutSkip.stderr).toMatch(
      new RegExp(`\\noffset ${(keypress as Uint8Array).length}: TRUNCATED: the input ends 14 bytes into`),
    );
  });

  it("hints at --handshake when the input starts with a version word", async () => {
    const agentCapture = concat(bytes().u32(0x00010008).build(), fixtures[0]?.bytes ?? new Uint8Array());
    const agent = await run(["decode", "--from", "agent"], agentCapture);
    expect(agent.code).toBe(2);
    expect(agent.stderr).toMatch(/^offset 0: UNKNOWN_TYPE: unknown message type 65544\n/);
    expect(agent.stderr).toMatch(
      /\nhint: the input starts with the version word 65544 \(protocol 1\.8\).*decode it with --handshake\n/,
    );
    const daemonCapture = bytes().u32(0x00010008).u32(1280).u32(800).u32(24).u32(4001).build();
    const daemon = await run(["decode", "--from", "daemon"], daemonCapture);
    expect(daemon.stderr.match(/hint: .*--handshake/g)).toHaveLength(1);
    // With the flag (or for a capture that does not start so) there is no hint.
    const decoded = await run(["decode", "--from", "agent", "--handshake"], agentCapture);
    expect(decoded.code).toBe(0);
    expect(decoded.stderr).toBe("");
    const plain = await run(["decode", "--from", "agent"], bytes().header(130, 1, 23).build());
    expect(plain.stderr).not.toMatch(/hint/);
  });

  for (const [args, problem] of [
    [["decode"], /--from is required/],
    [["decode", "--from", "vm"], /--from must be agent or daemon, got "vm"/],
    [["decode", "--from", "agent", "--protocol-version", "2.0"], /--protocol-version must look like 1.8, got "2.0"/],
    [
      ["decode", "--from", "agent", "--version", "1.8"],
      /--version is not an option of decode: the protocol version is --protocol-version 1.x/,
    ],
    [["decode", "--from", "agent", "--bogus"], /Unknown option '--bogus'/],
    [["decode", "--from", "agent", "a", "b"], /at most one FILE/],
    [["frobnicate"], /unknown command "frobnicate"/],
    [[], /missing command/],
    [["proxy", "--listen", "/tmp/x"], /--connect PATH is required/],
    [["proxy", "--listen", "/tmp/x", "--connect", "/tmp/y", "--raw", ""], /--raw needs a FILE name/],
  ] as const) {
    it(`exits 2 naming the problem for: ${args.join(" ") || "(no arguments)"}`, async () => {
      const { code, stderr } = await run([...args]);
      expect(code).toBe(2);
      expect(stderr).toMatch(problem);
    });
  }
});

describe("qubes-gui-trace conventions", () => {
  it("prints the program's version with --version", async () => {
    const { version } = JSON.parse(readFileSync(path.join(repoRoot, "package.json"), "utf8")) as { version: string };
    const { code, stdout } = await run(["--version"]);
    expect(code).toBe(0);
    expect(stdout).toBe(`qubes-gui-trace ${version} (Qubes GUI protocol 1.8)\n`);
  });

  it.each(["decode", "encode", "proxy"])(
    "prints one command's usage alone with COMMAND --help: %s",
    async (command) => {
      for (const flag of ["--help", "-h"]) {
        const { code, stdout } = await run([command, flag]);
        expect(code).toBe(0);
        expect(stdout).toMatch(new RegExp(`^usage: qubes-gui-trace ${command} `));
        expect(stdout).toMatch(/--protocol-version 1\.x/);
        expect(stdout).toMatch(/Exit status: 0/);
        for (const other of ["decode", "encode", "proxy"].filter((name) => name !== command)) {
          expect(stdout).not.toMatch(new RegExp(`qubes-gui-trace ${other}`));
        }
      }
    },
  );

  it("takes the protocol version as --protocol-version", async () => {
    // At 1.1 the clipboard's length travels in the window field.
    const line = '{"type":"CLIPBOARD_DATA","window":3,"data_base64":"AQID"}';
    const encoded = await run(["encode", "--from", "agent", "--protocol-version", "1.1"], line);
    expect(encoded.code).toBe(0);
    expect(encoded.raw.toString("hex")).toBe("8c000000" + "03000000" + "03000000" + "010203");
    const decoded = await run(["decode", "--from", "agent", "--protocol-version", "1.1"], encoded.raw);
    expect(decoded.stdout).toBe(`${line}\n`);
  });
});

describe("qubes-gui-trace encode", () => {
  for (const side of ["agent", "daemon"] as const) {
    it(`encode then decode round-trips every message type the ${side} sends, byte for byte`, async () => {
      const chosen = fixtures.filter((f) => f.from === side && f.version === undefined);
      const lines = chosen.map((f) => JSON.stringify(messageToJson(f.message))).join("\n") + "\n";
      const encoded = await run(["encode", "--from", side], lines);
      expect(encoded.stderr).toBe("");
      expect(encoded.code).toBe(0);
      expect(encoded.raw.toString("hex")).toBe(Buffer.from(concat(...chosen.map((f) => f.bytes))).toString("hex"));
      const decoded = await run(["decode", "--from", side], encoded.raw);
      expect(decoded.code).toBe(0);
      expect(decoded.stdout).toBe(lines);
    });
  }

  it("round-trips a handshake stream from the agent at 1.1 (clipboard length in window)", async () => {
    const lines = ['{"type":"VERSION","version":65537}', '{"type":"CLIPBOARD_DATA","window":3,"data_base64":"AQID"}'];
    const encoded = await run(["encode", "--from", "agent", "--handshake"], lines.join("\n"));
    expect(encoded.raw.toString("hex")).toBe("01000100" + "8c000000" + "03000000" + "03000000" + "010203");
    const decoded = await run(["decode", "--from", "agent", "--handshake"], encoded.raw);
    expect(decoded.stdout).toBe(lines.join("\n") + "\n");
  });

  it("takes proxy's lines: ignores time, skips events and the other direction", async () => {
    const time = "2025-01-01T00:00:00.000Z";
    const create = messageToJson(fixtures[0]!.message);
    const capture = [
      { time, event: "connected", connection: 1 },
      { time, from: "agent", type: "VERSION", version: 0x00010008 },
      { time, from: "daemon", type: "VERSION", version: 0x00010008 },
      { time, from: "daemon", type: "XCONF", w: 1280, h: 800, depth: 24, mem: 4001 },
      { time, from: "agent", ...create },
      { time, event: "closed", connection: 1, from: "daemon", error: "ECONNRESET" },
    ]
      .map((line) => JSON.stringify(line))
      .join("\n");
    const agent = await run(["encode", "--from", "agent", "--handshake"], capture);
    expect(agent.stderr).toBe("");
    expect(agent.raw.toString("hex")).toBe(
      Buffer.from(concat(bytes().u32(0x00010008).build(), fixtures[0]!.bytes)).toString("hex"),
    );
    const daemon = await run(["encode", "--from", "daemon", "--handshake"], capture);
    expect(daemon.raw.toString("hex")).toBe(
      Buffer.from(bytes().u32(0x00010008).u32(1280).u32(800).u32(24).u32(4001).build()).toString("hex"),
    );
  });

  it("refuses a capture line where proxy could not decode the bytes, pointing at --raw", async () => {
    const lines = [
      '{"time":"2025-01-01T00:00:00.000Z","from":"agent","type":"UNMAP","window":1}',
      '{"time":"2025-01-01T00:00:00.001Z","from":"agent","error":"BAD_LENGTH","offset":12,"reason":"MSG_CREATE with untrusted_len 23, expected 24"}',
    ];
    const { code, stderr, raw } = await run(["encode", "--from", "agent"], lines.join("\n"));
    expect(code).toBe(2);
    expect(raw.length).toBe(12);
    expect(stderr).toMatch(/^line 2: the capture could not decode the agent's bytes here \(BAD_LENGTH at offset 12: /);
    expect(stderr).toMatch(/proxy --raw/);
  });

  it("still names a from that is neither side", async () => {
    const { code, stderr } = await run(["encode", "--from", "agent"], '{"from":"vm","type":"UNMAP","window":1}');
    expect(code).toBe(2);
    expect(stderr).toMatch(/line 1: unexpected field "from"/);
  });

  it("keeps unclean char arrays as hex so that they round-trip", async () => {
    const raw = new Uint8Array(128);
    raw.set([0x41, 0xff, 0, 0x42]);
    const stream = bytes().header(141, 1, 128).raw(raw).build();
    const decoded = await run(["decode", "--from", "agent"], stream);
    expect(JSON.parse(decoded.stdout)).toEqual({
      type: "WMNAME",
      window: 1,
      data_hex: Buffer.from(raw).toString("hex"),
    });
    const encoded = await run(["encode", "--from", "agent"], decoded.stdout);
    expect(encoded.raw.toString("hex")).toBe(Buffer.from(stream).toString("hex"));
  });

  for (const [line, problem] of [
    ["not json", /line 2: not JSON/],
    ['{"type":"CREATE","window":1}', /line 2: "x" must be an integer/],
    ['{"type":"NOPE","window":1}', /line 2: unknown message type "NOPE"/],
    ['{"type":"UNMAP","window":-1}', /line 2: "window" must be an integer in 0..4294967295/],
    ['{"type":"UNMAP","window":1,"extra":2}', /line 2: unexpected field "extra"/],
    [
      '{"type":"KEYPRESS","window":1,"event_type":2,"x":0,"y":0,"state":0,"keycode":9}',
      /line 2: the agent does not send/,
    ],
    ['{"type":"VERSION","version":65544}', /line 2: VERSION needs --handshake/],
  ] as const) {
    it(`reports a bad line with its number: ${line}`, async () => {
      const { code, stderr, raw } = await run(["encode", "--from", "agent"], `{"type":"UNMAP","window":1}\n${line}\n`);
      expect(code).toBe(2);
      expect(stderr).toMatch(problem);
      expect(raw.length).toBe(12);
    });
  }
});

describe("qubes-gui-trace proxy", () => {
  it("passes both directions unchanged, prints them with time and direction, and keeps the raw bytes", async () => {
    const { dir, remove } = temporaryDirectory();
    cleanups.push(remove);
    const agentPath = path.join(dir, "vchan.2.0.6000.sock");
    const proxyPath = path.join(dir, "proxy.sock");
    const rawFile = path.join(dir, "capture");
    // A socket left by a proxy that died: replaced.
    native.close(native.listen("stream", proxyPath, 1));

    const agentToDaemon = concat(
      bytes().u32(0x00010008).build(),
      fixtures[0]?.bytes ?? new Uint8Array(),
      ...fixtures.filter((f) => f.from === "agent" && f.message.type === "SHMIMAGE").map((f) => f.bytes),
    );
    const daemonToAgent = concat(
      bytes().u32(0x00010008).u32(1280).u32(800).u32(24).u32(4001).build(),
      ...fixtures.filter((f) => f.from === "daemon" && f.message.type === "KEYPRESS").map((f) => f.bytes),
    );

    // The agent: vchan server; sends its stream and records what arrives.
    const agentReceived: Buffer[] = [];
    const agentDone = new Promise<void>((resolve) => {
      const server = net.createServer((socket) => {
        socket.on("data", (chunk: Buffer) => {
          agentReceived.push(chunk);
          if (Buffer.concat(agentReceived).length >= daemonToAgent.length) {
            socket.end();
            server.close();
            resolve();
          }
        });
        // Split the stream in odd places to exercise the proxy's decoder.
        socket.write(agentToDaemon.subarray(0, 7));
        setImmediate(() => socket.write(agentToDaemon.subarray(7)));
      });
      server.listen(agentPath);
    });

    const proxy = start(["proxy", "--listen", proxyPath, "--connect", agentPath, "--raw", rawFile]);
    cleanups.push(() => proxy.kill("SIGKILL"));
    const { output, exited, waitFor } = follow(proxy);
    await waitFor("stderr", /listening/);

    // The daemon: vchan client through the proxy.
    const daemonReceived: Buffer[] = [];
    const daemon = net.connect(proxyPath);
    const daemonDone = new Promise<void>((resolve) => daemon.on("end", () => resolve()));
    daemon.on("data", (chunk: Buffer) => daemonReceived.push(chunk));
    daemon.on("connect", () => {
      daemon.write(daemonToAgent.subarray(0, 3));
      setImmediate(() => daemon.write(daemonToAgent.subarray(3)));
    });
    await within(Promise.all([agentDone, daemonDone]), EVENT_MS, "the end of both streams through the proxy");
    daemon.end();

    expect(Buffer.concat(daemonReceived).toString("hex")).toBe(Buffer.from(agentToDaemon).toString("hex"));
    expect(Buffer.concat(agentReceived).toString("hex")).toBe(Buffer.from(daemonToAgent).toString("hex"));

    await within(waitFor("stdout", /"event":"closed".*\n.*"event":"closed".*\n/), EVENT_MS, "both closed events");
    proxy.kill("SIGTERM");
    expect(await within(exited, EVENT_MS, "the proxy's exit after SIGTERM")).toBe(0);
    const lines = jsonLines(output.stdout);
    for (const line of lines) expect(typeof line.time === "string" && !Number.isNaN(Date.parse(line.time))).toBe(true);
    const traced = lines.filter((line) => line.type !== undefined).map(({ time: _time, ...rest }) => rest);
    expect(traced.filter((line) => line.from === "agent")).toEqual([
      { from: "agent", type: "VERSION", version: 0x00010008 },
      { from: "agent", ...messageToJson(fixtures[0]!.message) },
      { from: "agent", type: "SHMIMAGE", window: 0x400001, x: 0, y: 0, width: 64, height: 48 },
    ]);
    expect(traced.filter((line) => line.from === "daemon")).toEqual([
      { from: "daemon", type: "VERSION", version: 0x00010008 },
      { from: "daemon", type: "XCONF", w: 1280, h: 800, depth: 24, mem: 4001 },
      { from: "daemon", type: "KEYPRESS", window: 0x400001, event_type: 2, x: -5, y: 7, state: 1, keycode: 38 },
    ]);
    const events = lines.filter((line) => line.event !== undefined).map(({ time: _time, ...rest }) => rest);
    expect(events[0]).toEqual({
      event: "connected",
      connection: 1,
      raw: { agent: `${rawFile}.agent`, daemon: `${rawFile}.daemon` },
    });
    expect(events.slice(1).filter((event) => event.event === "closed")).toHaveLength(2);

    // The raw bytes of each direction, and the same bytes again from the printed lines.
    expect(readFileSync(`${rawFile}.agent`).toString("hex")).toBe(Buffer.from(agentToDaemon).toString("hex"));
    expect(readFileSync(`${rawFile}.daemon`).toString("hex")).toBe(Buffer.from(daemonToAgent).toString("hex"));
    for (const [side, stream] of [
      ["agent", agentToDaemon],
      ["daemon", daemonToAgent],
    ] as const) {
      const encoded = await run(["encode", "--from", side, "--handshake"], output.stdout);
      expect(encoded.stderr).toBe("");
      expect(encoded.raw.toString("hex")).toBe(Buffer.from(stream).toString("hex"));
    }
  });

  /** A proxy between a daemon (native fd) and an agent (native listener), both connected, each side's first bytes through. */
  async function connectedProxy() {
    const { dir, remove } = temporaryDirectory();
    cleanups.push(remove);
    const agentPath = path.join(dir, "vchan.2.0.6000.sock");
    const proxyPath = path.join(dir, "proxy.sock");
    const agentListener = listenReplacing(agentPath, 1);
    cleanups.push(() => native.close(agentListener.fd));
    const proxy = start(["proxy", "--listen", proxyPath, "--connect", agentPath]);
    cleanups.push(() => proxy.kill("SIGKILL"));
    const followed = follow(proxy);
    await followed.waitFor("stderr", /listening/);
    const daemonFd = await within(connectWhenListening(proxyPath), EVENT_MS, "the daemon's connection to the proxy");
    await within(whenReadable(agentListener.fd), EVENT_MS, "the proxy's connection to the agent");
    const agentFd = native.accept(agentListener.fd) as number;
    await within(followed.waitFor("stdout", /"event":"connected"/), EVENT_MS, "the connected event");
    // Each side sends its version word; neither reads what the other sent, so it waits in its socket.
    native.sendmsg(agentFd, bytes().u32(0x00010008).build());
    native.sendmsg(daemonFd, bytes().u32(0x00010008).build());
    await within(whenReadable(daemonFd), EVENT_MS, "the agent's version word at the daemon");
    await within(whenReadable(agentFd), EVENT_MS, "the daemon's version word at the agent");
    return { ...followed, proxy, agentFd, daemonFd };
  }

  for (const gone of ["daemon", "agent"] as const) {
    it(`prints a closed event with the error when the ${gone} side disconnects abruptly`, async () => {
      const { agentFd, daemonFd, waitFor, output } = await connectedProxy();
      const [goneFd, keptFd] = gone === "daemon" ? [daemonFd, agentFd] : [agentFd, daemonFd];
      // Closing with unread bytes resets the connection (ECONNRESET at the proxy), as a killed process does.
      native.close(goneFd);
      await within(
        waitFor("stdout", new RegExp(`"event":"closed".*"from":"${gone}"`)),
        EVENT_MS,
        `the ${gone}'s closed event`,
      );
      const kept = gone === "daemon" ? "agent" : "daemon";
      await within(
        waitFor("stdout", new RegExp(`"event":"closed".*"from":"${kept}"`)),
        EVENT_MS,
        `the ${kept}'s closed event`,
      );
      const closed = jsonLines(output.stdout)
        .filter((line) => line.event === "closed")
        .map(({ time: _time, ...rest }) => rest);
      expect(closed).toContainEqual({ event: "closed", connection: 1, from: gone, error: "ECONNRESET" });
      expect(closed).toContainEqual({ event: "closed", connection: 1, from: kept, by: "proxy" });
      // The proxy hung up on the other side too.
      await within(whenReadable(keptFd), EVENT_MS, `the hang-up at the ${kept}`);
      native.close(keptFd);
    });
  }

  it("refuses a --listen path that is a regular file, and leaves it as it was", async () => {
    const { dir, remove } = temporaryDirectory();
    cleanups.push(remove);
    const file = path.join(dir, "notes.txt");
    writeFileSync(file, "keep me");
    const proxy = start(["proxy", "--listen", file, "--connect", path.join(dir, "agent.sock")]);
    cleanups.push(() => proxy.kill("SIGKILL"));
    const { output, exited, waitFor } = follow(proxy);
    // No clock: the proxy either exits or (wrongly) says it listens.
    const listened = waitFor("stderr", /listening/).then(
      () => "listening",
      () => "exited",
    );
    expect(await Promise.race([exited.then(() => "exited"), listened])).toBe("exited");
    expect(await exited).toBe(1);
    expect(output.stderr).toBe(`qubes-gui-trace: --listen ${file} exists and is not a socket: not removed\n`);
    expect(readFileSync(file, "utf8")).toBe("keep me");
  });

  it("refuses a --listen socket that a live process serves", async () => {
    const { dir, remove } = temporaryDirectory();
    cleanups.push(remove);
    const socketPath = path.join(dir, "busy.sock");
    const listener = listenReplacing(socketPath, 4);
    cleanups.push(() => native.close(listener.fd));
    const inode = statSync(socketPath).ino;
    const proxy = start(["proxy", "--listen", socketPath, "--connect", path.join(dir, "agent.sock")]);
    cleanups.push(() => proxy.kill("SIGKILL"));
    const { output, exited, waitFor } = follow(proxy);
    const listened = waitFor("stderr", /listening/).then(
      () => "listening",
      () => "exited",
    );
    expect(await Promise.race([exited.then(() => "exited"), listened])).toBe("exited");
    expect(await exited).toBe(1);
    expect(output.stderr).toBe(`qubes-gui-trace: --listen ${socketPath} is served by another live process\n`);
    expect(existsSync(socketPath) && statSync(socketPath).ino).toBe(inode);
  });
});
