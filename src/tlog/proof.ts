/**
 * Inclusion and consistency proofs: generation from stored hashes (RFC 6962 §2.1.1–2.1.2, as
 * PATH and PROOF) and verification (RFC 9162 §2.1.3.2 and §2.1.4.2).
 */
import { TlogError } from './errors.js';
import { checkIndex, equalBytes } from './encoding.js';
import { HASH_SIZE, hashChildren } from './hash.js';
import {
  type HashPlan,
  type HashReader,
  checkLeafIndex,
  floorPowerOfTwo,
  planRanges,
  runPlan,
  runPlans,
} from './tree.js';

/** The largest power of two strictly below `n` (n ≥ 2): where RFC 6962 splits a tree. */
function split(n: number): number {
  return floorPowerOfTwo(n - 1).power;
}

/**
 * Plans the inclusion proof of leaf `leafIndex` in the tree of `treeSize` leaves (RFC 6962
 * PATH): the sibling subtree hashes from the leaf up to the root, at most ⌈log₂ treeSize⌉ of
 * them, read as at most 2·log₂ treeSize stored hashes.
 */
export function planInclusionProof(leafIndex: number, treeSize: number): HashPlan<Uint8Array[]> {
  checkLeafIndex(leafIndex, treeSize);
  const ranges: [number, number][] = [];
  let lo = 0;
  let hi = treeSize;
  while (hi - lo > 1) {
    const k = split(hi - lo);
    if (leafIndex < lo + k) {
      ranges.push([lo + k, hi]);
      hi = lo + k;
    } else {
      ranges.push([lo, lo + k]);
      lo += k;
    }
  }
  return planRanges(ranges.reverse());
}

/** Reads and returns the inclusion proof of leaf `leafIndex` in the tree of `treeSize` leaves. */
export function proveInclusion(
  leafIndex: number,
  treeSize: number,
  reader: HashReader,
): Promise<Uint8Array[]> {
  return runPlan(planInclusionProof(leafIndex, treeSize), reader);
}

/** {@link proveInclusion} for many leaves, reading every stored hash they need once. */
export function proveInclusions(
  leafIndexes: readonly number[],
  treeSize: number,
  reader: HashReader,
): Promise<Uint8Array[][]> {
  return runPlans(
    leafIndexes.map((i) => planInclusionProof(i, treeSize)),
    reader,
  );
}

/**
 * Plans the consistency proof from the tree of `oldSize` leaves to the tree of `newSize` leaves
 * (RFC 6962 PROOF), for `0 < oldSize ≤ newSize`; equal sizes give the empty proof. The empty
 * tree is consistent with every tree and has no proof: asking for one is a range error.
 */
export function planConsistencyProof(oldSize: number, newSize: number): HashPlan<Uint8Array[]> {
  return planProof(oldSize, newSize, false);
}

/**
 * Plans the _complete_ consistency proof from `oldSize` to `newSize` leaves (`0 < oldSize <
 * newSize`): RFC 6962 PROOF, preceded — when `oldSize` is a power of two — by the hash of the
 * first `oldSize` leaves as the larger tree has it, which PROOF leaves out because a verifier
 * takes it from the old checkpoint. With it, the proof can be checked against the new root
 * alone, so a wrong proof is told apart from a wrong old root (see `relateCheckpoints`).
 */
export function planCompleteConsistencyProof(
  oldSize: number,
  newSize: number,
): HashPlan<Uint8Array[]> {
  if (oldSize === newSize) {
    throw new TlogError('range', `no complete consistency proof between equal sizes ${oldSize}`);
  }
  return planProof(oldSize, newSize, true);
}

