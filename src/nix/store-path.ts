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

const STORE_DIR = /^(?:\/[^/\0]+)+$/;

// Character classes by ASCII code (checked in loops: store paths are read by the million).
const NIX32_CHAR = new Uint8Array(128);
for (const c of NIX32_ALPHABET) NIX32_CHAR[c.charCodeAt(0)] = 1;
const NAME_CHAR = new Uint8Array(128);
for (const c of 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+-._?=')
  NAME_CHAR[c.charCodeAt(0)] = 1;

/** True when `text[start…end)` is made of characters of `charClass` only. */
function allOf(charClass: Uint8Array, text: string, start: number, end: number): boolean {
  for (let i = start; i < end; i++) {
    const code = text.charCodeAt(i); // NaN beyond the end: not in any class
    if (!(code < 128) || charClass[code] === 0) return false;
  }
  return true;
}

/**
 * Checks a store path name: 1 to 211 characters of `A-Za-z0-9+-._?=` (Nix 2.8's rule), and
 * not `.`, `..`, nor starting with `.-` or `..-` (which later Nix versions also reject).
 */
export function checkStorePathName(name: string): void {
  if (name.length === 0) throw new NixError('malformed', 'store path name is empty');
  if (name.length > MAX_NAME_LENGTH) {
    throw new NixError('malformed', `store path name is longer than ${MAX_NAME_LENGTH} characters`);
  }
  if (!allOf(NAME_CHAR, name, 0, name.length)) {
    throw new NixError(
      'malformed',
      `store path name ${JSON.stringify(name)} has an illegal character`,
    );
  }
  if (name.startsWith('.') && /^\.\.?(?:-|$)/.test(name)) {
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
  if (!allOf(NIX32_CHAR, baseName, 0, HASH_PART_LENGTH) || baseName[HASH_PART_LENGTH] !== '-') {
    throw new NixError('malformed', `${JSON.stringify(baseName)} is not <nix32 hash>-<name>`);
  }
  const name = baseName.slice(HASH_PART_LENGTH + 1);
  checkStorePathName(name);
  return { storeDir, baseName, hashPart: baseName.slice(0, HASH_PART_LENGTH), name };
}

/** The store directory last checked by {@link parseStorePath}: each path need not check it again. */
let checkedStoreDir: string | undefined;

/** Parses a full store path in `storeDir` (default `/nix/store`); nothing but the exact form. */
export function parseStorePath(path: string, storeDir = NIX_STORE_DIR): StorePath {
  if (storeDir !== checkedStoreDir) {
    checkStoreDir(storeDir);
    checkedStoreDir = storeDir;
  }
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
  return text.length === HASH_PART_LENGTH && allOf(NIX32_CHAR, text, 0, HASH_PART_LENGTH);
}
