/**
 * The monitor's copy of every log it follows (SQLite): the entry bundles and the tiles it
 * computed from them, an index of claims by store path, the checkpoints it has seen beyond its
 * verified trees (from the logs, proxies and witnesses), and its findings.
 *
 * Layout for speed: entries are kept as the bundles they arrive in (one row per 256 entries),
 * and the index ({@link ClaimIndex}) holds one short record per claim — a 48-bit key from the
 * path's hash part, the log, the SHA-256 of its answer (NAR hash, size and references) and the
 * entry's index. Paths sharing a key are told apart by the entries themselves. A path's claims
 * are read as each log's first claim with each answer, so no log hides another's by claiming a
 * path many times. Claims beyond a log's verified size are not trusted: queries ignore them,
 * and they are dropped when the entries they came from do not match the log's tree.
 */
import { randomBytes } from 'node:crypto';
import { sha256Spans } from '../crypto/index.js';
import { canonicalStorePath } from '../claim/index.js';
import { type SqliteDatabase, openSqlite } from '../db/index.js';
import { HASH_PART_LENGTH } from '../nix/index.js';
import {
  TILE_WIDTH,
  type TileData,
  type TileEdge,
  edgeFromTiles,
  edgeTiles,
  equalBytes,
  formatEntryBundle,
  parseEntryBundle,
} from '../tlog/index.js';
import { decodeBundle } from './bundles.js';
import { ClaimIndex, type IndexRecord, MAX_ANSWERS_PER_LOG, sameAnswer } from './claim-index.js';

const SCHEMA = `
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS logs (
  id INTEGER PRIMARY KEY,
  origin TEXT NOT NULL UNIQUE,
  verified_size INTEGER NOT NULL DEFAULT 0,
  root BLOB,
  checkpoint TEXT,
  -- rows beyond verified_size may exist up to here, from an ingest not (yet) verified
  written_to INTEGER NOT NULL DEFAULT 0,
  -- when the checkpoint was verified (ms since the epoch)
  verified_at INTEGER
);
-- of the paths two or more logs claim, how many they all agree on, at a time
CREATE TABLE IF NOT EXISTS repro_history (
  at INTEGER PRIMARY KEY,
  shared INTEGER NOT NULL,
  agreeing INTEGER NOT NULL
);
-- id: log id × 2^32 + bundle index; data gzip-encoded when gzip = 1
CREATE TABLE IF NOT EXISTS bundles (
  id INTEGER PRIMARY KEY,
  data BLOB NOT NULL,
  gzip INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS tiles (
  log INTEGER NOT NULL,
  level INTEGER NOT NULL,
  idx INTEGER NOT NULL,
  data BLOB NOT NULL,
  PRIMARY KEY (log, level, idx)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS seen_checkpoints (
  origin TEXT NOT NULL,
  size INTEGER NOT NULL,
  root BLOB NOT NULL,
  note TEXT NOT NULL,
  source TEXT NOT NULL,
  at INTEGER NOT NULL,
  PRIMARY KEY (origin, size, root)
);
-- the entries of each log that are identity key statements (docs/identity.md)
CREATE TABLE IF NOT EXISTS statements (
  log INTEGER NOT NULL,
  idx INTEGER NOT NULL,
  PRIMARY KEY (log, idx)
) WITHOUT ROWID;
-- key: what the finding is about (one finding per key, updated as claims come in)
CREATE TABLE IF NOT EXISTS findings (
  id INTEGER PRIMARY KEY,
  key TEXT NOT NULL UNIQUE,
  kind TEXT NOT NULL,
  summary TEXT NOT NULL,
  evidence TEXT NOT NULL,
  at INTEGER NOT NULL,
  updated INTEGER NOT NULL DEFAULT 0
);
`;

const BUNDLE_KEY = 2 ** 32;
export { MAX_ANSWERS_PER_LOG } from './claim-index.js';
/** Beyond this many new paths, one pass over the index beats looking each one up. */
export const MANY_PATHS = 4096;

/** A log's verified state in the monitor. */
export interface FollowedLog {
  readonly origin: string;
  readonly verifiedSize: number;
  readonly root: Uint8Array;
  /** The signed checkpoint of the verified size. */
  readonly checkpoint: string;
  /** When it was verified (ms since the epoch; null in state from before this was kept). */
  readonly verifiedAt: number | null;
}

