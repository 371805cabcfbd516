/** Store paths `<storeDir>/<32 nix32 chars>-<name>`, validated as Nix does. */
import { NixError } from './errors.js';
import { NIX32_ALPHABET } from './nix32.js';

/** The default store directories of Nix and Guix. */
export const NIX_STORE_DIR = '/nix/store';
export const GUIX_STORE_DIR = '/gnu/store';

/** Length of the hash part of a store path (160 bits in nix32). */
export const HASH_PART_LENGTH = 32;
/** Longest name Nix accepts. */
export const MAX_NAME_LENGTH = 211;

/** A parsed store path. */
export interface StorePath {
  readonly storeDir: string;
  /** `<hash part>-<name>`, as in narinfo `References` and `Deriver`. */
  readonly baseName: string;
  readonly hashPart: string;
  readonly name: string;
}

const HASH_PART = new RegExp(`^[${NIX32_ALPHABET}]{${HASH_PART_LENGTH}}$`);
const NAME = /^[A-Za-z0-9+\-._?=]+$/;
const STORE_DIR = /^(?:\/[^/\0]+)+$/;

/**
 * Checks a store path name: 1 to 211 characters of `A-Za-z0-9+-._?=` (Nix 2.8's rule), and
 * not `.`, `..`, nor starting with `.-` or `..-` (which later Nix versions also reject).
 */
export function checkStorePathName(name: string): void {
  if (name.length === 0) throw new NixError('malformed', 'store path name is empty');
  if (name.length > MAX_NAME_LENGTH) {
    throw new NixError('malformed', `store path name is longer than ${MAX_NAME_LENGTH} characters`);
  }
  if (!NAME.test(name)) {
    throw new NixError(
      'malformed',
      `store path name ${JSON.stringify(name)} has an illegal character`,
    );
  }
  if (/^\.\.?(?:-|$)/.test(name)) {
    throw new NixError('malformed', `store path name ${JSON.stringify(name)} is not valid`);
  }
}

/** Checks that a store directory is an absolute, canonical path (`/nix/store`, `/gnu/store`). */
export function checkStoreDir(storeDir: string): void {
  if (!STORE_DIR.test(storeDir) || /\/\.\.?(?:\/|$)/.test(storeDir)) {
    throw new NixError('malformed', `store directory ${JSON.stringify(storeDir)} is not canonical`);
  }
}

/** Parses a base name `<hash part>-<name>`. */
export function parseStorePathBaseName(baseName: string, storeDir = NIX_STORE_DIR): StorePath {
  const hashPart = baseName.slice(0, HASH_PART_LENGTH);
  if (!HASH_PART.test(hashPart) || baseName.charAt(HASH_PART_LENGTH) !== '-') {
    throw new NixError('malformed', `${JSON.stringify(baseName)} is not <nix32 hash>-<name>`);
  }
  const name = baseName.slice(HASH_PART_LENGTH + 1);
  checkStorePathName(name);
  return { storeDir, baseName, hashPart, name };
}

/** Parses a full store path in `storeDir` (default `/nix/store`); nothing but the exact form. */
export function parseStorePath(path: string, storeDir = NIX_STORE_DIR): StorePath {
  checkStoreDir(storeDir);
  const prefix = `${storeDir}/`;
  if (!path.startsWith(prefix)) {
    throw new NixError('malformed', `${JSON.stringify(path)} is not in the store ${storeDir}`);
  }
  return parseStorePathBaseName(path.slice(prefix.length), storeDir);
}

/** The full path of a store path. */
export function formatStorePath(path: StorePath): string {
  return `${path.storeDir}/${path.baseName}`;
}

/** True when `text` is a valid store path hash part (32 nix32 characters). */
export function isHashPart(text: string): boolean {
  return HASH_PART.test(text);
}
