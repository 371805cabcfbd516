/**
 * Backfilling a log from an existing binary cache — a Nix cache, or a `guix publish` server —
 * read each path's narinfo (in parallel), optionally (for Guix always) require a trusted
 * signature, submit the claims in batches, and record progress so an interrupted run resumes
 * where it stopped.
 */
import { readdir } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import {
  type BuildClaim,
  type ClaimJson,
  checkClaim,
  claimToJson,
  formatEntry,
} from '../claim/index.js';
import {
  GuixError,
  type GuixPublicKey,
  MAX_GUIX_NARINFO_SIZE,
  parseGuixNarInfo,
  verifyGuixNarInfo,
} from '../guix/index.js';
import {
  GUIX_STORE_DIR,
  MAX_NARINFO_SIZE,
  NIX_STORE_DIR,
  type NixPublicKey,
  checkStoreDir,
  isHashPart,
  parseCacheInfo,
  parseNarInfo,
  verifiedSigners,
} from '../nix/index.js';
import { FetchError, fetchBytes } from '../server/index.js';
import { parseSignedNote } from '../tlog/index.js';
import { type LogEndpoint, submitClaims } from './client.js';
import type { Spool } from './spool.js';

/** What a backfill has done so far (also its final report). */
export interface BackfillProgress {
  total: number;
  /** Already backfilled by an earlier run. */
  skipped: number;
  submitted: number;
  /** Paths whose narinfo the cache does not have. */
  missing: number;
  /** Narinfos without a valid signature by a trusted key (when keys were given). */
  untrusted: number;
  /** Why the first few untrusted narinfos were refused. */
  refusals: string[];
  /** Narinfos that could not be read or parsed, with the first few reasons. */
  failed: number;
  errors: string[];
  /** The store the claims are about. */
  storeDir: string;
}

export interface BackfillOptions {
  readonly cache: string;
  readonly endpoint: LogEndpoint;
  readonly spool: Spool;
  /** Hash parts to backfill; when absent, a file:// cache is listed. */
  readonly hashParts?: readonly string[];
  /** Nix keys: only narinfos with a `Sig` by one of them are submitted. */
  readonly trustedKeys?: readonly NixPublicKey[];
  /**
   * Guix keys: the cache is a `guix publish` server, its narinfos Guix narinfos, and only those
   * whose `Signature` one of these keys made are submitted (not with `trustedKeys`).
   */
  readonly guixKeys?: readonly GuixPublicKey[];
  /**
   * The store the claims are about. When absent, the cache's `nix-cache-info` says (else
   * `/nix/store`, or `/gnu/store` with `guixKeys`); when given, a cache that says another is
   * refused.
   */
  readonly storeDir?: string;
  /** Narinfos fetched at once (default 16). */
  readonly jobs?: number;
  /** Claims per submission (default 500). */
  readonly batch?: number;
  readonly onProgress?: (progress: BackfillProgress) => void;
}

