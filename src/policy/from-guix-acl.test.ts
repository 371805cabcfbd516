import { describe, expect, test } from 'vitest';
import {
  type GuixAclSubject,
  formatGuixAcl,
  generateGuixSecretKey,
  guixPublicKey,
  parseGuixAcl,
} from '../guix/index.js';
import { parseEntry } from '../claim/index.js';
import { type CacheObservation, decide } from './decide.js';
import { PolicyError } from './errors.js';
import { policyFromGuixAcl } from './from-guix-acl.js';
import { describeRule, parsePolicy } from './policy.js';

const keys = [0, 1, 2, 3].map(() => guixPublicKey(generateGuixSecretKey()));
const key = (i: number): GuixAclSubject => ({ kind: 'key', key: keys[i] as never });
const caches = keys.map((k, i) => ({
  key: k,
  name: `c${i + 1}`,
  url: `https://c${i + 1}.example`,
}));
const kofn: GuixAclSubject = { kind: 'k-of-n', k: 2, n: 3, subjects: [key(0), key(1), key(2)] };

const CLAIM = parseEntry(
  `accord/build/v1
store-path /gnu/store/mmn0yi58md42710kmdc31mms77d6ms72-demo
nar-hash sha256:163yrmg0lahh5faylpff1abpbdrmcvc0aqa06s5s1pfscnxnggi9
nar-size 744
`,
  '/gnu/store',
);
const signs = (cache: string): CacheObservation => ({
  cache,
  status: 'answered',
  votes: [{ claim: CLAIM, key: 'k', verifiedAt: 0 }],
});

describe('policyFromGuixAcl()', () => {
  test.each(['bare', 'quoted', 'hex'] as const)(
    'a (k-of-n 2 3 …) entry with its numbers %s, beside a plain key: 2 of the 3, or the plain key',
    (numbers) => {
      const acl = parseGuixAcl(formatGuixAcl({ entries: [kofn, key(3)] }, numbers));
      const policy = parsePolicy(policyFromGuixAcl(acl, caches));
      expect(describeRule(policy.decide)).toBe('acl=any-of(acl-1=2-of(c1, c2, c3), c4)');
      expect(policy.caches.map((c) => [c.name, c.url, c.guixKeys.length])).toEqual(
        caches.map((c) => [c.name, c.url, 1]),
      );
      const verdict = (...who: string[]) => decide(policy, [], who.map(signs)).verdict;
      expect(verdict('c1', 'c3')).toBe('trusted');
      expect(verdict('c2')).toBe('no-quorum');
      expect(verdict('c4')).toBe('trusted');
      expect(verdict()).toBe('no-quorum');
    },
  );

  test('one k-of-n entry decides alone; nested k-of-n entries nest', () => {
    const nested: GuixAclSubject = {
      kind: 'k-of-n',
      k: 2,
      n: 2,
      subjects: [{ kind: 'k-of-n', k: 1, n: 2, subjects: [key(0), key(1)] }, key(2)],
    };
    const policy = parsePolicy(policyFromGuixAcl({ entries: [nested] }, caches.slice(0, 3)));
    expect(describeRule(policy.decide)).toBe('acl-2=all-of(acl-1=any-of(c1, c2), c3)');
  });

  test.each([
    ['an empty ACL', { entries: [] }, caches, /authorises no key/],
    [
      'a key without a cache',
      { entries: [kofn] },
      caches.slice(0, 2),
      /has no cache: give its URL with --cache/,
    ],
    ['a key in two entries', { entries: [kofn, key(0)] }, caches.slice(0, 3), /in two ACL entries/],
    [
      'a cache whose key is not in the ACL',
      { entries: [kofn] },
      caches,
      /c4\.example: its key is not in the ACL/,
    ],
  ])('refuses %s', (_, acl, given, message) => {
    expect(() => policyFromGuixAcl(acl, given)).toThrow(PolicyError);
    expect(() => policyFromGuixAcl(acl, given)).toThrow(message);
  });
});
