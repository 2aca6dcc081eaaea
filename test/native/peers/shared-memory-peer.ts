// The second process of the cross-process test: connects to the parent,
// receives a memfd and two eventfds over SCM_RIGHTS, maps the memfd and plays
// a ping-pong through the shared memory, woken by eventfds only.
import * as native from "../../../native/index.ts";

const socketPath = process.argv[2];
if (socketPath === undefined) throw new Error("usage: shared-memory-peer SOCKET");

const fd = native.socket("stream");
native.connect(fd, socketPath);
const buffer = new Uint8Array(16);
const received = await new Promise<native.Received>((resolve) => {
  const poll = new native.Poll(fd, () => {
    const message = native.recvmsg(fd, buffer, 8);
    if (message === null) return;
    poll.close();
    resolve(message);
  });
  poll.start(native.POLL_READABLE);
});
if (received.fds.length !== 3) throw new Error("expected 3 fds");
const [memfd, wakeMe, wakeParent] = received.fds as [number, number, number];

const size = native.fileSize(memfd);
const shared = native.mmap(memfd, 0, size, { writable: true });
const words = new Int32Array(shared);

// Round 0: the parent wrote a marker before sending; report what we see.
let round = 0;
const poll = new native.Poll(wakeMe, () => {
  native.eventfdConsume(wakeMe);
  round += 1;
  // The parent put its round number in word 0 and a pattern in the page at 4096.
  const seen = Atomics.load(words, 0);
  if (seen !== round) throw new Error(`round ${round}: parent wrote ${seen}`);
  const bytes = new Uint8Array(shared, 4096, 4096);
  let sum = 0;
  for (const byte of bytes) sum += byte;
  Atomics.store(words, 1, sum);
  Atomics.store(words, 2, round * 1000);
  native.eventfdSignal(wakeParent);
  if (round === 3) {
    poll.close();
    native.munmap(shared);
    native.close(fd);
  }
});
poll.start(native.POLL_READABLE);
// Tell the parent we are mapped: write our own marker and wake it.
Atomics.store(words, 3, 0x51554245);
native.eventfdSignal(wakeParent);
