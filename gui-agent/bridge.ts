/**
 * The Qubes side of the agent: turns the compositor's windows into Qubes
 * windows on the wire (qubes-gui-protocol.md 1.8), copies their damaged
 * pixels into granted framebuffers, and turns the daemon's messages into
 * input, configures, closes and clipboard transfers for the apps.
 *
 * The bridge outlives daemon connections: windows, framebuffers and ids stay
 * while no daemon is connected, and every window is replayed to the next one
 * (reference 1.3).
 *
 * Fairness: a commit's damage is copied in slices of whole rows, within a
 * time budget per turn of the event loop, round robin over the windows with
 * copies in flight, so one huge commit (up to 16384×6144, 400 MB) never
 * stalls the other apps. The app's buffer stays held (no release) until its
 * copy is done, and its frame callbacks wait for that too. The SHMIMAGEs
 * (and the WINDOW_DUMP of a new size) go out once a commit is all in, one
 * per damaged rectangle: the host presents whole app frames, never a half
 * copied one on our word, and a frame costs the daemon the messages it
 * always did. A newer commit of the window takes over an unfinished copy:
 * what was not copied yet is copied from the newer pixels, with the newer
 * damage.
 *
 * Pacing: frame callbacks fire on the compositor's 60 Hz refresh clock, and
 * only while a daemon shows the window (it is MAPped on the current link):
 * an app animating for nobody is held at its last frame.
 */
import type { Logger } from "pino";

import {
  MAX_CLIPBOARD_BUFFER_SIZE,
  MAX_WINDOW_HEIGHT,
  MAX_WINDOW_WIDTH,
  MAX_CLIPBOARD_SIZE,
  PMaxSize,
  PMinSize,
  VERSION_CURSOR,
  VERSION_DESTROY_ACK,
  VERSION_LARGE_CLIPBOARD,
  VERSION_WINDOW_DUMP_ACK,
  WINDOW_DUMP_TYPE_GRANT_REFS,
  WINDOW_FLAG_DEMANDS_ATTENTION,
  WINDOW_FLAG_FULLSCREEN,
  WINDOW_FLAG_MINIMIZE,
  wmclassField,
  wmnameData,
  type Message,
  type XconfMessage,
} from "../protocol/index.ts";
import { DumpQueue, Framebuffer, type DomainId, type GrantTable } from "../shm/index.ts";
import type {
  Compositor,
  CommitHold,
  ShellWindow,
  Size,
  WindowCommit,
  WindowLayer,
  WindowRequest,
} from "../compositor/index.ts";
import { clampOutputSize, coalesceDamage } from "../compositor/index.ts";
import { cursorFromName } from "./cursors.ts";
import { copyBlock, type PixelBuffer } from "./damage.ts";
import type { Rect } from "../compositor/index.ts";
import { evdevFromXKeycode, modifiersFromXState, pointerActionFromXButton } from "./input-map.ts";
import type { DaemonLink } from "./link.ts";

/** Bytes a slice of a copy covers at most (whole rows of one rectangle, at least one row). */
const SLICE_BYTES = 1 << 20;

/**
 * Time the copies may take in one turn of the event loop, in ms (a quarter
 * of a 60 Hz frame): then other apps' requests and other windows' copies
 * get their turn. A 1920×1080 frame is one turn; 16384×6144 is about 50.
 */
const TURN_BUDGET_MS = 4;

/**
 * WINDOW_DUMPs of one window the daemon may leave unacknowledged. At the
 * bound the window keeps its framebuffer (no new size is granted or dumped)
 * until an ack comes: the app's resized frame waits, as on a slow display.
 * A 1.8 daemon acks each dump at once; 3 leaves room for acks in flight.
 */
export const MAX_UNACKED_DUMPS = 3;

/** X event types in KEYPRESS/BUTTON/CROSSING/FOCUS. */
const KEY_PRESS = 2;
const BUTTON_PRESS = 4;
const ENTER_NOTIFY = 7;
const LEAVE_NOTIFY = 8;
const FOCUS_IN = 9;
const FOCUS_OUT = 10;

/** The counters a test or benchmark reads. */
export interface AgentCounters {
  /** Bytes copied from apps' buffers into framebuffers. */
  bytesCopied: number;
  /** Commits with new pixels handled. */
  frames: number;
  /** SHMIMAGE messages sent. */
  shmimages: number;
  /** WINDOW_DUMP messages sent. */
  dumps: number;
  /** Framebuffers allocated (granted). */
  framebuffers: number;
  /**
   * Time the last commit took in the bridge, from the commit signal to its
   * last SHMIMAGE written (ns); measured only while `onCommitTimed` is set
   * (the clock is read twice per commit then), else left as it was.
   */
  lastCommitNanos: number;
  /** Commits whose copy went on after the commit signal, over later turns of the event loop. */
  slicedCopies: number;
  /** New window sizes that waited for a WINDOW_DUMP_ACK (the window was at MAX_UNACKED_DUMPS). */
  dumpWaits: number;
}

/**
 * A commit being copied into a framebuffer, one slice after the other: what
 * is still to copy, from which pixels, to where.
 */
