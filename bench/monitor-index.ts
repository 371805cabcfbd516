/**
 * The monitor's claim index alone, two ways: the merge index (src/monitor/claim-index.ts, with
 * 48-bit keyed path hashes) against a plain indexed table (one row per claim, a B-tree index on
 * the hash part). Each gets N claims of random paths in transactions of 65,536 (as an ingest
 * writes them), in its own SQLite file opened as the monitor opens its state; then lookups of
 * paths it holds. Entry bundles and tiles, which an ingest writes in the same transactions, are
 * left out: this compares the indexes, not the monitor.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sha256Spans } from '../src/crypto/index.js';
import { type SqliteDatabase, openSqlite } from '../src/db/index.js';
import { ClaimIndex } from '../src/monitor/claim-index.js';
import { encodeNix32 } from '../src/nix/index.js';
import { type Row, formatRate } from './harness.js';
import { percentile } from './log.js';

const BATCH = 65_536;
const SAMPLE = 2000;

interface Claim {
  readonly hashPart: string;
  readonly log: number;
  readonly index: number;
  readonly answer: Uint8Array;
}

/** One way to index claims by path. */
interface Variant {
  readonly name: string;
  add(claims: readonly Claim[]): void;
  /** The number of claims about `hashPart` found (its paths' keys may be shared). */
  lookup(hashPart: string): number;
}

function open(path: string): SqliteDatabase {
  const db = openSqlite(path, { synchronous: 'NORMAL', pageSize: 16384 });
  db.pragma('cache_size = -131072');
  return db;
}

function mergeIndex(db: SqliteDatabase): Variant {
  const index = new ClaimIndex(db);
  const secret = randomBytes(16);
  const keys = (hashParts: readonly string[]) => {
    const input = Buffer.from(hashParts.join(''), 'latin1');
    const spans = new Uint32Array(2 * hashParts.length);
    for (let i = 0; i < hashParts.length; i++) {
      spans[2 * i] = 32 * i;
      spans[2 * i + 1] = 32 * (i + 1);
    }
    const digests = sha256Spans(secret, input, spans);
    return hashParts.map((_, i) => digests.readUIntBE(32 * i, 6));
  };
  return {
    name: 'merge index (48-bit keyed path hashes, sorted runs)',
    add(claims) {
      const k = keys(claims.map((c) => c.hashPart));
      db.transaction(() => {
        index.add(claims.map((c, i) => ({ ...c, key: k[i] as number })));
      })();
    },
    lookup: (hashPart) => index.lookup(keys([hashPart])[0] as number).length,
  };
}

function plainTable(db: SqliteDatabase): Variant {
  db.exec(`CREATE TABLE claims (
    id INTEGER PRIMARY KEY,
    hash_part TEXT NOT NULL,
    log INTEGER NOT NULL,
    answer BLOB NOT NULL);
  CREATE INDEX claims_by_path ON claims (hash_part, log, answer);`);
  const insert = db.prepare('INSERT INTO claims (id, hash_part, log, answer) VALUES (?, ?, ?, ?)');
  const select = db.prepare<[string], { id: number; log: number; answer: Buffer }>(
    'SELECT id, log, answer FROM claims WHERE hash_part = ?',
  );
  return {
    name: 'plain table (one row per claim, index on hash part, log, answer)',
    add(claims) {
      db.transaction(() => {
        for (const c of claims) insert.run(c.log * 2 ** 40 + c.index, c.hashPart, c.log, c.answer);
      })();
    },
    lookup: (hashPart) => select.all(hashPart).length,
  };
}

/** The claims of entries `start…start+count−1`: a path and an answer that look random. */
function claims(start: number, count: number): Claim[] {
  const answers = randomBytes(32 * count);
  return Array.from({ length: count }, (_, k) => ({
    hashPart: hashPart(start + k),
    log: 1,
    index: start + k,
    answer: answers.subarray(32 * k, 32 * k + 32),
  }));
}

function hashPart(i: number): string {
  return encodeNix32(createHash('sha256').update(`path ${i}`).digest().subarray(0, 20));
}

async function measureVariant(
  make: (db: SqliteDatabase) => Variant,
  size: number,
): Promise<{ name: string; rate: number; p50: number; p99: number; bytes: number }> {
  const dir = mkdtempSync(join(tmpdir(), 'accord-bench-index-'));
  try {
    const db = open(join(dir, 'index.db'));
    const variant = make(db);
    let busy = 0;
    for (let start = 0; start < size; start += BATCH) {
      const batch = claims(start, Math.min(BATCH, size - start));
      const t = performance.now();
      variant.add(batch);
      busy += performance.now() - t;
      // Between batches, as an ingest waits for the next bundles: lets other work run.
      await new Promise((resolve) => setImmediate(resolve));
    }
    const times = Array.from({ length: SAMPLE }, (_, i) => {
      const h = hashPart((i * 7_919_003) % size);
      const t = performance.now();
      if (variant.lookup(h) < 1) throw new Error(`bug: ${variant.name} lost ${h}`);
      return performance.now() - t;
    });
    db.pragma('wal_checkpoint(TRUNCATE)');
    const bytes = statSync(join(dir, 'index.db')).size;
    db.close();
    return {
      name: variant.name,
      rate: size / (busy / 1000),
      p50: percentile(times, 50),
      p99: percentile(times, 99),
      bytes,
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Both indexes at each size: ingest rate and lookup times, the merge index as the baseline. */
export async function benchMonitorIndex(sizes: readonly number[]): Promise<Row[]> {
  const rows: Row[] = [];
  for (const size of sizes) {
    const merge = await measureVariant(mergeIndex, size);
    const plain = await measureVariant(plainTable, size);
    const n = size.toLocaleString('en');
    const mb = (b: number) => `${(b / 1e6).toFixed(0)} MB`;
    rows.push({
      name: `index ingest, ${n} claims: ${plain.name}`,
      value: formatRate(plain.rate, 'claims'),
      baseline: `${formatRate(merge.rate, 'claims')} (${merge.name})`,
      ratio: (plain.rate / merge.rate).toFixed(2),
      note: `target ≥ 100,000 entries/s for the whole ingest; files ${mb(plain.bytes)} / ${mb(merge.bytes)}`,
    });
    const ms = (r: { p50: number; p99: number }) =>
      `p50 ${r.p50.toFixed(3)} ms, p99 ${r.p99.toFixed(3)} ms`;
    rows.push({
      name: `index lookup of a path, ${n} claims: plain table`,
      value: ms(plain),
      baseline: `${ms(merge)} (merge index)`,
      ratio: (merge.p99 / plain.p99).toFixed(2),
      note: 'ratio: merge p99 ÷ plain p99; target p99 < 10 ms for a whole /paths query',
    });
  }
  return rows;
}
