/**
 * The proxy's local state (SQLite): the latest verified checkpoint of each log, logs found
 * misbehaving, verified claims (evidence that stays valid when a log is offline), what each
 * narinfo answer served, upstreams caught serving wrong NARs, and request counts.
 */
import { type SqliteDatabase, openSqlite } from '../db/index.js';

const SCHEMA = `
CREATE TABLE IF NOT EXISTS checkpoints (
  origin TEXT PRIMARY KEY,
  size INTEGER NOT NULL,
  root BLOB NOT NULL,
  note TEXT NOT NULL,
  updated INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS distrusted (
  origin TEXT PRIMARY KEY,
  reason TEXT NOT NULL,
  evidence TEXT NOT NULL,
  at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS claims (
  origin TEXT NOT NULL,
  idx INTEGER NOT NULL,
  hash_part TEXT NOT NULL,
  entry TEXT NOT NULL,
  tree_size INTEGER NOT NULL,
  PRIMARY KEY (origin, idx)
);
CREATE INDEX IF NOT EXISTS claims_hash_part ON claims (hash_part);
CREATE TABLE IF NOT EXISTS served (
  hash_part TEXT PRIMARY KEY,
  upstream TEXT NOT NULL,
  nar_url TEXT NOT NULL,
  compression TEXT NOT NULL,
  nar_hash TEXT NOT NULL,
  nar_size INTEGER NOT NULL,
  at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS bad_upstream (
  upstream TEXT NOT NULL,
  hash_part TEXT NOT NULL,
  reason TEXT NOT NULL,
  at INTEGER NOT NULL,
  PRIMARY KEY (upstream, hash_part)
);
CREATE TABLE IF NOT EXISTS requests (
  hash_part TEXT PRIMARY KEY,
  count INTEGER NOT NULL,
  first_at INTEGER NOT NULL,
  last_at INTEGER NOT NULL,
  last_verdict TEXT NOT NULL
);
`;

/** A log's latest verified checkpoint. */
export interface StoredCheckpoint {
  readonly size: number;
  readonly root: Uint8Array;
  readonly note: string;
}

/** Where a trusted path's NAR comes from. */
export interface ServedNar {
  readonly upstream: string;
  readonly narUrl: string;
  readonly compression: string;
  readonly narHash: string;
  readonly narSize: number;
}

/** A request count row, for the dashboard. */
export interface RequestCount {
  readonly hashPart: string;
  readonly count: number;
  readonly firstAt: number;
  readonly lastAt: number;
  readonly lastVerdict: string;
}

export class ProxyState {
  private readonly db: SqliteDatabase;
  private readonly q;
  private pendingCounts = new Map<string, { n: number; verdict: string; at: number }>();

  constructor(path: string) {
    // The state is evidence that can be fetched and verified again: NORMAL durability suffices.
    this.db = openSqlite(path, { synchronous: 'NORMAL' });
    this.db.exec(SCHEMA);
    const db = this.db;
    this.q = {
      checkpoint: db.prepare<[string], StoredCheckpoint>(
        'SELECT size, root, note FROM checkpoints WHERE origin = ?',
      ),
      saveCheckpoint: db.prepare(
        `INSERT INTO checkpoints (origin, size, root, note, updated) VALUES (?, ?, ?, ?, ?)
         ON CONFLICT (origin) DO UPDATE SET size = excluded.size, root = excluded.root,
           note = excluded.note, updated = excluded.updated
         WHERE excluded.size > checkpoints.size`,
      ),
      distrust: db.prepare(
        'INSERT OR IGNORE INTO distrusted (origin, reason, evidence, at) VALUES (?, ?, ?, ?)',
      ),
      distrusted: db.prepare<[string], { reason: string; evidence: string; at: number }>(
        'SELECT reason, evidence, at FROM distrusted WHERE origin = ?',
      ),
      saveClaim: db.prepare(
        'INSERT OR IGNORE INTO claims (origin, idx, hash_part, entry, tree_size) VALUES (?, ?, ?, ?, ?)',
      ),
      storedClaims: db.prepare<
        [string],
        { origin: string; idx: number; entry: string; tree_size: number }
      >(
        'SELECT origin, idx, entry, tree_size FROM claims WHERE hash_part = ? ORDER BY origin, idx',
      ),
      saveServed: db.prepare(
        `INSERT OR REPLACE INTO served (hash_part, upstream, nar_url, compression, nar_hash, nar_size, at)
         VALUES (?, ?, ?, ?, ?, ?, ?)`,
      ),
      served: db.prepare<
        [string],
        {
          upstream: string;
          nar_url: string;
          compression: string;
          nar_hash: string;
          nar_size: number;
        }
      >(
        'SELECT upstream, nar_url, compression, nar_hash, nar_size FROM served WHERE hash_part = ?',
      ),
      forgetServed: db.prepare('DELETE FROM served WHERE hash_part = ?'),
      markBad: db.prepare(
        'INSERT OR REPLACE INTO bad_upstream (upstream, hash_part, reason, at) VALUES (?, ?, ?, ?)',
      ),
      isBad: db.prepare<[string, string], { n: number }>(
        'SELECT 1 AS n FROM bad_upstream WHERE upstream = ? AND hash_part = ?',
      ),
      count: db.prepare(
        `INSERT INTO requests (hash_part, count, first_at, last_at, last_verdict) VALUES (?, ?, ?, ?, ?)
         ON CONFLICT (hash_part) DO UPDATE SET count = count + excluded.count,
           last_at = excluded.last_at, last_verdict = excluded.last_verdict`,
      ),
      top: db.prepare<
        [number],
        {
          hash_part: string;
          count: number;
          first_at: number;
          last_at: number;
          last_verdict: string;
        }
      >('SELECT * FROM requests ORDER BY count DESC, hash_part LIMIT ?'),
    };
  }

