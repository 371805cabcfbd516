/**
 * Backfilling a log from an existing Nix binary cache: read each path's narinfo (in parallel),
 * optionally require a trusted signature, submit the claims in batches, and record progress so
 * an interrupted run resumes where it stopped.
 */
import { readFile, readdir } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { type ClaimJson, claimToJson } from '../claim/index.js';
import {
  NIX_STORE_DIR,
  type NixPublicKey,
  isHashPart,
  parseNarInfo,
  verifiedSigners,
} from '../nix/index.js';
import { fetchBytes } from '../server/index.js';
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
  /** Narinfos without a signature by a trusted key (when keys were given). */
  untrusted: number;
  /** Narinfos that could not be read or parsed, with the first few reasons. */
  failed: number;
  errors: string[];
}

export interface BackfillOptions {
  readonly cache: string;
  readonly endpoint: LogEndpoint;
  readonly spool: Spool;
  /** Hash parts to backfill; when absent, a file:// cache is listed. */
  readonly hashParts?: readonly string[];
  readonly trustedKeys?: readonly NixPublicKey[];
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

async function fetchNarInfo(cache: string, hashPart: string): Promise<string | undefined> {
  const base = cache.replace(/\?.*$/, '').replace(/\/+$/, '');
  if (base.startsWith('file://')) {
    try {
      return await readFile(fileURLToPath(`${base}/${hashPart}.narinfo`), 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw e;
    }
  }
  const res = await fetch(`${base}/${hashPart}.narinfo`, { signal: AbortSignal.timeout(30_000) });
  if (res.status === 404 || res.status === 403) return undefined;
  if (!res.ok) throw new Error(`HTTP ${res.status}`);
  return res.text();
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
  const storeDir = options.storeDir ?? NIX_STORE_DIR;
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
    failed: 0,
    errors: [],
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
        const text = await fetchNarInfo(cache, hashPart);
        if (text === undefined) {
          progress.missing++;
          continue;
        }
        const info = parseNarInfo(text, storeDir);
        if (
          options.trustedKeys !== undefined &&
          verifiedSigners(info, options.trustedKeys).length === 0
        ) {
          progress.untrusted++;
          continue;
        }
        pending.push({ hashPart, claim: claimToJson(info) });
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
