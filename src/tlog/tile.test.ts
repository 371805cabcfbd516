import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { MemoryTree, testEntry } from '../../test/support/memory-tree.js';
import { EMPTY_EDGE, appendLeaves, edgeFromTiles, edgeRootHash, edgeTiles } from './edge.js';
import { TlogError } from './errors.js';
import { hashLeaf } from './hash.js';
import { proveConsistency, proveInclusion } from './proof.js';
import {
  type Tile,
  entryBundlePath,
  formatTileIndex,
  parseTilePath,
  tileAt,
  tileHashReader,
  tilePath,
  tilesForNodes,
} from './tile.js';
import { planTreeHash, treeHash } from './tree.js';
import { planInclusionProof } from './proof.js';

describe('tile paths', () => {
  test('formatTileIndex() encodes the spec example 1234067 as x001/x234/067', () => {
    expect(formatTileIndex(1234067)).toBe('x001/x234/067');
    expect(formatTileIndex(0)).toBe('000');
    expect(formatTileIndex(67)).toBe('067');
    expect(formatTileIndex(1000)).toBe('x001/000');
  });

  test('tilePath() and entryBundlePath() add the level and partial width', () => {
    expect(tilePath({ level: 0, index: 1234067, width: 256 })).toBe('tile/0/x001/x234/067');
    expect(tilePath({ level: 2, index: 5, width: 17 })).toBe('tile/2/005.p/17');
    expect(entryBundlePath({ index: 3, width: 1 })).toBe('tile/entries/003.p/1');
    expect(() => tilePath({ level: 64, index: 0, width: 256 })).toThrow(TlogError);
    expect(() => tilePath({ level: 0, index: 0, width: 0 })).toThrow(TlogError);
  });

  test('parseTilePath() reads canonical paths', () => {
    expect(parseTilePath('tile/0/x001/x234/067')).toEqual({
      kind: 'tile',
      tile: { level: 0, index: 1234067, width: 256 },
    });
    expect(parseTilePath('tile/63/000.p/255')).toEqual({
      kind: 'tile',
      tile: { level: 63, index: 0, width: 255 },
    });
    expect(parseTilePath('tile/entries/x002/000.p/1')).toEqual({
      kind: 'entries',
      bundle: { index: 2000, width: 1 },
    });
  });

  test.each([
    'tile/0/67',
    'tile/0/0067',
    'tile/00/067',
    'tile/01/067',
    'tile/64/000',
    'tile/0/x000/067',
    'tile/0/001/002',
    'tile/0/x001',
    'tile/0/067.p/0',
    'tile/0/067.p/256',
    'tile/0/067.p/007',
    'tile/0/067.p/',
    'tile/0/067/',
    '/tile/0/067',
    'tile/0/../067',
    'tile/0/067.p/5/',
    'tile/entries/067.p/300',
    'tile/-1/000',
    'tile/0/X001/067',
    'tile/0/067 ',
    'tile//067',
    'tile/0/x001/x002/x003/x004/x005/x006/007',
    'tile/entry/000',
    'tile/0/06a',
  ])('parseTilePath() rejects %j', (path) => {
    expect(() => parseTilePath(path)).toThrow(TlogError);
  });

  test('parseTilePath() inverts tilePath() and entryBundlePath()', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 63 }),
        fc.maxSafeNat(),
        fc.integer({ min: 1, max: 256 }),
        fc.boolean(),
        (level, index, width, entries) => {
          const path = entries
            ? entryBundlePath({ index, width })
            : tilePath({ level, index, width });
          const parsed = parseTilePath(path);
          if (entries) expect(parsed).toEqual({ kind: 'entries', bundle: { index, width } });
          else expect(parsed).toEqual({ kind: 'tile', tile: { level, index, width } });
        },
      ),
    );
  });

  test('parseTilePath() throws only TlogError on arbitrary input', () => {
    const alphabet = fc.constantFrom(...'tile/entrs0123456789x.p/'.split(''));
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.string({ unit: alphabet })), (s) => {
        try {
          const target = parseTilePath(s);
          const again =
            target.kind === 'tile' ? tilePath(target.tile) : entryBundlePath(target.bundle);
          expect(again).toBe(s);
        } catch (e) {
          expect(e).toBeInstanceOf(TlogError);
        }
      }),
      { numRuns: 5000 },
    );
  });
});

