/**
 * Demand in the monitor: the `accord/demand/v1` reports proxies send (POST /demand), checked
 * against the trusted reporter keys and kept in the monitor's SQLite, summed per store path
 * across reporters; and the data the dashboard shows from them: the most requested paths and
 * the wanted list (paths refused, or claimed by fewer than k logs, ranked by demand).
 */
import { claimToJson, parseEntry } from '../claim/index.js';
import { DemandError, type DemandReport, openDemandReport } from '../demand/index.js';
import type { SqliteDatabase } from '../db/index.js';
import { NIX_STORE_DIR } from '../nix/index.js';
import type { NoteVerifier } from '../tlog/index.js';
import { MonitorError } from './errors.js';
import { failureCount } from './rebuild-failures.js';
import { REPORT_CLOCK_SKEW_MS, checkReplay } from './replay.js';
import type { MonitorStore } from './store.js';
import { verdict } from './verdict.js';
// The demand types are the dashboard's page models (src/web): one definition each.
import type { DemandRow, DemandModel as DemandTop, WantedRow as WantedPath } from '../web/index.js';
export type { DemandRow, DemandTop, WantedPath };

const SCHEMA = `
-- reporter: the key's name and key ID (name+hex); one row per accepted report
CREATE TABLE IF NOT EXISTS demand_reports (
  reporter TEXT NOT NULL,
  period_start INTEGER NOT NULL,
  period_seconds INTEGER NOT NULL,
  paths INTEGER NOT NULL,
  requests INTEGER NOT NULL,
  received INTEGER NOT NULL,
  PRIMARY KEY (reporter, period_start)
);
-- the sums across reporters, per store path
CREATE TABLE IF NOT EXISTS demand_paths (
  hash_part TEXT PRIMARY KEY,
  name TEXT,
  requests INTEGER NOT NULL,
  refused INTEGER NOT NULL,
  reporters INTEGER NOT NULL,
  last_period INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS demand_paths_requests ON demand_paths (requests DESC, hash_part);
CREATE INDEX IF NOT EXISTS demand_paths_refused
  ON demand_paths (refused DESC, requests DESC, hash_part);
CREATE TABLE IF NOT EXISTS demand_contributors (
  hash_part TEXT NOT NULL,
  reporter TEXT NOT NULL,
  PRIMARY KEY (hash_part, reporter)
) WITHOUT ROWID;
`;

/** A report's period may end at most this far after the monitor's clock (clock skew). */
export const DEMAND_CLOCK_SKEW_SECONDS = REPORT_CLOCK_SKEW_MS / 1000;

/** What an accepted report added. */
export interface DemandAccepted {
  readonly reporter: string;
  readonly periodStart: number;
  readonly periodSeconds: number;
  readonly paths: number;
  readonly requests: number;
}

interface PathRow {
  hash_part: string;
  name: string | null;
  requests: number;
  refused: number;
  reporters: number;
  last_period: number;
}

/** The demand tables over one monitor database. */
class DemandTables {
  private readonly q;

  constructor(readonly db: SqliteDatabase) {
    db.exec(SCHEMA);
    this.q = {
      overlap: db.prepare<[string, number, number], { n: number }>(
        `SELECT 1 AS n FROM demand_reports
         WHERE reporter = ? AND period_start < ? AND period_start + period_seconds > ? LIMIT 1`,
      ),
      report: db.prepare(
        `INSERT INTO demand_reports (reporter, period_start, period_seconds, paths, requests, received)
         VALUES (?, ?, ?, ?, ?, ?)`,
      ),
      contributor: db.prepare(
        'INSERT OR IGNORE INTO demand_contributors (hash_part, reporter) VALUES (?, ?)',
      ),
      path: db.prepare(
        `INSERT INTO demand_paths (hash_part, name, requests, refused, reporters, last_period)
         VALUES (?, ?, ?, ?, ?, ?)
         ON CONFLICT (hash_part) DO UPDATE SET
           name = coalesce(demand_paths.name, excluded.name),
           requests = demand_paths.requests + excluded.requests,
           refused = demand_paths.refused + excluded.refused,
           reporters = demand_paths.reporters + excluded.reporters,
           last_period = max(demand_paths.last_period, excluded.last_period)`,
      ),
      totals: db.prepare<[], { reporters: number; periods: number }>(
        `SELECT count(DISTINCT reporter) AS reporters, count(DISTINCT period_start) AS periods
         FROM demand_reports`,
      ),
      one: db.prepare<[string], PathRow>('SELECT * FROM demand_paths WHERE hash_part = ?'),
      top: db.prepare<[number], PathRow>(
        'SELECT * FROM demand_paths ORDER BY requests DESC, hash_part LIMIT ?',
      ),
      byDemand: db.prepare<[number, number], PathRow>(
        'SELECT * FROM demand_paths ORDER BY refused DESC, requests DESC, hash_part LIMIT ? OFFSET ?',
      ),
    };
  }

  /** Adds a verified report in one transaction, unless the replay rule refuses it. */
  add(reporter: string, r: DemandReport, now: number): DemandAccepted {
    const end = r.periodStart + r.periodSeconds;
    const requests = r.paths.reduce((n, p) => n + p.requests, 0);
    this.db.transaction(() => {
      checkReplay(
        `demand report of ${r.reporter} for ${r.periodStart}+${r.periodSeconds}s`,
        { startMs: r.periodStart * 1000, endMs: end * 1000 },
        now,
        () => this.q.overlap.get(reporter, end, r.periodStart) !== undefined,
      );
      this.q.report.run(reporter, r.periodStart, r.periodSeconds, r.paths.length, requests, now);
      for (const p of r.paths) {
        const first = this.q.contributor.run(p.hashPart, reporter).changes;
        this.q.path.run(p.hashPart, p.name ?? null, p.requests, p.refused, first, r.periodStart);
      }
    })();
    return {
      reporter: r.reporter,
      periodStart: r.periodStart,
      periodSeconds: r.periodSeconds,
      paths: r.paths.length,
      requests,
    };
  }

