/** Strict text encodings shared by the C2SP formats: canonical base64, decimal sizes, UTF-8. */
import { TlogError } from './errors.js';

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/**
 * Decodes standard base64 (RFC 4648 §4) strictly: padding required, no whitespace, and only the
 * canonical encoding (unused trailing bits zero), so every byte string has exactly one text form.
 */
export function decodeBase64(text: string, what: string): Uint8Array {
  if (!BASE64.test(text)) throw new TlogError('malformed', `${what}: not canonical base64`);
  const bytes = Buffer.from(text, 'base64');
  if (bytes.toString('base64') !== text) {
    throw new TlogError('malformed', `${what}: not canonical base64`);
  }
  return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** Encodes bytes as standard padded base64. */
export function encodeBase64(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64');
}

const DECIMAL = /^(?:0|[1-9][0-9]{0,15})$/;

/**
 * Parses an ASCII decimal with no sign, no leading zeros and no spaces, as the C2SP formats
 * require for sizes and indexes; the value must be a safe integer (below 2⁵³).
 */
export function parseDecimal(text: string, what: string): number {
  if (!DECIMAL.test(text)) throw new TlogError('malformed', `${what}: not a canonical decimal`);
  const n = Number(text);
  if (!Number.isSafeInteger(n)) throw new TlogError('range', `${what}: ${text} is too large`);
  return n;
}

/** Throws unless `n` is a safe non-negative integer, naming `what` in the message. */
export function checkIndex(n: number, what: string): void {
  if (!Number.isSafeInteger(n) || n < 0) {
    throw new TlogError('range', `${what} must be a non-negative safe integer, got ${n}`);
  }
}

const decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
const encoder = new TextEncoder();

/** Decodes UTF-8, rejecting any invalid sequence. */
export function decodeUtf8(bytes: Uint8Array, what: string): string {
  try {
    return decoder.decode(bytes);
  } catch (cause) {
    throw new TlogError('malformed', `${what}: not valid UTF-8`, { cause });
  }
}

/** Encodes a string as UTF-8. */
export function encodeUtf8(text: string): Uint8Array {
  return encoder.encode(text);
}

/** Constant-length comparison of two byte strings (not secret data: plain equality). */
export function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Concatenates byte strings. */
export function concatBytes(...parts: readonly Uint8Array[]): Uint8Array {
  return Buffer.concat(parts);
}