describe('tiles of a tree', () => {
  test('a tree of 70,000 leaves has the tiles the spec lists', () => {
    const size = 70_000;
    const level0 = [...Array(300).keys()].map((i) => tileAt(0, i, size)).filter((t) => t);
    expect(level0.filter((t) => t?.width === 256)).toHaveLength(273);
    expect(level0.filter((t) => t?.width !== 256)).toEqual([{ level: 0, index: 273, width: 112 }]);
    expect(tileAt(1, 0, size)).toEqual({ level: 1, index: 0, width: 256 });
    expect(tileAt(1, 1, size)).toEqual({ level: 1, index: 1, width: 17 });
    expect(tileAt(1, 2, size)).toBeUndefined();
    expect(tileAt(2, 0, size)).toEqual({ level: 2, index: 0, width: 1 });
    expect(tileAt(3, 0, size)).toBeUndefined();
    expect(edgeTiles(size)).toEqual([
      { level: 0, index: 273, width: 112 },
      { level: 1, index: 1, width: 17 },
      { level: 2, index: 0, width: 1 },
    ]);
  });

  test('a tree of 256 leaves is one full level-0 tile and a level-1 tile of width 1', () => {
    expect(tileAt(0, 0, 256)).toEqual({ level: 0, index: 0, width: 256 });
    expect(tileAt(1, 0, 256)).toEqual({ level: 1, index: 0, width: 1 });
    expect(edgeTiles(256)).toEqual([{ level: 1, index: 0, width: 1 }]);
  });

  test('tilesForNodes() names the tiles a proof reads', () => {
    const nodes = planInclusionProof(5, 70_000).nodes;
    const tiles = tilesForNodes(nodes, 70_000);
    expect(tiles.map(tilePath).sort()).toEqual(
      ['tile/0/000', 'tile/0/273.p/112', 'tile/1/000', 'tile/1/001.p/17'].sort(),
    );
    expect(tilesForNodes(planTreeHash(70_000).nodes, 70_000).map(tilePath).sort()).toEqual(
      ['tile/0/273.p/112', 'tile/1/001.p/17', 'tile/2/000.p/1'].sort(),
    );
  });
});

/** Builds a tree by appending in batches; returns every tile write and the memory tree. */
function build(size: number, batches: (remaining: number) => number) {
  const memory = new MemoryTree();
  const store = new Map<string, Uint8Array>();
  let edge = EMPTY_EDGE;
  const roots: Uint8Array[] = [];
  while (edge.treeSize < size) {
    const n = Math.min(size - edge.treeSize, Math.max(1, batches(size - edge.treeSize)));
    const hashes = [];
    for (let i = 0; i < n; i++) {
      const leaf = hashLeaf(testEntry(edge.treeSize + i));
      hashes.push(leaf);
      memory.appendHash(leaf);
    }
    const result = appendLeaves(edge, hashes);
    for (const { tile, data } of result.tiles) store.set(tilePath(tile), data);
    edge = result.edge;
    roots.push(result.rootHash);
  }
  const reader = {
    readTiles(tiles: readonly Tile[]) {
      return Promise.resolve(
        tiles.map((t) => {
          const data = store.get(tilePath(t));
          if (data === undefined) throw new Error(`missing tile ${tilePath(t)}`);
          return data;
        }),
      );
    },
  };
  return { memory, store, edge, reader, roots };
}

describe('appendLeaves()', () => {
  test('tiles written in random batches give the proofs and root of the memory tree', async () => {
    for (const [size, batch] of [
      [1, 1],
      [255, 7],
      [256, 256],
      [257, 100],
      [513, 1],
      [65_537, 5000],
      [70_000, 3333],
    ] as const) {
      const { memory, edge, reader } = build(size, () => batch);
      const root = await treeHash(size, memory);
      expect(edgeRootHash(edge)).toEqual(root);
      const tiles = tileHashReader(size, reader);
      expect(await treeHash(size, tiles)).toEqual(root);
      for (const m of [0, 1, Math.floor(size / 2), size - 1]) {
        if (m >= size) continue;
        expect(await proveInclusion(m, size, tiles)).toEqual(await proveInclusion(m, size, memory));
      }
      for (const old of [1, 255, 256, 257, size - 1]) {
        if (old < 1 || old > size) continue;
        expect(await proveConsistency(old, size, tiles)).toEqual(
          await proveConsistency(old, size, memory),
        );
      }
    }
  });

  test('every intermediate root equals the root of the tree of that size', async () => {
    const sizes: number[] = [];
    let at = 0;
    const { memory, roots } = build(2000, (left) => {
      const n = Math.min(left, 1 + ((at * 37) % 300));
      at += n;
      sizes.push(at);
      return n;
    });
    for (const [i, size] of sizes.entries()) {
      expect(roots[i]).toEqual(await treeHash(size, memory));
    }
  });

  test('edgeFromTiles() reloads an edge from its stored partial tiles', () => {
    const { store, edge } = build(70_000, () => 999);
    const data = edgeTiles(70_000).map((t) => store.get(tilePath(t)) as Uint8Array);
    const reloaded = edgeFromTiles(70_000, data);
    expect(reloaded.partials.map((p) => p.length)).toEqual([112, 17, 1]);
    expect(edgeRootHash(reloaded)).toEqual(edgeRootHash(edge));
    expect(() => edgeFromTiles(70_000, data.slice(1))).toThrow(TlogError);
    expect(() =>
      edgeFromTiles(70_000, [data[0] as Uint8Array, new Uint8Array(5), data[2] as Uint8Array]),
    ).toThrow(TlogError);
  });

  test('the tiles written for a batch are exactly the tiles that changed', () => {
    const { edge } = build(300, () => 300);
    const result = appendLeaves(edge, [hashLeaf(testEntry(300))]);
    expect(result.tiles.map((t) => tilePath(t.tile))).toEqual(['tile/0/001.p/45']);
    const full = appendLeaves(build(255, () => 255).edge, [hashLeaf(testEntry(255))]);
    expect(full.tiles.map((t) => tilePath(t.tile))).toEqual(['tile/0/000', 'tile/1/000.p/1']);
  });
});
