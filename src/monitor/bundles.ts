/**
 * Entry bundles as the monitor takes them in: fetched in order, several at a time, and read —
 * each entry's leaf hash, and its claim or why it is not one — on a worker thread when there
 * are many, so that the main thread only hashes the tree and writes the index.
 */
import { Worker } from 'node:worker_threads';
import { gunzipSync } from 'node:zlib';
import { parseEntry } from '../claim/index.js';
import { STATEMENT_NOTE_PREFIX, parseStatementNote } from '../identity/index.js';
import { sha256Spans } from '../crypto/index.js';
import { FetchError, fetchEncoded } from '../server/index.js';
import { TILE_WIDTH, entryBundlePath, hashLeavesAt, parseEntryBundle } from '../tlog/index.js';

/** Largest entry bundle: 256 entries of at most 65,535 bytes each, with their lengths. */
const MAX_BUNDLE_BYTES = TILE_WIDTH * (2 + 0xffff);
/**
 * Bytes of bundles the worker reads ahead of the main thread: enough to keep it busy while the
 * main thread stores a batch (about 250 typical bundles). Beyond that, a log with huge entries
 * makes the worker hold at most `concurrency + 1` bundles more.
 */
const READ_AHEAD_BYTES = 16 * 1024 * 1024;
/** From this many bundles on, a job runs on a worker thread (fewer are not worth its start). */
const WORKER_BUNDLES = 16;
/** Invalid entries of a bundle whose reason is kept, and the length a reason is cut to. */
const MAX_REASONS = 20;
const MAX_REASON_LENGTH = 200;

/**
 * One entry bundle, read from position `skip` on (the entries before it were verified earlier):
 * the leaf hashes of those entries, the claims of the valid ones, and the invalid ones.
 */
export interface ReadBundle {
  readonly index: number;
  readonly skip: number;
  /** The whole bundle as the log served it, gzip-encoded when `gzip` (the monitor keeps it so). */
  readonly data: Uint8Array;
  readonly gzip: boolean;
  /** The leaf hash of each entry from `skip` on, 32 bytes each. */
  readonly leaves: Uint8Array;
  /** Positions in the bundle of the entries that are valid claims. */
  readonly positions: Uint16Array;
  /** Their store paths' hash parts. */
  readonly hashParts: readonly string[];
  /** Their answer digests ({@link answerDigest}), 32 bytes each. */
  readonly answers: Uint8Array;
  /** Positions in the bundle of the entries that are identity key statements (not claims). */
  readonly statements: Uint16Array;
  /** How many entries are neither claims nor statements; the first few with why (cut short). */
  readonly invalidCount: number;
  readonly invalid: readonly { readonly position: number; readonly reason: string }[];
}

/** The entries `from…size−1` of the log at `url`, whose tree has `size` entries. */
export interface BundleJob {
  readonly url: string;
  readonly from: number;
  readonly size: number;
  readonly storeDir: string;
  readonly timeoutMs: number;
  /** Bundles fetched at once. */
  readonly concurrency: number;
  /** Ask caches on the way for fresh copies (after a copy proved wrong). */
  readonly fresh?: boolean;
  /** Only the bundles holding entries below this index (default: `size`). */
  readonly until?: number;
}

const NO_PREFIX = new Uint8Array(0);
const NEWLINE = 0x0a;
const DERIVER = Buffer.from('deriver ');
const STATEMENT = Buffer.from(STATEMENT_NOTE_PREFIX);

/**
 * SHA-256 of what a canonical entry says about its path's contents — its nar-hash, nar-size
 * and reference lines, not the deriver (which may differ between builders): equal digests are
 * equal answers.
 */
export function answerDigest(entry: Uint8Array): Uint8Array {
  return sha256Spans(NO_PREFIX, entry, new Uint32Array(answerSpan(entry)));
}

/**
 * Where in a canonical entry the bytes {@link answerDigest} hashes are: its lines are the
 * header, store-path, nar-hash, nar-size, any references, and last the deriver if it has one.
 */
