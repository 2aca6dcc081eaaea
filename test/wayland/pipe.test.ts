// Pipes for fd-based transfers (clipboard data): bytes go one way, the
// reader's limit bounds what a writer can make it buffer.
import { describe, expect, it } from "vitest";

import { isSyscallError, sendmsg } from "../../native/index.ts";
import { createPipe, readPipe, writePipe } from "../../wayland/index.ts";

describe("pipes", () => {
  it("carries 1 MiB from the write end to the read end, then the end of stream", async () => {
    const { readFd, writeFd } = createPipe();
    const data = new Uint8Array(1 << 20).map((_, i) => (i * 7) & 0xff);
    const read = readPipe(readFd, 2 << 20);
    expect(await writePipe(writeFd, data)).toBe(true);
    const result = await read;
    expect(result.truncated).toBe(false);
    expect(Buffer.compare(Buffer.from(result.data), Buffer.from(data))).toBe(0);
  });

  it("stops at the limit, says the writer had more, and the writer of 4 MiB learns the reader left", async () => {
    const { readFd, writeFd } = createPipe();
    const read = readPipe(readFd, 1000);
    const written = writePipe(writeFd, new Uint8Array(4 << 20).fill(1));
    const result = await read;
    expect(result).toMatchObject({ truncated: true });
    expect(result.data.byteLength).toBe(1000);
    expect(await written).toBe(false);
  });

  it("carries bytes one way only: the read end cannot write", () => {
    const { readFd, writeFd } = createPipe();
    let error: unknown;
    try {
      sendmsg(readFd, new Uint8Array([1]));
    } catch (thrown) {
      error = thrown;
    }
    expect(isSyscallError(error, "EPIPE")).toBe(true);
    void readPipe(readFd, 0);
    void writePipe(writeFd, new Uint8Array(0));
  });
});
