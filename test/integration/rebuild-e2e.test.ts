/**
 * Rebuilders end to end with real Nix: a reference builder's log and cache hold a closure (an
 * app and its library) and a path that does not reproduce. A 2-of-3 proxy refuses all of
 * them (only one builder claims them) and reports the demand to the monitor; two rebuilders,
 * each with its own log and key, take the monitor's wanted list and rebuild it on this
 * machine's store (with --check, as the reference's outputs are here). Afterwards the proxy
 * serves the closure through `nix-store -r` into another store, still refuses the path that
 * does not reproduce (three builds, three answers), and the dashboard names the file that
 * differs.
 */
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { pathInfoClaims } from '../../src/host/index.js';
import { type MonitorService, startMonitor } from '../../src/monitor/index.js';
import { parseReporters } from '../../src/demand/index.js';
import {
  formatNixPublicKey,
  formatNixSecretKey,
  generateNixSecretKey,
} from '../../src/nix/index.js';
import { parsePolicy } from '../../src/policy/index.js';
import { type ProxyService, loadProxyConfig, startProxy } from '../../src/proxy/index.js';
import { silentLogger } from '../../src/server/index.js';
import { runAccord } from '../support/cli.js';
import { type TestLog, startTestLog } from '../support/log.js';
import { NIX_CONFIG, nix, nixEnv, substituteFrom } from '../support/nix.js';
import { HAVE_NIX, requireAvailable, shouldRun } from '../support/requirements.js';

const exec = promisify(execFile);
const hashPart = (path: string) => path.slice('/nix/store/'.length, '/nix/store/'.length + 32);

