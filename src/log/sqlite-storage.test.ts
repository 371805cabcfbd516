import { fstatSync, mkdtempSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, test } from 'vitest';
import { hashLeaf } from '../tlog/index.js';
import { describeLogStorage } from './storage.case.js';
import { openSqliteLogStorage } from './sqlite-storage.js';

const dir = mkdtempSync(join(tmpdir(), 'accord-sqlite-'));
let n = 0;
describeLogStorage('SQLite', () =>
  Promise.resolve(openSqliteLogStorage(join(dir, `log-${n++}.db`))),
);

test('a submission is acknowledged only after the WAL file was synced', async () => {
  const path = join(dir, 'synced.db');
  let release: (() => void) | undefined;
  const synced: number[] = [];
  const storage = openSqliteLogStorage(path, {
    syncFile: (fd) =>
      new Promise((resolve) => {
        // The file being synced is the database's WAL.
        expect(fstatSync(fd).ino).toBe(statSync(`${path}-wal`).ino);
        release = () => {
          synced.push(fd);
          resolve();
        };
      }),
  });
  const data = Buffer.from('an entry');
  let acknowledged = false;
  const added = storage
    .addEntries([{ data, leafHash: hashLeaf(data), hashPart: 'h' }])
    .then((indexes) => {
      acknowledged = true;
      return indexes;
    });
  for (let i = 0; i < 50 && release === undefined; i++) await new Promise((r) => setTimeout(r, 5));
  await new Promise((r) => setTimeout(r, 20));
  expect(acknowledged).toBe(false);
  release?.();
  expect(await added).toEqual([0]);
  expect(synced).toHaveLength(1);
  await storage.close();
});
