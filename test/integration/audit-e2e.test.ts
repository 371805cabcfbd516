/**
 * `accord audit` end to end with real Nix: paths substituted through a 2-of-3 proxy and paths
 * built here, then the builders' claims change, a log goes offline, a path becomes contested, a
 * log forks; the audit must name exactly the paths whose trust no longer holds, each with its
 * category and evidence, online and from stored evidence alone (with nothing fetched).
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { type Server, type Socket, createServer } from 'node:net';
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
import { loadProxyConfig, startProxy } from '../../src/proxy/index.js';
import { silentLogger } from '../../src/server/index.js';
import { makeClaim } from '../support/claims.js';
import { runAccord } from '../support/cli.js';
import { type TestLog, startTestLog } from '../support/log.js';
import { build, nix, shDerivation, substituteFrom } from '../support/nix.js';
import { HAVE_NIX, requireAvailable, shouldRun } from '../support/requirements.js';
import { type StaticServer, serveDirectory } from '../support/static-server.js';

const run = `audit-${Date.now()}-${randomBytes(3).toString('hex')}`;

interface AuditJson {
  offline: boolean;
  paths: number;
  counts: Record<string, number>;
  failures: {
    path: string;
    category: string;
    reason: string;
    differences?: string[];
    members?: string[];
    store: { narHash: string; narSize: number; references: string[] };
    advice: string[];
    evidence: { verdict: string; reason: string; answers: unknown[]; logs: unknown[] };
  }[];
}

/** Accepts connections and counts them, closing each at once: a log that is not there. */
async function countingListener(
  port: number,
): Promise<{ count: () => number; close(): Promise<void> }> {
  let connections = 0;
  const sockets = new Set<Socket>();
  const server: Server = createServer((socket) => {
    connections++;
    sockets.add(socket);
    socket.destroy();
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', resolve);
  });
  return {
    count: () => connections,
    close: () =>
      new Promise((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => {
          resolve();
        });
      }),
  };
}

