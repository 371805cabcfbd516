/**
 * The trust kernel's table of cases, played by a scripted log to the real proxy and the real
 * monitor over HTTP: a corrupted tile never distrusts a log nor makes a finding, a replayed
 * older checkpoint is nothing, and each real fork distrusts the log (proxy) or is a finding
 * (monitor) with evidence that verifies with the log's key alone. Also: a distrusted log's
 * stored claims stop counting, and a monitor's word without evidence distrusts nothing.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { Monitor, MonitorStore } from '../../src/monitor/index.js';
import { generateNixSecretKey } from '../../src/nix/index.js';
import { type LogObservation, decide, parsePolicy } from '../../src/policy/index.js';
import { type ProxyConfig, openResolver } from '../../src/proxy/index.js';
import { close, listen, silentLogger } from '../../src/server/index.js';
import {
  SIG_TYPE_ED25519,
  formatVerifierKey,
  newSigner,
  parseVerifierKey,
  verifyForkEvidence,
} from '../../src/tlog/index.js';
import { hashPartOf } from '../support/claims.js';
import { runAccord } from '../support/cli.js';
import { KERNEL_CASES, type KernelCase, KernelWorld } from '../support/kernel-cases.js';
import { scriptedLog } from '../support/scripted-log.js';

const signer = newSigner('kernel.test/log', SIG_TYPE_ED25519, new Uint8Array(32).fill(11));
const vkey = formatVerifierKey(signer);
const verifier = parseVerifierKey(vkey);
const world = new KernelWorld(signer);
const ORIGIN = signer.name;
/** Test path 0: claimed in both histories at every size. */
const PATH = hashPartOf(0);

let log: Awaited<ReturnType<typeof scriptedLog>>;
const dir = mkdtempSync(join(tmpdir(), 'accord-kernel-'));
let n = 0;

beforeAll(async () => {
  log = await scriptedLog(world);
});
afterAll(async () => {
  await log.close();
});

function proxyConfig(monitors: readonly string[] = []): ProxyConfig {
  return {
    listen: '127.0.0.1:0',
    signingKey: generateNixSecretKey('kernel-proxy-1'),
    moreSigningKeys: [],
    policy: parsePolicy(
      [`log ${vkey} ${log.url}`, `trust one 1 ${ORIGIN}`, 'decide one', 'quorum none', ''].join(
        '\n',
      ),
    ),
    statePath: join(dir, `proxy-${n++}.db`),
    storeDir: '/nix/store',
    priority: 40,
    logTimeoutMs: 3000,
    narinfoDeadlineMs: 5000,
    cacheTtlSeconds: 0,
    negativeTtlSeconds: 0,
    storedSignatureMaxAgeMs: 0,
    statementRefreshMs: 0,
    narCacheBytes: 0,
    narDiskDir: join(dir, `nars-${n}`),
    narDiskBytes: 0,
    verifyBeforeSendBytes: 0,
    prefetchReferences: false,
    prefetchNars: false,
    upstreams: [],
    monitors,
  };
}

/** What the log serves for a case's new checkpoint: with its fault, or the right data. */
const scriptFor = (c: KernelCase, repaired = false) => ({
  checkpoint: c.next,
  tiles: KernelWorld.larger(c)[0],
  ...(c.fault === undefined || repaired ? {} : { fault: c.fault }),
});

const live = (o: LogObservation) => o.status === 'answered' && o.stored !== true;

