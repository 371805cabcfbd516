/**
 * Demand reporting end to end: two real proxies count narinfo requests for overlapping paths
 * and report them to one monitor, which sums them and says two reporters contributed; reports
 * signed with an unknown key, replayed or oversized are refused with their status and change
 * nothing.
 */
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import {
  MAX_DEMAND_BYTES,
  demandSigner,
  demandVerifier,
  signDemandReport,
} from '../../src/demand/index.js';
import { type MonitorService, startMonitor } from '../../src/monitor/index.js';
import {
  type NixSecretKey,
  formatNixPublicKey,
  generateNixSecretKey,
  nixPublicKey,
} from '../../src/nix/index.js';
import { parsePolicy } from '../../src/policy/index.js';
import { type ProxyService, loadProxyConfig, startProxy } from '../../src/proxy/index.js';
import { silentLogger } from '../../src/server/index.js';
import { claimWithNar } from '../support/claims.js';
import { runAccord } from '../support/cli.js';
import { type TestLog, startTestLog } from '../support/log.js';
import { narinfoFor, writeProxyFiles } from '../support/proxy-world.js';

const HOUR = 3600;
// Requests are counted in a period that ended hours ago by the monitor's clock.
const PERIOD = (Math.floor(Date.now() / 1000 / HOUR) - 3) * HOUR;

