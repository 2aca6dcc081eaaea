/**
 * guid's sessions against hand-built agents: a headless sway for the whole
 * file, a guid in the test's process per test (startGuid), AgentPeers that
 * send bytes built by hand from the reference's layouts (agent), and the
 * waits on what reaches the host (nextCommit, settled, viewOf). Used by the
 * session and security-bulletin tests.
 */
import { afterAll, afterEach, beforeAll, beforeEach } from "vitest";

import type { Session } from "../../guid/index.ts";
import { listenAgentPeer, type AgentFramebuffer, type AgentPeer } from "./agent-peer.ts";
import { startSway, type RgbImage, type RunningCompositor } from "./compositors.ts";
import {
  pixelAt,
  pollUntil,
  sessionCommit,
  startGuidUnderTest,
  swayViews,
  viewRect,
  type GuidUnderTest,
  type HarnessDomain,
} from "./guid-harness.ts";
import { temporaryDirectory } from "./processes.ts";

export const GUI = 0;
export const WORK = 5;
export const PERSONAL = 6;
export const BLUE = 0x3465a4;
export const GREEN = 0x73d216;
export const BORDER = 2;
export const W1 = 0x00400001;
export const W2 = 0x00400002;

/** A pattern no two nearby pixels share: every row and column differ. */
export function patternColor(x: number, y: number): number {
  return ((x * 7) & 0xff) | (((y * 5) & 0xff) << 8) | ((((x + y) * 3) & 0xff) << 16);
}

export function drawPattern(framebuffer: AgentFramebuffer): void {
  for (let y = 0; y < framebuffer.height; y++) {
    for (let x = 0; x < framebuffer.width; x++) framebuffer.setPixel(x, y, patternColor(x, y));
  }
}

/** Pixels of the content at `origin` (screen) that differ from `expected(x, y)`. */
export function contentMismatches(
  image: RgbImage,
  origin: { x: number; y: number },
  size: { width: number; height: number },
  expected: (x: number, y: number) => number,
): string[] {
  const wrong: string[] = [];
  for (let y = 0; y < size.height; y++) {
    for (let x = 0; x < size.width; x++) {
      const got = pixelAt(image, origin.x + x, origin.y + y);
      if (got !== expected(x, y) && wrong.length < 10) wrong.push(`(${x},${y})=#${got.toString(16)}`);
    }
  }
  return wrong;
}

export interface GuidSessions {
  readonly sway: RunningCompositor;
  /** This test's directory of vchan and grant sockets. */
  readonly dir: string;
  readonly under: GuidUnderTest | null;
  startGuid(domains?: HarnessDomain[], handshakeTimeoutMs?: number): Promise<GuidUnderTest>;
  agent(domain?: number, version?: number): Promise<AgentPeer>;
  session(index?: number): Session;
  /** Resolves at the next commit of `window` on the host, then lets sway see it; bounded. */
  nextCommit(index: number, window: number, timeoutMs?: number): Promise<void>;
  /** Shows a mapped window of `width`×`height` at (x, y) with a framebuffer drawn by `draw`; resolves when sway shows it. */
  showWindow(
    peer: AgentPeer,
    index: number,
    id: number,
    rect: { x: number; y: number; width: number; height: number },
    options?: { scattered?: boolean; title?: string; resClass?: string; draw?: (fb: AgentFramebuffer) => void },
  ): Promise<AgentFramebuffer>;
  /** Resolves once `window` has no damage waiting and no frame callback outstanding on the host. */
  settled(index: number, window: number): Promise<void>;
  /** The rectangle of sway's view with `appId`, once sway shows it. */
  viewOf(appId: string): Promise<{ x: number; y: number; width: number; height: number }>;
}

/** Registers the file's hooks (sway for the file; a directory, guid and peers per test) and returns the toolkit. */
export function useGuidSessions(size = { width: 800, height: 600 }): GuidSessions {
  let sway: RunningCompositor | undefined;
  let dir: { dir: string; remove: () => void } | undefined;
  let under: GuidUnderTest | null = null;
  const peers: AgentPeer[] = [];

  beforeAll(async () => {
    sway = await startSway(size);
  });
  afterAll(async () => {
    await sway?.stop();
  });
  beforeEach(() => {
    dir = temporaryDirectory("guid-session-");
  });
  afterEach(async () => {
    await under?.stop();
    under = null;
    for (const peer of peers.splice(0)) peer.close();
    dir?.remove();
  });

  const need = <T>(value: T | undefined, what: string): T => {
    if (value === undefined) throw new Error(`${what} is not set up (outside a test?)`);
    return value;
  };

  const toolkit: GuidSessions = {
    get sway() {
      return need(sway, "sway");
    },
    get dir() {
      return need(dir, "the test directory").dir;
    },
    get under() {
      return under;
    },
    async startGuid(domains = [{ domain: WORK, name: "work" }], handshakeTimeoutMs) {
      under = await startGuidUnderTest(toolkit.sway, {
        socketDir: toolkit.dir,
        domains,
        ownDomain: GUI,
        ...(handshakeTimeoutMs === undefined ? {} : { handshakeTimeoutMs }),
      });
      return under;
    },
    async agent(domain = WORK, version) {
      const peer = await listenAgentPeer({
        agentDomain: domain,
        guiDomain: GUI,
        socketDir: toolkit.dir,
        ...(version === undefined ? {} : { version }),
      });
      peers.push(peer);
      return peer;
    },
    session(index = 0) {
      const found = under?.guid.sessions[index];
      if (found === undefined) throw new Error(`no session ${index}`);
      return found;
    },
    async nextCommit(index, window, timeoutMs = 10_000) {
      await sessionCommit(toolkit.session(index), window, timeoutMs);
      await under?.guid.display.roundtrip();
    },
    async showWindow(peer, index, id, rect, options = {}) {
      const framebuffer = peer.framebuffer(rect.width, rect.height, { scattered: options.scattered ?? false });
      (options.draw ?? ((fb) => drawPattern(fb)))(framebuffer);
      peer.create(id, rect);
      peer.wmclass(id, options.resClass ?? "Test", options.resClass ?? "test");
      peer.wmname(id, options.title ?? `window ${id.toString(16)}`);
      peer.map(id);
      const committed = toolkit.nextCommit(index, id);
      peer.windowDump(id, rect.width, rect.height, framebuffer.refs);
      peer.shmimage(id, { x: 0, y: 0, width: rect.width, height: rect.height });
      await committed;
      return framebuffer;
    },
    async settled(index, window) {
      await pollUntil(
        () => {
          const host = toolkit.session(index).windows?.get(window)?.host;
          return host !== undefined && host !== null && !host.framePending && host.pendingDamage.length === 0;
        },
        `window 0x${window.toString(16)} to have no damage pending`,
      );
    },
    async viewOf(appId) {
      const view = await pollUntil(
        async () => (await swayViews(toolkit.sway)).find((candidate) => candidate.app_id === appId),
        `sway to show a window with app_id ${appId}`,
      );
      return viewRect(view);
    },
  };
  return toolkit;
}
