/**
 * The agent's side of the protocol's char arrays: builds WMNAME and WMCLASS
 * fields from strings the way the Linux agent does, so that a long title
 * still ends cleanly (at a UTF-8 boundary, with "…") and every field keeps
 * its terminating NUL.
 */

const encoder = new TextEncoder();

/** Length of the longest prefix of `bytes` of at most `max` bytes that ends on a UTF-8 character boundary. */
function boundary(bytes: Uint8Array, max: number): number {
  if (bytes.length <= max) return bytes.length;
  let end = max;
  while (end > 0 && ((bytes[end] as number) & 0xc0) === 0x80) end--;
  return end;
}

/**
 * WMNAME `data` (128 bytes) for a title: UTF-8, NUL-terminated; a title over
 * 127 bytes is cut at a character boundary to at most 124 bytes and ends in
 * "…" (E2 80 A6), as the Linux agent does.
 */
export function wmnameData(title: string): Uint8Array {
  const out = new Uint8Array(128);
  const bytes = encoder.encode(title);
  if (bytes.length <= 127) {
    out.set(bytes);
    return out;
  }
  const end = boundary(bytes, 124);
  out.set(bytes.subarray(0, end));
  out.set([0xe2, 0x80, 0xa6], end);
  return out;
}

/** A WMCLASS field (`res_class` or `res_name`, 64 bytes): UTF-8 cut at a character boundary to 63 bytes, NUL-terminated. */
export function wmclassField(text: string): Uint8Array {
  const out = new Uint8Array(64);
  const bytes = encoder.encode(text);
  out.set(bytes.subarray(0, boundary(bytes, 63)));
  return out;
}
