/**
 * The trust kernel end to end with real Nix: three builder logs, one of them reached only
 * through a front that corrupts one tile response in three (a flaky CDN), a proxy needing all
 * three builders, and a monitor following the logs through the same front with the proxy's
 * gossip. The honest log is never distrusted nor flagged and its paths substitute; then the
 * log switches to another history under the same key (a real fork), which is refused and
 * reported with evidence that verifies offline.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { type MonitorService, startMonitor } from '../../src/monitor/index.js';
import {
  formatNixPublicKey,
  formatNixSecretKey,
  generateNixSecretKey,
} from '../../src/nix/index.js';
import { parsePolicy } from '../../src/policy/index.js';
import { type ProxyService, loadProxyConfig, startProxy } from '../../src/proxy/index.js';
import { silentLogger } from '../../src/server/index.js';
import { parseVerifierKey, verifyForkEvidence } from '../../src/tlog/index.js';
import { runAccord } from '../support/cli.js';
import { gateway } from '../support/gateway.js';
import { type TestLog, startTestLog } from '../support/log.js';
import { build, isValid, nix, shDerivation, substituteFrom } from '../support/nix.js';
import { HAVE_NIX, requireAvailable, shouldRun } from '../support/requirements.js';
import { type StaticServer, serveDirectory } from '../support/static-server.js';

const run = `kernel-e2e-${Date.now()}`;
const CORRUPT_EVERY = 3;

describe.runIf(shouldRun(HAVE_NIX))('a flaky CDN in front of an honest log, then a fork', () => {
  const dir = mkdtempSync(join(tmpdir(), 'accord-kernel-e2e-'));
  const cacheDir = join(dir, 'cache');
  const logs: TestLog[] = [];
  let shadow: TestLog; // builder 3's key, another history
  let front: Awaited<ReturnType<typeof gateway>>;
  let frontTarget = '';
  let cache: StaticServer;
  let proxy: ProxyService;
  let monitor: MonitorService;
  let proxyPublic = '';
  let tiles = 0;
  let corrupted = 0;
  let fresh = 0;
  let spool = 0;

  async function submit(log: TestLog, paths: string[]) {
    const tokenFile = join(dir, `token-${log.origin.replace(/\W/g, '_')}`);
    writeFileSync(tokenFile, log.token);
    const r = await runAccord([
      'submit',
      '--json',
      '--log',
      log.url,
      '--token-file',
      tokenFile,
      '--spool',
      join(dir, `spool${spool++}.db`),
      ...paths,
    ]);
    expect(JSON.parse(r.stdout)).toMatchObject({ submitted: paths.length, spooled: 0 });
    await log.waitForSize((await log.service.storage.state()).nextIndex);
  }

  const buildOne = async (name: string) =>
    (await build(shDerivation(name, `/bin/mkdir $out; echo ${name} > $out/data`, run)))[0] ?? '';

  const substitute = (paths: string[]) => substituteFrom(proxy.url, proxyPublic, paths);
  const valid = isValid;

  beforeAll(async () => {
    requireAvailable(HAVE_NIX, 'nix');
    const seed = randomBytes(32);
    logs.push(await startTestLog({ origin: 'k1.example/log' }));
    logs.push(await startTestLog({ origin: 'k2.example/log' }));
    logs.push(await startTestLog({ origin: 'k3.example/log', seed }));
    shadow = await startTestLog({ origin: 'k3.example/log', seed });
    frontTarget = logs[2]?.url ?? '';
    front = await gateway(() => frontTarget);
    // One hash tile or entry bundle in three comes back with a bit flipped.
    front.set(async (req, upstream) => {
      const body = Buffer.from(await upstream.arrayBuffer());
      if (req.headers['cache-control'] === 'no-cache') fresh++;
      if (!(req.url ?? '').startsWith('/tile/') || upstream.status !== 200 || body.length === 0)
        return { status: upstream.status, body };
      if (++tiles % CORRUPT_EVERY === 0) {
        corrupted++;
        body[body.length >> 1] = (body[body.length >> 1] ?? 0) ^ 0x20;
      }
      return { status: 200, body };
    });
    cache = await serveDirectory(cacheDir);
    const key = generateNixSecretKey('accord-kernel-e2e-1');
    proxyPublic = formatNixPublicKey(key);
    writeFileSync(join(dir, 'proxy.sk'), formatNixSecretKey(key));
    const policy = [
      `log ${logs[0]?.vkey ?? ''} ${logs[0]?.url ?? ''}`,
      `log ${logs[1]?.vkey ?? ''} ${logs[1]?.url ?? ''}`,
      `log ${logs[2]?.vkey ?? ''} ${front.url}`,
      `trust builders all ${logs.map((l) => l.origin).join(' ')}`,
      'decide builders',
      'quorum none',
      '',
    ].join('\n');
    writeFileSync(join(dir, 'policy'), policy);
    monitor = await startMonitor({
      policy: parsePolicy(policy),
      statePath: join(dir, 'monitor.db'),
      storeDir: '/nix/store',
      logger: silentLogger,
      intervalMs: 0,
      timeoutMs: 5000,
      concurrency: 2,
      listen: { host: '127.0.0.1', port: 0 },
    });
    writeFileSync(
      join(dir, 'proxy.toml'),
      [
        'signing-key = "proxy.sk"',
        'policy = "policy"',
        'state = "proxy.db"',
        'log-timeout-ms = 3000',
        'narinfo-deadline-ms = 6000',
        `monitors = ["${monitor.url ?? ''}"]`,
        `[[upstream]]\nurl = "${cache.url}"`,
        '',
      ].join('\n'),
    );
    proxy = await startProxy(loadProxyConfig(join(dir, 'proxy.toml')), silentLogger, '127.0.0.1:0');
  }, 120_000);

  afterAll(async () => {
    await proxy.close();
    await monitor.close();
    await front.close();
    await cache.close();
    for (const l of [...logs, shadow]) await l.close();
  });

  test('as the logs grow, every path substitutes; the log is never distrusted nor flagged', async () => {
    for (let round = 0; round < 5; round++) {
      const path = await buildOne(`round-${round}`);
      await nix('nix', ['copy', '--to', `file://${cacheDir}?compression=none`, path]);
      for (const log of logs) await submit(log, [path]);
      await nix('nix-store', ['--delete', path]);
      await substitute([path]);
      expect(await valid(path)).toBe(true);
      // The monitor follows too: a poll that met a bad bundle or tile is simply done again.
      for (let tries = 0; tries < 4; tries++) {
        const results = await monitor.pollAll();
        if (results.every((r) => r.error === undefined)) break;
      }
      await proxy.gossip.drain();
    }
    expect(corrupted).toBeGreaterThan(2);
    expect(fresh).toBeGreaterThan(0); // bad tiles were read again, bypassing caches
    expect(proxy.state.distrusted('k3.example/log')).toBeUndefined();
    expect(monitor.store.findings()).toEqual([]);
    expect(monitor.store.log('k3.example/log')?.verifiedSize).toBe(5);
  }, 180_000);

  test('the same key showing another history is a fork: refused, distrusted and reported', async () => {
    // The shadow log signs a longer, different history under builder 3's key.
    const paths = [await buildOne('shadow-0'), await buildOne('shadow-1')];
    const victim = paths[1] ?? '';
    await nix('nix', ['copy', '--to', `file://${cacheDir}?compression=none`, ...paths]);
    for (let i = 0; i < 6; i++) await submit(shadow, [paths[i % 2] ?? '']);
    await submit(logs[0] as TestLog, [victim]);
    await submit(logs[1] as TestLog, [victim]);
    await nix('nix-store', ['--delete', ...paths]);
    frontTarget = shadow.url;
    await expect(substitute([victim])).rejects.toThrow();
    expect(await valid(victim)).toBe(false);
    const distrusted = proxy.state.distrusted('k3.example/log');
    expect(distrusted?.reason).toMatch(/^fork: /);
    const key = parseVerifierKey(logs[2]?.vkey ?? '');
    expect(verifyForkEvidence(distrusted?.evidence ?? '', [key]).origin).toBe('k3.example/log');
    // The monitor, following through the same front, reports it with its own evidence.
    await proxy.gossip.drain();
    for (let tries = 0; tries < 4; tries++) {
      await monitor.pollAll();
      if (monitor.store.findings().some((f) => f.kind === 'fork')) break;
    }
    const forks = monitor.store.findings().filter((f) => f.kind === 'fork');
    expect(forks.length).toBeGreaterThan(0);
    for (const f of forks) {
      const { evidence } = f.evidence as { evidence: string };
      expect(verifyForkEvidence(evidence, [key]).origin).toBe('k3.example/log');
    }
    // And the evidence checks out offline with the CLI, with only the log's key.
    const file = join(dir, 'fork.evidence');
    writeFileSync(file, distrusted?.evidence ?? '');
    expect((await runAccord(['verify-evidence', file, '--key', logs[2]?.vkey ?? ''])).code).toBe(0);
  }, 120_000);
});