/** A finding: something that shows a log or builders misbehaving, with its evidence. */
export interface Finding {
  readonly id: number;
  readonly kind: 'fork' | 'log-equivocation' | 'disagreement' | 'bad-entries' | 'bad-statement';
  readonly summary: string;
  readonly evidence: unknown;
  /** When it was first recorded, and last changed (ms since the epoch). */
  readonly at: number;
  readonly updated: number;
}

/** Every kind of finding, in the order the monitor reports them. */
export const FINDING_KINDS: readonly Finding['kind'][] = [
  'fork',
  'log-equivocation',
  'disagreement',
  'bad-entries',
  'bad-statement',
];

/** A signed checkpoint the monitor has seen, and who showed it. */
export interface SeenCheckpoint {
  readonly size: number;
  readonly root: Uint8Array;
  readonly note: string;
  /** `log`, `proxy <address>`, `witness <name>`, … */
  readonly source: string;
}

/** What the lookups of one batch share ({@link MonitorStore.claimBatch}). */
export interface ClaimBatch {
  readonly logs: Map<number, { origin: string; size: number }>;
  readonly read: Map<string, Uint8Array[]>;
}

/** A verified claim in the index: the first of its log with its answer about its path. */
export interface IndexedClaim {
  readonly origin: string;
  readonly index: number;
  /** Equal digests are equal answers (NAR hash, NAR size and references). */
  readonly answer: string;
  readonly entry: string;
}

/** An entry bundle to store: as the log served it, gzip-encoded when `gzip`. */
export interface StoredBundle {
  readonly index: number;
  readonly data: Uint8Array;
  readonly gzip?: boolean;
}

/** A new claim for the index. */
export interface NewClaim {
  readonly hashPart: string;
  readonly index: number;
  /** SHA-256 of the answer: NAR hash, size and references ({@link answerDigest}). */
  readonly answer: Uint8Array;
}

interface FindingRow {
  id: number;
  kind: Finding['kind'];
  summary: string;
  evidence: string;
  at: number;
  updated: number;
}

function toFinding(row: FindingRow): Finding {
  return { ...row, evidence: JSON.parse(row.evidence) as unknown, updated: row.updated || row.at };
}

/** The key of the one finding of a kind about a store path. */
export function pathFindingKey(kind: Finding['kind'], hashPart: string): string {
  return `${kind} ${hashPart}`;
}

export class MonitorStore {
  readonly db: SqliteDatabase;
  private readonly q;
  private readonly index: ClaimIndex;
  private readonly ids = new Map<string, number>();
  /** The key of {@link pathKey}'s keyed hash. */
  private readonly secret: Buffer;