describe('the proxy runs the trust kernel table', () => {
  test.each(KERNEL_CASES)('$name: $expect', async (c) => {
    const { resolver, state } = openResolver(proxyConfig(), silentLogger);
    const client = resolver.logs[0];
    if (client === undefined) throw new Error('bug: no log client');
    try {
      log.show({ checkpoint: c.last });
      expect(live(await client.observe(PATH))).toBe(true);
      log.show(scriptFor(c));
      const seen = await client.observe(PATH);
      const stored = () => state.checkpoint(ORIGIN)?.size;
      const distrusted = state.distrusted(ORIGIN);
      if (c.expect === 'fork') {
        expect(distrusted?.reason).toMatch(/^fork: /);
        expect(verifyForkEvidence(distrusted?.evidence ?? '', [verifier]).origin).toBe(ORIGIN);
        expect(seen.status).toBe('missing');
        return;
      }
      expect(distrusted).toBeUndefined();
      if (c.expect === 'bad-data') {
        // A missing live vote: the claims verified before stand, nothing moves.
        expect(seen).toMatchObject({ status: 'answered', stored: true });
        expect(stored()).toBe(c.last[1]);
        // The right data, once it comes, shows what the bad data hid.
        log.show(scriptFor(c, true));
        const again = await client.observe(PATH);
        if (c.clean === 'fork') {
          expect(
            verifyForkEvidence(state.distrusted(ORIGIN)?.evidence ?? '', [verifier]),
          ).toBeTruthy();
        } else {
          expect(live(again)).toBe(true);
          expect(stored()).toBe(Math.max(c.last[1], c.next[1]));
        }
        return;
      }
      expect(live(seen)).toBe(true);
      expect(stored()).toBe(c.expect === 'extends' ? c.next[1] : c.last[1]);
    } finally {
      state.close();
    }
  });

  test("a distrusted log's claims verified before stop counting", async () => {
    const config = proxyConfig();
    const { resolver, state } = openResolver(config, silentLogger);
    const client = resolver.logs[0];
    if (client === undefined) throw new Error('bug: no log client');
    try {
      log.show({ checkpoint: ['honest', 9] });
      expect(decide(config.policy, [await client.observe(PATH)]).verdict).toBe('trusted');
      // The log goes offline: its stored claims still count (evidence that stays valid) …
      log.show({ checkpoint: ['honest', 9], tilesOnline: false });
      expect(decide(config.policy, [client.fallback(PATH, 'offline')]).verdict).toBe('trusted');
      // … until it is caught forking: then nothing it ever said counts.
      log.show({ checkpoint: ['forked', 9] });
      const after = await client.observe(PATH);
      expect(state.distrusted(ORIGIN)).toBeDefined();
      expect(after.status).toBe('missing');
      expect(decide(config.policy, [after]).verdict).not.toBe('trusted');
      expect(decide(config.policy, [client.fallback(PATH, 'offline')]).verdict).not.toBe('trusted');
    } finally {
      state.close();
    }
  });

  test("a monitor's fork answer distrusts only with evidence that verifies", async () => {
    // A monitor that calls every checkpoint a fork: first with nothing to show, then with
    // evidence of another log's fork, then with real evidence of this log's fork.
    let answer: unknown = { status: 'fork' };
    const monitor = createServer((req, res) => {
      req.resume();
      req.on('end', () => res.writeHead(200).end(JSON.stringify(answer)));
    });
    const url = await listen(monitor, '127.0.0.1', 0);
    const { resolver, state, gossip } = openResolver(proxyConfig([url]), silentLogger);
    const client = resolver.logs[0];
    if (client === undefined) throw new Error('bug: no log client');
    const other = new KernelWorld(
      newSigner('other.test/log', SIG_TYPE_ED25519, new Uint8Array(32).fill(12)),
    );
    const forkOf = async (w: KernelWorld) => {
      const h = await w.checkpoint('honest', 9);
      const f = await w.checkpoint('forked', 9);
      const notes = Buffer.compare(Buffer.from(h.rootHash), Buffer.from(f.rootHash)) < 0;
      const { formatForkEvidence } = await import('../../src/tlog/index.js');
      return formatForkEvidence({ notes: notes ? [h.note, f.note] : [f.note, h.note], proof: [] });
    };
    try {
      for (const [size, body] of [
        [3, { status: 'fork' }],
        [4, { status: 'fork', evidence: 'accord/fork-evidence/v1\n\nnot notes' }],
        [5, { status: 'fork', evidence: await forkOf(other) }],
      ] as const) {
        answer = body;
        log.show({ checkpoint: ['honest', size] });
        expect(live(await client.observe(PATH))).toBe(true);
        await gossip.drain();
        expect(state.distrusted(ORIGIN)).toBeUndefined();
      }
      answer = { status: 'fork', evidence: await forkOf(world) };
      log.show({ checkpoint: ['honest', 6] });
      await client.observe(PATH);
      await gossip.drain();
      expect(state.distrusted(ORIGIN)?.reason).toMatch(/^fork: shown by monitor/);
      expect(verifyForkEvidence(state.distrusted(ORIGIN)?.evidence ?? '', [verifier])).toBeTruthy();
    } finally {
      state.close();
      await close(monitor, 100);
    }
  });
});

