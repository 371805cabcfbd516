/**
 * Hashes as Nix writes them: `<algo>:<nix32|base16|base64>` or SRI `<algo>-<base64>`, all read
 * into one normalised value.
 */
import { createHash } from 'node:crypto';
import { NixError } from './errors.js';
import { decodeNix32, encodeNix32, nix32Length } from './nix32.js';

/** The hash algorithms Nix knows, with their digest sizes. */
export const HASH_ALGORITHMS = { md5: 16, sha1: 20, sha256: 32, sha512: 64 } as const;
export type HashAlgorithm = keyof typeof HASH_ALGORITHMS;

/** A hash: its algorithm and digest. */
export interface NixHash {
  readonly algorithm: HashAlgorithm;
  readonly digest: Uint8Array;
}

/** The text forms Nix reads; `nix32` with the `algo:` prefix is what narinfo files use. */
export type HashFormat = 'nix32' | 'base16' | 'base64' | 'sri';

const BASE16 = /^[0-9a-f]*$/;
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** `sha256:<nix32>`, the form narinfo files and log entries use. */
const SHA256_PREFIX = 'sha256:';
const SHA256_NIX32_LENGTH = SHA256_PREFIX.length + nix32Length(32);

function isAlgorithm(name: string): name is HashAlgorithm {
  return Object.hasOwn(HASH_ALGORITHMS, name);
}

function decodeBase64Strict(text: string, what: string): Uint8Array {
  const bytes = BASE64.test(text) ? Buffer.from(text, 'base64') : undefined;
  if (bytes === undefined || bytes.toString('base64') !== text) {
    throw new NixError('malformed', `${what}: not canonical base64`);
  }
  return new Uint8Array(bytes);
}

/**
 * Parses a hash in any form Nix accepts in narinfo files and on the command line:
 * `sha256:<nix32>`, `sha256:<base16>`, `sha256:<base64>` (the encoding is told apart by length)
 * or SRI `sha256-<base64>`. Base16 must be lowercase and base64 canonical.
 */
export function parseHash(text: string): NixHash {
  // The common form, read without the general matching below.
  if (text.length === SHA256_NIX32_LENGTH && text.startsWith(SHA256_PREFIX)) {
    return { algorithm: 'sha256', digest: decodeNix32(text.slice(SHA256_PREFIX.length), 32) };
  }
  const sri = /^([a-z0-9]+)-(.*)$/.exec(text);
  const prefixed = sri === null ? /^([a-z0-9]+):(.*)$/.exec(text) : null;
  const match = sri ?? prefixed;
  if (match === null) throw new NixError('malformed', `hash ${JSON.stringify(text)} has no type`);
  const [, algorithm = '', rest = ''] = match;
  if (!isAlgorithm(algorithm)) throw new NixError('malformed', `unknown hash type ${algorithm}`);
  const size = HASH_ALGORITHMS[algorithm];
  let digest: Uint8Array;
  if (sri !== null) digest = decodeBase64Strict(rest, `${algorithm} SRI hash`);
  else if (rest.length === size * 2 && BASE16.test(rest)) digest = Buffer.from(rest, 'hex');
  else if (rest.length === nix32Length(size)) digest = decodeNix32(rest, size);
  else if (rest.length === Math.ceil(size / 3) * 4) {
    digest = decodeBase64Strict(rest, `${algorithm} hash`);
  } else {
    throw new NixError('malformed', `${algorithm} hash has the wrong length (${rest.length})`);
  }
  if (digest.length !== size) {
    throw new NixError('malformed', `${algorithm} hash has ${digest.length} bytes, want ${size}`);
  }
  return { algorithm, digest: new Uint8Array(digest) };
}

/** Formats a hash; the default, `algo:<nix32>`, is what Nix writes in narinfo files. */
export function formatHash(hash: NixHash, format: HashFormat = 'nix32'): string {
  const digest = Buffer.from(hash.digest);
  switch (format) {
    case 'nix32':
      return `${hash.algorithm}:${encodeNix32(hash.digest)}`;
    case 'base16':
      return `${hash.algorithm}:${digest.toString('hex')}`;
    case 'base64':
      return `${hash.algorithm}:${digest.toString('base64')}`;
    case 'sri':
      return `${hash.algorithm}-${digest.toString('base64')}`;
  }
}

/** True when two hashes have the same algorithm and digest. */
export function hashesEqual(a: NixHash, b: NixHash): boolean {
  return a.algorithm === b.algorithm && Buffer.from(a.digest).equals(b.digest);
}

/** The SHA-256 of `data` as a {@link NixHash}. */
export function sha256(data: Uint8Array | string): NixHash {
  return { algorithm: 'sha256', digest: createHash('sha256').update(data).digest() };
}
