import { describe, expect, test } from 'vitest';
import {
  HAVE_POSTGRES,
  TEST_PG_URL,
  postgresSchemas,
  shouldRun,
} from '../../test/support/requirements.js';
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
