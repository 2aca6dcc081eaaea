/**
 * A running guid: one connection to the host compositor, one grant table,
 * one shared clipboard, and one {@link Session} per domain. qubes-guid runs
 * one domain per process as upstream does; the same object serves several
 * domains in one process (tests and benchmarks do that), each session
 * isolated from the others: a session's end touches only its own windows.
 */
import type { Logger } from "pino";

import type { VmName } from "../decorator/index.ts";
import { createGrantTable, type DomainId, type GrantBackend, type GrantTable } from "../shm/index.ts";
import type { VchanBackend } from "../vchan/index.ts";
import { GuiClipboard } from "./clipboard.ts";
import type { GuidConfig } from "./config.ts";
import { createCounters, type GuidCounters } from "./counters.ts";
import { HostDisplay } from "./host/display.ts";
import { Session } from "./session.ts";

/** One domain to serve. */
export interface DomainSpec {
  domain: DomainId;
  vmName: VmName;
  /** Label colour of its frames, 0xRRGGBB. */
  frameColor: number;
  config: GuidConfig;
  invisible?: boolean;
}

/** Options of {@link startGuid}. */
export interface GuidOptions {
  domains: DomainSpec[];
  /** The host compositor: a display name or socket path; default $WAYLAND_DISPLAY. */
  display?: string;
  runtimeDir?: string;
  /** Shared clipboard directory, or null for a clipboard in this process only. */
  clipboardDir: string | null;
  vchan?: VchanBackend;
  grants?: GrantBackend;
  /** This (the GUI) domain's id; default VCHAN_DOMAIN, else 0. */
  ownDomain?: DomainId;
  socketDir?: string;
  /** How long a connected agent has for its grant pool and version word; default 10 s. */
  handshakeTimeoutMs?: number;
  log: Logger;
}

/** What runs. */
export class Guid {
  readonly display: HostDisplay;
  readonly grants: GrantTable;
  readonly clipboard: GuiClipboard;
  readonly counters: GuidCounters;
  readonly sessions: readonly Session[];
  /** Settles when every session stopped; rejects when the host compositor went away. */
  readonly done: Promise<void>;
  #stopped = false;

  /** @internal use {@link startGuid}. */
  constructor(
    display: HostDisplay,
    grants: GrantTable,
    clipboard: GuiClipboard,
    counters: GuidCounters,
    options: GuidOptions,
  ) {
    this.display = display;
    this.grants = grants;
    this.clipboard = clipboard;
    this.counters = counters;
    this.sessions = options.domains.map(
      (spec) =>
        new Session({
          ...spec,
          ...(options.vchan === undefined ? {} : { vchan: options.vchan }),
          ...(options.ownDomain === undefined ? {} : { ownDomain: options.ownDomain }),
          ...(options.socketDir === undefined ? {} : { socketDir: options.socketDir }),
          ...(options.handshakeTimeoutMs === undefined ? {} : { handshakeTimeoutMs: options.handshakeTimeoutMs }),
          grants,
          display,
          clipboard,
          counters,
          log: options.log.child({ domain: spec.vmName }),
        }),
    );
    const lost = new Promise<never>((_, reject) => {
      display.onClosed((error) => {
        if (this.#stopped) return;
        reject(new Error(`the host compositor went away${error === undefined ? "" : `: ${error.message}`}`));
      });
    });
    lost.catch(() => undefined);
    this.done = Promise.race([Promise.all(this.sessions.map((session) => session.run())).then(() => undefined), lost]);
    this.done.catch(() => this.stop());
  }

  /** Ends every session, the host connection and the grant table. Idempotent. */
  stop(): void {
    if (this.#stopped) return;
    this.#stopped = true;
    for (const session of this.sessions) session.stop();
    // Let the sessions tear down their windows first, then close what they used.
    queueMicrotask(() => {
      setImmediate(() => {
        this.display.destroy();
        this.grants.destroy();
      });
    });
  }
}

/**
 * Connects to the host compositor and starts serving every domain. Rejects
 * (with a message naming the problem) when the host compositor is missing
 * or lacks what guid needs.
 */
export async function startGuid(options: GuidOptions): Promise<Guid> {
  const display = await HostDisplay.connect({
    ...(options.display === undefined ? {} : { display: options.display }),
    ...(options.runtimeDir === undefined ? {} : { runtimeDir: options.runtimeDir }),
    log: options.log,
  });
  let grants: GrantTable;
  let clipboard: GuiClipboard;
  try {
    grants = createGrantTable({
      ...(options.grants === undefined ? {} : { backend: options.grants }),
      ...(options.ownDomain === undefined ? {} : { domain: options.ownDomain }),
      ...(options.socketDir === undefined ? {} : { socketDir: options.socketDir }),
    });
    clipboard = new GuiClipboard({ dir: options.clipboardDir, log: options.log });
  } catch (error) {
    display.destroy();
    throw error;
  }
  return new Guid(display, grants, clipboard, createCounters(), options);
}
