// A Poll callback that throws: the error must reach process 'uncaughtException'
// like any event callback's, not abort the process from C++.
import * as native from "../../../native/index.ts";

// The readiness signal: start-up is over, and the test's clock starts here.
process.stdout.write("ready\n");

process.on("uncaughtException", (error) => {
  process.stdout.write(`caught: ${error.message}\n`);
  process.exit(0);
});
const fd = native.eventfdCreate({ initial: 1 });
const poll = new native.Poll(fd, () => {
  poll.close();
  throw new Error("thrown in a poll callback");
});
poll.start(native.POLL_READABLE);
