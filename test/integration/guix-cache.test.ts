/**
 * The `guix publish`-like test caches (test/support/guix-cache.ts) are what they claim: keys
 * libgcrypt generated, narinfos libgcrypt verifies, NARs matching their NarHash in every
 * compression, served the same over file:// and HTTP.
 */
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, test } from 'vitest';
import { parseGuixNarInfo, verifyGuixNarInfo } from '../../src/guix/index.js';
import { decompress, formatHash, hashNarStream, parseCacheInfo } from '../../src/nix/index.js';
import {
  type GuixKeyPair,
  gcryptVerifyNarInfos,
  generateGcryptKeys,
  sampleGuixWorld,
  serveGuixCache,
  writeGuixCache,
} from '../support/guix-cache.js';
import { HAVE_GUILE, requireAvailable, shouldRun } from '../support/requirements.js';

describe.runIf(shouldRun(HAVE_GUILE))('guix publish-like test caches', () => {
  const dir = mkdtempSync(join(tmpdir(), 'accord-guix-cache-'));
  let keys: GuixKeyPair[] = [];
  beforeAll(async () => {
    requireAvailable(HAVE_GUILE, 'guile with guile-gcrypt');
    keys = await generateGcryptKeys(2);
  });

  test('narinfos in guix publish’s order that libgcrypt and Accord verify, NARs that match them', async () => {
    const world = sampleGuixWorld('fixture');
    const [k0, k1] = keys as [GuixKeyPair, GuixKeyPair];
    const honest = await writeGuixCache(join(dir, 'a'), world, {
      key: k0,
      host: 'a.example',
      compressions: ['none', 'gzip', 'zstd'],
      signer: 'gcrypt',
    });
    // The same narinfos signed by Accord: byte for byte libgcrypt's (RFC 6979 both).
    const same = await writeGuixCache(join(dir, 'a2'), world, {
      key: k0,
      host: 'a.example',
      compressions: ['none', 'gzip', 'zstd'],
    });
    const liar = await writeGuixCache(join(dir, 'b'), world, {
      key: k1,
      host: 'b.example',
      only: ['libfoo-1.0', 'app-2.0+git'],
      tampered: { 'app-2.0+git': 'a trojan' },
    });
    for (const [name, p] of honest.paths) expect(same.path(name).narinfo).toBe(p.narinfo);
    const app = honest.path('app-2.0+git');
    expect(app.narinfo).toMatch(
      new RegExp(
        `^StorePath: /gnu/store/${app.item.hashPart}-app-2\\.0\\+git\n` +
          `URL: nar/${app.item.hashPart}-app-2\\.0%2Bgit\nCompression: none\nFileSize: ${app.narSize}\n` +
          `URL: nar/gzip/${app.item.hashPart}-app-2\\.0%2Bgit\nCompression: gzip\nFileSize: \\d+\n` +
          `URL: nar/zstd/${app.item.hashPart}-app-2\\.0%2Bgit\nCompression: zstd\nFileSize: \\d+\n` +
          `NarHash: sha256:[0-9a-z]{52}\nNarSize: ${app.narSize}\n` +
          `References: ${world.item('libfoo-1.0').baseName}\n` +
          `Deriver: [0-9a-z]{32}-app-2\\.0\\+git\\.drv\n` +
          'Signature: 1;a\\.example;[A-Za-z0-9+/=]+\n$',
      ),
    );
    expect(honest.path('only-here-1').narinfo).not.toContain('Deriver');
    expect(honest.path('libfoo-1.0').claim.references).toEqual([world.item('libfoo-1.0').baseName]);
    const all = [honest, liar].flatMap((cache) =>
      [...cache.paths.values()].map((p) => ({ p, cache })),
    );
    expect(
      await gcryptVerifyNarInfos([
        ...all.map(({ p, cache }) => ({ narinfo: p.narinfo, key: cache.key.public })),
        { narinfo: app.narinfo, key: k1.public },
      ]),
    ).toEqual([...all.map(() => 'valid'), 'unauthorized']);
    for (const { p, cache } of all) {
      const info = verifyGuixNarInfo(p.narinfo, [cache.key.public]);
      expect(formatHash(info.narHash)).toBe(p.claim.narHash);
      for (const u of info.urls) {
        const file = readFileSync(join(cache.dir, decodeURIComponent(u.url)));
        expect(file.length).toBe(u.fileSize);
        const nar = await hashNarStream(decompress(u.compression, [file]));
        expect(formatHash(nar.narHash)).toBe(p.claim.narHash);
        expect(nar.narSize).toBe(info.narSize);
      }
    }
    // The tampered path: same store path and references, other content, signed by its cache.
    const lie = liar.path('app-2.0+git');
    expect(lie.tampered).toBe(true);
    expect(lie.claim.storePath).toBe(app.claim.storePath);
    expect(lie.claim.narHash).not.toBe(app.claim.narHash);
    expect(liar.paths.has('only-here-1')).toBe(false);
    // Over HTTP: the same files, and nix-cache-info saying /gnu/store.
    const server = await serveGuixCache(honest);
    try {
      const info = await fetch(`${server.url}/${app.item.hashPart}.narinfo`);
      expect(await info.text()).toBe(app.narinfo);
      expect(info.headers.get('content-length')).toBe(String(Buffer.byteLength(app.narinfo)));
      const cacheInfo = parseCacheInfo(await (await fetch(`${server.url}/nix-cache-info`)).text());
      expect(cacheInfo).toEqual({ storeDir: '/gnu/store', wantMassQuery: false, priority: 100 });
      const nar = await fetch(`${server.url}/${parseGuixNarInfo(app.narinfo).urls[0]?.url ?? ''}`);
      expect(Buffer.from(await nar.arrayBuffer()).equals(app.nar)).toBe(true);
      expect((await fetch(`${server.url}/${'0'.repeat(32)}.narinfo`)).status).toBe(404);
    } finally {
      await server.close();
    }
  });
});
