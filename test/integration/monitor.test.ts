/**
 * The monitor against real log servers, and against malicious ones: two real logs sharing one
 * key (a fork shown to one client), a log that appends a second NAR for a path, and a front
 * that rewrites what a log serves.
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { type IncomingMessage, type ServerResponse, createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { entryFromJson } from '../../src/claim/index.js';
import {
  type Finding,
  Monitor,
  type MonitorService,
  MonitorStore,
  startMonitor,
} from '../../src/monitor/index.js';
import { formatNixSecretKey, generateNixSecretKey } from '../../src/nix/index.js';
import { parsePolicy } from '../../src/policy/index.js';
import { type ProxyService, loadProxyConfig, startProxy } from '../../src/proxy/index.js';
import { close, listen, silentLogger } from '../../src/server/index.js';
import {
  SIG_TYPE_COSIGNATURE_V1,
  SIG_TYPE_ED25519,
  type Tile,
  formatAddCheckpoint,
  formatEntryBundle,
  formatVerifierKey,
  generateKey,
  hashLeaf,
  parseEntryBundle,
  parseSignerKey,
  parseTlogPolicy,
  parseTlogProof,
  parseVerifierKey,
  proveConsistency,
  tileHashReader,
  tilePath,
  verifyForkEvidence,
  verifyTlogProof,
} from '../../src/tlog/index.js';
import { type WitnessService, startWitness } from '../../src/witness/index.js';
import { hashPartOf, makeClaim } from '../support/claims.js';
import { runAccord } from '../support/cli.js';
import { type TestLog, startTestLog } from '../support/log.js';

const ORIGIN = 'fork.test/log';

function policyText(logs: readonly TestLog[], extra: readonly string[] = [], urls?: string[]) {
  return [
    ...logs.map((l, i) => `log ${l.vkey} ${urls?.[i] ?? l.url}`),
    `trust all-logs any ${[...new Set(logs.map((l) => l.origin))].join(' ')}`,
    'decide all-logs',
    ...extra,
    ...(extra.some((l) => l.startsWith('quorum ')) ? [] : ['quorum none']),
    '',
  ].join('\n');
}

async function monitorFor(
  policy: string,
  options: { alerts?: { command?: string; webhook?: string }; statePath?: string } = {},
) {
  const dir = mkdtempSync(join(tmpdir(), 'accord-monitor-'));
  return startMonitor({
    policy: parsePolicy(policy),
    statePath: options.statePath ?? join(dir, 'monitor.db'),
    storeDir: '/nix/store',
    logger: silentLogger,
    intervalMs: 0,
    timeoutMs: 5000,
    concurrency: 4,
    listen: { host: '127.0.0.1', port: 0 },
    ...(options.alerts === undefined ? {} : { alerts: options.alerts }),
  });
}

const text = async (url: string) => (await fetch(url)).text();

function remoteTiles(url: string, size: number) {
  return tileHashReader(size, {
    readTiles: (tiles: readonly Tile[]) =>
      Promise.all(
        tiles.map(
          async (t) => new Uint8Array(await (await fetch(`${url}/${tilePath(t)}`)).arrayBuffer()),
        ),
      ),
  });
}

describe('a log forked for one client', () => {
  const dir = mkdtempSync(join(tmpdir(), 'accord-fork-'));
  const logKey = parseSignerKey(generateKey(ORIGIN, SIG_TYPE_ED25519).signerKey);
  const witnessKey = parseSignerKey(generateKey('fork.test/w', SIG_TYPE_COSIGNATURE_V1).signerKey);
  let witness: WitnessService;
  let honest: TestLog; // what everyone sees
  let forked: TestLog; // what the victim proxy is shown: same key, another history
  let monitor: MonitorService;
  let proxy: ProxyService;
  const policyExtra = [`witness W ${formatVerifierKey(witnessKey)}`, 'quorum W'];

  beforeAll(async () => {
    witness = await startWitness({
      signer: witnessKey,
      logs: [parseVerifierKey(formatVerifierKey(logKey))],
      store: { kind: 'sqlite', path: join(dir, 'witness.db') },
      host: '127.0.0.1',
      port: 0,
      logger: silentLogger,
    });
    honest = await startTestLog({
      origin: ORIGIN,
      seed: logKey.seed,
      witnesses: [{ url: witness.url, verifier: parseVerifierKey(formatVerifierKey(witnessKey)) }],
    });
    forked = await startTestLog({ origin: ORIGIN, seed: logKey.seed });
    // A shared first entry, then path 1 with one NAR in public and another in the fork.
    for (const [log, variant] of [
      [honest, 0],
      [forked, 1],
    ] as const) {
      expect((await log.submit([makeClaim(0)])).status).toBe(200);
      await log.waitForSize(1);
      expect((await log.submit([makeClaim(1, variant)])).status).toBe(200);
      await log.waitForSize(2);
    }
    // The honest log publishes size 2 once the witness has cosigned it.
    for (
      let i = 0;
      !/\n2\n[\s\S]*— fork\.test\/w /.test(await text(`${honest.url}/checkpoint`));
      i++
    ) {
      if (i > 200) throw new Error('the witness did not cosign size 2');
      await new Promise((r) => setTimeout(r, 25));
    }
    monitor = await monitorFor(policyText([honest], policyExtra));
    expect((await monitor.pollAll())[0]).toMatchObject({ size: 2, added: 2 });

    writeFileSync(join(dir, 'proxy.sk'), formatNixSecretKey(generateNixSecretKey('victim-1')));
    writeFileSync(join(dir, 'policy'), policyText([forked], policyExtra));
    writeFileSync(
      join(dir, 'proxy.toml'),
      [
        'signing-key = "proxy.sk"',
        'policy = "policy"',
        'state = "proxy.db"',
        `monitors = ["${monitor.url ?? ''}"]`,
        '[[upstream]]',
        'url = "http://127.0.0.1:9"',
        '',
      ].join('\n'),
    );
    proxy = await startProxy(loadProxyConfig(join(dir, 'proxy.toml')), silentLogger, '127.0.0.1:0');
  });

  afterAll(async () => {
    await proxy.close();
    await monitor.close();
    await forked.close();
    await honest.close();
    await witness.close();
  });

  test('the two logs really are one key with two histories', async () => {
    const [a, b] = [await text(`${honest.url}/checkpoint`), await text(`${forked.url}/checkpoint`)];
    expect(a.split('\n')[0]).toBe(ORIGIN);
    expect(b.split('\n')[0]).toBe(ORIGIN);
    expect(a.split('\n')[1]).toBe('2');
    expect(b.split('\n')[1]).toBe('2');
    expect(a.split('\n')[2]).not.toBe(b.split('\n')[2]);
  });

  test('a proxy with a witness quorum refuses the fork’s claims and hands its checkpoint to the monitor', async () => {
    const res = await fetch(`${proxy.url}/${hashPartOf(1)}.narinfo`);
    expect(res.status).toBe(404);
    const explain = (await (await fetch(`${proxy.url}/explain/${hashPartOf(1)}`)).json()) as {
      logs: { origin: string; reason?: string }[];
    };
    expect(JSON.stringify(explain.logs)).toMatch(/witness quorum|distrusted/);
    await proxy.gossip.drain();
    // The monitor found the fork from the gossiped checkpoint and the proxy distrusts the log.
    const forks = monitor.store.findings().filter((f) => f.kind === 'fork');
    expect(forks).toHaveLength(1);
    const evidence = forks[0]?.evidence as { checkpoints: { note: string; source: string }[] };
    const forkedNote = await text(`${forked.url}/checkpoint`);
    expect(evidence.checkpoints.map((c) => c.note.split('\n')[2])).toContain(
      (await text(`${honest.url}/checkpoint`)).split('\n')[2],
    );
    expect(evidence.checkpoints.map((c) => c.note)).toContain(forkedNote);
    expect(evidence.checkpoints.find((c) => c.note === forkedNote)?.source).toMatch(/^proxy /);
    expect(proxy.state.distrusted(ORIGIN)?.reason).toMatch(/fork/);
  });

  test('both signed checkpoints in the finding verify with the log key alone', async () => {
    const [fork] = monitor.store.findings().filter((f) => f.kind === 'fork');
    const { checkpoints } = fork?.evidence as { checkpoints: { note: string }[] };
    const policy = parseTlogPolicy(`log ${honest.vkey}\nquorum none\n`);
    const { openCheckpoint } = await import('../../src/tlog/index.js');
    const opened = checkpoints.map((c) =>
      openCheckpoint(
        c.note,
        policy.logs.map((l) => l.verifier),
      ),
    );
    expect(opened.map((o) => o.checkpoint.origin)).toEqual([ORIGIN, ORIGIN]);
    // One is the verified size-2 tree; the other is not in it.
    expect(opened[0]?.checkpoint.rootHash).not.toEqual(opened[1]?.checkpoint.rootHash);
  });

  test('the witness answers the fork with 409 and then 422, as tlog-witness says', async () => {
    const note = (await text(`${forked.url}/checkpoint`)).replace(/\n— fork\.test\/w .*\n$/, '\n');
    const post = (body: string) => fetch(`${witness.url}/add-checkpoint`, { method: 'POST', body });
    // Old size 0: the witness knows size 2 already.
    const stale = await post(
      formatAddCheckpoint({ oldSize: 0, consistencyProof: [], checkpoint: note }),
    );
    expect(stale.status).toBe(409);
    expect(stale.headers.get('content-type')).toBe('text/x.tlog.size');
    expect(await stale.text()).toBe('2\n');
    // The right old size, but the same size with another root.
    const same = await post(
      formatAddCheckpoint({ oldSize: 2, consistencyProof: [], checkpoint: note }),
    );
    expect(same.status).toBe(422);
    // The fork grows: its own consistency proof from 2 does not verify against the witness's root.
    expect((await forked.submit([makeClaim(2, 1)])).status).toBe(200);
    await forked.waitForSize(3);
    const grown = await text(`${forked.url}/checkpoint`);
    const proof = await proveConsistency(2, 3, remoteTiles(forked.url, 3));
    const longer = await post(
      formatAddCheckpoint({ oldSize: 2, consistencyProof: proof, checkpoint: grown }),
    );
    expect(longer.status).toBe(422);
  });

  test('a fork checkpoint gossiped before the monitor got that far is caught when it does', async () => {
    const late = await monitorFor(policyText([honest], policyExtra));
    try {
      const forkNote = await text(`${forked.url}/checkpoint`); // size 3
      const early = await fetch(`${late.url ?? ''}/checkpoints`, {
        method: 'POST',
        body: forkNote,
      });
      expect(early.status).toBe(200);
      expect(await early.json()).toMatchObject({ status: 'pending', size: 3 });
      expect((await honest.submit([makeClaim(2)])).status).toBe(200);
      await honest.waitForSize(3);
      await late.pollAll();
      const forks = late.store.findings().filter((f) => f.kind === 'fork');
      expect(forks).toHaveLength(1);
      expect(forks[0]?.summary).toMatch(/two roots for size 3/);
    } finally {
      await late.close();
    }
  });

  test('two gossiped checkpoints of one size with two roots are a fork, even unverified', async () => {
    // The monitor cannot reach the log: it has verified nothing, yet the two notes suffice.
    const blind = await monitorFor(policyText([honest], policyExtra, ['http://127.0.0.1:9']));
    try {
      const post = async (note: string) =>
        (await (
          await fetch(`${blind.url ?? ''}/checkpoints`, { method: 'POST', body: note })
        ).json()) as { status: string };
      expect(await post(await text(`${honest.url}/checkpoint`))).toMatchObject({
        status: 'pending',
      });
      const answer = (await post(await text(`${forked.url}/checkpoint`))) as {
        status: string;
        evidence?: string;
      };
      expect(answer.status).toBe('fork');
      expect(blind.store.findings().map((f) => f.summary)).toEqual([
        `fork: ${ORIGIN}: two roots for size 3 (proxy 127.0.0.1 and proxy 127.0.0.1)`,
      ]);
      // The answer carries evidence anyone can check with the log's key alone.
      const verified = verifyForkEvidence(answer.evidence ?? '', [parseVerifierKey(honest.vkey)]);
      expect(verified.checkpoints.map((c) => c.treeSize)).toEqual([3, 3]);
    } finally {
      await blind.close();
    }
  });

  test('a log that switches to another history is caught by the monitor following it', async () => {
    // A front that serves the honest log, then the forked one (a log rewriting its history).
    let target = honest.url;
    const front = createServer((req: IncomingMessage, res: ServerResponse) => {
      void fetch(`${target}${req.url ?? '/'}`).then(async (r) => {
        res.writeHead(r.status, { 'content-type': r.headers.get('content-type') ?? 'text/plain' });
        res.end(Buffer.from(await r.arrayBuffer()));
      });
    });
    const url = await listen(front, '127.0.0.1', 0);
    const watcher = await monitorFor(policyText([honest], policyExtra, [url]));
    try {
      expect((await watcher.pollAll())[0]?.error).toBeUndefined();
      expect((await forked.submit([makeClaim(3, 1)])).status).toBe(200);
      await forked.waitForSize(4);
      target = forked.url;
      const [result] = await watcher.pollAll();
      expect(result?.error).toMatch(/forks from the verified tree/);
      const forks = watcher.store.findings().filter((f) => f.kind === 'fork');
      expect(forks).toHaveLength(1);
      expect(forks[0]?.summary).toMatch(/size 3 is not a prefix of size 4/);
      const { evidence } = forks[0]?.evidence as { evidence: string };
      expect(verifyForkEvidence(evidence, [parseVerifierKey(honest.vkey)]).origin).toBe(ORIGIN);
      // It keeps the verified tree and does not ingest the other history.
      expect(watcher.store.log(ORIGIN)?.verifiedSize).toBe(3);
    } finally {
      await watcher.close();
      await close(front);
    }
  });
});

describe('what logs claim', () => {
  let a: TestLog;
  let b: TestLog;
  let monitor: MonitorService;
  const alerts: string[] = [];
  const dir = mkdtempSync(join(tmpdir(), 'accord-claims-'));
  let hook: ReturnType<typeof createServer>;

  beforeAll(async () => {
    a = await startTestLog({ origin: 'a.test/log' });
    b = await startTestLog({ origin: 'b.test/log' });
    hook = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        alerts.push(Buffer.concat(chunks).toString());
        res.writeHead(204).end();
      });
    });
    const hookUrl = await listen(hook, '127.0.0.1', 0);
    // 300 entries in a (crossing a tile boundary), 20 in b; b disagrees on path 5.
    const claims = Array.from({ length: 300 }, (_, i) => makeClaim(i));
    expect((await a.submit(claims)).status).toBe(200);
    await a.waitForSize(300);
    expect(
      (await b.submit(Array.from({ length: 20 }, (_, i) => makeClaim(i, i === 5 ? 7 : 0)))).status,
    ).toBe(200);
    await b.waitForSize(20);
    monitor = await monitorFor(policyText([a, b]), {
      alerts: {
        command: `cat >> ${join(dir, 'alerts.jsonl')}; echo "$ACCORD_FINDING_KIND" >> ${join(dir, 'kinds')}`,
        webhook: `${hookUrl}/hook`,
      },
      statePath: join(dir, 'monitor.db'),
    });
  });

  afterAll(async () => {
    await monitor.close();
    await a.close();
    await b.close();
    await close(hook);
  });

  test('it downloads, verifies and indexes every entry', async () => {
    const results = await monitor.pollAll();
    expect(results.map((r) => [r.origin, r.size, r.added])).toEqual([
      ['a.test/log', 300, 300],
      ['b.test/log', 20, 20],
    ]);
    const path = await (await fetch(`${monitor.url ?? ''}/paths/${hashPartOf(7)}`)).json();
    expect(path).toMatchObject({
      hashPart: hashPartOf(7),
      agree: true,
      claims: [
        { log: 'a.test/log', index: 7, narHash: makeClaim(7).narHash },
        { log: 'b.test/log', index: 7, narHash: makeClaim(7).narHash },
      ],
    });
    const logs = (await (await fetch(`${monitor.url ?? ''}/logs`)).json()) as {
      origin: string;
      verifiedSize: number;
    }[];
    expect(logs.map((l) => [l.origin, l.verifiedSize])).toEqual([
      ['a.test/log', 300],
      ['b.test/log', 20],
    ]);
    // Checkpoints within the verified trees were compared and are not kept.
    expect(monitor.store.seenCheckpoints('a.test/log', 0, 1e9)).toEqual([]);
  });

  test('builders disagreeing on a path is a finding with every claim and its proof', async () => {
    const found = monitor.store.findings();
    expect(found.map((f) => f.kind)).toEqual(['disagreement']);
    const evidence = found[0]?.evidence as {
      hashPart: string;
      claims: { origin: string; index: number; entry: string; proof: string }[];
    };
    expect(evidence.hashPart).toBe(hashPartOf(5));
    expect(evidence.claims.map((c) => c.origin)).toEqual(['a.test/log', 'b.test/log']);
    for (const c of evidence.claims) {
      const vkey = c.origin === 'a.test/log' ? a.vkey : b.vkey;
      const verified = verifyTlogProof(
        parseTlogProof(c.proof),
        hashLeaf(Buffer.from(c.entry)),
        parseTlogPolicy(`log ${vkey}\nquorum none\n`),
      );
      expect(verified.checkpoint.origin).toBe(c.origin);
    }
    const report = (await (await fetch(`${monitor.url ?? ''}/paths/${hashPartOf(5)}`)).json()) as {
      agree: boolean;
    };
    expect(report.agree).toBe(false);
  });

  test('a log appending a second NAR hash for a path is reported, once', async () => {
    const since = monitor.store.findings().at(-1)?.id ?? 0;
    expect((await a.submit([makeClaim(42, 3)])).status).toBe(200);
    await a.waitForSize(301);
    expect((await monitor.pollAll())[0]).toMatchObject({ size: 301, added: 1 });
    await monitor.pollAll(); // nothing new: no second report
    const res = await fetch(`${monitor.url ?? ''}/findings?since=${since}`);
    const found = (await res.json()) as Finding[];
    expect(found.map((f) => f.kind)).toEqual(['log-equivocation']);
    expect(found[0]?.summary).toBe(`a.test/log claims 2 different NARs for ${hashPartOf(42)}`);
    const claims = (found[0]?.evidence as { claims: { index: number }[] }).claims;
    expect(claims.map((c) => c.index)).toEqual([42, 300]);
  });

  test('every new finding raised the command and the webhook once', () => {
    const kinds = readFileSync(join(dir, 'kinds'), 'utf8').trim().split('\n');
    expect(kinds).toEqual(['disagreement', 'log-equivocation']);
    const lines = readFileSync(join(dir, 'alerts.jsonl'), 'utf8').trim().split('\n');
    expect(lines.map((l) => (JSON.parse(l) as Finding).kind)).toEqual(kinds);
    expect(alerts.map((l) => (JSON.parse(l) as Finding).kind)).toEqual(kinds);
  });

  test('a restarted monitor continues from its verified copy', async () => {
    await monitor.close();
    for (let i = 0; i < 3; i++) {
      expect(
        (await a.submit(Array.from({ length: 100 }, (_, j) => makeClaim(1000 + i * 100 + j))))
          .status,
      ).toBe(200);
      await a.waitForSize(401 + i * 100);
      monitor = await monitorFor(policyText([a, b]), { statePath: join(dir, 'monitor.db') });
      expect((await monitor.pollAll())[0]).toMatchObject({ size: 401 + i * 100, added: 100 });
      if (i < 2) await monitor.close();
    }
    expect(monitor.store.claims(hashPartOf(1250)).map((c) => c.index)).toEqual([551]);
  });

  test('the API refuses what is not a checkpoint of a followed log', async () => {
    const post = (body: string) =>
      fetch(`${monitor.url ?? ''}/checkpoints`, { method: 'POST', body });
    expect((await post('garbage')).status).toBe(404);
    const real = await text(`${a.url}/checkpoint`);
    expect((await post(real.replace(/\n\n[\s\S]*$/, '\n\n— a.test/log AAAA\n'))).status).toBe(400);
    const otherKey = parseSignerKey(generateKey('a.test/log', SIG_TYPE_ED25519).signerKey);
    const { signNote } = await import('../../src/tlog/index.js');
    const forged = signNote(real.slice(0, real.indexOf('\n\n') + 1), [otherKey]);
    expect((await post(forged)).status).toBe(403);
    expect((await post('x'.repeat(70_000))).status).toBe(413);
    expect((await fetch(`${monitor.url ?? ''}/checkpoints`)).status).toBe(405);
    expect((await fetch(`${monitor.url ?? ''}/paths/not-a-hash`)).status).toBe(400);
    expect((await fetch(`${monitor.url ?? ''}/findings?since=x`)).status).toBe(400);
    expect((await post(real)).status).toBe(200);
  });

  test('accord monitor report and path read the state', async () => {
    const state = join(dir, 'monitor.db');
    const r = await runAccord(['monitor', 'report', '--state', state]);
    expect(r.code).toBe(3);
    expect(r.stdout).toMatch(/disagreement: builders disagree on/);
    const json = await runAccord(['monitor', 'report', '--state', state, '--json']);
    expect((JSON.parse(json.stdout) as Finding[]).map((f) => f.kind)).toEqual([
      'disagreement',
      'log-equivocation',
    ]);
    const p = await runAccord([
      'monitor',
      'path',
      '--state',
      state,
      `/nix/store/${hashPartOf(5)}-pkg-5`,
    ]);
    expect(p.code).toBe(3);
    expect(p.stdout).toMatch(/2 claim\(s\), DISAGREE/);
    const ok = await runAccord(['monitor', 'path', '--state', state, hashPartOf(6)]);
    expect(ok.code).toBe(0);
    const missing = await runAccord(['monitor', 'report', '--state', join(dir, 'nope.db')]);
    expect(missing.code).toBe(2);
  });
});

describe('the findings about one path, as claims come in', () => {
  const dir = mkdtempSync(join(tmpdir(), 'accord-findings-'));
  const state = join(dir, 'monitor.db');
  const path = hashPartOf(1, 'f');
  const narHash = (variant: number) => makeClaim(1, variant, 'f').narHash;
  let a: TestLog;
  let b: TestLog;
  let c: TestLog;
  let monitor: MonitorService;
  const sizes = new Map<TestLog, number>();

  interface Evidence {
    hashPart: string;
    claims: { origin: string; index: number; entry: string; proof: string }[];
    answers: { narHash: string; logs: string[] }[];
    majority: { narHash: string; logs: string[] } | null;
    minority: string[];
    logs?: string[];
  }
  const claim = async (log: TestLog, variant: number, deriver = 'pkg-1') => {
    const json = { ...makeClaim(1, variant, 'f'), deriver: `${hashPartOf(7, deriver)}-x.drv` };
    expect((await log.submit([json])).status).toBe(200);
    sizes.set(log, (sizes.get(log) ?? 0) + 1);
    await log.waitForSize(sizes.get(log) ?? 0);
  };
  const findings = () => {
    const all = monitor.store.findings();
    return {
      all,
      disagreement: all.find((f) => f.kind === 'disagreement'),
      equivocation: all.find((f) => f.kind === 'log-equivocation'),
    };
  };

  beforeAll(async () => {
    a = await startTestLog({ origin: 'a.f/log' });
    b = await startTestLog({ origin: 'b.f/log' });
    c = await startTestLog({ origin: 'c.f/log' });
    monitor = await monitorFor(policyText([a, b, c]), { statePath: state });
  });

  afterAll(async () => {
    await monitor.close();
    for (const log of [a, b, c]) await log.close();
  });

  test('two logs that disagree are a tie: no majority', async () => {
    await claim(a, 0);
    await claim(b, 1);
    await monitor.pollAll();
    const { all, disagreement } = findings();
    expect(all.map((f) => f.kind)).toEqual(['disagreement']);
    const evidence = disagreement?.evidence as Evidence;
    expect(evidence.claims.map((e) => e.origin)).toEqual(['a.f/log', 'b.f/log']);
    expect(evidence.majority).toBeNull();
    expect(evidence.minority).toEqual([]);
    expect(disagreement?.summary).toMatch(/2 different NARs from 2 logs, no majority/);
  });

  test('a later agreeing claim joins the finding, which then names the majority and minority', async () => {
    const before = findings().disagreement;
    await claim(c, 0);
    await monitor.pollAll();
    const { all, disagreement } = findings();
    expect(all).toHaveLength(1);
    expect(disagreement?.id).toBe(before?.id);
    expect(disagreement?.at).toBe(before?.at);
    const evidence = disagreement?.evidence as Evidence;
    expect(evidence.claims.map((e) => [e.origin, e.index])).toEqual([
      ['a.f/log', 0],
      ['b.f/log', 0],
      ['c.f/log', 0],
    ]);
    // Each claim comes with its proof in its log.
    for (const e of evidence.claims) {
      const log = { 'a.f/log': a, 'b.f/log': b, 'c.f/log': c }[e.origin] as TestLog;
      const verified = verifyTlogProof(
        parseTlogProof(e.proof),
        hashLeaf(Buffer.from(e.entry)),
        parseTlogPolicy(`log ${log.vkey}\nquorum none\n`),
      );
      expect(verified.checkpoint.origin).toBe(e.origin);
    }
    expect(evidence.majority).toMatchObject({ narHash: narHash(0), logs: ['a.f/log', 'c.f/log'] });
    expect(evidence.minority).toEqual(['b.f/log']);
    expect(evidence.answers.map((g) => [g.narHash, g.logs])).toEqual([
      [narHash(0), ['a.f/log', 'c.f/log']],
      [narHash(1), ['b.f/log']],
    ]);
    expect(disagreement?.summary).toBe(
      `builders disagree on ${path}: 2 of 3 logs (a.f/log, c.f/log) against b.f/log`,
    );
    // A client polling for new findings by id sees nothing new; by time of change, the update.
    const poll = async (query: string) =>
      (await (await fetch(`${monitor.url ?? ''}/findings?${query}`)).json()) as { id: number }[];
    expect(await poll(`since=${before?.id ?? 0}`)).toEqual([]);
    const changed = await poll(`changedSince=${before?.at ?? 0}`);
    expect(changed.map((f) => f.id)).toEqual([before?.id]);
    expect(await poll(`changedSince=${disagreement?.updated ?? 0}`)).toEqual([]);
    expect((await fetch(`${monitor.url ?? ''}/findings?changedSince=soon`)).status).toBe(400);
  });

  test('a log repeating its claim changes nothing, and a restart makes no second finding', async () => {
    const before = findings().disagreement;
    await claim(a, 0, 'other deriver');
    await monitor.pollAll();
    expect(findings().all).toEqual([before]);
    await monitor.close();
    monitor = await monitorFor(policyText([a, b, c]), { statePath: state });
    await claim(c, 0, 'third deriver');
    await monitor.pollAll();
    expect(findings().all).toEqual([before]);
  });

  test('a log that equivocates is one more finding about the path, updated as it goes on', async () => {
    await claim(b, 2);
    await monitor.pollAll();
    const first = findings();
    expect(first.all.map((f) => f.kind)).toEqual(['disagreement', 'log-equivocation']);
    expect(first.equivocation?.summary).toBe(`b.f/log claims 2 different NARs for ${path}`);
    const evidence = first.disagreement?.evidence as Evidence;
    expect(evidence.answers.map((g) => g.logs)).toEqual([
      ['a.f/log', 'c.f/log'],
      ['b.f/log'],
      ['b.f/log'],
    ]);
    expect(evidence.minority).toEqual(['b.f/log']);

    await monitor.close();
    monitor = await monitorFor(policyText([a, b, c]), { statePath: state });
    await claim(b, 3);
    await claim(a, 4);
    await monitor.pollAll();
    const { all, equivocation, disagreement } = findings();
    expect(all.map((f) => [f.kind, f.id])).toEqual([
      ['disagreement', first.disagreement?.id],
      ['log-equivocation', first.equivocation?.id],
    ]);
    expect(equivocation?.summary).toBe(`a.f/log, b.f/log each claim different NARs for ${path}`);
    expect((equivocation?.evidence as Evidence).logs).toEqual(['a.f/log', 'b.f/log']);
    expect((equivocation?.evidence as Evidence).claims.map((e) => [e.origin, e.index])).toEqual([
      ['a.f/log', 0],
      ['a.f/log', 2],
      ['b.f/log', 0],
      ['b.f/log', 1],
      ['b.f/log', 2],
    ]);
    expect((disagreement?.evidence as Evidence).claims).toHaveLength(6);
    expect(disagreement?.updated).toBeGreaterThanOrEqual(first.disagreement?.updated ?? 0);
  });
});

describe('a log of many bundles', () => {
  test('is read on a worker thread, also from within a verified bundle', async () => {
    const log = await startTestLog({ origin: 'large.test/log' });
    const submitRange = async (from: number, to: number) => {
      for (let i = from; i < to; i += 1000) {
        const claims = Array.from({ length: Math.min(1000, to - i) }, (_, j) => makeClaim(i + j));
        expect((await log.submit(claims)).status).toBe(200);
      }
      await log.waitForSize(to);
    };
    // 16 bundles and 5 entries, then 16 bundles more: both polls read at least 16 bundles.
    await submitRange(0, 16 * 256 + 5);
    const watcher = await monitorFor(policyText([log]));
    try {
      expect((await watcher.pollAll())[0]).toMatchObject({ size: 4101, added: 4101 });
      await submitRange(4101, 4101 + 16 * 256);
      expect((await watcher.pollAll())[0]).toMatchObject({ size: 8197, added: 4096 });
      for (const i of [0, 4100, 4101, 8196]) {
        expect(watcher.store.claims(hashPartOf(i)).map((c) => c.index)).toEqual([i]);
      }
      expect(watcher.store.findings()).toEqual([]);
    } finally {
      await watcher.close();
      await log.close();
    }
  });
});

/** A monitor of `log` read through `url`, storing 512 entries (two bundles) a transaction. */
function batchedMonitor(log: TestLog, url: string) {
  const dir = mkdtempSync(join(tmpdir(), 'accord-monitor-batched-'));
  const store = new MonitorStore(join(dir, 'monitor.db'));
  const monitor = new Monitor({
    store,
    logs: parsePolicy(policyText([log], [], [url])).logs,
    witnesses: [],
    storeDir: '/nix/store',
    logger: silentLogger,
    timeoutMs: 5000,
    concurrency: 4,
    batchEntries: 512,
  });
  return { store, monitor };
}

