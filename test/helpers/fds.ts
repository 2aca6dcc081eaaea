/** Closes, after each test, the fds a test opened and did not close itself. */
import { afterEach } from "vitest";

import * as native from "../../native/index.ts";

/** Returns `track(fd)`, which records an fd to close after the current test. */
export function trackFds(): (fd: number) => number {
  const opened: number[] = [];
  afterEach(() => {
    for (const fd of opened.splice(0)) {
      try {
        native.close(fd);
      } catch {
        // the test closed it itself
      }
    }
  });
  return (fd) => {
    opened.push(fd);
    return fd;
  };
}
