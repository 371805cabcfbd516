/**
 * The builder's durable local spool (SQLite, synchronous = FULL: a claim stored here survives a
 * crash of the machine): claims wait here until their log acknowledges them; claims the log
 * refused for good are set aside with the reason, so they never block the ones after them; and
 * backfill progress is recorded so an interrupted backfill resumes.
 */
import type { ClaimJson } from '../claim/index.js';
import { type SqliteDatabase, openSqlite } from '../db/index.js';

const SCHEMA = `
CREATE TABLE IF NOT EXISTS spool (
  id INTEGER PRIMARY KEY,
  log TEXT NOT NULL,
  claim TEXT NOT NULL,
  added INTEGER NOT NULL,
  UNIQUE (log, claim)
);
CREATE TABLE IF NOT EXISTS refused (
  id INTEGER PRIMARY KEY,
  log TEXT NOT NULL,
  claim TEXT NOT NULL,
  reason TEXT NOT NULL,
  refused INTEGER NOT NULL,
  UNIQUE (log, claim)
);
-- work whose claims were spooled, by a key of the caller's (a rebuild of a path): spooled once
CREATE TABLE IF NOT EXISTS spooled_once (
  key TEXT PRIMARY KEY,
  log TEXT NOT NULL,
  claims TEXT NOT NULL,
  added INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS backfill (
  cache TEXT NOT NULL,
  log TEXT NOT NULL,
  hash_part TEXT NOT NULL,
  PRIMARY KEY (cache, log, hash_part)
) WITHOUT ROWID;
`;

/** A spooled claim and its row. */
export interface SpooledClaim {
  readonly id: number;
  readonly claim: ClaimJson;
}

/** A claim its log refused for good, set aside. */
export interface RefusedClaim {
  readonly claim: ClaimJson;
  /** The log's answer. */
  readonly reason: string;
  /** When it was refused (milliseconds since the epoch). */
  readonly refused: number;
}

export class Spool {
  private readonly db: SqliteDatabase;

  constructor(path: string) {
    this.db = openSqlite(path);
    this.db.exec(SCHEMA);
  }

  /** The SQLite `synchronous` setting the spool runs with (2: FULL), shown by --status. */
  get synchronous(): number {
    return this.db.pragma('synchronous', { simple: true }) as number;
  }

  /** Stores claims for `log` durably (a claim already waiting is kept once). */
  add(log: string, claims: readonly ClaimJson[]): void {
    const insert = this.db.prepare(
      'INSERT OR IGNORE INTO spool (log, claim, added) VALUES (?, ?, ?)',
    );
    const now = Date.now();
    this.db.transaction(() => {
      for (const c of claims) insert.run(log, JSON.stringify(c), now);
    })();
  }

  /**
   * Stores the claims of one piece of work, named by `key`, durably and at most once: with the
   * key's record, in one transaction. False (and nothing stored) when the key was stored before,
   * even if its claims have since been submitted — so work repeated after a crash is never
   * submitted twice.
   */
  addOnce(log: string, key: string, claims: readonly ClaimJson[]): boolean {
    return this.db.transaction(() => {
      const now = Date.now();
      const added = this.db
        .prepare('INSERT OR IGNORE INTO spooled_once (key, log, claims, added) VALUES (?, ?, ?, ?)')
        .run(key, log, JSON.stringify(claims), now).changes;
      if (added === 0) return false;
      const insert = this.db.prepare(
        'INSERT OR IGNORE INTO spool (log, claim, added) VALUES (?, ?, ?)',
      );
      for (const c of claims) insert.run(log, JSON.stringify(c), now);
      return true;
    })();
  }

  /** The claims stored under `key` by {@link addOnce}, if it was. */
  once(key: string): ClaimJson[] | undefined {
    const row = this.db
      .prepare<[string], { claims: string }>('SELECT claims FROM spooled_once WHERE key = ?')
      .get(key);
    return row === undefined ? undefined : (JSON.parse(row.claims) as ClaimJson[]);
  }

  /** Up to `limit` waiting claims for `log`, oldest first. */
  pending(log: string, limit: number): SpooledClaim[] {
    return this.db
      .prepare<[string, number], { id: number; claim: string }>(
        'SELECT id, claim FROM spool WHERE log = ? ORDER BY id LIMIT ?',
      )
      .all(log, limit)
      .map((r) => ({ id: r.id, claim: JSON.parse(r.claim) as ClaimJson }));
  }

  /** How many claims wait for `log`. */
  count(log: string): number {
    const row = this.db
      .prepare<[string], { n: number }>('SELECT count(*) AS n FROM spool WHERE log = ?')
      .get(log);
    return row?.n ?? 0;
  }

  /** Removes submitted claims. */
  remove(ids: readonly number[]): void {
    const del = this.db.prepare('DELETE FROM spool WHERE id = ?');
    this.db.transaction(() => {
      for (const id of ids) del.run(id);
    })();
  }

  /** Moves a waiting claim aside as refused for good by its log, with the log's answer. */
  refuse(id: number, reason: string): void {
    this.db.transaction(() => {
      const row = this.db
        .prepare<[number], { log: string; claim: string }>(
          'SELECT log, claim FROM spool WHERE id = ?',
        )
        .get(id);
      if (row === undefined) return;
      this.db
        .prepare('INSERT OR REPLACE INTO refused (log, claim, reason, refused) VALUES (?, ?, ?, ?)')
        .run(row.log, row.claim, reason, Date.now());
      this.db.prepare('DELETE FROM spool WHERE id = ?').run(id);
    })();
  }

  /** Claims `log` refused for good, oldest first. */
  refused(log: string): RefusedClaim[] {
    return this.db
      .prepare<[string], { claim: string; reason: string; refused: number }>(
        'SELECT claim, reason, refused FROM refused WHERE log = ? ORDER BY id',
      )
      .all(log)
      .map((r) => ({
        claim: JSON.parse(r.claim) as ClaimJson,
        reason: r.reason,
        refused: r.refused,
      }));
  }

  /**
   * Moves every claim `log` refused back into the spool (to retry them once the log's set-up
   * was fixed) or, with `forget`, deletes them; returns how many.
   */
  clearRefused(log: string, forget: boolean): number {
    return this.db.transaction(() => {
      if (!forget) {
        this.db
          .prepare(
            'INSERT OR IGNORE INTO spool (log, claim, added) SELECT log, claim, ? FROM refused WHERE log = ? ORDER BY id',
          )
          .run(Date.now(), log);
      }
      return this.db.prepare('DELETE FROM refused WHERE log = ?').run(log).changes;
    })();
  }

  /** Hash parts of `cache` already backfilled into `log` (a log identity, not a URL). */
  backfilled(cache: string, log: string): Set<string> {
    const rows = this.db
      .prepare<[string, string], { hash_part: string }>(
        'SELECT hash_part FROM backfill WHERE cache = ? AND log = ?',
      )
      .all(cache, log);
    return new Set(rows.map((r) => r.hash_part));
  }

  /** Records hash parts of `cache` as backfilled into `log`. */
  markBackfilled(cache: string, log: string, hashParts: readonly string[]): void {
    const insert = this.db.prepare(
      'INSERT OR IGNORE INTO backfill (cache, log, hash_part) VALUES (?, ?, ?)',
    );
    this.db.transaction(() => {
      for (const h of hashParts) insert.run(cache, log, h);
    })();
  }

  close(): void {
    this.db.close();
  }
}
