/**
 * The nix module: a pure library for Nix's formats — nix32, hashes, store paths, narinfo and
 * its signatures, Nix keys, nix-cache-info, NAR serialisation, parsing and hashing,
 * derivations, Nix's internal-json build log, and decompression. No file system or network access: callers hand in bytes and tree sources.
 */
export { NixError, type NixErrorCode } from './errors.js';
export { NIX32_ALPHABET, decodeNix32, encodeNix32, nix32Length } from './nix32.js';
export {
  HASH_ALGORITHMS,
  type HashAlgorithm,
  type HashFormat,
  type NixHash,
  formatHash,
  hashesEqual,
  parseHash,
  sha256,
} from './hash.js';
export {
  GUIX_STORE_DIR,
  HASH_PART_LENGTH,
  MAX_NAME_LENGTH,
  NIX_STORE_DIR,
  type StorePath,
  checkStoreDir,
  checkStorePathName,
  formatStorePath,
  isHashPart,
  parseStorePath,
  parseStorePathBaseName,
} from './store-path.js';
export { type Derivation, MAX_DERIVATION_BYTES, parseDerivation } from './derivation.js';
export { type BuildProgress, BuildLog } from './build-log.js';
export {
  type NixPublicKey,
  type NixSecretKey,
  formatNixPublicKey,
  formatNixSecretKey,
  generateNixSecretKey,
  nixPublicKey,
  parseNixPublicKey,
  parseNixSecretKey,
  signDetached,
  verifyDetached,
} from './keys.js';
export {
  type Fingerprinted,
  MAX_NARINFO_SIZE,
  type NarInfo,
  fingerprint,
  formatNarInfo,
  parseNarInfo,
  signNarInfo,
  verifiedSigners,
} from './narinfo.js';
export { type CacheInfo, formatCacheInfo, parseCacheInfo } from './cache-info.js';
export { NAR_MAGIC, narString } from './nar-format.js';
export { type NarSource, writeNar } from './nar-write.js';
export { type NarLimits, type NarListener, NarParser } from './nar-parse.js';
export { NarHasher, type NarSummary, hashNarSource, hashNarStream } from './nar-hash.js';
export { type DecompressOptions, SUPPORTED_COMPRESSIONS, decompress } from './decompress.js';
export { confineNarUrl } from './nar-url.js';
export { ZSTD_RAW_END, ZstdFrameEnd, zstdRawBlocks, zstdRawFrameHeader } from './zstd-frame.js';
