import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { formatEntryBundle, parseEntryBundle } from './bundle.js';
import { TlogError } from './errors.js';

describe('entry bundles', () => {
  test('entries are prefixed by their big-endian uint16 length', () => {
    const bundle = formatEntryBundle([Buffer.from('ab'), new Uint8Array(0), Buffer.from('c')]);
    expect(Buffer.from(bundle).toString('hex')).toBe('000261620000000163');
    expect(parseEntryBundle(bundle, 3).map((e) => Buffer.from(e).toString())).toEqual([
      'ab',
      '',
      'c',
    ]);
  });

  test('parseEntryBundle() rejects truncation, trailing bytes and a wrong width', () => {
    const bundle = formatEntryBundle([Buffer.from('abc'), Buffer.from('de')]);
    expect(() => parseEntryBundle(bundle.subarray(0, bundle.length - 1))).toThrow(/truncated/);
    expect(() => parseEntryBundle(Buffer.concat([bundle, Buffer.from([0])]))).toThrow(TlogError);
    expect(() => parseEntryBundle(bundle, 3)).toThrow(/2 entries, want 3/);
  });

  test('limits: 65,535-byte entries and 256 entries', () => {
    expect(parseEntryBundle(formatEntryBundle([new Uint8Array(65_535)]))[0]).toHaveLength(65_535);
    expect(() => formatEntryBundle([new Uint8Array(65_536)])).toThrow(TlogError);
    expect(() => formatEntryBundle(Array<Uint8Array>(257).fill(new Uint8Array(0)))).toThrow(
      TlogError,
    );
    expect(() => parseEntryBundle(new Uint8Array(2 * 257))).toThrow(/more than 256/);
  });

  test('parse inverts format, and arbitrary bytes throw only TlogError (property)', () => {
    fc.assert(
      fc.property(fc.array(fc.uint8Array({ maxLength: 300 }), { maxLength: 256 }), (entries) => {
        const parsed = parseEntryBundle(formatEntryBundle(entries), entries.length);
        expect(parsed.map((e) => Buffer.from(e))).toEqual(entries.map((e) => Buffer.from(e)));
      }),
    );
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 2000 }), (bytes) => {
        try {
          expect(Buffer.from(formatEntryBundle(parseEntryBundle(bytes)))).toEqual(
            Buffer.from(bytes),
          );
        } catch (e) {
          expect(e).toBeInstanceOf(TlogError);
        }
      }),
    );
  });
});
