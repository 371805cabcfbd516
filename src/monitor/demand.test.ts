import { describe, expect, it } from 'vitest';
import { hashPartOf, makeClaim } from '../../test/support/claims.js';
import { addLog } from '../../test/support/monitor-store.js';
import {
  type DemandPath,
  demandSigner,
  demandVerifier,
  signDemandReport,
} from '../demand/index.js';
import { generateNixSecretKey, nixPublicKey } from '../nix/index.js';
import {
  type WantedPath,
  acceptDemand,
  demandTop,
  formatWantedList,
  pathDemand,
  wantedList,
} from './demand.js';
import { MonitorError } from './errors.js';
import { MonitorStore } from './store.js';
import { errorCode } from '../../test/support/errors.js';

const HOUR = 3600;
const NOW = 1_764_720_000_000; // ms, an hour boundary
const keys = [generateNixSecretKey('proxy-a-1'), generateNixSecretKey('proxy-b-1')];
const reporters = keys.map((k) => demandVerifier(nixPublicKey(k)));
const h = (i: number) => hashPartOf(i);

function report(key: (typeof keys)[number], periodStart: number, paths: DemandPath[]) {
  const sorted = [...paths].sort((a, b) => (a.hashPart < b.hashPart ? -1 : 1));
  return signDemandReport(
    { reporter: key.name, periodStart, periodSeconds: HOUR, paths: sorted },
    demandSigner(key),
  );
}

const [keyA, keyB] = keys as [(typeof keys)[0], (typeof keys)[0]];
const lastHour = NOW / 1000 - HOUR;

const code = (fn: () => unknown) => errorCode(MonitorError, fn);

describe('acceptDemand() and demandTop()', () => {
  it('sums requests and refusals per path across reporters and periods, counting reporters once', () => {
    const store = new MonitorStore(':memory:');
    acceptDemand(
      store,
      report(keyA, lastHour, [
        { hashPart: h(1), requests: 5, refused: 1, name: 'pkg-1' },
        { hashPart: h(2), requests: 2, refused: 2 },
      ]),
      reporters,
      NOW,
    );
    acceptDemand(
      store,
      report(keyA, lastHour - HOUR, [{ hashPart: h(1), requests: 3, refused: 0 }]),
      reporters,
      NOW,
    );
    acceptDemand(
      store,
      report(keyB, lastHour, [
        { hashPart: h(1), requests: 10, refused: 4 },
        { hashPart: h(3), requests: 4, refused: 0, name: 'pkg-3' },
      ]),
      reporters,
      NOW,
    );
    const top = demandTop(store, { limit: 10 });
    expect(top.reporters).toBe(2);
    expect(top.periods).toBe(2);
    expect(top.paths).toEqual([
      {
        hashPart: h(1),
        storePath: `/nix/store/${h(1)}-pkg-1`,
        requests: 18,
        refused: 5,
        reporters: 2,
        lastPeriod: lastHour,
      },
      {
        hashPart: h(3),
        storePath: `/nix/store/${h(3)}-pkg-3`,
        requests: 4,
        refused: 0,
        reporters: 1,
        lastPeriod: lastHour,
      },
      {
        hashPart: h(2),
        storePath: null,
        requests: 2,
        refused: 2,
        reporters: 1,
        lastPeriod: lastHour,
      },
    ]);
    expect(demandTop(store, { limit: 1 }).paths).toHaveLength(1);
    expect(pathDemand(store, h(2))).toEqual(top.paths[2]);
    expect(pathDemand(store, h(9))).toBeNull();
  });

  it('refuses an unknown key, a replay, an overlapping or unfinished period, and changes nothing', () => {
    const store = new MonitorStore(':memory:');
    const first = report(keyA, lastHour, [{ hashPart: h(1), requests: 5, refused: 1 }]);
    acceptDemand(store, first, reporters, NOW);
    const before = demandTop(store, { limit: 10 });
    const stranger = generateNixSecretKey('proxy-a-1');
    expect(
      code(() =>
        acceptDemand(
          store,
          report(stranger, lastHour - HOUR, [{ hashPart: h(1), requests: 9, refused: 0 }]),
          reporters,
          NOW,
        ),
      ),
    ).toBe('untrusted');
    expect(code(() => acceptDemand(store, first, reporters, NOW))).toBe('replay');
    const longer = signDemandReport(
      { reporter: keyA.name, periodStart: lastHour - HOUR, periodSeconds: 2 * HOUR, paths: [] },
      demandSigner(keyA),
    );
    expect(code(() => acceptDemand(store, longer, reporters, NOW))).toBe('replay');
    const current = report(keyA, NOW / 1000, [{ hashPart: h(1), requests: 1, refused: 0 }]);
    expect(code(() => acceptDemand(store, current, reporters, NOW))).toBe('replay');
    expect(code(() => acceptDemand(store, 'garbage\n', reporters, NOW))).toBe('malformed');
    expect(demandTop(store, { limit: 10 })).toEqual(before);
    // The same period from another reporter is no replay.
    const other = report(keyB, lastHour, [{ hashPart: h(1), requests: 1, refused: 0 }]);
    expect(code(() => acceptDemand(store, other, reporters, NOW))).toBe('ok');
  });
});

