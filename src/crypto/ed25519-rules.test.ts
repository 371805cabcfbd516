import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { SMALL_ORDER_Y, ed25519Refusal } from './ed25519-rules.js';

// The numbers behind the rules, as integers, to check the byte comparisons against.
const p = 2n ** 255n - 19n;
const L = 2n ** 252n + 27742317777372353535851937790883648493n;
// The y of the order-8 points (RFC 8032 §5.1 curve; the other is p − this).
const Y8 = 2707385501144840649318225287225658788936804267575313519463743609750303402022n;
/** The y coordinates of the 8 points of the torsion subgroup: orders 1, 2, 4, 8, 8. */
const TORSION_Y = [1n, p - 1n, 0n, Y8, p - Y8];

/** `v` as 32 little-endian bytes (v < 2^256). */
function le(v: bigint): Buffer {
  const out = Buffer.alloc(32);
  for (let i = 0; i < 32; i++, v >>= 8n) out[i] = Number(v & 0xffn);
  return out;
}

/** The encoding of a point with coordinate y and the sign bit (bit 255) `sign`. */
function point(y: bigint, sign: 0 | 1 = 0): Buffer {
  const out = le(y);
  out[31] = (out[31] as number) | (sign << 7);
  return out;
}

// RFC 8032 §7.1 TEST 1: a valid key and signature, to vary one part at a time.
const KEY = Buffer.from('d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a', 'hex');
const SIG = Buffer.from(
  'e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b',
  'hex',
);
const R = SIG.subarray(0, 32);
const signature = (r: Uint8Array, s: bigint | Uint8Array) =>
  Buffer.concat([r, typeof s === 'bigint' ? le(s) : s]);

describe('SMALL_ORDER_Y', () => {
  test('lists the y of the 8 torsion points, each once, with bit 255 clear', () => {
    expect(SMALL_ORDER_Y.map((y) => y.toString('hex')).sort()).toEqual(
      TORSION_Y.map((y) => le(y).toString('hex')).sort(),
    );
  });
});

describe('ed25519Refusal()', () => {
  test('lets a valid RFC 8032 signature through', () => {
    expect(ed25519Refusal(KEY, SIG)).toBeUndefined();
  });

  test('refuses a signature of 63, 65 or 0 bytes', () => {
    for (const length of [63, 65, 0])
      expect(ed25519Refusal(KEY, Buffer.alloc(length))).toBe('signature is not 64 bytes');
  });

  test('refuses S = L, L + 1 and 2^256 − 1, and lets S = L − 1, 2^252 and 0 through', () => {
    for (const s of [L, L + 1n, 2n ** 253n, 2n ** 256n - 1n])
      expect(ed25519Refusal(KEY, signature(R, s))).toBe('S is not below L');
    for (const s of [L - 1n, 2n ** 252n, L - 2n ** 128n, 0n])
      expect(ed25519Refusal(KEY, signature(R, s))).toBeUndefined();
  });

  test.each([
    ['R', (pt: Buffer) => [KEY, signature(pt, 0n)] as const],
    ['public key', (pt: Buffer) => [pt, SIG] as const],
  ])('refuses %s of small order with either sign bit, or not canonical', (what, args) => {
    for (const y of TORSION_Y)
      for (const sign of [0, 1] as const)
        expect(ed25519Refusal(...args(point(y, sign)))).toBe(`${what} has small order`);
    for (const y of [p, p + 1n, p + 2n, 2n ** 255n - 1n])
      for (const sign of [0, 1] as const)
        expect(ed25519Refusal(...args(point(y, sign)))).toBe(
          `${what} is not a canonical point encoding`,
        );
    for (const y of [p - 2n, 2n, Y8 + 1n])
      for (const sign of [0, 1] as const)
        expect(ed25519Refusal(...args(point(y, sign)))).toBeUndefined();
  });

  test('refuses a point exactly when y ≥ p or y is a torsion y (property)', () => {
    const boundaries = [p, 0n, 1n, Y8, p - Y8, 2n ** 255n - 1n].flatMap((v) => [v - 1n, v, v + 1n]);
    const near = fc.constantFrom(...boundaries.filter((v) => v >= 0n && v < 2n ** 255n));
    const y = fc.oneof(fc.bigInt({ min: 0n, max: 2n ** 255n - 1n }), near);
    fc.assert(
      fc.property(y, fc.constantFrom(0 as const, 1 as const), (yv, sign) => {
        const want =
          yv >= p
            ? 'is not a canonical point encoding'
            : TORSION_Y.includes(yv)
              ? 'has small order'
              : undefined;
        const pt = point(yv, sign);
        const asKey = ed25519Refusal(pt, SIG);
        const asR = ed25519Refusal(KEY, signature(pt, 0n));
        expect(asKey).toBe(want === undefined ? undefined : `public key ${want}`);
        expect(asR).toBe(want === undefined ? undefined : `R ${want}`);
      }),
      { numRuns: 1000 },
    );
  });

  test('checks S before R and R before the key', () => {
    const small = point(1n);
    expect(ed25519Refusal(small, signature(small, L))).toBe('S is not below L');
    expect(ed25519Refusal(small, signature(small, 0n))).toBe('R has small order');
  });
});
