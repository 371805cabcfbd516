import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { type BuildClaim, parseEntry } from '../claim/index.js';
import {
  type GuixNarInfoFields,
  generateGuixSecretKey,
  guixPublicKeyHex,
  parseGuixNarInfo,
  signGuixNarInfo,
} from '../guix/index.js';
import {
  type NarInfo,
  formatNixPublicKey,
  generateNixSecretKey,
  nixPublicKey,
  parseHash,
  parseStorePath,
  signNarInfo,
} from '../nix/index.js';
import { SIG_TYPE_ED25519, formatVerifierKey, newSigner } from '../tlog/index.js';
import { type CacheObservation, type LogObservation, decide } from './decide.js';
import { PolicyError } from './errors.js';
import { describeRule, parsePolicy } from './policy.js';
import { guixNarInfoVotes, nixNarInfoVotes } from './votes.js';

const nixKeys = [1, 2, 3].map((i) => generateNixSecretKey(`cache${i}.example-1`));
const guixKeys = [1, 2, 3].map(() => generateGuixSecretKey());
const pub = (i: number) => formatNixPublicKey(nixPublicKey(nixKeys[i] as never));
const gpub = (i: number) => `guix:${guixPublicKeyHex(guixKeys[i] as never)}`;
const LOG = `log ${formatVerifierKey(newSigner('b1.example/log', SIG_TYPE_ED25519, new Uint8Array(32).fill(1)))} https://b1.example`;

const policyOf = (lines: string[]) => parsePolicy([...lines, ''].join('\n'));

const NIX_POLICY = policyOf([
  `cache c1 https://c1.example ${pub(0)}`,
  `cache c2 https://c2.example ${pub(1)}`,
  `cache c3 file:///srv/c3 ${pub(2)}`,
  'trust caches 2 c1 c2 c3',
  'decide caches',
  'quorum none',
]);

const ENTRY = `accord/build/v1
store-path /nix/store/mmn0yi58md42710kmdc31mms77d6ms72-demo
nar-hash sha256:163yrmg0lahh5faylpff1abpbdrmcvc0aqa06s5s1pfscnxnggi9
nar-size 744
reference 5qn9lblnzjgza2vb23kwaclrcxnska2z-dep
`;
const GOOD = parseEntry(ENTRY);
const EVIL: BuildClaim = { ...GOOD, narHash: parseHash(`sha256:${'1'.repeat(64)}`) };

const narinfoOf = (claim: BuildClaim): NarInfo => ({
  storePath: claim.storePath,
  url: 'nar/x.nar',
  compression: 'none',
  narHash: claim.narHash,
  narSize: claim.narSize,
  references: claim.references,
  sigs: [],
});
const signedBy = (claim: BuildClaim, ...keys: number[]) =>
  keys.reduce((info, k) => signNarInfo(info, nixKeys[k] as never), narinfoOf(claim));

const cacheSays = (cache: string, info: NarInfo): CacheObservation => ({
  cache,
  status: 'answered',
  votes: nixNarInfoVotes(NIX_POLICY, info, 0)
    .filter((v) => v.cache === cache)
    .map((v) => v.vote),
});

describe('cache lines', () => {
  test('a cache is a member beside logs, with Nix and Guix keys', () => {
    const p = policyOf([
      LOG,
      `cache nixos https://cache.nixos.org ${pub(0)} ${pub(1)}`,
      `cache bordeaux https://bordeaux.guix.gnu.org/ ${gpub(0)}`,
      'trust mixed 2 b1.example/log nixos bordeaux',
      'decide mixed',
      'quorum none',
    ]);
    expect(p.caches.map((c) => [c.name, c.url, c.nixKeys.length, c.guixKeys.length])).toEqual([
      ['nixos', 'https://cache.nixos.org', 2, 0],
      ['bordeaux', 'https://bordeaux.guix.gnu.org', 0, 1],
    ]);
    expect(describeRule(p.decide)).toBe('mixed=2-of(b1.example/log, nixos, bordeaux)');
  });

  test.each([
    ['no key', ['cache c1 https://c1.example']],
    ['a bad URL', [`cache c1 ftp://c1.example ${pub(0)}`]],
    ['a bad key', ['cache c1 https://c1.example c1:AAAA']],
    ['a Guix key that is not a point', [`cache c1 https://c1.example guix:${'ff'.repeat(32)}`]],
    ['a short Guix key', [`cache c1 https://c1.example guix:${'ab'.repeat(31)}`]],
    ['a name taken by a log', [LOG, `cache b1.example/log https://c1.example ${pub(0)}`]],
    ['a name given twice', [`cache c1 https://a ${pub(0)}`, `cache c1 https://b ${pub(1)}`]],
    ['a Nix key in two caches', [`cache c1 https://a ${pub(0)}`, `cache c2 https://b ${pub(0)}`]],
    [
      'two Nix keys with one name',
      [
        `cache c1 https://a ${pub(0)}`,
        `cache c2 https://b ${formatNixPublicKey(nixPublicKey(generateNixSecretKey('cache1.example-1')))}`,
      ],
    ],
    [
      'a Guix key in two caches',
      [`cache c1 https://a ${gpub(0)}`, `cache c2 https://b ${gpub(0)}`],
    ],
    ['a name with a space-like character', [`cache c\u00a01 https://a ${pub(0)}`]],
  ])('refuses %s', (_, lines) => {
    expect(() => policyOf([...lines, 'decide c1', 'quorum none'])).toThrow(PolicyError);
  });
});