  constructor(path: string) {
    // NORMAL: a crash of the machine may lose the last writes, which are fetched again.
    // 16 KiB pages: a stored bundle (tens of KB) spans fewer overflow pages (see
    // docs/benchmarks.md).
    this.db = openSqlite(path, { synchronous: 'NORMAL', pageSize: 16384 });
    // Index inserts land at random places; a large cache keeps them from going to disk.
    this.db.pragma('cache_size = -131072');
    this.db.exec(SCHEMA);
    const db = this.db;
    // State from before bundles were kept gzip-encoded: all of them are plain.
    if (
      !db
        .prepare<[], { name: string }>('PRAGMA table_info(bundles)')
        .all()
        .some((c) => c.name === 'gzip')
    )
      db.exec('ALTER TABLE bundles ADD COLUMN gzip INTEGER NOT NULL DEFAULT 0');
    if (
      !db
        .prepare<[], { name: string }>('PRAGMA table_info(findings)')
        .all()
        .some((c) => c.name === 'updated')
    )
      db.exec('ALTER TABLE findings ADD COLUMN updated INTEGER NOT NULL DEFAULT 0');
    if (
      !db
        .prepare<[], { name: string }>('PRAGMA table_info(logs)')
        .all()
        .some((c) => c.name === 'verified_at')
    )
      db.exec('ALTER TABLE logs ADD COLUMN verified_at INTEGER');
    db.prepare("INSERT OR IGNORE INTO meta (name, value) VALUES ('path-key-secret', ?)").run(
      randomBytes(16),
    );
    this.secret = db
      .prepare<[], Buffer>("SELECT value FROM meta WHERE name = 'path-key-secret'")
      .pluck()
      .get() as Buffer;
    this.q = {
      addLog: db.prepare('INSERT OR IGNORE INTO logs (origin) VALUES (?)'),
      logId: db.prepare<[string], { id: number }>('SELECT id FROM logs WHERE origin = ?'),
      log: db.prepare<
        [string],
        {
          id: number;
          verified_size: number;
          root: Buffer | null;
          checkpoint: string | null;
          written_to: number;
          verified_at: number | null;
        }
      >(
        'SELECT id, verified_size, root, checkpoint, written_to, verified_at FROM logs WHERE origin = ?',
      ),
      logs: db.prepare<[], { origin: string }>(
        'SELECT origin FROM logs WHERE checkpoint IS NOT NULL ORDER BY origin',
      ),
      setVerified: db.prepare(
        'UPDATE logs SET verified_size = ?, root = ?, checkpoint = ?, written_to = ?, verified_at = ? WHERE id = ?',
      ),
      setWrittenTo: db.prepare('UPDATE logs SET written_to = max(written_to, ?) WHERE id = ?'),
      resetWrittenTo: db.prepare('UPDATE logs SET written_to = ? WHERE id = ?'),
      bundle: db.prepare('INSERT OR REPLACE INTO bundles (id, data, gzip) VALUES (?, ?, ?)'),
      getBundle: db.prepare<[number], { data: Buffer; gzip: number }>(
        'SELECT data, gzip FROM bundles WHERE id = ?',
      ),
      dropBundles: db.prepare('DELETE FROM bundles WHERE id >= ? AND id < ?'),
      statement: db.prepare('INSERT OR IGNORE INTO statements (log, idx) VALUES (?, ?)'),
      dropStatements: db.prepare('DELETE FROM statements WHERE log = ? AND idx >= ?'),
      statements: db
        .prepare<[number, number], number>(
          'SELECT idx FROM statements WHERE log = ? AND idx < ? ORDER BY idx',
        )
        .pluck(),
      tile: db.prepare('INSERT OR REPLACE INTO tiles (log, level, idx, data) VALUES (?, ?, ?, ?)'),
      getTile: db
        .prepare<[number, number, number], Buffer>(
          'SELECT data FROM tiles WHERE log = ? AND level = ? AND idx = ?',
        )
        .pluck(),
      verifiedSizes: db.prepare<[], { id: number; origin: string; verified_size: number }>(
        'SELECT id, origin, verified_size FROM logs',
      ),
      seen: db.prepare(
        'INSERT OR IGNORE INTO seen_checkpoints (origin, size, root, note, source, at) VALUES (?, ?, ?, ?, ?, ?)',
      ),
      forgetSeen: db.prepare('DELETE FROM seen_checkpoints WHERE origin = ? AND size <= ?'),
      seenFor: db.prepare<
        [string, number, number],
        { size: number; root: Buffer; note: string; source: string }
      >(
        `SELECT size, root, note, source FROM seen_checkpoints
         WHERE origin = ? AND size >= ? AND size <= ? ORDER BY size, at`,
      ),
      finding: db.prepare(
        'INSERT OR IGNORE INTO findings (key, kind, summary, evidence, at, updated) VALUES (?, ?, ?, ?, ?, ?)',
      ),
      updateFinding: db.prepare(
        'UPDATE findings SET summary = ?, evidence = ?, updated = ? WHERE key = ?',
      ),
      findingByKey: db.prepare<[string], FindingRow>(
        'SELECT id, kind, summary, evidence, at, updated FROM findings WHERE key = ?',
      ),
      changedFindings: db.prepare<[number], FindingRow>(
        'SELECT id, kind, summary, evidence, at, updated FROM findings WHERE max(at, updated) > ? ORDER BY max(at, updated), id',
      ),
      findings: db.prepare<[number], FindingRow>(
        'SELECT id, kind, summary, evidence, at, updated FROM findings WHERE id > ? ORDER BY id',
      ),
    };
    this.index = new ClaimIndex(db);
    this.migrateClaims();
    this.migrateFindingKeys();
  }

