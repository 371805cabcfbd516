/**
 * The deployment material in deploy/: each systemd unit passes `systemd-analyze verify` and
 * runs an `accord` command line the CLI accepts; the NixOS module parses.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { ACCORD_BIN, runAccord } from '../support/cli.js';
import {
  HAVE_NIX,
  HAVE_SYSTEMD_ANALYZE,
  requireAvailable,
  shouldRun,
} from '../support/requirements.js';

const DEPLOY = new URL('../../deploy/', import.meta.url).pathname;
const units = readdirSync(join(DEPLOY, 'systemd')).filter((f) => f.endsWith('.service'));

/** The unit's ExecStart arguments after the `accord` binary, with its specifiers filled in. */
function accordArgs(unit: string): string[] {
  const line = /^ExecStart=\/usr\/local\/bin\/accord (.*)$/m.exec(unit)?.[1];
  if (line === undefined) throw new Error('no ExecStart of /usr/local/bin/accord');
  return line
    .replace(/\$\w+/g, '')
    .replace(/%S/g, '/var/lib')
    .replace(/%d/g, '/run/credentials/unit')
    .split(/\s+/)
    .filter((a) => a !== '');
}

describe('deploy/systemd', () => {
  test('has a unit for each server', () => {
    expect(units.sort()).toEqual([
      'accord-log.service',
      'accord-monitor.service',
      'accord-proxy.service',
      'accord-witness.service',
    ]);
  });

  test.runIf(shouldRun(HAVE_SYSTEMD_ANALYZE))(
    'every unit passes systemd-analyze verify with no warning',
    () => {
      requireAvailable(HAVE_SYSTEMD_ANALYZE, 'systemd-analyze');
      const dir = mkdtempSync(join(tmpdir(), 'accord-units-'));
      for (const unit of units) {
        const text = readFileSync(join(DEPLOY, 'systemd', unit), 'utf8');
        expect(text).toMatch(/^DynamicUser=yes$/m);
        expect(text).toMatch(/^NoNewPrivileges=yes$/m);
        expect(text).toMatch(/^StateDirectory=/m);
        // verify checks that the command exists: point it at this checkout's binary.
        writeFileSync(join(dir, unit), text.replaceAll('/usr/local/bin/accord', ACCORD_BIN));
      }
      const r = spawnSync('systemd-analyze', ['verify', ...units.map((u) => join(dir, u))], {
        encoding: 'utf8',
      });
      expect(r.stderr).toBe('');
      expect(r.status).toBe(0);
    },
  );

  test.each(units)('%s runs a command line the CLI accepts', async (unit) => {
    const args = accordArgs(readFileSync(join(DEPLOY, 'systemd', unit), 'utf8'));
    // --help after the options: an unknown option or command still fails (exit 2).
    const r = await runAccord([...args, '--help']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
  });
});

describe('deploy/nixos', () => {
  test.runIf(shouldRun(HAVE_NIX))('module.nix parses', () => {
    requireAvailable(HAVE_NIX, 'nix');
    const r = spawnSync('nix-instantiate', ['--parse', join(DEPLOY, 'nixos', 'module.nix')], {
      encoding: 'utf8',
    });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
  });

  test('every command line in module.nix names options its command has', async () => {
    const text = readFileSync(join(DEPLOY, 'nixos', 'module.nix'), 'utf8');
    const blocks = text.split('systemd.services.accord-').slice(1);
    expect(blocks).toHaveLength(4);
    for (const block of blocks) {
      const command = /"\$\{accord\} ([a-z]+(?: serve)?) /.exec(block)?.[1];
      expect(command, block.slice(0, 40)).toBeDefined();
      const help = await runAccord([...(command ?? '').split(' '), '--help']);
      expect(help.code).toBe(0);
      const flags = [...block.matchAll(/(--[a-z-]+)/g)].map((m) => m[1] ?? '');
      expect(flags.length).toBeGreaterThan(0);
      for (const flag of flags)
        expect(help.stdout, `${flag} of accord ${command ?? ''}`).toMatch(
          new RegExp(`^\\s+${flag}\\b`, 'm'),
        );
    }
  });
});
