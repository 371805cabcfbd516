/**
 * Tokens added and revoked while `accord log serve` runs take effect without a restart: by a
 * change of the submitters file, and on SIGHUP.
 */
import { appendFileSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { newToken, submitterLine } from '../../src/log/index.js';
import { makeClaim } from '../support/claims.js';
import { runAccord } from '../support/cli.js';
import { type LogProcess, prepareLogFiles, startLogProcess } from '../support/log-process.js';

/** The status of a submission with `token`. */
async function submitWith(url: string, token: string, i: number): Promise<number> {
  const res = await fetch(`${url}/submit`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' },
    body: JSON.stringify({ claims: [makeClaim(i, 0, 'tokens')] }),
  });
  await res.arrayBuffer();
  return res.status;
}

/** Polls until a submission with `token` answers `status` (the change reached the server). */
async function until(url: string, token: string, status: number, i: number): Promise<void> {
  for (let tries = 0; tries < 100; tries++) {
    if ((await submitWith(url, token, i)) === status) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`a submission never answered ${status}`);
}

describe('submit tokens while the log runs', () => {
  const dir = mkdtempSync(join(tmpdir(), 'accord-tokens-'));
  const files = prepareLogFiles(dir, 'tokens.example/log');
  let log: LogProcess | undefined;
  afterAll(async () => {
    await log?.kill();
  });

  test('a token added by accord log token works, a revoked one is refused, a broken file changes nothing, SIGHUP re-reads', async () => {
    log = await startLogProcess([
      '--key',
      files.key,
      '--submitters',
      files.submitters,
      '--data-dir',
      dir,
    ]);
    const { url } = log;
    expect(await submitWith(url, files.token, 1)).toBe(200);

    const added = await runAccord(['log', 'token', 'second', '--submitters', files.submitters]);
    expect(added.code).toBe(0);
    const second = added.stdout.trim();
    await until(url, second, 200, 2);

    // Revoke the first builder: the same line with a leading "!".
    const text = readFileSync(files.submitters, 'utf8');
    writeFileSync(files.submitters, text.replace(/^builder /m, '!builder '));
    await until(url, files.token, 403, 3);
    expect(await submitWith(url, second, 4)).toBe(200);

    // A line that does not parse: logged, and the submitters in force are kept.
    appendFileSync(files.submitters, 'not a submitter line\n');
    for (let i = 0; i < 50 && !log.stderr().includes('submitters file not reloaded'); i++)
      await new Promise((r) => setTimeout(r, 100));
    expect(log.stderr()).toContain('line 3');
    expect(await submitWith(url, second, 5)).toBe(200);
    expect(await submitWith(url, files.token, 6)).toBe(403);

    // SIGHUP re-reads it too (here after a fix that adds a third token).
    const third = newToken();
    writeFileSync(
      files.submitters,
      `${text.replace(/^builder /m, '!builder ')}${submitterLine('third', third)}`,
    );
    log.child.kill('SIGHUP');
    await until(url, third, 200, 7);
  });
});