  /**
   * State from before one finding per path and kind: disagreements and equivocations were kept
   * per set of answers (and log), so one path could have several. The latest of each path and
   * kind stays, under the key {@link pathFindingKey}; the next claim about the path updates it.
   */
  private migrateFindingKeys(): void {
    const { db } = this;
    const old = db
      .prepare<[], { id: number; key: string; kind: Finding['kind']; evidence: string }>(
        `SELECT id, key, kind, evidence FROM findings
         WHERE kind IN ('disagreement', 'log-equivocation') ORDER BY id DESC`,
      )
      .all()
      .filter((f) => f.key.split(' ').length > 2);
    if (old.length === 0) return;
    const rekey = db.prepare('UPDATE findings SET key = ? WHERE id = ?');
    const drop = db.prepare('DELETE FROM findings WHERE id = ?');
    db.transaction(() => {
      for (const f of old) {
        const { hashPart } = JSON.parse(f.evidence) as { hashPart: string };
        const key = pathFindingKey(f.kind, hashPart);
        if (this.q.findingByKey.get(key) === undefined) rekey.run(key, f.id);
        else drop.run(f.id);
      }
    })();
  }

  /**
   * State from before the claim index kept one table row per claim (`claims`): its rows move
   * into the index, 65,536 at a time in key order, and the table goes.
   */
  private migrateClaims(): void {
    const { db } = this;
    if (db.prepare("SELECT 1 FROM sqlite_master WHERE name = 'claims'").get() === undefined) return;
    const page = db.prepare<[number, number, number], IndexRecord>(
      `SELECT path_key AS key, log, idx AS "index", answer FROM claims
       WHERE (path_key, log, idx) > (?, ?, ?) ORDER BY path_key, log, idx LIMIT 65536`,
    );
    db.transaction(() => {
      for (let rows = page.all(-1, -1, -1); rows.length > 0;) {
        this.index.add(rows);
        const last = rows[rows.length - 1] as IndexRecord;
        rows = page.all(last.key, last.log, last.index);
      }
      db.exec('DROP TABLE claims');
    })();
  }

  /**
   * The index key of a path: 48 bits of SHA-256(secret ‖ hash part). Logs choose the hash
   * parts they claim about, so the key is keyed with this monitor's secret: nobody can make
   * many paths share one key.
   */
  private pathKey(hashPart: string): number {
    return this.pathKeys([hashPart])[0] as number;
  }

  /** {@link pathKey} of many hash parts, hashed in one call. */
  private pathKeys(hashParts: readonly string[]): number[] {
    const input = Buffer.allocUnsafe(HASH_PART_LENGTH * hashParts.length);
    const spans = new Uint32Array(2 * hashParts.length);
    hashParts.forEach((hashPart, i) => {
      if (hashPart.length !== HASH_PART_LENGTH) throw new Error(`bug: hash part ${hashPart}`);
      input.write(hashPart, HASH_PART_LENGTH * i, HASH_PART_LENGTH, 'latin1');
      spans[2 * i] = HASH_PART_LENGTH * i;
      spans[2 * i + 1] = HASH_PART_LENGTH * (i + 1);
    });
    const digests = sha256Spans(this.secret, input, spans);
    return hashParts.map((_, i) => digests.readUIntBE(32 * i, 6));
  }

  private id(origin: string): number {
    let id = this.ids.get(origin);
    if (id === undefined) {
      this.q.addLog.run(origin);
      id = (this.q.logId.get(origin) as { id: number }).id;
      this.ids.set(origin, id);
    }
    return id;
  }

  /** A log's verified state; undefined until a first checkpoint was verified. */
  log(origin: string): FollowedLog | undefined {
    const row = this.q.log.get(origin);
    if (row?.root == null || row.checkpoint === null) return undefined;
    return {
      origin,
      verifiedSize: row.verified_size,
      root: row.root,
      checkpoint: row.checkpoint,
      verifiedAt: row.verified_at,
    };
  }

  logs(): FollowedLog[] {
    return this.q.logs.all().flatMap(({ origin }) => this.log(origin) ?? []);
  }

