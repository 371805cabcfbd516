import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { formatCheckpoint, openCheckpoint, parseCheckpoint } from './checkpoint.js';
import { TlogError } from './errors.js';
import { SIG_TYPE_COSIGNATURE_V1, SIG_TYPE_ED25519, formatVerifierKey, newSigner } from './keys.js';
import { parseVerifierKey } from './keys.js';
import { signNote } from './note.js';

// c2sp.org/tlog-checkpoint example text.
const SPEC_TEXT =
  'example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n';

describe('parseCheckpoint()', () => {
  test('reads the spec example', () => {
    const c = parseCheckpoint(SPEC_TEXT);
    expect(c.origin).toBe('example.com/behind-the-sofa');
    expect(c.treeSize).toBe(20852163);
    expect(Buffer.from(c.rootHash).toString('base64')).toBe(
      'CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=',
    );
    expect(c.extensions).toEqual([]);
    expect(formatCheckpoint(c)).toBe(SPEC_TEXT);
  });

  test('keeps extension lines in order', () => {
    const text = `${SPEC_TEXT}ext one\next two\n`;
    expect(parseCheckpoint(text).extensions).toEqual(['ext one', 'ext two']);
    expect(formatCheckpoint(parseCheckpoint(text))).toBe(text);
  });

  const root = 'CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=';
  test.each([
    ['a missing final newline', `o\n1\n${root}`],
    ['two lines', 'o\n1\n'],
    ['an empty origin', `\n1\n${root}\n`],
    ['a leading zero', `o\n01\n${root}\n`],
    ['a plus sign', `o\n+1\n${root}\n`],
    ['a space', `o\n 1\n${root}\n`],
    ['a hex size', `o\n0x1\n${root}\n`],
    ['a size past 2^53', `o\n9007199254740993\n${root}\n`],
    ['a 31-byte root', `o\n1\n${Buffer.alloc(31).toString('base64')}\n`],
    ['non-canonical base64', `o\n1\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2J=\n`],
    ['base64 without padding', `o\n1\n${root.slice(0, -1)}\n`],
    ['an empty extension line', `o\n1\n${root}\n\n`],
  ])('rejects a checkpoint with %s', (_, text) => {
    expect(() => parseCheckpoint(text)).toThrow(TlogError);
  });

  test('format then parse is the identity (property)', () => {
    fc.assert(
      fc.property(
        fc.stringMatching(/^[a-z0-9./-]{1,30}$/),
        fc.maxSafeNat(),
        fc.uint8Array({ minLength: 32, maxLength: 32 }),
        fc.array(fc.stringMatching(/^[ -~]{1,20}$/), { maxLength: 3 }),
        (origin, treeSize, rootHash, extensions) => {
          const c = { origin, treeSize, rootHash, extensions };
          const text = formatCheckpoint(c);
          expect(parseCheckpoint(text)).toEqual(c);
          expect(formatCheckpoint(parseCheckpoint(text))).toBe(text);
        },
      ),
    );
  });

  test('arbitrary and mutated text throws only TlogError (property)', () => {
    const mutated = fc
      .tuple(fc.nat(SPEC_TEXT.length), fc.string({ maxLength: 3 }), fc.nat(3))
      .map(([at, s, cut]) => SPEC_TEXT.slice(0, at) + s + SPEC_TEXT.slice(at + cut));
    fc.assert(
      fc.property(fc.oneof(fc.string(), mutated), (text) => {
        try {
          expect(formatCheckpoint(parseCheckpoint(text))).toBe(text);
        } catch (e) {
          expect(e).toBeInstanceOf(TlogError);
        }
      }),
      { numRuns: 3000 },
    );
  });
});

describe('openCheckpoint()', () => {
  const log = newSigner('example.com/log', SIG_TYPE_ED25519, new Uint8Array(32).fill(7));
  const logKey = parseVerifierKey(formatVerifierKey(log));
  const text = `example.com/log\n3\n${Buffer.alloc(32, 1).toString('base64')}\n`;

  test('accepts a checkpoint signed by its log', () => {
    expect(openCheckpoint(signNote(text, [log]), [logKey]).checkpoint.treeSize).toBe(3);
  });

  test('refuses a checkpoint whose signer is not named after the origin', () => {
    const other = newSigner('example.com/other', SIG_TYPE_ED25519, new Uint8Array(32).fill(7));
    const otherKey = parseVerifierKey(formatVerifierKey(other));
    expect(() => openCheckpoint(signNote(text, [other]), [otherKey])).toThrow(
      /no signature by its log/,
    );
  });

  test('refuses a checkpoint signed only by a witness', () => {
    const witness = newSigner(
      'example.com/log',
      SIG_TYPE_COSIGNATURE_V1,
      new Uint8Array(32).fill(8),
    );
    const witnessKey = parseVerifierKey(formatVerifierKey(witness));
    expect(() => openCheckpoint(signNote(text, [witness]), [logKey], [witnessKey])).toThrow(
      TlogError,
    );
  });
});
