/**
 * The monitor and identity key statements in a real log: statements are recognised (never
 * "bad entries"), stored, and checked against the identity's root key when it has one; a
 * statement a lying log slipped in (forged, or contradicting the chain) is a finding.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { STATEMENTS_LOOKUP_KEY } from '../../src/claim/index.js';
import { signStatement, verifyContradiction } from '../../src/identity/index.js';
import { Monitor, MonitorStore } from '../../src/monitor/index.js';
import { parsePolicy } from '../../src/policy/index.js';
import { silentLogger } from '../../src/server/index.js';
import { hashLeaf } from '../../src/tlog/index.js';
import { makeClaim } from '../support/claims.js';
import { Chain, logKey, rootSigner, verifierOf } from '../support/identity.js';
import { type TestLog, startTestLog } from '../support/log.js';

const root = rootSigner('statements.test');
const NOW = 1_780_000_000;

function monitorFor(log: TestLog, withRoot: boolean) {
  const dir = mkdtempSync(join(tmpdir(), 'accord-monitor-statements-'));
  const store = new MonitorStore(join(dir, 'monitor.db'));
  const policy = `log ${log.vkey} ${log.url}\ntrust all any ${log.origin}\ndecide all\nquorum none\n`;
  const monitor = new Monitor({
    store,
    logs: parsePolicy(policy).logs,
    witnesses: [],
    storeDir: '/nix/store',
    logger: silentLogger,
    timeoutMs: 5000,
    concurrency: 2,
    ...(withRoot ? { identities: new Map([[log.origin, verifierOf(root)]]) } : {}),
  });
  return { store, monitor };
}

/** Appends an entry under the statements key as a lying log would (no checks). */
async function slipIn(log: TestLog, note: string) {
  const data = Buffer.from(note);
  await log.service.storage.addEntries([
    { data, leafHash: hashLeaf(data), hashPart: STATEMENTS_LOOKUP_KEY },
  ]);
}

describe('the monitor and key statements', () => {
  let log: TestLog;
  const chain = new Chain(root);
  beforeAll(async () => {
    log = await startTestLog({ identity: { root: verifierOf(root), now: () => NOW } });
    const s0 = chain.next({
      issued: NOW,
      keys: [{ kind: 'log', key: logKey(1), from: NOW }],
      revocations: [],
    });
    expect((await log.submitStatement(s0)).status).toBe(200);
    expect((await log.submit([makeClaim(1, 0, 'ms'), makeClaim(2, 0, 'ms')])).status).toBe(200);
    const s1 = chain.next({
      issued: NOW + 10,
      keys: [{ kind: 'log', key: logKey(2), from: NOW + 10 }],
      revocations: [],
    });
    expect((await log.submitStatement(s1)).status).toBe(200);
    await log.waitForSize(4);
  });
  afterAll(async () => {
    await log.close();
  });

  test('valid statements are stored, are no bad entries, and make no finding', async () => {
    for (const withRoot of [false, true]) {
      const { store, monitor } = monitorFor(log, withRoot);
      expect(await monitor.poll(log.origin)).toMatchObject({ size: 4 });
      expect(store.findings()).toEqual([]);
      expect(store.statements(log.origin)).toEqual([
        { index: 0, note: chain.notes[0] },
        { index: 3, note: chain.notes[1] },
      ]);
      expect(store.claims(makeClaim(1, 0, 'ms').storePath.slice(11, 43))).toHaveLength(1);
      store.close();
    }
  });

  test('a forged statement and a contradicting one are bad-statement findings with the notes', async () => {
    const { store, monitor } = monitorFor(log, true);
    expect(await monitor.poll(log.origin)).toMatchObject({ size: 4 });
    const next = {
      identity: root.name,
      sequence: 2,
      previous: chain.head() as string,
      issued: NOW + 20,
      keys: [{ kind: 'log' as const, key: logKey(2), from: NOW + 10 }],
      revocations: [],
    };
    const forged = signStatement(next, rootSigner('statements.test', 'thief'));
    const backdated = signStatement(
      { ...next, keys: [...next.keys, { kind: 'log' as const, key: logKey(3), from: NOW }] },
      root,
    );
    await slipIn(log, forged);
    await slipIn(log, backdated);
    await log.waitForSize(6);
    expect(await monitor.poll(log.origin)).toMatchObject({ size: 6 });
    const findings = store.findings();
    expect(findings.map((f) => f.kind)).toEqual(['bad-statement', 'bad-statement']);
    const [notRoot, retro] = findings as [
      (typeof findings)[0] & {
        evidence: { code: string; notes: { index: number; note: string }[] };
      },
      (typeof findings)[0] & {
        evidence: { code: string; notes: { index: number; note: string }[] };
      },
    ];
    expect(notRoot.evidence.code).toBe('not-root');
    expect(notRoot.evidence.notes).toEqual([{ index: 4, note: forged }]);
    expect(retro.evidence.code).toBe('retroactive');
    expect(retro.evidence.notes.map((n) => n.index)).toEqual([3, 5]);
    const [a, b] = retro.evidence.notes;
    expect(verifyContradiction(verifierOf(root), a?.note ?? '', b?.note ?? '').code).toBe(
      'retroactive',
    );
    store.close();
  });
});
