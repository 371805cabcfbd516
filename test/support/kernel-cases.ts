/**
 * Test support: the trust kernel's table of cases, and a small world to play them in — an
 * honest history and a forked one signed by the same log key, the tiles of each at any size,
 * and the faults data can suffer on its way (in tiles, or in a proof). The kernel's own test and
 * every caller's (proxy, monitor, witness) run this one table.
 */
import {
  type NoteSigner,
  type Tile,
  type TileReader,
  type VerifiedCheckpoint,
  TILE_HEIGHT,
  TILE_WIDTH,
  formatCheckpoint,
  hashLeaf,
  planConsistencyProof,
  proveCompleteConsistency,
  runPlan,
  signNote,
  tileHashReader,
  tilePath,
  treeHash,
} from '../../src/tlog/index.js';
import { entryFromJson } from '../../src/claim/index.js';
import { makeClaim } from './claims.js';
import { MemoryTree } from './memory-tree.js';

export type History = 'honest' | 'forked';

/**
 * How data is damaged on its way: in tiles (a tile-reading caller) or in a proof (a caller
 * handed one). `flip-bit`: one bit; `truncate`: one hash short; `pad`: one hash too many;
 * `other-size`: the data of another tree size.
 */
export type Fault = 'flip-bit' | 'truncate' | 'pad' | 'other-size';

export type Relation = 'same' | 'extends' | 'older' | 'fork' | 'bad-data';

export interface KernelCase {
  readonly name: string;
  /** The checkpoint the party verified before: which history, what size. */
  readonly last: readonly [History, number];
  /** The new checkpoint. */
  readonly next: readonly [History, number];
  /** Damage to the data that relates them (the larger tree's tiles, or the proof). */
  readonly fault?: Fault;
  readonly expect: Relation;
  /** With a fault: the relation the right data shows (a party with its own verified copy). */
  readonly clean?: Relation;
}

/** The histories part at this entry: below it they are the same. */
export const FORK_AT = 2;
/** Entries in each history. */
export const HISTORY_SIZE = 12;

export const KERNEL_CASES: readonly KernelCase[] = [
  { name: 'an honest extension', last: ['honest', 5], next: ['honest', 9], expect: 'extends' },
  {
    name: 'an honest extension from a power of two',
    last: ['honest', 4],
    next: ['honest', 9],
    expect: 'extends',
  },
  { name: 'the same checkpoint again', last: ['honest', 9], next: ['honest', 9], expect: 'same' },
  {
    name: 'a rollback by one that is a prefix (a replay)',
    last: ['honest', 9],
    next: ['honest', 8],
    expect: 'older',
  },
  {
    name: 'a rollback by one that is not a prefix',
    last: ['honest', 9],
    next: ['forked', 8],
    expect: 'fork',
  },
  {
    name: 'a second root at the same size',
    last: ['honest', 9],
    next: ['forked', 9],
    expect: 'fork',
  },
  {
    name: 'an inconsistent extension',
    last: ['honest', 5],
    next: ['forked', 9],
    expect: 'fork',
  },
  {
    name: 'an inconsistent extension from a power of two',
    last: ['honest', 4],
    next: ['forked', 9],
    expect: 'fork',
  },
  {
    name: 'a corrupted tile in transit',
    last: ['honest', 5],
    next: ['honest', 9],
    fault: 'flip-bit',
    expect: 'bad-data',
    clean: 'extends',
  },
  {
    name: 'a corrupted tile under a replayed checkpoint',
    last: ['honest', 9],
    next: ['honest', 6],
    fault: 'flip-bit',
    expect: 'bad-data',
    clean: 'older',
  },
  {
    name: 'a corrupted tile under an inconsistent extension',
    last: ['honest', 5],
    next: ['forked', 9],
    fault: 'flip-bit',
    expect: 'bad-data',
    clean: 'fork',
  },
  {
    name: 'a truncated proof',
    last: ['honest', 5],
    next: ['honest', 9],
    fault: 'truncate',
    expect: 'bad-data',
    clean: 'extends',
  },
  {
    name: 'a padded proof',
    last: ['honest', 5],
    next: ['honest', 9],
    fault: 'pad',
    expect: 'bad-data',
    clean: 'extends',
  },
  {
    name: 'a proof for another size',
    last: ['honest', 5],
    next: ['honest', 9],
    fault: 'other-size',
    expect: 'bad-data',
    clean: 'extends',
  },
];

