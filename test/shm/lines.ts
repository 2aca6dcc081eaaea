/** Line-oriented conversation with a child process, for the cross-process tests of shm/ and vchan/. */
import type { ChildProcess } from "node:child_process";
import { createInterface } from "node:readline";

/** Reads the child's stdout one line at a time and writes commands to its stdin. */
export class LineChannel {
  readonly #lines: AsyncIterator<string>;
  readonly #child: ChildProcess;

  constructor(child: ChildProcess) {
    if (child.stdout === null) throw new Error("the child needs a piped stdout");
    this.#child = child;
    this.#lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  }

  /** The next line the child prints; rejects if it ends first. */
  async next(): Promise<string> {
    const result = await this.#lines.next();
    if (result.done === true) throw new Error("the child closed its stdout");
    return result.value;
  }

  /** Sends one command line and returns the child's one-line answer. */
  async ask(command: string): Promise<string> {
    this.#child.stdin?.write(`${command}\n`);
    return this.next();
  }
}
