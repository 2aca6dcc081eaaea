// SIGBUS guard cases, one per run: "twice" shrinks two guarded files one
// after the other (both reads give zeros); "kill" sends this process SIGBUS
// from outside a memory fault (the default effect must stay: death by SIGBUS).
import * as native from "../../../native/index.ts";

// The readiness signal: start-up is over, and the test's clock starts here.
process.stdout.write("ready\n");

function shrunkRead(): number {
  const fd = native.memfdCreate("shrink", 2 * native.PAGE_SIZE);
  const reader = native.mmap(fd, 0, 2 * native.PAGE_SIZE, { guardSigbus: true });
  native.resize(fd, 0);
  const copy = new Uint8Array(reader).slice();
  const faulted = native.mappingFaulted(reader) ? 1 : 0;
  native.munmap(reader);
  native.close(fd);
  return copy.every((b) => b === 0) ? faulted : -1;
}

const mode = process.argv[2];
if (mode === "twice") {
  process.stdout.write(`${shrunkRead()} ${shrunkRead()}\n`);
} else if (mode === "kill") {
  const fd = native.memfdCreate("guarded", native.PAGE_SIZE);
  native.mmap(fd, 0, native.PAGE_SIZE, { guardSigbus: true });
  process.kill(process.pid, "SIGBUS");
  setTimeout(() => process.stdout.write("survived\n"), 200);
}
