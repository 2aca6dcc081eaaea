/**
 * The GUI domain's one clipboard, shared by every session: what the user's
 * last secure copy (Ctrl+Shift+C) took from a domain, with the name of that
 * domain and the time of the keypress. A secure paste sends it to one domain
 * and wipes it (qubes-gui-protocol.md 4.3). The time of the last copy stays
 * after a wipe, as upstream keeps qubes-clipboard.bin.xevent: a late answer
 * to an earlier copy must lose against it even once the data is gone (QSB-013).
 *
 * With a directory, the clipboard lives in one file there, replaced whole by
 * rename, so several guid processes (one per domain, as upstream runs them)
 * share it; without one it lives in this process only.
 */
import { mkdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import path from "node:path";

import type { Logger } from "pino";

/** What the clipboard holds. */
export interface ClipboardContent {
  readonly data: Uint8Array;
  /** The domain it was copied from. */
  readonly source: string;
  /** Host time (ms, u32, wrapping) of the copy keypress: the compositor's event time. */
  readonly timestamp: number;
  /**
   * The daemon's own CLOCK_MONOTONIC time (µs) when it handled that keypress:
   * the tie-break when two keypresses carry the same event time (virtual
   * keyboards such as wayvnc's or wtype's send every key at time 0). Shared
   * by every guid process of the machine. 0 when unknown.
   */
  readonly sequence?: number;
}

/** A keypress's place in time: the compositor's event time, then the daemon's clock. */
export interface KeyStamp {
  readonly timestamp: number;
  readonly sequence?: number;
}

/** This process's CLOCK_MONOTONIC in µs: the {@link ClipboardContent.sequence} of a keypress handled now. */
export function monotonicMicros(): number {
  return Number(process.hrtime.bigint() / 1000n);
}

/**
 * True when keypress `a` came after keypress `b`: by the compositor's event
 * times when they differ (wrap-aware, {@link timestampNewer}), else by the
 * daemon's clock. The QSB-013 guards compare copies and pastes with it.
 */
export function stampNewer(a: KeyStamp, b: KeyStamp): boolean {
  if (a.timestamp >>> 0 !== b.timestamp >>> 0) return timestampNewer(a.timestamp, b.timestamp);
  return (a.sequence ?? 0) > (b.sequence ?? 0);
}

/** The file the clipboard is kept in, inside the clipboard directory. */
export const CLIPBOARD_FILE = "qubes-clipboard.json";

/**
 * True when host timestamp `a` is later than `b`: u32 milliseconds that wrap
 * every 49.7 days, compared as X does (the difference as a signed 32-bit value).
 */
export function timestampNewer(a: number, b: number): boolean {
  return ((a - b) | 0) > 0;
}

/** Options of a {@link GuiClipboard}. */
export interface GuiClipboardOptions {
  /** Directory shared by the GUI domain's guid processes; null keeps the clipboard in this process. */
  dir: string | null;
  log: Logger;
}

/** The shared clipboard. */
export class GuiClipboard {
  readonly #dir: string | null;
  readonly #log: Logger;
  #memory: ClipboardContent | null = null;

  constructor(options: GuiClipboardOptions) {
    this.#dir = options.dir;
    this.#log = options.log;
    if (this.#dir !== null) {
      mkdirSync(this.#dir, { recursive: true, mode: 0o700 });
      const mode = statSync(this.#dir).mode & 0o777;
      if ((mode & 0o077) !== 0) {
        throw new Error(`the clipboard directory ${this.#dir} is open to other users (mode ${mode.toString(8)})`);
      }
    }
  }

  /** The current content, or null when empty. */
  read(): ClipboardContent | null {
    const record = this.#load();
    return record === null || record.data.length === 0 ? null : record;
  }

  /**
   * When the keypress of the last copy the clipboard took happened, kept after
   * a paste or a clear emptied it; null when there was none. A copy's answer
   * requested before it is late and must change nothing (QSB-013).
   */
  lastCopy(): KeyStamp | null {
    const record = this.#load();
    return record === null ? null : { timestamp: record.timestamp, sequence: record.sequence ?? 0 };
  }

  /** The stored record: the last copy's stamp, with its data (empty once pasted or cleared). */
  #load(): ClipboardContent | null {
    if (this.#dir === null) return this.#memory;
    let text: string;
    try {
      text = readFileSync(path.join(this.#dir, CLIPBOARD_FILE), "utf8");
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "ENOENT")
        this.#log.warn({ err: error }, "cannot read the clipboard");
      return null;
    }
    try {
      const parsed = JSON.parse(text) as { source?: unknown; timestamp?: unknown; sequence?: unknown; data?: unknown };
      if (
        typeof parsed.source !== "string" ||
        typeof parsed.timestamp !== "number" ||
        typeof parsed.data !== "string"
      ) {
        return null;
      }
      return {
        source: parsed.source,
        timestamp: parsed.timestamp >>> 0,
        sequence: typeof parsed.sequence === "number" && Number.isFinite(parsed.sequence) ? parsed.sequence : 0,
        data: new Uint8Array(Buffer.from(parsed.data, "base64")),
      };
    } catch {
      this.#log.warn("the clipboard file is malformed: treated as empty");
      return null;
    }
  }

  /** Replaces the content. */
  write(content: ClipboardContent): void {
    this.#store(content);
  }

  /** Empties the clipboard (after every paste); the time of the copy it held stays. */
  wipe(): void {
    const record = this.#load();
    if (record === null) {
      // Nothing readable is stored: remove whatever is there.
      this.#memory = null;
      if (this.#dir !== null) rmSync(path.join(this.#dir, CLIPBOARD_FILE), { force: true });
      return;
    }
    if (record.data.length > 0) this.clear(record);
  }

  /** Empties the clipboard as the outcome of the copy at `stamp` (the domain's clipboard was empty, or too big). */
  clear(stamp: KeyStamp): void {
    this.#store({ data: new Uint8Array(0), source: "", timestamp: stamp.timestamp, sequence: stamp.sequence ?? 0 });
  }

  /** Keeps `content` as the one record: in memory, or in the file, replaced whole by rename. */
  #store(content: ClipboardContent): void {
    if (this.#dir === null) {
      this.#memory = {
        data: content.data.slice(),
        source: content.source,
        timestamp: content.timestamp >>> 0,
        sequence: content.sequence ?? 0,
      };
      return;
    }
    const file = path.join(this.#dir, CLIPBOARD_FILE);
    const temporary = `${file}.${process.pid}.tmp`;
    const text = JSON.stringify({
      source: content.source,
      timestamp: content.timestamp >>> 0,
      sequence: content.sequence ?? 0,
      data: Buffer.from(content.data.buffer, content.data.byteOffset, content.data.byteLength).toString("base64"),
    });
    writeFileSync(temporary, text, { mode: 0o600 });
    renameSync(temporary, file);
  }
}
