/**
 * Sanitisers for the strings a domain sends (titles, WM_CLASS), as upstream
 * qubes-guid does (qubes-gui-protocol.md 4.2): a domain must not be able to
 * put control characters or malformed text into the host's window list.
 */

const UNDERSCORE = 0x5f;

function cString(untrusted: Uint8Array, maxBytes: number): Uint8Array {
  const end = Math.min(untrusted.length, maxBytes);
  const nul = untrusted.subarray(0, end).indexOf(0);
  return untrusted.subarray(0, nul === -1 ? end : nul);
}

/**
 * Length of the strict RFC 3629 sequence at `at` that encodes a non-control
 * code point ≥ U+0080 (no overlongs, no surrogates, ≤ U+10FFFF, no C1
 * controls), or 0 when the bytes there are not one.
 */
function utf8SequenceLength(bytes: Uint8Array, at: number): number {
  const lead = bytes[at] as number;
  const byte = (i: number): number => (at + i < bytes.length ? (bytes[at + i] as number) : -1);
  const cont = (b: number): boolean => b >= 0x80 && b <= 0xbf;
  if (lead >= 0xc2 && lead <= 0xdf) {
    const b1 = byte(1);
    if (!cont(b1)) return 0;
    const codePoint = ((lead & 0x1f) << 6) | (b1 & 0x3f);
    return codePoint <= 0x9f ? 0 : 2; // U+0080..U+009F are C1 controls
  }
  if (lead >= 0xe0 && lead <= 0xef) {
    const b1 = byte(1);
    const low = lead === 0xe0 ? 0xa0 : 0x80;
    const high = lead === 0xed ? 0x9f : 0xbf;
    if (b1 < low || b1 > high || !cont(byte(2))) return 0;
    return 3;
  }
  if (lead >= 0xf0 && lead <= 0xf4) {
    const b1 = byte(1);
    const low = lead === 0xf0 ? 0x90 : 0x80;
    const high = lead === 0xf4 ? 0x8f : 0xbf;
    if (b1 < low || b1 > high || !cont(byte(2)) || !cont(byte(3))) return 0;
    return 4;
  }
  return 0;
}

const textDecoder = new TextDecoder("utf-8", { fatal: true });

/**
 * Sanitises a WMNAME `data` field into a title. Byte 127 is forced to NUL and
 * the text ends at the first NUL. Without UTF-8 titles, a trailing "…" becomes
 * "..." and every byte outside 0x20..0x7E becomes `_`. With UTF-8 titles, whole
 * strict RFC 3629 sequences are kept, except C0/C1 controls and DEL; each byte
 * of anything else becomes `_`. Upstream accepts C1 controls here; we do not.
 */
export function sanitizeTitle(untrustedData: Uint8Array, allowUtf8: boolean): string {
  let bytes = cString(untrustedData, 127);
  const ellipsis =
    !allowUtf8 &&
    bytes.length >= 3 &&
    bytes[bytes.length - 3] === 0xe2 &&
    bytes[bytes.length - 2] === 0x80 &&
    bytes[bytes.length - 1] === 0xa6;
  if (ellipsis) bytes = bytes.subarray(0, bytes.length - 3);
  const out = new Uint8Array(bytes.length + 3);
  let length = 0;
  for (let at = 0; at < bytes.length;) {
    const b = bytes[at] as number;
    if (b >= 0x20 && b <= 0x7e) {
      out[length++] = b;
      at++;
      continue;
    }
    const sequence = allowUtf8 ? utf8SequenceLength(bytes, at) : 0;
    if (sequence === 0) {
      out[length++] = UNDERSCORE;
      at++;
    } else {
      out.set(bytes.subarray(at, at + sequence), length);
      length += sequence;
      at += sequence;
    }
  }
  if (ellipsis) {
    out.set([0x2e, 0x2e, 0x2e], length);
    length += 3;
  }
  // Every kept sequence is valid UTF-8, so this cannot throw.
  return textDecoder.decode(out.subarray(0, length));
}

/**
 * Sanitises one WM_CLASS field (char[64]): byte 63 forced to NUL, the text
 * ends at the first NUL, and every byte outside printable ASCII becomes `_`.
 */
export function sanitizeClassField(untrustedField: Uint8Array): string {
  const bytes = cString(untrustedField, 63);
  let out = "";
  for (const b of bytes) out += b >= 0x20 && b <= 0x7e ? String.fromCharCode(b) : "_";
  return out;
}