interface CopyJob {
  /** Target size: the commit's, cut to the protocol's 16384×6144. */
  readonly width: number;
  readonly height: number;
  /** The pixels: the signalled commit's layers, then (after the signal) the hold's. */
  layers: readonly WindowLayer[];
  /** Keeps the app's buffers for a copy that goes on after the commit signal; null during the signal. */
  hold: CommitHold | null;
  /** The window's framebuffer, or a new one (fresh); null while a fresh one waits for dump capacity. */
  target: Framebuffer | null;
  /** A new framebuffer: shown (CONFIGURE, WINDOW_DUMP, SHMIMAGE) only once every pixel is in. */
  readonly fresh: boolean;
  /** Rectangles still to copy, in window coordinates; the first one is copied top down. */
  remaining: Rect[];
  /** Bands copied into the shown framebuffer, announced by SHMIMAGE when the job is complete. */
  readonly copied: Rect[];
  /** process.hrtime.bigint() at the commit signal that started the job; 0n when no one times commits. */
  readonly started: bigint;
}

/** One app window as a Qubes window. */
class QubesWindow {
  /** The window id on the wire (never 0). */
  readonly id: number;
  readonly shell: ShellWindow;
  /** Popups: override-redirect, transient for their parent. */
  readonly overrideRedirect: boolean;
  readonly parent: QubesWindow | null;
  /** Screen position of the window's (0, 0), as last agreed with the daemon. */
  x = 0;
  y = 0;
  /** The framebuffer holding the window's current image (its size is the window's size). */
  framebuffer: Framebuffer | null = null;
  /** CREATE sent on the current link. */
  created = false;
  /** MAP sent on the current link (and no UNMAP since). */
  mapped = false;
  /** A WINDOW_DUMP of the current framebuffer must go out before the next SHMIMAGE. */
  dumpPending = true;
  /** WINDOW_FLAGS currently set by the agent. */
  flags = 0;
  /** DESTROY sent; input for it is ignored and the id is not reused until the daemon acknowledges. */
  destroyed = false;
  /** Placed on the screen once: a remap keeps the position the daemon last gave. */
  placed = false;
  /** The size the daemon believes the window has (last CONFIGURE either way); 0 before any. */
  wireWidth = 0;
  wireHeight = 0;
  /** Serial of the configure the app has not acknowledged yet (0: none): at most one is in flight. */
  pendingConfigure = 0;
  /** A configure waits for that ack: states or the daemon's size changed after it was sent. */
  configureDirty = false;
  /** The size the daemon asked for (clamped), to ask of the app until it answered with a commit; null: its own. */
  askedSize: Size | null = null;
  /** The copy of the latest commit, while it is not complete. */
  job: CopyJob | null = null;
  /** WINDOW_DUMPs of this window sent on the current link and not acknowledged. */
  unackedDumps = 0;
  /** A new size is waiting for an ack (logged once per wait). */
  waitingForAck = false;
  /** The CURSOR last sent for this window (-1: none yet). */
  cursor = -1;
  readonly unsubscribe: Array<() => void> = [];

  constructor(id: number, shell: ShellWindow, parent: QubesWindow | null) {
    this.id = id;
    this.shell = shell;
    this.overrideRedirect = shell.kind === "popup";
    this.parent = parent;
  }

  /** The window's size on the wire: the app's, cut to the protocol's 16384×6144 (the rest is not shown). */
  get width(): number {
    return this.framebuffer?.width ?? Math.min(this.shell.size.width, MAX_WINDOW_WIDTH);
  }

  get height(): number {
    return this.framebuffer?.height ?? Math.min(this.shell.size.height, MAX_WINDOW_HEIGHT);
  }
}

/** Options of the bridge. */
export interface BridgeOptions {
  compositor: Compositor;
  /** This domain's grant table: framebuffers are shared from it. */
  grants: GrantTable;
  /** The GUI domain: framebuffers are granted to it. */
  guiDomain: DomainId;
  log: Logger;
}

/** Window ids in use wrap around below this bound (ids are u32; 0 is the screen window). */
const MAX_WINDOW_ID = 0xffffffff;

/**
 * The agent's bridge between its compositor and the current daemon link.
 */
export class WindowBridge {
  readonly counters: AgentCounters = {
    bytesCopied: 0,
    frames: 0,
    shmimages: 0,
    dumps: 0,
    framebuffers: 0,
    lastCommitNanos: 0,
    slicedCopies: 0,
    dumpWaits: 0,
  };
  readonly #compositor: Compositor;
  readonly #grants: GrantTable;
  readonly #guiDomain: DomainId;
  readonly #log: Logger;
  readonly #byShell = new Map<ShellWindow, QubesWindow>();
  /** Every id in use: live windows and destroyed ones waiting for the DESTROY ack. */
  readonly #byId = new Map<number, QubesWindow>();
  readonly #dumps = new DumpQueue();
  /** The window of each dump in #dumps, in the same order (acks release the oldest). */
  #dumpOwners: QubesWindow[] = [];
  /** Windows whose copy goes on at the next turn, in round-robin order. */
  readonly #copying = new Set<QubesWindow>();
  #turnScheduled = false;
  #destroyed = false;
  #nextId = 1;
  #link: DaemonLink | null = null;
  #screen = { width: 1920, height: 1080 };
  /** The window the pointer is in, as the daemon last said. */
  #pointerWindow: QubesWindow | null = null;
  readonly #unsubscribe: Array<() => void> = [];

  constructor(options: BridgeOptions) {
    this.#compositor = options.compositor;
    this.#grants = options.grants;
    this.#guiDomain = options.guiDomain;
    this.#log = options.log;
    for (const shell of this.#compositor.windows) this.#adopt(shell);
    this.#unsubscribe.push(
      this.#compositor.events.newWindow.add((shell) => this.#adopt(shell)),
      this.#compositor.seat.events.cursor.add(({ window, name }) => this.#onCursor(window, name)),
    );
  }

