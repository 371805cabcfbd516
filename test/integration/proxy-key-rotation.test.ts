/**
 * Rotating the proxy's own signing key with real Nix, the documented procedure (docs/proxy.md,
 * "Rotating the proxy's key"): the proxy signs with old and new keys, Nix moves from trusting
 * the old key to trusting both to trusting only the new one, then the proxy drops the old key.
 * Substitution works at every step; a Nix trusting only a key the proxy no longer signs with
 * does not substitute.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import {
  formatNixPublicKey,
  formatNixSecretKey,
  generateNixSecretKey,
  parseNarInfo,
} from '../../src/nix/index.js';
import { type ProxyService, loadProxyConfig, startProxy } from '../../src/proxy/index.js';
import { silentLogger } from '../../src/server/index.js';
import { build, isValid, nix, shDerivation, substituteFrom } from '../support/nix.js';
import { HAVE_NIX, requireAvailable, shouldRun } from '../support/requirements.js';
import { type StaticServer, serveDirectory } from '../support/static-server.js';

describe.runIf(shouldRun(HAVE_NIX))('rotating the proxy’s signing key with real Nix', () => {
  const dir = mkdtempSync(join(tmpdir(), 'accord-rotate-'));
  const run = `rotate-${Date.now()}`;
  const oldKey = generateNixSecretKey('accord-proxy-1');
  const newKey = generateNixSecretKey('accord-proxy-2');
  const cacheKey = generateNixSecretKey('rotate-cache-1');
  let cache: StaticServer;
  const paths: string[] = [];
  let proxy: ProxyService | undefined;

  /** (Re)starts the proxy signing with these key files, in this order. */
  async function proxyWith(keyFiles: string[]) {
    await proxy?.close();
    writeFileSync(
      join(dir, 'proxy.toml'),
      [
        'listen = "127.0.0.1:0"',
        `signing-key = [${keyFiles.map((f) => `"${f}"`).join(', ')}]`,
        'policy = "policy"',
        'state = "proxy.db"',
        'nar-disk-cache = "nars"',
        '',
      ].join('\n'),
    );
    proxy = await startProxy(loadProxyConfig(join(dir, 'proxy.toml')), silentLogger);
    return proxy;
  }
  /** Substitutes the next path, Nix trusting exactly `trusted`. */
  async function substitutes(trusted: string[]): Promise<boolean> {
    const path = paths.shift() ?? '';
    const url = proxy?.url ?? '';
    try {
      await substituteFrom(url, trusted.join(' '), [path]);
    } catch {
      return false;
    }
    return isValid(path);
  }
  const OLD = formatNixPublicKey(oldKey);
  const NEW = formatNixPublicKey(newKey);

  beforeAll(async () => {
    requireAvailable(HAVE_NIX, 'nix');
    writeFileSync(join(dir, 'old.sk'), formatNixSecretKey(oldKey));
    writeFileSync(join(dir, 'new.sk'), formatNixSecretKey(newKey));
    writeFileSync(join(dir, 'cache.sk'), formatNixSecretKey(cacheKey));
    for (let i = 0; i < 6; i++) {
      const [p] = await build(
        shDerivation(`rotate-${i}`, `/bin/mkdir $out; echo ${i} > $out/n`, run),
      );
      paths.push(p ?? '');
    }
    await nix('nix', [
      'copy',
      '--to',
      `file://${dir}/cache?compression=none&secret-key=${dir}/cache.sk`,
      ...paths,
    ]);
    cache = await serveDirectory(join(dir, 'cache'));
    writeFileSync(
      join(dir, 'policy'),
      `cache c ${cache.url} ${formatNixPublicKey(cacheKey)}\ndecide c\nquorum none\n`,
    );
    await nix('nix-store', ['--delete', ...paths]);
  }, 120_000);

  afterAll(async () => {
    await proxy?.close();
    await cache.close();
  });

  test('old key → both keys → Nix trusts both → Nix trusts the new → new key only', async () => {
    await proxyWith(['old.sk']);
    expect(await substitutes([OLD])).toBe(true);
    // 1. The proxy signs with both; Nix still trusts only the old key.
    const both = await proxyWith(['new.sk', 'old.sk']);
    const narinfo = await (
      await fetch(`${both.url}/${(paths[0] ?? '').slice(11, 43)}.narinfo`)
    ).text();
    expect(parseNarInfo(narinfo).sigs.map((s) => s.split(':')[0])).toEqual([
      'accord-proxy-1',
      'accord-proxy-2',
    ]);
    expect(await substitutes([OLD])).toBe(true);
    // 2. Nix trusts both, then only the new key.
    expect(await substitutes([OLD, NEW])).toBe(true);
    expect(await substitutes([NEW])).toBe(true);
    // 3. The proxy drops the old key: Nix trusting the new key goes on, the old one alone fails.
    await proxyWith(['new.sk']);
    expect(await substitutes([NEW])).toBe(true);
    expect(await substitutes([OLD])).toBe(false);
  });
});
