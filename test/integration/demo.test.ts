/**
 * `accord demo`: the whole network from one command. With real Nix its proxy serves the good
 * closure, refuses the single-builder path and gives the honest bytes of the tampered one;
 * without Nix it runs on generated claims. Ctrl-C stops it cleanly; one demo per directory.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { formatHash, parseNarInfo } from '../../src/nix/index.js';
import { ACCORD_BIN, runAccord } from '../support/cli.js';
import { nixEnv, substituteFrom } from '../support/nix.js';
import { HAVE_NIX, requireAvailable, shouldRun } from '../support/requirements.js';

interface DemoJson {
  dir: string;
  withNix: boolean;
  proxy: { url: string; publicKey: string };
  monitor: { url: string };
  paths: { app: string; lib: string; tampered: string; single: string };
}

/** Starts `accord demo --json …` and resolves with the process and what it printed. */
function startDemo(args: readonly string[]): Promise<{ child: ChildProcess; net: DemoJson }> {
  const child = spawn(
    process.execPath,
    [ACCORD_BIN, 'demo', '--json', '--port-base', '0', ...args],
    {
      env: nixEnv,
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let out = '';
  let err = '';
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  return new Promise((resolve, reject) => {
    child.on('exit', (code) => reject(new Error(`accord demo exited with ${code}:\n${err}`)));
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      if (!out.includes('\n')) return;
      child.removeAllListeners('exit');
      resolve({ child, net: JSON.parse(out) as DemoJson });
    });
  });
}

/** Sends SIGINT and resolves with the exit code. */
function interrupt(child: ChildProcess): Promise<number | null> {
  return new Promise((resolve) => {
    child.once('exit', (code) => resolve(code));
    child.kill('SIGINT');
  });
}

const hashPart = (path: string) => path.slice('/nix/store/'.length, '/nix/store/'.length + 32);

describe('accord demo', () => {
  const running: ChildProcess[] = [];
  afterAll(() => {
    for (const c of running) c.kill('SIGKILL');
  });

  test('without Nix: the proxy serves what 2 of 3 agree on, with the honest hash, and refuses the single-builder path; one demo per directory; Ctrl-C exits 0', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'accord-demo-'));
    const { child, net } = await startDemo(['--dir', dir, '--no-nix']);
    running.push(child);
    expect(net.withNix).toBe(false);
    const narinfo = async (path: string) => {
      const res = await fetch(`${net.proxy.url}/${hashPart(path)}.narinfo`);
      return { status: res.status, text: await res.text() };
    };
    expect((await narinfo(net.paths.app)).status).toBe(200);
    expect((await narinfo(net.paths.lib)).status).toBe(200);
    expect((await narinfo(net.paths.single)).status).toBe(404);
    const tampered = await narinfo(net.paths.tampered);
    expect(tampered.status).toBe(200);
    // A and B's NAR hash, not C's: the proxy's /explain shows both answers.
    const explain = (await (
      await fetch(`${net.proxy.url}/explain/${hashPart(net.paths.tampered)}`)
    ).json()) as {
      answers: { answer: { narHash: string }; supporters: string[] }[];
    };
    const honest = explain.answers.find((a) => a.supporters.length === 2);
    expect(honest?.supporters).toEqual([
      'demo.accord.example/builder-a',
      'demo.accord.example/builder-b',
    ]);
    expect(formatHash(parseNarInfo(tampered.text).narHash)).toBe(honest?.answer.narHash);
    // The monitor reports the disagreement, builder C in the minority.
    const report = (await (
      await fetch(`${net.monitor.url}/paths/${hashPart(net.paths.tampered)}`)
    ).json()) as {
      agree: boolean;
    };
    expect(report.agree).toBe(false);

    const second = await runAccord(['demo', '--dir', dir, '--no-nix', '--port-base', '0']);
    expect(second.code).toBe(1);
    expect(second.stderr).toMatch(/in use by another Accord server/);

    expect(await interrupt(child)).toBe(0);
  });

  test.runIf(shouldRun(HAVE_NIX))(
    'with real Nix: nix-store -r through the demo proxy gets the good closure and the honest tampered path, and is refused the single-builder path',
    async () => {
      requireAvailable(HAVE_NIX, 'nix');
      const dir = mkdtempSync(join(tmpdir(), 'accord-demo-nix-'));
      const { child, net } = await startDemo(['--dir', dir]);
      running.push(child);
      expect(net.withNix).toBe(true);
      const store = join(dir, 'try');
      const realise = (path: string) =>
        substituteFrom(net.proxy.url, net.proxy.publicKey, [path], ['--store', store]);
      await realise(net.paths.app);
      expect(readFileSync(join(store, net.paths.app), 'utf8')).toBe(
        `an app that uses ${net.paths.lib}\n`,
      );
      expect(readFileSync(join(store, net.paths.lib), 'utf8')).toBe(
        'a library every builder built the same\n',
      );
      await realise(net.paths.tampered);
      expect(readFileSync(join(store, net.paths.tampered), 'utf8')).toBe(
        'the honest output of this path\n',
      );
      await expect(realise(net.paths.single)).rejects.toThrow(/single/);
      expect(await interrupt(child)).toBe(0);
    },
  );
});