describe('the monitor runs the trust kernel table', () => {
  test.each(KERNEL_CASES)('$name: $expect', async (c) => {
    const store = new MonitorStore(join(dir, `monitor-${n++}.db`));
    const monitor = new Monitor({
      store,
      logs: [{ origin: ORIGIN, url: log.url, verifier }],
      witnesses: [],
      storeDir: '/nix/store',
      logger: silentLogger,
      timeoutMs: 3000,
      concurrency: 2,
    });
    try {
      log.show({ checkpoint: c.last });
      expect(await monitor.poll(ORIGIN)).toMatchObject({ size: c.last[1] });
      log.show(scriptFor(c));
      const result = await monitor.poll(ORIGIN);
      // A smaller (or equal) checkpoint is related with the monitor's own verified copy of the
      // tree, which no fault on the way can touch.
      const expected = c.next[1] <= c.last[1] ? (c.clean ?? c.expect) : c.expect;
      const forks = store.findings().filter((f) => f.kind === 'fork');
      const verified = store.log(ORIGIN)?.verifiedSize;
      if (expected === 'fork') {
        expect(forks).toHaveLength(1);
        const { evidence } = forks[0]?.evidence as { evidence: string };
        expect(verifyForkEvidence(evidence, [verifier]).origin).toBe(ORIGIN);
        expect(verified).toBe(c.last[1]);
        return;
      }
      expect(store.findings()).toEqual([]);
      if (expected === 'bad-data') {
        expect(result.error).toMatch(/tiles do not relate/);
        expect(verified).toBe(c.last[1]);
        return;
      }
      expect(result.error).toBeUndefined();
      expect(verified).toBe(expected === 'extends' ? c.next[1] : c.last[1]);
    } finally {
      store.close();
    }
  });
});

describe('accord verify-evidence', () => {
  test('checks the evidence a proxy stored offline: 0 for a fork, 1 for anything edited', async () => {
    const { resolver, state } = openResolver(proxyConfig(), silentLogger);
    const client = resolver.logs[0];
    if (client === undefined) throw new Error('bug: no log client');
    try {
      log.show({ checkpoint: ['honest', 5] });
      await client.observe(PATH);
      log.show({ checkpoint: ['forked', 9] });
      await client.observe(PATH);
      const evidence = state.distrusted(ORIGIN)?.evidence ?? '';
      const file = join(dir, 'fork.evidence');
      writeFileSync(file, evidence);
      const ok = await runAccord(['verify-evidence', file, '--key', vkey]);
      expect(ok).toMatchObject({ code: 0, stderr: '' });
      expect(ok.stdout).toMatch(
        /^fork evidence verified: kernel\.test\/log signed checkpoints of sizes 5 and 9 that cannot both be true/,
      );
      const policy = join(dir, 'policy');
      writeFileSync(
        policy,
        `log ${vkey} http://127.0.0.1:9\ntrust one 1 ${ORIGIN}\ndecide one\nquorum none\n`,
      );
      const json = await runAccord(['verify-evidence', '-', '--policy', policy, '--json'], {
        input: evidence,
      });
      expect(json.code).toBe(0);
      expect(JSON.parse(json.stdout)).toMatchObject({
        verified: true,
        origin: ORIGIN,
        sizes: [5, 9],
      });
      // One changed hash line is no longer evidence.
      const lines = evidence.split('\n');
      lines[1] = `${lines[1]?.[0] === 'A' ? 'B' : 'A'}${lines[1]?.slice(1) ?? ''}`;
      writeFileSync(file, lines.join('\n'));
      const edited = await runAccord(['verify-evidence', file, '--key', vkey]);
      expect(edited.code).toBe(1);
      expect(edited.stderr).toMatch(/^accord verify-evidence: not fork evidence: /);
      // Another log's key proves nothing about this log.
      const other = formatVerifierKey(
        newSigner(ORIGIN, SIG_TYPE_ED25519, new Uint8Array(32).fill(13)),
      );
      writeFileSync(file, evidence);
      expect((await runAccord(['verify-evidence', file, '--key', other])).code).toBe(1);
      expect((await runAccord(['verify-evidence', file])).code).toBe(2);
    } finally {
      state.close();
    }
  });
});
