/**
 * The encoding rules an Ed25519 public key and signature must meet before any backend verifies
 * them, checked as bytes: the ones libsodium's `crypto_sign_verify_detached` (1.0.21, which Nix
 * verifies with) applies, some of which OpenSSL does not.
 */

/** The group order L = 2^252 + 27742317777372353535851937790883648493, little-endian. */
const L = Buffer.from('edd3f55c1a631258d69cf7a2def9de1400000000000000000000000000000010', 'hex');

/** The field prime p = 2^255 − 19, little-endian. */
const P = Buffer.from('edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f', 'hex');

/**
 * The y coordinates (bit 255, the sign of x, cleared) of the 8 points of order 1, 2, 4 or 8,
 * the torsion subgroup: a canonical point encoding has small order exactly when its y is one of
 * these, whatever its sign bit. The list is libsodium's `ge25519_has_small_order` less its two
 * encodings of y ≥ p, which the canonical check refuses first.
 */
export const SMALL_ORDER_Y: readonly Buffer[] = [
  // y = 1: the identity (order 1).
  '0100000000000000000000000000000000000000000000000000000000000000',
  // y = p − 1: (0, −1) (order 2).
  'ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
  // y = 0: (±√−1, 0) (order 4).
  '0000000000000000000000000000000000000000000000000000000000000000',
  // y = 2707385501144840649318225287225658788936804267575313519463743609750303402022 (order 8).
  '26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05',
  // y = p − that (order 8).
  'c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a',
].map((y) => Buffer.from(y, 'hex'));

/** Why a key and signature are refused before verification. */
export type Ed25519Refusal =
  | 'signature is not 64 bytes'
  | 'S is not below L'
  | 'R is not a canonical point encoding'
  | 'R has small order'
  | 'public key is not a canonical point encoding'
  | 'public key has small order';

/** Compares two 32-byte little-endian numbers, the first with bit 255 cleared when `y`. */
function compare(a: Uint8Array, b: Uint8Array, y: boolean): number {
  for (let i = 31; i >= 0; i--) {
    const x = i === 31 && y ? (a[i] as number) & 0x7f : (a[i] as number);
    if (x !== b[i]) return x < (b[i] as number) ? -1 : 1;
  }
  return 0;
}

/** The reason a 32-byte point encoding is refused, naming it `what`, or undefined. */
function pointRefusal(point: Uint8Array, what: 'R' | 'public key'): Ed25519Refusal | undefined {
  if (compare(point, P, true) >= 0) return `${what} is not a canonical point encoding`;
  if (SMALL_ORDER_Y.some((y) => compare(point, y, true) === 0)) return `${what} has small order`;
  return undefined;
}

/**
 * Why `signature` (R ‖ S) under the 32-byte `publicKey` must be refused whatever the message,
 * or undefined when it may go to a backend. Refused: a signature that is not 64 bytes; S ≥ L
 * (RFC 8032 §5.1.7); R or the key not canonical (y ≥ p; RFC 8032 §5.1.3) or of small order.
 * Small-order keys are refused because with them a signature verifies for messages the key's
 * owner never signed (R = identity, S = 0 verifies under the identity key for every message).
 */
export function ed25519Refusal(
  publicKey: Uint8Array,
  signature: Uint8Array,
): Ed25519Refusal | undefined {
  if (publicKey.length !== 32) throw new Error('bug: an Ed25519 public key is 32 bytes');
  if (signature.length !== 64) return 'signature is not 64 bytes';
  if (compare(signature.subarray(32), L, false) >= 0) return 'S is not below L';
  return pointRefusal(signature.subarray(0, 32), 'R') ?? pointRefusal(publicKey, 'public key');
}