  /** The edge (partial tiles) of a log's verified tree, to append to. */
  edge(origin: string, treeSize: number): TileEdge {
    const data = edgeTiles(treeSize).map((t) => {
      const tile = this.tile(origin, t.level, t.index);
      if (tile === undefined || tile.length < t.width * 32)
        throw new Error(`bug: monitor tile missing`);
      return tile.subarray(0, t.width * 32);
    });
    return edgeFromTiles(treeSize, data);
  }

  tile(origin: string, level: number, index: number): Uint8Array | undefined {
    return this.q.getTile.get(this.id(origin), level, index);
  }

  /** A stored entry bundle (as received: full, or the partial one at the end). */
  bundle(origin: string, index: number): Uint8Array | undefined {
    return this.bundleAt(this.id(origin) * BUNDLE_KEY + index);
  }

  private bundleAt(id: number): Uint8Array | undefined {
    const row = this.q.getBundle.get(id);
    return row === undefined ? undefined : decodeBundle(row.data, row.gzip === 1);
  }

  /**
   * Stores entry bundles beyond the verified size, with their claims and the tiles hashed from
   * them, in one transaction. Writing tiles early is safe: appending never changes the hashes a
   * verified tree already has, so the verified edge reads the same.
   */
  addEntries(
    origin: string,
    bundles: readonly StoredBundle[],
    claims: readonly NewClaim[],
    tiles: readonly TileData[],
    writtenTo: number,
    statements: readonly number[] = [],
  ): void {
    const id = this.id(origin);
    this.db.transaction(() => {
      this.q.setWrittenTo.run(writtenTo, id);
      for (const index of statements) this.q.statement.run(id, index);
      for (const b of bundles)
        this.q.bundle.run(id * BUNDLE_KEY + b.index, b.data, b.gzip === true ? 1 : 0);
      const keys = this.pathKeys(claims.map((c) => c.hashPart));
      this.index.add(
        claims.map((c, i) => ({
          key: keys[i] as number,
          log: id,
          index: c.index,
          answer: c.answer,
        })),
      );
      for (const t of tiles) this.q.tile.run(id, t.tile.level, t.tile.index, t.data);
    })();
  }

  /** Marks the entries below `size` verified, against the signed checkpoint `note`. */
  verified(origin: string, size: number, root: Uint8Array, note: string): void {
    this.q.setVerified.run(size, root, note, size, Date.now(), this.id(origin));
  }

  /**
   * Drops what an ingest wrote beyond the verified size (entries that did not match the log's
   * tree, or an ingest cut short), trimming the bundle that straddles the verified size.
   */
  dropUnverified(origin: string): void {
    const row = this.q.log.get(origin);
    if (row === undefined || row.written_to <= row.verified_size) return;
    const id = row.id;
    const size = row.verified_size;
    this.db.transaction(() => {
      const first = Math.floor(size / TILE_WIDTH);
      const keep = size % TILE_WIDTH;
      const straddling = this.bundleAt(id * BUNDLE_KEY + first);
      this.q.dropBundles.run(id * BUNDLE_KEY + first, (id + 1) * BUNDLE_KEY);
      if (straddling !== undefined && keep > 0) {
        const entries = parseEntryBundle(straddling).slice(0, keep);
        this.q.bundle.run(id * BUNDLE_KEY + first, formatEntryBundle(entries), 0);
      }
      this.index.drop(id, size);
      this.q.dropStatements.run(id, size);
      this.q.resetWrittenTo.run(size, id);
    })();
  }

  /** The verified entry at `index` of a log. */
  entry(origin: string, index: number, read = new Map<string, Uint8Array[]>()): Uint8Array {
    // `read` keeps the bundles read so far, parsed, for a caller reading many entries.
    const at = Math.floor(index / TILE_WIDTH);
    let entries = read.get(`${origin} ${at}`);
    if (entries === undefined) {
      const bundle = this.bundle(origin, at);
      entries = bundle === undefined ? [] : parseEntryBundle(bundle);
      read.set(`${origin} ${at}`, entries);
    }
    const entry = entries[index % TILE_WIDTH];
    if (entry === undefined) throw new Error(`bug: entry ${index} of ${origin} is missing`);
    return entry;
  }