  /**
   * Told the duration (ns) of every commit the bridge handles, from the
   * commit signal to its last SHMIMAGE written. Timing costs two clock reads
   * per commit: only commits that start while it is set are timed.
   */
  onCommitTimed: ((nanos: number) => void) | null = null;

  /** The daemon link now in use, if any. */
  get link(): DaemonLink | null {
    return this.#link;
  }

  /** WINDOW_DUMPs sent and not yet acknowledged. */
  get dumpsInFlight(): number {
    return this.#dumps.length;
  }

  /** Qubes window id of a compositor window, if it has one. */
  windowId(shell: ShellWindow): number | undefined {
    return this.#byShell.get(shell)?.id;
  }

  /**
   * Starts using a link whose handshake just finished: every window is
   * replayed to the new daemon (CREATE, CONFIGURE, WINDOW_DUMP, WMCLASS,
   * WINDOW_HINTS, then MAP, WMNAME, WINDOW_FLAGS if mapped, and a full
   * SHMIMAGE), as the Linux agent does after a reconnect.
   */
  attach(link: DaemonLink, xconf: XconfMessage): void {
    this.#link = link;
    // Now 640×480 ≤ screen ≤ 16384×6144: what apps are told, and where windows are centred.
    this.#screen = clampOutputSize({ width: xconf.w, height: xconf.h });
    this.#compositor.setOutputSize(this.#screen);
    // Dumps and destroys in flight belonged to the previous daemon.
    this.#forgetDaemonState();
    this.#pointerWindow = null;
    link.on("message", (message) => this.#handle(message));
    // The replay of every window in one write.
    link.batch(() => {
      for (const window of this.#byShell.values()) {
        window.created = false;
        window.mapped = false;
        window.dumpPending = true;
        window.cursor = -1;
        if (window.shell.mapped) this.#replay(window);
      }
    });
  }

  /**
   * Stops using the link (the daemon went away); windows stay for the next
   * one. Framebuffers kept only for the daemon's acks are revoked now, and
   * frame callbacks wait until a daemon shows the windows again.
   */
  detach(): void {
    this.#link = null;
    this.#forgetDaemonState();
    for (const window of this.#byShell.values()) {
      window.mapped = false;
      this.#updateShown(window);
    }
  }

  /** Unsubscribes from the compositor and ends every framebuffer. */
  destroy(): void {
    this.#destroyed = true;
    for (const off of this.#unsubscribe.splice(0)) off();
    for (const window of this.#byShell.values()) this.#forget(window);
    this.#byShell.clear();
    this.#byId.clear();
    this.#copying.clear();
    this.#dumps.releaseAll();
    this.#dumpOwners = [];
  }

  /** What only a daemon's acks would end: dumps in flight (their pages are revoked when unused) and reserved ids. */
  #forgetDaemonState(): void {
    this.#dumps.releaseAll();
    this.#dumpOwners = [];
    for (const [id, window] of this.#byId) {
      if (window.destroyed) this.#byId.delete(id);
    }
    for (const window of this.#byShell.values()) {
      window.unackedDumps = 0;
      window.waitingForAck = false;
      // A new size that waited for an ack can be granted now.
      if (window.job !== null && window.job.target === null) this.#queueCopy(window);
    }
  }

  /** Tells the compositor whether the daemon shows the window (its frame callbacks wait while not). */
  #updateShown(window: QubesWindow): void {
    window.shell.setShown(this.#link !== null && window.mapped && !window.destroyed);
  }

  // ---- compositor → daemon ----

  #allocateId(): number {
    for (;;) {
      const id = this.#nextId;
      this.#nextId = id >= MAX_WINDOW_ID ? 1 : id + 1;
      if (!this.#byId.has(id)) return id;
    }
  }

  #adopt(shell: ShellWindow): void {
    const parent = shell.parent === null ? null : (this.#byShell.get(shell.parent) ?? null);
    const window = new QubesWindow(this.#allocateId(), shell, parent);
    this.#byShell.set(shell, window);
    this.#byId.set(window.id, window);
    const on = shell.events;
    window.unsubscribe.push(
      on.map.add(() => this.#onMap(window)),
      on.commit.add((commit) => this.#onCommit(window, commit)),
      on.unmap.add(() => this.#onUnmap(window)),
      on.destroy.add(() => this.#onDestroy(window)),
      on.title.add(() => this.#sendTitle(window)),
      on.appId.add(() => this.#sendClass(window)),
      on.sizeHints.add(() => this.#sendHints(window)),
      on.request.add((request) => this.#onRequest(window, request)),
      on.reposition.add(() => this.#onReposition(window)),
      on.ackConfigure.add((serial) => this.#onAckConfigure(window, serial)),
    );
    this.#updateShown(window);
  }

  #send(message: Message): void {
    this.#link?.send(message);
  }

  /** Where a window appears first: popups relative to their parent, toplevels centred on the screen. */
  #place(window: QubesWindow): void {
    const rect = window.shell.popupRect;
    if (window.parent !== null && rect !== null) {
      window.x = window.parent.x + rect.x;
      window.y = window.parent.y + rect.y;
    } else {
      window.x = Math.max(0, Math.floor((this.#screen.width - window.width) / 2));
      window.y = Math.max(0, Math.floor((this.#screen.height - window.height) / 2));
    }
    window.placed = true;
    window.shell.placeOnScreen(window.x, window.y);
  }

  #onMap(window: QubesWindow): void {
    if (window.mapped || window.destroyed) return;
    if (!window.placed) this.#place(window);
    if (this.#link !== null) this.#announce(window);
  }

  /** CREATE, WINDOW_HINTS, WMNAME, WMCLASS, then WINDOW_FLAGS and MAP (reference 1.8 steps 1-2). */
  #announce(window: QubesWindow): void {
    if (!window.created) {
      this.#sendCreate(window);
      if (!window.overrideRedirect) {
        this.#sendHints(window);
        this.#sendTitle(window);
        this.#sendClass(window);
      }
    }
    if (!window.mapped) {
      this.#send({ type: "WINDOW_FLAGS", window: window.id, flags_set: window.flags, flags_unset: 0 });
      this.#sendMap(window);
      window.dumpPending = true;
    }
  }

  /** After a reconnect: the window as it is now, in the order of the Linux agent's replay. */
  #replay(window: QubesWindow): void {
    this.#sendCreate(window);
    this.#sendConfigure(window);
    this.#sendDump(window);
    if (!window.overrideRedirect) {
      this.#sendClass(window);
      this.#sendHints(window);
    }
    this.#sendMap(window);
    if (!window.overrideRedirect) this.#sendTitle(window);
    this.#send({ type: "WINDOW_FLAGS", window: window.id, flags_set: window.flags, flags_unset: 0 });
    this.#sendShmimage(window, { x: 0, y: 0, width: window.width, height: window.height });
  }

  #sendCreate(window: QubesWindow): void {
    this.#send({
      type: "CREATE",
      window: window.id,
      x: window.x,
      y: window.y,
      width: Math.max(1, window.width),
      height: Math.max(1, window.height),
      parent: 0,
      override_redirect: window.overrideRedirect ? 1 : 0,
    });
    window.created = true;
    window.wireWidth = Math.max(1, window.width);
    window.wireHeight = Math.max(1, window.height);
  }

  #sendMap(window: QubesWindow): void {
    this.#send({
      type: "MAP",
      window: window.id,
      transient_for: window.parent?.id ?? 0,
      override_redirect: window.overrideRedirect ? 1 : 0,
    });
    window.mapped = true;
    this.#updateShown(window);
  }

  #sendConfigure(window: QubesWindow): void {
    if (!window.created) return;
    window.wireWidth = Math.max(1, window.width);
    window.wireHeight = Math.max(1, window.height);
    this.#send({
      type: "CONFIGURE",
      window: window.id,
      x: window.x,
      y: window.y,
      width: window.wireWidth,
      height: window.wireHeight,
      override_redirect: 0,
    });
  }

  #sendDump(window: QubesWindow): void {
    const framebuffer = window.framebuffer;
    if (framebuffer === null || this.#link === null || !window.created) return;
    this.#send({
      type: "WINDOW_DUMP",
      window: window.id,
      dump_type: WINDOW_DUMP_TYPE_GRANT_REFS,
      width: framebuffer.width,
      height: framebuffer.height,
      bpp: 32,
      grant_refs: Uint32Array.from(framebuffer.refs),
    });
    this.counters.dumps += 1;
    // Before 1.7 no ACK comes: the daemon mapped the pages when it read the dump.
    if (this.#link.version >= VERSION_WINDOW_DUMP_ACK) {
      this.#dumps.sent(framebuffer);
      this.#dumpOwners.push(window);
      window.unackedDumps += 1;
    }
    window.dumpPending = false;
  }

  /** A new framebuffer may be granted (and later dumped): the daemon has acknowledged enough of this window's dumps. */
  #mayDump(window: QubesWindow): boolean {
    const link = this.#link;
    return link === null || link.version < VERSION_WINDOW_DUMP_ACK || window.unackedDumps < MAX_UNACKED_DUMPS;
  }

  /** WINDOW_DUMP_ACK: the oldest dump's pages may go; its window may get a new size again. */
  #onDumpAck(): void {
    if (!this.#dumps.acknowledge()) return;
    const owner = this.#dumpOwners.shift();
    if (owner === undefined) return;
    owner.unackedDumps -= 1;
    if (owner.job !== null && owner.job.target === null && this.#mayDump(owner)) this.#queueCopy(owner);
  }

  #sendShmimage(window: QubesWindow, rect: Rect): void {
    if (!window.mapped || this.#link === null || window.framebuffer === null) return;
    if (window.dumpPending) this.#sendDump(window);
    this.#send({ type: "SHMIMAGE", window: window.id, x: rect.x, y: rect.y, width: rect.width, height: rect.height });
    this.counters.shmimages += 1;
  }

  /**
   * A commit with new pixels: start copying them (or merge them into the
   * copy in flight), as much as one turn allows now, the rest on later
   * turns. The app's frame callbacks wait until the copy is done, whatever
   * happened (a window the daemon cannot show must not stall its app).
   */
  #onCommit(window: QubesWindow, commit: WindowCommit): void {
    if (window.destroyed) return;
    // A window larger than the protocol allows shows its top-left 16384×6144.
    const width = Math.min(commit.size.width, MAX_WINDOW_WIDTH);
    const height = Math.min(commit.size.height, MAX_WINDOW_HEIGHT);
    if (width <= 0 || height <= 0) {
      this.#dropJob(window);
      window.shell.frameDone();
      return;
    }
    this.counters.frames += 1;
    // The app answered the daemon's size (or chose its own): ask for its own size from now on.
    if (window.pendingConfigure === 0 && !window.configureDirty) window.askedSize = null;
    const bounds: Rect = { x: 0, y: 0, width, height };
    let job = window.job;
    if (job !== null && job.width === width && job.height === height) {
      // The newer pixels replace the older ones: what was not copied yet is copied from them, with the new damage.
      job.remaining = coalesceDamage([...job.remaining, ...commit.damage], bounds);
      job.layers = commit.layers;
      job.hold = null;
    } else {
      this.#dropJob(window);
      const framebuffer = window.framebuffer;
      const fresh = framebuffer === null || framebuffer.width !== width || framebuffer.height !== height;
      job = {
        width,
        height,
        layers: commit.layers,
        hold: null,
        target: fresh ? null : framebuffer,
        fresh,
        // A new size needs new pages: the whole window is copied, then dumped.
        remaining: fresh ? [bounds] : coalesceDamage(commit.damage, bounds),
        copied: [],
        started: this.onCommitTimed === null ? 0n : process.hrtime.bigint(),
      };
      window.job = job;
    }
    // A window with no copy in flight copies at once, within one turn's budget; one with a copy in
    // flight waits for its turn (an app that commits faster than it is copied only replaces pixels).
    if (!this.#copying.has(window)) this.#copy(window, performance.now() + TURN_BUDGET_MS, Infinity);
    if (window.job === job) {
      job.hold = commit.hold();
      if (job.target !== null) this.#queueCopy(window);
    }
  }

  /** Stops the window's copy in flight (superseded by a new size, unmapped, destroyed): a fresh framebuffer is revoked. */
  #dropJob(window: QubesWindow): void {
    const job = window.job;
    if (job === null) return;
    window.job = null;
    this.#copying.delete(window);
    job.hold?.release();
    if (job.fresh) job.target?.destroy();
  }

  #queueCopy(window: QubesWindow): void {
    this.#copying.add(window);
    if (this.#turnScheduled || this.#destroyed) return;
    this.#turnScheduled = true;
    setImmediate(this.#turn);
  }

  /** One turn of copying: a slice per window with a copy in flight, round robin, until the turn's budget is spent. */
  readonly #turn = (): void => {
    this.#turnScheduled = false;
    const deadline = performance.now() + TURN_BUDGET_MS;
    while (this.#copying.size > 0 && performance.now() < deadline) {
      for (const window of [...this.#copying]) {
        this.#copy(window, deadline, 1);
        if (performance.now() >= deadline) break;
      }
    }
    if (this.#copying.size > 0) {
      this.#turnScheduled = true;
      setImmediate(this.#turn);
    }
  };

  /**
   * Copies slices of the window's job until it is complete, `slices` slices
   * are done, or `deadline` (performance.now() ms) passed; completes it.
   */
  #copy(window: QubesWindow, deadline: number, slices: number): void {
    const job = window.job;
    if (job === null) return;
    try {
      if (job.target === null) {
        if (!this.#mayDump(window)) {
          this.#copying.delete(window);
          this.#waitForAck(window);
          return;
        }
        // Every byte is written below (cleared, then copied): no need to zero 400 MB at once here.
        job.target = new Framebuffer(this.#grants, this.#guiDomain, job.width, job.height, { zero: false });
        this.counters.framebuffers += 1;
      }
      const layers = job.hold === null ? job.layers : job.hold.layers();
      if (layers === null) {
        // The hold ended without a newer commit reaching us: nothing left to copy from.
        this.#dropJob(window);
        window.shell.frameDone();
        return;
      }
      const target: PixelBuffer = {
        bytes: job.target.pixels,
        stride: job.target.stride,
        width: job.width,
        height: job.height,
      };
      for (let done = 0; done < slices && job.remaining.length > 0; done++) {
        const rect = job.remaining[0] as Rect;
        const rows = Math.max(1, Math.min(rect.height, Math.floor(SLICE_BYTES / (rect.width * 4))));
        const band: Rect = { x: rect.x, y: rect.y, width: rect.width, height: rows };
        if (job.fresh) clearBlock(target, band);
        for (const layer of layers) {
          const pixels = layer.pixels;
          const source: PixelBuffer = {
            // Only the band's pixels: a scaled surface resamples that rectangle, not its whole rows.
            bytes: pixels.rows(band.y - layer.y, rows, band.x - layer.x, band.width),
            stride: pixels.stride,
            width: pixels.width,
            height: pixels.height,
          };
          this.counters.bytesCopied += copyBlock(
            source,
            band.x - layer.x,
            band.y - layer.y,
            target,
            band.x,
            band.y,
            band.width,
            rows,
          );
        }
        if (!job.fresh) addBand(job.copied, band);
        if (rows === rect.height) job.remaining.shift();
        else job.remaining[0] = { x: rect.x, y: rect.y + rows, width: rect.width, height: rect.height - rows };
        if (performance.now() >= deadline) break;
      }
      if (job.remaining.length === 0) this.#complete(window, job);
    } catch (error) {
      this.#log.warn(
        { err: error, window: window.id, size: `${job.width}x${job.height}` },
        "cannot show this frame (out of grant pages?)",
      );
      this.#dropJob(window);
      window.shell.frameDone();
    }
  }

  /** The window needs a new framebuffer and is at MAX_UNACKED_DUMPS: its new size waits for an ack. */
  #waitForAck(window: QubesWindow): void {
    if (window.waitingForAck) return;
    window.waitingForAck = true;
    this.counters.dumpWaits += 1;
    this.#log.warn(
      { window: window.id, unacked: window.unackedDumps },
      "the daemon has not acknowledged this window's last WINDOW_DUMPs: its new size waits for an ack",
    );
  }

  /** The job's last pixel is in: show it, and let the app draw its next frame. */
  #complete(window: QubesWindow, job: CopyJob): void {
    window.job = null;
    window.waitingForAck = false;
    this.#copying.delete(window);
    if (job.fresh && job.target !== null) {
      const previous = window.framebuffer;
      window.framebuffer = job.target;
      window.dumpPending = true;
      // Its pages are revoked once every dump naming them is acknowledged.
      previous?.destroy();
    }
    const link = this.#link;
    // The commit's messages (a MAP or CONFIGURE first, a WINDOW_DUMP, its SHMIMAGEs) in one write.
    if (link === null) this.#announceImages(window, job);
    else link.batch(() => this.#announceImages(window, job));
    job.hold?.release();
    if (job.hold !== null) this.counters.slicedCopies += 1;
    const timed = this.onCommitTimed;
    if (timed !== null && job.started !== 0n) {
      this.counters.lastCommitNanos = Number(process.hrtime.bigint() - job.started);
      timed(this.counters.lastCommitNanos);
    }
    window.shell.frameDone();
  }

  /** A complete job's messages: what must come first, then one SHMIMAGE per damaged rectangle (the whole of a new framebuffer). */
  #announceImages(window: QubesWindow, job: CopyJob): void {
    this.#beforeImages(window);
    if (job.fresh) {
      if (job.target !== null) this.#sendShmimage(window, { x: 0, y: 0, width: job.width, height: job.height });
      return;
    }
    // Whole app frames: one SHMIMAGE per damaged rectangle, once all of it is in.
    for (const rect of coalesceDamage(job.copied, { x: 0, y: 0, width: job.width, height: job.height })) {
      this.#sendShmimage(window, rect);
    }
  }

  /** What must reach the daemon before a window's images: its MAP, and its real size. */
  #beforeImages(window: QubesWindow): void {
    if (!window.mapped && window.shell.mapped && this.#link !== null) this.#onMap(window);
    // The daemon must know the size the window really has: after the app
    // resized itself, or answered a configure with another size than asked.
    if (
      window.created &&
      window.pendingConfigure === 0 &&
      !window.configureDirty &&
      (window.wireWidth !== window.width || window.wireHeight !== window.height)
    ) {
      this.#sendConfigure(window);
    }
  }

  #onUnmap(window: QubesWindow): void {
    // The app took its pixels back (a null buffer): nothing is left to copy, and the
    // compositor forgot the configure serials it sent (the next map starts over).
    this.#dropJob(window);
    window.pendingConfigure = 0;
    this.#flushConfigure(window);
    if (!window.mapped) return;
    this.#send({ type: "UNMAP", window: window.id });
    window.mapped = false;
    window.dumpPending = true;
    this.#updateShown(window);
    if (this.#pointerWindow === window) this.#pointerWindow = null;
  }

  #forget(window: QubesWindow): void {
    for (const off of window.unsubscribe.splice(0)) off();
    this.#dropJob(window);
    window.framebuffer?.destroy();
    window.framebuffer = null;
  }

