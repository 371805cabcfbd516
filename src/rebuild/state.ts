/**
 * A rebuilder's record of what each work item came to, beside the spool (SQLite, synchronous =
 * FULL). What was built is known from the spool itself — an item's claims are stored there
 * with its key in one transaction ({@link Spool.addOnce}) — so a crash between a build and this
 * record never builds or submits anything twice; this adds the outcome (built, agreed or not)
 * and the items that produced no claim: failed builds and paths without a derivation.
 */
import { type SqliteDatabase, openSqlite } from '../db/index.js';

const SCHEMA = `
CREATE TABLE IF NOT EXISTS outcomes (
  key TEXT PRIMARY KEY,
  status TEXT NOT NULL,
  detail TEXT NOT NULL,
  at INTEGER NOT NULL
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
