import { describe, expect, it } from 'vitest';
import { hashPartOf } from '../../test/support/claims.js';
import { type RebuildFailure, signRebuildReport } from '../demand/index.js';
import { SIG_TYPE_ED25519, newSigner, newVerifier } from '../tlog/index.js';
import { acceptDemand, wantedList } from './demand.js';
import { MonitorError } from './errors.js';
import { acceptRebuildReport, failureCount, pathFailures } from './rebuild-failures.js';
import { REPORT_CLOCK_SKEW_MS } from './replay.js';
import { MonitorStore } from './store.js';
import { demandSigner, demandVerifier, signDemandReport } from '../demand/index.js';
import { generateNixSecretKey, nixPublicKey } from '../nix/index.js';
import { errorCode } from '../../test/support/errors.js';

const NOW = 1_764_720_000_000;
const signerOf = (origin: string, fill: number) =>
  newSigner(origin, SIG_TYPE_ED25519, new Uint8Array(32).fill(fill));
const r1 = signerOf('rebuilder1.example/log', 1);
const r2 = signerOf('rebuilder2.example/log', 2);
const logKeys = [r1, r2].map((s) => newVerifier(s.name, SIG_TYPE_ED25519, s.publicKey));
const h = (i: number) => hashPartOf(i);
const fail = (i: number, attempt: number, reason = 'exit 1'): RebuildFailure => ({
  hashPart: h(i),
  name: `pkg-${i}`,
  attempt,
  reason,
});
const report = (signer: typeof r1, at: number, failures: RebuildFailure[]) =>
  signRebuildReport(
    {
      reporter: signer.name,
      at,
      failures: [...failures].sort((a, b) =>
        a.hashPart === b.hashPart ? a.attempt - b.attempt : a.hashPart < b.hashPart ? -1 : 1,
      ),
    },
    signer,
  );
const code = (fn: () => unknown) => errorCode(MonitorError, fn);

describe('acceptRebuildReport() and pathFailures()', () => {
  it('keeps each (path, rebuilder, attempt) once, newest first, across reports and rebuilders', () => {
    const store = new MonitorStore(':memory:');
    expect(
      acceptRebuildReport(store, report(r1, NOW - 10, [fail(1, NOW - 100)]), logKeys, NOW),
    ).toEqual({ reporter: r1.name, at: NOW - 10, failures: 1, added: 1 });
    // Sent again in a later report (the answer to the first was lost), with a new attempt.
    expect(
      acceptRebuildReport(
        store,
        report(r1, NOW - 5, [fail(1, NOW - 100), fail(1, NOW - 50, 'again')]),
        logKeys,
        NOW,
      ),
    ).toMatchObject({ failures: 2, added: 1 });
    acceptRebuildReport(store, report(r2, NOW - 5, [fail(1, NOW - 70, 'other')]), logKeys, NOW);
    expect(pathFailures(store, h(1))).toEqual({
      attempts: 3,
      builders: 2,
      name: 'pkg-1',
      recent: [
        { builder: r1.name, at: NOW - 50, reason: 'again' },
        { builder: r2.name, at: NOW - 70, reason: 'other' },
        { builder: r1.name, at: NOW - 100, reason: 'exit 1' },
      ],
    });
    expect(failureCount(store, h(1))).toBe(3);
    expect(pathFailures(store, h(2))).toBeNull();
  });

  it("refuses a key of no followed log (even a proxy's reporter key), a replay, a report from the future, oversized or malformed, and changes nothing", () => {
    const store = new MonitorStore(':memory:');
    const first = report(r1, NOW - 10, [fail(1, NOW - 100)]);
    acceptRebuildReport(store, first, logKeys, NOW);
    const before = pathFailures(store, h(1));
    const stranger = signerOf(r1.name, 9);
    const cases: [string, string, string][] = [
      ['unknown key', report(stranger, NOW - 1, [fail(2, NOW - 2)]), 'untrusted'],
      ['replay', first, 'replay'],
      ['same instant', report(r1, NOW - 10, [fail(3, NOW - 20)]), 'replay'],
      ['from the future', report(r1, NOW + REPORT_CLOCK_SKEW_MS + 1, [fail(4, NOW)]), 'replay'],
      ['oversized', `${first}${' '.repeat(1 << 20)}`, 'too-large'],
      ['malformed', 'accord/rebuild/v1\n', 'malformed'],
    ];
    for (const [what, body, expected] of cases)
      expect([what, code(() => acceptRebuildReport(store, body, logKeys, NOW))]).toEqual([
        what,
        expected,
      ]);
    expect(pathFailures(store, h(1))).toEqual(before);
    for (const i of [2, 3, 4]) expect(pathFailures(store, h(i))).toBeNull();
    // The newest time the skew allows is taken.
    const edge = report(r1, NOW + REPORT_CLOCK_SKEW_MS - 1, [fail(4, NOW)]);
    expect(code(() => acceptRebuildReport(store, edge, logKeys, NOW))).toBe('ok');
    // A proxy's key signs demand reports, not rebuild reports: only the logs' keys count.
    const proxy = generateNixSecretKey('rebuilder1.example/log');
    const asProxy = report(newSigner(proxy.name, SIG_TYPE_ED25519, proxy.key.seed), NOW - 1, [
      fail(5, NOW - 2),
    ]);
    expect(code(() => acceptRebuildReport(store, asProxy, logKeys, NOW))).toBe('untrusted');
  });

  it('the wanted list keeps a failed path, with its count of failed attempts', () => {
    const store = new MonitorStore(':memory:');
    const key = generateNixSecretKey('proxy-a-1');
    acceptDemand(
      store,
      signDemandReport(
        {
          reporter: key.name,
          periodStart: NOW / 1000 - 3600,
          periodSeconds: 3600,
          paths: [{ hashPart: h(1), requests: 3, refused: 3, name: 'pkg-1' }],
        },
        demandSigner(key),
      ),
      [demandVerifier(nixPublicKey(key))],
      NOW,
    );
    acceptRebuildReport(store, report(r1, NOW - 1, [fail(1, NOW - 2)]), logKeys, NOW);
    expect(wantedList(store, { k: 2, limit: 10 })).toMatchObject([
      { hashPart: h(1), refused: 3, failures: 1 },
    ]);
  });
});
