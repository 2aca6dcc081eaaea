/**
 * The gui-agent: a Wayland compositor for the domain's apps, joined to the
 * GUI daemon by a vchan server on port 6000 (the agent is the vchan server,
 * reference 1.1). When the daemon goes away the apps keep running; the agent
 * serves the vchan again and replays every window to the next daemon.
 */
import { EventEmitter } from "node:events";

import type { Logger } from "pino";

import { QUBES_GUI_VCHAN_PORT, formatVersion, type XconfMessage } from "../protocol/index.ts";
import { createGrantTable, type DomainId, type GrantBackend, type GrantTable } from "../shm/index.ts";
import { createVchanServer, type Vchan, type VchanBackend } from "../vchan/index.ts";
import { WindowBridge, type AgentCounters } from "./bridge.ts";
import type { AgentCompositor, Size } from "./compositor/api.ts";
import { createAgentCompositor } from "./compositor/index.ts";
import { compileKeymap, type KeymapNames } from "./keymap.ts";
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
}

/** A running agent. */
export class GuiAgent extends EventEmitter<AgentEvents> {
  readonly compositor: AgentCompositor;
  readonly bridge: WindowBridge;
  readonly grants: GrantTable;
  readonly #options: AgentOptions;
  #vchan: Vchan | null = null;
  #link: DaemonLink | null = null;
  #stopped = false;
  /** Links over the agent's life (for counters of messages sent). */
  readonly #linkTotals: LinkCounters = { messagesSent: 0, bytesSent: 0, messagesReceived: 0 };

  constructor(options: AgentOptions, compositor: AgentCompositor, grants: GrantTable) {
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

  /** Serves the vchan until stop(): one daemon at a time, forever. */
  async serve(): Promise<void> {
    const options = this.#options;
    while (!this.#stopped) {
      const vchan = createVchanServer({
        backend: options.vchan,
        domain: options.guiDomain,
        port: QUBES_GUI_VCHAN_PORT,
        ownDomain: options.ownDomain,
        socketDir: options.socketDir,
        readMin: 4096,
        writeMin: 4096,
      });
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
        this.#options.log.info({ reason }, "daemon gone; the apps keep running");
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

/**
 * Starts an agent: compiles the keymap, opens the Wayland socket and the
 * grant table, and begins serving the vchan in the background. Errors that
 * make the agent useless (a busy Wayland socket, no keymap) reject here.
 */
export async function startAgent(options: AgentOptions): Promise<GuiAgent> {
  const keymap = await compileKeymap(options.keyboard);
  const compositor = createAgentCompositor({
    socket: options.waylandDisplay,
    outputSize: options.initialScreen ?? { width: 1920, height: 1080 },
    keymap,
    onHandlerError: ({ pid, request, error }) =>
      options.log.error({ err: error, pid, request }, "a compositor request handler failed; that app was disconnected"),
  });
  let grants: GrantTable;
  try {
    grants = createGrantTable({
      backend: options.grants,
      domain: options.ownDomain,
      socketDir: options.socketDir,
    });
    // The GUI domain fetches our grant pool as soon as it connects; have it ready.
    grants.offer(options.guiDomain);
  } catch (error) {
    compositor.destroy();
    throw error;
  }
  const agent = new GuiAgent(options, compositor, grants);
  agent.serve().catch((error: unknown) => {
    options.log.error({ err: error }, "the agent's vchan server failed");
    agent.stop();
  });
  return agent;
}
