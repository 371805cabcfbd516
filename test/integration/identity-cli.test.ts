/** `accord identity` end to end: a root key, a chain of statements, a log that takes them. */
import { mkdtempSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { foldStatements, logKeysAt } from '../../src/identity/index.js';
import { parseVerifierKey } from '../../src/tlog/index.js';
import { runAccord } from '../support/cli.js';
import { CACHE_NIXOS_ORG_KEY, logKey } from '../support/identity.js';
import { type TestLog, startTestLog } from '../support/log.js';

const dir = mkdtempSync(join(tmpdir(), 'accord-identity-'));
const at = (name: string) => join(dir, name);
const NAME = 'cli-builder.example.org';

describe('accord identity', () => {
  let vkey = '';
  let log: TestLog;
  const now = Math.floor(Date.now() / 1000);

  beforeAll(async () => {
    const r = await runAccord(['identity', 'init', '--name', NAME, '--out', at('root.key')]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    vkey = r.stdout.trim();
    log = await startTestLog({ identity: { root: parseVerifierKey(vkey) } });
    writeFileSync(at('token'), `${log.token}\n`);
  });
  afterAll(async () => {
    await log.close();
  });
  /** `accord identity publish` of a statement file to the test log. */
  const publish = (file: string, ...flags: string[]) =>
    runAccord([
      'identity',
      'publish',
      '--log',
      log.url,
      '--token-file',
      at('token'),
      ...flags,
      file,
    ]);

  test('init writes a root key (mode 0600) and refuses to overwrite it or a bad name', async () => {
    expect(vkey.startsWith(`${NAME}+`)).toBe(true);
    expect(readFileSync(at('root.key'), 'utf8')).toMatch(
      /^PRIVATE\+KEY\+cli-builder\.example\.org\+/,
    );
    const again = await runAccord(['identity', 'init', '--name', NAME, '--out', at('root.key')]);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/exists/);
    const bad = await runAccord(['identity', 'init', '--name', 'a b', '--out', at('x.key')]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--name/);
  });

  test('statement, publish and show: a rotation with overlap and a revocation', async () => {
    const s0 = await runAccord([
      'identity',
      'statement',
      '--root',
      at('root.key'),
      '--log',
      `${logKey(1, 'cli-builder.example.org/log')}@${now - 86_400}`,
      '--nix',
      CACHE_NIXOS_ORG_KEY,
      '--out',
      at('s0'),
    ]);
    expect(s0.stderr).toBe('');
    expect(s0.code).toBe(0);
    const p0 = await publish(at('s0'), '--json');
    expect(p0.stderr).toBe('');
    expect(JSON.parse(p0.stdout)).toEqual({ index: 0 });
    const s1 = await runAccord([
      'identity',
      'statement',
      '--root',
      at('root.key'),
      '--previous',
      at('s0'),
      '--log',
      `${logKey(1, 'cli-builder.example.org/log')}@..${now + 7 * 86_400}`,
      '--log',
      logKey(2, 'cli-builder.example.org/log'),
      '--nix',
      CACHE_NIXOS_ORG_KEY,
      '--revoke',
      `log:${logKey(0, 'cli-builder.example.org/log')}@2026-01-01`,
      '--out',
      at('s1'),
    ]);
    expect(s1.stderr).toBe('');
    expect(s1.code).toBe(0);
    const text = readFileSync(at('s1'), 'utf8');
    expect(text).toMatch(
      /^accord\/keys\/v1\nidentity cli-builder\.example\.org\nsequence 1\nprevious /,
    );
    expect(text).toContain(`revoke log ${logKey(0, 'cli-builder.example.org/log')} 1767225600\n`);
    const p1 = await publish(at('s1'));
    expect(p1.stdout).toBe('1\n');
    const again = await publish(at('s1'));
    expect(again.stdout).toBe('1\n');

    const show = await runAccord([
      'identity',
      'show',
      '--root',
      vkey,
      '--json',
      at('s1'),
      at('s0'),
    ]);
    expect(show.code).toBe(0);
    const state = JSON.parse(show.stdout) as {
      status: string;
      sequence: number;
      keys: { kind: string; status: string }[];
    };
    expect(state).toMatchObject({ status: 'ok', sequence: 1 });
    expect(state.keys.map((k) => `${k.kind} ${k.status}`)).toEqual([
      'log valid',
      'log valid',
      'nix valid',
    ]);
    const later = await runAccord([
      'identity',
      'show',
      '--root',
      vkey,
      '--at',
      String(now + 8 * 86_400),
      at('s0'),
      at('s1'),
    ]);
    expect(later.stdout).toMatch(/expired/);
    const folded = foldStatements(parseVerifierKey(vkey), [
      readFileSync(at('s0')),
      readFileSync(at('s1')),
    ]);
    expect(folded.state === undefined ? 0 : logKeysAt(folded.state, now + 8 * 86_400).length).toBe(
      1,
    );
  });

  test('a statement the chain would refuse is not written; the log refuses a forged one', async () => {
    const retro = await runAccord([
      'identity',
      'statement',
      '--root',
      at('root.key'),
      '--previous',
      at('s1'),
      '--log',
      `${logKey(3, 'cli-builder.example.org/log')}@${now - 100}`,
      '--out',
      at('s2-retro'),
    ]);
    expect(retro.code).toBe(2);
    expect(retro.stderr).toMatch(/retroactive/);
    expect(existsSync(at('s2-retro'))).toBe(false);
    const other = await runAccord(['identity', 'init', '--name', NAME, '--out', at('thief.key')]);
    expect(other.code).toBe(0);
    const forged = await runAccord([
      'identity',
      'statement',
      '--root',
      at('thief.key'),
      '--log',
      logKey(3, 'cli-builder.example.org/log'),
      '--out',
      at('forged'),
    ]);
    expect(forged.code).toBe(0);
    const refused = await publish(at('forged'));
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/400 statement 0: not signed by the root key/);
    const show = await runAccord([
      'identity',
      'show',
      '--root',
      vkey,
      at('s0'),
      at('s1'),
      at('forged'),
    ]);
    expect(show.code).toBe(3);
    expect(show.stdout).toMatch(/not the root's/);
  });

  test('--help on each subcommand; usage errors name the option', async () => {
    for (const sub of ['init', 'statement', 'publish', 'show']) {
      const r = await runAccord(['identity', sub, '--help']);
      expect(r.code).toBe(0);
      expect(r.stdout).toMatch(new RegExp(`^accord identity ${sub} — `));
    }
    expect((await runAccord(['identity', '--help'])).code).toBe(0);
    expect((await runAccord(['identity', 'nope'])).code).toBe(2);
    const noRoot = await runAccord(['identity', 'statement']);
    expect(noRoot.code).toBe(2);
    expect(noRoot.stderr).toMatch(/--root FILE is required/);
    const badTime = await runAccord([
      'identity',
      'statement',
      '--root',
      at('root.key'),
      '--issued',
      'yesterday',
    ]);
    expect(badTime.code).toBe(2);
    expect(badTime.stderr).toMatch(/--issued: "yesterday" is not a time/);
    const badKey = await runAccord([
      'identity',
      'statement',
      '--root',
      at('root.key'),
      '--nix',
      'nope',
    ]);
    expect(badKey.code).toBe(2);
    expect(badKey.stderr).toMatch(/--nix nope/);
  });

  test('log serve --identity refuses a private key and the log key itself', async () => {
    const priv = await runAccord([
      'log',
      'serve',
      '--origin',
      'x.example/log',
      '--data-dir',
      at('d1'),
      '--identity',
      at('root.key'),
    ]);
    expect(priv.code).toBe(2);
    expect(priv.stderr).toMatch(/--identity .*private key/);
    writeFileSync(at('same.vkey'), `${vkey}\n`);
    const same = await runAccord([
      'log',
      'serve',
      '--origin',
      NAME,
      '--data-dir',
      at('d2'),
      '--identity',
      at('same.vkey'),
    ]);
    expect(same.code).toBe(2);
    expect(same.stderr).toMatch(/--identity .*must not be the log's key/);
    expect(existsSync(at('d2'))).toBe(false);
  });
});
