/**
 * Window titles and classes as the agent puts them on the wire: NUL-padded
 * byte fields of fixed size, truncated at a UTF-8 character boundary.
 */

const encoder = new TextEncoder();

/** WMNAME's data field is 128 bytes, NUL-terminated: at most 127 bytes of title. */
export const WMNAME_BYTES = 128;
/** A truncated title keeps 124 bytes and ends in "…" (E2 80 A6): 127 bytes in all. */
const TRUNCATED_TITLE_BYTES = 124;
const ELLIPSIS = encoder.encode("\u2026");

/** WMCLASS fields are 64 bytes each, NUL-terminated: at most 63 bytes. */
export const WMCLASS_FIELD_BYTES = 64;

/** The longest prefix of `bytes` of at most `limit` bytes that ends on a UTF-8 character boundary. */
function cutAtBoundary(bytes: Uint8Array, limit: number): Uint8Array {
  if (bytes.length <= limit) return bytes;
  let end = limit;
  // Step back over continuation bytes (10xxxxxx) so no character is split.
  while (end > 0 && ((bytes[end] as number) & 0xc0) === 0x80) end--;
  return bytes.subarray(0, end);
}

/**
 * The title bytes for WMNAME: UTF-8, NULs removed (they would end the title
 * early), and when longer than 127 bytes cut at a character boundary to at
 * most 124 bytes followed by "…", as the Linux agent does.
 */
export function encodeTitle(title: string): Uint8Array {
  const bytes = encoder.encode(title.replaceAll("\0", ""));
  if (bytes.length <= WMNAME_BYTES - 1) return bytes;
  const kept = cutAtBoundary(bytes, TRUNCATED_TITLE_BYTES);
  const out = new Uint8Array(kept.length + ELLIPSIS.length);
  out.set(kept);
  out.set(ELLIPSIS, kept.length);
  return out;
}

/** A WMCLASS field (res_class or res_name): UTF-8 without NULs, at most 63 bytes, cut at a character boundary. */
export function encodeClassField(value: string): Uint8Array {
  return cutAtBoundary(encoder.encode(value.replaceAll("\0", "")), WMCLASS_FIELD_BYTES - 1);
}