/** The entries of a history: valid `accord/build/v1` claims about test paths 0, 1, 2, … */
export function historyEntries(history: History, size = HISTORY_SIZE): string[] {
  return Array.from(
    { length: size },
    (_, i) =>
      entryFromJson(makeClaim(i, history === 'forked' && i === FORK_AT ? 1 : 0), '/nix/store')
        .entry,
  );
}

/** A log's histories under one key: checkpoints and tiles of each at any size. */
export class KernelWorld {
  private readonly trees = new Map<History, MemoryTree>();
  readonly entries = new Map<History, string[]>();

  constructor(
    readonly signer: NoteSigner,
    size = HISTORY_SIZE,
  ) {
    for (const history of ['honest', 'forked'] as const) {
      const tree = new MemoryTree();
      const entries = historyEntries(history, size);
      for (const e of entries) tree.appendHash(hashLeaf(Buffer.from(e)));
      this.trees.set(history, tree);
      this.entries.set(history, entries);
    }
  }

  tree(history: History): MemoryTree {
    const tree = this.trees.get(history);
    if (tree === undefined) throw new Error('bug: no such history');
    return tree;
  }

  /** The signed checkpoint of `history` at `size`. */
  async checkpoint(history: History, size: number): Promise<VerifiedCheckpoint> {
    const rootHash = await treeHash(size, this.tree(history));
    const text = formatCheckpoint({
      origin: this.signer.name,
      treeSize: size,
      rootHash,
      extensions: [],
    });
    return { treeSize: size, rootHash, note: signNote(text, [this.signer]) };
  }

  /** The hash tile `tile` of `history` at its tree size, as an honest log serves it. */
  tileData(history: History, tile: Tile): Uint8Array {
    const row = this.tree(history).levels[tile.level * TILE_HEIGHT] ?? [];
    const first = tile.index * TILE_WIDTH;
    const hashes = row.slice(first, first + tile.width);
    if (hashes.length !== tile.width) throw new Error(`bug: no tile ${tilePath(tile)}`);
    return Buffer.concat(hashes);
  }

  /**
   * What a log (or whatever stands between) serves for a hash tile of `history`, damaged by
   * `fault`: every level-0 tile is hit, so whatever a proof reads goes through it.
   */
  servedTile(history: History, tile: Tile, fault?: Fault): Uint8Array {
    if (fault === 'other-size') {
      return this.tileData(history, { ...tile, width: Math.min(TILE_WIDTH, tile.width + 1) });
    }
    const data = Buffer.from(this.tileData(history, tile));
    if (tile.level !== 0 || fault === undefined) return data;
    if (fault === 'flip-bit') data[0] = (data[0] ?? 0) ^ 1;
    if (fault === 'truncate') return data.subarray(0, data.length - 32);
    if (fault === 'pad') return Buffer.concat([data, Buffer.alloc(32, 7)]);
    return data;
  }

  /** A tile reader over {@link servedTile}. */
  tileReader(history: History, fault?: Fault): TileReader {
    return {
      readTiles: (tiles) => Promise.resolve(tiles.map((t) => this.servedTile(history, t, fault))),
    };
  }

  /** The larger checkpoint's history and size, whose hashes relate the two. */
  static larger(c: KernelCase): readonly [History, number] {
    return c.next[1] >= c.last[1] ? c.next : c.last;
  }

  /**
   * The proof a caller handed one gets: the RFC 6962 consistency proof from `last` to `next`
   * (what a witness is sent), or with `complete` the complete proof between the two sizes,
   * read from the larger tree and damaged by `fault`.
   */
  async proof(c: KernelCase, complete: boolean): Promise<Uint8Array[]> {
    const [history, size] = KernelWorld.larger(c);
    const small = Math.min(c.last[1], c.next[1]);
    if (small === 0 || small === size) return [];
    const tree = this.tree(history);
    const from = c.fault === 'other-size' ? small - 1 : small;
    const proof = complete
      ? await proveCompleteConsistency(from, size, tree)
      : await runPlan(planConsistencyProof(from, size), tree);
    if (c.fault === 'flip-bit' && proof[0] !== undefined) {
      const first = Buffer.from(proof[0]);
      first[0] = (first[0] ?? 0) ^ 1;
      proof[0] = first;
    }
    if (c.fault === 'truncate') proof.pop();
    if (c.fault === 'pad') proof.push(new Uint8Array(32).fill(7));
    return proof;
  }

  /** A hash reader over the damaged tiles of the larger tree (as a tile-reading caller has). */
  reader(c: KernelCase) {
    const [history, size] = KernelWorld.larger(c);
    return tileHashReader(size, this.tileReader(history, c.fault));
  }
}
