// The far side of the eventfd round-trip benchmark: inherits two eventfds as
// fd 3 (ping) and fd 4 (pong); answers every ping with a pong until ping's
// counter carries the stop value.
import * as native from "../../native/index.ts";

const ping = 3;
const pong = 4;
native.setNonBlocking(ping, true);
const poll = new native.Poll(ping, () => {
  const value = native.eventfdConsume(ping);
  if (value === 0) return;
  if (value >= 1_000_000) {
    poll.close();
    return;
  }
  native.eventfdSignal(pong);
});
poll.start(native.POLL_READABLE);
