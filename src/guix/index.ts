/**
 * The guix module: a pure library for Guix's formats — libgcrypt s-expressions, Guix signing
 * keys, ECDSA over the Ed25519 curve as libgcrypt computes it, the signature s-expression,
 * Guix narinfos and their `Signature:` field, and ACL files with `(k-of-n …)` entries.
 */
export { GuixError, type GuixErrorCode } from './errors.js';
export {
  MAX_SEXP_BYTES,
  MAX_SEXP_DEPTH,
  type Sexp,
  type SexpAtom,
  type SexpLimits,
  type SexpList,
  decodeGuixText,
  formatCanonicalSexp,
  formatSexp,
  guixTextToSexp,
  isSexpAtom,
  parseCanonicalSexp,
  parseSexp,
  sexpAtom,
  sexpAtomText,
  sexpEqual,
  sexpToGuixText,
} from './sexp.js';
export {
  GROUP_ORDER,
  type GuixPublicKey,
  type GuixSecretKey,
  MAX_KEY_FILE_SIZE,
  formatGuixPublicKey,
  formatGuixSecretKey,
  generateGuixSecretKey,
  guixPublicKey,
  guixPublicKeyFromHex,
  guixPublicKeyHex,
  parseGuixPublicKey,
  parseGuixSecretKey,
  publicKeyFromSexp,
  publicKeySexp,
  sameGuixKey,
} from './keys.js';
export {
  type EcdsaSignature,
  digestToInteger,
  ecdsaSign,
  rfc6979Nonces,
  verifyEcdsa,
} from './ecdsa.js';
export {
  type GuixSignature,
  MAX_SIGNATURE_SIZE,
  formatGuixSignature,
  parseGuixSignature,
  sha256Digest,
  signGuix,
  verifyGuixSignature,
} from './signature.js';
export {
  GUIX_COMPRESSIONS,
  type GuixNarInfo,
  type GuixNarInfoFields,
  type GuixNarInfoSignature,
  type GuixNarUrl,
  MAX_GUIX_NARINFO_SIZE,
  MAX_URL_BLOCKS,
  formatGuixNarInfoBody,
  formatGuixUrlBlocks,
  guixSignaturePayload,
  parseGuixNarInfo,
  signGuixNarInfo,
  verifyGuixNarInfo,
} from './narinfo.js';
export {
  type GuixAcl,
  type GuixAclSubject,
  MAX_ACL_ENTRIES,
  MAX_ACL_SIZE,
  MAX_KOFN_DEPTH,
  formatGuixAcl,
  parseGuixAcl,
  plainAclKeys,
} from './acl.js';
