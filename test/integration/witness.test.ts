import { createHash } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import {
  formatNarInfo,
  formatNixSecretKey,
  generateNixSecretKey,
  parseStorePath,
} from '../../src/nix/index.js';
import { type ProxyService, loadProxyConfig, startProxy } from '../../src/proxy/index.js';
import { silentLogger } from '../../src/server/index.js';
import {
  SIG_TYPE_COSIGNATURE_V1,
  SIG_TYPE_ED25519,
  formatAddCheckpoint,
  formatCheckpoint,
  formatVerifierKey,
  generateKey,
  hashLeaf,
  parseSignerKey,
  parseVerifierKey,
  parseTlogPolicy,
  parseTlogProof,
  signNote,
  verifyTlogProof,
} from '../../src/tlog/index.js';
import { type WitnessService, startWitness } from '../../src/witness/index.js';
import { makeClaim } from '../support/claims.js';
import { type TestLog, startTestLog } from '../support/log.js';
import { startServerProcess } from '../support/log-process.js';
import { serveDirectory, type StaticServer } from '../support/static-server.js';

describe('log → witness → proxy', () => {
  const dir = mkdtempSync(join(tmpdir(), 'accord-witnessed-'));
  const witnessKey = parseSignerKey(
    generateKey('witness.test/w1', SIG_TYPE_COSIGNATURE_V1).signerKey,
  );
  let witness: WitnessService;
  let witnessed: TestLog;
  let unwitnessed: TestLog;
  let cache: StaticServer;
  let proxy: ProxyService;
  const claimFor = (log: TestLog) => makeClaim(1, 0, log.origin);

  beforeAll(async () => {
    const logKeys = [generateKey('witnessed.test/log'), generateKey('unwitnessed.test/log')].map(
      (k) => parseSignerKey(k.signerKey),
    );
    witness = await startWitness({
      signer: witnessKey,
      logs: logKeys
        .map((k) => parseTlogPolicy(`log ${formatVerifierKey(k)}\nquorum none\n`).logs[0]?.verifier)
        .filter((v) => v !== undefined),
      store: { kind: 'sqlite', path: join(dir, 'witness.db') },
      host: '127.0.0.1',
      port: 0,
      logger: silentLogger,
    });
    const witnesses = [
      {
        url: witness.url,
        verifier: parseVerifierKey(formatVerifierKey(witnessKey)),
      },
    ];
    witnessed = await startTestLog({
      origin: 'witnessed.test/log',
      seed: logKeys[0]?.seed,
      witnesses,
    });
    unwitnessed = await startTestLog({ origin: 'unwitnessed.test/log', seed: logKeys[1]?.seed });
    // A cache with both paths' NARs; each log claims its own path.
    const cacheDir = join(dir, 'cache');
    const { mkdirSync } = await import('node:fs');
    mkdirSync(join(cacheDir, 'nar'), { recursive: true });
    for (const log of [witnessed, unwitnessed]) {
      const claim = claimFor(log);
      const nar = Buffer.from('not parsed by this test');
      const hashPart = claim.storePath.slice(11, 43);
      writeFileSync(join(cacheDir, 'nar', `${hashPart}.nar`), nar);
      const { parseHash } = await import('../../src/nix/index.js');
      writeFileSync(
        join(cacheDir, `${hashPart}.narinfo`),
        formatNarInfo({
          storePath: parseStorePath(claim.storePath),
          url: `nar/${hashPart}.nar`,
          compression: 'none',
          narHash: parseHash(claim.narHash),
          narSize: claim.narSize,
          references: claim.references,
          sigs: [],
        }),
      );
      expect((await log.submit([claim])).status).toBe(200);
      await log.waitForSize(1);
    }
    cache = await serveDirectory(cacheDir);
    writeFileSync(
      join(dir, 'proxy.sk'),
      formatNixSecretKey(generateNixSecretKey('witnessed-proxy-1')),
    );
    writeFileSync(
      join(dir, 'policy'),
      [
        `log ${witnessed.vkey} ${witnessed.url}`,
        `log ${unwitnessed.vkey} ${unwitnessed.url}`,
        `trust either any ${witnessed.origin} ${unwitnessed.origin}`,
        'decide either',
        `witness W ${formatVerifierKey(witnessKey)}`,
        'quorum W',
        '',
      ].join('\n'),
    );
    writeFileSync(
      join(dir, 'proxy.toml'),
      `signing-key = "proxy.sk"\npolicy = "policy"\nstate = "proxy.db"\n[[upstream]]\nurl = "${cache.url}"\n`,
    );
    proxy = await startProxy(loadProxyConfig(join(dir, 'proxy.toml')), silentLogger, '127.0.0.1:0');
  });

  afterAll(async () => {
    await proxy.close();
    await cache.close();
    await witnessed.close();
    await unwitnessed.close();
    await witness.close();
  });

  test('every server answers GET /health with what it read, and 503 when its state is unreadable', async () => {
    const health = async (url: string) => {
      const res = await fetch(`${url}/health`);
      return { status: res.status, body: (await res.json()) as Record<string, unknown> };
    };
    expect(await health(witnessed.url)).toEqual({
      status: 200,
      body: { status: 'ok', treeSize: 1 },
    });
    expect(await health(witness.url)).toEqual({ status: 200, body: { status: 'ok', logs: 2 } });
    expect(await health(proxy.url)).toEqual({
      status: 200,
      body: { status: 'ok', logs: 2, logsDistrusted: [] },
    });
    const broken = await startTestLog();
    await broken.service.storage.close();
    const failing = await health(broken.url);
    expect(failing.status).toBe(503);
    expect(failing.body).toMatchObject({ status: 'failing', reason: expect.any(String) as string });
    await broken.close().catch(() => undefined);
  });

  test('the log publishes its checkpoint with the witness cosignature', async () => {
    const checkpoint = await (await fetch(`${witnessed.url}/checkpoint`)).text();
    expect(checkpoint).toMatch(/\n— witness\.test\/w1 \S+\n$/);
    const served = await (
      await fetch(
        `${witness.url}/${createHash('sha256').update('witnessed.test/log').digest('hex')}/checkpoint`,
      )
    ).text();
    expect(served).toContain('— witness.test/w1 ');
  });

  test('a lookup proof verifies offline with only the vkeys of a policy that needs the witness', async () => {
    const hashPart = claimFor(witnessed).storePath.slice(11, 43);
    const body = (await (await fetch(`${witnessed.url}/lookup/${hashPart}`)).json()) as {
      entries: { entry: string; proof: string }[];
    };
    const entry = body.entries[0];
    const policy = parseTlogPolicy(
      `log ${witnessed.vkey}\nwitness W ${formatVerifierKey(witnessKey)}\nquorum W\n`,
    );
    const verified = verifyTlogProof(
      parseTlogProof(entry?.proof ?? ''),
      hashLeaf(Buffer.from(entry?.entry ?? '')),
      policy,
    );
    expect(verified.cosigners.map((c) => c.name)).toEqual(['W']);
  });

  test('the proxy trusts the witnessed log’s claim and refuses the unwitnessed one', async () => {
    const ok = await fetch(`${proxy.url}/${claimFor(witnessed).storePath.slice(11, 43)}.narinfo`);
    expect(ok.status).toBe(200);
    const refused = await fetch(
      `${proxy.url}/${claimFor(unwitnessed).storePath.slice(11, 43)}.narinfo`,
    );
    expect(refused.status).toBe(404);
    const explain = (await (
      await fetch(`${proxy.url}/explain/${claimFor(unwitnessed).storePath.slice(11, 43)}`)
    ).json()) as { logs: { origin: string; reason?: string }[] };
    expect(explain.logs.find((l) => l.origin === 'unwitnessed.test/log')?.reason).toMatch(
      /witness quorum/,
    );
  });
});

