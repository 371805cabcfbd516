/**
 * Test support: RFC 6962 §2.1 written down literally, recursion over ranges with bigint split
 * points, as an independent reference for the optimised code under test.
 */
import { type HashReader, type TreeNode, hashChildren } from '../../src/tlog/index.js';

function split(n: bigint): bigint {
  let k = 1n;
  while (k * 2n < n) k *= 2n;
  return k;
}

function isAlignedPowerOfTwo(lo: bigint, n: bigint): TreeNode | undefined {
  if (n === 0n || (n & (n - 1n)) !== 0n || lo % n !== 0n) return undefined;
  let level = 0;
  for (let m = n; m > 1n; m /= 2n) level++;
  return { level, index: Number(lo / n) };
}

/** MTH(D[lo:hi]) where complete aligned subtrees are read from `reader` (synchronous). */
export function referenceMTH(reader: HashReader, lo: bigint, hi: bigint): Uint8Array {
  const node = isAlignedPowerOfTwo(lo, hi - lo);
  if (node !== undefined) {
    const hashes = reader.readHashes([node]);
    if (!Array.isArray(hashes)) throw new Error('reference needs a synchronous reader');
    return hashes[0] as Uint8Array;
  }
  const k = split(hi - lo);
  return hashChildren(referenceMTH(reader, lo, lo + k), referenceMTH(reader, lo + k, hi));
}

/** PATH(m, D[lo:hi]) of RFC 6962 §2.1.1. */
export function referencePath(reader: HashReader, m: bigint, lo: bigint, hi: bigint): Uint8Array[] {
  const n = hi - lo;
  if (n === 1n) return [];
  const k = split(n);
  return m < k
    ? [...referencePath(reader, m, lo, lo + k), referenceMTH(reader, lo + k, hi)]
    : [...referencePath(reader, m - k, lo + k, hi), referenceMTH(reader, lo, lo + k)];
}

/** SUBPROOF(m, D[lo:hi], b) of RFC 6962 §2.1.2. */
export function referenceSubproof(
  reader: HashReader,
  m: bigint,
  lo: bigint,
  hi: bigint,
  b: boolean,
): Uint8Array[] {
  const n = hi - lo;
  if (m === n) return b ? [] : [referenceMTH(reader, lo, hi)];
  const k = split(n);
  return m <= k
    ? [...referenceSubproof(reader, m, lo, lo + k, b), referenceMTH(reader, lo + k, hi)]
    : [...referenceSubproof(reader, m - k, lo + k, hi, false), referenceMTH(reader, lo, lo + k)];
}