  totals() {
    return this.q.totals.get() as { reporters: number; periods: number };
  }

  one(hashPart: string): PathRow | undefined {
    return this.q.one.get(hashPart);
  }

  top(limit: number): PathRow[] {
    return this.q.top.all(limit);
  }

  /**
   * Every path, most refused then most requested first, read a page at a time: the caller may
   * query the database between rows (an open iteration would keep the connection busy).
   */
  *byDemand(page = 1000): Generator<PathRow> {
    for (let offset = 0; ; offset += page) {
      const rows = this.q.byDemand.all(page, offset);
      yield* rows;
      if (rows.length < page) return;
    }
  }
}

const tables = new WeakMap<MonitorStore, DemandTables>();

function demandOf(store: MonitorStore): DemandTables {
  let t = tables.get(store);
  if (t === undefined) tables.set(store, (t = new DemandTables(store.db)));
  return t;
}

function row(r: PathRow, storeDir: string): DemandRow {
  return {
    hashPart: r.hash_part,
    storePath: r.name === null ? null : `${storeDir}/${r.hash_part}-${r.name}`,
    requests: r.requests,
    refused: r.refused,
    reporters: r.reporters,
    lastPeriod: r.last_period,
  };
}

function checkLimit(n: number, what: string, max: number): void {
  if (!Number.isSafeInteger(n) || n < 1 || n > max)
    throw new Error(`bug: ${what} ${n} is not from 1 to ${max}`);
}

/**
 * Takes a signed demand report (attacker-controlled) from a proxy: it must be signed by one of
 * `reporters` (else `untrusted`), parse (`malformed`, or `too-large` over the caps), cover a
 * period that has ended, and overlap no period of the same reporter accepted before (`replay`,
 * {@link checkReplay}).
 * A refused report changes nothing; an accepted one is added in one transaction.
 */
export function acceptDemand(
  store: MonitorStore,
  body: string | Uint8Array,
  reporters: readonly NoteVerifier[],
  now = Date.now(),
): DemandAccepted {
  let opened;
  try {
    opened = openDemandReport(body, reporters);
  } catch (error) {
    if (!(error instanceof DemandError)) throw error;
    throw new MonitorError(error.code, error.message);
  }
  const { report, verifier } = opened;
  const reporter = `${verifier.name}+${verifier.keyId.toString(16).padStart(8, '0')}`;
  return demandOf(store).add(reporter, report, now);
}

/**
 * The most requested store paths across every reporter, most requests first (then by hash
 * part), with how many reporters and periods the demand comes from.
 */
export function demandTop(
  store: MonitorStore,
  options: { readonly limit: number; readonly storeDir?: string },
): DemandTop {
  checkLimit(options.limit, 'limit', 100_000);
  const t = demandOf(store);
  const storeDir = options.storeDir ?? NIX_STORE_DIR;
  return { ...t.totals(), paths: t.top(options.limit).map((r) => row(r, storeDir)) };
}

/** One store path's demand summed across reporters, or null when no reporter asked for it. */
export function pathDemand(
  store: MonitorStore,
  hashPart: string,
  options: { readonly storeDir?: string } = {},
): DemandRow | null {
  const r = demandOf(store).one(hashPart);
  return r === undefined ? null : row(r, options.storeDir ?? NIX_STORE_DIR);
}

/**
 * The wanted list: requested paths that some proxy refused, or that fewer than `k` logs agree
 * on (the majority answer's logs in the monitor's index), ranked by refusals, then requests.
 * The store path comes from the reports, else from the claims; the derivers from the claims. A
 * path whose rebuilds failed stays wanted, with the count of failed attempts rebuilders reported.
 * Reads the claims of the requested paths in that order until `limit` are found.
 */
export function wantedList(
  store: MonitorStore,
  options: { readonly k: number; readonly limit: number; readonly storeDir?: string },
): WantedPath[] {
  checkLimit(options.k, 'k', 1_000_000);
  checkLimit(options.limit, 'limit', 100_000);
  const storeDir = options.storeDir ?? NIX_STORE_DIR;
  const wanted: WantedPath[] = [];
  for (const r of demandOf(store).byDemand()) {
    const claims = store.claims(r.hash_part);
    const v = verdict(claims, storeDir);
    const agreeing = v.majority?.logs.length ?? 0;
    if (r.refused === 0 && agreeing >= options.k) continue;
    const parsed = claims.map((c) => claimToJson(parseEntry(c.entry, storeDir)));
    const derivers = [
      ...new Set(
        parsed.flatMap((c) => (c.deriver === undefined ? [] : [`${storeDir}/${c.deriver}`])),
      ),
    ].sort();
    const base = row(r, storeDir);
    wanted.push({
      ...base,
      storePath: base.storePath ?? parsed[0]?.storePath ?? null,
      derivers,
      claims: agreeing,
      failures: failureCount(store, r.hash_part),
    });
    if (wanted.length === options.limit) break;
  }
  return wanted;
}

/**
 * The wanted list as text for a rebuilder: one line per path whose store path is known,
 * `<store path>` or `<store path> <deriver>` (the first deriver), ending in a newline.
 */
export function formatWantedList(wanted: readonly WantedPath[]): string {
  return wanted
    .flatMap((w) =>
      w.storePath === null
        ? []
        : [`${w.storePath}${w.derivers[0] === undefined ? '' : ` ${w.derivers[0]}`}\n`],
    )
    .join('');
}
