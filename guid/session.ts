/**
 * One domain's session: guid connects to the domain's agent (the daemon is
 * the vchan client, port 6000), does its side of the handshake, and then
 * turns every byte the agent sends into a trusted message or one of the
 * three reactions, through protocol/'s decoder and {@link SessionValidator}
 * and nothing else. Handlers ({@link WindowRegistry}, the clipboard) see
 * trusted values only.
 *
 * A session that ends (the agent went away, broke the protocol, or stopped
 * reading) removes every window and mapping of its domain, forgets the
 * domain's grant pool and waits for the agent to come back. Nothing of
 * another session is touched.
 */
import { EventEmitter } from "node:events";
import { setTimeout as sleep } from "node:timers/promises";

import type { Logger } from "pino";

import type { VmName } from "../decorator/index.ts";
import {
  MAX_CLIPBOARD_SIZE,
  QUBES_GUID_PROTOCOL_VERSION,
  QUBES_GUI_VCHAN_PORT,
  SessionValidator,
  StreamDecoder,
  VERSION_LARGE_CLIPBOARD,
  encodeVersion,
  encodeXconf,
  formatVersion,
  makeXconf,
  negotiateVersion,
  type DecodeResult,
  type Message,
  type TrustedOf,
  type VmRect,
  type WindowRect,
} from "../protocol/index.ts";
import type { DomainId, GrantTable } from "../shm/index.ts";
import { connectVchanClient, type Vchan, type VchanBackend } from "../vchan/index.ts";
import { monotonicMicros, stampNewer, type GuiClipboard, type KeyStamp } from "./clipboard.ts";
import { pastePolicyDecision, type GuidConfig } from "./config.ts";
import type { GuidCounters } from "./counters.ts";
import type { HostDisplay } from "./host/display.ts";
import { matchesSequence } from "./hotkeys.ts";
import { OutputQueue } from "./output.ts";
import { RateLimit } from "./rate-limit.ts";
import { usKeysyms } from "./us-keysyms.ts";
import { WindowRegistry, type DomainWindow, type WindowContext } from "./windows.ts";

/** Options of a {@link Session}. */
export interface SessionOptions {
  /** The domain running the agent (qubes-guid -d). */
  domain: DomainId;
  /** Its validated name (qubes-guid -N). */
  vmName: VmName;
  /** Label colour of its frames, 0xRRGGBB. */
  frameColor: number;
  config: GuidConfig;
  /** vchan backend; default xen where available, else socket. */
  vchan?: VchanBackend;
  /** This (the GUI) domain's id; default VCHAN_DOMAIN, else 0. */
  ownDomain?: DomainId;
  /** Rendezvous directory; default VCHAN_SOCKET_DIR, else /var/run/vchan. */
  socketDir?: string;
  /** qubes-guid -I: no window is shown. */
  invisible?: boolean;
  /** How long a connected agent has to offer its grant pool and to send its version word; default 10 000 ms. */
  handshakeTimeoutMs?: number;
  grants: GrantTable;
  display: HostDisplay;
  clipboard: GuiClipboard;
  counters: GuidCounters;
  log: Logger;
}

/** What a session announces. */
export interface SessionEvents {
  /** The handshake finished at `version`. */
  connected: [version: number];
  /** The session ended; the daemon waits for the agent again. */
  ended: [reason: string, violation: boolean];
  /** Content of `window` reached the host compositor. */
  committed: [window: number, damage: readonly WindowRect[]];
}

/** Why a session ended: a reason for the log, and whether the domain broke the protocol. */
interface Ending {
  reason: string;
  violation: boolean;
}

const READ_CHUNK = 64 * 1024;

/**
 * Most bytes a session reads from its vchan in one turn of the event loop;
 * then it yields and reads on at the vchan's next `data` event (repeated
 * while bytes wait). An agent that writes as fast as it can would otherwise
 * hold the loop for as long as it writes: where one process serves several
 * domains (startGuid, as tests and benchmarks run it) the other sessions
 * and the host connection would wait; in qubes-guid (one domain per
 * process) the host's frame callbacks and the user's input would.
 */
