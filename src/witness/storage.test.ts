import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  HAVE_POSTGRES,
  TEST_PG_URL,
  postgresSchemas,
  shouldRun,
} from '../../test/support/requirements.js';
import { openPostgresWitnessStorage } from './postgres-storage.js';
import { openSqliteWitnessStorage } from './sqlite-storage.js';
import { describeWitnessStorage } from './storage.case.js';

const dir = mkdtempSync(join(tmpdir(), 'accord-witness-'));
let n = 0;
describeWitnessStorage('SQLite', () =>
  Promise.resolve(openSqliteWitnessStorage(join(dir, `w-${n++}.db`))),
);

const newSchema = postgresSchemas();
describeWitnessStorage(
  'PostgreSQL',
  () => openPostgresWitnessStorage(TEST_PG_URL, { schema: newSchema() }),
  shouldRun(HAVE_POSTGRES),
);
