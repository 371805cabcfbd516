import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { ClaimJson } from '../claim/index.js';
import { addLog } from '../../test/support/monitor-store.js';
import { countReproducibility, countReproducibilityYielding } from './repro.js';
import { MonitorStore } from './store.js';

const path = (i: number) =>
  `/nix/store/${String(i)
    .padStart(32, '0')
    .replace(/[eotu]/g, 'a')}-p${i}`;
const hash = (n: number) => `sha256:${String(n).padStart(52, '0')}`;
const claim = (i: number, nar: number): ClaimJson => ({
  storePath: path(i),
  narHash: hash(nar),
  narSize: 100,
  references: [],
});

describe('countReproducibility()', () => {
  it("counts shared and agreed paths and each log's agreement, the same yielding or not", async () => {
    const store = new MonitorStore(join(mkdtempSync(join(tmpdir(), 'accord-repro-')), 'm.db'));
    try {
      // 20,000 paths (several event-loop steps): a and b agree on all; c claims the first 100,
      // disagreeing on the first 10; path 0 is also claimed by a twice with another answer.
      const n = 20_000;
      addLog(store, 'a', [...Array.from({ length: n }, (_, i) => claim(i, i)), claim(0, 999_999)]);
      addLog(
        store,
        'b',
        Array.from({ length: n }, (_, i) => claim(i, i)),
      );
      addLog(
        store,
        'c',
        Array.from({ length: 100 }, (_, i) => claim(i, i < 10 ? i + 500_000 : i)),
      );
      const counts = countReproducibility(store, '/nix/store');
      expect(counts.paths).toBe(n);
      expect(counts.shared).toBe(n);
      expect(counts.agreeing).toBe(n - 10);
      expect(counts.perLog.get('c')).toEqual({ claims: 100, shared: 100, agreeing: 90 });
      // On paths 1–9 a and b are the majority against c. On path 0 a also claims another
      // answer: it is in the majority and in the minority, so it does not count as agreeing.
      expect(counts.perLog.get('a')).toEqual({ claims: n, shared: n, agreeing: n - 1 });
      expect(counts.perLog.get('b')).toEqual({ claims: n, shared: n, agreeing: n });
      expect(await countReproducibilityYielding(store, '/nix/store')).toEqual(counts);
    } finally {
      store.close();
    }
  });
});