describe('a poll cut short after storing some entries', () => {
  test('leaves nothing of them behind: the next poll stores each claim once', async () => {
    const log = await startTestLog({ origin: 'cut.test/log' });
    for (let i = 0; i < 5000; i += 1000) {
      const claims = Array.from({ length: 1000 }, (_, j) => makeClaim(i + j));
      expect((await log.submit(claims)).status).toBe(200);
    }
    await log.waitForSize(5000);
    // A front that fails every bundle from 8 on.
    let failing = true;
    const front = createServer((req: IncomingMessage, res: ServerResponse) => {
      void fetch(`${log.url}${req.url ?? '/'}`).then(async (r) => {
        const body = Buffer.from(await r.arrayBuffer());
        const bundle = /^\/tile\/entries\/(?:x\d+\/)*(\d+)/.exec(req.url ?? '');
        if (failing && bundle !== null && Number(bundle[1]) >= 8)
          return void res.writeHead(500).end();
        res.writeHead(r.status).end(body);
      });
    });
    const url = await listen(front, '127.0.0.1', 0);
    // Two bundles per transaction: bundles 0–7 are stored before the failure.
    const { store, monitor } = batchedMonitor(log, url);
    try {
      const records = () => store.db.prepare('SELECT sum(count) FROM claim_runs').pluck().get();
      expect((await monitor.poll('cut.test/log')).error).toMatch(/500/);
      expect(store.log('cut.test/log')).toBeUndefined();
      expect(records()).toBe(2048); // bundles 0–7, stored before the failure
      // Written, but not verified.
      expect(store.claims(hashPartOf(0))).toEqual([]);
      failing = false;
      expect(await monitor.poll('cut.test/log')).toMatchObject({ size: 5000, added: 5000 });
      for (const i of [0, 1, 2, 2047, 2048, 4999])
        expect(store.claims(hashPartOf(i)).map((c) => c.index)).toEqual([i]);
      expect(store.findings()).toEqual([]);
      // Every claim is in the index once: 5,000 records, no leftovers of the first poll.
      expect(records()).toBe(5000);
    } finally {
      store.close();
      await close(front);
      await log.close();
    }
  });
});

