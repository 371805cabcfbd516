/**
 * Rebuild failures in the monitor: the `accord/rebuild/v1` reports rebuilders send (POST
 * /rebuilds), taken only when signed by the key of a log the monitor follows — the rebuilder's
 * own log, whose claims show what it built — and kept in the monitor's SQLite, one row per
 * (path, rebuilder, attempt), so that a failure reported twice (a rebuilder that did not hear
 * the answer and sends it again in its next report) counts once.
 */
import { DemandError, type RebuildReport, openRebuildReport } from '../demand/index.js';
import type { SqliteDatabase } from '../db/index.js';
import type { NoteVerifier } from '../tlog/index.js';
import { MonitorError } from './errors.js';
import { checkReplay } from './replay.js';
import type { MonitorStore } from './store.js';

const SCHEMA = `
-- reporter: the origin of the rebuilder's log; one row per accepted report
CREATE TABLE IF NOT EXISTS rebuild_reports (
  reporter TEXT NOT NULL,
  at INTEGER NOT NULL,
  failures INTEGER NOT NULL,
  added INTEGER NOT NULL,
  received INTEGER NOT NULL,
  PRIMARY KEY (reporter, at)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS rebuild_failures (
  hash_part TEXT NOT NULL,
  reporter TEXT NOT NULL,
  attempt INTEGER NOT NULL,
  name TEXT NOT NULL,
  reason TEXT NOT NULL,
  received INTEGER NOT NULL,
  PRIMARY KEY (hash_part, reporter, attempt)
) WITHOUT ROWID;
`;

/** Failed attempts a path page lists (the newest). */
export const MAX_FAILURES_SHOWN = 20;

/** What an accepted report added. */
export interface RebuildAccepted {
  readonly reporter: string;
  readonly at: number;
  /** Failures in the report, and of those the ones not known before. */
  readonly failures: number;
  readonly added: number;
}

/** A path's failed rebuilds: how many attempts, by how many rebuilders, and the newest. */
export interface PathFailures {
  readonly attempts: number;
  readonly builders: number;
  /** The store path's name, as the reports give it. */
  readonly name: string;
  readonly recent: readonly {
    readonly builder: string;
    readonly at: number;
    readonly reason: string;
  }[];
}

interface FailureRow {
  reporter: string;
  attempt: number;
  name: string;
  reason: string;
}

class RebuildTables {
  private readonly q;

  constructor(readonly db: SqliteDatabase) {
    db.exec(SCHEMA);
    this.q = {
      reported: db.prepare<[string, number], { n: number }>(
        'SELECT 1 AS n FROM rebuild_reports WHERE reporter = ? AND at = ?',
      ),
      report: db.prepare(
        'INSERT INTO rebuild_reports (reporter, at, failures, added, received) VALUES (?, ?, ?, ?, ?)',
      ),
      failure: db.prepare(
        `INSERT OR IGNORE INTO rebuild_failures (hash_part, reporter, attempt, name, reason, received)
         VALUES (?, ?, ?, ?, ?, ?)`,
      ),
      counts: db.prepare<[string], { attempts: number; builders: number }>(
        `SELECT count(*) AS attempts, count(DISTINCT reporter) AS builders
         FROM rebuild_failures WHERE hash_part = ?`,
      ),
      recent: db.prepare<[string, number], FailureRow>(
        `SELECT reporter, attempt, name, reason FROM rebuild_failures WHERE hash_part = ?
         ORDER BY attempt DESC, reporter LIMIT ?`,
      ),
    };
  }

  add(reporter: string, r: RebuildReport, now: number): RebuildAccepted {
    let added = 0;
    this.db.transaction(() => {
      // A report is an instant: [at, at + 1 ms).
      checkReplay(
        `rebuild report of ${reporter} at ${r.at}`,
        { startMs: r.at, endMs: r.at + 1 },
        now,
        () => this.q.reported.get(reporter, r.at) !== undefined,
      );
      for (const f of r.failures)
        added += this.q.failure.run(f.hashPart, reporter, f.attempt, f.name, f.reason, now).changes;
      this.q.report.run(reporter, r.at, r.failures.length, added, now);
    })();
    return { reporter, at: r.at, failures: r.failures.length, added };
  }

  attempts(hashPart: string): number {
    return this.q.counts.get(hashPart)?.attempts ?? 0;
  }

  of(hashPart: string): PathFailures | null {
    const counts = this.q.counts.get(hashPart) ?? { attempts: 0, builders: 0 };
    if (counts.attempts === 0) return null;
    const rows = this.q.recent.all(hashPart, MAX_FAILURES_SHOWN);
    return {
      ...counts,
      name: rows[0]?.name ?? '',
      recent: rows.map((f) => ({ builder: f.reporter, at: f.attempt, reason: f.reason })),
    };
  }
}

const tables = new WeakMap<MonitorStore, RebuildTables>();

function rebuildsOf(store: MonitorStore): RebuildTables {
  let t = tables.get(store);
  if (t === undefined) tables.set(store, (t = new RebuildTables(store.db)));
  return t;
}

/**
 * Takes a signed rebuild report (attacker-controlled): it must be signed by the key of a
 * followed log, `logs` (else `untrusted`), parse (`malformed`, or `too-large` over the caps),
 * and pass the replay rule ({@link checkReplay}: not from the future, not a time of the
 * reporter reported before). A refused report changes nothing; an accepted one adds its
 * failures not known before, in one transaction.
 */
export function acceptRebuildReport(
  store: MonitorStore,
  body: string | Uint8Array,
  logs: readonly NoteVerifier[],
  now = Date.now(),
): RebuildAccepted {
  let opened;
  try {
    opened = openRebuildReport(body, logs);
  } catch (error) {
    if (!(error instanceof DemandError)) throw error;
    throw new MonitorError(error.code, error.message);
  }
  return rebuildsOf(store).add(opened.verifier.name, opened.report, now);
}

/** How many failed attempts to rebuild a path were reported. */
export function failureCount(store: MonitorStore, hashPart: string): number {
  return rebuildsOf(store).attempts(hashPart);
}

/** A path's failed rebuilds, or null when no rebuilder reported one. */
export function pathFailures(store: MonitorStore, hashPart: string): PathFailures | null {
  return rebuildsOf(store).of(hashPart);
}
