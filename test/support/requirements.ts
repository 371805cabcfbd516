/**
 * Test support: external programs some tests need (Nix, PostgreSQL, Guile with guile-gcrypt). Without them the tests
 * are skipped on a developer machine, but under CI=true they run and fail, as a missing
 * dependency in CI is a broken build, not a pass.
 */
import { spawnSync } from 'node:child_process';
import { afterAll, beforeAll } from 'vitest';

export const IN_CI = process.env.CI === 'true';

function runs(command: string, args: string[]): boolean {
  const r = spawnSync(command, args, { stdio: 'ignore' });
  return r.status === 0;
}

/** True when Nix's `nix` and `nix-store` commands are on PATH. */
export const HAVE_NIX = runs('nix', ['--version']) && runs('nix-store', ['--version']);

/** True when Debian's Chromium is installed (the dashboard's browser tests drive it). */
export const CHROMIUM = process.env.ACCORD_CHROMIUM ?? '/usr/bin/chromium';
export const HAVE_CHROMIUM = runs(CHROMIUM, ['--version']);

/** True when Guile runs and has guile-gcrypt's `(gcrypt pk-crypto)` (libgcrypt, as Guix uses it). */
export const HAVE_GUILE = runs('guile', [
  '--no-auto-compile',
  '-c',
  '(use-modules (gcrypt pk-crypto) (gcrypt hash) (gcrypt base64))',
]);

/** True when systemd's `systemd-analyze` is on PATH (to check the units in deploy/). */
export const HAVE_SYSTEMD_ANALYZE = runs('systemd-analyze', ['--version']);

/** Whether to run tests needing `what`: when present, and always in CI (where absence fails). */
export function shouldRun(available: boolean): boolean {
  return available || IN_CI;
}

/** Throws a clear error when a required program is missing (called from beforeAll). */
export function requireAvailable(available: boolean, what: string): void {
  if (!available) throw new Error(`${what} is required for these tests but was not found`);
}

/** The PostgreSQL database tests use (scripts/install-test-deps.sh creates it). */
export const TEST_PG_URL =
  process.env.ACCORD_TEST_PG_URL ?? 'postgres://accord:accord@127.0.0.1:5432/accord_test';

/** True when the test database accepts a connection (checked once, at import). */
export const HAVE_POSTGRES: boolean = await (async () => {
  const { default: pg } = await import('pg');
  const client = new pg.Client({ connectionString: TEST_PG_URL, connectionTimeoutMillis: 3000 });
  try {
    await client.connect();
    await client.query('SELECT 1');
    return true;
  } catch {
    return false;
  } finally {
    await client.end().catch(() => undefined);
  }
})();

/** A fresh schema name for one test's tables. */
export function testSchema(): string {
  return `t_${Date.now().toString(36)}_${Math.floor(Math.random() * 1e9).toString(36)}`;
}

/** Drops a test schema and everything in it. */
export async function dropSchema(schema: string): Promise<void> {
  const { default: pg } = await import('pg');
  const client = new pg.Client({ connectionString: TEST_PG_URL });
  await client.connect();
  try {
    await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
  } finally {
    await client.end();
  }
}

/**
 * Fresh PostgreSQL schemas for the tests of one file or `describe` block: requires the server
 * where these tests run (so CI fails without it) and drops every schema handed out afterwards.
 */
export function postgresSchemas(): () => string {
  const schemas: string[] = [];
  beforeAll(() => {
    if (shouldRun(HAVE_POSTGRES)) requireAvailable(HAVE_POSTGRES, `PostgreSQL at ${TEST_PG_URL}`);
  });
  afterAll(async () => {
    if (HAVE_POSTGRES) for (const s of schemas) await dropSchema(s);
  });
  return () => {
    const schema = testSchema();
    schemas.push(schema);
    return schema;
  };
}
