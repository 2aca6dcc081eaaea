/**
 * The whole system for the desktop's end-to-end tests: qubes-gui-desktop in
 * the test's process (so tests know where each window is), and domains as
 * real processes, each a qubes-guid and a qubes-gui-agent running an app
 * (the demo app by default), all on sockets in one temporary directory.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdirSync } from "node:fs";
import path from "node:path";
import { Writable } from "node:stream";

import pino from "pino";

import { compileKeymap, type Rect } from "../../compositor/index.ts";
import { Desktop, startViewer } from "../../desktop/index.ts";
import { pollUntil } from "./guid-harness.ts";
import { READY_TIMEOUT_MS, repoRoot, temporaryDirectory } from "./processes.ts";

export interface DesktopUnderTest {
  desktop: Desktop;
  /** The viewer's URL, with its token. */
  url: string;
  token: string;
  port: number;
  /** The directory of the desktop's socket and the domains' vchan sockets. */
  dir: string;
  /** Every log line of the desktop so far (JSON). */
  logs: string[];
  stop(): Promise<void>;
}

export async function startDesktopUnderTest(size = { width: 1280, height: 800 }): Promise<DesktopUnderTest> {
  const { dir, remove } = temporaryDirectory("qubes-desktop-test-");
  const logs: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString("utf8").split("\n")) if (line !== "") logs.push(line);
      done();
    },
  });
  const log = pino({ level: "debug" }, sink);
  const keymap = await compileKeymap({ layout: "us" });
  const desktop = new Desktop({ socket: path.join(dir, "wayland-desktop"), size, keymap, log });
  let viewer;
  try {
    viewer = await startViewer({ output: desktop, input: desktop, log });
  } catch (error) {
    desktop.destroy();
    remove();
    throw error;
  }
  return {
    desktop,
    url: viewer.url,
    token: viewer.token,
    port: viewer.port,
    dir,
    logs,
    stop: async () => {
      await viewer.close();
      desktop.destroy();
      remove();
    },
  };
}

export interface DomainSpec {
  name: string;
  domain: number;
  /** A label name (blue, green ...). */
  label: string;
  /** The app's command; default the demo app with `--name NAME`. */
  app?: string[];
}

/** A domain: its guid, its agent (restartable) and its app's output. */
export interface DomainUnderTest {
  readonly spec: DomainSpec;
  readonly guid: ChildProcess;
  agent: ChildProcess | null;
  /** The agent's (and so its app's) output so far. */
  output: string;
  /** guid's log so far. */
  guidLog(): string;
  /** Starts the agent and its app; resolves once the app's first window is on the desktop. */
  startAgent(): Promise<void>;
  /** Kills the agent (SIGKILL) and its app; resolves once both are gone. */
  killAgent(): Promise<void>;
  /** This domain's toplevel on the desktop, or undefined. */
  window(): { rect: Rect; title: string } | undefined;
  stop(): Promise<void>;
}

function ended(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once("close", () => resolve()));
}

export async function startDomain(system: DesktopUnderTest, spec: DomainSpec): Promise<DomainUnderTest> {
  const domainDir = path.join(system.dir, `domain-${spec.name}`);
  mkdirSync(domainDir, { mode: 0o700, recursive: true });
  const node = process.execPath;
  // Every guid of the desktop shares the one global clipboard, as the GUI domain's guids do.
  const clipboardDir = path.join(system.dir, "clipboard");
  mkdirSync(clipboardDir, { mode: 0o700, recursive: true });
  const guid = spawn(
    node,
    [
      path.join(repoRoot, "bin", "qubes-guid.js"),
      "-d",
      String(spec.domain),
      "-N",
      spec.name,
      "-l",
      spec.label,
      "-v",
      "--clipboard-dir",
      clipboardDir,
    ],
    {
      cwd: repoRoot,
      stdio: ["ignore", "pipe", "pipe"],
      env: {
        ...process.env,
        WAYLAND_DISPLAY: system.desktop.socketPath,
        VCHAN_SOCKET_DIR: system.dir,
        VCHAN_DOMAIN: "0",
      },
    },
  );
  let guidLog = "";
  guid.stderr?.setEncoding("utf8").on("data", (chunk: string) => (guidLog += chunk));
  const app = spec.app ?? [node, path.join(repoRoot, "bin", "qubes-demo-app.js"), "--name", spec.name];
  const domain: DomainUnderTest = {
    spec,
    guid,
    agent: null,
    output: "",
    guidLog: () => guidLog,
    window() {
      const found = system.desktop.shown.find(
        (shown) => shown.kind === "toplevel" && shown.window.title.startsWith(`[${spec.name}]`),
      );
      return found === undefined ? undefined : { rect: found.rect, title: found.window.title };
    },
    async startAgent() {
      const agent = spawn(
        node,
        [
          path.join(repoRoot, "bin", "qubes-gui-agent.js"),
          "-d",
          "0",
          "--wayland-display",
          path.join(domainDir, "wayland-qubes"),
          "--",
          ...app,
        ],
        {
          cwd: repoRoot,
          stdio: ["ignore", "pipe", "pipe"],
          detached: true,
          env: {
            PATH: process.env.PATH,
            HOME: domainDir,
            LANG: "C.UTF-8",
            XDG_RUNTIME_DIR: domainDir,
            VCHAN_SOCKET_DIR: system.dir,
            VCHAN_DOMAIN: String(spec.domain),
            QUBES_VM_NAME: spec.name,
          },
        },
      );
      domain.agent = agent;
      for (const stream of [agent.stdout, agent.stderr]) {
        stream?.setEncoding("utf8").on("data", (chunk: string) => (domain.output += chunk));
      }
      await pollUntil(
        () => domain.window(),
        `${spec.name}'s window on the desktop\n--- agent:\n${domain.output.slice(-3000)}\n--- guid:\n${guidLog.slice(-3000)}`,
        READY_TIMEOUT_MS,
      );
    },
    async killAgent() {
      const agent = domain.agent;
      if (agent === null) return;
      domain.agent = null;
      try {
        process.kill(-(agent.pid as number), "SIGKILL");
      } catch {
        agent.kill("SIGKILL");
      }
      await ended(agent);
    },
    async stop() {
      await domain.killAgent();
      guid.kill("SIGTERM");
      const timer = setTimeout(() => guid.kill("SIGKILL"), 5000);
      await ended(guid);
      clearTimeout(timer);
    },
  };
  await domain.startAgent();
  return domain;
}
