/**
 * Makes the corpus of the fuzz target `session` (test/fuzz/corpus/session/):
 * real captures of the agent → daemon bytes of real sessions, and the
 * agent-side fixtures of test/protocol/fixtures.ts as one stream.
 *
 *   node --import tsx test/fuzz/session/capture.ts
 *
 * A capture: our Desktop in this process as the host; a real qubes-guid
 * (bin/qubes-guid.js) on it; a real qubes-gui-agent (bin/qubes-gui-agent.js)
 * running an app (the demo app, foot); and qubes-gui-trace proxy --raw
 * between them, on their vchan sockets (guid's socket directory holds the
 * proxy's socket and a link to the agent's grant socket). The app runs for
 * a few seconds with a click and some typing on its window; the capture is
 * cut at the last whole message under MAX_BYTES, so the corpus stays small.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";

import { fixtures } from "../../protocol/fixtures.ts";
import { repoRoot } from "../../helpers/processes.ts";
import { splitStream } from "./corpus.ts";
import { startDesktopHost, type FuzzHost } from "./hosts.ts";

const CORPUS = path.join(repoRoot, "test", "fuzz", "corpus", "session");
const MAX_BYTES = 64 * 1024;
const AGENT_DOMAIN = 9;
const BTN_LEFT = 0x110;

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function ended(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once("close", () => resolve()));
}

async function until<T>(probe: () => Promise<T | null> | T | null, what: string, ms: number): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await probe();
    if (value !== null) return value;
    if (Date.now() > deadline) throw new Error(`${what} did not happen within ${ms} ms`);
    await sleep(50);
  }
}

/** Records one session of `app` and writes its agent → daemon bytes to `name` in the corpus. */
async function capture(host: FuzzHost, name: string, app: string[]): Promise<void> {
  const desktop = host.desktop;
  if (desktop === null) throw new Error("captures need the Desktop for input");
  const root = mkdtempSync(path.join(tmpdir(), "fuzz-capture-"));
  const agentDir = path.join(root, "agent");
  const guidDir = path.join(root, "guid");
  for (const dir of [agentDir, guidDir]) mkdirSync(dir, { mode: 0o700 });
  const children: ChildProcess[] = [];
  const output: string[] = [];
  const start = (args: string[], env: NodeJS.ProcessEnv): ChildProcess => {
    const child = spawn(process.execPath, args, {
      cwd: repoRoot,
      stdio: ["ignore", "pipe", "pipe"],
      env,
      detached: true,
    });
    for (const stream of [child.stdout, child.stderr])
      stream?.setEncoding("utf8").on("data", (chunk: string) => output.push(chunk));
    children.push(child);
    return child;
  };
  try {
    start(
      [
        path.join(repoRoot, "bin", "qubes-gui-agent.js"),
        "-d",
        "0",
        "--wayland-display",
        path.join(agentDir, "wayland-qubes"),
        "--",
        ...app,
      ],
      {
        PATH: process.env.PATH,
        HOME: agentDir,
        LANG: "C.UTF-8",
        XDG_RUNTIME_DIR: agentDir,
        VCHAN_SOCKET_DIR: agentDir,
        VCHAN_DOMAIN: String(AGENT_DOMAIN),
        QUBES_VM_NAME: "capture",
      },
    );
    const agentSocket = path.join(agentDir, `vchan.${AGENT_DOMAIN}.0.6000.sock`);
    const grantSocket = `qubes-grant.${AGENT_DOMAIN}.0.sock`;
    await until(
      () => (readdirOk(agentDir, path.basename(agentSocket)) ? true : null),
      "the agent's vchan socket",
      30_000,
    );
    symlinkSync(path.join(agentDir, grantSocket), path.join(guidDir, grantSocket));
    const raw = path.join(root, "raw");
    start(
      [
        path.join(repoRoot, "bin", "qubes-gui-trace.js"),
        "proxy",
        "--listen",
        path.join(guidDir, `vchan.${AGENT_DOMAIN}.0.6000.sock`),
        "--connect",
        agentSocket,
        "--raw",
        raw,
      ],
      { PATH: process.env.PATH },
    );
    await sleep(1000);
    start([path.join(repoRoot, "bin", "qubes-guid.js"), "-d", String(AGENT_DOMAIN), "-N", "capture", "-l", "green"], {
      PATH: process.env.PATH,
      WAYLAND_DISPLAY: desktop.socketPath,
      XDG_RUNTIME_DIR: path.dirname(desktop.socketPath),
      VCHAN_SOCKET_DIR: guidDir,
      VCHAN_DOMAIN: "0",
    });
    const shown = await until(
      () =>
        desktop.shown.find((entry) => entry.kind === "toplevel" && entry.window.title.startsWith("[capture]")) ?? null,
      `the ${name} window on the desktop\n${output.join("").slice(-3000)}`,
      60_000,
    );
    const { rect } = shown;
    desktop.pointerMove(rect.x + Math.floor(rect.width / 2), rect.y + Math.floor(rect.height / 2));
    desktop.pointerButton(BTN_LEFT, true);
    desktop.pointerButton(BTN_LEFT, false);
    for (const code of [35, 18, 38, 38, 24, 28]) {
      desktop.key(code, true);
      desktop.key(code, false);
      await sleep(100);
    }
    await sleep(3000);
    for (const child of children.slice(0, 1)) process.kill(-(child.pid as number), "SIGKILL");
    await sleep(500);
    const bytes = new Uint8Array(readFileSync(`${raw}.agent`));
    const stream = splitStream(bytes);
    let length = stream.version === null ? 0 : 4;
    for (const message of stream.messages) {
      if (length + message.length > MAX_BYTES) break;
      length += message.length;
    }
    writeFileSync(path.join(CORPUS, name), bytes.subarray(0, length));
    process.stdout.write(`${name}: ${length} of ${bytes.length} bytes, ${stream.messages.length} messages captured\n`);
  } finally {
    for (const child of children) {
      try {
        process.kill(-(child.pid as number), "SIGKILL");
      } catch {
        // Gone already.
      }
    }
    await Promise.all(children.map(ended));
    rmSync(root, { recursive: true, force: true });
  }
}

function readdirOk(dir: string, name: string): boolean {
  try {
    readFileSync(path.join(dir, name));
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "ENXIO";
  }
}

/** The agent-side fixtures, each once, after a 1.8 version word: hand-written bytes of every agent message type. */
function writeFixtures(): void {
  const parts = [
    Uint8Array.of(8, 0, 1, 0),
    ...fixtures.filter((fixture) => fixture.from === "agent").map((fixture) => fixture.bytes),
  ];
  const out = new Uint8Array(parts.reduce((sum, part) => sum + part.length, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  writeFileSync(path.join(CORPUS, "fixtures.agent"), out);
  process.stdout.write(`fixtures.agent: ${out.length} bytes, ${parts.length - 1} messages\n`);
}

mkdirSync(CORPUS, { recursive: true });
writeFixtures();
const host = await startDesktopHost({ width: 1280, height: 800 });
try {
  await capture(host, "demo-app.agent", [
    process.execPath,
    path.join(repoRoot, "bin", "qubes-demo-app.js"),
    "--name",
    "capture",
  ]);
  await capture(host, "foot.agent", ["foot"]);
} finally {
  await host.close();
}
process.exit(0);
