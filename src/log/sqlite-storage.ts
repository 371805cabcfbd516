/** LogStorage on SQLite (the embedded default): one database file, one server process. */
import { type SqliteDatabase, openSqlite } from '../db/index.js';
import { GroupCommit } from './group-commit.js';
import type {
  CompressedBundle,
  LogState,
  LogStorage,
  NewEntry,
  StoredEntry,
  StoredTile,
} from './storage.js';

const SCHEMA = `
CREATE TABLE IF NOT EXISTS log_state (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  next_index INTEGER NOT NULL,
  tree_size INTEGER NOT NULL,
  checkpoint TEXT
);
INSERT OR IGNORE INTO log_state (id, next_index, tree_size) VALUES (1, 0, 0);
CREATE TABLE IF NOT EXISTS entries (
  idx INTEGER PRIMARY KEY,
  leaf_hash BLOB NOT NULL,
  hash_part TEXT NOT NULL,
  data BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS entries_hash_part ON entries (hash_part);
CREATE TABLE IF NOT EXISTS bundles (idx INTEGER PRIMARY KEY, gzip BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS tiles (
  level INTEGER NOT NULL,
  idx INTEGER NOT NULL,
  data BLOB NOT NULL,
  PRIMARY KEY (level, idx)
) WITHOUT ROWID;
`;

/** Opens (creating if needed) a log database at `path` (`:memory:` for a throwaway one). */
export function openSqliteLogStorage(path: string): LogStorage {
  const db: SqliteDatabase = openSqlite(path);
  db.exec(SCHEMA);
  const q = {
    state: db.prepare<[], { next_index: number; tree_size: number; checkpoint: string | null }>(
      'SELECT next_index, tree_size, checkpoint FROM log_state WHERE id = 1',
    ),
    // A stored claim is found through the hash-part index: a unique index on the leaf hash
    // would cost as much again per insert (both take keys at random places).
    same: db
      .prepare<[string, Uint8Array], number>(
        'SELECT idx FROM entries WHERE hash_part = ? AND leaf_hash = ? LIMIT 1',
      )
      .pluck(),
    lastOf: db
      .prepare<[string], Buffer>(
        'SELECT leaf_hash FROM entries WHERE hash_part = ? ORDER BY idx DESC LIMIT 1',
      )
      .pluck(),
    insert: db.prepare('INSERT INTO entries (idx, leaf_hash, hash_part, data) VALUES (?, ?, ?, ?)'),
    setNext: db.prepare('UPDATE log_state SET next_index = ? WHERE id = 1'),
    leaves: db.prepare<[number, number], { leaf_hash: Buffer }>(
      'SELECT leaf_hash FROM entries WHERE idx >= ? AND idx < ? ORDER BY idx',
    ),
    data: db.prepare<[number, number], { data: Buffer }>(
      'SELECT data FROM entries WHERE idx >= ? AND idx < ? ORDER BY idx',
    ),
    lookup: db.prepare<[string], { idx: number; data: Buffer }>(
      'SELECT idx, data FROM entries WHERE hash_part = ? ORDER BY idx',
    ),
    bundle: db.prepare<[number], Buffer>('SELECT gzip FROM bundles WHERE idx = ?').pluck(),
    putBundle: db.prepare('INSERT OR IGNORE INTO bundles (idx, gzip) VALUES (?, ?)'),
    tile: db.prepare<[number, number], { data: Buffer }>(
      'SELECT data FROM tiles WHERE level = ? AND idx = ?',
    ),
    putTile: db.prepare(
      `INSERT INTO tiles (level, idx, data) VALUES (?, ?, ?)
       ON CONFLICT (level, idx) DO UPDATE SET data = excluded.data
       WHERE length(excluded.data) > length(tiles.data)`,
    ),
    publish: db.prepare(
      'UPDATE log_state SET tree_size = ?, checkpoint = ? WHERE id = 1 AND tree_size = ?',
    ),
  };
  const readState = (): LogState => {
    const row = q.state.get();
    if (row === undefined) throw new Error('bug: log_state row missing');
    return {
      nextIndex: row.next_index,
      treeSize: row.tree_size,
      checkpoint: row.checkpoint ?? undefined,
    };
  };
  // One transaction (one fsync) for every batch queued since the last commit: concurrent
  // submissions share a commit ("group commit").
  const add = db.transaction((batches: readonly (readonly NewEntry[])[]): number[][] => {
    let next = readState().nextIndex;
    // The lookup sees this transaction's own inserts, so a claim repeated within the group is
    // found too.
    const result = batches.map((entries) =>
      entries.map((e) => {
        let index = q.same.get(e.hashPart, e.leafHash);
        if (index === undefined) q.insert.run((index = next++), e.leafHash, e.hashPart, e.data);
        return index;
      }),
    );
    q.setNext.run(next);
    return result;
  });
  const chained = db.transaction((e: NewEntry, last: Uint8Array | undefined) => {
    const known = q.same.get(e.hashPart, e.leafHash);
    if (known !== undefined) return known;
    const stored = q.lastOf.get(e.hashPart);
    if (last === undefined ? stored !== undefined : stored?.equals(last) !== true) return undefined;
    const index = readState().nextIndex;
    q.insert.run(index, e.leafHash, e.hashPart, e.data);
    q.setNext.run(index + 1);
    return index;
  });
  const group = new GroupCommit((batches: readonly (readonly NewEntry[])[]) =>
    add.immediate(batches),
  );
  const publish = db.transaction(
    (oldSize: number, newSize: number, tiles: readonly StoredTile[], checkpoint: string) => {
      if (q.publish.run(newSize, checkpoint, oldSize).changes !== 1) return false;
      for (const t of tiles) q.putTile.run(t.level, t.index, t.data);
      return true;
    },
  );
  const putBundles = db.transaction((bundles: readonly CompressedBundle[]) => {
    for (const b of bundles) q.putBundle.run(b.index, b.gzip);
  });
  return {
    addEntries: (entries) => group.submit(entries),
    addChained: (entry, last) => Promise.resolve(chained.immediate(entry, last)),
    state: () => Promise.resolve(readState()),
    leafHashes: (start, end) => Promise.resolve(q.leaves.all(start, end).map((r) => r.leaf_hash)),
    entries: (start, end) => Promise.resolve(q.data.all(start, end).map((r) => r.data)),
    lookup: (hashPart) =>
      Promise.resolve(
        q.lookup.all(hashPart).map((r): StoredEntry => ({ index: r.idx, data: r.data })),
      ),
    compressedBundle: (index) => Promise.resolve(q.bundle.get(index)),
    putCompressedBundles: (bundles) => {
      putBundles(bundles);
      return Promise.resolve();
    },
    tile: (level, index) => Promise.resolve(q.tile.get(level, index)?.data),
    publish: (oldSize, newSize, tiles, checkpoint) =>
      Promise.resolve(publish.immediate(oldSize, newSize, tiles, checkpoint)),
    trySequencerLock: () => Promise.resolve(true),
    close: () => {
      db.close();
      return Promise.resolve();
    },
  };
}
