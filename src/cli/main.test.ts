import { readFileSync } from 'node:fs';
import { describe, expect, test } from 'vitest';
import { runAccord } from '../../test/support/cli.js';

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
});
