/**
 * LogStorage on PostgreSQL: several `accord log serve` processes share one database; a
 * row lock on the state row serialises index assignment, a session advisory lock picks the one
 * sequencer.
 */
import {
  type PgClient,
  type PgPool,
  migratePostgres,
  openPostgres,
  toSafeInteger,
} from '../db/index.js';
import { GroupCommit } from './group-commit.js';
import type { LogState, LogStorage, NewEntry, StoredEntry, StoredTile } from './storage.js';

const SCHEMA = [
  `CREATE TABLE IF NOT EXISTS log_state (
     id INTEGER PRIMARY KEY CHECK (id = 1),
     next_index BIGINT NOT NULL,
     tree_size BIGINT NOT NULL,
     checkpoint TEXT
   )`,
  'INSERT INTO log_state (id, next_index, tree_size) VALUES (1, 0, 0) ON CONFLICT DO NOTHING',
  `CREATE TABLE IF NOT EXISTS entries (
     idx BIGINT PRIMARY KEY,
     leaf_hash BYTEA NOT NULL,
     hash_part TEXT NOT NULL,
     data BYTEA NOT NULL
   )`,
  // One index finds a path's entries and keeps each claim once: a separate unique index on the
  // leaf hash would cost as much again per insert (both take keys at random places).
  'CREATE UNIQUE INDEX IF NOT EXISTS entries_claim ON entries (hash_part, leaf_hash)',
  // The two indexes it replaces, in databases created before it.
  'ALTER TABLE entries DROP CONSTRAINT IF EXISTS entries_leaf_hash_key',
  'DROP INDEX IF EXISTS entries_hash_part',
  'CREATE TABLE IF NOT EXISTS bundles (idx BIGINT PRIMARY KEY, gzip BYTEA NOT NULL)',
  `CREATE TABLE IF NOT EXISTS tiles (
     level INTEGER NOT NULL,
     idx BIGINT NOT NULL,
     data BYTEA NOT NULL,
     PRIMARY KEY (level, idx)
   )`,
];

async function inTransaction<T>(pool: PgPool, body: (client: PgClient) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    const result = await body(client);
    await client.query('COMMIT');
    return result;
  } catch (error) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw error;
  } finally {
    client.release();
  }
}

/**
 * Opens a log store in the PostgreSQL database at `url` (tables in `schema` when given,
 * created if missing). `lockKey` names the sequencer lock: processes serving the same log
 * must use the same key.
 */