export const READ_SLICE_BYTES = 64 * 1024;

/**
 * The throttle: messages a second guid handles from one agent, sustained.
 * Past it (and past {@link SESSION_MESSAGE_BURST}) guid stops reading the
 * session's vchan until the rate allows again: the ring fills and the agent's
 * writes wait, so a flooding domain costs the daemon a bounded share of a
 * CPU and never memory (the bytes stay in the agent's ring). Our agent sends
 * a few messages per window per frame (600/s for 10 windows at 60 Hz); an
 * X agent's damage rarely reaches thousands a second.
 */
export const SESSION_MESSAGE_RATE = 10_000;
/** Messages above the rate handled at once: a reconnecting agent replays every window (about 9 messages each). */
export const SESSION_MESSAGE_BURST = 5_000;
/**
 * The throttle's rate in bytes a second: what bounds floods of large
 * messages (CLIPBOARD_DATA, WINDOW_DUMP). An agent's bytes are mostly
 * WINDOW_DUMPs, one per window resize (32 KiB of grant refs for 3840×2160:
 * 2 MiB/s when resized at 60 Hz), and now and then a clipboard of ≤ 250 KiB.
 */
export const SESSION_BYTE_RATE = 4 * 1024 * 1024;
/** Bytes above that rate read at once: more than the largest message (a WINDOW_DUMP of 16384×6144 is 384 KiB). */
export const SESSION_BYTE_BURST = 1024 * 1024;

/**
 * Most windows one domain may have (created and not destroyed). Each costs
 * guid its state (and a mapped one the host compositor its surfaces); a
 * CREATE past the limit ends the session (WINDOW_LIMIT), so that a domain
 * cannot grow the daemon's memory without bound. Upstream leaves this to the
 * X server's resource limits; a desktop session has tens of windows.
 */
export const MAX_WINDOWS_PER_DOMAIN = 1024;

/** Default of {@link SessionOptions.handshakeTimeoutMs}: upstream blocks for ever, a hostile agent could hold its session so. */
export const HANDSHAKE_TIMEOUT_MS = 10_000;

/** The pause before guid tries again to connect to an agent after a connection failed (not merely found no agent). */
export const CONNECT_RETRY_MS = 1000;

/** What events_max_delay holds back: the user's input (upstream delays host input events, not configures). */
const INPUT_MESSAGES: ReadonlySet<Message["type"]> = new Set([
  "KEYPRESS",
  "BUTTON",
  "MOTION",
  "CROSSING",
  "FOCUS",
  "KEYMAP_NOTIFY",
]);

/** One domain's session, served again and again until stopped. */
export class Session extends EventEmitter<SessionEvents> {
  readonly options: SessionOptions;
  /** The negotiated version while connected, else 0. */
  version = 0;
  #registry: WindowRegistry | null = null;
  #stopped = false;
  readonly #abort = new AbortController();
  #end: ((ending: Ending) => void) | null = null;

  constructor(options: SessionOptions) {
    super();
    this.options = options;
  }

  /** The windows of the current connection (empty between connections). */
  get windows(): WindowRegistry | null {
    return this.#registry;
  }

  /** Serves the domain until {@link stop}: connect, handshake, messages, end, wait again. */
  async run(): Promise<void> {
    const { options } = this;
    while (!this.#stopped) {
      const vchan = await this.#connect();
      if (vchan === null) break;
      const ending = await this.#serve(vchan);
      options.counters.sessionsEnded += 1;
      this.version = 0;
      const log = { reason: ending.reason };
      if (ending.violation) options.log.warn(log, "session ended: the domain broke the protocol; waiting for it again");
      else options.log.info(log, "session ended; waiting for the agent again");
      this.emit("ended", ending.reason, ending.violation);
    }
  }

