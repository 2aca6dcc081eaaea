// Maps a memfd, shrinks the file to nothing and reads the mapping: with
// "guard" the read gives zeros and the process lives on; without, SIGBUS.
// With "rect" as the second argument the read is native.copyRect's (a
// strided copy in C++), else TypedArray.set's.
import * as native from "../../../native/index.ts";

// The readiness signal: start-up is over, and the test's clock starts here.
process.stdout.write("ready\n");

const guard = process.argv[2] === "guard";
const fd = native.memfdCreate("shrinking", 4 * native.PAGE_SIZE);
const writer = native.mmap(fd, 0, 4 * native.PAGE_SIZE, { writable: true });
new Uint8Array(writer).fill(0xab);
const reader = native.mmap(fd, 0, 4 * native.PAGE_SIZE, { guardSigbus: guard });
const before = new Uint8Array(reader)[3 * native.PAGE_SIZE];
native.resize(fd, 0);
const copy = new Uint8Array(4 * native.PAGE_SIZE);
if (process.argv[3] === "rect") {
  // Rows of a page less 64 bytes, a page apart: a rectangle narrower than its buffer.
  const rowBytes = native.PAGE_SIZE - 64;
  const source = { bytes: new Uint8Array(reader), offset: 0, stride: native.PAGE_SIZE };
  native.copyRect(source, { bytes: copy, offset: 0, stride: native.PAGE_SIZE }, rowBytes, 4);
} else {
  copy.set(new Uint8Array(reader));
}
process.stdout.write(
  JSON.stringify({
    before,
    after: copy[3 * native.PAGE_SIZE],
    faulted: native.mappingFaulted(reader),
    zeros: copy.every((b) => b === 0),
  }),
);
native.munmap(reader);
native.munmap(writer);
