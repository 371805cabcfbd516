/**
 * The trust kernel: how a new signed checkpoint of a log relates to the last one a party
 * verified. The proxy, the monitor and the witness make this one decision, here. Proof hashes
 * come from anywhere (tiles over plain HTTP, a CDN, a request body) and are checked against the
 * larger checkpoint's signed root first: if they do not lead there, the data is wrong, which says
 * nothing about the log. Only a proof that leads to the larger root and not to the smaller one,
 * or a second root for one size, shows the log signed two histories — and then the two signed
 * notes and the proof are evidence anyone can check ({@link verifyForkEvidence}).
 */
import { equalBytes } from './encoding.js';
import { TlogError } from './errors.js';
import { EMPTY_ROOT } from './hash.js';
import { proveCompleteConsistency, rootsFromConsistencyProof } from './proof.js';
import type { HashReader } from './tree.js';

/** A checkpoint whose signatures the caller verified, with the note it came in. */
export interface VerifiedCheckpoint {
  readonly treeSize: number;
  readonly rootHash: Uint8Array;
  /** The signed note, verbatim. */
  readonly note: string;
}

/** Two signed checkpoints of one log that cannot both be true, with the proof that shows it. */
export interface ForkEvidence {
  /** The signed notes, the smaller tree first (equal sizes: in byte order of their roots). */
  readonly notes: readonly [string, string];
  /** The complete consistency proof between their sizes; empty for equal sizes. */
  readonly proof: readonly Uint8Array[];
}

/**
 * How `next` relates to `last`:
 * - `same`: the same size and root;
 * - `extends`: larger, and `last` is its prefix;
 * - `older`: smaller, and a prefix of `last` (a replay or a stale mirror: nothing to act on);
 * - `fork`: the log signed both and they cannot both be true (`evidence` shows it);
 * - `bad-data`: the proof does not lead to the larger signed root (or is malformed): the data
 *   is wrong, not the log; fetch it again, maybe elsewhere.
 */
export type CheckpointRelation =
  | { readonly kind: 'same' | 'extends' | 'older' }
  | { readonly kind: 'fork'; readonly reason: string; readonly evidence: ForkEvidence }
  | { readonly kind: 'bad-data'; readonly reason: string };

/**
 * The sizes between which {@link relateCheckpoints} needs a complete consistency proof (from
 * the smaller to the larger), or undefined when it needs none: equal sizes, or an empty tree.
 */
export function consistencyProofSizes(
  last: VerifiedCheckpoint,
  next: VerifiedCheckpoint,
): { readonly oldSize: number; readonly newSize: number } | undefined {
  const oldSize = Math.min(last.treeSize, next.treeSize);
  const newSize = Math.max(last.treeSize, next.treeSize);
  return oldSize === 0 || oldSize === newSize ? undefined : { oldSize, newSize };
}

function ordered(a: VerifiedCheckpoint, b: VerifiedCheckpoint): [string, string] {
  const aFirst =
    a.treeSize !== b.treeSize
      ? a.treeSize < b.treeSize
      : Buffer.compare(Buffer.from(a.rootHash), Buffer.from(b.rootHash)) < 0;
  return aFirst ? [a.note, b.note] : [b.note, a.note];
}

/**
 * Relates `next` to `last` (both of one log, their signatures verified by the caller) with
 * `proof`, the complete consistency proof between their sizes ({@link consistencyProofSizes};
 * `planCompleteConsistencyProof`), which is not trusted. Costs at most one hash per proof line.
 */
export function relateCheckpoints(
  last: VerifiedCheckpoint,
  next: VerifiedCheckpoint,
  proof: readonly Uint8Array[] = [],
): CheckpointRelation {
  for (const c of [last, next]) {
    if (c.treeSize === 0 && !equalBytes(c.rootHash, EMPTY_ROOT)) {
      return { kind: 'bad-data', reason: 'a checkpoint of size 0 must have the empty root' };
    }
  }
  const fork = (reason: string, hashes: readonly Uint8Array[]): CheckpointRelation => ({
    kind: 'fork',
    reason,
    evidence: { notes: ordered(last, next), proof: hashes },
  });
  if (last.treeSize === next.treeSize) {
    if (!equalBytes(last.rootHash, next.rootHash))
      return fork(`two roots for size ${next.treeSize}`, []);
    if (proof.length !== 0)
      return { kind: 'bad-data', reason: 'equal sizes need an empty consistency proof' };
    return { kind: 'same' };
  }
  const grows = next.treeSize > last.treeSize;
  const [small, large] = grows ? [last, next] : [next, last];
  if (small.treeSize === 0) {
    if (proof.length !== 0)
      return { kind: 'bad-data', reason: 'a proof from the empty tree must be empty' };
    return { kind: grows ? 'extends' : 'older' };
  }
  let roots;
  try {
    roots = rootsFromConsistencyProof(small.treeSize, large.treeSize, proof);
  } catch (error) {
    if (!(error instanceof TlogError)) throw error;
    return { kind: 'bad-data', reason: error.message };
  }
  if (!equalBytes(roots.newRoot, large.rootHash)) {
    return {
      kind: 'bad-data',
      reason: `the consistency proof from size ${small.treeSize} does not lead to the root of size ${large.treeSize}`,
    };
  }
  if (!equalBytes(roots.oldRoot, small.rootHash)) {
    return fork(
      `size ${small.treeSize} is not a prefix of size ${large.treeSize}: the log signed two histories`,
      proof,
    );
  }
  return { kind: grows ? 'extends' : 'older' };
}

/**
 * {@link relateCheckpoints} with the proof read from `sources` (each a reader of the larger
 * tree's hashes, for example over its tiles: the log, the log bypassing caches, a mirror), tried
 * in turn while what they give is bad data. A malformed read (a tile of the wrong length) is
 * bad data; a failed one (the network) is thrown, as is a source list that is empty.
 */
export async function relateCheckpointsWith(
  last: VerifiedCheckpoint,
  next: VerifiedCheckpoint,
  sources: readonly HashReader[],
): Promise<CheckpointRelation> {
  const sizes = consistencyProofSizes(last, next);
  if (sizes === undefined) return relateCheckpoints(last, next);
  if (sources.length === 0) throw new Error('bug: no source of hashes to relate checkpoints');
  const reasons: string[] = [];
  for (const reader of sources) {
    let relation: CheckpointRelation;
    try {
      const proof = await proveCompleteConsistency(sizes.oldSize, sizes.newSize, reader);
      relation = relateCheckpoints(last, next, proof);
    } catch (error) {
      if (!(error instanceof TlogError && error.code === 'malformed')) throw error;
      relation = { kind: 'bad-data', reason: error.message };
    }
    if (relation.kind !== 'bad-data') return relation;
    reasons.push(relation.reason);
  }
  return { kind: 'bad-data', reason: [...new Set(reasons)].join('; then: ') };
}
