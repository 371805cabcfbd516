/** WitnessStorage on SQLite (the default): WAL, synchronous = FULL. */
import { openSqlite } from '../db/index.js';
import type { WitnessStorage, WitnessedCheckpoint } from './storage.js';

export function openSqliteWitnessStorage(path: string): WitnessStorage {
  const db = openSqlite(path);
  db.exec(`CREATE TABLE IF NOT EXISTS witnessed (
    origin TEXT PRIMARY KEY,
    size INTEGER NOT NULL,
    root BLOB NOT NULL,
    note TEXT NOT NULL
  )`);
  const get = db.prepare<[string], { size: number; root: Buffer; note: string }>(
    'SELECT size, root, note FROM witnessed WHERE origin = ?',
  );
  const insert = db.prepare('INSERT INTO witnessed (origin, size, root, note) VALUES (?, ?, ?, ?)');
  const update = db.prepare(
    'UPDATE witnessed SET size = ?, root = ?, note = ? WHERE origin = ? AND size = ?',
  );
  const advance = db.transaction((origin: string, oldSize: number, next: WitnessedCheckpoint) => {
    const row = get.get(origin);
    const stored = row?.size ?? 0;
    if (stored !== oldSize) return { ok: false as const, size: stored };
    if (row === undefined) insert.run(origin, next.size, next.rootHash, next.note);
    else update.run(next.size, next.rootHash, next.note, origin, oldSize);
    return { ok: true as const };
  });
  return {
    latest(origin) {
      const row = get.get(origin);
      return Promise.resolve(
        row === undefined ? undefined : { size: row.size, rootHash: row.root, note: row.note },
      );
    },
    advance: (origin, oldSize, next) => Promise.resolve(advance.immediate(origin, oldSize, next)),
    close() {
      db.close();
      return Promise.resolve();
    },
  };
}
