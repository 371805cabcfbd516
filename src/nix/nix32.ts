/** Nix's base-32 encoding ("nix32"): its own alphabet, least significant digit printed last. */
import { NixError } from './errors.js';

/** The 32 digits, without e, o, u and t. */
export const NIX32_ALPHABET = '0123456789abcdfghijklmnpqrsvwxyz';

/** Digit value by character code (ASCII), −1 for characters outside the alphabet. */
const DIGIT = new Int8Array(128).fill(-1);
for (let i = 0; i < 32; i++) DIGIT[NIX32_ALPHABET.charCodeAt(i)] = i;
const CHAR_CODE = Uint8Array.from(NIX32_ALPHABET, (c) => c.charCodeAt(0));

/** Length of the nix32 text of `byteLength` bytes: ⌊(8n − 1) / 5⌋ + 1 (52 for 32 bytes). */
export function nix32Length(byteLength: number): number {
  return byteLength === 0 ? 0 : Math.floor((byteLength * 8 - 1) / 5) + 1;
}

/** Encodes bytes as nix32, as Nix prints hashes and store path hash parts. */
export function encodeNix32(bytes: Uint8Array): string {
  const length = nix32Length(bytes.length);
  const out = Buffer.allocUnsafe(length);
  for (let n = length - 1; n >= 0; n--) {
    const b = n * 5;
    const i = b >> 3; // bit positions stay far below 2³¹, so 32-bit operators are exact here
    const j = b & 7;
    const c = (((bytes[i] ?? 0) >> j) | ((bytes[i + 1] ?? 0) << (8 - j))) & 31;
    out[length - 1 - n] = CHAR_CODE[c] as number;
  }
  return out.toString('latin1', 0, length);
}

/**
 * Decodes nix32 text of exactly `nix32Length(byteLength)` characters. Rejects other lengths,
 * characters outside the alphabet, and set bits beyond `byteLength` bytes, so each byte string
 * has one text form.
 */
export function decodeNix32(text: string, byteLength: number): Uint8Array {
  if (text.length !== nix32Length(byteLength)) {
    throw new NixError(
      'malformed',
      `nix32: want ${nix32Length(byteLength)} characters, got ${text.length}`,
    );
  }
  const bytes = new Uint8Array(byteLength);
  for (let n = 0; n < text.length; n++) {
    const code = text.charCodeAt(text.length - 1 - n);
    const digit = code < 128 ? (DIGIT[code] as number) : -1;
    if (digit < 0) {
      const c = text.charAt(text.length - 1 - n);
      throw new NixError('malformed', `nix32: invalid character ${JSON.stringify(c)}`);
    }
    const b = n * 5;
    const i = b >> 3;
    const j = b & 7;
    bytes[i] = (bytes[i] as number) | ((digit << j) & 0xff);
    const carry = digit >> (8 - j);
    if (i + 1 < byteLength) bytes[i + 1] = (bytes[i + 1] as number) | carry;
    else if (carry !== 0)
      throw new NixError('malformed', 'nix32: value has bits beyond its length');
  }
  return bytes;
}
