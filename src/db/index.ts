/**
 * The database layer servers share: store URLs, and opening SQLite (embedded, the default) or
 * PostgreSQL with the settings Accord's durability contracts rely on.
 */
import { mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import type pg from 'pg';

/** The PostgreSQL client, loaded when first used: most runs use SQLite alone. */
let pgModule: typeof pg | undefined;
const loadPg = (): typeof pg => (pgModule ??= createRequire(import.meta.url)('pg') as typeof pg);

export type SqliteDatabase = Database.Database;
export type PgPool = pg.Pool;
export type PgClient = pg.PoolClient;

/** Where a server keeps its state. */
export type StoreUrl =
  | { readonly kind: 'sqlite'; readonly path: string }
  | { readonly kind: 'postgres'; readonly url: string };

/** Parses `--store`: `sqlite:PATH` or a `postgres://` (or `postgresql://`) URL. */
export function parseStoreUrl(text: string): StoreUrl {
  if (text.startsWith('sqlite:')) {
    const path = text.slice('sqlite:'.length);
    if (path === '') throw new Error('--store sqlite: needs a file path');
    return { kind: 'sqlite', path };
  }
  if (/^postgres(?:ql)?:\/\//.test(text)) return { kind: 'postgres', url: text };
  throw new Error(`--store ${JSON.stringify(text)}: want sqlite:PATH or postgres://…`);
}

/** A store URL without its password, for logs. */
export function describeStoreUrl(store: StoreUrl): string {
  if (store.kind === 'sqlite') return `sqlite:${store.path}`;
  try {
    const url = new URL(store.url);
    if (url.password !== '') url.password = '***';
    return url.toString();
  } catch {
    return 'postgres://(unparsable URL)';
  }
}

/**
 * Opens (creating if needed) a SQLite database in WAL mode with `synchronous = FULL`, so a
 * committed transaction survives a crash of the process or the machine. `NORMAL` survives a
 * crash of the process only, for state that can be rebuilt (a cache).
 */
export function openSqlite(
  path: string,
  options: { synchronous?: 'FULL' | 'NORMAL'; pageSize?: number } = {},
): SqliteDatabase {
  if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
  const db = new Database(path);
  // The page size of a new file (an existing one keeps its own): before WAL fixes it.
  if (options.pageSize !== undefined) db.pragma(`page_size = ${options.pageSize}`);
  db.pragma('journal_mode = WAL');
  db.pragma(`synchronous = ${options.synchronous ?? 'FULL'}`);
  db.pragma('busy_timeout = 5000');
  db.pragma('foreign_keys = ON');
  // Checkpoint the WAL into the database every 16 MiB rather than every 4 MiB: fewer fsyncs of
  // the main file under sustained writes.
  db.pragma('wal_autocheckpoint = 4096');
  return db;
}

/** The connections holding locks: referenced here so that no garbage collection closes them. */
const heldLocks = new Set<SqliteDatabase>();

/**
 * Makes this process the one server of a SQLite state: holds an exclusive SQLite lock on
 * `PATH.lock` until the process ends (or the returned function is called), so a second server
 * on the same state refuses to start before it does anything. The lock is a POSIX advisory lock,
 * released by the system when the process dies, kill -9 included. PostgreSQL state is shared by
 * design (one sequencer at a time is chosen there): nothing to lock.
 */
export function lockStore(store: StoreUrl): () => void {
  if (store.kind !== 'sqlite' || store.path === ':memory:') return () => undefined;
  const path = `${store.path}.lock`;
  mkdirSync(dirname(path), { recursive: true });
  const db = new Database(path);
  db.pragma('busy_timeout = 0');
  try {
    db.exec('BEGIN EXCLUSIVE');
  } catch (cause) {
    db.close();
    throw new Error(`${store.path} is in use by another Accord server (${path} is locked)`, {
      cause,
    });
  }
  heldLocks.add(db);
  return () => {
    heldLocks.delete(db);
    db.close();
  };
}

/**
 * Creates a PostgreSQL pool. With `schema`, every connection uses (and first creates) that
 * schema, so several logs or test runs can share one database.
 */
export function openPostgres(url: string, options: { schema?: string; max?: number } = {}): PgPool {
  const { schema } = options;
  if (schema !== undefined && !/^[a-z_][a-z0-9_]{0,62}$/.test(schema))
    throw new Error(`bad schema name ${schema}`);
  // The search path in the connection's start-up parameters: every query on it, the first
  // included, uses the schema (the store's migration creates it).
  const pool = new (loadPg().Pool)({
    connectionString: url,
    max: options.max ?? 8,
    ...(schema === undefined ? {} : { options: `-c search_path=${schema}` }),
  });
  // An idle client that loses its connection must not crash the process.
  pool.on('error', () => undefined);
  return pool;
}

/** pg returns BIGINT as text: converts it, checking it is a safe integer. */
export function toSafeInteger(value: unknown): number {
  const n = typeof value === 'string' ? Number(value) : value;
  if (typeof n !== 'number' || !Number.isSafeInteger(n)) {
    throw new Error(`bug: database value ${String(value)} is not a safe integer`);
  }
  return n;
}

/**
 * Runs schema statements once per database, under a transaction-scoped advisory lock so that
 * several processes starting together do not race on CREATE … IF NOT EXISTS.
 */
export async function migratePostgres(
  pool: PgPool,
  lockName: string,
  statements: readonly string[],
  schema?: string,
): Promise<void> {
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    await client.query('SELECT pg_advisory_xact_lock(hashtext($1))', [lockName]);
    if (schema !== undefined) await client.query(`CREATE SCHEMA IF NOT EXISTS ${schema}`);
    for (const statement of statements) await client.query(statement);
    await client.query('COMMIT');
  } catch (error) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw error;
  } finally {
    client.release();
  }
}
