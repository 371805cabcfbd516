/**
 * The proxy for Guix clients, end to end: three `guix publish`-like caches (real NARs under
 * /gnu/store, narinfos signed with keys the real libgcrypt generated), a Guix ACL holding the
 * proposal's `(k-of-n 2 3 …)` entry turned into the proxy's policy by `accord policy
 * from-guix-acl`, and the proxy answering as `guix substitute` needs: its narinfos signed with
 * its Guix key (libgcrypt verifies them), NARs checked against the agreed hash.
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { formatGuixAcl, parseGuixNarInfo } from '../../src/guix/index.js';
import { formatHash, parseCacheInfo } from '../../src/nix/index.js';
import { type ProxyService, loadProxyConfig, startProxy } from '../../src/proxy/index.js';
import { silentLogger } from '../../src/server/index.js';
import { runAccord } from '../support/cli.js';
import {
  type GuixCache,
  type GuixKeyPair,
  type GuixWorld,
  gcryptVerifyNarInfos,
  generateGcryptKeys,
  guixWorld,
  serveGuixCache,
  writeGuixCache,
} from '../support/guix-cache.js';
import { HAVE_GUILE, requireAvailable, shouldRun } from '../support/requirements.js';
import type { StaticServer } from '../support/static-server.js';

describe.runIf(shouldRun(HAVE_GUILE))(
  'accord proxy for Guix: 2-of-3 caches from a Guix ACL',
  () => {
    const dir = mkdtempSync(join(tmpdir(), 'accord-guix-proxy-'));
    let keys: GuixKeyPair[] = [];
    let world: GuixWorld;
    const caches: GuixCache[] = [];
    const servers: StaticServer[] = [];
    let proxy: ProxyService;
    let proxyKey: GuixKeyPair;

    const narinfo = (name: string) => fetch(`${proxy.url}/${world.item(name).hashPart}.narinfo`);

    beforeAll(async () => {
      requireAvailable(HAVE_GUILE, 'guile with guile-gcrypt');
      keys = await generateGcryptKeys(4);
      proxyKey = keys[3] as GuixKeyPair;
      world = guixWorld(
        [
          {
            name: 'libfoo-1.0',
            tree: { dir: { lib: { dir: { 'libfoo.so': 'ELF' } } } },
            references: ['libfoo-1.0'],
          },
          {
            name: 'app-2.0+git',
            tree: { dir: { bin: { dir: { app: { file: '#!/bin/sh\n', executable: true } } } } },
            references: ['libfoo-1.0'],
          },
          { name: 'tampered-1', tree: 'the honest bytes' },
          { name: 'only-here-1', tree: 'one cache has me' },
          { name: 'broken-1', tree: 'cache 1 answers a malformed narinfo for me' },
        ],
        `guix-proxy-${Date.now()}`,
      );
      const all = ['libfoo-1.0', 'app-2.0+git', 'tampered-1', 'broken-1'];
      // Three caches, each in its own compressions (the proxy takes a block it decodes); cache 3
      // signs other bytes for `tampered-1`; only cache 1 has `only-here-1`.
      const specs = [
        { only: [...all, 'only-here-1'], compressions: ['none', 'gzip'] as const },
        { only: all, compressions: ['gzip', 'zstd'] as const },
        { only: all, compressions: ['zstd'] as const, tampered: { 'tampered-1': 'a trojan' } },
      ];
      for (const [i, spec] of specs.entries()) {
        const cache = await writeGuixCache(join(dir, `cache${i + 1}`), world, {
          key: keys[i] as GuixKeyPair,
          host: `cache${i + 1}.example`,
          only: spec.only,
          compressions: spec.compressions,
          ...(spec.tampered === undefined ? {} : { tampered: spec.tampered }),
          signer: i === 0 ? 'gcrypt' : 'accord',
        });
        caches.push(cache);
        servers.push(await serveGuixCache(cache));
      }
      // Cache 1's narinfo for `broken-1` has no URL (the real guix substitute dies on that).
      const broken = caches[0]?.path('broken-1');
      writeFileSync(
        broken?.narinfoFile ?? '',
        (broken?.narinfo ?? '').replace(/^(URL|Compression|FileSize): .*\n/gm, ''),
      );
      // The ACL as the K-of-N proposal writes it (bare numbers, which Guix itself cannot read).
      const acl = formatGuixAcl(
        {
          entries: [
            {
              kind: 'k-of-n',
              k: 2,
              n: 3,
              subjects: keys.slice(0, 3).map((k) => ({ kind: 'key', key: k.public })),
            },
          ],
        },
        'bare',
      );
      writeFileSync(join(dir, 'acl'), acl);
      const cacheArgs = servers.flatMap((s, i) => {
        const file = join(dir, `cache${i + 1}.pub`);
        writeFileSync(file, keys[i]?.publicText ?? '');
        return ['--cache', `${s.url}=${file}`];
      });
      const made = await runAccord([
        'policy',
        'from-guix-acl',
        '--acl',
        join(dir, 'acl'),
        ...cacheArgs,
        '--out',
        join(dir, 'policy'),
      ]);
      expect(made.stderr).toBe('');
      expect(made.code).toBe(0);
      writeFileSync(join(dir, 'signing-key.sec'), proxyKey.secretText);
      writeFileSync(
        join(dir, 'proxy.toml'),
        [
          'listen = "127.0.0.1:0"',
          'signing-key = "signing-key.sec"',
          'policy = "policy"',
          'state = "proxy.db"',
          'nar-disk-cache = "nars"',
          'cache-ttl-seconds = 600',
          'negative-ttl-seconds = 5',
          '',
        ].join('\n'),
      );
      proxy = await startProxy(loadProxyConfig(join(dir, 'proxy.toml')), silentLogger);
    }, 120_000);

    afterAll(async () => {
      await proxy.close();
      for (const s of servers) await s.close();
    });

    test('nix-cache-info names /gnu/store', async () => {
      const info = parseCacheInfo(await (await fetch(`${proxy.url}/nix-cache-info`)).text());
      expect(info.storeDir).toBe('/gnu/store');
    });

    test('the agreed closure: narinfos signed by the proxy’s Guix key (libgcrypt verifies), NARs honest', async () => {
      const texts: string[] = [];
      for (const name of ['app-2.0+git', 'libfoo-1.0']) {
        const item = world.item(name);
        const res = await narinfo(name);
        expect(res.status).toBe(200);
        expect(res.headers.get('content-length')).not.toBeNull();
        expect(res.headers.get('cache-control')).toBe('max-age=600');
        const text = await res.text();
        texts.push(text);
        const info = parseGuixNarInfo(text);
        expect(formatHash(info.narHash)).toBe(item.claim.narHash);
        expect([...info.references].sort()).toEqual(item.references);
        expect(info.deriver).toBe(item.deriver);
        // Every URL block it lists serves the NAR, and the NAR is the agreed one.
        for (const block of info.urls) {
          expect(block.compression).toBe('none');
          const nar = Buffer.from(await (await fetch(`${proxy.url}/${block.url}`)).arrayBuffer());
          expect(createHash('sha256').update(nar).digest()).toEqual(
            Buffer.from(item.narHash.digest),
          );
          expect(block.fileSize).toBe(nar.length);
        }
      }
      expect(
        await gcryptVerifyNarInfos(texts.map((t) => ({ narinfo: t, key: proxyKey.public }))),
      ).toEqual(['valid', 'valid']);
      // The same narinfo is no good under a cache's key: Guix would refuse it unauthorised.
      expect(
        await gcryptVerifyNarInfos([
          { narinfo: texts[0] ?? '', key: (keys[0] as GuixKeyPair).public },
        ]),
      ).toEqual(['unauthorized']);
    });

    test('a path one cache tampered with: the honest content is served', async () => {
      const item = world.item('tampered-1');
      const info = parseGuixNarInfo(await (await narinfo('tampered-1')).text());
      expect(formatHash(info.narHash)).toBe(item.claim.narHash);
      const nar = Buffer.from(
        await (await fetch(`${proxy.url}/${info.urls[0]?.url ?? ''}`)).arrayBuffer(),
      );
      expect(nar).toEqual(item.nar);
    });

    test('a path only one cache signed is refused, with a short max-age', async () => {
      const res = await narinfo('only-here-1');
      expect(res.status).toBe(404);
      expect(res.headers.get('cache-control')).toBe('max-age=5');
      expect(res.headers.get('x-accord-reason')).toMatch(/no-quorum/);
    });

    test('an upstream’s malformed narinfo is never relayed: the proxy writes its own from the other two', async () => {
      const res = await narinfo('broken-1');
      expect(res.status).toBe(200);
      const info = parseGuixNarInfo(await res.text());
      expect(info.urls.map((u) => u.compression)).toEqual(['none']);
      const explained = await runAccord([
        'explain',
        '--config',
        join(dir, 'proxy.toml'),
        '--json',
        world.item('broken-1').storePath,
      ]);
      const json = JSON.parse(explained.stdout) as {
        caches: { status: string; reason?: string }[];
      };
      expect(json.caches[0]).toMatchObject({
        status: 'missing',
        reason: expect.stringMatching(/narinfo refused: .*URL/) as unknown,
      });
    });

    test('pipelined narinfo requests on one connection are answered in order', async () => {
      const names = ['libfoo-1.0', 'only-here-1', 'app-2.0+git', 'tampered-1'];
      const { host, hostname, port } = new URL(proxy.url);
      // As `guix substitute` does: every request written before any answer is read.
      const requests = names
        .map(
          (n, i) =>
            `GET /${world.item(n).hashPart}.narinfo HTTP/1.1\r\nHost: ${host}\r\n` +
            (i === names.length - 1 ? 'Connection: close\r\n\r\n' : '\r\n'),
        )
        .join('');
      const raw = await new Promise<string>((resolve, reject) => {
        const socket = connect(Number(port), hostname);
        let data = '';
        socket.on('data', (chunk: Buffer) => {
          data += chunk.toString('latin1');
        });
        socket.on('end', () => {
          resolve(data);
        });
        socket.on('error', reject);
        socket.write(requests);
      });
      expect(raw.match(/HTTP\/1\.1 \d+/g)).toEqual([
        'HTTP/1.1 200',
        'HTTP/1.1 404',
        'HTTP/1.1 200',
        'HTTP/1.1 200',
      ]);
      const stores = [...raw.matchAll(/StorePath: (\S+)/g)].map((m) => m[1]);
      expect(stores).toEqual(
        ['libfoo-1.0', 'app-2.0+git', 'tampered-1'].map((n) => world.item(n).storePath),
      );
    });

    test('accord explain says the votes were signatures', async () => {
      const r = await runAccord([
        'explain',
        '--config',
        join(dir, 'proxy.toml'),
        world.item('app-2.0+git').storePath,
      ]);
      expect(r.code).toBe(0);
      expect(r.stdout).toMatch(/TRUSTED — 3 of 3 members agree \(signatures: /);
      expect(r.stdout).toMatch(/signed by guix:[0-9A-F]{64}/);
    });
  },
);
