import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { type BuildClaim, parseEntry } from '../claim/index.js';
import { parseHash } from '../nix/index.js';
import {
  SIG_TYPE_COSIGNATURE_V1,
  SIG_TYPE_ED25519,
  formatVerifierKey,
  newSigner,
} from '../tlog/index.js';
import { type LogObservation, decide } from './decide.js';
import { PolicyError } from './errors.js';
import { describeRule, parsePolicy, trustSatisfied } from './policy.js';

const vkey = (name: string, fill: number, type: 1 | 4 = SIG_TYPE_ED25519) =>
  formatVerifierKey(newSigner(name, type, new Uint8Array(32).fill(fill)));
const LOG = (i: number) => `log ${vkey(`b${i}.example/log`, i)} https://b${i}.example`;

function policyOf(lines: string[]): string {
  return [...lines, ''].join('\n');
}

const THREE = policyOf([
  LOG(1),
  LOG(2),
  LOG(3),
  'trust builders 2 b1.example/log b2.example/log b3.example/log',
  'decide builders',
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

const says = (origin: string, ...claims: BuildClaim[]): LogObservation => ({
  origin,
  status: 'answered',
  claims: claims.map((claim, index) => ({ claim, index, treeSize: 10 })),
});
const down = (origin: string): LogObservation => ({
  origin,
  status: 'missing',
  reason: 'unreachable',
});

describe('parsePolicy()', () => {
  test('reads logs, nested trust groups, decide, and tlog-policy witnesses', () => {
    const text = policyOf([
      LOG(1),
      LOG(2),
      LOG(3),
      LOG(4),
      'trust community 2 b1.example/log b2.example/log b3.example/log',
      'trust all-of-us all community b4.example/log',
      'decide all-of-us',
      `witness W1 ${vkey('w1.example', 11, SIG_TYPE_COSIGNATURE_V1)}`,
      `witness W2 ${vkey('w2.example', 12, SIG_TYPE_COSIGNATURE_V1)}`,
      'group witnesses any W1 W2',
      'quorum witnesses',
    ]);
    const p = parsePolicy(text);
    expect(p.logs.map((l) => [l.origin, l.url])).toEqual(
      [1, 2, 3, 4].map((i) => [`b${i}.example/log`, `https://b${i}.example`]),
    );
    expect(describeRule(p.decide)).toBe(
      'all-of-us=all-of(community=2-of(b1.example/log, b2.example/log, b3.example/log), b4.example/log)',
    );
    expect(p.needsWitnesses).toBe(true);
    expect(p.witnessPolicy.witnesses.map((w) => w.name)).toEqual(['W1', 'W2']);
  });

  test.each([
    ['no decide line', [LOG(1), 'quorum none']],
    ['two decide lines', [LOG(1), 'decide b1.example/log', 'decide b1.example/log', 'quorum none']],
    ['no quorum line', [LOG(1), 'decide b1.example/log']],
    [
      'a log without a URL',
      [`log ${vkey('b1.example/log', 1)}`, 'decide b1.example/log', 'quorum none'],
    ],
    ['a log listed twice', [LOG(1), LOG(1), 'decide b1.example/log', 'quorum none']],
    [
      'the same origin with another key',
      [
        LOG(1),
        `log ${vkey('b1.example/log', 9)} https://x`,
        'decide b1.example/log',
        'quorum none',
      ],
    ],
    ['an unknown member', [LOG(1), 'trust g 1 b9.example/log', 'decide g', 'quorum none']],
    [
      'a member listed twice',
      [LOG(1), 'trust g 1 b1.example/log b1.example/log', 'decide g', 'quorum none'],
    ],
    [
      'a member of two groups',
      [
        LOG(1),
        LOG(2),
        'trust g 1 b1.example/log',
        'trust h 1 b1.example/log b2.example/log',
        'decide h',
        'quorum none',
      ],
    ],
    ['a threshold of 0', [LOG(1), 'trust g 0 b1.example/log', 'decide g', 'quorum none']],
    ['a threshold above n', [LOG(1), 'trust g 2 b1.example/log', 'decide g', 'quorum none']],
    [
      'a group used before it is defined',
      [LOG(1), 'trust h 1 g', 'trust g 1 b1.example/log', 'decide h', 'quorum none'],
    ],
    [
      'a group named like a log',
      [LOG(1), 'trust b1.example/log 1 b1.example/log', 'decide b1.example/log', 'quorum none'],
    ],
    ['an unknown keyword', [LOG(1), 'decide b1.example/log', 'quorum none', 'trusted x']],
    [
      'a witness key used as a log key',
      [
        `log ${vkey('b1.example/log', 1, SIG_TYPE_COSIGNATURE_V1)} https://x`,
        'decide b1.example/log',
        'quorum none',
      ],
    ],
    ['an unknown decide name', [LOG(1), 'decide nobody', 'quorum none']],
  ])('rejects a policy with %s', (_, lines) => {
    expect(() => parsePolicy(policyOf(lines))).toThrow(PolicyError);
  });

  test('arbitrary and mutated text is a policy or a PolicyError (property)', () => {
    const mutated = fc
      .tuple(fc.nat(THREE.length), fc.string({ maxLength: 4 }), fc.nat(6))
      .map(([at, s, cut]) => THREE.slice(0, at) + s + THREE.slice(at + cut));
    fc.assert(
      fc.property(fc.oneof(fc.string(), mutated), (text) => {
        try {
          parsePolicy(text);
        } catch (e) {
          expect(e).toBeInstanceOf(PolicyError);
        }
      }),
      { numRuns: 500 },
    );
  });
});

describe('decide(): 2-of-3', () => {
  const policy = parsePolicy(THREE);
  const [b1, b2, b3] = ['b1.example/log', 'b2.example/log', 'b3.example/log'] as const;

  test.each([
    ['all three agree', [says(b1, GOOD), says(b2, GOOD), says(b3, GOOD)], 'trusted'],
    ['two agree, one is down', [says(b1, GOOD), says(b2, GOOD), down(b3)], 'trusted'],
    ['two agree, one lies', [says(b1, GOOD), says(b2, GOOD), says(b3, EVIL)], 'trusted'],
    ['one claims, two have nothing', [says(b1, GOOD), says(b2), says(b3)], 'no-quorum'],
    ['one claims, two are down', [says(b1, GOOD), down(b2), down(b3)], 'no-quorum'],
    ['all down', [down(b1), down(b2), down(b3)], 'no-quorum'],
    [
      'three different answers',
      [says(b1, GOOD), says(b2, EVIL), says(b3, { ...GOOD, narSize: 745 })],
      'no-quorum',
    ],
    [
      'a log claiming both answers with one other for each',
      [says(b1, GOOD, EVIL), says(b2, GOOD), says(b3, EVIL)],
      'conflict',
    ],
    ['only one log answers, not even asked the rest', [says(b1, GOOD)], 'no-quorum'],
    [
      'a duplicate observation of one log cannot count twice',
      [says(b1, GOOD), says(b1, GOOD)],
      'no-quorum',
    ],
    [
      'references differ',
      [says(b1, GOOD), says(b2, { ...GOOD, references: [] }), says(b3)],
      'no-quorum',
    ],
    [
      'the deriver differs but the output agrees',
      [
        says(b1, GOOD),
        says(b2, { ...GOOD, deriver: '87vxc1xg309brqyx06pbkc7hb90gcqq4-x.drv' }),
        says(b3),
      ],
      'trusted',
    ],
  ])('%s → %s', (_, observations, verdict) => {
    const d = decide(policy, observations);
    expect(d.verdict).toBe(verdict);
    expect(d.logs).toHaveLength(3);
    if (verdict === 'trusted')
      expect(d.claim?.narHash).toBe('sha256:163yrmg0lahh5faylpff1abpbdrmcvc0aqa06s5s1pfscnxnggi9');
  });

  test('the evidence names every log, what it said, and why a vote is missing', () => {
    const d = decide(policy, [says(b1, GOOD), down(b2)]);
    expect(d.logs.map((l) => [l.origin, l.status])).toEqual([
      [b1, 'answered'],
      [b2, 'missing'],
      [b3, 'missing'],
    ]);
    expect(d.logs[2]).toMatchObject({ reason: 'not asked' });
    expect(d.answers).toEqual([expect.objectContaining({ supporters: [b1], satisfied: false })]);
    expect(d.reason).toMatch(/best: 1 of 3/);
  });
});

describe('trust thresholds at every boundary', () => {
  test('k-of-n for every n ≤ 6 and k ≤ n: satisfied exactly when ≥ k members support', () => {
    for (let n = 1; n <= 6; n++) {
      const logs = Array.from({ length: n }, (_, i) => LOG(i + 1));
      const names = Array.from({ length: n }, (_, i) => `b${i + 1}.example/log`);
      for (let k = 1; k <= n; k++) {
        const policy = parsePolicy(
          policyOf([...logs, `trust g ${k} ${names.join(' ')}`, 'decide g', 'quorum none']),
        );
        for (let supporters = 0; supporters <= n; supporters++) {
          const obs = names.map((o, i) => (i < supporters ? says(o, GOOD) : down(o)));
          expect(decide(policy, obs).verdict).toBe(supporters >= k ? 'trusted' : 'no-quorum');
        }
      }
    }
  });

  test('nested groups: all(2-of-3, any-of-2) evaluated like the formula (property)', () => {
    const logs = [1, 2, 3, 4, 5].map(LOG);
    const n = (i: number) => `b${i}.example/log`;
    const policy = parsePolicy(
      policyOf([
        ...logs,
        `trust inner 2 ${n(1)} ${n(2)} ${n(3)}`,
        `trust other any ${n(4)} ${n(5)}`,
        'trust top all inner other',
        'decide top',
        'quorum none',
      ]),
    );
    fc.assert(
      fc.property(fc.array(fc.boolean(), { minLength: 5, maxLength: 5 }), (votes) => {
        const support = new Set([1, 2, 3, 4, 5].filter((i) => votes[i - 1]).map(n));
        const expected =
          [1, 2, 3].filter((i) => votes[i - 1]).length >= 2 &&
          (votes[3] === true || votes[4] === true);
        expect(trustSatisfied(policy.decide, support)).toBe(expected);
        const obs = [1, 2, 3, 4, 5].map((i) =>
          votes[i - 1] === true ? says(n(i), GOOD) : down(n(i)),
        );
        expect(decide(policy, obs).verdict).toBe(expected ? 'trusted' : 'no-quorum');
      }),
    );
  });

  test('deep nesting (depth 40) decides like its single chain of any-of groups', () => {
    const lines = [LOG(1), LOG(2), 'trust g0 any b1.example/log'];
    for (let d = 1; d < 40; d++) lines.push(`trust g${d} any g${d - 1}`);
    lines.push('trust top 1 g39 b2.example/log', 'decide top', 'quorum none');
    const policy = parsePolicy(policyOf(lines));
    expect(decide(policy, [says('b1.example/log', GOOD)]).verdict).toBe('trusted');
    expect(decide(policy, [down('b1.example/log')]).verdict).toBe('no-quorum');
  });

  test('a log unknown to the policy is ignored', () => {
    const policy = parsePolicy(policyOf([LOG(1), 'decide b1.example/log', 'quorum none']));
    const d = decide(policy, [says('stranger.example/log', GOOD), down('b1.example/log')]);
    expect(d.verdict).toBe('no-quorum');
    expect(d.logs.map((l) => l.origin)).toEqual(['b1.example/log']);
  });
});
