/**
 * The proxy's local state (SQLite): the latest verified checkpoint of each log, logs found
 * misbehaving, verified claims and caches' verified signatures (evidence that stays valid when
 * a log or cache is offline), what each
 * narinfo answer served, upstreams caught serving wrong NARs, request counts, and the demand
 * counts per period not yet reported to the monitor.
 */
import type { DemandPath } from '../demand/index.js';
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
  -- the C2SP tlog-proof that verified it (against a checkpoint of tree_size)
  proof TEXT,
  PRIMARY KEY (origin, idx)
);
CREATE INDEX IF NOT EXISTS claims_hash_part ON claims (hash_part);
-- caches' signatures verified on their narinfos: the claim each covers, as an entry text
CREATE TABLE IF NOT EXISTS signatures (
  hash_part TEXT NOT NULL,
  cache TEXT NOT NULL,
  key TEXT NOT NULL,
  entry TEXT NOT NULL,
  -- the signature itself (a Nix Sig value), when it can be shown again
  signature TEXT,
  verified_at INTEGER NOT NULL,
  PRIMARY KEY (hash_part, cache, key, entry)
) WITHOUT ROWID;
-- an identity log's key statements, verified and included in its log, by sequence
CREATE TABLE IF NOT EXISTS statements (
  origin TEXT NOT NULL,
  sequence INTEGER NOT NULL,
  note TEXT NOT NULL,
  PRIMARY KEY (origin, sequence)
) WITHOUT ROWID;
-- when an identity log's checkpoints of a size were first seen, and which keys signed them
CREATE TABLE IF NOT EXISTS checkpoint_signers (
  origin TEXT NOT NULL,
  size INTEGER NOT NULL,
  at INTEGER NOT NULL,
  signers TEXT NOT NULL,
  PRIMARY KEY (origin, size)
) WITHOUT ROWID;
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
-- narinfo requests per period (start: POSIX seconds) and path, until reported
CREATE TABLE IF NOT EXISTS demand (
  period INTEGER NOT NULL,
  seconds INTEGER NOT NULL,
  hash_part TEXT NOT NULL,
  requests INTEGER NOT NULL,
  refused INTEGER NOT NULL,
  name TEXT,
  PRIMARY KEY (period, hash_part)
) WITHOUT ROWID;
`;

/** Options of the state: demand counted per period of this length (none: not counted). */
export interface ProxyStateOptions {
  readonly demandPeriodSeconds?: number;
  /** The clock (ms since the epoch); tests move it. */
  readonly now?: () => number;
}

/** A period of demand counts, by its start (POSIX seconds) and length. */
export interface DemandPeriod {
  readonly period: number;
  readonly seconds: number;
}

/** A log's latest verified checkpoint. */
export interface StoredCheckpoint {
  readonly size: number;
  readonly root: Uint8Array;
  readonly note: string;
}

/** A verified claim as kept: its entry, index, the tree it was proved in, and the proof. */
export interface StoredClaim {
  readonly index: number;
  readonly entry: string;
  readonly treeSize: number;
  /** The tlog-proof that verified it (absent in states made before proofs were kept). */
  readonly proof?: string;
}

/** A cache's verified signature as kept: the claim it covers (an entry text), and itself. */
export interface StoredSignature {
  readonly key: string;
  readonly entry: string;
  /** The `Sig` value, for a Nix signature. */
  readonly signature?: string;
  readonly verifiedAt: number;
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
  private pendingDemand = new Map<string, { n: number; refused: number; name?: string }>();
  /** The period `pendingDemand` counts in. */
  private demandPeriod = 0;
  private readonly now: () => number;

  constructor(
    path: string,
    private readonly options: ProxyStateOptions = {},
  ) {
    this.now = options.now ?? Date.now;
    // The state is evidence that can be fetched and verified again: NORMAL durability suffices.
    this.db = openSqlite(path, { synchronous: 'NORMAL' });
    this.db.exec(SCHEMA);
    // States made before claims kept their proofs.
    const claimColumns = this.db
      .prepare<[], { name: string }>('PRAGMA table_info(claims)')
      .all()
      .map((c) => c.name);
    if (!claimColumns.includes('proof')) this.db.exec('ALTER TABLE claims ADD COLUMN proof TEXT');
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
        'INSERT OR IGNORE INTO claims (origin, idx, hash_part, entry, tree_size, proof) VALUES (?, ?, ?, ?, ?, ?)',
      ),
      storedClaims: db.prepare<
        [string],
        { origin: string; idx: number; entry: string; tree_size: number; proof: string | null }
      >(
        'SELECT origin, idx, entry, tree_size, proof FROM claims WHERE hash_part = ? ORDER BY origin, idx',
      ),
      saveSignature: db.prepare(
        `INSERT INTO signatures (hash_part, cache, key, entry, signature, verified_at)
         VALUES (?, ?, ?, ?, ?, ?)
         ON CONFLICT (hash_part, cache, key, entry) DO UPDATE SET verified_at = excluded.verified_at,
           signature = coalesce(excluded.signature, signature)
         WHERE excluded.verified_at > signatures.verified_at`,
      ),
      storedSignatures: db.prepare<
        [string, string, number],
        { key: string; entry: string; signature: string | null; verified_at: number }
      >(
        `SELECT key, entry, signature, verified_at FROM signatures
         WHERE hash_part = ? AND cache = ? AND verified_at >= ? ORDER BY key, entry`,
      ),
      saveStatement: db.prepare(
        'INSERT OR REPLACE INTO statements (origin, sequence, note) VALUES (?, ?, ?)',
      ),
      statements: db
        .prepare<[string], string>('SELECT note FROM statements WHERE origin = ? ORDER BY sequence')
        .pluck(),
      saveSigners: db.prepare(
        'INSERT OR IGNORE INTO checkpoint_signers (origin, size, at, signers) VALUES (?, ?, ?, ?)',
      ),
      lastSigners: db.prepare<[string], { size: number; at: number; signers: string }>(
        'SELECT size, at, signers FROM checkpoint_signers WHERE origin = ? ORDER BY size DESC LIMIT 1',
      ),
      signersOf: db.prepare<[string, number], { size: number; at: number; signers: string }>(
        'SELECT size, at, signers FROM checkpoint_signers WHERE origin = ? AND size > ? ORDER BY size LIMIT 1',
      ),
      sizeSeenBefore: db
        .prepare<[string, number], number | null>(
          'SELECT max(size) FROM checkpoint_signers WHERE origin = ? AND at < ?',
        )
        .pluck(),
      signersSince: db.prepare<[string, number], { size: number; at: number; signers: string }>(
        'SELECT size, at, signers FROM checkpoint_signers WHERE origin = ? AND at >= ? ORDER BY size',
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
      demand: db.prepare(
        `INSERT INTO demand (period, seconds, hash_part, requests, refused, name) VALUES (?, ?, ?, ?, ?, ?)
         ON CONFLICT (period, hash_part) DO UPDATE SET requests = requests + excluded.requests,
           refused = refused + excluded.refused, name = coalesce(excluded.name, name)`,
      ),
      demandPeriods: db.prepare<[number], DemandPeriod>(
        'SELECT DISTINCT period, seconds FROM demand WHERE period + seconds <= ? ORDER BY period',
      ),
      demandPaths: db.prepare<
        [number, number, number],
        { hash_part: string; requests: number; refused: number; name: string | null }
      >(
        `SELECT hash_part, requests, refused, name FROM demand
         WHERE period = ? AND requests >= ? ORDER BY requests DESC, hash_part LIMIT ?`,
      ),
      demandReportable: db
        .prepare<[number, number], number>(
          'SELECT count(*) FROM demand WHERE period = ? AND requests >= ?',
        )
        .pluck(),
      forgetDemand: db.prepare('DELETE FROM demand WHERE period = ?'),
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

  /** Stores verified claims (entry texts, and the proofs that verified them) for a path. */
  saveClaims(origin: string, hashPart: string, claims: readonly StoredClaim[]): void {
    const save = () => {
      for (const c of claims)
        this.q.saveClaim.run(origin, c.index, hashPart, c.entry, c.treeSize, c.proof ?? null);
    };
    if (claims.length > 1) this.transaction(save);
    else save();
  }

  /** Claims about a path verified earlier, by log. */
  storedClaims(hashPart: string): (StoredClaim & { origin: string })[] {
    return this.q.storedClaims.all(hashPart).map((r) => ({
      origin: r.origin,
      index: r.idx,
      entry: r.entry,
      treeSize: r.tree_size,
      ...(r.proof === null ? {} : { proof: r.proof }),
    }));
  }

  /** Stores a cache's verified signature on a narinfo: the claim it covers, as an entry text. */
  saveSignature(hashPart: string, cache: string, vote: StoredSignature): void {
    const { key, entry, signature, verifiedAt } = vote;
    this.q.saveSignature.run(hashPart, cache, key, entry, signature ?? null, verifiedAt);
  }

  /** A cache's signatures on a path's narinfos verified at `since` or later. */
  storedSignatures(hashPart: string, cache: string, since: number): StoredSignature[] {
    return this.q.storedSignatures.all(hashPart, cache, since).map((r) => ({
      key: r.key,
      entry: r.entry,
      ...(r.signature === null ? {} : { signature: r.signature }),
      verifiedAt: r.verified_at,
    }));
  }

  /** Keeps an identity log's statement notes (the chain as verified), from sequence `from`. */
  saveStatements(origin: string, notes: readonly string[], from = 0): void {
    this.transaction(() => {
      notes.forEach((note, i) => this.q.saveStatement.run(origin, from + i, note));
    });
  }

  statements(origin: string): string[] {
    return this.q.statements.all(origin);
  }

  /**
   * Records that a checkpoint of `size` signed by `signers` (verifier key texts) was seen at
   * `at` (POSIX seconds): kept when the tree grew and the signers changed or a minute passed, so
   * the time found for an entry is never earlier than the checkpoint that first held it.
   */
  recordSigners(origin: string, size: number, at: number, signers: readonly string[]): void {
    const text = [...signers].sort().join(' ');
    const last = this.q.lastSigners.get(origin);
    if (last !== undefined && (size <= last.size || (last.signers === text && at - last.at < 60)))
      return;
    this.q.saveSigners.run(origin, size, at, text);
  }

  /** The first recorded checkpoint holding entry `index`: when it was seen, who signed it. */
  signersOf(origin: string, index: number): { at: number; signers: string[] } | undefined {
    const row = this.q.signersOf.get(origin, index);
    return row === undefined ? undefined : { at: row.at, signers: row.signers.split(' ') };
  }

  /** The largest tree the proxy saw of the log before `at` (0 when none). */
  sizeSeenBefore(origin: string, at: number): number {
    return this.q.sizeSeenBefore.get(origin, at) ?? 0;
  }

  /** The recorded checkpoints of the log seen at `at` or later, by size. */
  signersSince(origin: string, at: number): { size: number; at: number; signers: string[] }[] {
    return this.q.signersSince
      .all(origin, at)
      .map((r) => ({ size: r.size, at: r.at, signers: r.signers.split(' ') }));
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

  /**
   * Counts a narinfo request (written in batches by {@link flushCounts}); with demand counted,
   * also in the current period, as refused unless `verdict` is `trusted`, with the path's name
   * when known.
   */
  countRequest(hashPart: string, verdict: string, name?: string): void {
    const at = this.now();
    const entry = this.pendingCounts.get(hashPart);
    if (entry === undefined) this.pendingCounts.set(hashPart, { n: 1, verdict, at });
    else {
      entry.n++;
      entry.verdict = verdict;
      entry.at = at;
    }
    const seconds = this.options.demandPeriodSeconds;
    if (seconds === undefined) return;
    const period = Math.floor(at / 1000 / seconds) * seconds;
    if (period !== this.demandPeriod) {
      this.flushCounts();
      this.demandPeriod = period;
    }
    const refused = verdict === 'trusted' ? 0 : 1;
    const counted = this.pendingDemand.get(hashPart);
    if (counted === undefined)
      this.pendingDemand.set(hashPart, { n: 1, refused, ...(name === undefined ? {} : { name }) });
    else {
      counted.n++;
      counted.refused += refused;
      if (name !== undefined) counted.name = name;
    }
  }

  flushCounts(): void {
    if (this.pendingCounts.size === 0 && this.pendingDemand.size === 0) return;
    const pending = this.pendingCounts;
    const demand = this.pendingDemand;
    this.pendingCounts = new Map();
    this.pendingDemand = new Map();
    const seconds = this.options.demandPeriodSeconds ?? 0;
    this.db.transaction(() => {
      for (const [h, c] of pending) this.q.count.run(h, c.n, c.at, c.at, c.verdict);
      for (const [h, c] of demand)
        this.q.demand.run(this.demandPeriod, seconds, h, c.n, c.refused, c.name ?? null);
    })();
  }

  /** The periods with demand counts that ended by `nowSeconds`, oldest first. */
  endedDemandPeriods(nowSeconds: number): DemandPeriod[] {
    this.flushCounts();
    return this.q.demandPeriods.all(nowSeconds);
  }

  /**
   * A period's paths requested at least `minRequests` times, most requested first, at most
   * `maxPaths`; and how many more there were.
   */
  demandPaths(
    period: number,
    minRequests: number,
    maxPaths: number,
  ): { paths: DemandPath[]; omitted: number } {
    const paths = this.q.demandPaths.all(period, minRequests, maxPaths).map((r): DemandPath => ({
      hashPart: r.hash_part,
      requests: r.requests,
      refused: r.refused,
      ...(r.name === null ? {} : { name: r.name }),
    }));
    const all = this.q.demandReportable.get(period, minRequests) ?? 0;
    return { paths, omitted: all - paths.length };
  }

  /** Forgets a period's demand counts (reported, refused for good, or too old). */
  forgetDemand(period: number): void {
    this.q.forgetDemand.run(period);
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