describe('wantedList()', () => {
  it('lists refused paths and those fewer than k logs agree on, most refused first, with derivers', () => {
    const store = new MonitorStore(':memory:');
    // Path 1: two logs agree. Path 2: one log. Path 3: the logs disagree. Path 4: no claim.
    addLog(store, 'a', [makeClaim(1), makeClaim(2), makeClaim(3)]);
    addLog(store, 'b', [makeClaim(1), makeClaim(3, 1)]);
    acceptDemand(
      store,
      report(keyA, lastHour, [
        { hashPart: h(1), requests: 50, refused: 0 },
        { hashPart: h(2), requests: 7, refused: 0 },
        { hashPart: h(3), requests: 3, refused: 3 },
        { hashPart: h(4), requests: 9, refused: 9, name: 'pkg-4' },
      ]),
      reporters,
      NOW,
    );
    const k2 = wantedList(store, { k: 2, limit: 10 });
    expect(k2.map((w) => [w.hashPart, w.claims])).toEqual([
      [h(4), 0],
      [h(3), 0],
      [h(2), 1],
    ]);
    expect(k2[2]?.storePath).toBe(`/nix/store/${h(2)}-pkg-2`);
    expect(k2[2]?.derivers).toEqual([`/nix/store/${makeClaim(2).deriver ?? ''}`]);
    expect(k2[0]?.derivers).toEqual([]);
    expect(wantedList(store, { k: 1, limit: 10 }).map((w) => w.hashPart)).toEqual([h(4), h(3)]);
    expect(wantedList(store, { k: 3, limit: 1 }).map((w) => w.hashPart)).toEqual([h(4)]);
    expect(formatWantedList(k2)).toBe(
      [
        `/nix/store/${h(4)}-pkg-4`,
        `/nix/store/${h(3)}-pkg-3 /nix/store/${makeClaim(3).deriver ?? ''}`,
        `/nix/store/${h(2)}-pkg-2 /nix/store/${makeClaim(2).deriver ?? ''}`,
        '',
      ].join('\n'),
    );
  });

  it('reads past the first page of paths, in order', () => {
    const store = new MonitorStore(':memory:');
    const paths = Array.from({ length: 2500 }, (_, i) => ({
      hashPart: h(i),
      requests: 1 + (i % 7),
      refused: Math.min(i % 3, 1 + (i % 7)),
    }));
    acceptDemand(store, report(keyA, lastHour, paths), reporters, NOW);
    const wanted = wantedList(store, { k: 1, limit: 5000 });
    expect(wanted).toHaveLength(2500);
    const key = (w: { refused: number; requests: number }) => w.refused * 100 + w.requests;
    for (let i = 1; i < wanted.length; i++)
      expect(key(wanted[i - 1] as WantedPath)).toBeGreaterThanOrEqual(key(wanted[i] as WantedPath));
  });
});
