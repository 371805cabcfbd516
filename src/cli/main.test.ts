import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { runAccord } from '../../test/support/cli.js';
import { formatNixSecretKey, generateNixSecretKey } from '../nix/index.js';
import { SIG_TYPE_ED25519, generateKey } from '../tlog/index.js';

describe('accord (built binary)', () => {
  test('--version prints the package version', async () => {
    const pkg = JSON.parse(
      readFileSync(new URL('../../package.json', import.meta.url), 'utf8'),
    ) as {
      version: string;
    };
    const r = await runAccord(['--version']);
    expect(r).toMatchObject({ code: 0, stdout: `accord ${pkg.version}\n` });
  });

  test('--help lists usage and exit codes', async () => {
    const r = await runAccord(['--help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^accord — /);
    expect(r.stdout).toContain(
      'Exit codes: 0 success, 1 the command failed, 2 bad usage, 3 the monitor has findings',
    );
    for (const command of [
      'audit',
      'explain',
      'keygen',
      'log',
      'monitor',
      'nar',
      'proxy',
      'submit',
      'witness',
    ])
      expect(r.stdout).toMatch(new RegExp(`^  ${command} +\\S`, 'm'));
  });

  test('a mistyped command or option names the nearest one, in one line and exit 2', async () => {
    const command = await runAccord(['sumbit']);
    expect(command.code).toBe(2);
    expect(command.stderr).toBe(
      `accord: unknown command "sumbit" (did you mean 'submit'?); see 'accord --help'\n`,
    );
    const option = await runAccord(['log', 'serve', '--orign', 'x']);
    expect(option.code).toBe(2);
    expect(option.stderr.split('\n')[0]).toBe(
      'accord log serve: unknown option --orign (did you mean --origin?)',
    );
    const far = await runAccord(['submit', '--frobnicate']);
    expect(far.stderr.split('\n')[0]).toBe('accord submit: unknown option --frobnicate');
  });

  test('no command prints help and exits 2; an unknown command exits 2 with a message', async () => {
    expect((await runAccord([])).code).toBe(2);
    const r = await runAccord(['frobnicate']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('unknown command "frobnicate"');
  });

  describe('a mistake gets one line naming the option, what was wrong and what is expected', () => {
    const dir = mkdtempSync(join(tmpdir(), 'accord-mistakes-'));
    const nixKey = join(dir, 'nix.sk');
    writeFileSync(nixKey, formatNixSecretKey(generateNixSecretKey('n-1')));
    const logKey = join(dir, 'log.key');
    writeFileSync(logKey, `${generateKey('m.example/log', SIG_TYPE_ED25519).signerKey}\n`);
    writeFileSync(join(dir, 'proxy.toml'), 'signing-key = "log.key"\npolicy = "p"\n');
    writeFileSync(join(dir, 'empty'), '');
    writeFileSync(join(dir, 'bad-policy'), 'garbage\n');
    writeFileSync(
      join(dir, 'policy'),
      `log ${generateKey('a.example/log', SIG_TYPE_ED25519).verifierKey} http://127.0.0.1:9\ntrust t any a.example/log\ndecide t\nquorum none\n`,
    );
    writeFileSync(
      join(dir, 'disk.toml'),
      `signing-key = "nix.sk"\npolicy = "policy"\nstate = "s.db"\nlisten = "127.0.0.1:0"\nnar-disk-cache = "empty/nars"\n[[upstream]]\nurl = "http://127.0.0.1:9"\n`,
    );
    test.each([
      [
        ['submit', '--log', 'ftp://x', '--token-file', 'f'],
        2,
        `accord submit: --log "ftp://x": want the log's http(s):// URL`,
      ],
      [
        ['submit', '--log', 'http://x', '--token-file', join(dir, 'none')],
        2,
        `accord submit: --token-file ${join(dir, 'none')}: no such file`,
      ],
      [
        ['submit', '--log', 'http://x', '--token-file', join(dir, 'empty'), '/nix/store/x'],
        2,
        `accord submit: --token-file ${join(dir, 'empty')}: the file is empty: want the token from accord log token`,
      ],
      [
        ['log', 'serve', '--key', nixKey, '--data-dir', join(dir, 'd')],
        2,
        `accord log serve: --key ${nixKey}: this is a Nix secret key (nix key generate-secret); make a log or witness key with 'accord keygen'`,
      ],
      [
        ['monitor', 'serve', '--policy', join(dir, 'bad-policy')],
        2,
        `accord monitor serve: --policy ${join(dir, 'bad-policy')}: policy line 1: unknown keyword garbage`,
      ],
      [
        ['proxy', '--config', join(dir, 'disk.toml')],
        1,
        `accord proxy: config: nar-disk-cache ${join(dir, 'empty', 'nars')}: ENOTDIR`,
      ],
      [
        ['proxy', '--config', join(dir, 'proxy.toml')],
        1,
        `accord proxy: config: signing-key ${logKey} is a log key ('accord keygen'); the proxy signs narinfos with a Nix secret key (nix key generate-secret --key-name NAME) or a Guix one (guix archive --generate-key)`,
      ],
    ])('accord %j', async (args, code, line) => {
      const r = await runAccord(args);
      expect(r.code).toBe(code);
      expect(r.stderr.split('\n')[0]).toBe(line);
    });
  });
});
