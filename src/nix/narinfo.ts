/**
 * narinfo files (`<hash part>.narinfo`, `text/x-nix-narinfo`): strict parsing of what Nix 2.8
 * accepts, serialisation in Nix's field order, the fingerprint and its `Sig:` lines.
 */
import { NixError } from './errors.js';
import { type NixHash, formatHash, parseHash } from './hash.js';
import { type NixPublicKey, type NixSecretKey, signDetached, verifyDetached } from './keys.js';
import {
  NIX_STORE_DIR,
  type StorePath,
  formatStorePath,
  parseStorePath,
  parseStorePathBaseName,
} from './store-path.js';

/** A parsed narinfo. References and signatures are kept sorted, as Nix keeps them. */
export interface NarInfo {
  readonly storePath: StorePath;
  readonly url: string;
  /** `bzip2` when the file has no `Compression` line, as in Nix. */
  readonly compression: string;
  readonly fileHash?: NixHash;
  readonly fileSize?: number;
  readonly narHash: NixHash;
  readonly narSize: number;
  /** Base names (`<hash>-<name>`), sorted. */
  readonly references: readonly string[];
  /** Base name of the deriver, if known. */
  readonly deriver?: string;
  readonly system?: string;
  /** `Sig:` values (`keyname:base64`), sorted. */
  readonly sigs: readonly string[];
  /** Content address (`fixed:…`, `text:…`), if the path is content-addressed. */
  readonly ca?: string;
}

/** Largest narinfo accepted (a path with thousands of references stays far below it). */
export const MAX_NARINFO_SIZE = 1 << 20;

const SINGLE = new Set([
  'StorePath',
  'URL',
  'Compression',
  'FileHash',
  'FileSize',
  'NarHash',
  'NarSize',
  'References',
  'Deriver',
  'System',
  'CA',
]);
const DECIMAL = /^(?:0|[1-9][0-9]{0,15})$/;
const CONTENT_ADDRESS = /^(?:text:|fixed:(?:r:)?)[a-z0-9]+:[0-9a-z]+$/;

function corrupt(why: string): NixError {
  return new NixError('malformed', `narinfo is corrupt: ${why}`);
}

function parseSize(value: string, field: string): number {
  const n = DECIMAL.test(value) ? Number(value) : NaN;
  if (!Number.isSafeInteger(n)) throw corrupt(`${field} ${JSON.stringify(value)} is not a size`);
  return n;
}

function parseHashField(value: string, field: string): NixHash {
  let hash: NixHash;
  try {
    hash = parseHash(value);
  } catch (cause) {
    throw new NixError('malformed', `narinfo is corrupt: bad ${field}`, { cause });
  }
  if (hash.algorithm !== 'sha256') throw corrupt(`${field} is not SHA-256`);
  return hash;
}

function sortedUnique(values: readonly string[], field: string): string[] {
  // Nix keeps these in std::set<std::string>: byte order.
  const sorted = [...values].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
  for (let i = 1; i < sorted.length; i++) {
    if (sorted[i] === sorted[i - 1]) throw corrupt(`${field} ${sorted[i] ?? ''} appears twice`);
  }
  return sorted;
}

/**
 * Parses a narinfo (attacker-controlled): `Key: value` lines, each ending in a newline;
 * `StorePath`, `URL`, `NarHash` (SHA-256) and `NarSize` (> 0) required; every field but `Sig`
 * at most once; hashes in any form Nix reads; sizes in canonical decimal; references and
 * deriver valid base names; unknown fields ignored, as Nix does.
 */
