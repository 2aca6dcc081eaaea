// With "unref": an unref'd Poll on an idle eventfd must not keep Node alive.
// With "ref": a ref'd Poll keeps it alive until a timer signals the eventfd.
import * as native from "../../../native/index.ts";

// The readiness signal: start-up is over, and the test's clock starts here.
process.stdout.write("ready\n");

const mode = process.argv[2];
const fd = native.eventfdCreate();
const poll = new native.Poll(fd, () => {
  native.eventfdConsume(fd);
  process.stdout.write("woken\n");
  poll.close();
});
poll.start(native.POLL_READABLE);
if (mode === "unref") {
  poll.unref();
} else {
  const timer = setTimeout(() => native.eventfdSignal(fd), 50);
  timer.unref();
}
process.on("exit", () => process.stdout.write("exited\n"));
