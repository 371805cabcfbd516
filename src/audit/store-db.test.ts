import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, test } from 'vitest';
import { AuditError } from './errors.js';
import { NixStoreDb } from './store-db.js';

/** The two tables of Nix's schema (10) that the audit reads, as Nix 2.8 creates them. */
const SCHEMA = `
CREATE TABLE ValidPaths (id integer primary key autoincrement not null, path text unique not null,
  hash text not null, registrationTime integer not null, deriver text, narSize integer,
  ultimate integer, sigs text, ca text);
CREATE TABLE Refs (referrer integer not null, reference integer not null,
  primary key (referrer, reference));
`;

const HEX = 'b1683dd0fe278535873c841e6b39f885ec62b418d547fc8ce4422f7e51eb2300';
const p = (i: number) =>
  `/nix/store/${String(i)
    .padStart(32, '0')
    .replace(/[eotu]/g, '0')}-p${i}`;

function nixDb(
  rows: number,
  edit?: (db: Database.Database) => void,
  journal: 'WAL' | 'DELETE' = 'WAL',
): string {
  const file = join(mkdtempSync(join(tmpdir(), 'accord-nixdb-')), 'db.sqlite');
  const db = new Database(file);
  db.pragma(`journal_mode = ${journal}`);
  db.exec(SCHEMA);
  const add = db.prepare(
    'INSERT INTO ValidPaths (path, hash, registrationTime, deriver, narSize) VALUES (?, ?, 1, ?, ?)',
  );
  const ref = db.prepare('INSERT INTO Refs VALUES (?, ?)');
  db.transaction(() => {
    for (let i = 1; i <= rows; i++) {
      add.run(p(i), `sha256:${HEX}`, i % 2 === 0 ? `${p(i)}.drv` : null, 100 + i);
      ref.run(i, i); // itself
      if (i > 1) ref.run(i, i - 1);
    }
  })();
  edit?.(db);
  db.close();
  return file;
}

describe('NixStoreDb', () => {
  test('pages() reads every valid path with its references across pages, read-only', () => {
    const file = nixDb(25);
    const before = readFileSync(file);
    const store = NixStoreDb.open(file, '/nix/store');
    expect(store.count()).toBe(25);
    const pages = [...store.pages(10)];
    store.close();
    expect(pages.map((page) => page.length)).toEqual([10, 10, 5]);
    const all = pages.flat();
    expect(all.map((l) => l.path)).toEqual(Array.from({ length: 25 }, (_, i) => p(i + 1)));
    // The hash in nix32, as 'nix hash to-base32 --type sha256' prints it.
    const third = all[2];
    expect(third).toMatchObject({
      narHash: 'sha256:0013xd8pwbs2wj6gqiym32s65v45z0wnn7l47j3kb197zv83ss5i',
      narSize: 103,
      references: [p(2).slice(11), p(3).slice(11)].sort(),
    });
    expect(third?.deriver).toBeUndefined();
    expect(all[3]?.deriver).toBe(`${p(4)}.drv`);
    expect(readFileSync(file).equals(before)).toBe(true);
  });

  test('waits for a database another process holds locked (Nix writing), then reads it', async () => {
    // Without WAL a writer's exclusive lock keeps readers out: the read must wait, not fail.
    const file = nixDb(5, undefined, 'DELETE');
    const holder = spawn(
      process.execPath,
      [
        '-e',
        `const db = new (require('better-sqlite3'))(${JSON.stringify(file)});
         db.exec('BEGIN EXCLUSIVE'); db.exec("UPDATE ValidPaths SET narSize = 1 WHERE id = 1");
         process.stdout.write('locked\\n');
         setTimeout(() => { db.exec('COMMIT'); db.close(); }, 1500);`,
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    const exited = new Promise((resolve) => holder.once('exit', resolve));
    await new Promise<void>((resolve, reject) => {
      holder.stdout.once('data', () => {
        resolve();
      });
      holder.once('exit', () => {
        reject(new Error('the lock holder exited first'));
      });
    });
    const store = NixStoreDb.open(file, '/nix/store');
    expect(store.count()).toBe(5);
    expect([...store.pages(10)].flat()[0]?.narSize).toBe(1); // read after the writer committed
    store.close();
    await exited;
  });

  test('lookup() finds listed paths and names the ones that are not valid', () => {
    const store = NixStoreDb.open(nixDb(3), '/nix/store');
    const gone = `/nix/store/${'1'.repeat(32)}-gone`;
    const { found, missing } = store.lookup([p(2), gone]);
    store.close();
    expect(found.map((f) => f.references)).toEqual([[p(1).slice(11), p(2).slice(11)].sort()]);
    expect(missing).toEqual([gone]);
  });

  test('open() refuses a file that does not exist (and does not create it), or is no Nix database', () => {
    const dir = mkdtempSync(join(tmpdir(), 'accord-nixdb-'));
    const none = join(dir, 'db.sqlite');
    expect(() => NixStoreDb.open(none, '/nix/store')).toThrow(AuditError);
    expect(existsSync(none)).toBe(false);
    const other = join(dir, 'other.sqlite');
    new Database(other).exec('CREATE TABLE t (x)');
    expect(() => NixStoreDb.open(other, '/nix/store')).toThrow(/cannot read the Nix database/);
  });

  test('a row with a malformed hash, no NAR size, or a path outside the store is an error naming it', () => {
    const cases: [string, RegExp][] = [
      [`UPDATE ValidPaths SET hash = 'sha256:XYZ' WHERE id = 2`, /row 2 .*p2\): .*hash/],
      ['UPDATE ValidPaths SET narSize = NULL WHERE id = 3', /row 3 .*no valid NAR size/],
      [`UPDATE ValidPaths SET path = '/gnu/store/x-y' WHERE id = 1`, /not in the store/],
    ];
    for (const [sql, message] of cases) {
      const store = NixStoreDb.open(
        nixDb(3, (db) => db.exec(sql)),
        '/nix/store',
      );
      expect(() => [...store.pages(10)]).toThrow(message);
      store.close();
    }
  });
});