export function parseNarInfo(text: string, storeDir = NIX_STORE_DIR): NarInfo {
  if (Buffer.byteLength(text) > MAX_NARINFO_SIZE) {
    throw new NixError('limit', `narinfo larger than ${MAX_NARINFO_SIZE} bytes`);
  }
  if (!text.endsWith('\n')) throw corrupt('does not end in a newline');
  const fields = new Map<string, string>();
  const sigs: string[] = [];
  for (const line of text.slice(0, -1).split('\n')) {
    const colon = line.indexOf(': ');
    if (colon <= 0) throw corrupt(`line ${JSON.stringify(line.slice(0, 80))} is not "Key: value"`);
    const key = line.slice(0, colon);
    const value = line.slice(colon + 2);
    if (/[\0-\x1f\x7f]/.test(line)) throw corrupt(`${key} has a control character`);
    if (key === 'Sig') sigs.push(value);
    else if (SINGLE.has(key)) {
      if (fields.has(key)) throw corrupt(`duplicate ${key}`);
      fields.set(key, value);
    }
  }
  const required = (key: string): string => {
    const value = fields.get(key);
    if (value === undefined || value === '') throw corrupt(`missing ${key}`);
    return value;
  };
  const storePath = parseStorePath(required('StorePath'), storeDir);
  const narSize = parseSize(required('NarSize'), 'NarSize');
  if (narSize === 0) throw corrupt('NarSize is 0');
  const refs = fields.get('References') ?? '';
  const references = refs === '' ? [] : refs.split(' ');
  for (const r of references) parseStorePathBaseName(r, storeDir);
  const info: {
    -readonly [K in keyof NarInfo]: NarInfo[K];
  } = {
    storePath,
    url: required('URL'),
    compression: fields.get('Compression') || 'bzip2',
    narHash: parseHashField(required('NarHash'), 'NarHash'),
    narSize,
    references: sortedUnique(references, 'reference'),
    sigs: sortedUnique(sigs, 'Sig'),
  };
  const fileHash = fields.get('FileHash');
  if (fileHash !== undefined) info.fileHash = parseHashField(fileHash, 'FileHash');
  const fileSize = fields.get('FileSize');
  if (fileSize !== undefined) info.fileSize = parseSize(fileSize, 'FileSize');
  const deriver = fields.get('Deriver');
  if (deriver !== undefined && deriver !== 'unknown-deriver') {
    info.deriver = parseStorePathBaseName(deriver, storeDir).baseName;
  }
  const system = fields.get('System');
  if (system !== undefined && system !== '') info.system = system;
  const ca = fields.get('CA');
  if (ca !== undefined) {
    if (!CONTENT_ADDRESS.test(ca))
      throw corrupt(`CA ${JSON.stringify(ca)} is not a content address`);
    info.ca = ca;
  }
  return info;
}

/** Serialises a narinfo in Nix's field order (`NarInfo::to_string`). */
export function formatNarInfo(info: NarInfo): string {
  const lines = [`StorePath: ${formatStorePath(info.storePath)}`, `URL: ${info.url}`];
  lines.push(`Compression: ${info.compression}`);
  if (info.fileHash !== undefined) lines.push(`FileHash: ${formatHash(info.fileHash)}`);
  if (info.fileSize !== undefined) lines.push(`FileSize: ${info.fileSize}`);
  lines.push(`NarHash: ${formatHash(info.narHash)}`, `NarSize: ${info.narSize}`);
  lines.push(`References: ${sortedUnique(info.references, 'reference').join(' ')}`);
  if (info.deriver !== undefined) lines.push(`Deriver: ${info.deriver}`);
  if (info.system !== undefined) lines.push(`System: ${info.system}`);
  for (const sig of sortedUnique(info.sigs, 'Sig')) lines.push(`Sig: ${sig}`);
  if (info.ca !== undefined) lines.push(`CA: ${info.ca}`);
  return `${lines.join('\n')}\n`;
}

/** What a signature covers: store path, NAR hash and size, and references. */
export type Fingerprinted = Pick<NarInfo, 'storePath' | 'narHash' | 'narSize' | 'references'>;

/**
 * The fingerprint Nix signs: `1;<store path>;sha256:<nix32>;<NAR size>;<full reference paths,
 * sorted, comma-separated>` (`ValidPathInfo::fingerprint`).
 */
export function fingerprint(info: Fingerprinted): string {
  const dir = info.storePath.storeDir;
  const refs = sortedUnique(info.references, 'reference').map((r) => `${dir}/${r}`);
  return `1;${formatStorePath(info.storePath)};${formatHash(info.narHash)};${info.narSize};${refs.join(',')}`;
}

/** Adds a signature by `key` to a narinfo (replacing an earlier one by the same key name). */
export function signNarInfo(info: NarInfo, key: NixSecretKey): NarInfo {
  const sig = signDetached(fingerprint(info), key);
  const others = info.sigs.filter((s) => !s.startsWith(`${key.name}:`));
  return { ...info, sigs: sortedUnique([...others, sig], 'Sig') };
}

/** The names of the trusted keys whose `Sig:` on this narinfo verifies. */
export function verifiedSigners(info: NarInfo, keys: readonly NixPublicKey[]): string[] {
  const message = fingerprint(info);
  return info.sigs
    .filter((sig) => verifyDetached(message, sig, keys))
    .map((sig) => sig.slice(0, sig.indexOf(':')));
}
