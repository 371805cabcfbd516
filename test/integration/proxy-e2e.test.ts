/**
 * The proxy end to end with real Nix: three builders, each with its own log and binary cache
 * (nix copy --to file://, served over HTTP); a 2-of-3 policy; Nix substituting only through
 * the proxy and trusting only the proxy's key.
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import {
  encodeNix32,
  formatNarInfo,
  formatNixPublicKey,
  formatNixSecretKey,
  generateNixSecretKey,
  parseNarInfo,
} from '../../src/nix/index.js';
import { type ProxyService, loadProxyConfig, startProxy } from '../../src/proxy/index.js';
import { silentLogger } from '../../src/server/index.js';
import { runAccord } from '../support/cli.js';
import { type TestLog, startTestLog } from '../support/log.js';
import { build, isValid, nix, shDerivation, substituteFrom } from '../support/nix.js';
import { HAVE_NIX, requireAvailable, shouldRun } from '../support/requirements.js';
import { type StaticServer, serveDirectory } from '../support/static-server.js';

const run = `e2e-${Date.now()}`;

/** A chain of derivations p0 ← p1 ← … (each refers to the previous); returns all outputs. */
async function buildChain(name: string, length: number): Promise<string[]> {
  const paths: string[] = [];
  let expr = '';
  for (let i = 0; i < length; i++) {
    const prev = i === 0 ? '' : ` echo \${p${i - 1}} > $out/prev;`;
    expr += `p${i} = ${shDerivation(`${name}-${i}`, `/bin/mkdir $out; echo ${name} payload ${i} > $out/data;${prev}`, run)};\n`;
  }
  for (let i = 0; i < length; i++) {
    paths.push(...(await build(`let\n${expr}in p${i}`)));
  }
  return paths;
}

