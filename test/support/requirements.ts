/**
 * Test support: external programs some tests need (Nix, PostgreSQL). Without them the tests
 * are skipped on a developer machine, but under CI=true they run and fail, as a missing
 * dependency in CI is a broken build, not a pass.
 */
import { spawnSync } from 'node:child_process';

export const IN_CI = process.env.CI === 'true';

function runs(command: string, args: string[]): boolean {
  const r = spawnSync(command, args, { stdio: 'ignore' });
  return r.status === 0;
}

/** True when Nix's `nix` and `nix-store` commands are on PATH. */
export const HAVE_NIX = runs('nix', ['--version']) && runs('nix-store', ['--version']);

/** Whether to run tests needing `what`: when present, and always in CI (where absence fails). */
export function shouldRun(available: boolean): boolean {
  return available || IN_CI;
}

/** Throws a clear error when a required program is missing (called from beforeAll). */
export function requireAvailable(available: boolean, what: string): void {
  if (!available) throw new Error(`${what} is required for these tests but was not found`);
}
