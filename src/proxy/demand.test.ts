import { mkdtempSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { hashPartOf } from '../../test/support/claims.js';
import { type DemandReport, demandVerifier, openDemandReport } from '../demand/index.js';
import { generateNixSecretKey, nixPublicKey } from '../nix/index.js';
import { close, listen, silentLogger } from '../server/index.js';
import type { DemandConfig } from './config.js';
import { DemandReporter } from './demand.js';
import { ProxyState } from './state.js';

const HOUR = 3600;
const START = 1_764_720_000; // an hour boundary, POSIX seconds
const key = generateNixSecretKey('site-proxy-1');
const verifier = demandVerifier(nixPublicKey(key));

describe('DemandReporter', () => {
  /** Statuses the fake monitor answers with, in turn (then 200). */
  const answers: number[] = [];
  const received: DemandReport[] = [];
  let url = '';
  const monitor = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const status = answers.shift() ?? 200;
      if (status === 200) received.push(openDemandReport(Buffer.concat(chunks), [verifier]).report);
      res.writeHead(status).end('{}');
    });
  });
  beforeAll(async () => {
    url = await listen(monitor, '127.0.0.1', 0);
  });
  afterAll(async () => {
    await close(monitor, 100);
  });

  function open(path: string, clock: { t: number }, config: Partial<DemandConfig> = {}) {
    const state = new ProxyState(path, { demandPeriodSeconds: HOUR, now: () => clock.t });
    const reporter = new DemandReporter(
      { monitor: url, periodSeconds: HOUR, minRequests: 2, maxPaths: 100, ...config },
      key,
      state,
      silentLogger,
      () => clock.t,
    );
    return { state, reporter };
  }

  test('reports an ended period once: min-requests, refusals, names, kept across a restart and retried', async () => {
    const path = join(mkdtempSync(join(tmpdir(), 'accord-demand-')), 'proxy.db');
    const clock = { t: START * 1000 + 10_000 };
    let { state, reporter } = open(path, clock);
    const [a, b, c] = [1, 2, 3].map((i) => hashPartOf(i, 'demand')) as [string, string, string];
    for (let i = 0; i < 3; i++) state.countRequest(a, 'trusted', 'hello-2.12');
    state.countRequest(b, 'no-quorum');
    state.countRequest(b, 'no-quorum');
    state.countRequest(c, 'trusted'); // once: below min-requests
    // Not ended yet: nothing is sent.
    expect(await reporter.sendDue()).toEqual({ sent: 0, refused: 0, pending: 0 });
    state.close();
    // Restarted after the period ended, the counts are still there; the monitor is down once.
    clock.t = (START + HOUR) * 1000 + 1;
    ({ state, reporter } = open(path, clock));
    answers.push(503);
    expect(await reporter.sendDue()).toEqual({ sent: 0, refused: 0, pending: 1 });
    expect(received).toHaveLength(0);
    expect(await reporter.sendDue()).toEqual({ sent: 1, refused: 0, pending: 0 });
    expect(received).toEqual([
      {
        reporter: 'site-proxy-1',
        periodStart: START,
        periodSeconds: HOUR,
        paths: [
          { hashPart: a, requests: 3, refused: 0, name: 'hello-2.12' },
          { hashPart: b, requests: 2, refused: 2 },
        ].sort((x, y) => (x.hashPart < y.hashPart ? -1 : 1)),
      },
    ]);
    // Sent once: the next round has nothing.
    expect(await reporter.sendDue()).toEqual({ sent: 0, refused: 0, pending: 0 });
    state.close();
  });

  test('a report refused for good is dropped; max-paths keeps the most requested', async () => {
    const path = join(mkdtempSync(join(tmpdir(), 'accord-demand-')), 'proxy.db');
    const clock = { t: START * 1000 };
    const { state, reporter } = open(path, clock, { minRequests: 1, maxPaths: 2 });
    for (let i = 1; i <= 4; i++)
      for (let n = 0; n < i; n++) state.countRequest(hashPartOf(i, 'cap'), 'trusted');
    clock.t += HOUR * 1000;
    state.countRequest(hashPartOf(9, 'cap'), 'trusted'); // the next period
    clock.t += HOUR * 1000;
    received.length = 0;
    answers.push(200, 403);
    expect(await reporter.sendDue()).toEqual({ sent: 1, refused: 1, pending: 0 });
    expect(received[0]?.paths.map((p) => p.requests).sort()).toEqual([3, 4]);
    expect(await reporter.sendDue()).toEqual({ sent: 0, refused: 0, pending: 0 });
    state.close();
  });
});
