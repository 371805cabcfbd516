import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { NixError } from './errors.js';
import { NIX32_ALPHABET } from './nix32.js';
import { formatStorePath, parseStorePath, parseStorePathBaseName } from './store-path.js';

const HASH = 'mmn0yi58md42710kmdc31mms77d6ms72';

describe('store paths', () => {
  test('parse a Nix and a Guix store path', () => {
    const p = parseStorePath(`/nix/store/${HASH}-demo-1.0`);
    expect(p).toEqual({
      storeDir: '/nix/store',
      baseName: `${HASH}-demo-1.0`,
      hashPart: HASH,
      name: 'demo-1.0',
    });
    expect(formatStorePath(p)).toBe(`/nix/store/${HASH}-demo-1.0`);
    expect(parseStorePath(`/gnu/store/${HASH}-guile-3.0`, '/gnu/store').name).toBe('guile-3.0');
  });

  test('accept every character Nix allows in names, and names of 211 characters', () => {
    expect(parseStorePathBaseName(`${HASH}-a+b-c.d_e?f=g`).name).toBe('a+b-c.d_e?f=g');
    expect(parseStorePathBaseName(`${HASH}-${'x'.repeat(211)}`).name).toHaveLength(211);
    expect(parseStorePathBaseName(`${HASH}-.hidden`).name).toBe('.hidden');
  });

  test.each([
    ['another store', `/gnu/store/${HASH}-x`],
    ['a relative path', `nix/store/${HASH}-x`],
    ['a double slash', `/nix/store//${HASH}-x`],
    ['a subpath', `/nix/store/${HASH}-x/bin`],
    ['a short hash', `/nix/store/${HASH.slice(1)}-x`],
    ['an e in the hash', `/nix/store/e${HASH.slice(1)}-x`],
    ['an uppercase hash', `/nix/store/${HASH.toUpperCase()}-x`],
    ['no dash', `/nix/store/${HASH}_x`],
    ['an empty name', `/nix/store/${HASH}-`],
    ['a 212-character name', `/nix/store/${HASH}-${'x'.repeat(212)}`],
    ['a space', `/nix/store/${HASH}-a b`],
    ['a slash in the name', `/nix/store/${HASH}-a/b`],
    ['a non-ASCII letter', `/nix/store/${HASH}-café`],
    ['the name ..', `/nix/store/${HASH}-..`],
    ['the name .', `/nix/store/${HASH}-.`],
    ['a name starting .-', `/nix/store/${HASH}-.-x`],
  ])('reject %s', (_, path) => {
    expect(() => parseStorePath(path)).toThrow(NixError);
  });

  test('reject a non-canonical store directory', () => {
    for (const dir of ['/nix/store/', 'nix/store', '/nix//store', '/nix/./store', '/']) {
      expect(() => parseStorePath(`${dir}/${HASH}-x`, dir)).toThrow(NixError);
    }
  });

  test('parse ∘ format is the identity, and arbitrary text is a path or a NixError (property)', () => {
    const hash = fc.string({
      unit: fc.constantFrom(...Array.from({ length: 32 }, (_, i) => NIX32_ALPHABET.charAt(i))),
      minLength: 32,
      maxLength: 32,
    });
    const name = fc.stringMatching(/^[A-Za-z0-9+_?=][A-Za-z0-9+\-._?=]{0,40}$/);
    fc.assert(
      fc.property(hash, name, (h, n) => {
        const path = `/nix/store/${h}-${n}`;
        expect(formatStorePath(parseStorePath(path))).toBe(path);
      }),
    );
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string(),
          fc.string().map((s) => `/nix/store/${HASH}${s}`),
        ),
        (text) => {
          try {
            expect(formatStorePath(parseStorePath(text))).toBe(text);
          } catch (e) {
            expect(e).toBeInstanceOf(NixError);
          }
        },
      ),
      { numRuns: 3000 },
    );
  });
});