  #onDestroy(window: QubesWindow): void {
    this.#byShell.delete(window.shell);
    this.#forget(window);
    if (this.#pointerWindow === window) this.#pointerWindow = null;
    window.destroyed = true;
    const link = this.#link;
    if (link !== null && window.created) {
      if (window.mapped) this.#send({ type: "UNMAP", window: window.id });
      this.#send({ type: "DESTROY", window: window.id });
      // From 1.5 the id stays reserved until the daemon's DESTROY comes back (the link may have just
      // closed under the sends: its version still says what the daemon spoke).
      if (link.version >= VERSION_DESTROY_ACK && !link.closed) return;
    }
    this.#byId.delete(window.id);
  }

  #sendTitle(window: QubesWindow): void {
    if (!window.created || window.overrideRedirect) return;
    this.#send({ type: "WMNAME", window: window.id, data: wmnameData(window.shell.title) });
  }

  #sendClass(window: QubesWindow): void {
    if (!window.created || window.overrideRedirect) return;
    const appId = window.shell.appId;
    this.#send({ type: "WMCLASS", window: window.id, res_class: wmclassField(appId), res_name: wmclassField(appId) });
  }

  #sendHints(window: QubesWindow): void {
    if (!window.created || window.overrideRedirect) return;
    const { minSize, maxSize } = window.shell;
    let flags = 0;
    if (minSize.width > 0 || minSize.height > 0) flags |= PMinSize;
    if (maxSize.width > 0 && maxSize.height > 0) flags |= PMaxSize;
    this.#send({
      type: "WINDOW_HINTS",
      window: window.id,
      flags,
      min_width: minSize.width,
      min_height: minSize.height,
      max_width: maxSize.width,
      max_height: maxSize.height,
      width_inc: 0,
      height_inc: 0,
      base_width: 0,
      base_height: 0,
    });
  }

  #setFlags(window: QubesWindow, set: number, unset: number): void {
    window.flags = (window.flags | set) & ~unset;
    if (window.created) this.#send({ type: "WINDOW_FLAGS", window: window.id, flags_set: set, flags_unset: unset });
  }

  #onRequest(window: QubesWindow, request: WindowRequest): void {
    switch (request.kind) {
      case "fullscreen":
        if (request.on) this.#setFlags(window, WINDOW_FLAG_FULLSCREEN, 0);
        else this.#setFlags(window, 0, WINDOW_FLAG_FULLSCREEN);
        break;
      case "minimize":
        this.#setFlags(window, WINDOW_FLAG_MINIMIZE, 0);
        break;
      case "activate":
        // An app cannot raise itself over another domain's windows: the host shows it as urgent.
        if (this.#compositor.seat.focused !== window.shell) this.#setFlags(window, WINDOW_FLAG_DEMANDS_ATTENTION, 0);
        break;
      default:
        // maximize, move and resize are the host window manager's business.
        break;
    }
  }

  #onReposition(window: QubesWindow): void {
    if (window.parent === null || window.shell.popupRect === null) return;
    window.x = window.parent.x + window.shell.popupRect.x;
    window.y = window.parent.y + window.shell.popupRect.y;
    window.shell.placeOnScreen(window.x, window.y);
    this.#sendConfigure(window);
  }

  #onCursor(shell: ShellWindow | null, name: string | null): void {
    if (this.#link === null || this.#link.version < VERSION_CURSOR) return;
    const window = shell === null ? this.#pointerWindow : this.#byShell.get(shell);
    if (window === undefined || window === null || !window.created) return;
    const cursor = name === null ? 0 : cursorFromName(name);
    if (cursor === window.cursor) return;
    window.cursor = cursor;
    this.#send({ type: "CURSOR", window: window.id, cursor });
  }

  // ---- daemon → compositor ----

  #live(id: number): QubesWindow | null {
    const window = this.#byId.get(id);
    return window === undefined || window.destroyed ? null : window;
  }

  #handle(message: Message): void {
    switch (message.type) {
      case "WINDOW_DUMP_ACK":
        this.#onDumpAck();
        return;
      case "DESTROY": {
        const window = this.#byId.get(message.window);
        if (window?.destroyed === true) this.#byId.delete(message.window);
        return;
      }
      case "CLIPBOARD_REQ":
        void this.#answerClipboardRequest(message.window);
        return;
      case "CLIPBOARD_DATA":
        this.#compositor.clipboard.set(message.data);
        return;
      case "KEYMAP_NOTIFY":
        this.#releaseKeysNotHeld(message.keys);
        return;
      default:
        break;
    }
    const window = this.#live(message.window);
    if (window === null) {
      this.#log.debug({ type: message.type, window: message.window }, "message for an unknown or destroyed window");
      return;
    }
    const seat = this.#compositor.seat;
    switch (message.type) {
      case "KEYPRESS": {
        const code = evdevFromXKeycode(message.keycode);
        if (code === undefined) return;
        if (seat.focused !== window.shell) seat.focus(window.shell);
        const mods = modifiersFromXState(message.state);
        seat.setModifiers(mods.depressed, mods.latched, mods.locked, mods.group);
        seat.key(code, message.event_type === KEY_PRESS);
        return;
      }
      case "BUTTON": {
        seat.pointerMove(window.shell, message.x, message.y);
        this.#pointerWindow = window;
        const action = pointerActionFromXButton(message.button);
        const pressed = message.event_type === BUTTON_PRESS;
        if (action.kind === "button") seat.pointerButton(action.code, pressed);
        else if (action.kind === "axis" && pressed) seat.pointerAxis(action.axis, action.discrete);
        return;
      }
      case "MOTION":
        seat.pointerMove(window.shell, message.x, message.y);
        this.#pointerWindow = window;
        return;
      case "CROSSING":
        if (message.event_type === ENTER_NOTIFY) {
          seat.pointerMove(window.shell, message.x, message.y);
          this.#pointerWindow = window;
        } else if (message.event_type === LEAVE_NOTIFY && this.#pointerWindow === window) {
          seat.pointerLeave();
          this.#pointerWindow = null;
        }
        return;
      case "FOCUS":
        if (message.event_type === FOCUS_IN) {
          seat.focus(window.shell);
          if ((window.flags & WINDOW_FLAG_DEMANDS_ATTENTION) !== 0)
            this.#setFlags(window, 0, WINDOW_FLAG_DEMANDS_ATTENTION);
          this.#requestConfigure(window);
        } else if (message.event_type === FOCUS_OUT && seat.focused === window.shell) {
          seat.focus(null);
          this.#requestConfigure(window);
        }
        return;
      case "CONFIGURE":
        this.#onDaemonConfigure(window, message.x, message.y, message.width, message.height);
        return;
      case "CLOSE":
        window.shell.close();
        return;
      case "WINDOW_FLAGS": {
        const set = message.flags_set;
        const unset = message.flags_unset;
        window.flags = (window.flags | set) & ~unset;
        if (((set | unset) & WINDOW_FLAG_FULLSCREEN) !== 0) {
          // Entering or leaving fullscreen, the app chooses its size (0×0).
          window.askedSize = { width: 0, height: 0 };
          this.#requestConfigure(window);
        }
        return;
      }
      case "MAP":
        // The host's window manager showed a window we had not mapped: Wayland
        // windows cannot be shown from outside; the next commit maps it.
        return;
      default:
        this.#log.debug({ type: message.type }, "ignored daemon message");
    }
  }

  #states(window: QubesWindow, activated: boolean): { activated: boolean; fullscreen: boolean } {
    return { activated, fullscreen: (window.flags & WINDOW_FLAG_FULLSCREEN) !== 0 };
  }

  /**
   * The daemon moved or resized a window (the configure handshake of
   * reference 1.8): acknowledge at once, then ask the app for the new size;
   * when it commits a different size than asked, the next CONFIGURE (from
   * the commit) tells the daemon what it really is. The size is clamped to
   * 1×1..16384×6144 first, in the acknowledgement too: a size the agent
   * cannot show is never asked of an app, nor confirmed.
   */
  #onDaemonConfigure(window: QubesWindow, x: number, y: number, askedWidth: number, askedHeight: number): void {
    const width = clampEdge(askedWidth, MAX_WINDOW_WIDTH);
    const height = clampEdge(askedHeight, MAX_WINDOW_HEIGHT);
    // Now 1 ≤ width ≤ 16384 and 1 ≤ height ≤ 6144.
    window.x = x;
    window.y = y;
    window.shell.placeOnScreen(x, y);
    this.#send({ type: "CONFIGURE", window: window.id, x, y, width, height, override_redirect: 0 });
    window.wireWidth = width;
    window.wireHeight = height;
    if (window.shell.kind !== "toplevel") return;
    const size = window.shell.size;
    const asked = window.askedSize ?? size;
    if (asked.width === width && asked.height === height) return;
    window.askedSize = { width, height };
    // A flood of CONFIGUREs becomes one configure in flight and the latest size after its ack.
    this.#requestConfigure(window);
  }

  /**
   * Asks the app for the size and states the window should have now
   * (xdg_toplevel.configure), coalesced: at most one configure waits for
   * the app's ack; what changes meanwhile is sent, once, after it.
   */
  #requestConfigure(window: QubesWindow): void {
    if (window.shell.kind !== "toplevel" || window.destroyed) return;
    window.configureDirty = true;
    this.#flushConfigure(window);
  }

  #flushConfigure(window: QubesWindow): void {
    if (!window.configureDirty || window.pendingConfigure !== 0 || window.destroyed) return;
    window.configureDirty = false;
    const focused = this.#compositor.seat.focused === window.shell;
    const serial = window.shell.configure(window.askedSize ?? window.shell.size, this.#states(window, focused));
    window.pendingConfigure = serial;
  }

  /** The app acked a configure: one sent since (or this one) is no longer in flight; send what waited. */
  #onAckConfigure(window: QubesWindow, serial: number): void {
    if (window.pendingConfigure === 0 || ((serial - window.pendingConfigure) | 0) < 0) return;
    window.pendingConfigure = 0;
    this.#flushConfigure(window);
  }

  #releaseKeysNotHeld(keys: Uint8Array): void {
    const seat = this.#compositor.seat;
    for (const code of [...seat.pressedKeys]) {
      const x = code + 8;
      const held = x < 256 && (((keys[x >> 3] as number) >> (x & 7)) & 1) === 1;
      if (!held) seat.key(code, false);
    }
  }

  async #answerClipboardRequest(windowId: number): Promise<void> {
    const link = this.#link;
    if (link === null) return;
    const large = link.version >= VERSION_LARGE_CLIPBOARD;
    const limit = large ? MAX_CLIPBOARD_BUFFER_SIZE : MAX_CLIPBOARD_SIZE;
    let data: Uint8Array = new Uint8Array(0);
    try {
      const selection = await this.#compositor.clipboard.read(limit + 1);
      if (selection !== null) data = selection.data;
    } catch (error) {
      this.#log.warn({ err: error }, "reading the clipboard failed");
    }
    // Over the limit: a 1.8 daemon learns it from exactly limit + 1 bytes; older ones get the first limit bytes.
    if (data.length > limit) data = large ? data.subarray(0, limit + 1) : data.subarray(0, limit);
    if (this.#link === link) link.send({ type: "CLIPBOARD_DATA", window: windowId, data });
  }
}

/** A size the daemon asked for, made one the agent can show: an integer in 1..max (garbage becomes 1). */
function clampEdge(asked: number, max: number): number {
  return Number.isFinite(asked) ? Math.max(1, Math.min(max, Math.trunc(asked))) : 1;
}

/** Fills a rectangle of `target` with zeros (a fresh framebuffer's bytes may be an earlier grant's). */
function clearBlock(target: PixelBuffer, rect: Rect): void {
  const rowBytes = rect.width * 4;
  let at = rect.y * target.stride + rect.x * 4;
  if (rowBytes === target.stride) {
    target.bytes.fill(0, at, at + rect.height * rowBytes);
    return;
  }
  for (let row = 0; row < rect.height; row++, at += target.stride) target.bytes.fill(0, at, at + rowBytes);
}

/** Adds a copied band to `bands`, extending the last one when the band continues it downwards. */
function addBand(bands: Rect[], band: Rect): void {
  const last = bands[bands.length - 1];
  if (last !== undefined && last.x === band.x && last.width === band.width && last.y + last.height === band.y) {
    bands[bands.length - 1] = { x: last.x, y: last.y, width: last.width, height: last.height + band.height };
    return;
  }
  bands.push(band);
}
