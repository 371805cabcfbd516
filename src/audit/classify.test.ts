import { describe, expect, test } from 'vitest';
import { type BuildClaim, parseEntry } from '../claim/index.js';
import { formatHash, parseHash } from '../nix/index.js';
import { type LogObservation, decide, parsePolicy } from '../policy/index.js';
import { SIG_TYPE_ED25519, formatVerifierKey, newSigner } from '../tlog/index.js';
import { type LocalPath, advice, classify, compareWithStore, isFailure } from './classify.js';

const vkey = (name: string, fill: number) =>
  formatVerifierKey(newSigner(name, SIG_TYPE_ED25519, new Uint8Array(32).fill(fill)));
const POLICY = parsePolicy(
  [
    ...[1, 2, 3].map((i) => `log ${vkey(`b${i}.example/log`, i)} https://b${i}.example`),
    'trust builders 2 b1.example/log b2.example/log b3.example/log',
    'decide builders',
    'quorum none',
    '',
  ].join('\n'),
);

const GOOD = parseEntry(`accord/build/v1
store-path /nix/store/mmn0yi58md42710kmdc31mms77d6ms72-demo
nar-hash sha256:163yrmg0lahh5faylpff1abpbdrmcvc0aqa06s5s1pfscnxnggi9
nar-size 744
reference 5qn9lblnzjgza2vb23kwaclrcxnska2z-dep
`);
const EVIL: BuildClaim = { ...GOOD, narHash: parseHash(`sha256:${'1'.repeat(64)}`) };

const STORE: LocalPath = {
  path: '/nix/store/mmn0yi58md42710kmdc31mms77d6ms72-demo',
  hashPart: 'mmn0yi58md42710kmdc31mms77d6ms72',
  narHash: formatHash(GOOD.narHash),
  narSize: 744,
  references: ['5qn9lblnzjgza2vb23kwaclrcxnska2z-dep'],
  deriver: '/nix/store/87vxc1xg309brqyx06pbkc7hb90gcqq4-demo.drv',
};

const says = (origin: string, ...claims: BuildClaim[]): LogObservation => ({
  origin,
  status: 'answered',
  claims: claims.map((claim, index) => ({ claim, index, treeSize: 10 })),
});
const missing = (origin: string, reason: string): LogObservation => ({
  origin,
  status: 'missing',
  reason,
});
const [B1, B2, B3] = ['b1.example/log', 'b2.example/log', 'b3.example/log'] as const;
const decision = (...observations: LogObservation[]) => decide(POLICY, observations);