function answerSpan(entry: Uint8Array): [start: number, end: number] {
  const bytes = Buffer.from(entry.buffer, entry.byteOffset, entry.length);
  const start = bytes.indexOf(NEWLINE, bytes.indexOf(NEWLINE) + 1) + 1;
  const last = bytes.lastIndexOf(NEWLINE, bytes.length - 2) + 1;
  const deriver = bytes.compare(DERIVER, 0, DERIVER.length, last, last + DERIVER.length) === 0;
  return [start, deriver ? last : bytes.length];
}

/** A bundle's bytes from its encoding (gzip when `gzip`); throws when they are not valid gzip. */
export function decodeBundle(data: Uint8Array, gzip: boolean): Uint8Array {
  return gzip ? gunzipSync(data, { maxOutputLength: MAX_BUNDLE_BYTES }) : data;
}

/**
 * Reads bundle `index` (`width` entries, not encoded) from position `skip` on. Throws when the
 * bundle is malformed.
 */
export function readBundle(
  index: number,
  data: Uint8Array,
  width: number,
  storeDir: string,
  skip = 0,
): ReadBundle {
  const entries = parseEntryBundle(data, width);
  // The entries' spans in `data`, for leaf hashes and answer digests each made in one call.
  const leafSpans = new Uint32Array(2 * (entries.length - skip));
  const answerSpans = new Uint32Array(2 * (entries.length - skip));
  const positions: number[] = [];
  const hashParts: string[] = [];
  const statements: number[] = [];
  const invalid: { position: number; reason: string }[] = [];
  let invalidCount = 0;
  for (let position = skip; position < entries.length; position++) {
    const entry = entries[position] as Uint8Array;
    const offset = entry.byteOffset - data.byteOffset;
    leafSpans[2 * (position - skip)] = offset;
    leafSpans[2 * (position - skip) + 1] = offset + entry.length;
    try {
      // A key statement (docs/identity.md): well formed here; whether its root signed it is
      // for a monitor that knows the root to say.
      if (
        entry.length >= STATEMENT.length &&
        STATEMENT.equals(entry.subarray(0, STATEMENT.length))
      ) {
        parseStatementNote(entry);
        statements.push(position);
        continue;
      }
      const { hashPart } = parseEntry(entry, storeDir).storePath;
      const [start, end] = answerSpan(entry);
      answerSpans[2 * positions.length] = offset + start;
      answerSpans[2 * positions.length + 1] = offset + end;
      positions.push(position);
      hashParts.push(hashPart);
    } catch (error) {
      // Reasons quote the entry: a hostile log could make them far larger than its bundles.
      if (invalidCount++ < MAX_REASONS) {
        const reason = (error as Error).message;
        invalid.push({
          position,
          reason:
            reason.length > MAX_REASON_LENGTH ? `${reason.slice(0, MAX_REASON_LENGTH)}…` : reason,
        });
      }
    }
  }
  const leaves = hashLeavesAt(data, leafSpans);
  const answers = sha256Spans(NO_PREFIX, data, answerSpans.subarray(0, 2 * positions.length));
  return {
    index,
    skip,
    data,
    gzip: false,
    leaves,
    positions: Uint16Array.from(positions),
    hashParts,
    answers,
    statements: Uint16Array.from(statements),
    invalidCount,
    invalid,
  };
}

/** Runs `fetchOne(0…count−1)` with up to `concurrency` in flight, yielding results in order. */
async function* inOrder<T>(
  count: number,
  concurrency: number,
  fetchOne: (i: number) => Promise<T>,
): AsyncGenerator<T> {
  const pending: Promise<T>[] = [];
  let next = 0;
  const start = () => {
    const p = fetchOne(next++);
    p.catch(() => undefined); // awaited below, in order; avoid an unhandled-rejection crash
    pending.push(p);
  };
  while (next < count && pending.length < concurrency) start();
  while (pending.length > 0) {
    const value = await (pending.shift() as Promise<T>);
    if (next < count) start();
    yield value;
  }
}

/** The bundles a job reads: `first…end−1`. */
function bundleRange(job: BundleJob): { first: number; end: number } {
  const until = job.until ?? job.size;
  return { first: Math.floor(job.from / TILE_WIDTH), end: Math.ceil(until / TILE_WIDTH) };
}

