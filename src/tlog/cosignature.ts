/**
 * C2SP tlog-cosignature/v1 (Ed25519, signature type 0x04): the signed message and the
 * `timestamped_signature` framing. Keys that sign and verify it are built in keys.ts.
 */
import { TlogError } from './errors.js';
import { encodeUtf8 } from './encoding.js';

/** Size of a v1 cosignature after the key ID: u64 timestamp ‖ 64-byte Ed25519 signature. */
export const COSIGNATURE_SIZE = 8 + 64;

const MAX_TIMESTAMP = 2n ** 63n - 1n;

/**
 * The message a v1 cosigner signs: `cosignature/v1\ntime <t>\n` followed by the checkpoint's
 * note text (with its final newline, without signature lines).
 */
export function cosignatureMessage(checkpointText: Uint8Array, timestamp: bigint): Uint8Array {
  const header = encodeUtf8(`cosignature/v1\ntime ${timestamp.toString()}\n`);
  return Buffer.concat([header, checkpointText]);
}

/** Frames a timestamp and an Ed25519 signature as a `timestamped_signature`. */
export function encodeTimestampedSignature(timestamp: bigint, signature: Uint8Array): Uint8Array {
  if (timestamp < 0n || timestamp > MAX_TIMESTAMP) {
    throw new TlogError('range', `cosignature timestamp ${timestamp} is out of range`);
  }
  const out = Buffer.alloc(8 + signature.length);
  out.writeBigUInt64BE(timestamp, 0);
  out.set(signature, 8);
  return out;
}

/**
 * Splits a `timestamped_signature` (the bytes after the key ID); `undefined` when the length is
 * wrong or the timestamp exceeds 2⁶³−1, both of which make the cosignature invalid.
 */
export function decodeTimestampedSignature(
  bytes: Uint8Array,
): { timestamp: bigint; signature: Uint8Array } | undefined {
  if (bytes.length !== COSIGNATURE_SIZE) return undefined;
  const timestamp = Buffer.from(bytes.buffer, bytes.byteOffset, 8).readBigUInt64BE(0);
  if (timestamp > MAX_TIMESTAMP) return undefined;
  return { timestamp, signature: bytes.subarray(8) };
}

/**
 * The POSIX timestamp of a v1 cosignature as a number of seconds. Throws `range` beyond 2⁵³
 * (about 285 million years from now), which verifiers may reject as "in the future".
 */
export function cosignatureTimestamp(signature: Uint8Array): number {
  const decoded = decodeTimestampedSignature(signature);
  if (decoded === undefined) throw new TlogError('malformed', 'not a v1 cosignature');
  if (decoded.timestamp > BigInt(Number.MAX_SAFE_INTEGER)) {
    throw new TlogError('range', `cosignature timestamp ${decoded.timestamp} is too far ahead`);
  }
  return Number(decoded.timestamp);
}
