import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { GuixError } from './errors.js';
import {
  type Sexp,
  type SexpList,
  decodeGuixText,
  formatCanonicalSexp,
  formatSexp,
  parseCanonicalSexp,
  parseSexp,
  sexpEqual,
  sexpToGuixText,
} from './sexp.js';
import { guixErrorCode } from '../../test/support/guix.js';

const latin1 = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'latin1'));
const text = (b: Uint8Array): string => Buffer.from(b).toString('latin1');
const canonical = (input: string): string => text(formatCanonicalSexp(parseSexp(latin1(input))));
const advanced = (input: string): string => text(formatSexp(parseSexp(latin1(input))));

// Each input was given to libgcrypt 1.10.1's gcry_sexp_sscan (through Guile) and the result
// printed with gcry_sexp_sprint in the canonical and the advanced form.
describe('parseSexp() reads what libgcrypt reads', () => {
  test.each([
    ['(a b)', '(1:a1:b)'],
    ['(4:data)', '(4:data)'],
    ['(a |YWJj|)', '(1:a3:abc)'],
    ['(a "x\\ny")', '(1:a3:x\ny)'],
    ['(a #0102#)', '(1:a2:\x01\x02)'],
    ['(a # 01 02 #)', '(1:a2:\x01\x02)'],
    ['(a #0\n1#)', '(1:a1:\x01)'],
    ['(a #0a0B#)', '(1:a2:\n\x0b)'],
    ['()', '()'],
    ['((a))', '((1:a))'],
    ['  (a b)  \n', '(1:a1:b)'],
    ['(1:a1:b)', '(1:a1:b)'],
    ['(a\tb\vc\fd\re\nf)', '(1:a1:b1:c1:d1:e1:f)'],
    ['(a -1)', '(1:a2:-1)'],
    ['(a .x)', '(1:a2:.x)'],
    ['(a"b")', '(1:a1:b)'],
    ['(a#01#)', '(1:a1:\x01)'],
    ['(ab(c))', '(2:ab(1:c))'],
    ['("b"c)', '(1:b1:c)'],
    ['(a -./_:*+=)', '(1:a8:-./_:*+=)'],
    ['(a "\\b\\t\\v\\n\\f\\r\\"\\\'\\\\")', '(1:a9:\b\t\v\n\f\r"\'\\)'],
    ['(a "\\101")', '(1:a1:A)'],
    ['(a "\\x41")', '(1:a1:A)'],
    ['(a "x\\\ny")', '(1:a2:xy)'],
    ['(a "x\\\r\ny")', '(1:a2:xy)'],
    ['(a "x\\\n\ry")', '(1:a2:xy)'],
    ['(a "x\\\ry")', '(1:a2:xy)'],
    ['(a "x\ny")', '(1:a3:x\ny)'],
    ['(a "x\x01y")', '(1:a3:x\x01y)'],
    ['(a "x\x80y")', '(1:a3:x\x80y)'],
    ['(a "\\000")', '(1:a1:\x00)'],
    ['(a "")', '(1:a0:)'],
    ['(a ##)', '(1:a0:)'],
    ['(a |YWI=|)', '(1:a2:ab)'],
  ])('%j', (input, expected) => {
    expect(canonical(input)).toBe(expected);
  });
});