describe.runIf(shouldRun(HAVE_NIX))('rebuilders end to end with real Nix', () => {
  const dir = mkdtempSync(join(tmpdir(), 'accord-rebuild-e2e-'));
  const logs: TestLog[] = [];
  let monitor: MonitorService;
  let proxy: ProxyService;
  let proxyKey = '';
  let skew = 0;
  const out: Record<'lib' | 'app' | 'unstable', string> = { lib: '', app: '', unstable: '' };

  beforeAll(async () => {
    requireAvailable(HAVE_NIX, 'Nix');
    const salt = `${Date.now()}`;
    const file = join(dir, 'world.nix');
    writeFileSync(
      file,
      `let mk = name: script: derivation { inherit name; salt = "${salt}"; system = builtins.currentSystem; builder = "/bin/sh"; args = [ "-c" script ]; };
in rec {
  lib = mk "e2e-lib" "echo 'a library' > $out";
  app = mk "e2e-app" "echo 'an app using \${lib}' > $out";
  unstable = mk "e2e-unstable" "/bin/mkdir -p $out/share; echo 'the same' > $out/README; echo build $$ > $out/share/build-id";
}
`,
    );
    for (const attr of ['lib', 'app', 'unstable'] as const)
      out[attr] = (
        await exec('nix-build', ['--no-out-link', file, '-A', attr], { env: nixEnv })
      ).stdout.trim();
    // The reference builder: its cache and log hold the three paths.
    const reference = await startTestLog({ origin: 'reference.example/log' });
    const claims = await pathInfoClaims(Object.values(out));
    expect((await reference.submit(claims)).status).toBe(200);
    await reference.waitForSize(3);
    await nix('nix', [
      'copy',
      '--to',
      `file://${join(dir, 'cache-ref')}?compression=none`,
      out.app,
      out.unstable,
    ]);
    logs.push(reference);
    for (const n of [1, 2]) logs.push(await startTestLog({ origin: `rebuilder${n}.example/log` }));
    const policy = [
      ...logs.map((l) => `log ${l.vkey} ${l.url}`),
      `trust builders 2 ${logs.map((l) => l.origin).join(' ')}`,
      'decide builders',
      'quorum none',
      '',
    ].join('\n');
    writeFileSync(join(dir, 'policy'), policy);
    const key = generateNixSecretKey('rebuild-e2e-proxy-1');
    proxyKey = formatNixPublicKey(key);
    writeFileSync(join(dir, 'proxy.sk'), formatNixSecretKey(key));
    const caches = new Map([
      [logs[0]?.origin ?? '', `file://${join(dir, 'cache-ref')}`],
      [logs[1]?.origin ?? '', `file://${join(dir, 'cache-1')}`],
      [logs[2]?.origin ?? '', `file://${join(dir, 'cache-2')}`],
    ]);
    monitor = await startMonitor({
      policy: parsePolicy(policy),
      statePath: join(dir, 'monitor.db'),
      storeDir: '/nix/store',
      logger: silentLogger,
      intervalMs: 0,
      timeoutMs: 5000,
      concurrency: 4,
      listen: { host: '127.0.0.1', port: 0 },
      caches,
      reporters: parseReporters(proxyKey),
    });
    await monitor.pollAll();
    writeFileSync(
      join(dir, 'proxy.toml'),
      `signing-key = "proxy.sk"\npolicy = "policy"\nstate = "proxy.db"\nnegative-ttl-seconds = 0\n` +
        `[[upstream]]\nurl = "file://${join(dir, 'cache-ref')}"\npriority = 10\n` +
        `[demand]\nmonitor = "${monitor.url ?? ''}"\nperiod-seconds = 60\nmin-requests = 1\n`,
    );
    proxy = await startProxy(
      loadProxyConfig(join(dir, 'proxy.toml')),
      silentLogger,
      '127.0.0.1:0',
      {
        now: () => Date.now() + skew,
      },
    );
  }, 300_000);
  afterAll(async () => {
    await proxy.close();
    await monitor.close();
    for (const log of logs) await log.close();
  });

  /** `nix-store -r` of `paths` into a store of its own, through the proxy only. */
  const realise = (store: string, paths: string[]) =>
    substituteFrom(proxy.url, proxyKey, paths, ['--store', join(dir, store)]);

  test('refused first; after two rebuilders took the wanted list, the closure substitutes, the unstable path does not, and the dashboard names the differing file', async () => {
    // Nix asks the proxy for each path: all refused, one builder only.
    for (const p of [out.lib, out.app, out.unstable])
      await expect(realise('before', [p])).rejects.toThrow();
    skew = 61_000;
    await proxy.demand?.sendDue();
    const wanted = await (await fetch(`${monitor.url ?? ''}/wanted?k=2&format=text`)).text();
    expect(wanted.split('\n').filter((l) => l !== '').length).toBe(3);

    for (const n of [1, 2]) {
      const log = logs[n] as TestLog;
      const token = join(dir, `token-${n}`);
      writeFileSync(token, `${log.token}\n`);
      mkdirSync(join(dir, `state-${n}`), { recursive: true });
      const run = await runAccord(
        [
          'rebuild',
          '--wanted',
          monitor.url ?? '',
          '--k',
          '2',
          '--log',
          log.url,
          '--token-file',
          token,
          '--cache-dir',
          join(dir, `cache-${n}`),
          '--state',
          join(dir, `state-${n}`, 'state.db'),
          '--spool',
          join(dir, `state-${n}`, 'spool.db'),
          '--json',
        ],
        { env: { NIX_CONFIG } },
      );
      expect(run.code, run.stderr).toBe(0);
      expect(JSON.parse(run.stdout)).toMatchObject({ built: 2, differs: 1, failed: 0 });
      await log.waitForSize(3);
    }
    await monitor.pollAll();

    // The closure substitutes into a new store, with its contents; the unstable path does not.
    await realise('after', [out.app]);
    const content = await exec('cat', [join(dir, 'after', out.app)]);
    expect(content.stdout).toBe(`an app using ${out.lib}\n`);
    await expect(realise('after', [out.unstable])).rejects.toThrow();
    const explain = (await (
      await fetch(`${proxy.url}/explain/${hashPart(out.unstable)}`)
    ).json()) as {
      verdict: string;
    };
    expect(explain.verdict).toBe('no-quorum');

    // The dashboard: a disagreement about the unstable path, naming the file that differs.
    type Diff = { entries?: { path: string }[]; status?: string } | null;
    let diff: Diff = null;
    for (let i = 0; i < 100 && (diff === null || diff.entries === undefined); i++) {
      const page = (await (
        await fetch(`${monitor.url ?? ''}/paths/${hashPart(out.unstable)}`)
      ).json()) as { diff: Diff; findings: { kind: string }[] };
      diff = page.diff;
      expect(page.findings.map((f) => f.kind)).toContain('disagreement');
      if (diff?.entries === undefined) await new Promise((r) => setTimeout(r, 100));
    }
    expect(diff?.entries?.map((e) => e.path)).toEqual(['share/build-id']);

    // A closure as the work list: its paths fewer than k = 4 builders agree on (all of them).
    const log = logs[2] as TestLog;
    const closure = await runAccord(
      [
        'rebuild',
        '--closure',
        out.app,
        '--monitor',
        monitor.url ?? '',
        '--k',
        '4',
        '--log',
        log.url,
        '--token-file',
        join(dir, 'token-2'),
        '--state',
        join(dir, 'state-closure', 'state.db'),
        '--spool',
        join(dir, 'state-closure', 'spool.db'),
        '--json',
      ],
      { env: { NIX_CONFIG } },
    );
    expect(closure.code, closure.stderr).toBe(0);
    const report = JSON.parse(closure.stdout) as {
      built: number;
      items: { item: { storePath: string; drv?: string } }[];
    };
    expect(report.built).toBe(2);
    expect(report.items.map((i) => i.item.storePath).sort()).toEqual([out.app, out.lib].sort());
    for (const i of report.items) expect(i.item.drv).toMatch(/\.drv$/);
  }, 300_000);
});
