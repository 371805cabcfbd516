/**
 * `accord audit` after a revocation, with real Nix: builder 1 (named in the policy by its
 * identity's root key) vouches for a tampered path with a key that is then revoked as
 * compromised since before that claim; Nix had already substituted it through the proxy. The
 * audit names that path `revoked` with the revocation as its evidence, online and offline,
 * while a path the same key vouched for before the revocation time stays ok.
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import {
  type KeyStatement,
  checkStatement,
  formatStatement,
  signStatement,
  statementHash,
} from '../../src/identity/index.js';
import {
  encodeNix32,
  formatNixPublicKey,
  formatNixSecretKey,
  generateNixSecretKey,
  parseNarInfo,
} from '../../src/nix/index.js';
import { loadProxyConfig, startProxy } from '../../src/proxy/index.js';
import { silentLogger } from '../../src/server/index.js';
import {
  SIG_TYPE_ED25519,
  formatVerifierKey,
  newSigner,
  parseVerifierKey,
} from '../../src/tlog/index.js';
import { runAccord } from '../support/cli.js';
import { type TestLog, startTestLog } from '../support/log.js';
import { build, nix, serveOtherBytes, shDerivation, substituteFrom } from '../support/nix.js';
import { HAVE_NIX, requireAvailable, shouldRun } from '../support/requirements.js';
import { type StaticServer, serveDirectory } from '../support/static-server.js';

const ORIGIN = 'audit-revoke.test/log';
const seed = (n: number) => createHash('sha256').update(`audit revoke key ${n}`).digest();
const logKey = (n: number) => newSigner(ORIGIN, SIG_TYPE_ED25519, seed(n));
const root = newSigner('audit-revoke.test', SIG_TYPE_ED25519, new Uint8Array(32).fill(9));
const now = () => Math.floor(Date.now() / 1000);

interface AuditJson {
  counts: Record<string, number>;
  failures: {
    path: string;
    category: string;
    members?: string[];
    reason: string;
    evidence: { logs: { origin: string; excluded?: { reason: string }[] }[] };
  }[];
}

describe.runIf(shouldRun(HAVE_NIX))('accord audit after a key revocation', () => {
  const dir = mkdtempSync(join(tmpdir(), 'accord-audit-revoke-'));
  const run = `audit-revoke-${Date.now()}`;
  const config = join(dir, 'proxy.toml');
  const chain: KeyStatement[] = [];
  const paths: Record<string, string> = {};
  let builder1: TestLog;
  let port = 0;
  let cache: StaticServer;

  const startBuilder1 = (n: number) =>
    startTestLog({
      origin: ORIGIN,
      seed: seed(n),
      store: { kind: 'sqlite', path: join(dir, 'b1.db') },
      ...(port === 0 ? {} : { port }),
      identity: { root: parseVerifierKey(formatVerifierKey(root)) },
    });
  async function publish(keys: KeyStatement['keys'], revocations: KeyStatement['revocations']) {
    const previous = chain.at(-1);
    const s = checkStatement({
      identity: 'audit-revoke.test',
      sequence: chain.length,
      ...(previous === undefined ? {} : { previous: statementHash(formatStatement(previous)) }),
      issued: now(),
      keys,
      revocations,
    });
    const note = signStatement(s, root);
    const res = await builder1.submitStatement(note).catch(() => builder1.submitStatement(note));
    expect(res.status).toBe(200);
    chain.push(s);
    await builder1.waitForSize((await builder1.service.storage.state()).nextIndex);
  }
  async function claim(name: string) {
    const path = paths[name] ?? '';
    const info = parseNarInfo(
      readFileSync(join(dir, 'cache', `${path.slice(11, 43)}.narinfo`), 'utf8'),
    );
    const claims = [
      {
        storePath: path,
        narHash: `sha256:${encodeNix32(info.narHash.digest)}`,
        narSize: info.narSize,
        references: [...info.references],
      },
    ];
    const res = await builder1.submit(claims).catch(() => builder1.submit(claims));
    expect(res.status).toBe(200);
    await builder1.waitForSize((await builder1.service.storage.state()).nextIndex);
  }
  const audit = async (args: string[]) => {
    const list = join(dir, 'paths');
    writeFileSync(list, `${paths.early ?? ''}\n${paths.tampered ?? ''}\n`);
    const r = await runAccord(['audit', '--config', config, '--json', '--paths', list, ...args]);
    return { code: r.code, stderr: r.stderr, json: JSON.parse(r.stdout || '{}') as AuditJson };
  };

  beforeAll(async () => {
    requireAvailable(HAVE_NIX, 'nix');
    for (const name of ['early', 'tampered']) {
      const [p] = await build(
        shDerivation(
          `audit-revoke-${name}`,
          `/bin/mkdir $out; echo ${name} payload > $out/data`,
          run,
        ),
      );
      paths[name] = p ?? '';
    }
    await nix('nix', [
      'copy',
      '--to',
      `file://${dir}/cache?compression=none`,
      ...Object.values(paths),
    ]);
    // The cache's `tampered` is other bytes, which the stolen key will vouch for.
    serveOtherBytes(join(dir, 'cache'), paths.tampered ?? '');
    cache = await serveDirectory(join(dir, 'cache'));
    builder1 = await startBuilder1(1);
    port = Number(new URL(builder1.url).port);
    await publish([{ kind: 'log', key: formatVerifierKey(logKey(1)), from: now() - 3600 }], []);
    const proxyKey = generateNixSecretKey('audit-revoke-proxy-1');
    writeFileSync(join(dir, 'proxy.sk'), formatNixSecretKey(proxyKey));
    writeFileSync(
      join(dir, 'policy'),
      [
        `identity ${formatVerifierKey(root)} ${ORIGIN} ${builder1.url}`,
        `decide ${ORIGIN}`,
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
        'cache-ttl-seconds = 0',
        'negative-ttl-seconds = 0',
        'statement-refresh-seconds = 0',
        `[[upstream]]\nurl = "${cache.url}"`,
        '',
      ].join('\n'),
    );
    await Promise.all(Object.values(paths).map((p) => nix('nix-store', ['--delete', p])));
    const proxy = await startProxy(loadProxyConfig(config), silentLogger);
    try {
      const substitute = (name: string) =>
        substituteFrom(proxy.url, formatNixPublicKey(proxyKey), [paths[name] ?? '']);
      await claim('early');
      await substitute('early');
      const since = now() + 1;
      while (now() <= since) await new Promise((r) => setTimeout(r, 100));
      await claim('tampered');
      await substitute('tampered');
      expect(readFileSync(join(paths.tampered ?? '', 'data'), 'utf8')).toBe('tampered Payload\n');
      // The root revokes key 1 as compromised since T (still naming it: what it signed before T
      // counts) and names key 2; the log restarts with key 2.
      await publish(
        [
          ...(chain.at(-1)?.keys ?? []),
          { kind: 'log', key: formatVerifierKey(logKey(2)), from: now() },
        ],
        [{ kind: 'log', key: formatVerifierKey(logKey(1)), since }],
      );
    } finally {
      await proxy.close();
    }
    await builder1.close();
    builder1 = await startBuilder1(2);
  }, 180_000);

  afterAll(async () => {
    await builder1.close().catch(() => undefined);
    await cache.close();
  });

  test('accord audit names the substituted path the revoked key vouched for, with the revocation as evidence', async () => {
    const r = await audit([]);
    expect(r.code, r.stderr).toBe(1);
    expect(r.json.counts).toMatchObject({ ok: 1, revoked: 1 });
    const [failure] = r.json.failures;
    expect(failure).toMatchObject({ path: paths.tampered, category: 'revoked', members: [ORIGIN] });
    const log = failure?.evidence.logs.find((l) => l.origin === ORIGIN);
    expect(log?.excluded?.[0]?.reason).toMatch(/revoked as compromised/);
  });

  test('accord audit --offline, with the log stopped, names it from the stored statements and claims', async () => {
    await builder1.close();
    const r = await audit(['--offline']);
    expect(r.code, r.stderr).toBe(1);
    expect(r.json.failures.map((f) => [f.path, f.category])).toEqual([[paths.tampered, 'revoked']]);
    expect(r.json.counts.ok).toBe(1);
  });
});
