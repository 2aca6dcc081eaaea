/**
 * The gui-agent: a Wayland compositor for the domain's apps, joined to the
 * GUI daemon by a vchan server on port 6000 (the agent is the vchan server,
 * reference 1.1). When the daemon goes away the apps keep running; the agent
 * serves the vchan again and replays every window to the next daemon.
 */
import { EventEmitter } from "node:events";
import { mkdirSync } from "node:fs";
import path from "node:path";

import type { Logger } from "pino";

import { QUBES_GUI_VCHAN_PORT, formatVersion, type XconfMessage } from "../protocol/index.ts";
import {
  createGrantTable,
  socketDirectoryFromEnvironment,
  xenGrantAvailability,
  type DomainId,
  type GrantBackend,
  type GrantTable,
} from "../shm/index.ts";
import { createVchanServer, defaultVchanBackend, type Vchan, type VchanBackend } from "../vchan/index.ts";
import { WindowBridge, type AgentCounters } from "./bridge.ts";
import type { Compositor, Size } from "../compositor/index.ts";
import { createCompositor } from "../compositor/index.ts";
import { compileKeymap, type KeymapNames } from "../compositor/index.ts";
import { DaemonLink, type LinkCounters } from "./link.ts";

/** Options of {@link startAgent}. */
export interface AgentOptions {
  /** The GUI domain (where the daemon runs): the vchan peer and the grantee of framebuffers. */
  guiDomain: DomainId;
  /** This domain's id; default VCHAN_DOMAIN, else 0. */
  ownDomain?: DomainId;
  /** vchan backend; default xen where available, else socket. */
  vchan?: VchanBackend;
  /** Grant backend; default xen where available, else memfd. */
  grants?: GrantBackend;
  /** Rendezvous directory of the socket and shm backends; default VCHAN_SOCKET_DIR, else /var/run/vchan. */
  socketDir?: string;
  /** The apps' Wayland socket: a name in XDG_RUNTIME_DIR or an absolute path. */
  waylandDisplay: string;
  /** Keyboard layout (RMLVO); default us. */
  keyboard?: KeymapNames;
  /** Output size before the daemon's xconf arrives. */
  initialScreen?: Size;
  log: Logger;
}

/** What the agent announces. */
export interface AgentEvents {
  /** A daemon connected and the handshake finished. */
  connected: [version: number, xconf: XconfMessage];
  /** The daemon went away (or broke the protocol): the agent waits for the next. */
  disconnected: [reason: string];
  /** The vchan could not be served again (e.g. another process took its path): the agent has stopped. */
  failed: [error: unknown];
}

/** A running agent. */
export class GuiAgent extends EventEmitter<AgentEvents> {
  readonly compositor: Compositor;
  readonly bridge: WindowBridge;
  readonly grants: GrantTable;
  readonly #options: AgentOptions;
  #vchan: Vchan | null = null;
  #link: DaemonLink | null = null;
  #stopped = false;
  /** Links over the agent's life (for counters of messages sent). */
  readonly #linkTotals: LinkCounters = { messagesSent: 0, bytesSent: 0, messagesReceived: 0 };

  constructor(options: AgentOptions, compositor: Compositor, grants: GrantTable) {
    super();
    this.#options = options;
    this.compositor = compositor;
    this.grants = grants;
    this.bridge = new WindowBridge({ compositor, grants, guiDomain: options.guiDomain, log: options.log });
  }

  /** Counters of copies, frames and messages, for tests and benchmarks. */
  get counters(): AgentCounters & LinkCounters {
    const current = this.#link?.counters ?? { messagesSent: 0, bytesSent: 0, messagesReceived: 0 };
    return {
      ...this.bridge.counters,
      messagesSent: this.#linkTotals.messagesSent + current.messagesSent,
      bytesSent: this.#linkTotals.bytesSent + current.bytesSent,
      messagesReceived: this.#linkTotals.messagesReceived + current.messagesReceived,
    };
  }

  /** True while a daemon is connected and past the handshake. */
  get connected(): boolean {
    return this.#link !== null && this.#link.version !== 0 && !this.#link.closed;
  }

