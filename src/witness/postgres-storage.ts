/** WitnessStorage on PostgreSQL: the compare-and-set is one conditional statement. */
import { migratePostgres, openPostgres, toSafeInteger } from '../db/index.js';
import type { WitnessStorage } from './storage.js';

export async function openPostgresWitnessStorage(
  url: string,
  options: { schema?: string } = {},
): Promise<WitnessStorage> {
  const pool = openPostgres(url, options);
  await migratePostgres(
    pool,
    `accord-witness-schema:${options.schema ?? 'public'}`,
    [
      `CREATE TABLE IF NOT EXISTS witnessed (
         origin TEXT PRIMARY KEY,
         size BIGINT NOT NULL,
         root BYTEA NOT NULL,
         note TEXT NOT NULL
       )`,
    ],
    options.schema,
  );
  return {
    async latest(origin) {
      const { rows } = await pool.query<{ size: string; root: Buffer; note: string }>(
        'SELECT size, root, note FROM witnessed WHERE origin = $1',
        [origin],
      );
      const row = rows[0];
      return row === undefined
        ? undefined
        : { size: toSafeInteger(row.size), rootHash: row.root, note: row.note };
    },
    async advance(origin, oldSize, next) {
      // From nothing (oldSize 0): insert, or update a stored size-0 record. Otherwise update
      // only from oldSize. Each is one statement, so concurrent requests serialise on the row.
      const args = [origin, next.size, Buffer.from(next.rootHash), next.note, oldSize];
      const { rowCount } =
        oldSize === 0
          ? await pool.query(
              `INSERT INTO witnessed (origin, size, root, note) VALUES ($1, $2, $3, $4)
               ON CONFLICT (origin) DO UPDATE SET size = EXCLUDED.size, root = EXCLUDED.root,
                 note = EXCLUDED.note WHERE witnessed.size = $5`,
              args,
            )
          : await pool.query(
              'UPDATE witnessed SET size = $2, root = $3, note = $4 WHERE origin = $1 AND size = $5',
              args,
            );
      if (rowCount === 1) return { ok: true };
      const { rows } = await pool.query<{ size: string }>(
        'SELECT size FROM witnessed WHERE origin = $1',
        [origin],
      );
      return { ok: false, size: rows[0] === undefined ? 0 : toSafeInteger(rows[0].size) };
    },
    close: () => pool.end(),
  };
}