  /** The verified entries of a log that are key statements, with their indexes, in order. */
  statements(origin: string): { index: number; note: string }[] {
    const row = this.q.log.get(origin);
    if (row === undefined) return [];
    const read = new Map<string, Uint8Array[]>();
    return this.q.statements.all(row.id, row.verified_size).map((index) => ({
      index,
      note: Buffer.from(this.entry(origin, index, read)).toString('utf8'),
    }));
  }

  /** Each log's origin and verified size, by id. */
  private verifiedLogs(): Map<number, { origin: string; size: number }> {
    return new Map(
      this.q.verifiedSizes.all().map((l) => [l.id, { origin: l.origin, size: l.verified_size }]),
    );
  }

  /**
   * The verified records of the index with key `key`: for each log and answer, the first claim
   * (of at most {@link MAX_ANSWERS_PER_LOG} answers per log), ordered by log and answer.
   */
  private verifiedRecords(key: number, logs = this.verifiedLogs()): IndexRecord[] {
    const firsts: IndexRecord[] = [];
    let answers = 0;
    for (const r of this.index.lookup(key)) {
      if (r.index >= (logs.get(r.log)?.size ?? 0)) continue;
      const last = firsts[firsts.length - 1];
      // Ordered by log, answer and index: a record like the last kept is a later claim.
      if (last?.log === r.log && equalBytes(last.answer, r.answer)) continue;
      answers = last?.log === r.log ? answers + 1 : 1;
      if (answers <= MAX_ANSWERS_PER_LOG) firsts.push(r);
    }
    return firsts;
  }

  /**
   * Verified claims about the paths whose key is `key`, with the hash part of each: for each
   * log, its first claim with each answer. The work is bounded by the number of logs, however
   * many claims each makes.
   */
  private claimsAt(
    key: number,
    logs = this.verifiedLogs(),
    read = new Map<string, Uint8Array[]>(),
  ): (IndexedClaim & { hashPart: string })[] {
    const origin = (r: IndexRecord) => logs.get(r.log)?.origin ?? '';
    return this.verifiedRecords(key, logs)
      .sort((a, b) => (origin(a) < origin(b) ? -1 : origin(a) > origin(b) ? 1 : a.index - b.index))
      .map((r) => {
        const entry = Buffer.from(this.entry(origin(r), r.index, read)).toString('utf8');
        const storePath = canonicalStorePath(entry);
        const at = storePath.lastIndexOf('/') + 1;
        return {
          origin: origin(r),
          index: r.index,
          answer: Buffer.from(r.answer).toString('hex'),
          entry,
          hashPart: storePath.slice(at, at + 32),
        };
      });
  }

  /**
   * Every path key's verified records, in key order, each as its log id and where its bytes are
   * (`block[at, at + 48)`, valid while the scan goes on): one pass over the whole index.
   */
  *verifiedGroups(): Generator<{
    key: number;
    records: { log: number; block: Buffer; at: number }[];
  }> {
    const logs = this.verifiedLogs();
    let group: { key: number; records: { log: number; block: Buffer; at: number }[] } | undefined;
    for (const r of this.index.scanViews()) {
      if (r.index >= (logs.get(r.log)?.size ?? 0)) continue;
      if (group?.key !== r.key) {
        if (group !== undefined) yield group;
        group = { key: r.key, records: [] };
      }
      group.records.push({ log: r.log, block: r.block, at: r.at });
    }
    if (group !== undefined) yield group;
  }

  /** How many findings there are of each kind. */
  findingCounts(): Map<string, number> {
    return new Map(
      this.db
        .prepare<[], { kind: string; n: number }>(
          'SELECT kind, count(*) AS n FROM findings GROUP BY kind',
        )
        .all()
        .map((r) => [r.kind, r.n]),
    );
  }

  /** Records the reproducibility share at a time (kept when it differs from the last). */
  addReproPoint(at: number, shared: number, agreeing: number): void {
    const last = this.db
      .prepare<[], { shared: number; agreeing: number }>(
        'SELECT shared, agreeing FROM repro_history ORDER BY at DESC LIMIT 1',
      )
      .get();
    if (last?.shared === shared && last.agreeing === agreeing) return;
    this.db
      .prepare('INSERT OR REPLACE INTO repro_history (at, shared, agreeing) VALUES (?, ?, ?)')
      .run(at, shared, agreeing);
  }