describe.runIf(shouldRun(HAVE_NIX))('accord audit with real Nix, 3 builders, 2-of-3', () => {
  const dir = mkdtempSync(join(tmpdir(), 'accord-audit-'));
  const config = join(dir, 'proxy.toml');
  const seeds = [0, 1, 2].map(() => randomBytes(32));
  const logs: TestLog[] = [];
  const ports: number[] = [];
  let cache: StaticServer | undefined;
  /** The size of builder 3's tree when its log stopped (the proxy verified it). */
  let forkFrom = 0;
  /** The store's claims for each test path, by name. */
  const local = new Map<string, ClaimJson>();
  const path = (name: string) => local.get(name)?.storePath ?? '';
  const claimOf = (name: string): ClaimJson => {
    const c = local.get(name);
    if (c === undefined) throw new Error(`no path ${name}`);
    return c;
  };
  const names = {
    substituted: ['okA', 'okB', 'contested', 'twoOnly'],
    built: ['lateTwo', 'oneThree', 'diffHash', 'diffRefs', 'diffSize', 'unknown'],
  };
  const mine = () => [...names.substituted, ...names.built].map(path);

  const startLog = (i: number, fresh = false) =>
    startTestLog({
      origin: `audit-builder${i + 1}.example/log`,
      seed: seeds[i],
      store: { kind: 'sqlite', path: join(dir, `log${i}${fresh ? '-fork' : ''}.db`) },
      ...(ports[i] === undefined ? {} : { port: ports[i] }),
    });

  async function submit(i: number, claims: readonly ClaimJson[]) {
    const log = logs[i];
    if (log === undefined) throw new Error(`log ${i} is not running`);
    expect((await log.submit(claims)).status).toBe(200);
    await log.waitForSize((await log.service.storage.state()).nextIndex);
  }

  const audit = async (args: string[]) => {
    const r = await runAccord(['audit', '--config', config, '--json', ...args]);
    return { code: r.code, stderr: r.stderr, json: JSON.parse(r.stdout || '{}') as AuditJson };
  };
  const pathList = (paths: readonly string[]) => {
    const file = join(dir, `paths-${randomBytes(4).toString('hex')}`);
    writeFileSync(file, `${paths.join('\n')}\n`);
    return file;
  };
  const byPath = (report: AuditJson) => new Map(report.failures.map((f) => [f.path, f]));

  beforeAll(async () => {
    requireAvailable(HAVE_NIX, 'nix');
    for (let i = 0; i < 3; i++) {
      const log = await startLog(i);
      logs.push(log);
      ports.push(Number(new URL(log.url).port));
    }
    // One nix-build for every path: okB refers to okA, diffRefs to unknown.
    const drv = (name: string, extra = '') =>
      shDerivation(`${name}-${run}`, `/bin/mkdir $out; echo ${name} > $out/data;${extra}`, run);
    const attrs = [...names.substituted, ...names.built].map((name) => {
      const to = name === 'okB' ? 'okA' : name === 'diffRefs' ? 'unknown' : undefined;
      const ref = to === undefined ? '' : ` echo \${${to}} > $out/ref;`;
      return `${name} = ${drv(name, ref)};`;
    });
    const expr = `let ${attrs.join('\n')} in { inherit ${[...names.substituted, ...names.built].join(' ')}; }`;
    const built = await build(expr);
    for (const claim of await pathInfoClaims(built)) {
      const name = /-([A-Za-z]+)-audit-/.exec(claim.storePath)?.[1];
      if (name !== undefined) local.set(name, claim);
    }
    expect(local.size).toBe(names.substituted.length + names.built.length);
    // Every builder claims the paths substituted below, but for twoOnly (builders 1 and 2).
    const all = ['okA', 'okB', 'contested'].map(claimOf);
    await submit(0, [...all, claimOf('twoOnly'), claimOf('lateTwo')]);
    await submit(1, [...all, claimOf('twoOnly'), claimOf('lateTwo')]);
    await submit(2, all);
    // The substitutes come from one cache, through a 2-of-3 proxy.
    const cacheDir = join(dir, 'cache');
    await nix('nix', [
      'copy',
      '--to',
      `file://${cacheDir}?compression=none`,
      ...names.substituted.map(path),
    ]);
    cache = await serveDirectory(cacheDir);
    const key = generateNixSecretKey('accord-audit-test-1');
    writeFileSync(join(dir, 'proxy.sk'), formatNixSecretKey(key));
    writeFileSync(
      join(dir, 'policy'),
      [
        ...logs.map((l) => `log ${l.vkey} ${l.url}`),
        `trust builders 2 ${logs.map((l) => l.origin).join(' ')}`,
        'decide builders',
        'quorum none',
        '',
      ].join('\n'),
    );
    writeFileSync(
      config,
      [
        'listen = "127.0.0.1:0"',
        'signing-key = "proxy.sk"',
        'policy = "policy"',
        'state = "proxy.db"',
        'log-timeout-ms = 1500',
        'narinfo-deadline-ms = 4000',
        `[[upstream]]\nurl = "${cache.url}"`,
        '',
      ].join('\n'),
    );
    const proxy = await startProxy(loadProxyConfig(config), silentLogger);
    try {
      await nix('nix-store', ['--delete', ...names.substituted.map(path).reverse()]);
      await substituteFrom(proxy.url, formatNixPublicKey(key), [
        path('okB'),
        path('contested'),
        path('twoOnly'),
      ]);
    } finally {
      await proxy.close();
    }
  }, 240_000);

  afterAll(async () => {
    await cache?.close();
    for (const l of logs) await l.close().catch(() => undefined);
  });

  test('accord audit finds every path trusted with the same NAR ok, and a path no log knows unknown (exit 0)', async () => {
    const r = await audit(['--paths', pathList([...names.substituted, 'unknown'].map(path))]);
    expect(r.code).toBe(0);
    expect(r.json).toMatchObject({ offline: false, paths: 5, failures: [] });
    expect(r.json.counts).toMatchObject({ ok: 4, unknown: 1, 'no-quorum-now': 0, differs: 0 });
  });

  test('accord audit of the whole store names exactly the paths whose trust changed, with category and evidence (exit 1)', async () => {
    // A log goes offline: lateTwo (builders 1 and 2, never verified by the proxy) loses its
    // quorum; twoOnly (the same builders, verified when substituted) keeps it.
    await logs[1]?.close();
    // Builders 1 and 3 now claim another NAR for contested, and claim what the store holds of
    // oneThree, and something else than the store of each diff* path.
    const other = { ...claimOf('contested'), narHash: makeClaim(1, 1, run).narHash };
    const changed = (name: string, change: Partial<ClaimJson>) => ({ ...claimOf(name), ...change });
    const claims = [
      other,
      claimOf('oneThree'),
      changed('diffHash', { narHash: makeClaim(2, 1, run).narHash }),
      changed('diffRefs', { references: [] }),
      changed('diffSize', { narSize: claimOf('diffSize').narSize + 8 }),
    ];
    await submit(0, claims);
    await submit(2, claims);
    const r = await audit([]);
    expect(r.code, r.stderr).toBe(1);
    const failures = byPath(r.json);
    const expected: Record<string, string> = {
      [path('contested')]: 'conflict',
      [path('lateTwo')]: 'no-quorum-now',
      [path('diffHash')]: 'differs',
      [path('diffRefs')]: 'differs',
      [path('diffSize')]: 'differs',
    };
    const ours = [...failures.values()].filter((f) => mine().includes(f.path));
    expect(Object.fromEntries(ours.map((f) => [f.path, f.category]))).toEqual(expected);
    // Nothing else in the store fails: every other path is no log's business here.
    expect(failures.size).toBe(ours.length);
    expect(r.json.counts.unknown).toBeGreaterThanOrEqual(1);
    expect(r.json.paths).toBeGreaterThanOrEqual(mine().length);
    expect(failures.get(path('diffHash'))?.differences).toEqual(['nar-hash']);
    expect(failures.get(path('diffRefs'))?.differences).toEqual(['references']);
    expect(failures.get(path('diffSize'))?.differences).toEqual(['nar-size']);
    const contested = failures.get(path('contested'));
    expect(contested?.evidence.verdict).toBe('conflict');
    expect(contested?.evidence.answers).toHaveLength(2);
    expect(contested?.advice).toContain(
      `nix-store --delete ${path('contested')}   # refused while something uses it; then fetch it again through the proxy`,
    );
    expect(
      contested?.advice.some((a) => a.startsWith('nix-store --realise --check /nix/store/')),
    ).toBe(true);
    const late = failures.get(path('lateTwo'));
    expect(late?.evidence.verdict).toBe('no-quorum');
    expect(late?.reason).toMatch(
      /the store's NAR has 1 supporter \(audit-builder1\.example\/log\)/,
    );
    expect(JSON.stringify(late?.evidence.logs)).toMatch(/unreachable/);
    // The text form names each failing path with its category.
    const text = await runAccord(['audit', '--config', config, '--paths', pathList(mine())]);
    expect(text.code).toBe(1);
    expect(text.stdout).toMatch(/^10 paths audited \(logs asked now\): 4 ok, 1 unknown, 5 failing/);
    expect(text.stdout).toContain(`CONFLICT ${path('contested')}`);
    expect(text.stdout).toContain(`NO-QUORUM-NOW ${path('lateTwo')}`);
  }, 120_000);

  test('accord audit --offline with every log stopped answers from stored evidence, and asks no log', async () => {
    forkFrom = (await logs[2]?.service.storage.state())?.treeSize ?? 0;
    for (const l of logs) await l.close().catch(() => undefined);
    const listeners = await Promise.all(ports.map((p) => countingListener(p)));
    try {
      const r = await audit(['--offline', '--paths', pathList(mine())]);
      expect(r.code, r.stderr).toBe(1);
      expect(r.json.offline).toBe(true);
      expect(Object.fromEntries(r.json.failures.map((f) => [f.path, f.category]))).toEqual({
        [path('contested')]: 'conflict',
        [path('lateTwo')]: 'no-quorum-now',
        [path('diffHash')]: 'differs',
        [path('diffRefs')]: 'differs',
        [path('diffSize')]: 'differs',
      });
      expect(r.json.counts).toMatchObject({ ok: 4, unknown: 1 });
      // Without --offline the same audit would have tried each log.
      expect(listeners.map((l) => l.count())).toEqual([0, 0, 0]);
      const online = await audit(['--paths', pathList([path('okA')])]);
      expect(online.code).toBe(0); // verified earlier: the stored claims still count
      expect(listeners.map((l) => l.count()).every((n) => n > 0)).toBe(true);
    } finally {
      for (const l of listeners) await l.close();
    }
  }, 120_000);

  test('accord audit names a path whose supporter is now distrusted for a fork', async () => {
    // Builder 1's log comes back as it was; builder 3's comes back with another history under
    // the same key (a fork): larger than the tree the proxy verified, not an extension of it.
    const verified = forkFrom;
    expect(verified).toBeGreaterThan(0);
    logs[0] = await startLog(0);
    logs[2] = await startLog(2, true);
    await submit(
      2,
      Array.from({ length: verified + 2 }, (_, i) => makeClaim(i, 0, `${run}-fork`)),
    );
    const r = await audit(['--paths', pathList(mine())]);
    expect(r.code, r.stderr).toBe(1);
    const failures = byPath(r.json);
    const oneThree = failures.get(path('oneThree'));
    expect(oneThree?.category).toBe('distrusted');
    expect(oneThree?.members).toEqual(['audit-builder3.example/log']);
    expect(oneThree?.evidence.reason).toMatch(
      /distrusted for a fork: audit-builder3\.example\/log/,
    );
    // okA keeps builders 1 and 2 (stored): still ok.
    expect(failures.has(path('okA'))).toBe(false);
  }, 120_000);

  test('accord audit exits 3 when the store database cannot be read, 2 on a bad --paths list', async () => {
    const missing = await runAccord([
      'audit',
      '--config',
      config,
      '--store-db',
      join(dir, 'none.sqlite'),
    ]);
    expect(missing.code).toBe(3);
    expect(missing.stderr).toMatch(/cannot read the Nix database .*none\.sqlite/);
    const notDb = join(dir, 'not-a-db');
    writeFileSync(notDb, 'hello');
    expect((await runAccord(['audit', '--config', config, '--store-db', notDb])).code).toBe(3);
    const bad = await runAccord(['audit', '--config', config, '--paths', pathList(['/tmp/x'])]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/line 1: .*is not in the store/);
    const gone = `/nix/store/${'0'.repeat(32)}-gone`;
    const invalid = await runAccord(['audit', '--config', config, '--paths', pathList([gone])]);
    expect(invalid.code).toBe(2);
    expect(invalid.stderr).toMatch(/not valid in the store/);
  });
});
