import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { hashChildren, hashLeaf, hashLeavesAt, hashPairs } from './hash.js';

describe('hashLeavesAt()', () => {
  it('gives hashLeaf of each span, empty ones included', () => {
    const data = randomBytes(300);
    const spans = new Uint32Array([0, 100, 100, 100, 37, 300]);
    const expected = [data.subarray(0, 100), data.subarray(100, 100), data.subarray(37, 300)];
    expect(hashLeavesAt(data, spans)).toEqual(Buffer.concat(expected.map((e) => hashLeaf(e))));
  });
});

describe('hashPairs()', () => {
  it('gives hashChildren of each consecutive pair', () => {
    const hashes = Array.from({ length: 8 }, () => randomBytes(32));
    const above = [0, 2, 4, 6].map((i) =>
      hashChildren(hashes[i] as Buffer, hashes[i + 1] as Buffer),
    );
    expect(hashPairs(Buffer.concat(hashes))).toEqual(Buffer.concat(above));
  });

  it('refuses a level that is not whole pairs of hashes', () => {
    expect(() => hashPairs(new Uint8Array(96))).toThrow(/bug/);
  });
});