describe('parseSexp() refuses', () => {
  test.each([
    // What libgcrypt refuses too (its error in the comment).
    ['(a ; c\n b)', 'malformed'], // Bad character
    ['(2 3)', 'malformed'], // Invalid length specifier
    ['(a 1x)', 'malformed'], // Invalid length specifier
    ['(a #010#)', 'malformed'], // Odd hexadecimal numbers
    ['(a %s)', 'malformed'], // Bad character
    ['(a {YWJj})', 'unsupported'], // Unexpected reserved punctuation
    ['(1:a01:b)', 'malformed'], // Zero prefix
    ['(a |YW Jj|)', 'malformed'], // Bad character
    ['(a |Y*Jj|)', 'malformed'], // Bad character
    ['(a ||)', 'malformed'], // Invalid argument
    ['(a "\\x4")', 'malformed'], // Bad quotation
    ['(a "\\1")', 'malformed'], // Bad quotation
    ['(a "\\q")', 'malformed'], // Bad quotation
    ['(a "\\08")', 'malformed'], // Bad quotation
    ['(a "\\X41")', 'malformed'], // Bad quotation
    ['(a "abc)', 'malformed'], // Unmatched parentheses
    ['(a', 'malformed'],
    ['a)', 'malformed'],
    ['(a))', 'malformed'],
    [')', 'malformed'],
    // What libgcrypt reads but Accord does not.
    ['', 'malformed'], // libgcrypt: an empty list
    ['abc', 'malformed'], // libgcrypt: an empty list
    ['(a)(b)', 'malformed'], // libgcrypt: both lists
    ['(a) junk', 'malformed'], // libgcrypt: ignores the junk
    ['(a [b]c)', 'unsupported'], // a display hint
    ['(a 3"abc")', 'malformed'], // a length before a quoted string
    ['(a 2"abc")', 'malformed'], // libgcrypt ignores the wrong length
    ['(a 2#0102#)', 'malformed'],
    ['(a 3|YWJj|)', 'malformed'],
    ['(a |YWI|)', 'malformed'], // unpadded base64
    ['(a |YR==|)', 'malformed'], // stray bits
    ['(a |YWJj=|)', 'malformed'],
    ['(a "\\400")', 'malformed'], // libgcrypt: the byte 0
    ['(a "\\777")', 'malformed'], // libgcrypt: the byte 0xff
    ['(a\x00b)', 'malformed'], // libgcrypt: one token with a NUL
    ['(a "\x00")', 'malformed'],
    ['(5:abc)', 'malformed'],
    ['(99999999999:abc)', 'malformed'],
  ])('%j (%s)', (input, expected) => {
    expect(guixErrorCode(() => parseSexp(latin1(input)))).toBe(expected);
  });

  test('a bare number only with bareNumbers, and never with a leading zero', () => {
    expect(guixErrorCode(() => parseSexp('(k-of-n 2 3)'))).toBe('malformed');
    const sexp = parseSexp('(k-of-n 2 3)', { bareNumbers: true });
    expect(text(formatCanonicalSexp(sexp))).toBe('(6:k-of-n1:21:3)');
    expect(guixErrorCode(() => parseSexp('(k-of-n 02 3)', { bareNumbers: true }))).toBe(
      'malformed',
    );
    expect(guixErrorCode(() => parseSexp('(k-of-n 2x 3)', { bareNumbers: true }))).toBe(
      'malformed',
    );
    expect(text(formatCanonicalSexp(parseSexp('(2:ab)', { bareNumbers: true })))).toBe('(2:ab)');
  });

  test('input over maxBytes and lists deeper than maxDepth (limit)', () => {
    expect(guixErrorCode(() => parseSexp('(a)', { maxBytes: 2 }))).toBe('limit');
    expect(guixErrorCode(() => parseSexp('(a)', { maxBytes: 3 }))).toBe('none');
    const nested = (n: number): string => `${'('.repeat(n)}${')'.repeat(n)}`;
    expect(guixErrorCode(() => parseSexp(nested(32)))).toBe('none');
    expect(guixErrorCode(() => parseSexp(nested(33)))).toBe('limit');
    expect(guixErrorCode(() => parseSexp(nested(4), { maxDepth: 3 }))).toBe('limit');
    expect(guixErrorCode(() => parseSexp(nested(100_000), { maxDepth: 200_000 }))).toBe('none');
  });
});

describe('parseCanonicalSexp()', () => {
  test('reads only (, ) and N:bytes', () => {
    expect(text(formatCanonicalSexp(parseCanonicalSexp(latin1('(1:a(0:)2:\x00\xff)'))))).toBe(
      '(1:a(0:)2:\x00\xff)',
    );
    for (const bad of ['(1:a )', ' (1:a)', '(a)', '(1:a)\n', '(#61#)', '("a")', '(1:a']) {
      expect(guixErrorCode(() => parseCanonicalSexp(latin1(bad)))).toBe('malformed');
    }
  });
});