  /** Ends the current connection and stops waiting for another. */
  stop(): void {
    if (this.#stopped) return;
    this.#stopped = true;
    this.#abort.abort(new Error("guid is stopping"));
    this.#end?.({ reason: "guid is stopping", violation: false });
  }

  /**
   * Waits for the agent's vchan server; warns once after startup_timeout,
   * then keeps waiting. A connection that fails (EMFILE ...) is logged, once
   * per reason, and tried again after {@link CONNECT_RETRY_MS}.
   */
  async #connect(): Promise<Vchan | null> {
    const { options } = this;
    const timeout = options.config.startupTimeout;
    const timer =
      timeout > 0
        ? setTimeout(
            () =>
              options.log.warn(
                { seconds: timeout },
                "no GUI agent has connected within startup_timeout; still waiting",
              ),
            timeout * 1000,
          )
        : null;
    let lastFailure = "";
    try {
      for (;;) {
        try {
          return await connectVchanClient({
            ...(options.vchan === undefined ? {} : { backend: options.vchan }),
            domain: options.domain,
            port: QUBES_GUI_VCHAN_PORT,
            ...(options.ownDomain === undefined ? {} : { ownDomain: options.ownDomain }),
            ...(options.socketDir === undefined ? {} : { socketDir: options.socketDir }),
            signal: this.#abort.signal,
          });
        } catch (error) {
          if (this.#stopped) return null;
          // No fd left, a socket another user put there ...: this domain waits, every other session goes on.
          const failure = (error as Error).message;
          if (failure !== lastFailure) {
            options.log.error({ err: error }, `cannot connect to the agent; trying again every ${CONNECT_RETRY_MS} ms`);
          }
          lastFailure = failure;
          try {
            await sleep(CONNECT_RETRY_MS, undefined, { signal: this.#abort.signal });
          } catch {
            return null;
          }
        }
      }
    } finally {
      if (timer !== null) clearTimeout(timer);
    }
  }

  /** One connection, from the grant pool and the handshake to its end. */
  async #serve(vchan: Vchan): Promise<Ending> {
    const { options } = this;
    const ended = new Promise<Ending>((resolve) => {
      this.#end = resolve;
    });
    let finished: Ending | null = null;
    const end = (ending: Ending): void => {
      if (finished !== null) return;
      finished = ending;
      this.#end?.(ending);
    };
    const timeoutMs = options.handshakeTimeoutMs ?? HANDSHAKE_TIMEOUT_MS;
    // The agent offers its grant pool before it listens: fetch it before reading a message, in bounded time.
    const attaching = new AbortController();
    const onStop = (): void => attaching.abort(this.#abort.signal.reason);
    const onGone = (): void => attaching.abort(new Error("the agent went away"));
    const timer = setTimeout(() => attaching.abort(new Error(`no grant pool came within ${timeoutMs} ms`)), timeoutMs);
    this.#abort.signal.addEventListener("abort", onStop, { once: true });
    vchan.once("disconnect", onGone);
    try {
      await options.grants.attach(options.domain, { signal: attaching.signal });
    } catch (error) {
      vchan.close();
      options.grants.detach(options.domain);
      return { reason: `no grant pool from the domain: ${(error as Error).message}`, violation: false };
    } finally {
      clearTimeout(timer);
      this.#abort.signal.removeEventListener("abort", onStop);
      vchan.off("disconnect", onGone);
    }
    const connection = new Connection(this, vchan, end);
    vchan.on("data", connection.onData);
    vchan.on("disconnect", connection.onDisconnect);
    connection.onData();
    const ending = await ended;
    this.#end = null;
    vchan.off("data", connection.onData);
    vchan.off("disconnect", connection.onDisconnect);
    connection.close();
    this.#registry = null;
    vchan.close();
    options.grants.detach(options.domain);
    return ending;
  }

  /** @internal */
  setRegistry(registry: WindowRegistry | null): void {
    this.#registry = registry;
  }
}

/** The state of one connection: decoder, validator, registry, output, clipboard requests. */
class Connection implements WindowContext {
  readonly #session: Session;
  readonly #vchan: Vchan;
  readonly #end: (ending: Ending) => void;
  readonly #decoder = new StreamDecoder({ from: "agent", handshake: true, version: QUBES_GUID_PROTOCOL_VERSION });
  readonly #readBuffer = new Uint8Array(READ_CHUNK);
  #output: OutputQueue | null = null;
  #validator: SessionValidator | null = null;
  #registry: WindowRegistry | null = null;
  /** When the copy keypress whose CLIPBOARD_REQ is unanswered happened, or null. */
  #copyRequestedAt: KeyStamp | null = null;
  #closed = false;
  /** Input held by events_max_delay, in order, each with the time (performance.now) it is due. */
  readonly #delayed: Array<{ message: Message; due: number }> = [];
  #lastInputDue = 0;
  #delayTimer: NodeJS.Timeout | null = null;
  #handshakeTimer: NodeJS.Timeout | null = null;
  /** The throttle (SESSION_MESSAGE_RATE, SESSION_BYTE_RATE): what this agent may still have handled now. */
  readonly #messageRate = new RateLimit(SESSION_MESSAGE_RATE, SESSION_MESSAGE_BURST);
  readonly #byteRate = new RateLimit(SESSION_BYTE_RATE, SESSION_BYTE_BURST);
  /** Messages (and decode errors) of the current read: spent from the message rate after it, at once. */
  #decodedInRead = 0;
  /** Reading is paused by the throttle until this timer fires, or null. */
  #resumeTimer: NodeJS.Timeout | null = null;
  /** The first pause of this connection is logged, not every one. */
  #throttleLogged = false;
  version = 0;

  constructor(session: Session, vchan: Vchan, end: (ending: Ending) => void) {
    this.#session = session;
    this.#vchan = vchan;
    this.#end = end;
    const timeoutMs = session.options.handshakeTimeoutMs ?? HANDSHAKE_TIMEOUT_MS;
    this.#handshakeTimer = setTimeout(
      () => this.#finish({ reason: `the agent sent no version word within ${timeoutMs} ms`, violation: true }),
      timeoutMs,
    );
  }

  // ---- WindowContext ----

  get display(): HostDisplay {
    return this.#session.options.display;
  }
  get grants(): GrantTable {
    return this.#session.options.grants;
  }
  get domain(): DomainId {
    return this.#session.options.domain;
  }
  get vmName(): VmName {
    return this.#session.options.vmName;
  }
  get border(): number {
    return this.#session.options.config.borderWidth;
  }
  get frameColor(): number {
    return this.#session.options.frameColor;
  }
  get backgroundColor(): number {
    return this.#session.options.config.windowBackgroundColor;
  }
  get counters(): GuidCounters {
    return this.#session.options.counters;
  }
  get log(): Logger {
    return this.#session.options.log;
  }

  send(message: Message): void {
    if (this.#output === null) return;
    const maxDelay = this.#session.options.config.eventsMaxDelay;
    if (maxDelay > 0 && INPUT_MESSAGES.has(message.type)) {
      this.#delayInput(message, maxDelay);
      return;
    }
    this.#output.send(message);
    this.counters.messagesSent += 1;
  }

  /**
   * guid.conf `events_max_delay`: holds each input message a random 0..max
   * ms, never reordering (each is due no earlier than the one before), so
   * that a domain cannot time the user's keystrokes to the millisecond.
   */
  #delayInput(message: Message, maxDelay: number): void {
    const due = Math.max(this.#lastInputDue, performance.now() + Math.random() * maxDelay);
    this.#lastInputDue = due;
    this.#delayed.push({ message, due });
    if (this.#delayed.length === 1) this.#scheduleDelayed();
  }

  #scheduleDelayed(): void {
    const head = this.#delayed[0];
    if (head === undefined) return;
    this.#delayTimer = setTimeout(
      () => {
        this.#delayTimer = null;
        const now = performance.now();
        while (this.#delayed.length > 0 && (this.#delayed[0] as { due: number }).due <= now) {
          const item = this.#delayed.shift() as { message: Message };
          if (this.#output === null) return;
          this.#output.send(item.message);
          this.counters.messagesSent += 1;
        }
        this.#scheduleDelayed();
      },
      Math.max(0, head.due - performance.now()),
    );
  }

  noteConfigureSent(window: number, rect: VmRect): void {
    this.#validator?.noteConfigureSent(window, rect);
  }

  committed(window: DomainWindow, damage: readonly WindowRect[]): void {
    this.counters.frames += 1;
    if (this.#session.listenerCount("committed") > 0) this.#session.emit("committed", window.id, damage);
  }

  interceptKey(window: DomainWindow, time: number, code: number, pressed: boolean, state: number): boolean {
    // The display's set: a hotkey's release is swallowed in whichever window (of any domain) it lands.
    const swallowed = this.display.swallowedKeys;
    if (!pressed) return swallowed.delete(code);
    const { config } = this.#session.options;
    const keysyms = this.display.keymap?.keysymsOf(code) ?? usKeysyms(code);
    if (config.secureCopySequence !== null && matchesSequence(config.secureCopySequence, state, keysyms)) {
      swallowed.add(code);
      this.#copy(window, { timestamp: time >>> 0, sequence: monotonicMicros() });
      return true;
    }
    if (config.securePasteSequence !== null && matchesSequence(config.securePasteSequence, state, keysyms)) {
      swallowed.add(code);
      this.#paste(window, { timestamp: time >>> 0, sequence: monotonicMicros() });
      return true;
    }
    return false;
  }

  // ---- reading ----

  /** Reads one slice (READ_SLICE_BYTES) of what the agent sent, within the throttle's rates. */
  readonly onData = (): void => {
    if (this.#resumeTimer !== null) return;
    const vchan = this.#vchan;
    let slice = READ_SLICE_BYTES;
    while (!this.#closed && slice > 0) {
      const now = performance.now();
      if (!this.#messageRate.available(now) || !this.#byteRate.available(now)) {
        this.#pause(now);
        return;
      }
      if (vchan.dataReady() === 0) return;
      const count = vchan.read(this.#readBuffer.subarray(0, Math.min(READ_CHUNK, slice)));
      if (count === 0) return;
      slice -= count;
      this.#byteRate.spend(count, now);
      this.#decodedInRead = 0;
      this.#decoder.feed(this.#readBuffer.subarray(0, count), this.#onDecoded);
      this.#messageRate.spend(this.#decodedInRead, now);
    }
    // The slice is spent: the vchan says `data` again on a later turn, after the other sessions' turns.
  };

  /** The throttle: no reading until both rates allow again (the agent's ring fills meanwhile). */
  #pause(now: number): void {
    const waitMs = Math.max(this.#messageRate.waitMs(now), this.#byteRate.waitMs(now));
    if (!this.#throttleLogged) {
      this.#throttleLogged = true;
      this.log.info(
        { messagesPerSecond: SESSION_MESSAGE_RATE, bytesPerSecond: SESSION_BYTE_RATE },
        "the agent sends faster than guid's rate: its messages are read at the rate",
      );
    }
    this.counters.throttled += 1;
    this.#resumeTimer = setTimeout(() => {
      this.#resumeTimer = null;
      this.onData();
    }, Math.ceil(waitMs));
  }

  readonly onDisconnect = (): void => {
    // What arrived before the disconnect is handled first, all of it: the agent is gone, no more can come.
    if (this.#resumeTimer !== null) clearTimeout(this.#resumeTimer);
    this.#resumeTimer = null;
    const vchan = this.#vchan;
    while (!this.#closed && vchan.dataReady() > 0) {
      const count = vchan.read(this.#readBuffer);
      if (count === 0) break;
      this.#decoder.feed(this.#readBuffer.subarray(0, count), this.#onDecoded);
    }
    if (!this.#closed) this.#finish({ reason: "the agent went away", violation: false });
  };

  readonly #onDecoded = (result: DecodeResult): void => {
    if (this.#closed) return;
    this.#decodedInRead += 1;
    if (!result.ok) {
      const error = result.error;
      if (error.reaction === "end-session") {
        this.#finish({ reason: `at byte ${result.offset}: ${error.toString()}`, violation: true });
      } else if (error.reaction === "drop") {
        this.counters.dropped += 1;
        this.log.info({ code: error.code }, error.message);
      }
      return;
    }
    if (result.warning !== undefined) {
      this.counters.clamped += 1;
      this.log.info({ code: result.warning.code }, result.warning.message);
    }
    const value = result.value;
    if (value.type === "VERSION") {
      // A refused version is followed by the decoder's fatal error, which ends the session.
      if (negotiateVersion(value.version).ok) this.#handshake();
      return;
    }
    if (value.type === "XCONF") return;
    this.counters.messages += 1;
    const validator = this.#validator;
    const registry = this.#registry;
    if (validator === null || registry === null) return;
    if (value.type === "CREATE" && validator.windowCount >= MAX_WINDOWS_PER_DOMAIN) {
      this.#finish({
        reason: `WINDOW_LIMIT: MSG_CREATE of window 0x${value.window.toString(16)} past the limit of ${MAX_WINDOWS_PER_DOMAIN} windows per domain`,
        violation: true,
      });
      return;
    }
    const checked = validator.validate(value);
    if (!checked.ok) {
      const error = checked.error;
      if (error.reaction === "end-session") {
        this.#finish({ reason: error.toString(), violation: true });
        return;
      }
      this.counters.dropped += 1;
      if (error.suspicious) this.counters.suspicious += 1;
      if (error.code === "CLIPBOARD_OVERSIZED") this.#clipboardOversized();
      const level = error.suspicious ? "warn" : "debug";
      this.log[level]({ code: error.code, window: value.window }, error.message);
      return;
    }
    if (checked.notices.length > 0) {
      this.counters.clamped += checked.notices.length;
      for (const notice of checked.notices) {
        this.log.debug({ code: notice.code, window: value.window }, notice.message);
      }
    }
    const message = checked.value;
    try {
      if (message.type === "CLIPBOARD_DATA") this.#clipboardData(message);
      else registry.handle(message);
    } catch (error) {
      // A grant the domain cannot back (a revoked or foreign ref, a truncated pool): its session ends.
      this.#finish({ reason: `${message.type}: ${(error as Error).message}`, violation: true });
    }
  };

  /** The agent's version word arrived (the decoder negotiated): answer it, then serve messages. */
  #handshake(): void {
    const options = this.#session.options;
    if (this.#handshakeTimer !== null) clearTimeout(this.#handshakeTimer);
    this.#handshakeTimer = null;
    const version = this.#decoder.version;
    this.version = version;
    const output = new OutputQueue(this.#vchan, version, (failure) =>
      this.#finish(
        failure.kind === "overflow"
          ? { reason: `the agent stopped reading: ${failure.queued} bytes queued`, violation: true }
          : { reason: "the agent went away", violation: false },
      ),
    );
    this.#output = output;
    const screen = options.display.screen;
    if (version >= 0x00010004) output.write(encodeVersion(version));
    output.write(encodeXconf(makeXconf({ width: screen.width, height: screen.height })));
    const { config } = options;
    this.#validator = new SessionValidator({
      version,
      allowUtf8Titles: config.allowUtf8Titles,
      maxClipboardSize: config.maxClipboardSize,
      overrideRedirect: config.overrideRedirect,
      overrideRedirectProtection: config.overrideRedirectProtection,
      allowFullscreen: config.allowFullscreen,
      invisible: options.invisible ?? false,
      // guid draws every frame outside the domain's pixels: none of them is the frame's.
      frameInsideOverrideRedirect: false,
      screen: { width: screen.width, height: screen.height },
      workArea: screen,
    });
    this.#registry = new WindowRegistry(this);
    this.#session.setRegistry(this.#registry);
    this.#session.version = version;
    options.counters.sessions += 1;
    options.log.info(
      { version: formatVersion(version), screen: `${screen.width}x${screen.height}` },
      "agent connected",
    );
    this.#session.emit("connected", version);
  }

  // ---- the secure clipboard (reference 4.3) ----

  #copy(window: DomainWindow, stamp: KeyStamp): void {
    this.#copyRequestedAt = stamp;
    this.#validator?.noteClipboardRequested();
    this.send({ type: "CLIPBOARD_REQ", window: window.id });
    this.log.info({ window: window.id }, "secure copy: clipboard requested");
  }

  /**
   * The answer to the copy request came: the keypress it answers, or null
   * when nothing was requested or when a later copy came in first (QSB-013:
   * the late answer changes nothing, even after that copy was pasted and
   * wiped, or cleared).
   */
  #answeredCopy(): KeyStamp | null {
    const { clipboard, counters } = this.#session.options;
    const requestedAt = this.#copyRequestedAt;
    this.#copyRequestedAt = null;
    if (requestedAt === null) return null;
    const latest = clipboard.lastCopy();
    if (latest !== null && stampNewer(latest, requestedAt)) {
      counters.clipboardRefused += 1;
      this.log.warn("secure copy: discarded, the clipboard holds a later copy");
      return null;
    }
    return requestedAt;
  }

