/**
 * ECDSA over the Ed25519 curve as libgcrypt computes it for Guix's keys (not EdDSA): the
 * digest's leftmost 253 bits (ℓ's bit length) as the integer e, RFC 6979 nonces with
 * HMAC-SHA-256, r = x(k·G) mod ℓ on the Edwards curve, s = k⁻¹(e + r·d) mod ℓ. The curve
 * arithmetic is @noble/curves'.
 */
import { createHmac } from 'node:crypto';
import { ed25519 } from '@noble/curves/ed25519.js';
import { GuixError } from './errors.js';
import {
  GROUP_ORDER,
  type GuixPublicKey,
  type GuixSecretKey,
  bigintToBytes,
  bytesToBigint,
  keyPoint,
} from './keys.js';

const Point = ed25519.Point;
const Fn = Point.Fn;
/** Bit length of ℓ (253) and its byte length (32, RFC 6979's rlen). */
const ORDER_BITS = GROUP_ORDER.toString(2).length;
const ORDER_BYTES = Math.ceil(ORDER_BITS / 8);

/** An ECDSA signature: the integers r and s, each in [1, ℓ). */
export interface EcdsaSignature {
  readonly r: bigint;
  readonly s: bigint;
}

/** RFC 6979 bits2int: the leftmost ORDER_BITS bits of `bytes` as an integer. */
function bits2int(bytes: Uint8Array): bigint {
  const excess = bytes.length * 8 - ORDER_BITS;
  const value = bytesToBigint(bytes);
  return excess > 0 ? value >> BigInt(excess) : value;
}

/** The integer e an SHA-256 digest signs: the digest shifted right by 3 bits. */
export function digestToInteger(digest: Uint8Array): bigint {
  if (digest.length !== 32) throw new GuixError('malformed', 'want a 32-byte SHA-256 digest');
  return bits2int(digest);
}

function hmac(key: Uint8Array, ...parts: Uint8Array[]): Uint8Array {
  const mac = createHmac('sha256', key);
  for (const p of parts) mac.update(p);
  return new Uint8Array(mac.digest());
}

/**
 * RFC 6979 section 3.2 nonces, in order, as libgcrypt derives them: the private key enters as
 * `d` exactly as the key holds it (libgcrypt does not reduce its Ed25519 scalar mod ℓ first)
 * in ORDER_BYTES big-endian bytes, the message as bits2octets(digest) = the integer e mod ℓ.
 */
export function* rfc6979Nonces(d: Uint8Array, digest: Uint8Array): Generator<bigint, never> {
  const x = bigintToBytes(bytesToBigint(d), ORDER_BYTES);
  const h = bigintToBytes(digestToInteger(digest) % GROUP_ORDER, ORDER_BYTES);
  let v: Uint8Array = new Uint8Array(32).fill(1);
  let k: Uint8Array = new Uint8Array(32);
  k = hmac(k, v, Uint8Array.of(0), x, h);
  v = hmac(k, v);
  k = hmac(k, v, Uint8Array.of(1), x, h);
  v = hmac(k, v);
  for (;;) {
    v = hmac(k, v); // one HMAC output is 256 bits ≥ ORDER_BITS: T = V
    const candidate = bits2int(v);
    if (candidate > 0n && candidate < GROUP_ORDER) yield candidate;
    k = hmac(k, v, Uint8Array.of(0));
    v = hmac(k, v);
  }
}

/** The affine Edwards x coordinate of a point, mod ℓ. */
function xModOrder(point: ReturnType<typeof Point.fromBytes>): bigint {
  return Fn.create(point.toAffine().x);
}

/**
 * Signs an SHA-256 digest, deterministically: byte-identical to libgcrypt's `gcry_pk_sign` with
 * `(data (flags rfc6979) (hash sha256 …))` for the same key and digest.
 */
export function ecdsaSign(digest: Uint8Array, key: GuixSecretKey): EcdsaSignature {
  const e = digestToInteger(digest);
  const d = Fn.create(bytesToBigint(key.d));
  for (const k of rfc6979Nonces(key.d, digest)) {
    const r = xModOrder(Point.BASE.multiply(k));
    if (r === 0n) continue;
    const s = Fn.mul(Fn.inv(k), Fn.add(Fn.create(e), Fn.mul(r, d)));
    if (s !== 0n) return { r, s };
  }
  throw new Error('bug: the nonce generator ended');
}

/**
 * Verifies an ECDSA signature on an SHA-256 digest; returns it, or throws `signature`:
 * 0 < r, s < ℓ, and x(u₁·G + u₂·Q) mod ℓ = r with w = s⁻¹, u₁ = e·w, u₂ = r·w.
 */
export function verifyEcdsa(
  digest: Uint8Array,
  signature: EcdsaSignature,
  key: GuixPublicKey,
): EcdsaSignature {
  const { r, s } = signature;
  if (r <= 0n || r >= GROUP_ORDER || s <= 0n || s >= GROUP_ORDER) {
    throw new GuixError('signature', 'ECDSA signature: r or s is out of range');
  }
  const e = Fn.create(digestToInteger(digest));
  const w = Fn.inv(s);
  const sum = Point.BASE.multiplyUnsafe(Fn.mul(e, w)).add(
    keyPoint(key).multiplyUnsafe(Fn.mul(r, w)),
  );
  if (sum.is0() || xModOrder(sum) !== r) {
    throw new GuixError('signature', 'ECDSA signature does not verify');
  }
  return signature;
}