export async function openPostgresLogStorage(
  url: string,
  options: { schema?: string } = {},
): Promise<LogStorage> {
  const pool = openPostgres(url, options);
  const lockKey = `accord-log-sequencer:${options.schema ?? 'public'}`;
  await migratePostgres(
    pool,
    `accord-log-schema:${options.schema ?? 'public'}`,
    SCHEMA,
    options.schema,
  );
  let lockClient: PgClient | undefined;

  const state = async (): Promise<LogState> => {
    const { rows } = await pool.query<{
      next_index: string;
      tree_size: string;
      checkpoint: string | null;
    }>('SELECT next_index, tree_size, checkpoint FROM log_state WHERE id = 1');
    const row = rows[0];
    if (row === undefined) throw new Error('bug: log_state row missing');
    return {
      nextIndex: toSafeInteger(row.next_index),
      treeSize: toSafeInteger(row.tree_size),
      checkpoint: row.checkpoint ?? undefined,
    };
  };

  // Concurrent submissions share one transaction (group commit); the state row lock
  // serialises index assignment across processes. Most entries are new, so the group is first
  // inserted as if all were; only when one is already stored (the insert then adds fewer rows)
  // is that undone and each entry looked up, which costs as much again as the insert.
  const addGroup = (batches: readonly (readonly NewEntry[])[]) =>
    inTransaction(pool, async (client) => {
      const locked = await client.query<{ next_index: string }>(
        'SELECT next_index FROM log_state WHERE id = 1 FOR UPDATE',
      );
      const first = toSafeInteger(locked.rows[0]?.next_index);
      // Indexes run on from `first`; with `known` (leaf hash in hex → stored index), stored
      // claims and repeats within the group get their index back, else every entry is new.
      const assign = (known?: Map<string, number>) => {
        let next = first;
        const fresh: NewEntry[] = [];
        const results = batches.map((entries) =>
          entries.map((entry) => {
            if (known !== undefined) {
              const key = Buffer.from(entry.leafHash).toString('hex');
              const existing = known.get(key);
              if (existing !== undefined) return existing;
              known.set(key, next);
            }
            fresh.push(entry);
            return next++;
          }),
        );
        return { fresh, results, next };
      };
      // The fresh entries get consecutive indexes from `first`. Their data and leaf hashes go
      // as two binary parameters cut apart in SQL: bytea arrays would travel as hex text that
      // both sides must encode and parse, which costs more than the insert itself.
      const insert = async (fresh: readonly NewEntry[]) => {
        const offsets: number[] = [];
        const lengths: number[] = [];
        let offset = 1; // SQL strings count from 1
        for (const entry of fresh) {
          if (entry.leafHash.length !== 32) throw new Error('bug: a leaf hash is not 32 bytes');
          offsets.push(offset);
          lengths.push(entry.data.length);
          offset += entry.data.length;
        }
        const result = await client.query(
          `INSERT INTO entries (idx, leaf_hash, hash_part, data)
           SELECT $1::bigint + e.n - 1, substring($2::bytea FROM (e.n::int - 1) * 32 + 1 FOR 32),
             e.hash_part, substring($3::bytea FROM e.at FOR e.len)
           FROM unnest($4::text[], $5::int[], $6::int[]) WITH ORDINALITY AS e(hash_part, at, len, n)
           ON CONFLICT (hash_part, leaf_hash) DO NOTHING`,
          [
            first,
            Buffer.concat(fresh.map((e) => e.leafHash)),
            Buffer.concat(fresh.map((e) => e.data)),
            fresh.map((e) => e.hashPart),
            offsets,
            lengths,
          ],
        );
        return result.rowCount;
      };
      // A claim repeated within the group conflicts with itself, so it too takes the slow path.
      let group = assign();
      await client.query('SAVEPOINT all_new');
      if ((await insert(group.fresh)) !== group.fresh.length) {
        await client.query('ROLLBACK TO SAVEPOINT all_new');
        const all = batches.flat();
        const known = await client.query<{ idx: string; leaf_hash: Buffer }>(
          `SELECT idx, leaf_hash FROM entries
           WHERE (hash_part, leaf_hash) IN (SELECT * FROM unnest($1::text[], $2::bytea[]))`,
          [all.map((e) => e.hashPart), all.map((e) => Buffer.from(e.leafHash))],
        );
        group = assign(
          new Map(known.rows.map((r) => [r.leaf_hash.toString('hex'), toSafeInteger(r.idx)])),
        );
        if (group.fresh.length > 0 && (await insert(group.fresh)) !== group.fresh.length)
          throw new Error('bug: entries neither inserted nor found');
      }
      if (group.next > first)
        await client.query('UPDATE log_state SET next_index = $1 WHERE id = 1', [group.next]);
      return group.results;
    });
  const group = new GroupCommit(addGroup);

  const range = async (column: 'leaf_hash' | 'data', start: number, end: number) => {
    const { rows } = await pool.query<{ v: Buffer }>(
      `SELECT ${column} AS v FROM entries WHERE idx >= $1 AND idx < $2 ORDER BY idx`,
      [start, end],
    );
    return rows.map((r) => r.v);
  };

  // The state row lock orders this with every other index assignment, in all processes.
  const addChained = (entry: NewEntry, last: Uint8Array | undefined) =>
    inTransaction(pool, async (client): Promise<number | undefined> => {
      const locked = await client.query<{ next_index: string }>(
        'SELECT next_index FROM log_state WHERE id = 1 FOR UPDATE',
      );
      const index = toSafeInteger(locked.rows[0]?.next_index);
      const known = await client.query<{ idx: string }>(
        'SELECT idx FROM entries WHERE hash_part = $1 AND leaf_hash = $2',
        [entry.hashPart, Buffer.from(entry.leafHash)],
      );
      if (known.rows[0] !== undefined) return toSafeInteger(known.rows[0].idx);
      const stored = await client.query<{ leaf_hash: Buffer }>(
        'SELECT leaf_hash FROM entries WHERE hash_part = $1 ORDER BY idx DESC LIMIT 1',
        [entry.hashPart],
      );
      const lastStored = stored.rows[0]?.leaf_hash;
      if (last === undefined ? lastStored !== undefined : lastStored?.equals(last) !== true)
        return undefined;
      await client.query(
        'INSERT INTO entries (idx, leaf_hash, hash_part, data) VALUES ($1, $2, $3, $4)',
        [index, Buffer.from(entry.leafHash), entry.hashPart, Buffer.from(entry.data)],
      );
      await client.query('UPDATE log_state SET next_index = $1 WHERE id = 1', [index + 1]);
      return index;
    });

  return {
    addEntries: (entries) => group.submit(entries),
    addChained,
    state,
    leafHashes: (start, end) => range('leaf_hash', start, end),
    entries: (start, end) => range('data', start, end),
    async lookup(hashPart) {
      const { rows } = await pool.query<{ idx: string; data: Buffer }>(
        'SELECT idx, data FROM entries WHERE hash_part = $1 ORDER BY idx',
        [hashPart],
      );
      return rows.map((r): StoredEntry => ({ index: toSafeInteger(r.idx), data: r.data }));
    },
    async compressedBundle(index) {
      const { rows } = await pool.query<{ gzip: Buffer }>(
        'SELECT gzip FROM bundles WHERE idx = $1',
        [index],
      );
      return rows[0]?.gzip;
    },
    async putCompressedBundles(bundles) {
      if (bundles.length === 0) return;
      await pool.query(
        `INSERT INTO bundles (idx, gzip) SELECT * FROM unnest($1::bigint[], $2::bytea[])
         ON CONFLICT (idx) DO NOTHING`,
        [bundles.map((b) => b.index), bundles.map((b) => Buffer.from(b.gzip))],
      );
    },
    async tile(level, index) {
      const { rows } = await pool.query<{ data: Buffer }>(
        'SELECT data FROM tiles WHERE level = $1 AND idx = $2',
        [level, index],
      );
      return rows[0]?.data;
    },
    publish: (oldSize, newSize, tiles: readonly StoredTile[], checkpoint) =>
      inTransaction(pool, async (client) => {
        const updated = await client.query(
          'UPDATE log_state SET tree_size = $1, checkpoint = $2 WHERE id = 1 AND tree_size = $3',
          [newSize, checkpoint, oldSize],
        );
        if (updated.rowCount !== 1) return false;
        if (tiles.length > 0) {
          await client.query(
            `INSERT INTO tiles (level, idx, data)
             SELECT * FROM unnest($1::int[], $2::bigint[], $3::bytea[])
             ON CONFLICT (level, idx) DO UPDATE SET data = EXCLUDED.data
             WHERE length(EXCLUDED.data) > length(tiles.data)`,
            [
              tiles.map((t) => t.level),
              tiles.map((t) => t.index),
              tiles.map((t) => Buffer.from(t.data)),
            ],
          );
        }
        return true;
      }),
    async trySequencerLock() {
      if (lockClient !== undefined) {
        try {
          await lockClient.query('SELECT 1');
          return true;
        } catch {
          lockClient.release(true);
          lockClient = undefined;
        }
      }
      const client = await pool.connect();
      const { rows } = await client.query<{ ok: boolean }>(
        'SELECT pg_try_advisory_lock(hashtext($1)) AS ok',
        [lockKey],
      );
      if (rows[0]?.ok === true) {
        // A lost connection releases the lock in the server; forget the client then.
        client.on('error', () => {
          if (lockClient === client) lockClient = undefined;
        });
        lockClient = client;
        return true;
      }
      client.release();
      return false;
    },
    async close() {
      const client = lockClient;
      lockClient = undefined;
      if (client !== undefined) {
        // Unlocked now, another sequencer can take over at once: the server would release the
        // lock only when it has ended this session, a moment after the connection closes.
        await client
          .query('SELECT pg_advisory_unlock(hashtext($1))', [lockKey])
          .catch(() => undefined);
        client.release(true);
      }
      await pool.end();
    },
  };
}