  checkpoint(origin: string): StoredCheckpoint | undefined {
    return this.q.checkpoint.get(origin);
  }

  /** Stores a verified checkpoint if it is larger than the stored one. */
  saveCheckpoint(origin: string, c: StoredCheckpoint): void {
    this.q.saveCheckpoint.run(origin, c.size, c.root, c.note, Date.now());
  }

  distrust(origin: string, reason: string, evidence: string): void {
    this.q.distrust.run(origin, reason, evidence, Date.now());
  }

  distrusted(origin: string): { reason: string; evidence: string; at: number } | undefined {
    return this.q.distrusted.get(origin);
  }

  /**
   * Runs `fn` in one transaction (many writes, one commit); inside a transaction already, `fn`
   * joins it.
   */
  transaction<T>(fn: () => T): T {
    return this.db.inTransaction ? fn() : this.db.transaction(fn)();
  }

  /** Stores verified claims (entry texts) for a path. */
  saveClaims(
    origin: string,
    hashPart: string,
    claims: readonly { index: number; entry: string; treeSize: number }[],
  ): void {
    const save = () => {
      for (const c of claims) this.q.saveClaim.run(origin, c.index, hashPart, c.entry, c.treeSize);
    };
    if (claims.length > 1) this.transaction(save);
    else save();
  }

  /** Claims about a path verified earlier, by log. */
  storedClaims(
    hashPart: string,
  ): { origin: string; index: number; entry: string; treeSize: number }[] {
    return this.q.storedClaims
      .all(hashPart)
      .map((r) => ({ origin: r.origin, index: r.idx, entry: r.entry, treeSize: r.tree_size }));
  }

  saveServed(hashPart: string, nar: ServedNar): void {
    this.q.saveServed.run(
      hashPart,
      nar.upstream,
      nar.narUrl,
      nar.compression,
      nar.narHash,
      nar.narSize,
      Date.now(),
    );
  }

  served(hashPart: string): ServedNar | undefined {
    const row = this.q.served.get(hashPart);
    return row === undefined
      ? undefined
      : {
          upstream: row.upstream,
          narUrl: row.nar_url,
          compression: row.compression,
          narHash: row.nar_hash,
          narSize: row.nar_size,
        };
  }

  forgetServed(hashPart: string): void {
    this.q.forgetServed.run(hashPart);
  }

  markBadUpstream(upstream: string, hashPart: string, reason: string): void {
    this.q.markBad.run(upstream, hashPart, reason, Date.now());
  }

  isBadUpstream(upstream: string, hashPart: string): boolean {
    return this.q.isBad.get(upstream, hashPart) !== undefined;
  }

  /** Counts a narinfo request (written in batches by {@link flushCounts}). */
  countRequest(hashPart: string, verdict: string): void {
    const at = Date.now();
    const entry = this.pendingCounts.get(hashPart);
    if (entry === undefined) {
      this.pendingCounts.set(hashPart, { n: 1, verdict, at });
      return;
    }
    entry.n++;
    entry.verdict = verdict;
    entry.at = at;
  }

  flushCounts(): void {
    if (this.pendingCounts.size === 0) return;
    const pending = this.pendingCounts;
    this.pendingCounts = new Map();
    this.db.transaction(() => {
      for (const [h, c] of pending) this.q.count.run(h, c.n, c.at, c.at, c.verdict);
    })();
  }

  /** The most requested paths. */
  topRequests(limit: number): RequestCount[] {
    this.flushCounts();
    return this.q.top.all(limit).map((r) => ({
      hashPart: r.hash_part,
      count: r.count,
      firstAt: r.first_at,
      lastAt: r.last_at,
      lastVerdict: r.last_verdict,
    }));
  }

  close(): void {
    this.flushCounts();
    this.db.close();
  }
}
