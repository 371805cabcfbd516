/** RFC 6962 §2.1 / RFC 9162 §2.1.1 Merkle tree hashing with SHA-256. */
import { hash } from 'node:crypto';
import { sha256Spans } from '../crypto/index.js';

/** Size in bytes of every hash in the tree (SHA-256). */
export const HASH_SIZE = 32;

// One-shot hashing of one buffer (prefix byte copied in) costs about half of a Hash object.

/** `SHA-256(0x00 ‖ data)`: the hash of one log entry (RFC 9162 §2.1.1). */
export function hashLeaf(data: Uint8Array): Uint8Array {
  const input = Buffer.allocUnsafe(1 + data.length);
  input[0] = 0;
  input.set(data, 1);
  return hash('sha256', input, 'buffer');
}

/** `SHA-256(0x01 ‖ left ‖ right)`: the hash of an interior node (RFC 9162 §2.1.1). */
export function hashChildren(left: Uint8Array, right: Uint8Array): Uint8Array {
  const input = Buffer.allocUnsafe(1 + left.length + right.length);
  input[0] = 1;
  input.set(left, 1);
  input.set(right, 1 + left.length);
  return hash('sha256', input, 'buffer');
}

const LEAF_PREFIX = new Uint8Array([0]);
const NODE_PREFIX = new Uint8Array([1]);

/**
 * {@link hashLeaf} of many entries in one call: the entry `i` is `data[spans[2i], spans[2i+1])`.
 * Returns 32 bytes per entry, in memory of their own (they may be moved to another thread).
 */
export function hashLeavesAt(data: Uint8Array, spans: Uint32Array): Buffer {
  return sha256Spans(LEAF_PREFIX, data, spans);
}

/**
 * {@link hashChildren} of each consecutive pair of hashes in `level` (32 bytes each, an even
 * number of them) in one call: the level above, half as long.
 */
export function hashPairs(level: Uint8Array): Buffer {
  const pairs = level.length / (2 * HASH_SIZE);
  if (!Number.isInteger(pairs)) throw new Error(`bug: a level of ${level.length} bytes`);
  const spans = new Uint32Array(2 * pairs);
  for (let i = 0; i < pairs; i++) {
    spans[2 * i] = 2 * HASH_SIZE * i;
    spans[2 * i + 1] = 2 * HASH_SIZE * (i + 1);
  }
  return sha256Spans(NODE_PREFIX, level, spans);
}

/** The root hash of the empty tree: `SHA-256("")` (RFC 9162 §2.1.1). */
export const EMPTY_ROOT: Uint8Array = hash('sha256', new Uint8Array(0), 'buffer');
