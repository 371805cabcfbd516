import { describe, expect, test } from 'vitest';
import {
  HAVE_POSTGRES,
  TEST_PG_URL,
  postgresSchemas,
  shouldRun,
} from '../../test/support/requirements.js';
import { openPostgres } from '../db/index.js';
import { openPostgresLogStorage } from './postgres-storage.js';
import { describeLogStorage } from './storage.case.js';

const newSchema = postgresSchemas();

describeLogStorage(
  'PostgreSQL',
  () => openPostgresLogStorage(TEST_PG_URL, { schema: newSchema() }),
  shouldRun(HAVE_POSTGRES),
);

describe.runIf(shouldRun(HAVE_POSTGRES))('PostgreSQL sequencer lock', () => {
  test('only one of two stores sharing a database holds the lock; closing hands it over', async () => {
    const schema = newSchema();
    const a = await openPostgresLogStorage(TEST_PG_URL, { schema });
    const b = await openPostgresLogStorage(TEST_PG_URL, { schema });
    expect(await a.trySequencerLock()).toBe(true);
    expect(await b.trySequencerLock()).toBe(false);
    expect(await a.trySequencerLock()).toBe(true);
    await a.close();
    expect(await b.trySequencerLock()).toBe(true);
    await b.close();
  });

  test('two stores sharing a database see each other and never reuse an index', async () => {
    const schema = newSchema();
    const a = await openPostgresLogStorage(TEST_PG_URL, { schema });
    const b = await openPostgresLogStorage(TEST_PG_URL, { schema });
    const mk = (i: number) => {
      const data = Buffer.from(`e${i}`);
      return { data, leafHash: Buffer.alloc(32, i), hashPart: 'x' };
    };
    const results = await Promise.all([
      a.addEntries([mk(1), mk(2), mk(3)]),
      b.addEntries([mk(4), mk(2), mk(5)]),
    ]);
    const all = results.flat();
    expect(new Set(all).size).toBe(5);
    expect((await a.state()).nextIndex).toBe(5);
    expect((await b.state()).nextIndex).toBe(5);
    await a.close();
    await b.close();
  });
});

describe.runIf(shouldRun(HAVE_POSTGRES))('PostgreSQL chains across processes', () => {
  test('of many addChained() onto one entry from two stores, exactly one succeeds', async () => {
    const schema = newSchema();
    const a = await openPostgresLogStorage(TEST_PG_URL, { schema });
    const b = await openPostgresLogStorage(TEST_PG_URL, { schema });
    const mk = (i: number) => ({
      data: Buffer.from(`s${i}`),
      leafHash: Buffer.alloc(32, i),
      hashPart: 'accord-keys',
    });
    try {
      expect(await a.addChained(mk(0), undefined)).toBe(0);
      let tail = mk(0).leafHash;
      for (let round = 0; round < 5; round++) {
        const candidates = Array.from({ length: 20 }, (_, i) => mk(1 + round * 20 + i));
        const results = await Promise.allSettled(
          candidates.map((c, i) => (i % 2 === 0 ? a : b).addChained(c, tail)),
        );
        expect(results.filter((r) => r.status === 'rejected')).toEqual([]);
        const taken = results.flatMap((r, i) =>
          r.status === 'fulfilled' && r.value !== undefined ? [i] : [],
        );
        expect(taken).toHaveLength(1);
        tail = (candidates[taken[0] ?? 0] ?? mk(0)).leafHash;
      }
      expect((await b.lookup('accord-keys')).map((e) => e.index)).toEqual([0, 1, 2, 3, 4, 5]);
    } finally {
      await a.close();
      await b.close();
    }
  });
});

describe.runIf(shouldRun(HAVE_POSTGRES))('PostgreSQL schema upgrade', () => {
  test('a database with the earlier two entry indexes gets the one that replaces them', async () => {
    const schema = newSchema();
    const pool = openPostgres(TEST_PG_URL, { schema });
    try {
      await pool.query(`CREATE SCHEMA ${schema}`);
      await pool.query(`CREATE TABLE entries (
        idx BIGINT PRIMARY KEY,
        leaf_hash BYTEA NOT NULL UNIQUE,
        hash_part TEXT NOT NULL,
        data BYTEA NOT NULL)`);
      await pool.query('CREATE INDEX entries_hash_part ON entries (hash_part)');
      const store = await openPostgresLogStorage(TEST_PG_URL, { schema });
      const mk = (i: number) => ({
        data: Buffer.from(`e${i}`),
        leafHash: Buffer.alloc(32, i),
        hashPart: `p${i % 2}`,
      });
      expect(await store.addEntries([mk(1), mk(2)])).toEqual([0, 1]);
      expect(await store.addEntries([mk(3), mk(2), mk(1)])).toEqual([2, 1, 0]);
      await store.close();
      const { rows } = await pool.query<{ indexname: string }>(
        'SELECT indexname FROM pg_indexes WHERE schemaname = $1 AND tablename = $2 ORDER BY 1',
        [schema, 'entries'],
      );
      expect(rows.map((r) => r.indexname)).toEqual(['entries_claim', 'entries_pkey']);
    } finally {
      await pool.end();
    }
  });
});