describe('a cache in front of the log that corrupts one entry bundle in three', () => {
  test('never makes an ingest start again: each corrupted batch is fetched afresh, and one poll verifies every entry', async () => {
    const log = await startTestLog({ origin: 'cdn.test/log' });
    for (let i = 0; i < 5000; i += 1000) {
      const claims = Array.from({ length: 1000 }, (_, j) => makeClaim(i + j, 0, 'cdn'));
      expect((await log.submit(claims)).status).toBe(200);
    }
    await log.waitForSize(5000);
    // Its cached copies of every third bundle carry another valid claim in place of one entry;
    // a request for a fresh copy (Cache-Control: no-cache) gets the log's own.
    let served = 0;
    let corrupted = 0;
    const front = createServer((req: IncomingMessage, res: ServerResponse) => {
      void fetch(`${log.url}${req.url ?? '/'}`).then(async (r) => {
        let body = Buffer.from(await r.arrayBuffer());
        const fresh = req.headers['cache-control'] === 'no-cache';
        if (req.url?.startsWith('/tile/entries/') === true && !fresh && served++ % 3 === 1) {
          const entries = parseEntryBundle(body);
          entries[7] = Buffer.from(entryFromJson(makeClaim(99_999, 0, 'cdn')).entry);
          body = Buffer.from(formatEntryBundle(entries));
          corrupted++;
        }
        res.writeHead(r.status).end(body);
      });
    });
    const url = await listen(front, '127.0.0.1', 0);
    const { store, monitor } = batchedMonitor(log, url);
    try {
      expect(await monitor.poll('cdn.test/log')).toMatchObject({ size: 5000, added: 5000 });
      expect(corrupted).toBeGreaterThan(3);
      for (const i of [0, 7, 263, 2048, 4999])
        expect(store.claims(hashPartOf(i, 'cdn')).map((c) => c.index)).toEqual([i]);
      expect(store.claims(hashPartOf(99_999, 'cdn'))).toEqual([]);
      expect(store.findings()).toEqual([]);
    } finally {
      store.close();
      await close(front);
      await log.close();
    }
  });
});

