/**
 * Addressing of complete subtrees and the "plan, read once, compute" pattern every tree
 * algorithm here follows: first compute which stored hashes are needed, then read them in one
 * batch through a {@link HashReader}, then compute.
 */
import { TlogError } from './errors.js';
import { checkIndex } from './encoding.js';
import { EMPTY_ROOT, HASH_SIZE, hashChildren, hashPairs } from './hash.js';

/**
 * A complete subtree: the 2^level leaves starting at leaf `index · 2^level`. Its hash never
 * changes once the tree has grown past it, so storage can keep it forever.
 */
export interface TreeNode {
  readonly level: number;
  readonly index: number;
}

/**
 * Reads the hashes of complete subtrees, returned in the order asked. The storage behind it
 * decides how: an array in memory, tiles over HTTP, rows in a database.
 */
export interface HashReader {
  readHashes(nodes: readonly TreeNode[]): Promise<readonly Uint8Array[]> | readonly Uint8Array[];
}

/** A computation over stored hashes: read `nodes` (one batch), then call `finish` with them. */
export interface HashPlan<T> {
  readonly nodes: readonly TreeNode[];
  finish(hashes: readonly Uint8Array[]): T;
}

/** Runs a plan against a reader: one batched read, then the computation. */
export async function runPlan<T>(plan: HashPlan<T>, reader: HashReader): Promise<T> {
  const [result] = await runPlans([plan], reader);
  return result as T;
}

/**
 * Runs several plans with one batched read of the nodes they need, each node read once (proofs
 * for many leaves share most of their upper nodes).
 */
export async function runPlans<T>(plans: readonly HashPlan<T>[], reader: HashReader): Promise<T[]> {
  const slot = new Map<string, number>();
  const nodes: TreeNode[] = [];
  const slots = plans.map((plan) =>
    plan.nodes.map((node) => {
      const key = `${node.level}/${node.index}`;
      let at = slot.get(key);
      if (at === undefined) {
        at = nodes.length;
        slot.set(key, at);
        nodes.push(node);
      }
      return at;
    }),
  );
  const hashes = nodes.length === 0 ? [] : await reader.readHashes(nodes);
  if (hashes.length !== nodes.length) {
    throw new Error(`bug: hash reader returned ${hashes.length} hashes for ${nodes.length}`);
  }
  return plans.map((plan, i) =>
    plan.finish((slots[i] ?? []).map((at) => hashes[at] as Uint8Array)),
  );
}

/** The largest power of two `≤ n` (n ≥ 1) and its exponent; exact for every safe integer. */
export function floorPowerOfTwo(n: number): { power: number; exponent: number } {
  let power = 1;
  let exponent = 0;
  while (power * 2 <= n) {
    power *= 2;
    exponent++;
  }
  return { power, exponent };
}

/**
 * The complete subtrees covering leaves `[lo, hi)`, largest first. Every range RFC 6962's
 * recursive split produces starts at a multiple of its largest piece, so the pieces are aligned.
 */
export function rangeNodes(lo: number, hi: number): TreeNode[] {
  const nodes: TreeNode[] = [];
  let start = lo;
  while (start < hi) {
    const { power, exponent } = floorPowerOfTwo(hi - start);
    if (start % power !== 0) throw new Error(`bug: range [${lo}, ${hi}) is not aligned`);
    nodes.push({ level: exponent, index: start / power });
    start += power;
  }
  return nodes;
}

/**
 * Folds the hashes of a range's pieces (largest first) into the range's Merkle tree hash:
 * `MTH = node(p₀, node(p₁, … node(pₙ₋₂, pₙ₋₁)))`, as RFC 6962's split at the largest power of
 * two gives.
 */
export function foldRange(pieces: readonly Uint8Array[]): Uint8Array {
  let hash = pieces[pieces.length - 1];
  if (hash === undefined) throw new Error('bug: folding an empty range');
  for (let i = pieces.length - 2; i >= 0; i--) hash = hashChildren(pieces[i] as Uint8Array, hash);
  return hash;
}

/** The hash of a complete subtree from its 2^k leaves (or lower-level hashes), in order. */
export function subtreeHash(hashes: readonly Uint8Array[]): Uint8Array {
  if (hashes.length === 0 || (hashes.length & (hashes.length - 1)) !== 0) {
    throw new Error(`bug: subtree of ${hashes.length} hashes is not a power of two`);
  }
  // Level by level, each level's nodes hashed in one call.
  let level: Uint8Array = Buffer.concat(hashes);
  if (level.length !== HASH_SIZE * hashes.length) throw new Error('bug: a hash is not 32 bytes');
  while (level.length > HASH_SIZE) level = hashPairs(level);
  return level;
}

/** A plan whose result is the Merkle tree hash of each of several leaf ranges. */
export function planRanges(ranges: readonly (readonly [number, number])[]): HashPlan<Uint8Array[]> {
  const pieces = ranges.map(([lo, hi]) => rangeNodes(lo, hi));
  return {
    nodes: pieces.flat(),
    finish(hashes) {
      let at = 0;
      return pieces.map((p) => {
        const hash = foldRange(hashes.slice(at, at + p.length));
        at += p.length;
        return hash;
      });
    },
  };
}

/**
 * Plans the root hash of the tree of `treeSize` leaves (RFC 9162 §2.1.1). Reads at most
 * log₂(treeSize) + 1 hashes; the empty tree reads none.
 */
export function planTreeHash(treeSize: number): HashPlan<Uint8Array> {
  checkIndex(treeSize, 'tree size');
  if (treeSize === 0) return { nodes: [], finish: () => EMPTY_ROOT };
  const plan = planRanges([[0, treeSize]]);
  return { nodes: plan.nodes, finish: (hashes) => plan.finish(hashes)[0] as Uint8Array };
}

/** Reads and computes the root hash of the tree of `treeSize` leaves. */
export function treeHash(treeSize: number, reader: HashReader): Promise<Uint8Array> {
  return runPlan(planTreeHash(treeSize), reader);
}

/** Throws a range error unless `0 ≤ index < size`. */
export function checkLeafIndex(leafIndex: number, treeSize: number): void {
  checkIndex(leafIndex, 'leaf index');
  checkIndex(treeSize, 'tree size');
  if (leafIndex >= treeSize) {
    throw new TlogError('range', `leaf index ${leafIndex} is not in a tree of size ${treeSize}`);
  }
}