/** Fetches and reads a job's bundles in this thread, in order. */
export function fetchBundles(job: BundleJob): AsyncGenerator<ReadBundle> {
  if (!Number.isSafeInteger(job.concurrency) || job.concurrency < 1)
    throw new Error(`bug: concurrency ${job.concurrency}`);
  const { first, end } = bundleRange(job);
  return inOrder(end - first, job.concurrency, async (i) => {
    const index = first + i;
    const width = Math.min(TILE_WIDTH, job.size - index * TILE_WIDTH);
    const url = `${job.url}/${entryBundlePath({ index, width })}`;
    const { bytes, gzip } = await fetchEncoded(url, job.timeoutMs, MAX_BUNDLE_BYTES, {
      fresh: job.fresh === true,
    });
    let data;
    try {
      data = decodeBundle(bytes, gzip);
    } catch (error) {
      throw new FetchError(`${url}: the gzip body does not decode (${(error as Error).message})`);
    }
    const skip = Math.max(0, job.from - index * TILE_WIDTH);
    // The encoding is kept only when it is smaller: a log could pad it (gunzip skips trailing
    // zeros) to make the monitor store far more than the entries.
    const encoded = gzip && bytes.length < data.length;
    const read = readBundle(index, data, width, job.storeDir, skip);
    return encoded ? { ...read, data: bytes, gzip } : read;
  });
}

/**
 * Fetches and reads a job's bundles in order: on a worker thread when there are many
 * ({@link bundlesOnWorker}), else in this thread.
 */
export function readBundles(job: BundleJob): AsyncGenerator<ReadBundle> {
  const { first, end } = bundleRange(job);
  return end - first >= WORKER_BUNDLES ? bundlesOnWorker(job) : fetchBundles(job);
}

/** What the worker sends: a bundle, or the error that ended its job. */
export type WorkerMessage =
  | { readonly bundle: ReadBundle }
  | {
      readonly error: {
        readonly message: string;
        readonly fetch: boolean;
        readonly status?: number;
      };
    };

// Under the test runner this module is TypeScript source; the worker then runs from the build
// that `npm test` makes first.
const WORKER = import.meta.url.endsWith('.ts')
  ? new URL('../../dist/src/monitor/bundle-worker.js', import.meta.url)
  : new URL('./bundle-worker.js', import.meta.url);

/**
 * Fetches and reads a job's bundles on a worker thread, yielding them in order; it reads
 * `readAhead` bytes of bundles ahead of the consumer. Fetch failures are `FetchError`s, as in
 * this thread. Ending the iteration early stops the worker.
 */
export async function* bundlesOnWorker(
  job: BundleJob,
  readAhead = READ_AHEAD_BYTES,
): AsyncGenerator<ReadBundle> {
  const { first, end } = bundleRange(job);
  const worker = new Worker(WORKER, { workerData: { job, credit: readAhead } });
  const queue: WorkerMessage[] = [];
  /** Why no more messages will come, once that is so. */
  let ended: Error | undefined;
  let wake: (() => void) | undefined;
  const notify = () => {
    wake?.();
    wake = undefined;
  };
  worker.on('message', (m: WorkerMessage) => {
    queue.push(m);
    notify();
  });
  worker.on('error', (error) => {
    ended = error;
    notify();
  });
  worker.on('messageerror', (error) => {
    ended = error;
    notify();
  });
  worker.on('exit', () => {
    ended ??= new Error('bug: bundle worker stopped early');
    notify();
  });
  try {
    for (let received = first; received < end; received++) {
      while (queue.length === 0 && ended === undefined) {
        await new Promise<void>((resolve) => (wake = resolve));
      }
      const message = queue.shift();
      if (message === undefined) throw ended ?? new Error('bug: no message');
      if ('error' in message) {
        const { error } = message;
        throw error.fetch ? new FetchError(error.message, error.status) : new Error(error.message);
      }
      worker.postMessage(message.bundle.data.length); // room for as many bytes
      yield message.bundle;
    }
  } finally {
    await worker.terminate();
  }
}
