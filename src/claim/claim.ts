/**
 * A builder's claim — "building this store path gave this NAR" — and its log entry, the
 * canonical text record `accord/build/v1` (docs/entry.md).
 */
import {
  NIX_STORE_DIR,
  type NixHash,
  type StorePath,
  formatHash,
  formatStorePath,
  parseHash,
  parseStorePath,
  parseStorePathBaseName,
} from '../nix/index.js';
import { ClaimError } from './errors.js';

/** What a builder states about one output. */
export interface BuildClaim {
  readonly storePath: StorePath;
  /** SHA-256 of the NAR serialisation. */
  readonly narHash: NixHash;
  readonly narSize: number;
  /** Base names of the store paths the output refers to, sorted by bytes, no duplicates. */
  readonly references: readonly string[];
  /** Base name of the derivation that built it, when known. */
  readonly deriver?: string;
}

/** The first line of every entry of this version. */
export const ENTRY_HEADER = 'accord/build/v1';
/** Largest entry accepted: far above any real claim, below the 65,535-byte tile limit. */
export const MAX_ENTRY_SIZE = 60_000;

const HEADER_LINE = `${ENTRY_HEADER}\n`;
const DECIMAL = /^[1-9][0-9]{0,15}$/;
const CANONICAL_HASH = /^sha256:[0-9a-df-np-sv-z]{52}$/;

function malformed(why: string, cause?: unknown): ClaimError {
  return new ClaimError('malformed', `invalid accord/build/v1 entry: ${why}`, { cause });
}

/**
 * Checks and normalises a claim: the NAR hash is SHA-256, the size a safe integer > 0,
 * references valid base names in the same store (sorted, duplicates refused), the deriver a
 * valid base name ending in `.drv`.
 */
export function checkClaim(claim: BuildClaim): BuildClaim {
  const dir = claim.storePath.storeDir;
  if (claim.narHash.algorithm !== 'sha256' || claim.narHash.digest.length !== 32) {
    throw malformed('nar-hash is not SHA-256');
  }
  if (!Number.isSafeInteger(claim.narSize) || claim.narSize <= 0) {
    throw malformed(`nar-size ${claim.narSize} is not a positive integer`);
  }
  for (const r of claim.references) {
    try {
      parseStorePathBaseName(r, dir);
    } catch (cause) {
      throw malformed(`reference ${JSON.stringify(r)} is not a store path base name`, cause);
    }
  }
  // Valid base names are ASCII, so string order is byte order.
  const references = [...claim.references].sort();
  references.forEach((r, i) => {
    if (i > 0 && references[i - 1] === r) throw malformed(`reference ${r} appears twice`);
  });
  if (claim.deriver === undefined) return { ...claim, references };
  try {
    parseStorePathBaseName(claim.deriver, dir);
  } catch (cause) {
    throw malformed(
      `deriver ${JSON.stringify(claim.deriver)} is not a store path base name`,
      cause,
    );
  }
  if (!claim.deriver.endsWith('.drv')) throw malformed('deriver does not end in .drv');
  return { ...claim, references, deriver: claim.deriver };
}

/** The entry text of a claim {@link checkClaim} accepted. */
function entryText(c: BuildClaim): string {
  let text = `${ENTRY_HEADER}\nstore-path ${formatStorePath(c.storePath)}\nnar-hash ${formatHash(c.narHash)}\nnar-size ${c.narSize}\n`;
  for (const r of c.references) text += `reference ${r}\n`;
  if (c.deriver !== undefined) text += `deriver ${c.deriver}\n`;
  if (Buffer.byteLength(text) > MAX_ENTRY_SIZE) {
    throw new ClaimError('limit', `entry of ${Buffer.byteLength(text)} bytes is too large`);
  }
  return text;
}

/** The canonical entry text of a claim (one encoding per claim). */
export function formatEntry(claim: BuildClaim): string {
  return entryText(checkClaim(claim));
}

/**
 * Parses an entry strictly (attacker-controlled: it comes from a log): the header, then
 * `store-path`, `nar-hash` (SHA-256 in nix32), `nar-size`, any `reference` lines in byte order,
 * an optional `deriver`, each line ending in a newline, nothing else. Only the canonical text
 * of a claim parses, so entry bytes and claims correspond one to one.
 */