describe('demand reports from two proxies to one monitor', () => {
  const root = mkdtempSync(join(tmpdir(), 'accord-demand-'));
  // p1, p2: both logs claim them (trusted); p3: one log only (refused, no quorum); p4: nobody.
  const paths = [1, 2, 3, 4].map((i) =>
    claimWithNar(i, 'demand', `demand path ${i}\n`, `pkg-${i}`),
  );
  const [p1, p2, p3, p4] = paths as [
    (typeof paths)[0],
    (typeof paths)[0],
    (typeof paths)[0],
    (typeof paths)[0],
  ];
  const clock = { t: PERIOD * 1000 + 60_000 };
  let logs: TestLog[];
  let monitor: MonitorService;
  const proxies: { service: ProxyService; key: NixSecretKey }[] = [];

  beforeAll(async () => {
    logs = [
      await startTestLog({ origin: 'd1.example/log' }),
      await startTestLog({ origin: 'd2.example/log' }),
    ];
    await logs[0]?.submit([p1.claim, p2.claim, p3.claim]);
    await logs[1]?.submit([p1.claim, p2.claim]);
    await logs[0]?.waitForSize(3);
    await logs[1]?.waitForSize(2);
    const cache = join(root, 'cache');
    mkdirSync(join(cache, 'nar'), { recursive: true });
    for (const p of paths) {
      writeFileSync(join(cache, `${p.hashPart}.narinfo`), narinfoFor(p));
      writeFileSync(join(cache, 'nar', `${p.hashPart}.nar`), p.nar);
    }
    const keys: NixSecretKey[] = [];
    const dirs = ['a', 'b'].map((name) => {
      const dir = join(root, name);
      mkdirSync(dir);
      keys.push(writeProxyFiles(dir, `proxy-${name}-1`, logs));
      return dir;
    });
    writeFileSync(
      join(root, 'reporters'),
      `# the site's proxies\n${keys.map((k) => formatNixPublicKey(k)).join('\n')}\n`,
    );
    monitor = await startMonitor({
      policy: parsePolicy(
        [
          ...logs.map((l) => `log ${l.vkey} ${l.url}`),
          'trust all any d1.example/log d2.example/log',
          'decide all',
          'quorum none',
          '',
        ].join('\n'),
      ),
      statePath: join(root, 'monitor.db'),
      storeDir: '/nix/store',
      logger: silentLogger,
      intervalMs: 0,
      timeoutMs: 5000,
      concurrency: 4,
      listen: { host: '127.0.0.1', port: 0 },
      reporters: keys.map((k) => demandVerifier(nixPublicKey(k))),
    });
    await monitor.pollAll();
    for (const [i, dir] of dirs.entries()) {
      writeFileSync(
        join(dir, 'proxy.toml'),
        [
          'signing-key = "proxy.sk"',
          'policy = "policy"',
          'state = "proxy.db"',
          'nar-disk-cache = "nars"',
          'prefetch-references = false',
          'prefetch-nars = false',
          '[[upstream]]',
          `url = "file://${cache}"`,
          '[demand]',
          `monitor = "${monitor.url ?? ''}"`,
          `period-seconds = ${HOUR}`,
          'min-requests = 2',
          '',
        ].join('\n'),
      );
      const service = await startProxy(
        loadProxyConfig(join(dir, 'proxy.toml')),
        silentLogger,
        '127.0.0.1:0',
        {
          now: () => clock.t,
        },
      );
      proxies.push({ service, key: keys[i] as NixSecretKey });
    }
  }, 60_000);

  afterAll(async () => {
    for (const p of proxies) await p.service.close();
    await monitor.close();
    for (const l of logs) await l.close();
  });

  const ask = async (proxy: number, p: { hashPart: string }, times: number) => {
    for (let i = 0; i < times; i++) {
      const res = await fetch(`${proxies[proxy]?.service.url ?? ''}/${p.hashPart}.narinfo`);
      await res.arrayBuffer();
    }
  };
  const demand = async () => (await fetch(`${monitor.url ?? ''}/demand?limit=100`)).json();
  const post = (body: string | Uint8Array) =>
    fetch(`${monitor.url ?? ''}/demand`, {
      method: 'POST',
      body,
      headers: { 'Content-Type': 'text/plain' },
    });
  const store = (p: (typeof paths)[0]) => p.claim.storePath;

  test('the monitor sums both reports and counts two reporters', async () => {
    expect((await fetch(`${proxies[0]?.service.url ?? ''}/${p1.hashPart}.narinfo`)).status).toBe(
      200,
    );
    await ask(0, p1, 2); // 3 in all
    await ask(0, p2, 2);
    await ask(0, p3, 2);
    await ask(1, p1, 2);
    await ask(1, p3, 5);
    await ask(1, p2, 1); // below min-requests: not reported by b
    await ask(1, p4, 3); // refused, nobody claims it
    clock.t = (PERIOD + HOUR) * 1000 + 1;
    for (const p of proxies)
      expect(await p.service.demand?.sendDue()).toEqual({ sent: 1, refused: 0, pending: 0 });
    const top = (await demand()) as { reporters: number; periods: number; paths: unknown[] };
    expect(top.reporters).toBe(2);
    expect(top.periods).toBe(1);
    expect(top.paths).toEqual([
      {
        hashPart: p3.hashPart,
        storePath: store(p3),
        requests: 7,
        refused: 7,
        reporters: 2,
        lastPeriod: PERIOD,
      },
      {
        hashPart: p1.hashPart,
        storePath: store(p1),
        requests: 5,
        refused: 0,
        reporters: 2,
        lastPeriod: PERIOD,
      },
      {
        hashPart: p4.hashPart,
        storePath: null,
        requests: 3,
        refused: 3,
        reporters: 1,
        lastPeriod: PERIOD,
      },
      {
        hashPart: p2.hashPart,
        storePath: store(p2),
        requests: 2,
        refused: 0,
        reporters: 1,
        lastPeriod: PERIOD,
      },
    ]);
    // Sent once: the next round has nothing to send.
    for (const p of proxies)
      expect(await p.service.demand?.sendDue()).toEqual({ sent: 0, refused: 0, pending: 0 });
  });

  test('the wanted list ranks the refused paths, as JSON and as text', async () => {
    const k2 = (await (await fetch(`${monitor.url ?? ''}/wanted?k=2`)).json()) as {
      paths: { hashPart: string; claims: number }[];
    };
    expect(k2.paths.map((w) => [w.hashPart, w.claims])).toEqual([
      [p3.hashPart, 1],
      [p4.hashPart, 0],
    ]);
    const k3 = await (await fetch(`${monitor.url ?? ''}/wanted?k=3&format=text`)).text();
    expect(k3).toBe(`${store(p3)}\n${store(p1)}\n${store(p2)}\n`);
    expect((await fetch(`${monitor.url ?? ''}/wanted?k=0`)).status).toBe(400);
    expect((await fetch(`${monitor.url ?? ''}/wanted?format=xml`)).status).toBe(400);
  });

  test('accord monitor demand and accord monitor wanted read the same sums', async () => {
    const state = join(root, 'monitor.db');
    const top = await runAccord(['monitor', 'demand', '--state', state, '--json']);
    expect(top.code).toBe(0);
    expect(JSON.parse(top.stdout)).toEqual(await demand());
    const text = await runAccord(['monitor', 'demand', '--state', state, '--limit', '1']);
    expect(text.stdout).toBe(
      `2 reporter(s), 1 period(s)\nrequests refused proxies path\n7 7 2 ${store(p3)}\n`,
    );
    const wanted = await runAccord(['monitor', 'wanted', '--state', state, '--k', '2']);
    expect([wanted.code, wanted.stdout]).toEqual([0, `${store(p3)}\n`]);
    const json = await runAccord(['monitor', 'wanted', '--state', state, '--k', '2', '--json']);
    expect(JSON.parse(json.stdout)).toEqual(
      await (await fetch(`${monitor.url ?? ''}/wanted?k=2`)).json(),
    );
    expect((await runAccord(['monitor', 'wanted', '--state', state, '--k', '0'])).code).toBe(2);
  });

  test('an unknown key, a replay, an oversized or malformed report: refused, nothing changes', async () => {
    const before = await demand();
    const report = (key: NixSecretKey, periodStart = PERIOD) =>
      signDemandReport(
        {
          reporter: key.name,
          periodStart,
          periodSeconds: HOUR,
          paths: [{ hashPart: p1.hashPart, requests: 1000, refused: 0 }],
        },
        demandSigner(key),
      );
    const stranger = generateNixSecretKey('proxy-a-1');
    const a = proxies[0]?.key as NixSecretKey;
    const cases: [string, string | Uint8Array, number][] = [
      ['unknown key', report(stranger, PERIOD - HOUR), 403],
      ['replay', report(a), 409],
      ['period not ended', report(a, PERIOD + 10 * HOUR), 409],
      ['oversized', Buffer.alloc(MAX_DEMAND_BYTES + 1, 'a'), 413],
      ['malformed', 'accord/demand/v1\n', 400],
    ];
    for (const [what, body, status] of cases) {
      const res = await post(body);
      expect([what, res.status]).toEqual([what, status]);
      await res.arrayBuffer();
    }
    expect(await demand()).toEqual(before);
    const metrics = await (await fetch(`${monitor.url ?? ''}/metrics`)).text();
    for (const outcome of ['untrusted', 'replay', 'too-large', 'malformed'])
      expect(metrics).toMatch(
        new RegExp(`accord_monitor_demand_reports_total\\{outcome="${outcome}"\\} [1-9]`),
      );
    // A new period of a known reporter is taken.
    const res = await post(report(a, PERIOD - HOUR));
    expect(res.status).toBe(200);
    expect(((await res.json()) as { status: string }).status).toBe('accepted');
  });
});
