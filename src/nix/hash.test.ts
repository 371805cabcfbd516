import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { NixError } from './errors.js';
import { HASH_ALGORITHMS, type HashAlgorithm, formatHash, parseHash } from './hash.js';

const EMPTY = createHash('sha256').update('').digest();

describe('parseHash()', () => {
  test('reads every form Nix writes of the same hash into one value', () => {
    const forms = [
      'sha256:0mdqa9w1p6cmli6976v4wi0sw9r4p5prkj7lzfd1877wk11c9c73',
      `sha256:${EMPTY.toString('hex')}`,
      `sha256:${EMPTY.toString('base64')}`,
      `sha256-${EMPTY.toString('base64')}`,
    ];
    for (const f of forms) {
      const h = parseHash(f);
      expect(h.algorithm).toBe('sha256');
      expect(Buffer.from(h.digest)).toEqual(EMPTY);
    }
  });

  test('formatHash() writes each form, nix32 by default', () => {
    const h = parseHash(`sha256-${EMPTY.toString('base64')}`);
    expect(formatHash(h)).toBe('sha256:0mdqa9w1p6cmli6976v4wi0sw9r4p5prkj7lzfd1877wk11c9c73');
    expect(formatHash(h, 'sri')).toBe(`sha256-${EMPTY.toString('base64')}`);
    expect(formatHash(h, 'base16')).toBe(`sha256:${EMPTY.toString('hex')}`);
  });

  test.each([
    ['no type', EMPTY.toString('hex')],
    ['unknown type', `sha3:${EMPTY.toString('hex')}`],
    ['uppercase hex', `sha256:${EMPTY.toString('hex').toUpperCase()}`],
    ['wrong length', `sha256:${EMPTY.toString('hex').slice(2)}`],
    ['SRI of the wrong length', `sha256-${EMPTY.subarray(1).toString('base64')}`],
    ['non-canonical base64', `sha256:${EMPTY.toString('base64').replace(/U=$/, 'V=')}`],
    ['md5 length for sha256', 'sha256:0123456789abcdef0123456789abcdef'],
  ])('rejects a hash with %s', (_, text) => {
    expect(() => parseHash(text)).toThrow(NixError);
  });

  test('every format round-trips for every algorithm (property)', () => {
    const algorithms = Object.keys(HASH_ALGORITHMS) as HashAlgorithm[];
    fc.assert(
      fc.property(
        fc.constantFrom(...algorithms),
        fc.constantFrom('nix32', 'base16', 'base64', 'sri'),
        fc.uint8Array({ minLength: 64, maxLength: 64 }),
        (algorithm, format, bytes) => {
          const digest = bytes.subarray(0, HASH_ALGORITHMS[algorithm]);
          const text = formatHash({ algorithm, digest }, format);
          const parsed = parseHash(text);
          expect(parsed.algorithm).toBe(algorithm);
          expect(Buffer.from(parsed.digest)).toEqual(Buffer.from(digest));
        },
      ),
    );
  });

  test('arbitrary text gives a hash or a NixError (property)', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string(),
          fc.string().map((s) => `sha256:${s}`),
        ),
        (text) => {
          try {
            parseHash(text);
          } catch (e) {
            expect(e).toBeInstanceOf(NixError);
          }
        },
      ),
      { numRuns: 3000 },
    );
  });
});
