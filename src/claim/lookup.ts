/**
 * The log's lookup wire format, in one place for the log that writes it and the clients that
 * read it: `GET /lookup/<hash part>` answers `{hashPart, treeSize, checkpoint, entries}` and
 * `POST /lookup` with `{"hashParts": […]}` answers `{treeSize, checkpoint, paths}`, each entry
 * `{index, claim, entry, proof?}` with a C2SP tlog-proof against `checkpoint`.
 */
import { ClaimError } from './errors.js';
import { type ClaimJson, MAX_ENTRY_SIZE } from './claim.js';

/**
 * The lookup key of a log's identity key statements (`GET /lookup/accord-keys`, docs/log.md):
 * no store path hash part (32 nix32 characters) can be it.
 */
export const STATEMENTS_LOOKUP_KEY = 'accord-keys';
/** Most store paths one `POST /lookup` may ask about. */
export const MAX_LOOKUP_PATHS = 1000;
/** Most entries a lookup answer may list for one path. */
export const MAX_LOOKUP_ENTRIES = 10_000;
/** Largest `GET /lookup/<hash part>` answer a client reads. */
export const MAX_LOOKUP_BYTES = 4 << 20;
/** Largest `POST /lookup` answer a client reads (it proves up to {@link MAX_LOOKUP_PATHS}). */
export const MAX_BATCH_LOOKUP_BYTES = 64 << 20;
/** Largest `POST /lookup` request body. */
export const MAX_LOOKUP_REQUEST_BYTES = 64 << 10;

/** One entry about a path, as the log sends it. */
export interface LookupEntry {
  readonly index: number;
  /** The claim as JSON, for people reading the answer (clients parse `entry`). */
  readonly claim?: ClaimJson;
  /** The entry text (hash it as a leaf to check the proof). */
  readonly entry: string;
  /** A C2SP tlog-proof@v1 against the checkpoint; absent while not yet sequenced. */
  readonly proof?: string;
}

/** A `GET /lookup/<hash part>` answer. */
export interface LookupAnswer {
  readonly hashPart: string;
  readonly treeSize: number;
  /** The signed checkpoint the proofs are against; null before the first one. */
  readonly checkpoint: string | null;
  readonly entries: readonly LookupEntry[];
}

/** A `POST /lookup` answer: every path asked, each with its entries. */
export interface BatchLookupAnswer {
  readonly treeSize: number;
  readonly checkpoint: string | null;
  readonly paths: Readonly<Record<string, readonly LookupEntry[]>>;
}

/** Formats a `GET /lookup` answer. */
export function formatLookup(answer: LookupAnswer): string {
  return JSON.stringify(answer);
}

/** Formats a `POST /lookup` answer. */
export function formatBatchLookup(answer: BatchLookupAnswer): string {
  return JSON.stringify(answer);
}

function bad(why: string): ClaimError {
  return new ClaimError('malformed', `lookup answer ${why}`);
}

function parseJson(bytes: Uint8Array): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length).toString('utf8'));
  } catch {
    throw bad('is not JSON');
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw bad('is not an object');
  return value as Record<string, unknown>;
}

function parseCheckpointField(o: Record<string, unknown>): string {
  if (o.checkpoint === null) throw bad('has no checkpoint: the log has published none yet');
  if (typeof o.checkpoint !== 'string') throw bad('lacks a checkpoint');
  return o.checkpoint;
}

/** One path's entries (attacker-controlled): only the fields clients use, type-checked. */
function parseEntries(raw: unknown, hashPart: string): LookupEntry[] {
  if (!Array.isArray(raw)) throw bad(`lacks the entries of ${hashPart}`);
  if (raw.length > MAX_LOOKUP_ENTRIES)
    throw bad(`lists more than ${MAX_LOOKUP_ENTRIES} entries for ${hashPart}`);
  return raw.map((item: unknown, i) => {
    const e = (typeof item === 'object' && item !== null ? item : {}) as Record<string, unknown>;
    if (!Number.isSafeInteger(e.index) || (e.index as number) < 0)
      throw bad(`entry ${i} of ${hashPart} has no valid index`);
    if (typeof e.entry !== 'string' || e.entry.length > MAX_ENTRY_SIZE)
      throw bad(`entry ${i} of ${hashPart} has no valid entry text`);
    if (e.proof !== undefined && typeof e.proof !== 'string')
      throw bad(`entry ${i} of ${hashPart} has a proof that is not text`);
    return {
      index: e.index as number,
      entry: e.entry,
      ...(e.proof === undefined ? {} : { proof: e.proof }),
    };
  });
}

/**
 * Reads a `GET /lookup/<hashPart>` answer (attacker-controlled; the caller capped its size at
 * {@link MAX_LOOKUP_BYTES}): a checkpoint and the path's entries, nothing verified.
 */
export function parseLookup(
  bytes: Uint8Array,
  hashPart: string,
): { readonly checkpoint: string; readonly entries: readonly LookupEntry[] } {
  const o = parseJson(bytes);
  return { checkpoint: parseCheckpointField(o), entries: parseEntries(o.entries, hashPart) };
}

/**
 * Reads a `POST /lookup` answer (capped at {@link MAX_BATCH_LOOKUP_BYTES}): every path asked
 * must be there. Nothing is verified.
 */
export function parseBatchLookup(
  bytes: Uint8Array,
  hashParts: readonly string[],
): { readonly checkpoint: string; readonly paths: ReadonlyMap<string, readonly LookupEntry[]> } {
  const o = parseJson(bytes);
  const checkpoint = parseCheckpointField(o);
  if (typeof o.paths !== 'object' || o.paths === null || Array.isArray(o.paths))
    throw bad('lacks paths');
  const all = o.paths as Record<string, unknown>;
  const paths = new Map<string, LookupEntry[]>();
  for (const h of hashParts) {
    if (!Object.hasOwn(all, h)) throw bad(`lacks ${h}`);
    paths.set(h, parseEntries(all[h], h));
  }
  return { checkpoint, paths };
}
