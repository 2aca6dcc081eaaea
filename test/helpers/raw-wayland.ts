/** A raw Wayland connection for tests: bytes in, bytes out, no library in between. */
import { close, connect as connectSocket, recvmsg, sendmsg, socket, POLL_READABLE, Poll } from "../../native/index.ts";

/** Sends `bytes` on a fresh raw connection and collects what comes back until the server hangs up. */
export function rawExchange(socketPath: string, bytes: Uint8Array): Promise<{ received: Uint8Array; closed: boolean }> {
  const fd = socket("stream");
  connectSocket(fd, socketPath);
  sendmsg(fd, bytes);
  return new Promise((resolve) => {
    const chunks: Uint8Array[] = [];
    const buffer = new Uint8Array(4096);
    const poll = new Poll(fd, () => {
      for (;;) {
        let got;
        try {
          got = recvmsg(fd, buffer, 0);
        } catch {
          got = { bytes: 0, fds: [] };
        }
        if (got === null) return;
        if (got.bytes === 0) {
          poll.close();
          close(fd);
          resolve({ received: new Uint8Array(Buffer.concat(chunks)), closed: true });
          return;
        }
        chunks.push(buffer.slice(0, got.bytes));
      }
    });
    poll.start(POLL_READABLE);
  });
}