function planProof(oldSize: number, newSize: number, complete: boolean): HashPlan<Uint8Array[]> {
  checkIndex(oldSize, 'old tree size');
  checkIndex(newSize, 'new tree size');
  if (oldSize === 0 || oldSize > newSize) {
    throw new TlogError('range', `no consistency proof from size ${oldSize} to size ${newSize}`);
  }
  const ranges: [number, number][] = [];
  let lo = 0;
  let hi = newSize;
  let m = oldSize;
  let omitted = true; // SUBPROOF's flag b: the old tree is this whole subtree, its hash is known
  while (m !== hi - lo) {
    const k = split(hi - lo);
    if (m <= k) {
      ranges.push([lo + k, hi]);
      hi = lo + k;
    } else {
      ranges.push([lo, lo + k]);
      lo += k;
      m -= k;
      omitted = false;
    }
  }
  if ((!omitted || complete) && oldSize !== newSize) ranges.push([lo, hi]);
  return planRanges(ranges.reverse());
}

/** Reads and returns the consistency proof from size `oldSize` to size `newSize`. */
export function proveConsistency(
  oldSize: number,
  newSize: number,
  reader: HashReader,
): Promise<Uint8Array[]> {
  return runPlan(planConsistencyProof(oldSize, newSize), reader);
}

/** Reads and returns the complete consistency proof ({@link planCompleteConsistencyProof}). */
export function proveCompleteConsistency(
  oldSize: number,
  newSize: number,
  reader: HashReader,
): Promise<Uint8Array[]> {
  return runPlan(planCompleteConsistencyProof(oldSize, newSize), reader);
}

/**
 * The complete form of an RFC 6962 consistency proof from `oldSize` (`0 < oldSize`): when
 * `oldSize` is a power of two, `oldRoot` goes first — the verifier's own belief, so a proof
 * completed this way can show bad data but never a fork.
 */
export function completeConsistencyProof(
  oldSize: number,
  proof: readonly Uint8Array[],
  oldRoot: Uint8Array,
): Uint8Array[] {
  checkIndex(oldSize, 'old tree size');
  return oldSize > 0 && floorPowerOfTwo(oldSize).power === oldSize
    ? [oldRoot, ...proof]
    : [...proof];
}

function proofError(message: string): TlogError {
  return new TlogError('proof', `cannot verify ${message}`);
}

function checkProofHashes(proof: readonly Uint8Array[], what: string): void {
  proof.forEach((hash, i) => {
    if (hash.length !== HASH_SIZE) {
      throw proofError(`${what}: hash ${i} has ${hash.length} bytes, not ${HASH_SIZE}`);
    }
  });
}

/**
 * Computes the root hash that an inclusion proof binds leaf `leafIndex` of a tree of
 * `treeSize` leaves to (RFC 9162 §2.1.3.2). Throws a `proof` error when the proof has the wrong
 * shape for that index and size.
 */