  /**
   * Serves the vchan until stop(): one daemon at a time, forever, on `first`
   * (a server made by startAgent) and then on a new server after each daemon.
   */
  async serve(first: Vchan | null = null): Promise<void> {
    const options = this.#options;
    let next = first;
    while (!this.#stopped) {
      const vchan = next ?? createDaemonServer(options);
      next = null;
      this.#vchan = vchan;
      options.log.info({ guiDomain: options.guiDomain, backend: vchan.backend }, "waiting for the GUI daemon");
      try {
        await vchan.whenConnected();
      } catch (error) {
        if (this.#stopped) break;
        options.log.warn({ err: error }, "vchan server failed; serving again");
        vchan.close();
        continue;
      }
      if (this.#stopped) {
        vchan.close();
        break;
      }
      await this.#runLink(vchan);
    }
  }

  #runLink(vchan: Vchan): Promise<void> {
    const link = new DaemonLink(vchan);
    this.#link = link;
    return new Promise((resolve) => {
      link.once("ready", (version, xconf) => {
        this.#options.log.info(
          { version: formatVersion(version), screen: `${xconf.w}x${xconf.h}` },
          "daemon connected",
        );
        this.bridge.attach(link, xconf);
        this.emit("connected", version, xconf);
      });
      link.once("close", (reason) => {
        this.#linkTotals.messagesSent += link.counters.messagesSent;
        this.#linkTotals.bytesSent += link.counters.bytesSent;
        this.#linkTotals.messagesReceived += link.counters.messagesReceived;
        this.#link = null;
        this.bridge.detach();
        if (reason === DAEMON_WENT_AWAY || this.#stopped) {
          this.#options.log.info({ reason }, "daemon gone; the apps keep running");
        } else {
          // The daemon broke the protocol, refused our version or stopped reading: the agent ended the link.
          this.#options.log.warn(
            { guiDomain: this.#options.guiDomain, reason },
            "disconnected the GUI daemon; the apps keep running",
          );
        }
        this.emit("disconnected", reason);
        resolve();
      });
    });
  }

  /** Stops serving, closes the link and the compositor (apps lose their display), revokes every grant. */
  stop(): void {
    if (this.#stopped) return;
    this.#stopped = true;
    this.#link?.close("agent stopping");
    this.#vchan?.close();
    this.bridge.destroy();
    this.compositor.destroy();
    this.grants.destroy();
  }
}

/** DaemonLink's reason for a daemon that closed its end: the one disconnect that is not the daemon's fault. */
const DAEMON_WENT_AWAY = "the daemon went away";

/** A vchan server for the next daemon (port 6000, the agent is the server). */
function createDaemonServer(options: AgentOptions): Vchan {
  return createVchanServer({
    backend: options.vchan,
    domain: options.guiDomain,
    port: QUBES_GUI_VCHAN_PORT,
    ownDomain: options.ownDomain,
    socketDir: options.socketDir,
    readMin: 4096,
    writeMin: 4096,
  });
}

/**
 * Creates a directory the agent owns (and its missing parents) with mode 0700:
 * only this user reaches the sockets in it. An existing directory is used as
 * it is, so a deployment whose daemon runs as another user prepares it (a
 * group both share); a path that is not a directory is an error naming it.
 */
function createOwnDirectory(dir: string, what: string): void {
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? "unknown error";
    const why = code === "EEXIST" || code === "ENOTDIR" ? " (a file that is not a directory is in the way)" : "";
    throw new Error(`cannot create ${what} ${dir}: ${code}${why}`, { cause: error });
  }
}

/**
 * Starts an agent: creates the directories it owns, compiles the keymap,
 * opens the Wayland socket, the grant table and the first vchan server, and
 * begins serving the vchan in the background. Errors that make the agent
 * useless reject here, each naming its path: a Wayland, grant or vchan
 * socket another live process serves (EADDRINUSE), a backend this machine
 * lacks, a directory that cannot be created, no keymap.
 */
export async function startAgent(options: AgentOptions): Promise<GuiAgent> {
  const vchan = options.vchan ?? defaultVchanBackend();
  const grantBackend = options.grants ?? (xenGrantAvailability().available ? "xen" : "memfd");
  const socketDir = options.socketDir ?? socketDirectoryFromEnvironment();
  const settled: AgentOptions = { ...options, vchan, grants: grantBackend, socketDir };
  if (vchan !== "xen" || grantBackend === "memfd") createOwnDirectory(socketDir, "the vchan socket directory");
  if (path.isAbsolute(options.waylandDisplay)) {
    createOwnDirectory(path.dirname(options.waylandDisplay), "the Wayland socket's directory");
  }
  const keymap = await compileKeymap(options.keyboard);
  const compositor = createCompositor({
    socket: options.waylandDisplay,
    outputSize: options.initialScreen ?? { width: 1920, height: 1080 },
    keymap,
    onClientEnded: ({ pid, code, reason }) => options.log.warn({ clientPid: pid, code, reason }, "disconnected an app"),
    onHandlerError: ({ pid, request, error }) =>
      options.log.error(
        { err: error, clientPid: pid, request },
        "a compositor request handler failed; that app was disconnected",
      ),
  });
  let grants: GrantTable | null = null;
  let first: Vchan;
  try {
    grants = createGrantTable({ backend: grantBackend, domain: options.ownDomain, socketDir });
    // The GUI domain fetches our grant pool as soon as it connects; have it ready.
    grants.offer(options.guiDomain);
    first = createDaemonServer(settled);
  } catch (error) {
    grants?.destroy();
    compositor.destroy();
    throw error;
  }
  const agent = new GuiAgent(settled, compositor, grants);
  agent.serve(first).catch((error: unknown) => {
    options.log.error({ err: error }, "the agent's vchan server failed; the agent stops");
    agent.stop();
    agent.emit("failed", error);
  });
  return agent;
}
