/**
 * The window the fault tests' hand-built agents show, shared by the test
 * and the child process (test/faults/hostile-agent.ts), with no vitest import.
 */

/** The window id every hand-built agent of the fault tests shows. */
export const FAULT_WINDOW = 0x00400001;

/** Its size in pixels. */
export const FAULT_WINDOW_SIZE = { width: 160, height: 120 } as const;

/** Its content: a pattern in which no two nearby pixels share a colour. */
export function faultPattern(x: number, y: number): number {
  return ((x * 11) & 0xff) | (((y * 13) & 0xff) << 8) | ((((x + 2 * y) * 5) & 0xff) << 16);
}

/** SHMIMAGEs in the `batch` mode's one write: 28 bytes each, 5.6 MB in all. */
export const BATCH_SHMIMAGES = 200_000;
