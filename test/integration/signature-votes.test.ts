/**
 * k-of-n over the caches people already have, with real Nix and no logs: three binary caches
 * (nix copy --to file://…?secret-key=…, served over HTTP), each signing with its own Nix key; a
 * 2-of-3 policy over their signatures; Nix substituting only through the proxy. Then a mixed
 * policy: two caches' signatures and one builder log.
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import {
  type NixSecretKey,
  formatNixPublicKey,
  formatNixSecretKey,
  generateNixSecretKey,
} from '../../src/nix/index.js';
import { type ProxyService, loadProxyConfig, startProxy } from '../../src/proxy/index.js';
import { silentLogger } from '../../src/server/index.js';
import { runAccord } from '../support/cli.js';
import { type TestLog, startTestLog } from '../support/log.js';
import {
  build,
  isValid,
  nix,
  serveOtherBytes,
  shDerivation,
  substituteFrom,
} from '../support/nix.js';
import { HAVE_NIX, requireAvailable, shouldRun } from '../support/requirements.js';
import { type StaticServer, serveDirectory } from '../support/static-server.js';

const run = `votes-${Date.now()}`;

describe.runIf(shouldRun(HAVE_NIX))('signature votes with real Nix: 2-of-3 caches, no logs', () => {
  const dir = mkdtempSync(join(tmpdir(), 'accord-votes-'));
  const keys: NixSecretKey[] = [1, 2, 3].map((i) => generateNixSecretKey(`cache${i}.test-1`));
  const cacheDirs = [1, 2, 3].map((i) => join(dir, `cache${i}`));
  const caches: StaticServer[] = [];
  const proxies: ProxyService[] = [];
  let log: TestLog;
  let proxyPublic = '';
  let app = '';
  let lib = '';
  let tampered = '';
  let single = '';
  let earlier = '';
  let logAndOne = '';
  let logOnly = '';

  const one = async (name: string, script = `echo ${name} payload > $out/data`) => {
    const [path] = await build(shDerivation(name, `/bin/mkdir $out; ${script}`, run));
    return path ?? '';
  };
  const keyFile = (i: number) => join(dir, `cache${i + 1}.sk`);
  /** Copies paths into cache i, signed by its key as Nix signs them (`secret-key`). */
  const copy = (i: number, paths: string[]) =>
    nix('nix', [
      'copy',
      '--to',
      `file://${cacheDirs[i] ?? ''}?compression=none&secret-key=${keyFile(i)}`,
      ...paths,
    ]);
  const policyLine = (i: number) =>
    `cache c${i + 1} ${caches[i]?.url ?? ''} ${formatNixPublicKey(keys[i] as NixSecretKey)}`;

  /** Starts a proxy with these policy lines (and config lines), returning it. */
  async function proxyWith(name: string, policy: string[], config: string[] = []) {
    writeFileSync(join(dir, `${name}.policy`), [...policy, 'quorum none', ''].join('\n'));
    writeFileSync(
      join(dir, `${name}.toml`),
      [
        'listen = "127.0.0.1:0"',
        'signing-key = "proxy.sk"',
        `policy = "${name}.policy"`,
        `state = "${name}.db"`,
        `nar-disk-cache = "${name}-nars"`,
        'cache-ttl-seconds = 0',
        'negative-ttl-seconds = 0',
        'upstream-timeout-ms = 1500',
        ...config,
        '',
      ].join('\n'),
    );
    const proxy = await startProxy(loadProxyConfig(join(dir, `${name}.toml`)), silentLogger);
    proxies.push(proxy);
    return proxy;
  }
  const substitute = (proxy: ProxyService, paths: string[]) =>
    substituteFrom(proxy.url, proxyPublic, paths);
  const remove = (paths: string[]) => nix('nix-store', ['--delete', ...paths]);
  const explain = async (name: string, path: string) => {
    const r = await runAccord(['explain', '--config', join(dir, `${name}.toml`), '--json', path]);
    return { code: r.code, json: JSON.parse(r.stdout) as Record<string, unknown> };
  };

  beforeAll(async () => {
    requireAvailable(HAVE_NIX, 'nix');
    keys.forEach((k, i) => {
      writeFileSync(keyFile(i), formatNixSecretKey(k));
    });
    const key = generateNixSecretKey('accord-votes-proxy-1');
    proxyPublic = formatNixPublicKey(key);
    writeFileSync(join(dir, 'proxy.sk'), formatNixSecretKey(key));
    const libExpr = shDerivation('votes-lib', '/bin/mkdir $out; echo lib > $out/data', run);
    lib = (await build(libExpr))[0] ?? '';
    app =
      (
        await build(
          `let lib = ${libExpr}; in ${shDerivation('votes-app', '/bin/mkdir $out; echo ${lib} > $out/lib; echo app payload > $out/data', run)}`,
        )
      )[0] ?? '';
    tampered = await one('votes-tampered');
    single = await one('votes-single');
    earlier = await one('votes-earlier');
    logAndOne = await one('votes-log-and-one');
    logOnly = await one('votes-log-only');
    const everywhere = [app, lib, tampered, earlier];
    for (let i = 0; i < 3; i++) await copy(i, everywhere);
    await copy(0, [single, logAndOne]);
    // Cache 3 serves and signs other bytes for `tampered`: a signature says nothing of content.
    serveOtherBytes(cacheDirs[2] ?? '', tampered, keys[2]);
    for (const d of cacheDirs) caches.push(await serveDirectory(d));
    // The builder log of the mixed policy claims `logAndOne` and `logOnly`.
    log = await startTestLog({ origin: 'votes-builder.example/log' });
    const tokenFile = join(dir, 'token');
    writeFileSync(tokenFile, log.token);
    const submitted = await runAccord([
      'submit',
      '--json',
      '--log',
      log.url,
      '--token-file',
      tokenFile,
      '--spool',
      join(dir, 'spool.db'),
      logAndOne,
      logOnly,
    ]);
    expect(JSON.parse(submitted.stdout)).toMatchObject({ submitted: 2 });
    await log.waitForSize(2);
    await remove([app, lib, tampered, single, earlier, logAndOne, logOnly]);
  }, 180_000);

  afterAll(async () => {
    for (const p of proxies) await p.close();
    // Some caches were stopped (and one started again) by the tests.
    await Promise.allSettled(caches.map((c) => c.close()));
    await log.close();
  });

  const twoOfThree = () =>
    proxyWith('caches', [
      policyLine(0),
      policyLine(1),
      policyLine(2),
      'trust caches 2 c1 c2 c3',
      'decide caches',
    ]);

  test('the closure all three caches signed substitutes through the proxy', async () => {
    const proxy = await twoOfThree();
    await substitute(proxy, [app]);
    expect(await isValid(lib)).toBe(true);
    expect(readFileSync(join(app, 'data'), 'utf8')).toBe('app payload\n');
    const { json } = await explain('caches', app);
    expect(json.verdict).toBe('trusted');
    expect(json.reason).toMatch(/signatures: c1, c2, c3/);
  });

  test('a path one cache signed with other bytes: the honest content substitutes', async () => {
    const proxy = proxies[0] ?? (await twoOfThree());
    await substitute(proxy, [tampered]);
    expect(readFileSync(join(tampered, 'data'), 'utf8')).toBe('votes-tampered payload\n');
    const { json } = await explain('caches', tampered);
    const answers = json.answers as { supporters: string[]; satisfied: boolean }[];
    expect(answers.map((a) => [a.supporters, a.satisfied])).toEqual(
      expect.arrayContaining([
        [['c1', 'c2'], true],
        [['c3'], false],
      ]),
    );
  });

  test('a path only one cache signed is refused, and explain says so', async () => {
    const proxy = proxies[0] ?? (await twoOfThree());
    await expect(substitute(proxy, [single])).rejects.toThrow();
    expect(await isValid(single)).toBe(false);
    const { code, json } = await explain('caches', single);
    expect(code).toBe(1);
    expect(json).toMatchObject({ verdict: 'no-quorum', served: false });
    const text = await runAccord(['explain', '--config', join(dir, 'caches.toml'), single]);
    expect(text.stdout).toMatch(/c1: sha256:\S+ signed by cache1\.test-1 — verified now/);
    expect(text.stdout).toMatch(/a signature is weaker evidence than a log claim/);
  });

  test('signatures verified earlier count while their cache is offline, within the stored age', async () => {
    const proxy = proxies[0] ?? (await twoOfThree());
    // A proxy that keeps no stored signature for long (age 0 days) beside the default one.
    const strict = await proxyWith(
      'strict',
      [policyLine(0), policyLine(1), policyLine(2), 'trust caches 2 c1 c2 c3', 'decide caches'],
      ['stored-signature-max-age-days = 0'],
    );
    // Both verify the path while every cache is up (Nix does not substitute it yet).
    const narinfo = (p: ProxyService) => fetch(`${p.url}/${earlier.slice(11, 43)}.narinfo`);
    expect((await narinfo(proxy)).status).toBe(200);
    expect((await narinfo(strict)).status).toBe(200);
    await caches[1]?.close();
    await caches[2]?.close();
    await substitute(proxy, [earlier]);
    const { json } = await explain('caches', earlier);
    expect(json.caches).toEqual(
      expect.arrayContaining([expect.objectContaining({ cache: 'c2', verifiedEarlier: true })]),
    );
    expect((await narinfo(strict)).status).toBe(404);
    const refused = await explain('strict', earlier);
    expect(refused.json).toMatchObject({ verdict: 'no-quorum' });
  });

  test('a mixed policy: a log claim and one cache signature make 2 of 3; the log alone does not', async () => {
    caches[1] = await serveDirectory(cacheDirs[1] ?? '');
    const mixed = await proxyWith('mixed', [
      `log ${log.vkey} ${log.url}`,
      policyLine(0),
      policyLine(1),
      `trust mixed 2 ${log.origin} c1 c2`,
      'decide mixed',
    ]);
    await substitute(mixed, [logAndOne]);
    expect(await isValid(logAndOne)).toBe(true);
    const { json } = await explain('mixed', logAndOne);
    expect(json.reason).toMatch(/log claims: votes-builder\.example\/log; signatures: c1/);
    await expect(substitute(mixed, [logOnly])).rejects.toThrow();
    expect(await isValid(logOnly)).toBe(false);
    // The closure all caches signed: two signatures suffice without the log's claim.
    await remove([app, lib]);
    await substitute(mixed, [app]);
    expect(await isValid(lib)).toBe(true);
  });
});
