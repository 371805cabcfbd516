/** RFC 6962 §2.1 / RFC 9162 §2.1.1 Merkle tree hashing with SHA-256. */
import { hash } from 'node:crypto';

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

/** The root hash of the empty tree: `SHA-256("")` (RFC 9162 §2.1.1). */
export const EMPTY_ROOT: Uint8Array = hash('sha256', new Uint8Array(0), 'buffer');
