/** The WitnessStorage conformance suite, run on every backend (see storage.ts). */
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import type { WitnessStorage } from './storage.js';

const cp = (size: number, fill = 1) => ({
  size,
  rootHash: new Uint8Array(32).fill(fill),
  note: `note ${size} ${fill}\n`,
});

export function describeWitnessStorage(
  name: string,
  open: () => Promise<WitnessStorage>,
  enabled = true,
): void {
  describe.runIf(enabled)(`WitnessStorage conformance: ${name}`, () => {
    let store: WitnessStorage;
    beforeEach(async () => {
      store = await open();
    });
    afterEach(async () => {
      await store.close();
    });

    test('a log never seen has no record; advancing from 0 creates it', async () => {
      expect(await store.latest('a.example/log')).toBeUndefined();
      expect(await store.advance('a.example/log', 0, cp(5))).toEqual({ ok: true });
      const got = await store.latest('a.example/log');
      expect(got?.size).toBe(5);
      expect(Buffer.from(got?.rootHash ?? []).equals(Buffer.alloc(32, 1))).toBe(true);
      expect(got?.note).toBe('note 5 1\n');
    });

    test('advance is a compare-and-set on the stored size', async () => {
      await store.advance('b.example/log', 0, cp(5));
      expect(await store.advance('b.example/log', 0, cp(9))).toEqual({ ok: false, size: 5 });
      expect(await store.advance('b.example/log', 4, cp(9))).toEqual({ ok: false, size: 5 });
      expect(await store.advance('b.example/log', 5, cp(9, 2))).toEqual({ ok: true });
      expect((await store.latest('b.example/log'))?.size).toBe(9);
      expect(await store.advance('b.example/log', 9, cp(9, 2))).toEqual({ ok: true });
    });

    test('of concurrent advances from one state, exactly one wins', async () => {
      await store.advance('c.example/log', 0, cp(1));
      const results = await Promise.all(
        [2, 3, 4, 5, 6].map((n) => store.advance('c.example/log', 1, cp(n))),
      );
      expect(results.filter((r) => r.ok)).toHaveLength(1);
    });

    test('logs are independent', async () => {
      await store.advance('d.example/log', 0, cp(3));
      expect(await store.advance('e.example/log', 0, cp(7))).toEqual({ ok: true });
      expect((await store.latest('d.example/log'))?.size).toBe(3);
    });
  });
}
