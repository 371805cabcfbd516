/**
 * The disk tier with real Nix: the preferred cache serves well-formed NARs with other contents
 * (of several sizes, some over 1 MiB); `nix-store -r` of the closure succeeds on the first try
 * with the honest contents; the disk cache then holds only verified NARs; and a second machine
 * (another Nix store) is served from the disk cache with every upstream gone.
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, readdirSync, renameSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { encodeNix32, formatNixPublicKey, parseNarInfo } from '../../src/nix/index.js';
import { type ProxyService, loadProxyConfig, startProxy } from '../../src/proxy/index.js';
import { pathInfoClaims } from '../../src/host/index.js';
import { silentLogger } from '../../src/server/index.js';
import { type TestLog, startTestLog } from '../support/log.js';
import { writeProxyFiles } from '../support/proxy-world.js';
import { build, nix, shDerivation, substituteFrom } from '../support/nix.js';
import { HAVE_NIX, requireAvailable, shouldRun } from '../support/requirements.js';

const run = `disk-e2e-${Date.now()}`;
/** File sizes of the closure's paths: small, mid, and over the 1 MiB a stream holds back. */
const SIZES = [2_000, 300_000, 1_500_000, 5_000_000];

describe.runIf(shouldRun(HAVE_NIX))('the disk tier with real Nix', () => {
  const dir = mkdtempSync(join(tmpdir(), 'accord-disk-e2e-'));
  const honestDir = join(dir, 'honest');
  const liarDir = join(dir, 'liar');
  const logs: TestLog[] = [];
  let proxy: ProxyService;
  let key = '';
  let top = '';
  let closure: string[] = [];

  beforeAll(async () => {
    requireAvailable(HAVE_NIX, 'nix');
    // part-i holds `payload i` and SIZES[i] bytes of 'a'; top refers to every part.
    let expr = '';
    for (const [i, size] of SIZES.entries()) {
      const script = `/bin/mkdir $out; echo payload ${i} > $out/data; /usr/bin/head -c ${size} /dev/zero | /usr/bin/tr '\\\\0' a > $out/bulk`;
      expr += `part${i} = ${shDerivation(`part-${i}`, script, run)};\n`;
    }
    const refs = SIZES.map((_, i) => `echo \${part${i}} >> $out`).join('; ');
    [top = ''] = await build(`let\n${expr}in ${shDerivation('top', refs, run)}`);
    closure = (await nix('nix-store', ['--query', '--requisites', top])).trim().split('\n');
    expect(closure).toHaveLength(SIZES.length + 1);
    for (const d of [honestDir, liarDir])
      await nix('nix', ['copy', '--to', `file://${d}?compression=none`, top]);
    // The liar: each NAR with one byte of its file contents changed (still a valid archive),
    // its narinfo unchanged, so only the NAR hash check can catch it.
    for (const name of readdirSync(liarDir).filter((f) => f.endsWith('.narinfo'))) {
      const info = parseNarInfo(readFileSync(join(liarDir, name), 'utf8'));
      const file = join(liarDir, info.url);
      const nar = readFileSync(file);
      const at = nar.indexOf('payload');
      if (at >= 0) nar[at] = 'P'.charCodeAt(0);
      else nar[nar.indexOf('part-')] = 'P'.charCodeAt(0);
      writeFileSync(file, nar);
    }
    const claims = await pathInfoClaims(closure);
    for (let i = 0; i < 2; i++) {
      const log = await startTestLog({ origin: `disk${i}.example/log` });
      expect((await log.submit(claims)).status).toBe(200);
      await log.waitForSize(claims.length);
      logs.push(log);
    }
    key = formatNixPublicKey(writeProxyFiles(dir, 'disk-e2e-proxy-1', logs));
    writeFileSync(
      join(dir, 'proxy.toml'),
      `signing-key = "proxy.sk"\npolicy = "policy"\nstate = "proxy.db"\nnar-cache-mib = 0\nnar-disk-cache = "nars"\n` +
        `[[upstream]]\nurl = "file://${liarDir}"\npriority = 10\n` +
        `[[upstream]]\nurl = "file://${honestDir}"\npriority = 20\n`,
    );
    proxy = await startProxy(loadProxyConfig(join(dir, 'proxy.toml')), silentLogger, '127.0.0.1:0');
  });
  afterAll(async () => {
    await proxy.close();
    for (const log of logs) await log.close();
  });

  /** Realises the closure into a store of its own (a machine), through the proxy only. */
  const realise = (store: string) =>
    substituteFrom(proxy.url, key, [top], ['--store', join(dir, store)]);

  test('nix-store -r of the closure succeeds on the first try, with the honest contents', async () => {
    await realise('machine1');
    for (const [i, size] of SIZES.entries()) {
      const part = closure.find((p) => p.endsWith(`-part-${i}`)) ?? '';
      expect(readFileSync(join(dir, 'machine1', part, 'data'), 'utf8')).toBe(`payload ${i}\n`);
      expect(readFileSync(join(dir, 'machine1', part, 'bulk')).length).toBe(size);
    }
  });

  test('the disk cache holds only verified NARs, one per path of the closure', async () => {
    // A small NAR verified in memory goes to disk after it was sent: wait for the last one.
    const list = () => readdirSync(join(dir, 'nars', 'nar'));
    for (let i = 0; i < 100 && list().length < closure.length; i++)
      await new Promise((resolve) => setTimeout(resolve, 50));
    const files = list();
    expect(files).toHaveLength(closure.length);
    for (const name of files) {
      const digest = createHash('sha256')
        .update(readFileSync(join(dir, 'nars', 'nar', name)))
        .digest();
      expect(name).toBe(`${encodeNix32(digest)}.nar`);
    }
  });

  test('a second machine is served from the disk cache with every upstream gone', async () => {
    renameSync(honestDir, `${honestDir}.gone`);
    renameSync(liarDir, `${liarDir}.gone`);
    await realise('machine2');
    const part = closure.find((p) => p.endsWith('-part-3')) ?? '';
    expect(readFileSync(join(dir, 'machine2', part, 'data'), 'utf8')).toBe('payload 3\n');
  });
});
