import { spawn, type ChildProcess } from "node:child_process";
import { writeFileSync } from "node:fs";
import net from "node:net";
import path from "node:path";

import { afterEach, describe, expect, it } from "vitest";

import { messageToJson } from "../../protocol/trace/json.ts";
import { finished, repoRoot, temporaryDirectory } from "../helpers/processes.ts";
import { bytes, concat, fromHex } from "./bytes.ts";
import { fixtures } from "./fixtures.ts";

const cli = path.join(repoRoot, "bin", "qubes-gui-trace.js");

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

  it("reports input that ends inside a message", async () => {
    const { code, stderr } = await run(
      ["decode", "--from", "agent"],
      (fixtures[0]?.bytes ?? new Uint8Array()).subarray(0, 20),
    );
    expect(code).toBe(2);
    expect(stderr).toMatch(/offset 20: TRUNCATED/);
  });

  for (const [args, problem] of [
    [["decode"], /--from is required/],
    [["decode", "--from", "vm"], /--from must be agent or daemon, got "vm"/],
    [["decode", "--from", "agent", "--version", "2.0"], /--version must look like 1.8, got "2.0"/],
    [["decode", "--from", "agent", "--bogus"], /Unknown option '--bogus'/],
    [["decode", "--from", "agent", "a", "b"], /at most one FILE/],
    [["frobnicate"], /unknown command "frobnicate"/],
    [[], /missing command/],
    [["proxy", "--listen", "/tmp/x"], /--connect PATH is required/],
  ] as const) {
    it(`exits 2 naming the problem for: ${args.join(" ") || "(no arguments)"}`, async () => {
      const { code, stderr } = await run([...args]);
      expect(code).toBe(2);
      expect(stderr).toMatch(problem);
    });
  }
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
  it("passes both directions unchanged and prints them with time and direction", async () => {
    const { dir, remove } = temporaryDirectory();
    cleanups.push(remove);
    const agentPath = path.join(dir, "vchan.2.0.6000.sock");
    const proxyPath = path.join(dir, "proxy.sock");

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

    const proxy = start(["proxy", "--listen", proxyPath, "--connect", agentPath]);
    const output = { stdout: "", stderr: "" };
    proxy.stdout?.setEncoding("utf8").on("data", (chunk: string) => (output.stdout += chunk));
    const listening = new Promise<void>((resolve) => {
      proxy.stderr?.setEncoding("utf8").on("data", (chunk: string) => {
        output.stderr += chunk;
        if (output.stderr.includes("listening")) resolve();
      });
    });
    const exited = finished(proxy);
    cleanups.push(() => proxy.kill("SIGKILL"));
    await listening;

    // The daemon: vchan client through the proxy.
    const daemonReceived: Buffer[] = [];
    const daemon = net.connect(proxyPath);
    const daemonDone = new Promise<void>((resolve) => daemon.on("end", () => resolve()));
    daemon.on("data", (chunk: Buffer) => daemonReceived.push(chunk));
    daemon.on("connect", () => {
      daemon.write(daemonToAgent.subarray(0, 3));
      setImmediate(() => daemon.write(daemonToAgent.subarray(3)));
    });
    await Promise.all([agentDone, daemonDone]);
    daemon.end();

    expect(Buffer.concat(daemonReceived).toString("hex")).toBe(Buffer.from(agentToDaemon).toString("hex"));
    expect(Buffer.concat(agentReceived).toString("hex")).toBe(Buffer.from(daemonToAgent).toString("hex"));

    proxy.kill("SIGTERM");
    await exited;
    const lines = output.stdout
      .trim()
      .split("\n")
      .map((line) => JSON.parse(line) as Record<string, unknown>);
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
  });
});
