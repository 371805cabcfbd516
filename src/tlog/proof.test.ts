import { readFileSync, readdirSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { describe, expect, test } from 'vitest';
import { MemoryTree, SparseTree, testEntry } from '../../test/support/memory-tree.js';
import {
  referenceMTH,
  referencePath,
  referenceSubproof,
} from '../../test/support/reference-merkle.js';
import { TlogError } from './errors.js';
import { EMPTY_ROOT, hashLeaf } from './hash.js';
import {
  planConsistencyProof,
  planInclusionProof,
  proveConsistency,
  proveInclusion,
  proveInclusions,
  verifyConsistency,
  verifyInclusion,
} from './proof.js';
import { planTreeHash, treeHash } from './tree.js';

const VECTORS = new URL('../../test/vectors/transparency-dev-merkle/testdata/', import.meta.url);

interface InclusionVector {
  leafIdx: number;
  treeSize: number;
  root: string;
  leafHash: string;
  proof: string[] | null;
  wantErr: boolean;
}
interface ConsistencyVector {
  size1: number;
  size2: number;
  root1: string;
  root2: string;
  proof: string[] | null;
  wantErr: boolean;
}

function loadVectors(kind: string): { name: string; vector: unknown }[] {
  const dir = new URL(`${kind}/`, VECTORS);
  const files = readdirSync(dir, { recursive: true, encoding: 'utf8' }).filter((f) =>
    f.endsWith('.json'),
  );
  return files.sort().map((name) => ({
    name,
    vector: JSON.parse(readFileSync(new URL(name, dir), 'utf8')) as unknown,
  }));
}

const b64 = (s: string) => new Uint8Array(Buffer.from(s, 'base64'));

function flipBit(hashes: readonly Uint8Array[], i: number, bit: number): Uint8Array[] {
  return hashes.map((h, j) => {
    if (j !== i) return h;
    const copy = Uint8Array.from(h);
    copy[bit >> 3] = (copy[bit >> 3] as number) ^ (1 << (bit & 7));
    return copy;
  });
}

describe('transparency-dev/merkle vectors', () => {
  const inclusion = loadVectors('inclusion') as { name: string; vector: InclusionVector }[];
  const consistency = loadVectors('consistency') as { name: string; vector: ConsistencyVector }[];

  test('the vector set is complete', () => {
    expect(inclusion.length).toBeGreaterThan(50);
    expect(consistency.length).toBeGreaterThan(80);
    expect(inclusion.filter((v) => !v.vector.wantErr).length).toBeGreaterThan(5);
  });

  test.each(inclusion)('verifyInclusion() on inclusion/$name', ({ vector: v }) => {
    const run = () => {
      verifyInclusion(
        b64(v.leafHash),
        v.leafIdx,
        v.treeSize,
        (v.proof ?? []).map(b64),
        b64(v.root),
      );
    };
    if (v.wantErr) expect(run).toThrow(TlogError);
    else expect(run).not.toThrow();
  });

  test.each(consistency)('verifyConsistency() on consistency/$name', ({ vector: v }) => {
    const run = () => {
      verifyConsistency(v.size1, v.size2, (v.proof ?? []).map(b64), b64(v.root1), b64(v.root2));
    };
    if (v.wantErr) expect(run).toThrow(TlogError);
    else expect(run).not.toThrow();
  });
});

describe('RFC 6962 reference tree', () => {
  const leaves = [
    '',
    '00',
    '10',
    '2021',
    '3031',
    '40414243',
    '5051525354555657',
    '606162636465666768696a6b6c6d6e6f',
  ].map((h) => Buffer.from(h, 'hex'));

  test('treeHash() gives the published root of the 8-leaf tree', async () => {
    const tree = new MemoryTree();
    leaves.forEach((l) => tree.appendEntry(l));
    const root = await treeHash(8, tree);
    expect(Buffer.from(root).toString('base64')).toBe(
      'XcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg=',
    );
  });

  test('treeHash(0) is SHA-256 of the empty string and reads nothing', async () => {
    expect(planTreeHash(0).nodes).toEqual([]);
    expect(await treeHash(0, new MemoryTree())).toEqual(EMPTY_ROOT);
    expect(Buffer.from(EMPTY_ROOT).toString('hex')).toBe(
      createHash('sha256').update('').digest('hex'),
    );
  });
});

describe('exhaustive small trees', () => {
  const MAX = 128;
  const tree = new MemoryTree();
  for (let i = 0; i < MAX; i++) tree.appendEntry(testEntry(i));
  const roots = [EMPTY_ROOT];
  for (let n = 1; n <= MAX; n++) roots.push(referenceMTH(tree, 0n, BigInt(n)));

  test('treeHash() matches the RFC 6962 definition for every size 1..128', async () => {
    for (let n = 1; n <= MAX; n++) expect(await treeHash(n, tree)).toEqual(roots[n]);
  });

  test('proveInclusions() gives each proof of proveInclusion(), reading each hash once', async () => {
    for (const n of [1, 2, 37, 100, 128]) {
      const leaves = [0, n - 1, Math.floor(n / 2), 3 % n, 0].filter((m) => m < n);
      const reads: string[][] = [];
      const counting = {
        readHashes: (nodes: readonly { level: number; index: number }[]) => {
          reads.push(nodes.map((x) => `${x.level}/${x.index}`));
          return tree.readHashes(nodes);
        },
      };
      const proofs = await proveInclusions(leaves, n, counting);
      for (const [i, m] of leaves.entries())
        expect(proofs[i]).toEqual(await proveInclusion(m, n, tree));
      expect(reads.length).toBe(n === 1 ? 0 : 1);
      const read = reads.flat();
      expect(new Set(read).size).toBe(read.length);
    }
  });

  test('every inclusion proof equals PATH(), verifies, and fails with any hash bit flipped', async () => {
    let checked = 0;
    for (let n = 1; n <= MAX; n++) {
      const root = roots[n] as Uint8Array;
      for (let m = 0; m < n; m++) {
        const proof = await proveInclusion(m, n, tree);
        expect(proof).toEqual(referencePath(tree, BigInt(m), 0n, BigInt(n)));
        const leaf = hashLeaf(testEntry(m));
        verifyInclusion(leaf, m, n, proof, root);
        for (let i = 0; i < proof.length; i++) {
          const bad = flipBit(proof, i, (m * 7 + i) % 256);
          expect(() => verifyInclusion(leaf, m, n, bad, root)).toThrow(TlogError);
        }
        if (n > 1) {
          expect(() => verifyInclusion(leaf, m, n, proof.slice(1), root)).toThrow(TlogError);
          expect(() => verifyInclusion(leaf, m, n, [...proof, root], root)).toThrow(TlogError);
        }
        if (m + 1 < n)
          expect(() => verifyInclusion(leaf, m + 1, n, proof, root)).toThrow(TlogError);
        checked++;
      }
    }
    expect(checked).toBe((MAX * (MAX + 1)) / 2);
  });

  test('every consistency proof equals PROOF(), verifies, and fails with any hash bit flipped', async () => {
    let checked = 0;
    for (let n = 1; n <= MAX; n++) {
      for (let m = 1; m <= n; m++) {
        const proof = await proveConsistency(m, n, tree);
        const expected = m === n ? [] : referenceSubproof(tree, BigInt(m), 0n, BigInt(n), true);
        expect(proof).toEqual(expected);
        const [r1, r2] = [roots[m] as Uint8Array, roots[n] as Uint8Array];
        verifyConsistency(m, n, proof, r1, r2);
        for (let i = 0; i < proof.length; i++) {
          const bad = flipBit(proof, i, (n * 13 + i) % 256);
          expect(() => verifyConsistency(m, n, bad, r1, r2)).toThrow(TlogError);
        }
        if (m < n) {
          expect(() => verifyConsistency(m, n, proof.slice(0, -1), r1, r2)).toThrow(TlogError);
          expect(() => verifyConsistency(m, n, proof, r2, r1)).toThrow(TlogError);
        }
        checked++;
      }
    }
    expect(checked).toBe((MAX * (MAX + 1)) / 2);
  });
});

describe('index arithmetic past 2³²', () => {
  const T = 2 ** 40;
  const sizes = [2 ** 32 + 1, T - 1, T, T + 1, T + 12_345, 2 ** 41 - 3, 2 ** 52 + 7];
  const indexes = (n: number) => [0, 1, 2 ** 31, 2 ** 32 - 1, 2 ** 32, n - 2, n - 1];
  const specials = sizes.flatMap((n) => indexes(n).flatMap((m) => [m - 1, m, m + 1]));
  const syntheticReader = new SparseTree(specials.filter((i) => i >= 0));

  test('inclusion proofs in trees of ~2⁴⁰ leaves match the bigint reference and verify', async () => {
    for (const n of sizes) {
      const root = await treeHash(n, syntheticReader);
      expect(root).toEqual(referenceMTH(syntheticReader, 0n, BigInt(n)));
      for (const m of indexes(n)) {
        const plan = planInclusionProof(m, n);
        for (const node of plan.nodes) {
          expect((node.index + 1) * 2 ** node.level).toBeLessThanOrEqual(n);
        }
        const proof = await proveInclusion(m, n, syntheticReader);
        const leaf = syntheticReader.leafHash(m);
        expect(proof).toEqual(referencePath(syntheticReader, BigInt(m), 0n, BigInt(n)));
        verifyInclusion(leaf, m, n, proof, root);
        if (m > 0)
          expect(() => {
            verifyInclusion(leaf, m - 1, n, proof, root);
          }).toThrow(TlogError);
      }
    }
  });

  test('consistency proofs between trees of ~2⁴⁰ leaves match the bigint reference and verify', async () => {
    for (const n of sizes) {
      for (const m of [1, 2 ** 32 - 1, 2 ** 32, 2 ** 32 + 3, n - 1, n].filter((m) => m <= n)) {
        const proof = await proveConsistency(m, n, syntheticReader);
        const expected =
          m === n ? [] : referenceSubproof(syntheticReader, BigInt(m), 0n, BigInt(n), true);
        expect(proof).toEqual(expected);
        const [r1, r2] = [await treeHash(m, syntheticReader), await treeHash(n, syntheticReader)];
        verifyConsistency(m, n, proof, r1, r2);
        if (proof.length > 0) {
          expect(() => {
            verifyConsistency(m, n, flipBit(proof, 0, 1), r1, r2);
          }).toThrow(TlogError);
        }
      }
    }
  });
});

describe('argument checks', () => {
  test('planInclusionProof() rejects an index outside the tree and unsafe integers', () => {
    expect(() => planInclusionProof(5, 5)).toThrow(TlogError);
    expect(() => planInclusionProof(-1, 5)).toThrow(TlogError);
    expect(() => planInclusionProof(0, 2 ** 53)).toThrow(TlogError);
    expect(() => planInclusionProof(0.5, 5)).toThrow(TlogError);
  });

  test('planConsistencyProof() rejects the empty tree and shrinking trees', () => {
    expect(() => planConsistencyProof(0, 5)).toThrow(TlogError);
    expect(() => planConsistencyProof(6, 5)).toThrow(TlogError);
    expect(planConsistencyProof(5, 5).nodes).toEqual([]);
  });

  test('verifyInclusion() rejects a hash of the wrong length with a message saying so', () => {
    const h = new Uint8Array(32);
    expect(() => {
      verifyInclusion(h, 0, 2, [new Uint8Array(31)], h);
    }).toThrow(/31 bytes/);
  });
});