describe('witness crash between persisting and answering', () => {
  test('after kill -9 and restart it never cosigns two inconsistent checkpoints of one log', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'accord-witness-crash-'));
    const { signerKey } = generateKey('crash.test/w', SIG_TYPE_COSIGNATURE_V1);
    writeFileSync(join(dir, 'w.key'), `${signerKey}\n`);
    const log = parseSignerKey(generateKey('crash.test/log', SIG_TYPE_ED25519).signerKey);
    const args = [
      'witness',
      'serve',
      '--key',
      join(dir, 'w.key'),
      '--log',
      formatVerifierKey(log),
      '--store',
      `sqlite:${join(dir, 'w.db')}`,
      '--listen',
      '127.0.0.1:0',
    ];
    const cp = (size: number, fill: number) =>
      signNote(
        formatCheckpoint({
          origin: 'crash.test/log',
          treeSize: size,
          rootHash: Buffer.alloc(32, fill),
          extensions: [],
        }),
        [log],
      );
    const post = (url: string, oldSize: number, checkpoint: string) =>
      fetch(`${url}/add-checkpoint`, {
        method: 'POST',
        body: formatAddCheckpoint({ oldSize, consistencyProof: [], checkpoint }),
      });

    const crashing = await startServerProcess(args, { ACCORD_WITNESS_CRASH_AFTER_PERSIST: '1' });
    const exited = new Promise((resolve) =>
      crashing.child.once('exit', (_code: number | null, signal: NodeJS.Signals | null) =>
        resolve(signal),
      ),
    );
    // The witness stores size 5 (root 1), then dies before answering: no cosignature arrives.
    await expect(post(crashing.url, 0, cp(5, 1))).rejects.toThrow();
    expect(await exited).toBe('SIGKILL');

    const restarted = await startServerProcess(args);
    try {
      // It remembers what it persisted: it is at size 5, so "from 0" is a conflict …
      const conflict = await post(restarted.url, 0, cp(5, 1));
      expect(conflict.status).toBe(409);
      expect(await conflict.text()).toBe('5\n');
      expect(conflict.headers.get('content-type')).toBe('text/x.tlog.size');
      // … the same checkpoint is cosigned again, and nothing inconsistent with it ever is:
      // not another root for size 5, from 5 or from 0, nor an extension without a valid proof.
      expect((await post(restarted.url, 5, cp(5, 1))).status).toBe(200);
      expect((await post(restarted.url, 5, cp(5, 2))).status).toBe(422);
      expect((await post(restarted.url, 0, cp(5, 2))).status).toBe(409);
      expect((await post(restarted.url, 5, cp(9, 3))).status).toBe(422);
    } finally {
      await restarted.kill('SIGTERM');
    }
  });
});
