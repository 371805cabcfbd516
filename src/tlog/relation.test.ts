import { describe, expect, test } from 'vitest';
import { KERNEL_CASES, KernelWorld } from '../../test/support/kernel-cases.js';
import { SparseTree } from '../../test/support/memory-tree.js';
import { formatCheckpoint } from './checkpoint.js';
import { formatForkEvidence, verifyForkEvidence } from './evidence.js';
import { EMPTY_ROOT } from './hash.js';
import { SIG_TYPE_ED25519, formatVerifierKey, newSigner, parseVerifierKey } from './keys.js';
import { signNote } from './note.js';
import {
  proveCompleteConsistency,
  proveConsistency,
  rootsFromConsistencyProof,
  verifyConsistency,
} from './proof.js';
import { type VerifiedCheckpoint, relateCheckpoints, relateCheckpointsWith } from './relation.js';
import { TILE_HEIGHT, TILE_WIDTH, type TileReader, tileHashReader } from './tile.js';
import { treeHash, type HashReader } from './tree.js';

const signer = newSigner('kernel.test/log', SIG_TYPE_ED25519, new Uint8Array(32).fill(3));
const verifier = parseVerifierKey(formatVerifierKey(signer));
const world = new KernelWorld(signer);

describe('relateCheckpoints(): the kernel table', () => {
  test.each(KERNEL_CASES)('$name: $expect (proof handed over)', async (c) => {
    const last = await world.checkpoint(...c.last);
    const next = await world.checkpoint(...c.next);
    const relation = relateCheckpoints(last, next, await world.proof(c, true));
    expect(relation.kind).toBe(c.expect);
  });

  test.each(KERNEL_CASES)('$name: $expect (read from tiles)', async (c) => {
    const last = await world.checkpoint(...c.last);
    const next = await world.checkpoint(...c.next);
    const relation = await relateCheckpointsWith(last, next, [world.reader(c)]);
    expect(relation.kind).toBe(c.expect);
    if (relation.kind !== 'fork') return;
    // Each fork carries evidence that verifies with the log's key alone.
    const text = formatForkEvidence(relation.evidence);
    const verified = verifyForkEvidence(text, [verifier]);
    expect(verified.origin).toBe('kernel.test/log');
    expect(verified.checkpoints.map((cp) => cp.treeSize).sort((a, b) => a - b)).toEqual(
      [c.last[1], c.next[1]].sort((a, b) => a - b),
    );
  });
});

describe('relateCheckpoints()', () => {
  const at = async (size: number) => world.checkpoint('honest', size);

  test('relateCheckpointsWith() tries the next source while the data is bad, and only then', async () => {
    const last = await at(5);
    const next = await at(9);
    const bad = tileHashReader(9, world.tileReader('honest', 'flip-bit'));
    const good = tileHashReader(9, world.tileReader('honest'));
    let read = 0;
    const counted = {
      readHashes: (n: Parameters<typeof good.readHashes>[0]) => (read++, good.readHashes(n)),
    };
    expect((await relateCheckpointsWith(last, next, [bad, good])).kind).toBe('extends');
    expect((await relateCheckpointsWith(last, next, [good, counted])).kind).toBe('extends');
    expect(read).toBe(0);
    const twice = await relateCheckpointsWith(last, next, [bad, bad]);
    expect(twice.kind).toBe('bad-data');
    // A fork from the first source is final: a second opinion cannot undo a proof.
    const forked = await world.checkpoint('forked', 9);
    const forkTiles = tileHashReader(9, world.tileReader('forked'));
    expect((await relateCheckpointsWith(last, forked, [forkTiles, bad])).kind).toBe('fork');
  });

  test('a non-empty proof between equal sizes is bad data, a second root a fork', async () => {
    const nine = await at(9);
    expect(relateCheckpoints(nine, nine, [new Uint8Array(32)]).kind).toBe('bad-data');
    const forked = await world.checkpoint('forked', 9);
    expect(relateCheckpoints(nine, forked, [new Uint8Array(32)]).kind).toBe('fork');
  });

  test('from and to the empty tree: no proof, and size 0 must have the empty root', async () => {
    const empty: VerifiedCheckpoint = {
      treeSize: 0,
      rootHash: EMPTY_ROOT,
      note: signNote(
        formatCheckpoint({
          origin: signer.name,
          treeSize: 0,
          rootHash: EMPTY_ROOT,
          extensions: [],
        }),
        [signer],
      ),
    };
    const five = await at(5);
    expect(relateCheckpoints(empty, five).kind).toBe('extends');
    expect(relateCheckpoints(five, empty).kind).toBe('older');
    expect(relateCheckpoints(empty, five, [new Uint8Array(32)]).kind).toBe('bad-data');
    const bogus = { ...empty, rootHash: new Uint8Array(32) };
    expect(relateCheckpoints(bogus, five).kind).toBe('bad-data');
    expect(relateCheckpoints(five, bogus).kind).toBe('bad-data');
  });

  test('every bit of every hash of the complete proof is checked', async () => {
    for (const [from, to] of [
      [4, 9],
      [5, 9],
      [8, 11],
      [1, 12],
    ] as const) {
      const last = await at(from);
      const next = await at(to);
      const proof = await proveCompleteConsistency(from, to, world.tree('honest'));
      expect(relateCheckpoints(last, next, proof).kind).toBe('extends');
      for (let i = 0; i < proof.length; i++) {
        for (const bit of [0, 7 * 8 + 3, 31 * 8 + 7]) {
          const bad = proof.map((h) => Buffer.from(h));
          const hash = bad[i] as Buffer;
          hash[bit >> 3] = (hash[bit >> 3] ?? 0) ^ (1 << (bit & 7));
          // A changed proof can never show a fork: it no longer leads to the signed root.
          expect(relateCheckpoints(last, next, bad).kind).toBe('bad-data');
        }
      }
    }
  });

  test('the complete proof is the RFC proof with the old subtree first for powers of two', async () => {
    const tree = world.tree('honest');
    for (let m = 1; m < 12; m++) {
      for (let n = m + 1; n <= 12; n++) {
        const rfc = await proveConsistency(m, n, tree);
        const complete = await proveCompleteConsistency(m, n, tree);
        const oldRoot = await treeHash(m, tree);
        const power = (m & (m - 1)) === 0;
        expect(complete.map((h) => Buffer.from(h).toString('hex'))).toEqual(
          (power ? [oldRoot, ...rfc] : rfc).map((h) => Buffer.from(h).toString('hex')),
        );
        const roots = rootsFromConsistencyProof(m, n, complete);
        expect(Buffer.from(roots.oldRoot)).toEqual(Buffer.from(oldRoot));
        expect(Buffer.from(roots.newRoot)).toEqual(Buffer.from(await treeHash(n, tree)));
        verifyConsistency(m, n, rfc, oldRoot, await treeHash(n, tree));
      }
    }
  });
});

