import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import {
  type GuixAcl,
  type GuixAclSubject,
  formatGuixAcl,
  parseGuixAcl,
  plainAclKeys,
} from './acl.js';
import { GuixError } from './errors.js';
import {
  formatGuixPublicKey,
  generateGuixSecretKey,
  guixPublicKey,
  parseGuixPublicKey,
  sameGuixKey,
} from './keys.js';
import { guixErrorCode } from '../../test/support/guix.js';

const CI = parseGuixPublicKey(
  readFileSync(new URL('../../test/vectors/guix/ci.guix.gnu.org.pub', import.meta.url)),
);
const KEYS = [CI, ...[1, 2].map(() => guixPublicKey(generateGuixSecretKey()))];
const pub = (i: number): string => formatGuixPublicKey(KEYS[i] ?? CI).trimEnd();

const keyOf = (s: GuixAclSubject | undefined): Uint8Array | undefined =>
  s?.kind === 'key' ? s.key.q : undefined;

describe('parseGuixAcl()', () => {
  test('reads an ACL as guix archive --authorize writes it', () => {
    const acl = formatGuixAcl({ entries: KEYS.map((key) => ({ kind: 'key', key })) });
    expect(acl.startsWith('(acl \n (entry \n  (public-key \n   (ecc \n    (curve Ed25519)\n')).toBe(
      true,
    );
    expect(acl).toContain('\n  (tag \n   (guix import)\n   )\n  )\n');
    const parsed = parseGuixAcl(acl);
    expect(plainAclKeys(parsed).map((k) => k.q)).toEqual(KEYS.map((k) => k.q));
  });

  test('the empty ACL', () => {
    expect(parseGuixAcl('(acl)\n')).toEqual({ entries: [] });
    expect(formatGuixAcl({ entries: [] })).toBe('(acl)\n');
  });

  test.each([
    ['bare numbers, as the proposal wrote them', '2 3'],
    ['quoted numbers', '"2" "3"'],
    ['hex numbers', '#02# #03#'],
    ['verbatim numbers', '1:2 1:3'],
  ])('reads (k-of-n …) with %s', (_, numbers) => {
    const text = `(acl (entry ${pub(0)} (tag (guix import)))
  (entry (k-of-n ${numbers} ${pub(0)} ${pub(1)} ${pub(2)}) (tag (guix import))))`;
    const acl = parseGuixAcl(text);
    expect(acl.entries).toHaveLength(2);
    expect(keyOf(acl.entries[0])).toEqual(CI.q);
    const group = acl.entries[1];
    if (group?.kind !== 'k-of-n') throw new Error('want a k-of-n entry');
    expect([group.k, group.n]).toEqual([2, 3]);
    expect(group.subjects.map(keyOf)).toEqual(KEYS.map((k) => k.q));
    // Only the plain entry authorises a key on its own.
    expect(plainAclKeys(acl).map((k) => sameGuixKey(k, CI))).toEqual([true]);
  });

  test('nested k-of-n groups, and numbers above 255 in hex', () => {
    const inner = `(k-of-n 1 2 ${pub(1)} ${pub(2)})`;
    const acl = parseGuixAcl(`(acl (entry (k-of-n 2 2 ${pub(0)} ${inner}) (tag (guix import))))`);
    const group = acl.entries[0];
    expect(group?.kind === 'k-of-n' && group.subjects[1]?.kind).toBe('k-of-n');
    const big = `(acl (entry (k-of-n #01# #0100# ${Array(256).fill(pub(0)).join(' ')}) (tag (guix import))))`;
    const wide = parseGuixAcl(big).entries[0];
    expect(wide?.kind === 'k-of-n' && wide.n).toBe(256);
  });

  test.each(['bare', 'quoted', 'hex'] as const)(
    'formatGuixAcl() writes %s numbers that parse back',
    (numbers) => {
      const acl: GuixAcl = {
        entries: [
          { kind: 'key', key: CI },
          { kind: 'k-of-n', k: 2, n: 3, subjects: KEYS.map((key) => ({ kind: 'key', key })) },
        ],
      };
      const text = formatGuixAcl(acl, numbers);
      const expected = {
        bare: '(k-of-n 2 3 ',
        quoted: '(k-of-n "2" "3" ',
        hex: '(k-of-n #02# #03# ',
      };
      expect(text).toContain(expected[numbers]);
      const back = parseGuixAcl(text);
      expect(back.entries[1]).toMatchObject({ kind: 'k-of-n', k: 2, n: 3 });
      expect(formatGuixAcl(back, numbers)).toBe(text);
    },
  );

  const entry = (subject: string, tag = '(tag (guix import))'): string =>
    `(acl (entry ${subject} ${tag}))`;
  test.each([
    ['K = 0', entry(`(k-of-n 0 1 ${pub(0)})`), 'malformed'],
    ['K > N', entry(`(k-of-n 3 2 ${pub(0)} ${pub(1)})`), 'malformed'],
    ['N not the number of subjects', entry(`(k-of-n 1 3 ${pub(0)} ${pub(1)})`), 'malformed'],
    ['a number with a leading zero', entry(`(k-of-n 01 1 ${pub(0)})`), 'malformed'],
    ['a hex number with a leading zero', entry(`(k-of-n #0001# 1 ${pub(0)})`), 'malformed'],
    ['a word for a number', entry(`(k-of-n two 1 ${pub(0)})`), 'malformed'],
    ['a list for a number', entry(`(k-of-n (2) 1 ${pub(0)})`), 'malformed'],
    ['another tag', entry(pub(0), '(tag (guix export))'), 'unsupported'],
    ['no tag', `(acl (entry ${pub(0)}))`, 'malformed'],
    ['another subject', entry('(name "x")'), 'unsupported'],
    ['an RSA key', entry('(public-key (rsa (n #00C1#) (e #010001#)))'), 'unsupported'],
    ['not an acl', `(entries (entry ${pub(0)} (tag (guix import))))`, 'malformed'],
    ['an atom entry', '(acl entry)', 'malformed'],
    ['deep nesting', entry('(k-of-n 1 1 '.repeat(5) + pub(0) + ')'.repeat(5)), 'limit'],
  ])('refuses %s', (_, text, expected) => {
    expect(guixErrorCode(() => parseGuixAcl(text))).toBe(expected);
  });

  test('random bytes and mutated ACLs never crash: an ACL or a GuixError (property)', () => {
    const acl = `(acl (entry ${pub(0)} (tag (guix import))) (entry (k-of-n 1 2 ${pub(1)} ${pub(2)}) (tag (guix import))))`;
    const mutated = fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })).map(([at, byte]) => {
      const b = Buffer.from(acl);
      b[at % b.length] = byte;
      return b;
    });
    fc.assert(
      fc.property(fc.oneof(fc.uint8Array({ maxLength: 200 }), mutated), (bytes) => {
        try {
          parseGuixAcl(bytes);
        } catch (e) {
          expect(e).toBeInstanceOf(GuixError);
        }
      }),
      { numRuns: 1000 },
    );
  });
});