describe('classify()', () => {
  test('is ok when the decision trusts exactly the NAR the store holds', () => {
    const f = classify(STORE, decision(says(B1, GOOD), says(B2, GOOD), says(B3)));
    expect(f.category).toBe('ok');
    expect(isFailure(f.category)).toBe(false);
  });

  test('is differs, naming each part, when the trusted answer is another NAR', () => {
    const d = decision(says(B1, EVIL), says(B2, EVIL), says(B3, GOOD));
    expect(classify(STORE, d)).toMatchObject({ category: 'differs', differences: ['nar-hash'] });
    const bigger = { ...GOOD, narSize: 745 };
    expect(classify(STORE, decision(says(B1, bigger), says(B2, bigger)))).toMatchObject({
      category: 'differs',
      differences: ['nar-size'],
    });
    const noRefs = { ...GOOD, references: [] };
    expect(classify(STORE, decision(says(B1, noRefs), says(B2, noRefs)))).toMatchObject({
      category: 'differs',
      differences: ['references'],
    });
  });

  test('is conflict when two answers each satisfy the policy', () => {
    const d = decision(says(B1, GOOD, EVIL), says(B2, GOOD), says(B3, EVIL));
    expect(classify(STORE, d).category).toBe('conflict');
  });

  test('is unknown, not a failure, when no member says anything about the path', () => {
    const f = classify(STORE, decision(says(B1), missing(B2, 'unreachable'), says(B3)));
    expect(f.category).toBe('unknown');
    expect(isFailure(f.category)).toBe(false);
    expect(advice(STORE, f)).toEqual([]);
  });

  test("is no-quorum-now when too few support any answer, saying how many back the store's NAR", () => {
    const f = classify(STORE, decision(says(B1, GOOD), missing(B2, 'unreachable'), says(B3)));
    expect(f.category).toBe('no-quorum-now');
    expect(f.reason).toMatch(/the store's NAR has 1 supporter \(b1\.example\/log\)/);
    const other = classify(STORE, decision(says(B1, EVIL), says(B2), says(B3)));
    expect(other).toMatchObject({ category: 'no-quorum-now' });
    expect(other.reason).toMatch(/no member supports the store's NAR/);
  });

  test('is revoked when a former supporter is missing because its key is revoked', () => {
    const d = decision(
      says(B1, GOOD),
      missing(B2, 'revoked: key b2 compromised since 2026-12-01T00:00:00Z'),
      says(B3),
    );
    expect(classify(STORE, d, { supporters: new Set([B1, B2]) })).toMatchObject({
      category: 'revoked',
      members: [B2],
    });
    // A revoked key that never supported this path's NAR is not this path's problem.
    expect(classify(STORE, d, { supporters: new Set([B1]) }).category).toBe('no-quorum-now');
  });

  test("is revoked when the decision excluded a claim of the store's NAR for a revoked key", () => {
    // As the proxy's log client reports it: the claim is verified, but does not count.
    const excluded = (origin: string, index: number, reason: string): LogObservation => ({
      origin,
      status: 'answered',
      claims: [],
      excluded: [{ index, reason, cause: /revoked/.test(reason) ? 'revoked' : 'not-valid' }],
    });
    const why = 'logged after 2026-12-01T00:00:00.000Z, when k1 was revoked as compromised';
    const d = decision(says(B1, GOOD), excluded(B2, 7, why), says(B3));
    const former = { supporters: new Set([B1, B2]), claims: new Map([[B2, new Set([7])]]) };
    expect(classify(STORE, d, former)).toMatchObject({ category: 'revoked', members: [B2] });
    // The excluded claim was another one (not the store's NAR): not this path's revocation.
    const other = { supporters: new Set([B1, B2]), claims: new Map([[B2, new Set([3])]]) };
    expect(classify(STORE, d, other).category).toBe('no-quorum-now');
    // Excluded for another reason (a key not valid yet): no revocation to report.
    const early = decision(says(B1, GOOD), excluded(B2, 7, 'signed under k1, not-yet-valid'));
    expect(classify(STORE, early, former).category).toBe('no-quorum-now');
    // Only claims that do not count: something was said, so not unknown.
    const none = decision(says(B1), excluded(B2, 7, 'signed under k1, unknown'), says(B3));
    expect(classify(STORE, none, former).category).toBe('no-quorum-now');
  });

  test('is distrusted when a former supporter is distrusted for a fork; revoked comes first', () => {
    const fork = missing(B3, 'distrusted: fork: two roots for size 12');
    const d = decision(says(B1, GOOD), says(B2), fork);
    expect(classify(STORE, d, { supporters: new Set([B1, B3]) })).toMatchObject({
      category: 'distrusted',
      members: [B3],
    });
    expect(classify(STORE, d).category).toBe('no-quorum-now');
    const both = decision(says(B1, GOOD), missing(B2, 'revoked: since T'), fork);
    expect(classify(STORE, both, { supporters: new Set([B2, B3]) }).category).toBe('revoked');
    // Nobody says anything now, but a former supporter forked: still named.
    const gone = decision(says(B1), says(B2), fork);
    expect(classify(STORE, gone, { supporters: new Set([B3]) }).category).toBe('distrusted');
  });

  test('a trusted path with a distrusted log is still ok while the others keep the quorum', () => {
    const d = decision(says(B1, GOOD), says(B2, GOOD), missing(B3, 'distrusted: fork'));
    expect(classify(STORE, d, { supporters: new Set([B1, B2, B3]) }).category).toBe('ok');
  });
});

describe('compareWithStore()', () => {
  test('compares references as sets, in any order', () => {
    const two = { ...STORE, references: ['a-x', 'b-y'].sort() };
    const answer = { narHash: STORE.narHash, narSize: 744, references: ['b-y', 'a-x'] };
    expect(compareWithStore(answer, two)).toEqual([]);
    expect(compareWithStore({ ...answer, references: ['a-x'] }, two)).toEqual(['references']);
    expect(compareWithStore({ ...answer, references: ['a-x', 'c-z'] }, two)).toEqual([
      'references',
    ]);
  });
});

describe('advice()', () => {
  test('names the referrers query, the delete and the rebuild of the deriver', () => {
    const f = classify(STORE, decision(says(B1, EVIL), says(B2, EVIL)));
    const steps = advice(STORE, f);
    expect(steps[0]).toMatch(/^nix-store --query --referrers \/nix\/store\/mmn0.*-demo /);
    expect(steps[1]).toMatch(/^nix-store --delete \/nix\/store\/mmn0.*-demo /);
    expect(steps[2]).toMatch(/^nix-store --realise --check \/nix\/store\/87vx.*-demo\.drv /);
    const noDeriver: LocalPath = {
      path: STORE.path,
      hashPart: STORE.hashPart,
      narHash: STORE.narHash,
      narSize: STORE.narSize,
      references: STORE.references,
    };
    expect(advice(noDeriver, f)).toHaveLength(2);
  });
});
