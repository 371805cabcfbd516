/** Nix's base-32 encoding ("nix32"): its own alphabet, least significant digit printed last. */
import { NixError } from './errors.js';

/** The 32 digits, without e, o, u and t. */
export const NIX32_ALPHABET = '0123456789abcdfghijklmnpqrsvwxyz';

const DIGIT = new Map(Array.from({ length: 32 }, (_, i) => [NIX32_ALPHABET.charAt(i), i]));

/** Length of the nix32 text of `byteLength` bytes: ⌊(8n − 1) / 5⌋ + 1 (52 for 32 bytes). */
export function nix32Length(byteLength: number): number {
  return byteLength === 0 ? 0 : Math.floor((byteLength * 8 - 1) / 5) + 1;
}

/** Encodes bytes as nix32, as Nix prints hashes and store path hash parts. */
export function encodeNix32(bytes: Uint8Array): string {
  let out = '';
  for (let n = nix32Length(bytes.length) - 1; n >= 0; n--) {
    const b = n * 5;
    const i = b >> 3; // bit positions stay far below 2³¹, so 32-bit operators are exact here
    const j = b & 7;
    const c = (((bytes[i] ?? 0) >> j) | ((bytes[i + 1] ?? 0) << (8 - j))) & 31;
    out += NIX32_ALPHABET.charAt(c);
  }
  return out;
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
    const c = text.charAt(text.length - 1 - n);
    const digit = DIGIT.get(c);
    if (digit === undefined)
      throw new NixError('malformed', `nix32: invalid character ${JSON.stringify(c)}`);
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