// Each expected text is what libgcrypt's gcry_sexp_sprint (GCRYSEXP_FMT_ADVANCED) printed.
describe('formatSexp() writes what libgcrypt writes', () => {
  test.each([
    ['(a b)', '(a b)\n'],
    ['((a))', '(\n (a)\n )\n'],
    ['(ab(c))', '(ab \n (c)\n )\n'],
    ['(a (b) c)', '(a \n (b)\n c)\n'],
    ['(a () b)', '(a \n ()\n b)\n'],
    ['(()())', '(\n ()\n ()\n )\n'],
    ['((a)b)', '(\n (a)\n b)\n'],
    ['(a (b (c (d))) e f)', '(a \n (b \n  (c \n   (d)\n   )\n  )\n e f)\n'],
    ['()', '()\n'],
    ['(1:a1:1)', '(a "1")\n'],
    ['(1:a2:1a)', '(a "1a")\n'],
    ['(1:a2:a1)', '(a a1)\n'],
    ['(1:a3:a b)', '(a "a b")\n'],
    ['(1:a0:)', '(a "")\n'],
    ['(1:a1:\x80)', '(a #80#)\n'],
    ['(1:a2:\x01a)', '(a #0161#)\n'],
    ['(1:a1:\x00)', '(a #00#)\n'],
    ['(1:a2:a\x7f)', '(a #617F#)\n'],
    ['(1:a2:a\xa0)', '(a #61A0#)\n'],
    ['(1:a2:a\xa1)', '(a "a\xa1")\n'],
    ['(1:a2:a\xff)', '(a "a\xff")\n'],
    ['(1:a2:\xa1a)', '(a #A161#)\n'],
    ['(1:a2:a\x1f)', '(a #611F#)\n'],
    ['(1:a2:a\x0b)', '(a "a\\v")\n'],
    ['(1:a2:a\x08)', '(a "a\\b")\n'],
    ['(1:a2:a\x0c)', '(a "a\\f")\n'],
    ['(1:a2:a\r)', '(a "a\\r")\n'],
    ['(1:a2:a\n)', '(a "a\\n")\n'],
    ['(1:a2:a\t)', '(a "a\\t")\n'],
    ['(1:a2:a")', '(a "a\\"")\n'],
    ["(1:a2:a')", '(a "a\\\'")\n'],
    ['(1:a2:a\\)', '(a "a\\\\")\n'],
    ['(1:a8:-./_:*+=)', '(a -./_:*+=)\n'],
    ['(1:a2:a#)', '(a "a#")\n'],
    ['(1:a2:a()', '(a "a(")\n'],
    ['(1:a2:a;)', '(a "a;")\n'],
    ['(1:a2:a~)', '(a "a~")\n'],
    ['(#01#c)', '(#01# c)\n'],
  ])('%j', (input, expected) => {
    expect(advanced(input)).toBe(expected);
  });

  test('a NUL after the first byte is written as hex (libgcrypt writes it raw and cannot read it back)', () => {
    expect(advanced('(1:a2:a\x00)')).toBe('(a #6100#)\n');
  });
});

const atom = fc.uint8Array({ maxLength: 12 });
const sexpArb: fc.Arbitrary<SexpList> = fc.letrec<{ list: SexpList; item: Sexp }>((tie) => ({
  list: fc.array(tie('item'), { maxLength: 5 }),
  item: fc.oneof({ depthSize: 'small' }, atom, atom, tie('list')),
})).list;

describe('properties', () => {
  test('formatSexp() and formatCanonicalSexp() round-trip through the parsers', () => {
    fc.assert(
      fc.property(sexpArb, (s) => {
        expect(sexpEqual(parseSexp(formatSexp(s)), s)).toBe(true);
        expect(sexpEqual(parseCanonicalSexp(formatCanonicalSexp(s)), s)).toBe(true);
        expect(sexpEqual(parseSexp(formatCanonicalSexp(s)), s)).toBe(true);
      }),
      { numRuns: 500 },
    );
  });

  test('the advanced form is a fixed point: format(parse(format(s))) = format(s)', () => {
    fc.assert(
      fc.property(sexpArb, (s) => {
        const once = formatSexp(s);
        expect(Buffer.from(formatSexp(parseSexp(once))).equals(once)).toBe(true);
      }),
    );
  });

  test('random bytes and mutated expressions never crash: a list or a GuixError', () => {
    const mutated = fc
      .tuple(sexpArb, fc.nat(), fc.integer({ min: 0, max: 255 }))
      .map(([s, at, byte]) => {
        const bytes = Uint8Array.from(formatSexp(s));
        bytes[at % bytes.length] = byte;
        return bytes;
      });
    fc.assert(
      fc.property(fc.oneof(fc.uint8Array({ maxLength: 64 }), mutated), (bytes) => {
        for (const parse of [
          () => parseSexp(bytes),
          () => parseCanonicalSexp(bytes),
          () => parseSexp(bytes, { bareNumbers: true }),
        ]) {
          try {
            expect(Array.isArray(parse())).toBe(true);
          } catch (e) {
            expect(e).toBeInstanceOf(GuixError);
          }
        }
      }),
      { numRuns: 2000 },
    );
  });

  test('Guix text: UTF-8 of one character per byte round-trips; other UTF-8 is refused', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => {
        const file = Buffer.from(sexpToGuixText(bytes), 'utf8');
        expect(Buffer.from(decodeGuixText(file)).equals(bytes)).toBe(true);
      }),
    );
    expect(guixErrorCode(() => decodeGuixText(Buffer.from('(a "€")')))).toBe('malformed');
    expect(guixErrorCode(() => decodeGuixText(Uint8Array.of(0x28, 0xff, 0x29)))).toBe('malformed');
  });
});