describe.runIf(shouldRun(HAVE_NIX))('accord proxy with real Nix, 3 builders, 2-of-3', () => {
  const dir = mkdtempSync(join(tmpdir(), 'accord-e2e-'));
  const logs: TestLog[] = [];
  const caches: StaticServer[] = [];
  const cacheDirs = [1, 2, 3].map((i) => join(dir, `cache${i}`));
  const cacheDir = (i: number) => cacheDirs[i] ?? '';
  let proxy: ProxyService;
  let proxyPublic: string;
  let chain: string[];
  let tampered = '';
  let single = '';
  let wrongNar = '';
  let wrongBig = ''; // its NAR (over 64 KiB) is streamed, not fetched whole
  let earlier = '';
  let never = '';

  /** Submits claims for local paths to builder i's log, as its post-build-hook would. */
  async function submit(i: number, paths: string[]) {
    const log = logs[i] as TestLog;
    const tokenFile = join(dir, `token${i}`);
    writeFileSync(tokenFile, log.token);
    const r = await runAccord([
      'submit',
      '--json',
      '--log',
      log.url,
      '--token-file',
      tokenFile,
      '--spool',
      join(dir, `spool${i}.db`),
      ...paths,
    ]);
    expect(JSON.parse(r.stdout)).toMatchObject({ submitted: paths.length, spooled: 0 });
  }

  const copy = (i: number, paths: string[]) =>
    nix('nix', ['copy', '--to', `file://${cacheDir(i)}?compression=none`, ...paths]);

  /** Replaces the NAR of `path` in cache i by one whose file contents differ by one byte. */
  function corruptNar(i: number, path: string): { narinfo: string; nar: Buffer } {
    const cache = cacheDir(i);
    const file = join(cache, `${path.slice(11, 43)}.narinfo`);
    const info = parseNarInfo(readFileSync(file, 'utf8'));
    const narFile = join(cache, info.url);
    const nar = readFileSync(narFile);
    const at = nar.indexOf('payload');
    if (at < 0) throw new Error('no payload to corrupt');
    nar[at] = 'P'.charCodeAt(0);
    return { narinfo: file, nar };
  }

  /** Substitutes paths through the proxy only, trusting only its key. */
  const substitute = (paths: string[], options: string[] = []) =>
    substituteFrom(proxy.url, proxyPublic, paths, options);
  const remove = (paths: string[]) => nix('nix-store', ['--delete', ...paths]);
  const valid = isValid;

  beforeAll(async () => {
    requireAvailable(HAVE_NIX, 'nix');
    for (let i = 0; i < 3; i++)
      logs.push(await startTestLog({ origin: `builder${i + 1}.example/log` }));
    chain = await buildChain('chain', 4);
    const one = async (name: string) => (await buildChain(name, 1))[0] ?? '';
    tampered = await one('tampered');
    single = await one('single');
    wrongNar = await one('wrongnar');
    const filler = 'i=0; while [ $i -lt 8000 ]; do echo filler line $i; i=$((i+1)); done';
    [wrongBig = ''] = await build(
      shDerivation(
        'wrongbig',
        `/bin/mkdir $out; echo wrongbig payload 0 > $out/data; ${filler} > $out/filler`,
        run,
      ),
    );
    earlier = await one('earlier');
    never = await one('never');
    const agreed = [...chain, tampered, wrongNar, wrongBig, earlier, never];
    for (let i = 0; i < 3; i++) await copy(i, agreed);
    await copy(0, [single]);
    // Builders 1 and 2 are honest about everything; builder 3 too, except for `tampered`.
    await submit(0, [...agreed, single]);
    await submit(1, agreed);
    await submit(
      2,
      agreed.filter((p) => p !== tampered),
    );
    // Builder 3's cache and log carry a different output for `tampered`.
    const { narinfo, nar } = corruptNar(2, tampered);
    const info = parseNarInfo(readFileSync(narinfo, 'utf8'));
    const hash = createHash('sha256').update(nar).digest();
    const newUrl = `nar/${encodeNix32(hash)}.nar`;
    writeFileSync(join(cacheDir(2), newUrl), nar);
    const forged = {
      ...info,
      url: newUrl,
      fileHash: { algorithm: 'sha256' as const, digest: hash },
      narHash: { algorithm: 'sha256' as const, digest: hash },
      sigs: [],
    };
    writeFileSync(narinfo, formatNarInfo(forged));
    const evilClaim = {
      storePath: tampered,
      narHash: `sha256:${encodeNix32(hash)}`,
      narSize: info.narSize,
      references: [...info.references],
    };
    expect((await logs[2]?.submit([evilClaim]))?.status).toBe(200);
    // Builder 3's cache serves corrupted NARs for `wrongNar` and `wrongBig` under their honest
    // narinfos.
    for (const path of [wrongNar, wrongBig]) {
      const bad = corruptNar(2, path);
      writeFileSync(
        join(cacheDir(2), parseNarInfo(readFileSync(bad.narinfo, 'utf8')).url),
        bad.nar,
      );
    }
    for (const log of logs) await log.waitForSize((await log.service.storage.state()).nextIndex);
    for (const c of cacheDirs) caches.push(await serveDirectory(c));
    // The proxy: 2-of-3, builder 3's cache preferred (so its bad data is tried first).
    const key = generateNixSecretKey('accord-proxy-test-1');
    proxyPublic = formatNixPublicKey(key);
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
      join(dir, 'proxy.toml'),
      [
        'listen = "127.0.0.1:0"',
        'signing-key = "proxy.sk"',
        'policy = "policy"',
        'state = "proxy.db"',
        'log-timeout-ms = 1500',
        'narinfo-deadline-ms = 4000',
        ...caches.map(
          (c, i) => `[[upstream]]\nurl = "${c.url}"\npriority = ${i === 2 ? 10 : 20 + i}`,
        ),
        '',
      ].join('\n'),
    );
    proxy = await startProxy(loadProxyConfig(join(dir, 'proxy.toml')), silentLogger);
    await remove([...agreed, single].reverse());
  }, 180_000);

  afterAll(async () => {
    await proxy.close();
    for (const c of caches) await c.close();
    for (const l of logs) await l.close();
  });

  test('a closure all three builders agree on substitutes through the proxy', async () => {
    const top = chain[chain.length - 1] ?? '';
    expect(await valid(top)).toBe(false);
    await substitute([top]);
    for (const p of chain) expect(await valid(p)).toBe(true);
  });

  test('a path one builder tampered with (cache and log) still substitutes the honest content', async () => {
    await substitute([tampered]);
    expect(readFileSync(join(tampered, 'data'), 'utf8')).toBe('tampered payload 0\n');
    // The forged narinfo of builder 3 (preferred) was looked at and passed over.
    expect(caches[2]?.requests).toContain(`/${tampered.slice(11, 43)}.narinfo`);
  });

  test('a path only one builder claims is refused', async () => {
    await expect(substitute([single])).rejects.toThrow();
    expect(await valid(single)).toBe(false);
    const explain = await runAccord([
      'explain',
      '--config',
      join(dir, 'proxy.toml'),
      '--json',
      single,
    ]);
    expect(explain.code).toBe(1);
    expect(JSON.parse(explain.stdout)).toMatchObject({ verdict: 'no-quorum', served: false });
  });

  /** NAR requests for `path` that cache i received. */
  const narRequests = (i: number, path: string) => {
    const info = readFileSync(join(cacheDir(i), `${path.slice(11, 43)}.narinfo`), 'utf8');
    const url = `/${parseNarInfo(info).url}`;
    return caches[i]?.requests.filter((r) => r === url).length ?? 0;
  };

  test('an upstream serving a small NAR that does not match its narinfo is caught before a byte is sent', async () => {
    // Builder 3's cache is preferred and its NAR is corrupted under an honest narinfo: the
    // proxy checks the whole (small) NAR first, never uses that cache for the path again, and
    // answers the same request with the honest NAR of another cache.
    await substitute([wrongNar]);
    expect(readFileSync(join(wrongNar, 'data'), 'utf8')).toBe('wrongnar payload 0\n');
    const metrics = await (await fetch(`${proxy.url}/metrics`)).text();
    expect(metrics).toMatch(/accord_proxy_nar_total\{outcome="mismatch"\} 1\n/);
    expect(narRequests(2, wrongNar)).toBe(1);
    expect(narRequests(0, wrongNar) + narRequests(1, wrongNar)).toBe(1);
  });

  test('an upstream serving a large NAR that does not match its narinfo is caught while streaming', async () => {
    // Streamed, and caught before the response began (its first MiB is held back): the same
    // request goes on to another cache, whose honest NAR Nix gets.
    await substitute([wrongBig]);
    expect(readFileSync(join(wrongBig, 'data'), 'utf8')).toBe('wrongbig payload 0\n');
    expect(statSync(join(wrongBig, 'filler')).size).toBeGreaterThan(64 << 10);
    const metrics = await (await fetch(`${proxy.url}/metrics`)).text();
    expect(metrics).toMatch(/accord_proxy_nar_total\{outcome="mismatch"\} 2\n/);
    expect(narRequests(2, wrongBig)).toBe(1);
    expect(narRequests(0, wrongBig) + narRequests(1, wrongBig)).toBe(1);
  });

  test('with two logs stopped: a new path is refused, a path verified earlier still substitutes', async () => {
    // The proxy verifies `earlier` while every log is up (Nix does not substitute it yet).
    const hashPart = earlier.slice(11, 43);
    const first = await fetch(`${proxy.url}/${hashPart}.narinfo`);
    expect(first.status).toBe(200);
    await logs[1]?.close();
    await logs[2]?.close();
    await expect(substitute([never])).rejects.toThrow();
    expect(await valid(never)).toBe(false);
    await substitute([earlier]);
    expect(await valid(earlier)).toBe(true);
    const explain = await runAccord(['explain', '--config', join(dir, 'proxy.toml'), earlier]);
    expect(explain.stdout).toMatch(/TRUSTED/);
    expect(explain.stdout).toMatch(/verified earlier \(log unreachable now\)/);
  });
});
