import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll } from 'vitest';
import {
  HAVE_POSTGRES,
  TEST_PG_URL,
  dropSchema,
  requireAvailable,
  shouldRun,
  testSchema,
} from '../../test/support/requirements.js';
import { openPostgresWitnessStorage } from './postgres-storage.js';
import { openSqliteWitnessStorage } from './sqlite-storage.js';
import { describeWitnessStorage } from './storage.case.js';

const dir = mkdtempSync(join(tmpdir(), 'accord-witness-'));
let n = 0;
describeWitnessStorage('SQLite', () =>
  Promise.resolve(openSqliteWitnessStorage(join(dir, `w-${n++}.db`))),
);

const schemas: string[] = [];
beforeAll(() => {
  if (shouldRun(HAVE_POSTGRES)) requireAvailable(HAVE_POSTGRES, `PostgreSQL at ${TEST_PG_URL}`);
});
afterAll(async () => {
  if (HAVE_POSTGRES) for (const s of schemas) await dropSchema(s);
});
describeWitnessStorage(
  'PostgreSQL',
  () => {
    const schema = testSchema();
    schemas.push(schema);
    return openPostgresWitnessStorage(TEST_PG_URL, { schema });
  },
  shouldRun(HAVE_POSTGRES),
);
