/**
 * The corpus of the fuzz target `session`: each file of
 * test/fuzz/corpus/session/ is the agent → daemon bytes of one connection,
 * from its version word on (see the README there). Split into messages by
 * their headers, a file is replayed whole at the start of a session, and its
 * messages are templates that the generator retargets at live windows.
 */
import type { Random } from "../harness.ts";

/** Wire type codes of the agent → daemon messages the generator names (upstream's MSG_* values). */
export const MESSAGE_CODES = {
  CREATE: 130,
  DESTROY: 131,
  MAP: 132,
  UNMAP: 133,
  CONFIGURE: 134,
  MFNDUMP: 135,
  SHMIMAGE: 136,
  CLIPBOARD_DATA: 140,
  WMNAME: 141,
  DOCK: 143,
  WINDOW_HINTS: 144,
  WINDOW_FLAGS: 145,
  WMCLASS: 146,
  WINDOW_DUMP: 147,
  CURSOR: 148,
} as const;

const NAMES = new Map<number, string>(Object.entries(MESSAGE_CODES).map(([name, code]) => [code, name]));
const HEADER = 12;
/** Longer than any agent message (the largest WINDOW_DUMP is 393 244 bytes): the file is not one of ours. */
const MAX_LENGTH = 400_000;

/** One corpus file, split. */
export interface CorpusStream {
  /** The version word it starts with, or null when it starts with a message. */
  version: number | null;
  messages: Uint8Array[];
  /** Bytes after the last whole message (a cut capture), maybe empty. */
  rest: Uint8Array;
}

/** Splits one corpus file into its version word and messages, as far as the headers make sense. */
export function splitStream(file: Uint8Array): CorpusStream {
  const view = new DataView(file.buffer, file.byteOffset, file.byteLength);
  let at = 0;
  let version: number | null = null;
  if (file.length >= 4 && view.getUint32(0, true) >>> 16 === 1) {
    version = view.getUint32(0, true);
    at = 4;
  }
  const messages: Uint8Array[] = [];
  while (at + HEADER <= file.length) {
    const length = view.getUint32(at + 8, true);
    if (length > MAX_LENGTH || at + HEADER + length > file.length) break;
    messages.push(file.subarray(at, at + HEADER + length));
    at += HEADER + length;
  }
  return { version, messages, rest: file.subarray(at) };
}

/** The corpus, split: whole streams to replay, and messages by type to retarget. */
export class CorpusTemplates {
  readonly streams: CorpusStream[];
  readonly #byType = new Map<string, Uint8Array[]>();
  readonly #all: Uint8Array[] = [];

  constructor(files: readonly Uint8Array[]) {
    this.streams = files.map(splitStream).filter((stream) => stream.messages.length > 0);
    for (const stream of this.streams) {
      for (const message of stream.messages) {
        const type = new DataView(message.buffer, message.byteOffset, message.byteLength).getUint32(0, true);
        this.#all.push(message);
        const name = NAMES.get(type);
        // Only small messages are templates (a retargeted one is copied each time).
        if (name === undefined || message.length > 1024) continue;
        let list = this.#byType.get(name);
        if (list === undefined) this.#byType.set(name, (list = []));
        list.push(message);
      }
    }
  }

  /** Messages in all. */
  get size(): number {
    return this.#all.length;
  }

  /** A corpus message of `type`, or null when the corpus has none. */
  template(random: Random, type: string): Uint8Array | null {
    const list = this.#byType.get(type);
    return list === undefined ? null : (list[random.below(list.length)] as Uint8Array);
  }

  /** Any corpus message (for splicing), or undefined when the corpus is empty. */
  any(random: Random): Uint8Array | undefined {
    return this.#all.length === 0 ? undefined : this.#all[random.below(this.#all.length)];
  }
}
