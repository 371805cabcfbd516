/**
 * A rebuilder's record of what each work item came to, beside the spool (SQLite, synchronous =
 * FULL). What was built is known from the spool itself — an item's claims are stored there
 * with its key in one transaction ({@link Spool.addOnce}) — so a crash between a build and this
 * record never builds or submits anything twice; this adds the outcome (built, agreed or not)
 * and the items that produced no claim: failed builds and paths without a derivation. A failed
 * build's outputs are kept, with the attempt's time, until a monitor took the report of them
 * (`--report`): a run killed before it reported reports them the next time.
 */
import { type RebuildFailure, shortReason } from '../demand/index.js';
import { type SqliteDatabase, openSqlite } from '../db/index.js';
import { HASH_PART_LENGTH } from '../nix/index.js';

const SCHEMA = `
CREATE TABLE IF NOT EXISTS outcomes (
  key TEXT PRIMARY KEY,
  status TEXT NOT NULL,
  detail TEXT NOT NULL,
  at INTEGER NOT NULL
) WITHOUT ROWID;
-- one row per output of a failed attempt; reported: when a monitor took it (0: not yet)
CREATE TABLE IF NOT EXISTS failures (
  hash_part TEXT NOT NULL,
  attempt INTEGER NOT NULL,
  name TEXT NOT NULL,
  reason TEXT NOT NULL,
  reported INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (hash_part, attempt)
) WITHOUT ROWID;
`;

/** What came of one work item (`started`: Nix is building it; the detail says how). */
export type ItemStatus = 'started' | 'built' | 'differs' | 'failed' | 'no-derivation';

export interface ItemOutcome {
  readonly status: ItemStatus;
  /** A failure's reason; for a build, what it was compared with. */
  readonly detail: string;
  readonly at: number;
}

export class RebuildState {
  private readonly db: SqliteDatabase;

  constructor(path: string) {
    this.db = openSqlite(path);
    this.db.exec(SCHEMA);
  }

  record(key: string, status: ItemStatus, detail: string): void {
    this.db
      .prepare('INSERT OR REPLACE INTO outcomes (key, status, detail, at) VALUES (?, ?, ?, ?)')
      .run(key, status, detail, Date.now());
  }

  /** Records that Nix is building each item, and how, in one transaction. */
  recordStarted(items: readonly (readonly [key: string, mode: string])[]): void {
    this.db.transaction(() => {
      for (const [key, mode] of items) this.record(key, 'started', mode);
    })();
  }

  /**
   * Records a failed build of `outputs` (store paths) with its reason, and the failure of each
   * output to report, in one transaction; the attempt is the time now.
   */
  recordFailure(key: string, reason: string, outputs: readonly string[]): void {
    const at = Date.now();
    const short = shortReason(reason);
    this.db.transaction(() => {
      this.record(key, 'failed', reason);
      for (const output of outputs) {
        const base = output.slice(output.lastIndexOf('/') + 1);
        this.db
          .prepare(
            'INSERT OR IGNORE INTO failures (hash_part, attempt, name, reason) VALUES (?, ?, ?, ?)',
          )
          .run(base.slice(0, HASH_PART_LENGTH), at, base.slice(HASH_PART_LENGTH + 1), short);
      }
    })();
  }

  /** Failures no monitor has taken yet, at most `limit`, in a report's order. */
  unreported(limit: number): RebuildFailure[] {
    return this.db
      .prepare<[number], { hashPart: string; attempt: number; name: string; reason: string }>(
        `SELECT hash_part AS hashPart, attempt, name, reason FROM failures WHERE reported = 0
         ORDER BY hash_part, attempt LIMIT ?`,
      )
      .all(limit);
  }

  /** How many failures no monitor has taken yet. */
  unreportedCount(): number {
    return (
      this.db
        .prepare<[], { n: number }>('SELECT count(*) AS n FROM failures WHERE reported = 0')
        .get()?.n ?? 0
    );
  }

  /** The time of the last report a monitor took (0: none): every report marks failures. */
  lastReport(): number {
    return (
      this.db
        .prepare<[], { at: number }>('SELECT coalesce(max(reported), 0) AS at FROM failures')
        .get()?.at ?? 0
    );
  }

  /** Marks `failures` as taken by a monitor in the report made at `at`. */
  markReported(failures: readonly RebuildFailure[], at: number): void {
    const mark = this.db.prepare(
      'UPDATE failures SET reported = ? WHERE hash_part = ? AND attempt = ?',
    );
    this.db.transaction(() => {
      for (const f of failures) mark.run(at, f.hashPart, f.attempt);
    })();
  }

  outcome(key: string): ItemOutcome | undefined {
    return this.db
      .prepare<[string], ItemOutcome>('SELECT status, detail, at FROM outcomes WHERE key = ?')
      .get(key);
  }

  /** Forgets the failures, so that they are tried again. */
  forgetFailures(): number {
    return this.db.prepare("DELETE FROM outcomes WHERE status IN ('failed', 'no-derivation')").run()
      .changes;
  }

  close(): void {
    this.db.close();
  }
}
