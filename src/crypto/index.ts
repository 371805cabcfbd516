/** Public surface of the crypto module: the primitives Accord's pure libraries share. */
export {
  type Ed25519Backend,
  type Ed25519PrivateKey,
  type Ed25519PublicKey,
  PUBLIC_KEY_SIZE,
  SEED_SIZE,
  SIGNATURE_SIZE,
  ed25519Sign,
  ED25519_VERIFIER,
  ed25519Verify,
  ed25519VerifyWith,
  HAVE_LIBSODIUM,
  generateSeed,
  importPublicKey,
  importSeed,
} from './ed25519.js';
export { loadAddon } from './native.js';
export { HAVE_NATIVE_SHA256, sha256Spans } from './sha256.js';