/** A tile reader over any hash reader: the tile at level L holds Merkle level 8·L. */
function tilesOf(tree: HashReader, flip?: { level: number }): TileReader {
  return {
    async readTiles(tiles) {
      return Promise.all(
        tiles.map(async (t) => {
          const nodes = Array.from({ length: t.width }, (_, j) => ({
            level: t.level * TILE_HEIGHT,
            index: t.index * TILE_WIDTH + j,
          }));
          const data = Buffer.concat(await tree.readHashes(nodes));
          if (flip?.level === t.level) data[5] = (data[5] ?? 0) ^ 0x10;
          return data;
        }),
      );
    },
  };
}

describe('relateCheckpointsWith() on trees of many tile levels and more than 2³² leaves', () => {
  const honest = new SparseTree([1, 300, 70_000, 2 ** 33]);
  const forked = new SparseTree([1, 301, 70_000, 2 ** 33]);
  const checkpoint = async (tree: SparseTree, size: number): Promise<VerifiedCheckpoint> => {
    const rootHash = await treeHash(size, tree);
    const text = formatCheckpoint({
      origin: signer.name,
      treeSize: size,
      rootHash,
      extensions: [],
    });
    return { treeSize: size, rootHash, note: signNote(text, [signer]) };
  };
  const big = 2 ** 33 + 17;

  test('an honest extension, a fork from a power of two, and a corrupted level-2 tile', async () => {
    const last = await checkpoint(honest, 70_001);
    const next = await checkpoint(honest, big);
    expect(
      (await relateCheckpointsWith(last, next, [tileHashReader(big, tilesOf(honest))])).kind,
    ).toBe('extends');
    expect(
      (
        await relateCheckpointsWith(last, next, [
          tileHashReader(big, tilesOf(honest, { level: 2 })),
        ])
      ).kind,
    ).toBe('bad-data');
    const pow = await checkpoint(honest, 65_536);
    const fork = await checkpoint(forked, big);
    const relation = await relateCheckpointsWith(pow, fork, [tileHashReader(big, tilesOf(forked))]);
    expect(relation.kind).toBe('fork');
    if (relation.kind === 'fork') {
      expect(verifyForkEvidence(formatForkEvidence(relation.evidence), [verifier]).reason).toMatch(
        /not a prefix/,
      );
    }
    // The rollback of a huge tree to an honest prefix is only older.
    expect(
      (await relateCheckpointsWith(next, last, [tileHashReader(big, tilesOf(honest))])).kind,
    ).toBe('older');
  });
});