  /** The reproducibility history, oldest first (at most `limit` points, the newest). */
  reproHistory(limit = 2000): { at: number; shared: number; agreeing: number }[] {
    return this.db
      .prepare<[number], { at: number; shared: number; agreeing: number }>(
        'SELECT * FROM (SELECT at, shared, agreeing FROM repro_history ORDER BY at DESC LIMIT ?) ORDER BY at',
      )
      .all(limit);
  }

  /** The origin of each log id with a verified tree. */
  logOrigins(): Map<number, string> {
    return new Map([...this.verifiedLogs()].map(([id, l]) => [id, l.origin]));
  }

  /** Verified claims about every path with key `key` (from {@link verifiedGroups}), with their hash parts. */
  claimsWithKey(key: number): (IndexedClaim & { hashPart: string })[] {
    return this.claimsAt(key);
  }

  /**
   * Verified claims about each of many store paths (as {@link claims}), reading each entry
   * bundle once for all of them: paths built together sit in the same bundles.
   */
  claimsOfPaths(
    hashParts: readonly string[],
    batch: ClaimBatch = this.claimBatch(),
  ): Map<string, IndexedClaim[]> {
    const { logs, read } = batch;
    const keys = this.pathKeys(hashParts);
    return new Map(
      hashParts.map((hashPart, i) => [
        hashPart,
        this.claimsAt(keys[i] as number, logs, read)
          .filter((c) => c.hashPart === hashPart)
          .map((c) => ({ origin: c.origin, index: c.index, answer: c.answer, entry: c.entry })),
      ]),
    );
  }

  /**
   * What a series of {@link claimsOfPaths} calls may share (the entry bundles and index blocks
   * they read), valid while nothing is written to the store.
   */
  claimBatch(): ClaimBatch {
    return { logs: this.verifiedLogs(), read: new Map() };
  }

  /** Verified claims about a store path, from every log. */
  claims(hashPart: string): IndexedClaim[] {
    return this.claimsAt(this.pathKey(hashPart))
      .filter((c) => c.hashPart === hashPart)
      .map((c) => ({ origin: c.origin, index: c.index, answer: c.answer, entry: c.entry }));
  }

  /**
   * Store paths claimed in the verified entries `from…to−1` of a log that have another answer
   * in some verified entry. `hashParts` are the paths of those entries: looked up one by one
   * when they are few, else one pass over the whole index is faster.
   */
  conflictingPaths(origin: string, from: number, to: number, hashParts: readonly string[]) {
    const keys =
      hashParts.length > MANY_PATHS
        ? this.conflictScan(this.id(origin), from, to)
        : [...new Set(this.pathKeys(hashParts))].filter((k) => {
            const [first, ...rest] = this.verifiedRecords(k);
            return rest.some((r) => !equalBytes(r.answer, (first as IndexRecord).answer));
          });
    return keys.flatMap((key) => {
      const answers = new Map<string, Set<string>>();
      for (const c of this.claimsAt(key)) {
        answers.set(c.hashPart, (answers.get(c.hashPart) ?? new Set()).add(c.answer));
      }
      return [...answers].filter(([, a]) => a.size > 1).map(([hashPart]) => hashPart);
    });
  }

  /**
   * The keys with more than one answer among the verified records, one of them from the entries
   * `from…to−1` of log `log`: one pass over the whole index, in key order.
   */
  private conflictScan(log: number, from: number, to: number): number[] {
    const logs = this.verifiedLogs();
    const keys: number[] = [];
    // The current key's group: where its first verified record is, whether another differs
    // from it in answer, and whether one is among the new entries.
    let key = -1;
    let firstBlock: Buffer = Buffer.alloc(0);
    let firstAt = 0;
    let differs = false;
    let touched = false;
    for (const r of this.index.scanViews()) {
      if (r.index >= (logs.get(r.log)?.size ?? 0)) continue;
      if (r.key !== key) {
        if (differs && touched) keys.push(key);
        key = r.key;
        firstBlock = r.block; // a block read stays as it is while the scan moves on
        firstAt = r.at;
        differs = false;
        touched = false;
      } else if (!differs) differs = !sameAnswer(firstBlock, firstAt, r.block, r.at);
      if (r.log === log && r.index >= from && r.index < to) touched = true;
    }
    if (differs && touched) keys.push(key);
    return keys;
  }