  #clipboardData(message: TrustedOf<"CLIPBOARD_DATA">): void {
    const { clipboard, counters } = this.#session.options;
    const requestedAt = this.#answeredCopy();
    if (requestedAt === null) return;
    if (message.data.length === 0) {
      clipboard.clear(requestedAt);
      this.log.info("secure copy: the domain's clipboard is empty; clipboard cleared");
      return;
    }
    clipboard.write({
      data: message.data,
      source: this.vmName,
      timestamp: requestedAt.timestamp,
      sequence: requestedAt.sequence ?? 0,
    });
    counters.clipboardCopies += 1;
    this.log.info({ bytes: message.data.length }, "secure copy: clipboard taken");
  }

  #clipboardOversized(): void {
    const requestedAt = this.#answeredCopy();
    if (requestedAt === null) return;
    this.#session.options.clipboard.clear(requestedAt);
    this.log.warn("secure copy: the data was over max_clipboard_size; clipboard cleared");
  }

  #paste(window: DomainWindow, stamp: KeyStamp): void {
    const { clipboard, counters, config } = this.#session.options;
    const content = clipboard.read();
    if (content === null) {
      this.log.info("secure paste: the clipboard is empty");
      return;
    }
    const refuse = (why: string): void => {
      counters.clipboardRefused += 1;
      this.log.warn({ source: content.source, target: this.vmName }, `secure paste refused: ${why}`);
    };
    if (stampNewer(content, stamp)) {
      refuse("the clipboard was copied after the paste key (QSB-013)");
      return;
    }
    const limit = this.version >= VERSION_LARGE_CLIPBOARD ? config.maxClipboardSize : MAX_CLIPBOARD_SIZE;
    if (content.data.length > limit) {
      refuse(`${content.data.length} bytes exceed what this agent takes (${limit})`);
      return;
    }
    const decision = pastePolicyDecision(config.pastePolicy, content.source, this.vmName);
    const ruleLine = decision.rule === null ? undefined : config.pastePolicy[decision.rule]?.line;
    const rule =
      decision.rule === null
        ? "no rule (default allow)"
        : `the paste_policy rule at line ${ruleLine ?? "?"} of guid.conf`;
    if (!decision.allowed) {
      refuse(`denied by ${rule}`);
      return;
    }
    this.log.info(
      { source: content.source, target: this.vmName, bytes: content.data.length },
      `secure paste allowed by ${rule}`,
    );
    this.send({ type: "CLIPBOARD_DATA", window: window.id, data: content.data });
    counters.clipboardPastes += 1;
    clipboard.wipe();
  }

  // ---- the end ----

  #finish(ending: Ending): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#end(ending);
  }

  /** Removes every window and mapping of the connection; nothing more is sent. */
  close(): void {
    this.#closed = true;
    if (this.#handshakeTimer !== null) clearTimeout(this.#handshakeTimer);
    if (this.#delayTimer !== null) clearTimeout(this.#delayTimer);
    if (this.#resumeTimer !== null) clearTimeout(this.#resumeTimer);
    this.#resumeTimer = null;
    this.#delayed.length = 0;
    this.#output?.close();
    this.#output = null;
    this.#registry?.clear();
    this.#registry = null;
    this.#validator = null;
  }
}