export function parseEntry(entry: string | Uint8Array, storeDir = NIX_STORE_DIR): BuildClaim {
  const size = typeof entry === 'string' ? Buffer.byteLength(entry) : entry.length;
  if (size > MAX_ENTRY_SIZE) throw new ClaimError('limit', `entry of ${size} bytes is too large`);
  const text =
    typeof entry === 'string'
      ? entry
      : Buffer.from(entry.buffer, entry.byteOffset, entry.length).toString('utf8');
  if (!text.endsWith('\n')) throw malformed('does not end in a newline');
  if (!text.startsWith(HEADER_LINE)) throw malformed(`first line is not ${ENTRY_HEADER}`);
  /** Where the next line starts. */
  let at = HEADER_LINE.length;
  /** The value of the next line when it is `<prefix><value>`, which it moves past. */
  const field = (prefix: string): string | undefined => {
    if (!text.startsWith(prefix, at)) return undefined;
    const end = text.indexOf('\n', at);
    const value = text.slice(at + prefix.length, end);
    at = end + 1;
    return value;
  };
  const path = field('store-path ');
  const hash = field('nar-hash ');
  const size_ = field('nar-size ');
  if (path === undefined || hash === undefined || size_ === undefined) {
    throw malformed('want store-path, nar-hash and nar-size lines in that order');
  }
  // Canonical form, checked field by field (one encoding per claim): the hash as sha256 in
  // nix32 (whose decoding is unique), the size in plain decimal, references strictly ascending.
  if (!CANONICAL_HASH.test(hash)) throw malformed('nar-hash is not sha256 in nix32');
  if (!DECIMAL.test(size_)) throw malformed(`nar-size ${JSON.stringify(size_)} is not canonical`);
  const narSize = Number(size_);
  if (!Number.isSafeInteger(narSize)) throw malformed(`nar-size ${size_} is too large`);
  let storePath: StorePath;
  let narHash: NixHash;
  try {
    storePath = parseStorePath(path, storeDir);
    narHash = parseHash(hash);
  } catch (cause) {
    throw malformed(cause instanceof Error ? cause.message : String(cause), cause);
  }
  const references: string[] = [];
  for (let r = field('reference '); r !== undefined; r = field('reference ')) {
    baseName(r, 'reference', storeDir);
    const last = references[references.length - 1];
    if (last !== undefined && last >= r) {
      throw malformed(last === r ? `reference ${r} appears twice` : 'references are not sorted');
    }
    references.push(r);
  }
  const deriver = field('deriver ');
  if (deriver !== undefined) {
    baseName(deriver, 'deriver', storeDir);
    if (!deriver.endsWith('.drv')) throw malformed('deriver does not end in .drv');
  }
  if (at !== text.length) {
    throw malformed(`unexpected line ${JSON.stringify(text.slice(at, text.indexOf('\n', at)))}`);
  }
  return {
    storePath,
    narHash,
    narSize,
    references,
    ...(deriver === undefined ? {} : { deriver }),
  };
}

function baseName(text: string, what: string, storeDir: string): void {
  try {
    parseStorePathBaseName(text, storeDir);
  } catch (cause) {
    throw malformed(`${what} ${JSON.stringify(text)} is not a store path base name`, cause);
  }
}

/**
 * True when two claims say the same thing about a path's contents: same NAR hash, NAR size and
 * references (the deriver may differ between builders).
 */
export function sameOutput(a: BuildClaim, b: BuildClaim): boolean {
  return (
    formatStorePath(a.storePath) === formatStorePath(b.storePath) &&
    formatHash(a.narHash) === formatHash(b.narHash) &&
    a.narSize === b.narSize &&
    [...a.references].sort().join(' ') === [...b.references].sort().join(' ')
  );
}

/** The JSON form of a claim, as `accord submit` sends it and `/lookup` returns it. */
export interface ClaimJson {
  storePath: string;
  narHash: string;
  narSize: number;
  references: string[];
  deriver?: string;
}

/** A claim as JSON, its hash in `sha256:<nix32>` form. */
export function claimToJson(claim: BuildClaim): ClaimJson {
  const json: ClaimJson = {
    storePath: formatStorePath(claim.storePath),
    narHash: formatHash(claim.narHash),
    narSize: claim.narSize,
    references: [...claim.references],
  };
  if (claim.deriver !== undefined) json.deriver = claim.deriver;
  return json;
}

const JSON_KEYS = new Set(['storePath', 'narHash', 'narSize', 'references', 'deriver']);

/**
 * Reads a claim from parsed JSON (attacker-controlled): exactly the keys of {@link ClaimJson},
 * of the right types; the hash in any form Nix reads; the same checks as {@link checkClaim},
 * and its entry within {@link MAX_ENTRY_SIZE}.
 */
export function claimFromJson(value: unknown, storeDir = NIX_STORE_DIR): BuildClaim {
  return entryFromJson(value, storeDir).claim;
}

/** {@link claimFromJson}, with the claim's entry text, as a log needs both. */
export function entryFromJson(
  value: unknown,
  storeDir = NIX_STORE_DIR,
): { claim: BuildClaim; entry: string } {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw malformed('a claim must be a JSON object');
  }
  const o = value as Record<string, unknown>;
  for (const key of Object.keys(o)) if (!JSON_KEYS.has(key)) throw malformed(`unknown key ${key}`);
  const { storePath, narHash, narSize, references, deriver } = o;
  if (typeof storePath !== 'string') throw malformed('storePath must be a string');
  if (typeof narHash !== 'string') throw malformed('narHash must be a string');
  if (typeof narSize !== 'number') throw malformed('narSize must be a number');
  if (!Array.isArray(references) || !references.every((r) => typeof r === 'string')) {
    throw malformed('references must be an array of strings');
  }
  if (deriver !== undefined && typeof deriver !== 'string')
    throw malformed('deriver must be a string');
  let claim: BuildClaim;
  try {
    claim = {
      storePath: parseStorePath(storePath, storeDir),
      narHash: parseHash(narHash),
      narSize,
      references,
      ...(deriver === undefined ? {} : { deriver }),
    };
  } catch (cause) {
    throw malformed(cause instanceof Error ? cause.message : String(cause), cause);
  }
  const checked = checkClaim(claim);
  return { claim: checked, entry: entryText(checked) };
}
