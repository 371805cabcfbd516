import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describeLogStorage } from './storage.case.js';
import { openSqliteLogStorage } from './sqlite-storage.js';

const dir = mkdtempSync(join(tmpdir(), 'accord-sqlite-'));
let n = 0;
describeLogStorage('SQLite', () =>
  Promise.resolve(openSqliteLogStorage(join(dir, `log-${n++}.db`))),
);