describe('Nix signature votes', () => {
  test('a valid Sig by a cache key is that cache’s vote for exactly what it signed', () => {
    const votes = nixNarInfoVotes(NIX_POLICY, signedBy(GOOD, 0, 2), 7);
    expect(votes.map((v) => [v.cache, v.vote.key, v.vote.verifiedAt])).toEqual([
      ['c1', 'cache1.example-1', 7],
      ['c3', 'cache3.example-1', 7],
    ]);
    expect(votes[0]?.vote.claim.narHash).toEqual(GOOD.narHash);
  });

  test.each([
    ['the NAR hash', { narHash: EVIL.narHash }],
    ['the NAR size', { narSize: GOOD.narSize + 1 }],
    ['the references', { references: [] }],
    [
      'the store path',
      { storePath: parseStorePath('/nix/store/mmn0yi58md42710kmdc31mms77d6ms72-demp') },
    ],
  ])('a signature moved onto a narinfo with another %s is no vote', (_, change) => {
    const info = { ...signedBy(GOOD, 0, 1, 2), ...change };
    expect(nixNarInfoVotes(NIX_POLICY, info, 0)).toEqual([]);
  });

  test('a key not in the policy, or a key name with another key’s signature, is no vote', () => {
    const stranger = signNarInfo(narinfoOf(GOOD), generateNixSecretKey('cache1.example-1'));
    expect(nixNarInfoVotes(NIX_POLICY, stranger, 0)).toEqual([]);
    const other = signNarInfo(narinfoOf(GOOD), generateNixSecretKey('elsewhere-1'));
    expect(nixNarInfoVotes(NIX_POLICY, other, 0)).toEqual([]);
  });

  test('2-of-3 caches: two agreeing signatures trust, the third signing another NAR does not matter', () => {
    const d = decide(
      NIX_POLICY,
      [],
      [
        cacheSays('c1', signedBy(GOOD, 0)),
        cacheSays('c2', signedBy(GOOD, 1)),
        cacheSays('c3', signedBy(EVIL, 2)),
      ],
    );
    expect(d.verdict).toBe('trusted');
    expect(d.claim?.narHash).toBe('sha256:163yrmg0lahh5faylpff1abpbdrmcvc0aqa06s5s1pfscnxnggi9');
    expect(d.answers.find((a) => a.satisfied)?.bySignature).toEqual(['c1', 'c2']);
    expect(d.reason).toBe('2 of 3 members agree (signatures: c1, c2)');
  });

  test('one cache carrying two caches’ signatures is two votes; one key on many narinfos is one', () => {
    // c1 serves a narinfo signed by c1 and c2 (a mirror keeps other caches' Sig lines).
    const both = signedBy(GOOD, 0, 1);
    const votes = nixNarInfoVotes(NIX_POLICY, both, 0);
    const obs = ['c1', 'c2'].map((cache): CacheObservation => ({
      cache,
      status: 'answered',
      votes: votes.filter((v) => v.cache === cache).map((v) => v.vote),
    }));
    expect(decide(NIX_POLICY, [], obs).verdict).toBe('trusted');
    // c1's key on three narinfos (from three caches) is still c1's one vote.
    const only = signedBy(GOOD, 0);
    const c1 = nixNarInfoVotes(NIX_POLICY, only, 0).map((v) => v.vote);
    const d = decide(
      NIX_POLICY,
      [],
      [{ cache: 'c1', status: 'answered', votes: [...c1, ...c1, ...c1] }],
    );
    expect(d.verdict).toBe('no-quorum');
    expect(d.answers[0]?.supporters).toEqual(['c1']);
  });

  test('a cache that signed two answers supports both: with another cache each, a conflict', () => {
    const c1 = {
      cache: 'c1',
      status: 'answered',
      votes: [GOOD, EVIL].map((claim) => ({ claim, key: 'k', verifiedAt: 0 })),
    } as const;
    const d = decide(
      NIX_POLICY,
      [],
      [c1, cacheSays('c2', signedBy(GOOD, 1)), cacheSays('c3', signedBy(EVIL, 2))],
    );
    expect(d.verdict).toBe('conflict');
  });

  test('a mixed policy counts log claims and signatures, and says which were which', () => {
    const p = policyOf([
      LOG,
      `cache c1 https://c1.example ${pub(0)}`,
      `cache c2 https://c2.example ${pub(1)}`,
      'trust mixed 2 b1.example/log c1 c2',
      'decide mixed',
      'quorum none',
    ]);
    const log: LogObservation = {
      origin: 'b1.example/log',
      status: 'answered',
      claims: [{ claim: GOOD, index: 0, treeSize: 1 }],
    };
    const c1: CacheObservation = {
      cache: 'c1',
      status: 'answered',
      votes: nixNarInfoVotes(p, signedBy(GOOD, 0), 0).map((v) => v.vote),
    };
    const d = decide(p, [log], [c1, { cache: 'c2', status: 'missing', reason: 'unavailable' }]);
    expect(d.verdict).toBe('trusted');
    expect(d.reason).toBe('2 of 3 members agree (log claims: b1.example/log; signatures: c1)');
    expect(decide(p, [log], []).verdict).toBe('no-quorum');
    expect(decide(p, [log], []).caches.map((c) => c.status)).toEqual(['missing', 'missing']);
  });

  test('any subset of signing caches decides like the threshold (property)', () => {
    fc.assert(
      fc.property(fc.array(fc.boolean(), { minLength: 3, maxLength: 3 }), (signs) => {
        const obs = ['c1', 'c2', 'c3'].map((cache, i) =>
          signs[i] === true
            ? cacheSays(cache, signedBy(GOOD, i))
            : cacheSays(cache, narinfoOf(GOOD)),
        );
        const expected = signs.filter(Boolean).length >= 2 ? 'trusted' : 'no-quorum';
        expect(decide(NIX_POLICY, [], obs).verdict).toBe(expected);
      }),
      { numRuns: 30 },
    );
  });
});

