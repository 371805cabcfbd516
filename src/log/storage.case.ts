/**
 * The LogStorage conformance suite: every backend runs these same tests (see storage.ts for
 * the contract they check).
 */
import { createHash } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import type { LogStorage, NewEntry } from './storage.js';

function entry(i: number, hashPart = `h${i % 5}`): NewEntry {
  const data = Buffer.from(`entry number ${i}\n`);
  return { data, leafHash: createHash('sha256').update('\0').update(data).digest(), hashPart };
}

const hex = (b: Uint8Array | undefined) =>
  b === undefined ? undefined : Buffer.from(b).toString('hex');

/** Registers the suite for a backend; `open` makes a fresh, empty store each time. */
export function describeLogStorage(
  name: string,
  open: () => Promise<LogStorage>,
  enabled = true,
): void {
  describe.runIf(enabled)(`LogStorage conformance: ${name}`, () => {
    let store: LogStorage;
    beforeEach(async () => {
      store = await open();
    });
    afterEach(async () => {
      await store.close();
    });

    test('a new store is empty', async () => {
      expect(await store.state()).toEqual({ nextIndex: 0, treeSize: 0, checkpoint: undefined });
      expect(await store.lookup('h0')).toEqual([]);
      expect(await store.tile(0, 0)).toBeUndefined();
    });

    test('addEntries() assigns dense indexes in order and is idempotent per leaf hash', async () => {
      expect(await store.addEntries([entry(0), entry(1), entry(2)])).toEqual([0, 1, 2]);
      expect(await store.addEntries([entry(3), entry(1), entry(4), entry(3)])).toEqual([
        3, 1, 4, 3,
      ]);
      expect((await store.state()).nextIndex).toBe(5);
      expect(await store.addEntries([entry(2)])).toEqual([2]);
      expect((await store.state()).nextIndex).toBe(5);
    });

    test('addChained() adds only onto the last entry of its key, in the one index order', async () => {
      const link = (i: number) => entry(100 + i, 'chain');
      const hash = (i: number) => link(i).leafHash;
      expect(await store.addChained(link(0), hash(9))).toBeUndefined();
      expect(await store.addChained(link(0), undefined)).toBe(0);
      expect(await store.addChained(link(1), undefined)).toBeUndefined();
      expect(await store.addEntries([entry(0, 'chain-other'), entry(1)])).toEqual([1, 2]);
      expect(await store.addChained(link(1), hash(0))).toBe(3);
      // Stale: entry 0 is no longer the last.
      expect(await store.addChained(link(2), hash(0))).toBeUndefined();
      // Already stored: its index, whatever `last` says.
      expect(await store.addChained(link(1), undefined)).toBe(3);
      expect(await store.addChained(link(2), hash(1))).toBe(4);
      expect((await store.state()).nextIndex).toBe(5);
      const chain = await store.lookup('chain');
      expect(chain.map((e) => e.index)).toEqual([0, 3, 4]);
      expect(await store.addEntries([entry(7)])).toEqual([5]);
    });

    test('concurrent addChained() onto one entry: exactly one succeeds', async () => {
      const link = (i: number) => entry(200 + i, 'chain');
      expect(await store.addChained(link(0), undefined)).toBe(0);
      const results = await Promise.all(
        [1, 2, 3, 4, 5, 6].map((i) => store.addChained(link(i), link(0).leafHash)),
      );
      expect(results.filter((r) => r !== undefined)).toEqual([1]);
      expect((await store.state()).nextIndex).toBe(2);
    });

    test('entries(), leafHashes() and lookup() return what was added', async () => {
      const added = [0, 1, 2, 3, 4, 5, 6].map((i) => entry(i));
      await store.addEntries(added);
      const data = await store.entries(2, 5);
      expect(data.map((d) => Buffer.from(d).toString())).toEqual(
        [2, 3, 4].map((i) => `entry number ${i}\n`),
      );
      expect((await store.leafHashes(0, 7)).map(hex)).toEqual(added.map((e) => hex(e.leafHash)));
      const found = await store.lookup('h1');
      expect(found.map((f) => f.index)).toEqual([1, 6]);
      expect(Buffer.from(found[1]?.data ?? []).toString()).toBe('entry number 6\n');
    });

    test('concurrent addEntries() never give two entries one index', async () => {
      const batches = [0, 1, 2, 3, 4, 5, 6, 7].map((b) =>
        store.addEntries([0, 1, 2, 3, 4, 5, 6, 7, 8, 9].map((i) => entry(b * 10 + i))),
      );
      const indexes = (await Promise.all(batches)).flat();
      expect(new Set(indexes).size).toBe(80);
      expect(Math.max(...indexes)).toBe(79);
      // Re-adding everything at once returns the same indexes.
      const again = await store.addEntries(Array.from({ length: 80 }, (_, i) => entry(i)));
      const byEntry = new Map<number, number>();
      (await Promise.all(batches)).flat().forEach((idx, k) => byEntry.set(k, idx));
      expect(again).toEqual(Array.from({ length: 80 }, (_, k) => byEntry.get(k)));
    });

    test('publish() is a compare-and-set on the tree size and stores tiles', async () => {
      await store.addEntries([entry(0), entry(1)]);
      const t1 = { level: 0, index: 0, data: Buffer.alloc(32, 1) };
      expect(await store.publish(0, 1, [t1], 'checkpoint 1\n')).toBe(true);
      expect(await store.publish(0, 2, [], 'stale\n')).toBe(false);
      expect(await store.state()).toEqual({
        nextIndex: 2,
        treeSize: 1,
        checkpoint: 'checkpoint 1\n',
      });
      const t2 = {
        level: 0,
        index: 0,
        data: Buffer.concat([Buffer.alloc(32, 1), Buffer.alloc(32, 2)]),
      };
      expect(await store.publish(1, 2, [t2], 'checkpoint 2\n')).toBe(true);
      expect(hex(await store.tile(0, 0))).toBe(hex(t2.data));
      expect((await store.state()).checkpoint).toBe('checkpoint 2\n');
    });

    test('a tile is never replaced by a shorter one', async () => {
      const long = { level: 1, index: 3, data: Buffer.alloc(64, 7) };
      const short = { level: 1, index: 3, data: Buffer.alloc(32, 7) };
      expect(await store.publish(0, 0, [long], 'a\n')).toBe(true);
      expect(await store.publish(0, 0, [short], 'b\n')).toBe(true);
      expect(hex(await store.tile(1, 3))).toBe(hex(long.data));
    });

    test('a failed publish writes no tile', async () => {
      expect(
        await store.publish(5, 6, [{ level: 0, index: 9, data: Buffer.alloc(32) }], 'x\n'),
      ).toBe(false);
      expect(await store.tile(0, 9)).toBeUndefined();
    });

    test('compressed bundles are stored once, the first encoding kept', async () => {
      expect(await store.compressedBundle(3)).toBeUndefined();
      await store.putCompressedBundles([]);
      await store.putCompressedBundles([
        { index: 3, gzip: Buffer.from('first') },
        { index: 2 ** 33, gzip: Buffer.from('far') },
      ]);
      await store.putCompressedBundles([
        { index: 3, gzip: Buffer.from('second') },
        { index: 4, gzip: Buffer.from('four') },
      ]);
      expect(Buffer.from((await store.compressedBundle(3)) ?? []).toString()).toBe('first');
      expect(Buffer.from((await store.compressedBundle(4)) ?? []).toString()).toBe('four');
      expect(Buffer.from((await store.compressedBundle(2 ** 33)) ?? []).toString()).toBe('far');
    });

    test('trySequencerLock() can be taken and kept', async () => {
      expect(await store.trySequencerLock()).toBe(true);
      expect(await store.trySequencerLock()).toBe(true);
    });

    test('indexes past 2^32 round-trip through tiles', async () => {
      const index = 2 ** 33 + 5;
      expect(
        await store.publish(0, 0, [{ level: 0, index, data: Buffer.alloc(32, 3) }], 'c\n'),
      ).toBe(true);
      expect(hex(await store.tile(0, index))).toBe(hex(Buffer.alloc(32, 3)));
    });
  });
}