export function rootFromInclusionProof(
  leafHash: Uint8Array,
  leafIndex: number,
  treeSize: number,
  proof: readonly Uint8Array[],
): Uint8Array {
  checkLeafIndex(leafIndex, treeSize);
  if (leafHash.length !== HASH_SIZE) {
    throw proofError(`inclusion proof: leaf hash has ${leafHash.length} bytes`);
  }
  checkProofHashes(proof, 'inclusion proof');
  // Index arithmetic with / and % rather than >> and &, which truncate to 32 bits.
  let fn = leafIndex;
  let sn = treeSize - 1;
  let r = leafHash;
  for (const p of proof) {
    if (sn === 0) throw proofError(`inclusion proof: too many hashes (${proof.length})`);
    if (fn % 2 === 1 || fn === sn) {
      r = hashChildren(p, r);
      while (fn % 2 === 0 && fn !== 0) {
        fn /= 2;
        sn = Math.floor(sn / 2);
      }
    } else {
      r = hashChildren(r, p);
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  if (sn !== 0) throw proofError(`inclusion proof: too few hashes (${proof.length})`);
  return r;
}

/**
 * Verifies that `proof` shows leaf `leafIndex` with hash `leafHash` is in the tree of
 * `treeSize` leaves with root `rootHash` (RFC 9162 §2.1.3.2). Throws a `proof` error otherwise.
 */
export function verifyInclusion(
  leafHash: Uint8Array,
  leafIndex: number,
  treeSize: number,
  proof: readonly Uint8Array[],
  rootHash: Uint8Array,
): void {
  const computed = rootFromInclusionProof(leafHash, leafIndex, treeSize, proof);
  if (!equalBytes(computed, rootHash)) {
    throw proofError(`inclusion proof: leaf ${leafIndex} does not lead to the tree's root hash`);
  }
}

/**
 * The two root hashes a complete consistency proof ({@link planCompleteConsistencyProof}) from
 * `oldSize` to `newSize` leaves leads to (RFC 9162 §2.1.4.2, whose first step is the complete
 * proof's first hash): the old tree's and the new tree's. When the new one is the new tree's
 * signed root, the old one is — short of a SHA-256 collision — the root of that tree's first
 * `oldSize` leaves. Throws a `proof` error when the proof has the wrong shape for the sizes.
 */
export function rootsFromConsistencyProof(
  oldSize: number,
  newSize: number,
  proof: readonly Uint8Array[],
): { readonly oldRoot: Uint8Array; readonly newRoot: Uint8Array } {
  checkIndex(oldSize, 'old tree size');
  checkIndex(newSize, 'new tree size');
  if (oldSize === 0 || oldSize >= newSize) {
    throw proofError(`consistency: no proof from size ${oldSize} to size ${newSize}`);
  }
  checkProofHashes(proof, 'consistency proof');
  const first = proof[0];
  if (first === undefined) throw proofError('consistency proof: empty proof');
  let fr = first;
  let sr = first;
  let fn = oldSize - 1;
  let sn = newSize - 1;
  while (fn % 2 === 1) {
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  for (const c of proof.slice(1)) {
    if (sn === 0) throw proofError(`consistency proof: too many hashes (${proof.length})`);
    if (fn % 2 === 1 || fn === sn) {
      fr = hashChildren(c, fr);
      sr = hashChildren(c, sr);
      while (fn % 2 === 0 && fn !== 0) {
        fn /= 2;
        sn = Math.floor(sn / 2);
      }
    } else {
      sr = hashChildren(sr, c);
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  if (sn !== 0) throw proofError(`consistency proof: too few hashes (${proof.length})`);
  return { oldRoot: fr, newRoot: sr };
}

/**
 * Verifies that `proof` shows the tree of `oldSize` leaves with root `oldRoot` is a prefix of
 * the tree of `newSize` leaves with root `newRoot` (RFC 9162 §2.1.4.2). Equal sizes need an
 * empty proof and equal roots. A proof from the empty tree proves nothing and is rejected, as
 * the reference vectors require. Throws a `proof` error on any failure.
 */
export function verifyConsistency(
  oldSize: number,
  newSize: number,
  proof: readonly Uint8Array[],
  oldRoot: Uint8Array,
  newRoot: Uint8Array,
): void {
  checkIndex(oldSize, 'old tree size');
  checkIndex(newSize, 'new tree size');
  if (oldSize > newSize) throw proofError(`consistency: old size ${oldSize} > new size ${newSize}`);
  if (oldSize === 0) throw proofError('consistency from the empty tree: it proves nothing');
  if (oldSize === newSize) {
    if (proof.length !== 0) throw proofError('consistency: equal sizes need an empty proof');
    if (!equalBytes(oldRoot, newRoot)) {
      throw proofError(`consistency: two different root hashes for size ${oldSize}`);
    }
    return;
  }
  checkProofHashes(proof, 'consistency proof');
  const roots = rootsFromConsistencyProof(
    oldSize,
    newSize,
    completeConsistencyProof(oldSize, proof, oldRoot),
  );
  if (!equalBytes(roots.oldRoot, oldRoot))
    throw proofError('consistency proof: old root hash does not match');
  if (!equalBytes(roots.newRoot, newRoot))
    throw proofError('consistency proof: new root hash does not match');
}