describe('Guix signature votes', () => {
  const policy = policyOf([
    `cache g1 https://g1.example ${gpub(0)}`,
    `cache g2 https://g2.example ${gpub(1)}`,
    'trust guix 2 g1 g2',
    'decide guix',
    'quorum none',
  ]);
  const fields: GuixNarInfoFields = {
    storePath: parseStorePath('/gnu/store/mmn0yi58md42710kmdc31mms77d6ms72-demo', '/gnu/store'),
    narHash: GOOD.narHash,
    narSize: 744,
    references: ['5qn9lblnzjgza2vb23kwaclrcxnska2z-dep', 'mmn0yi58md42710kmdc31mms77d6ms72-demo'],
    urls: [
      { url: 'nar/gzip/mmn0yi58md42710kmdc31mms77d6ms72-demo', compression: 'gzip', fileSize: 500 },
    ],
  };
  const signed = (k: number) => signGuixNarInfo(fields, guixKeys[k] as never, `g${k + 1}.example`);

  test('a narinfo signed by a cache’s Guix key is its vote; references sorted as claims are', () => {
    const [vote] = guixNarInfoVotes(policy, parseGuixNarInfo(signed(1)), 5);
    expect(vote?.cache).toBe('g2');
    expect(vote?.vote.key).toBe(gpub(1));
    expect(vote?.vote.claim.references).toEqual([...fields.references].sort());
  });

  test('every one-character change of the signed part is no vote; the URL blocks are not signed', () => {
    const text = signed(0);
    const end = text.indexOf('Signature:');
    let parsed = 0;
    for (let i = 0; i < end; i++) {
      if (text[i] === '\n') continue;
      const changed = `${text.slice(0, i)}${text[i] === 'a' ? 'b' : 'a'}${text.slice(i + 1)}`;
      let info;
      try {
        info = parseGuixNarInfo(changed);
      } catch {
        continue;
      }
      parsed++;
      expect(guixNarInfoVotes(policy, info, 0)).toEqual([]);
    }
    // Most changes still parse: it is the signature that refuses them.
    expect(parsed).toBeGreaterThan(end / 2);
    const moved = text.replace('nar/gzip/', 'nar/zstd/').replace('gzip\n', 'zstd\n');
    expect(guixNarInfoVotes(policy, parseGuixNarInfo(moved), 0)).toHaveLength(1);
  });

  test('a signature by a key outside the policy is no vote', () => {
    const text = signGuixNarInfo(fields, generateGuixSecretKey(), 'stranger.example');
    expect(guixNarInfoVotes(policy, parseGuixNarInfo(text), 0)).toEqual([]);
  });

  test('two Guix caches signing the same narinfo fields agree', () => {
    const obs = [0, 1].map((k): CacheObservation => {
      const [v] = guixNarInfoVotes(policy, parseGuixNarInfo(signed(k)), 0);
      return { cache: `g${k + 1}`, status: 'answered', votes: v === undefined ? [] : [v.vote] };
    });
    expect(decide(policy, [], obs).verdict).toBe('trusted');
  });
});