/** Extracts a hash part from a store path, a base name, `<hash>.narinfo` or a bare hash. */
export function hashPartOf(text: string): string | undefined {
  const name = text
    .trim()
    .replace(/^.*\//, '')
    .replace(/\.narinfo$/, '');
  const hash = name.slice(0, 32);
  return isHashPart(hash) && (name.length === 32 || name.charAt(32) === '-') ? hash : undefined;
}

/** Lists the hash parts of every narinfo in a file:// cache. */
export async function listFileCache(cache: string): Promise<string[]> {
  const dir = fileURLToPath(cache.replace(/\?.*$/, ''));
  return (await readdir(dir)).flatMap((f) => {
    const h = f.endsWith('.narinfo') ? hashPartOf(f) : undefined;
    return h === undefined ? [] : [h];
  });
}

const FETCH_TIMEOUT_MS = 30_000;
const MAX_CACHE_INFO_SIZE = 64 * 1024;

function cacheBase(cache: string): string {
  return cache.replace(/\?.*$/, '').replace(/\/+$/, '');
}

/**
 * A file of the cache (a narinfo, `nix-cache-info`; at most `maxBytes`), or undefined when the
 * cache has none (404, 403, no such file).
 */
async function fetchCacheFile(
  cache: string,
  name: string,
  maxBytes: number,
): Promise<Buffer | undefined> {
  try {
    return await fetchBytes(`${cacheBase(cache)}/${name}`, FETCH_TIMEOUT_MS, maxBytes);
  } catch (e) {
    if (e instanceof FetchError && e.notFound) return undefined;
    throw e;
  }
}

/**
 * The store the claims are about: `wanted` if given, else what the cache's `nix-cache-info`
 * says (`guix publish` serves `StoreDir: /gnu/store`), else `fallback`. A cache that names
 * another store than `wanted` is refused: its paths are not the ones the caller means.
 */
async function cacheStoreDir(
  cache: string,
  wanted: string | undefined,
  fallback: string,
): Promise<string> {
  if (wanted !== undefined) checkStoreDir(wanted);
  const url = `${cacheBase(cache)}/nix-cache-info`;
  // A cache without the file, or a server that refuses it: nothing said.
  const bytes = await fetchCacheFile(cache, 'nix-cache-info', MAX_CACHE_INFO_SIZE);
  if (bytes === undefined) return wanted ?? fallback;
  let said: string;
  try {
    said = parseCacheInfo(bytes.toString('utf8')).storeDir;
    checkStoreDir(said);
  } catch (e) {
    throw new Error(`${url}: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
  }
  if (wanted !== undefined && said !== wanted)
    throw new Error(`${url}: the cache's store is ${said}, not ${wanted}`);
  return said;
}

/**
 * The claim a narinfo makes, when it may be submitted; a string saying why not when it is not
 * signed by a trusted key. Throws when it is malformed, for another path than `hashPart`, or
 * no valid claim. The one place backfill decides what a cache's narinfo is worth.
 */
function narinfoClaim(
  bytes: Buffer,
  hashPart: string,
  storeDir: string,
  options: BackfillOptions,
): ClaimJson | string {
  let claim: BuildClaim;
  let refusal: string | undefined;
  if (options.guixKeys !== undefined) {
    const info = parseGuixNarInfo(bytes, storeDir);
    try {
      verifyGuixNarInfo(info, options.guixKeys);
    } catch (e) {
      if (!(e instanceof GuixError && (e.code === 'signature' || e.code === 'untrusted'))) throw e;
      refusal = e.message;
    }
    claim = info;
  } else {
    const info = parseNarInfo(bytes.toString('utf8'), storeDir);
    const keys = options.trustedKeys;
    if (keys !== undefined && verifiedSigners(info, keys).length === 0)
      refusal = 'no Sig by a trusted key verifies';
    claim = info;
  }
  if (claim.storePath.hashPart !== hashPart)
    throw new Error(`the narinfo is for another path, ${claim.storePath.baseName}`);
  if (refusal !== undefined) return refusal;
  const checked = checkClaim(claim);
  formatEntry(checked); // within the log's entry size
  return claimToJson(checked);
}

/**
 * Who a log is, for remembering what was backfilled into it: its origin and the ID of the key
 * that signs its checkpoints, read from its current checkpoint. A new log at the same URL (a
 * new key) is another log and gets everything.
 */
export async function logIdentity(endpoint: LogEndpoint): Promise<string> {
  const url = `${endpoint.url.replace(/\/+$/, '')}/checkpoint`;
  const note = parseSignedNote(await fetchBytes(url, endpoint.timeoutMs ?? 5000, 64 * 1024));
  const origin = note.text.slice(0, note.text.indexOf('\n'));
  const own = note.signatures.find((sig) => sig.name === origin);
  if (origin === '' || own === undefined)
    throw new Error(`${url}: the checkpoint is not signed by its origin ${origin}`);
  return `${origin} ${own.keyId.toString(16).padStart(8, '0')}`;
}

/** Runs a backfill to the end; claims the log refuses stop it with an error. */
export async function backfill(options: BackfillOptions): Promise<BackfillProgress> {
  const { cache, endpoint, spool } = options;
  const guix = options.guixKeys !== undefined;
  if (guix && options.trustedKeys !== undefined)
    throw new Error('a cache is Nix (trusted keys) or Guix (Guix keys), not both');
  const storeDir = await cacheStoreDir(
    cache,
    options.storeDir,
    guix ? GUIX_STORE_DIR : NIX_STORE_DIR,
  );
  const maxNarInfo = guix ? MAX_GUIX_NARINFO_SIZE : MAX_NARINFO_SIZE;
  const all = options.hashParts ?? (await listFileCache(cache));
  const log = await logIdentity(endpoint);
  const done = spool.backfilled(cache, log);
  const todo = [...new Set(all)].filter((h) => !done.has(h));
  const progress: BackfillProgress = {
    total: new Set(all).size,
    skipped: new Set(all).size - todo.length,
    submitted: 0,
    missing: 0,
    untrusted: 0,
    refusals: [],
    failed: 0,
    errors: [],
    storeDir,
  };
  const batchSize = options.batch ?? 500;
  // Only submitted paths are recorded as done: missing and untrusted ones are tried again on
  // the next run, when the cache may have them or the trusted keys may have changed.
  let pending: { hashPart: string; claim: ClaimJson }[] = [];
  const flush = async () => {
    const batch = pending;
    pending = [];
    if (batch.length > 0)
      await submitClaims(
        endpoint,
        batch.map((b) => b.claim),
      );
    spool.markBackfilled(
      cache,
      log,
      batch.map((b) => b.hashPart),
    );
    progress.submitted += batch.length;
    options.onProgress?.(progress);
  };
  let next = 0;
  let submitting = Promise.resolve();
  const worker = async () => {
    while (next < todo.length) {
      const hashPart = todo[next++] as string;
      try {
        const bytes = await fetchCacheFile(cache, `${hashPart}.narinfo`, maxNarInfo);
        if (bytes === undefined) {
          progress.missing++;
          continue;
        }
        const claim = narinfoClaim(bytes, hashPart, storeDir, options);
        if (typeof claim === 'string') {
          progress.untrusted++;
          if (progress.refusals.length < 10) progress.refusals.push(`${hashPart}: ${claim}`);
          continue;
        }
        pending.push({ hashPart, claim });
      } catch (e) {
        progress.failed++;
        if (progress.errors.length < 10) {
          progress.errors.push(`${hashPart}: ${e instanceof Error ? e.message : String(e)}`);
        }
      }
      if (pending.length >= batchSize) {
        submitting = submitting.then(flush);
        await submitting;
      }
    }
  };
  await Promise.all(Array.from({ length: options.jobs ?? 16 }, worker));
  submitting = submitting.then(flush);
  await submitting;
  return progress;
}