describe("the monitor's /health", () => {
  test('says how many entries it verified and which logs fail to poll', async () => {
    const good = await startTestLog({ origin: 'health.test/good' });
    expect((await good.submit([makeClaim(0, 0, 'health')])).status).toBe(200);
    await good.waitForSize(1);
    const gone = await startTestLog({ origin: 'health.test/gone' });
    await gone.close();
    const watcher = await monitorFor(policyText([good, gone]));
    try {
      await watcher.pollAll();
      const res = await fetch(`${watcher.url ?? ''}/health`);
      expect(res.status).toBe(200);
      expect(await res.json()).toEqual({
        status: 'ok',
        logs: 2,
        verifiedEntries: 1,
        logsFailing: ['health.test/gone'],
      });
    } finally {
      await watcher.close();
      await good.close();
    }
  });
});

describe('a log serving entries that are not its tree', () => {
  test('the monitor refuses them as bad data (no finding) and recovers when they are right', async () => {
    const log = await startTestLog({ origin: 'liar.test/log' });
    expect((await log.submit([makeClaim(0), makeClaim(1)])).status).toBe(200);
    await log.waitForSize(2);
    // A front over the real log that swaps entry `swap` in the bundles it serves.
    let swap: number | undefined = 1;
    const front = createServer((req: IncomingMessage, res: ServerResponse) => {
      void fetch(`${log.url}${req.url ?? '/'}`).then(async (r) => {
        let body = Buffer.from(await r.arrayBuffer());
        if (req.url?.startsWith('/tile/entries/') === true && swap !== undefined) {
          const entries = parseEntryBundle(body);
          entries[swap] = Buffer.from(entryFromJson(makeClaim(9)).entry); // valid, not in the tree
          body = Buffer.from(formatEntryBundle(entries));
        }
        res.writeHead(r.status).end(body);
      });
    });
    const url = await listen(front, '127.0.0.1', 0);
    const watcher = await monitorFor(policyText([log], [], [url]));
    const poll = async () => (await watcher.pollAll())[0];
    try {
      expect((await poll())?.error).toMatch(/do not match the checkpoint's root/);
      // Anyone on the path could have changed them: nothing to hold against the log.
      expect(watcher.store.findings()).toEqual([]);
      expect(watcher.store.log('liar.test/log')).toBeUndefined();
      expect(watcher.store.claims(hashPartOf(0))).toEqual([]);
      swap = undefined;
      expect(await poll()).toMatchObject({ size: 2, added: 2 });
      // Grown to 3: a wrong new entry leaves the verified partial bundle as it was …
      expect((await log.submit([makeClaim(2)])).status).toBe(200);
      await log.waitForSize(3);
      swap = 2;
      expect((await poll())?.error).toMatch(/from 2 to 3 do not match/);
      // … and a changed old entry is caught before anything is stored.
      swap = 0;
      expect((await poll())?.error).toMatch(/entries below 2 that differ from the verified ones/);
      expect(watcher.store.findings()).toEqual([]);
      swap = undefined;
      expect(await poll()).toMatchObject({ size: 3, added: 1 });
      expect(watcher.store.claims(hashPartOf(2)).map((c) => c.index)).toEqual([2]);
      expect(watcher.store.claims(hashPartOf(9))).toEqual([]);
    } finally {
      await watcher.close();
      await close(front);
      await log.close();
    }
  });
});

describe('accord monitor serve --once', () => {
  test('follows the logs of a policy file and exits 0 without findings', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'accord-monitor-cli-'));
    const log = await startTestLog();
    try {
      expect((await log.submit([makeClaim(0, 0, 'cli')])).status).toBe(200);
      await log.waitForSize(1);
      writeFileSync(join(dir, 'policy'), policyText([log]));
      const args = ['monitor', 'serve', '--once', '--policy', join(dir, 'policy')];
      const state = ['--state', join(dir, 'm.db')];
      const r = await runAccord([...args, ...state, '--json']);
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      expect(JSON.parse(r.stdout)).toEqual({
        logs: [{ origin: log.origin, size: 1, added: 1 }],
        findings: 0,
      });
      const again = await runAccord([...args, ...state]);
      expect(again.stdout).toBe(
        `${log.origin}: 1 entries verified (+0)\n0 finding(s); see 'accord monitor report'\n`,
      );
      expect((await runAccord([...args, '--alert-on', 'forks'])).code).toBe(2);
    } finally {
      await log.close();
    }
  });
});
