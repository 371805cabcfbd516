/**
 * One server per SQLite state, and every option checked before anything is made: a second
 * server on the same state refuses to start before it writes anything; a bad option in a fresh
 * directory leaves it empty; a killed server's lock goes with it.
 */
import { existsSync, mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { runAccord } from '../support/cli.js';
import {
  type LogProcess,
  prepareLogFiles,
  startLogProcess,
  startServerProcess,
} from '../support/log-process.js';

describe('one server per state', () => {
  const root = mkdtempSync(join(tmpdir(), 'accord-lock-'));
  const running: LogProcess[] = [];
  afterAll(async () => {
    for (const p of running) await p.kill();
  });

  test('a second log serve on the same data directory refuses before it makes a key; after kill -9 one starts', async () => {
    const data = join(root, 'log');
    const first = await startLogProcess(['--origin', 'lock.example/log', '--data-dir', data]);
    running.push(first);
    const other = join(data, 'other.key');
    const second = await runAccord([
      'log',
      'serve',
      '--origin',
      'lock.example/other',
      '--key',
      other,
      '--data-dir',
      data,
      '--listen',
      '127.0.0.1:0',
    ]);
    expect(second.code).toBe(1);
    expect(second.stderr).toMatch(/log\.db is in use by another Accord server/);
    expect(existsSync(other)).toBe(false);

    await first.kill('SIGKILL');
    const again = await startLogProcess(['--data-dir', data]);
    running.push(again);
    expect((await fetch(`${again.url}/checkpoint`)).status).toBe(200);
  });

  test('a second witness on the same store refuses to start', async () => {
    const data = join(root, 'witness');
    const key = join(root, 'witness.key');
    expect(
      (await runAccord(['keygen', '--witness', '--origin', 'lock.example/witness', '--out', key]))
        .code,
    ).toBe(0);
    const log = prepareLogFiles(join(root, 'wlog'), 'lock.example/wlog');
    const args = [
      'witness',
      'serve',
      '--key',
      key,
      '--log',
      log.vkey,
      '--data-dir',
      data,
      '--listen',
      '127.0.0.1:0',
    ];
    running.push(await startServerProcess(args));
    const second = await runAccord(args);
    expect(second.code).toBe(1);
    expect(second.stderr).toMatch(/witness\.db is in use by another Accord server/);
  });

  test.each([
    ['a bad listen address', ['--listen', 'nowhere'], /--listen "nowhere": want HOST:PORT/],
    ['a bad limit', ['--max-body', '0'], /--max-body/],
    ['a bad store URL', ['--store', 'mysql://x'], /--store "mysql:\/\/x"/],
    ['a missing witnesses file', ['--witnesses', '/nonexistent/witnesses'], /nonexistent/],
  ])(
    'log serve with %s exits non-zero and makes nothing (no key, no token, no database)',
    async (_, extra, message) => {
      const data = join(mkdtempSync(join(root, 'fresh-')), 'data');
      const run = await runAccord([
        'log',
        'serve',
        '--origin',
        'fresh.example/log',
        '--data-dir',
        data,
        ...extra,
      ]);
      expect(run.code).not.toBe(0);
      expect(run.stderr).toMatch(message);
      expect(existsSync(data) ? readdirSync(data) : []).toEqual([]);
    },
  );

  test('log serve with a witness key refuses it by name', async () => {
    const key = join(root, 'wrong.key');
    await runAccord(['keygen', '--witness', '--origin', 'lock.example/w2', '--out', key]);
    const run = await runAccord(['log', 'serve', '--key', key, '--data-dir', join(root, 'wrong')]);
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/is not a log \(Ed25519\) key: make one with 'accord keygen'/);
  });
});
