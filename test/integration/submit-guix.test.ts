/**
 * `accord submit --from-cache` from `guix publish`-like caches (test/support/guix-cache.ts),
 * signed with keys the real libgcrypt generated: only narinfos whose Guix signature the
 * cache's key made become `/gnu/store` claims in a log run for Guix.
 */
import { copyFileSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { parseEntry } from '../../src/claim/index.js';
import {
  formatNarInfo,
  generateNixSecretKey,
  parseHash,
  parseStorePath,
  signNarInfo,
} from '../../src/nix/index.js';
import { runAccord } from '../support/cli.js';
import {
  type GuixKeyPair,
  generateGcryptKeys,
  sampleGuixWorld,
  serveGuixCache,
  writeGuixCache,
} from '../support/guix-cache.js';
import { type TestLog, startTestLog } from '../support/log.js';
import { HAVE_GUILE, requireAvailable, shouldRun } from '../support/requirements.js';
import { readAndVerifyLog } from '../support/tiles-client.js';

describe.runIf(shouldRun(HAVE_GUILE))('accord submit --from-cache from guix publish', () => {
  const dir = mkdtempSync(join(tmpdir(), 'accord-submit-guix-'));
  const tokenFile = join(dir, 'token');
  let log: TestLog;
  let keys: GuixKeyPair[] = [];
  const keyFile = (i: number): string => join(dir, `key-${i}.pub`);
  let spools = 0;
  const submit = (args: readonly string[], input?: string) =>
    runAccord(
      [
        'submit',
        '--log',
        log.url,
        '--token-file',
        tokenFile,
        '--spool',
        join(dir, `spool-${spools++}.db`),
        '--json',
        ...args,
      ],
      input === undefined ? {} : { input },
    );

  /** The claims a verified read of the log holds, keyed by store path. */
  async function logClaims() {
    const read = await readAndVerifyLog(log.url, log.vkey);
    return new Map(
      read.entries.map((e) => {
        const claim = parseEntry(e, '/gnu/store');
        return [`${claim.storePath.storeDir}/${claim.storePath.baseName}`, claim];
      }),
    );
  }

  beforeAll(async () => {
    requireAvailable(HAVE_GUILE, 'guile with guile-gcrypt');
    log = await startTestLog({ storeDir: '/gnu/store' });
    writeFileSync(tokenFile, log.token);
    keys = await generateGcryptKeys(2);
    keys.forEach((k, i) => writeFileSync(keyFile(i), k.publicText));
  });
  afterAll(async () => {
    await log.close();
  });

  test('a file:// cache is listed; its signed narinfos become /gnu/store claims (store detected)', async () => {
    const world = sampleGuixWorld('file');
    const cache = await writeGuixCache(join(dir, 'file-cache'), world, {
      key: keys[0] as GuixKeyPair,
      compressions: ['none', 'gzip'],
      signer: 'gcrypt',
    });
    const run = await submit(['--from-cache', cache.url, '--guix-key', keyFile(0)]);
    expect(run.code, run.stderr).toBe(0);
    expect(JSON.parse(run.stdout)).toMatchObject({
      total: 3,
      submitted: 3,
      untrusted: 0,
      failed: 0,
      storeDir: '/gnu/store',
    });
    await log.waitForSize(3);
    const claims = await logClaims();
    for (const item of world.items.values()) {
      const claim = claims.get(item.storePath);
      expect(claim, item.storePath).toBeDefined();
      expect(claim?.narSize).toBe(item.narSize);
      expect(claim?.references).toEqual(item.references);
      expect(claim?.deriver).toBe(item.deriver);
    }
  });

  test('over HTTP with --paths: a narinfo with a bad signature or another key’s is refused, not claimed', async () => {
    const world = sampleGuixWorld('http');
    const honest = await writeGuixCache(join(dir, 'http-cache'), world, {
      key: keys[0] as GuixKeyPair,
    });
    const other = await writeGuixCache(join(dir, 'other-cache'), world, {
      key: keys[1] as GuixKeyPair,
    });
    const lib = honest.path('libfoo-1.0');
    const app = honest.path('app-2.0+git');
    const only = honest.path('only-here-1');
    // libfoo: a signed byte changed after signing (the NarSize); app: signed by the other key.
    writeFileSync(
      lib.narinfoFile,
      lib.narinfo.replace(`NarSize: ${lib.narSize}\n`, `NarSize: ${lib.narSize + 1}\n`),
    );
    copyFileSync(other.path('app-2.0+git').narinfoFile, app.narinfoFile);
    const server = await serveGuixCache(honest);
    const before = (await logClaims()).size;
    try {
      const run = await submit(
        ['--from-cache', server.url, '--paths', '-', '--guix-key', keyFile(0)],
        [
          lib.item.storePath,
          app.item.baseName,
          only.item.hashPart,
          `/gnu/store/${'0'.repeat(32)}-absent`,
          '',
        ].join('\n'),
      );
      expect(run.code, run.stderr).toBe(0);
      const report = JSON.parse(run.stdout) as { refusals: string[] };
      expect(report).toMatchObject({ total: 4, submitted: 1, untrusted: 2, missing: 1, failed: 0 });
      expect(report.refusals.join('\n')).toContain(lib.item.hashPart);
      expect(report.refusals.join('\n')).toContain(app.item.hashPart);
      expect(run.stderr).toContain('untrusted');
      // The same narinfos under the other key: only app's is signed by it.
      const underOther = await submit(
        [
          '--from-cache',
          server.url,
          '--paths',
          '-',
          '--guix-key',
          keyFile(1),
          '--store-dir',
          '/gnu/store',
        ],
        `${lib.item.storePath}\n${app.item.storePath}\n${only.item.storePath}\n`,
      );
      expect(JSON.parse(underOther.stdout)).toMatchObject({ submitted: 1, untrusted: 2 });
    } finally {
      await server.close();
    }
    await log.waitForSize(before + 2);
    const claims = await logClaims();
    expect(claims.size).toBe(before + 2);
    expect(claims.has(only.item.storePath)).toBe(true);
    expect(claims.has(app.item.storePath)).toBe(true);
    expect(claims.has(lib.item.storePath)).toBe(false);
  });

  test('under --guix-key a Nix narinfo, even signed by a Nix key, is refused', async () => {
    const world = sampleGuixWorld('nix');
    const cache = await writeGuixCache(join(dir, 'nix-style'), world, {
      key: keys[0] as GuixKeyPair,
      only: ['only-here-1'],
    });
    const p = cache.path('only-here-1');
    const nixKey = generateNixSecretKey('cache.example-1');
    const info = {
      storePath: parseStorePath(p.item.storePath, '/gnu/store'),
      url: `nar/${p.item.baseName}`,
      compression: 'none',
      narHash: parseHash(p.claim.narHash),
      narSize: p.narSize,
      references: [],
      sigs: [],
    };
    writeFileSync(p.narinfoFile, formatNarInfo(signNarInfo(info, nixKey)));
    expect(readFileSync(p.narinfoFile, 'utf8')).toContain('Sig: cache.example-1:');
    const run = await submit(['--from-cache', cache.url, '--guix-key', keyFile(0)]);
    expect(run.code, run.stderr).toBe(0);
    expect(JSON.parse(run.stdout)).toMatchObject({ total: 1, submitted: 0, untrusted: 1 });
    expect((await logClaims()).has(p.item.storePath)).toBe(false);
  });

  test('a narinfo answered for another path (validly signed) fails and is not claimed', async () => {
    const world = sampleGuixWorld('swap');
    const cache = await writeGuixCache(join(dir, 'swap'), world, {
      key: keys[0] as GuixKeyPair,
      only: ['app-2.0+git', 'only-here-1'],
    });
    const app = cache.path('app-2.0+git');
    const only = cache.path('only-here-1');
    writeFileSync(only.narinfoFile, app.narinfo);
    const run = await submit(
      ['--from-cache', cache.url, '--paths', '-', '--guix-key', keyFile(0)],
      `${only.item.storePath}\n`,
    );
    expect(run.code).toBe(1);
    const report = JSON.parse(run.stdout) as { errors: string[] };
    expect(report).toMatchObject({ total: 1, submitted: 0, failed: 1 });
    expect(report.errors[0]).toContain(`for another path, ${app.item.baseName}`);
    // The same for a Nix narinfo (no keys asked for): another path's narinfo is no claim.
    writeFileSync(
      only.narinfoFile,
      formatNarInfo({
        storePath: parseStorePath(app.item.storePath, '/gnu/store'),
        url: `nar/${app.item.baseName}`,
        compression: 'none',
        narHash: parseHash(app.claim.narHash),
        narSize: app.narSize,
        references: app.claim.references,
        sigs: [],
      }),
    );
    const nix = await submit(
      ['--from-cache', cache.url, '--paths', '-'],
      `${only.item.hashPart}\n`,
    );
    expect(nix.code).toBe(1);
    expect(JSON.parse(nix.stdout)).toMatchObject({ storeDir: '/gnu/store', failed: 1 });
    const claims = await logClaims();
    expect(claims.has(app.item.storePath)).toBe(false);
    expect(claims.has(only.item.storePath)).toBe(false);
  });

  test('set-up errors: another store than --store-dir, a key file that is no Guix key, both kinds of key', async () => {
    const world = sampleGuixWorld('setup');
    const cache = await writeGuixCache(join(dir, 'setup'), world, { key: keys[0] as GuixKeyPair });
    const nixStore = await submit([
      '--from-cache',
      cache.url,
      '--guix-key',
      keyFile(0),
      '--store-dir',
      '/nix/store',
    ]);
    expect(nixStore.code).toBe(1);
    expect(nixStore.stderr).toContain('store is /gnu/store, not /nix/store');
    writeFileSync(join(dir, 'secret.sec'), (keys[0] as GuixKeyPair).secretText);
    const secret = await submit(['--from-cache', cache.url, '--guix-key', join(dir, 'secret.sec')]);
    expect(secret.code).toBe(2);
    expect(secret.stderr).toContain('--guix-key');
    const both = await submit([
      '--from-cache',
      cache.url,
      '--guix-key',
      keyFile(0),
      '--trusted-key',
      `x:${Buffer.alloc(32).toString('base64')}`,
    ]);
    expect(both.code).toBe(2);
  });
});
