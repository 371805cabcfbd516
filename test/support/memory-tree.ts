/** Test support: a Merkle tree held in memory, storing every complete subtree hash. */
import { type HashReader, type TreeNode, hashChildren, hashLeaf } from '../../src/tlog/index.js';

/** Keeps `levels[l][i]` = hash of complete subtree (l, i); appending updates the right edge. */
export class MemoryTree implements HashReader {
  readonly levels: Uint8Array[][] = [[]];

  get size(): number {
    return this.levels[0]?.length ?? 0;
  }

  appendEntry(entry: Uint8Array): void {
    this.appendHash(hashLeaf(entry));
  }

  appendHash(leafHash: Uint8Array): void {
    let hash = leafHash;
    for (let level = 0; ; level++) {
      const row = (this.levels[level] ??= []);
      row.push(hash);
      if (row.length % 2 === 1) return;
      hash = hashChildren(row[row.length - 2] as Uint8Array, hash);
    }
  }

  readHashes(nodes: readonly TreeNode[]): Uint8Array[] {
    return nodes.map(({ level, index }) => {
      const hash = this.levels[level]?.[index];
      if (hash === undefined) throw new Error(`no stored hash ${level}/${index}`);
      return hash;
    });
  }
}

/** Leaf data for test trees: distinct, deterministic, of varying length. */
export function testEntry(i: number): Uint8Array {
  return new TextEncoder().encode(`entry ${i} ${'x'.repeat(i % 7)}`);
}

/**
 * A consistent Merkle tree of any size (up to 2⁵³ leaves) that is cheap to read: leaves in
 * `special` have distinct hashes, every other leaf has the same hash, so subtrees without a
 * special leaf share one hash per level and the rest is computed on demand.
 */
export class SparseTree implements HashReader {
  private readonly special: number[];
  private readonly plain: Uint8Array[] = [hashLeaf(new TextEncoder().encode('plain'))];
  private readonly memo = new Map<string, Uint8Array>();

  constructor(special: Iterable<number>) {
    this.special = [...new Set(special)].sort((a, b) => a - b);
  }

  leafHash(index: number): Uint8Array {
    return this.node(0, index);
  }

  private plainAt(level: number): Uint8Array {
    for (let l = this.plain.length; l <= level; l++) {
      const below = this.plain[l - 1] as Uint8Array;
      this.plain.push(hashChildren(below, below));
    }
    return this.plain[level] as Uint8Array;
  }

  private node(level: number, index: number): Uint8Array {
    const lo = index * 2 ** level;
    const hi = lo + 2 ** level;
    if (!this.special.some((s) => s >= lo && s < hi)) return this.plainAt(level);
    const key = `${level}/${index}`;
    let hash = this.memo.get(key);
    if (hash === undefined) {
      hash =
        level === 0
          ? hashLeaf(new TextEncoder().encode(`special ${index}`))
          : hashChildren(this.node(level - 1, 2 * index), this.node(level - 1, 2 * index + 1));
      this.memo.set(key, hash);
    }
    return hash;
  }

  readHashes(nodes: readonly TreeNode[]): Uint8Array[] {
    return nodes.map((n) => this.node(n.level, n.index));
  }
}