  sawCheckpoint(origin: string, seen: SeenCheckpoint): void {
    this.q.seen.run(origin, seen.size, seen.root, seen.note, seen.source, Date.now());
  }

  /** Forgets the checkpoints seen of sizes up to `size`, once compared with the verified tree. */
  forgetSeen(origin: string, size: number): void {
    this.q.forgetSeen.run(origin, size);
  }

  /** Checkpoints of a log seen with sizes in `min…max`, smallest first. */
  seenCheckpoints(origin: string, min: number, max: number): SeenCheckpoint[] {
    return this.q.seenFor.all(origin, min, max);
  }

  /** Records a finding once (by key): the new finding, or undefined when already known. */
  addFinding(
    key: string,
    kind: Finding['kind'],
    summary: string,
    evidence: unknown,
  ): Finding | undefined {
    const at = Date.now();
    const result = this.q.finding.run(key, kind, summary, JSON.stringify(evidence), at, at);
    if (result.changes !== 1) return undefined;
    return { id: Number(result.lastInsertRowid), kind, summary, evidence, at, updated: at };
  }

  /**
   * Records a finding, or replaces the summary and evidence of the one with the same key (it
   * keeps its id and first time). Says whether it is new, changed or as it was.
   */
  putFinding(
    key: string,
    kind: Finding['kind'],
    summary: string,
    evidence: unknown,
  ): { finding: Finding; change: 'new' | 'updated' | 'none' } {
    return this.db.transaction(() => {
      const added = this.addFinding(key, kind, summary, evidence);
      if (added !== undefined) return { finding: added, change: 'new' as const };
      const known = this.q.findingByKey.get(key) as FindingRow;
      const text = JSON.stringify(evidence);
      if (known.kind !== kind) throw new Error(`bug: finding ${key} changes kind`);
      if (known.summary === summary && known.evidence === text)
        return { finding: toFinding(known), change: 'none' as const };
      const updated = Math.max(Date.now(), known.at);
      this.q.updateFinding.run(summary, text, updated, key);
      return {
        finding: { ...toFinding(known), summary, evidence, updated },
        change: 'updated' as const,
      };
    })();
  }

  finding(key: string): Finding | undefined {
    const row = this.q.findingByKey.get(key);
    return row === undefined ? undefined : toFinding(row);
  }

  /** The finding numbered `id`, if there is one. */
  findingById(id: number): Finding | undefined {
    const row = this.db
      .prepare<[number], FindingRow>(
        'SELECT id, kind, summary, evidence, at, updated FROM findings WHERE id = ?',
      )
      .get(id);
    return row === undefined ? undefined : toFinding(row);
  }

  /** Findings in the order they were made, after the one numbered `since`. */
  findings(since = 0): Finding[] {
    return this.q.findings.all(since).map(toFinding);
  }

  /**
   * The newest `limit` findings (of one kind, if given), newest first, without their evidence;
   * `hashPart` names the store path of a finding about one.
   */
  latestFindings(
    limit: number,
    kind?: string,
  ): (Omit<Finding, 'evidence'> & { hashPart: string | null })[] {
    const rows = this.db
      .prepare<
        [string | null, string | null, number],
        {
          id: number;
          key: string;
          kind: Finding['kind'];
          summary: string;
          at: number;
          updated: number;
        }
      >(
        'SELECT id, key, kind, summary, at, updated FROM findings WHERE (? IS NULL OR kind = ?) ORDER BY id DESC LIMIT ?',
      )
      .all(kind ?? null, kind ?? null, limit);
    return rows.map(({ key, ...f }) => {
      const hashPart = key.slice(f.kind.length + 1);
      return {
        ...f,
        updated: f.updated || f.at,
        hashPart: key.startsWith(`${f.kind} `) && /^[0-9a-z]{32}$/.test(hashPart) ? hashPart : null,
      };
    });
  }

  /** Findings made or updated after `time` (ms since the epoch), the oldest change first. */
  findingsChangedSince(time: number): Finding[] {
    return this.q.changedFindings.all(time).map(toFinding);
  }

  close(): void {
    this.db.close();
  }
}
