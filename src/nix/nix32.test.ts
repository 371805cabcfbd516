import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { NixError } from './errors.js';
import { decodeNix32, encodeNix32, nix32Length } from './nix32.js';

describe('nix32', () => {
  test('encodes SHA-256("") as Nix prints it', () => {
    const digest = createHash('sha256').update('').digest();
    expect(encodeNix32(digest)).toBe('0mdqa9w1p6cmli6976v4wi0sw9r4p5prkj7lzfd1877wk11c9c73');
  });

  test('lengths: 32 chars for 20 bytes, 52 for 32, 103 for 64', () => {
    expect([nix32Length(20), nix32Length(32), nix32Length(64), nix32Length(16)]).toEqual([
      32, 52, 103, 26,
    ]);
  });

  test('decode inverts encode for every length (property)', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 1, maxLength: 80 }), (bytes) => {
        const text = encodeNix32(bytes);
        expect(text).toHaveLength(nix32Length(bytes.length));
        expect(Buffer.from(decodeNix32(text, bytes.length))).toEqual(Buffer.from(bytes));
      }),
    );
  });

  test('rejects wrong lengths, characters outside the alphabet and overflowing values', () => {
    const good = '0mdqa9w1p6cmli6976v4wi0sw9r4p5prkj7lzfd1877wk11c9c73';
    expect(() => decodeNix32(good.slice(1), 32)).toThrow(NixError);
    for (const c of ['e', 'o', 'u', 't', 'A', '-']) {
      expect(() => decodeNix32(`${c}${good.slice(1)}`, 32)).toThrow(/invalid character/);
    }
    // The first digit carries only 256 − 51·5 = 1 bit for 32 bytes: '2' sets a bit beyond.
    expect(() => decodeNix32(`2${good.slice(1)}`, 32)).toThrow(/bits beyond/);
    expect(decodeNix32(`1${good.slice(1)}`, 32)).toHaveLength(32);
  });

  test('arbitrary text either decodes to the bytes that encode back to it, or is a NixError', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 60 }), fc.integer({ min: 1, max: 40 }), (text, n) => {
        try {
          expect(encodeNix32(decodeNix32(text, n))).toBe(text);
        } catch (e) {
          expect(e).toBeInstanceOf(NixError);
        }
      }),
      { numRuns: 3000 },
    );
  });
});
