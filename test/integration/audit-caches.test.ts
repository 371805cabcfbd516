/**
 * `accord audit` with caches' signatures as votes, with real Nix: one builder log and two
 * binary caches signing with their own keys (nix copy --to file://…?secret-key=), 2 of the 3
 * must agree. Online, the signatures are votes; offline, with the log stopped, the stored
 * signatures and claim decide, and neither the log nor any cache is asked anything.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { type Server, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { ClaimJson } from '../../src/claim/index.js';
import { pathInfoClaims } from '../../src/host/index.js';
import {
  formatNixPublicKey,
  formatNixSecretKey,
  generateNixSecretKey,
} from '../../src/nix/index.js';
import { runAccord } from '../support/cli.js';
import { type TestLog, startTestLog } from '../support/log.js';
import { build, nix, shDerivation } from '../support/nix.js';
import { HAVE_NIX, requireAvailable, shouldRun } from '../support/requirements.js';
import { type StaticServer, serveDirectory } from '../support/static-server.js';

const run = `audit-caches-${Date.now()}-${randomBytes(3).toString('hex')}`;

interface AuditJson {
  counts: Record<string, number>;
  failures: { path: string; category: string; evidence: { caches: unknown[] } }[];
}

describe.runIf(shouldRun(HAVE_NIX))('accord audit with signature votes from two caches', () => {
  const dir = mkdtempSync(join(tmpdir(), 'accord-audit-caches-'));
  const config = join(dir, 'proxy.toml');
  let log: TestLog | undefined;
  let port = 0;
  const caches: StaticServer[] = [];
  const claims: ClaimJson[] = [];
  let signedByOne = '';
  let signedByBoth = '';

  const audit = async (args: string[], input?: string) => {
    const r = await runAccord(['audit', '--config', config, '--json', ...args], {
      ...(input === undefined ? {} : { input }),
    });
    return { code: r.code, stderr: r.stderr, json: JSON.parse(r.stdout || '{}') as AuditJson };
  };

  beforeAll(async () => {
    requireAvailable(HAVE_NIX, 'nix');
    log = await startTestLog({ origin: 'audit-caches.example/log' });
    port = Number(new URL(log.url).port);
    const drv = (name: string) =>
      shDerivation(`${name}-${run}`, `/bin/mkdir $out; echo ${name} > $out/data`, run);
    const built = await build(`{ a = ${drv('both')}; b = ${drv('one')}; }`);
    claims.push(...(await pathInfoClaims(built)));
    signedByBoth = built.find((p) => p.includes('-both-')) ?? '';
    signedByOne = built.find((p) => p.includes('-one-')) ?? '';
    // The log claims neither: each path's votes are the caches' signatures alone.
    const keys = [1, 2].map((i) => generateNixSecretKey(`audit-cache${i}-1`));
    for (const [i, key] of keys.entries()) {
      const keyFile = join(dir, `cache${i}.sk`);
      writeFileSync(keyFile, formatNixSecretKey(key));
      const paths = i === 0 ? [signedByBoth, signedByOne] : [signedByBoth];
      const url = `file://${join(dir, `cache${i}`)}?compression=none&secret-key=${keyFile}`;
      await nix('nix', ['copy', '--to', url, ...paths]);
      caches.push(await serveDirectory(join(dir, `cache${i}`)));
    }
    writeFileSync(join(dir, 'proxy.sk'), formatNixSecretKey(generateNixSecretKey('audit-proxy')));
    writeFileSync(
      join(dir, 'policy'),
      [
        `log ${log.vkey} ${log.url}`,
        ...caches.map(
          (c, i) =>
            `cache c${i + 1} ${c.url} ${formatNixPublicKey(keys[i] ?? generateNixSecretKey('none'))}`,
        ),
        `trust members 2 ${log.origin} c1 c2`,
        'decide members',
        'quorum none',
        '',
      ].join('\n'),
    );
    writeFileSync(
      config,
      ['signing-key = "proxy.sk"', 'policy = "policy"', 'state = "proxy.db"', ''].join('\n'),
    );
  }, 120_000);

  afterAll(async () => {
    for (const c of caches) await c.close();
    await log?.close().catch(() => undefined);
  });

  test('accord audit counts the caches signatures as votes: both signed is ok, one signature is not enough', async () => {
    const r = await audit(['--paths', '-'], `${signedByBoth}\n${signedByOne}\n`);
    expect(r.code, r.stderr).toBe(1);
    expect(r.json.counts).toMatchObject({ ok: 1, 'no-quorum-now': 1 });
    expect(r.json.failures.map((f) => [f.path, f.category])).toEqual([
      [signedByOne, 'no-quorum-now'],
    ]);
    expect(JSON.stringify(r.json.failures[0]?.evidence.caches)).toMatch(/"verifiedEarlier":false/);
    expect(claims).toHaveLength(2);
  });

  test('accord audit --offline decides from the stored signatures and asks no cache and no log', async () => {
    await log?.close();
    let connections = 0;
    const listener: Server = createServer((s) => {
      connections++;
      s.destroy();
    });
    await new Promise<void>((resolve) => listener.listen(port, '127.0.0.1', resolve));
    try {
      const before = caches.map((c) => c.requests.length);
      const r = await audit(['--offline', '--paths', list()]);
      expect(r.code, r.stderr).toBe(1);
      expect(r.json.counts).toMatchObject({ ok: 1, 'no-quorum-now': 1 });
      expect(JSON.stringify(r.json.failures[0]?.evidence.caches)).toMatch(/"verifiedEarlier":true/);
      expect(caches.map((c) => c.requests.length)).toEqual(before);
      expect(connections).toBe(0);
      // Online, the same audit asks the caches (and tries the log).
      await audit(['--paths', list()]);
      expect(caches.every((c, i) => c.requests.length > (before[i] ?? 0))).toBe(true);
      expect(connections).toBeGreaterThan(0);
    } finally {
      await new Promise((resolve) => listener.close(resolve));
    }
  });

  function list(): string {
    const file = join(dir, 'paths');
    writeFileSync(file, `${signedByBoth}\n${signedByOne}\n`);
    return file;
  }
});
