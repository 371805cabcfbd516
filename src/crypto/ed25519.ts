/**
 * Ed25519 (RFC 8032) on raw 32-byte seeds and public keys, through node:crypto; verification
 * through libsodium (sodium-native) when it loads, which is about twice as fast as OpenSSL's,
 * after the same encoding rules (`ed25519-rules.ts`) whichever backend runs.
 */
import {
  type KeyObject,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  sign,
  verify,
} from 'node:crypto';
import { createRequire } from 'node:module';
import { ed25519Refusal } from './ed25519-rules.js';

interface Sodium {
  crypto_sign_verify_detached(signature: Uint8Array, message: Uint8Array, key: Uint8Array): boolean;
}

/** libsodium, or undefined where sodium-native has no build for the platform. */
const sodium: Sodium | undefined = (() => {
  try {
    return createRequire(import.meta.url)('sodium-native') as Sodium;
  } catch {
    return undefined;
  }
})();

/** An implementation of Ed25519 verification. */
export type Ed25519Backend = 'libsodium' | 'node:crypto';

/** Whether sodium-native loaded, so that the `libsodium` backend can run. */
export const HAVE_LIBSODIUM = sodium !== undefined;

/** The backend `ed25519Verify` uses: libsodium when it loaded, else node:crypto (OpenSSL). */
export const ED25519_VERIFIER: Ed25519Backend = HAVE_LIBSODIUM ? 'libsodium' : 'node:crypto';

// DER prefixes that wrap a raw key as PKCS#8 (private seed) and SPKI (public key) for node:crypto.
const PKCS8_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');
const SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');

/** Length of an Ed25519 seed (private key), a public key, and a signature. */
export const SEED_SIZE = 32;
export const PUBLIC_KEY_SIZE = 32;
export const SIGNATURE_SIZE = 64;

/** A private key ready to sign, with its public half. */
export interface Ed25519PrivateKey {
  readonly seed: Uint8Array;
  readonly publicKey: Uint8Array;
  readonly keyObject: KeyObject;
}

/** A public key ready to verify. */
export interface Ed25519PublicKey {
  readonly publicKey: Uint8Array;
  readonly keyObject: KeyObject;
}

/** Imports a 32-byte seed; throws `RangeError` on a wrong length. */
export function importSeed(seed: Uint8Array): Ed25519PrivateKey {
  if (seed.length !== SEED_SIZE)
    throw new RangeError(`Ed25519 seed must be 32 bytes, got ${seed.length}`);
  const keyObject = createPrivateKey({
    key: Buffer.concat([PKCS8_PREFIX, seed]),
    format: 'der',
    type: 'pkcs8',
  });
  const spki = createPublicKey(keyObject).export({ format: 'der', type: 'spki' });
  return { seed: Uint8Array.from(seed), publicKey: spki.subarray(SPKI_PREFIX.length), keyObject };
}

/**
 * Imports a 32-byte public key; throws `RangeError` on a wrong length. node:crypto accepts any
 * 32 bytes here: a key that is not a curve point, not canonical or of small order simply never
 * verifies (see `ed25519Verify`).
 */
export function importPublicKey(publicKey: Uint8Array): Ed25519PublicKey {
  if (publicKey.length !== PUBLIC_KEY_SIZE) {
    throw new RangeError(`Ed25519 public key must be 32 bytes, got ${publicKey.length}`);
  }
  const keyObject = createPublicKey({
    key: Buffer.concat([SPKI_PREFIX, publicKey]),
    format: 'der',
    type: 'spki',
  });
  return { publicKey: Uint8Array.from(publicKey), keyObject };
}

/** Generates a fresh key from the system's CSPRNG. */
export function generateSeed(): Ed25519PrivateKey {
  const { privateKey } = generateKeyPairSync('ed25519');
  const pkcs8 = privateKey.export({ format: 'der', type: 'pkcs8' });
  return importSeed(pkcs8.subarray(PKCS8_PREFIX.length));
}

/** Signs `message`; Ed25519 is deterministic, so the same key and message give the same bytes. */
export function ed25519Sign(key: Ed25519PrivateKey, message: Uint8Array): Uint8Array {
  return sign(null, message, key.keyObject);
}

/**
 * True when `signature` is a valid Ed25519 signature of `message` under `key`. Before any
 * backend runs, refuses what `ed25519Refusal` refuses (a small-order or non-canonical key or R,
 * S ≥ L, a length other than 64), so the answer does not depend on which backend loaded.
 */
export function ed25519Verify(
  key: Ed25519PublicKey,
  message: Uint8Array,
  signature: Uint8Array,
): boolean {
  return ed25519VerifyWith(ED25519_VERIFIER, key, message, signature);
}

/**
 * {@link ed25519Verify} by the named backend, for tests and benchmarks; throws an `Error` when
 * that backend did not load.
 */
export function ed25519VerifyWith(
  backend: Ed25519Backend,
  key: Ed25519PublicKey,
  message: Uint8Array,
  signature: Uint8Array,
): boolean {
  if (backend === 'libsodium' && sodium === undefined)
    throw new Error('the libsodium Ed25519 backend is not loaded (sodium-native)');
  if (ed25519Refusal(key.publicKey, signature) !== undefined) return false;
  return backend === 'libsodium' && sodium !== undefined
    ? sodium.crypto_sign_verify_detached(signature, message, key.publicKey)
    : verify(null, message, key.keyObject, signature);
}
