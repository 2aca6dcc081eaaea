/**
 * The one framebuffer-geometry rule of MSG_WINDOW_DUMP (qubes-gui-protocol.md
 * 2.1), shared by the validator (what a domain may send) and shm/ (what can
 * be mapped), so the two never disagree: BGRX pixels, stride width × 4, the
 * image at byte 0, one grant ref per 4 KiB page. A dump with a zero width or
 * height means "no image": it is accepted and nothing is mapped.
 */
import { MAX_GRANT_REFS_COUNT, MAX_WINDOW_HEIGHT, MAX_WINDOW_WIDTH, XC_PAGE_SIZE } from "./constants.ts";

/** Bytes per BGRX pixel (DUMMY_DRV_FB_BPP / 8). */
export const FRAMEBUFFER_BYTES_PER_PIXEL = 4;

/** What a WINDOW_DUMP's geometry describes. */
export type DumpGeometry =
  /** width × height pixels in `pages` pages (1 ≤ width ≤ 16384, 1 ≤ height ≤ 6144, pages hold the image). */
  | { readonly kind: "image"; readonly width: number; readonly height: number; readonly pages: number }
  /** A zero width or height: the window has no image (its refs, if any, are not mapped). */
  | { readonly kind: "empty"; readonly width: number; readonly height: number };

/** Why a geometry is refused: a stable code and a message with the numbers. */
export interface DumpGeometryError {
  readonly code: "DUMP_TOO_LARGE" | "DUMP_TOO_BIG" | "DUMP_TOO_FEW_PAGES";
  readonly message: string;
}

/** Pages a width × height BGRX image takes: ceil(width × height × 4 / 4096). */
export function framebufferPages(width: number, height: number): number {
  return Math.ceil((width * height * FRAMEBUFFER_BYTES_PER_PIXEL) / XC_PAGE_SIZE);
}

/**
 * Checks a dump's hostile width, height and ref count: the geometry, or why
 * it is refused (upstream ends the session for every refusal). Never throws.
 */
export function checkDumpGeometry(
  untrustedWidth: number,
  untrustedHeight: number,
  untrustedRefCount: number,
): { ok: true; value: DumpGeometry } | { ok: false; error: DumpGeometryError } {
  const width = untrustedWidth;
  const height = untrustedHeight;
  if (
    !Number.isInteger(width) ||
    !Number.isInteger(height) ||
    width < 0 ||
    height < 0 ||
    width > MAX_WINDOW_WIDTH ||
    height > MAX_WINDOW_HEIGHT
  ) {
    return refuse(
      "DUMP_TOO_LARGE",
      `a framebuffer is at most ${MAX_WINDOW_WIDTH}x${MAX_WINDOW_HEIGHT}, got ${width}x${height}`,
    );
  }
  const refs = untrustedRefCount;
  if (!Number.isInteger(refs) || refs < 0 || refs > MAX_GRANT_REFS_COUNT) {
    return refuse("DUMP_TOO_BIG", `a framebuffer has at most ${MAX_GRANT_REFS_COUNT} grant refs, got ${refs}`);
  }
  if (width === 0 || height === 0) return { ok: true, value: { kind: "empty", width, height } };
  // Now 1 ≤ width ≤ 16384, 1 ≤ height ≤ 6144 and refs ≤ 98 304: every product is exact in a double.
  if (refs * XC_PAGE_SIZE < width * height * FRAMEBUFFER_BYTES_PER_PIXEL) {
    return refuse("DUMP_TOO_FEW_PAGES", `${refs} pages cannot hold a ${width}x${height} image`);
  }
  return { ok: true, value: { kind: "image", width, height, pages: framebufferPages(width, height) } };
}

function refuse(code: DumpGeometryError["code"], message: string): { ok: false; error: DumpGeometryError } {
  return { ok: false, error: { code, message } };
}
