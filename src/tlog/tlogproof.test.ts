import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { MemoryTree, testEntry } from '../../test/support/memory-tree.js';
import { formatCheckpoint } from './checkpoint.js';
import { TlogError } from './errors.js';
import { hashLeaf } from './hash.js';
import { SIG_TYPE_COSIGNATURE_V1, SIG_TYPE_ED25519, formatVerifierKey, newSigner } from './keys.js';
import { signNote } from './note.js';
import { parseTlogPolicy } from './policy.js';
import { proveInclusion } from './proof.js';
import { type TlogProof, formatTlogProof, parseTlogProof, verifyTlogProof } from './tlogproof.js';
import { treeHash } from './tree.js';

const log = newSigner('example.com/log', SIG_TYPE_ED25519, new Uint8Array(32).fill(1));
const witnesses = [1, 2, 3].map((i) =>
  newSigner(`w${i}.example`, SIG_TYPE_COSIGNATURE_V1, new Uint8Array(32).fill(20 + i), {
    now: () => 1_700_000_000 + i,
  }),
);
const POLICY = parseTlogPolicy(
  [
    `log ${formatVerifierKey(log)}`,
    ...witnesses.map((w, i) => `witness W${i + 1} ${formatVerifierKey(w)}`),
    'group two 2 W1 W2 W3',
    'quorum two',
    '',
  ].join('\n'),
);

async function makeProof(index: number, cosigners = witnesses, extra?: Uint8Array) {
  const tree = new MemoryTree();
  for (let i = 0; i < 11; i++) tree.appendEntry(testEntry(i));
  const rootHash = await treeHash(11, tree);
  const text = formatCheckpoint({
    origin: 'example.com/log',
    treeSize: 11,
    rootHash,
    extensions: [],
  });
  const checkpoint = signNote(text, [log, ...cosigners]);
  const inclusionProof = await proveInclusion(index, 11, tree);
  return extra === undefined
    ? { index, inclusionProof, checkpoint }
    : { index, inclusionProof, checkpoint, extra };
}

/** A proof with its byte fields as hex, for comparison whatever Uint8Array subclass holds them. */
function normalise(p: TlogProof) {
  const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
  return { ...p, extra: p.extra && hex(p.extra), inclusionProof: p.inclusionProof.map(hex) };
}

describe('tlog-proof', () => {
  test('a proof formats as the spec lays out and verifies with the policy', async () => {
    const proof = await makeProof(6, witnesses, Buffer.from('extra data'));
    const text = formatTlogProof(proof);
    expect(text.split('\n').slice(0, 3)).toEqual([
      'c2sp.org/tlog-proof@v1',
      `extra ${Buffer.from('extra data').toString('base64')}`,
      'index 6',
    ]);
    const parsed = parseTlogProof(text);
    expect(normalise(parsed)).toEqual(normalise(proof));
    expect(formatTlogProof(parsed)).toBe(text);
    const verified = verifyTlogProof(parsed, hashLeaf(testEntry(6)), POLICY);
    expect(verified.checkpoint.treeSize).toBe(11);
    expect(verified.cosigners).toEqual([
      { name: 'W1', timestamp: 1_700_000_001 },
      { name: 'W2', timestamp: 1_700_000_002 },
      { name: 'W3', timestamp: 1_700_000_003 },
    ]);
  });

  test('verifyTlogProof() refuses a wrong leaf, a missing quorum and a foreign log', async () => {
    const proof = await makeProof(3);
    expect(() => verifyTlogProof(proof, hashLeaf(testEntry(4)), POLICY)).toThrow(/inclusion/);
    const weak = await makeProof(3, witnesses.slice(0, 1));
    expect(() => verifyTlogProof(weak, hashLeaf(testEntry(3)), POLICY)).toThrow(/quorum/);
    expect(
      verifyTlogProof(await makeProof(3, witnesses.slice(1)), hashLeaf(testEntry(3)), POLICY)
        .cosigners,
    ).toHaveLength(2);
    const other = newSigner('example.com/log', SIG_TYPE_ED25519, new Uint8Array(32).fill(9));
    const foreign = {
      ...proof,
      checkpoint: signNote(`${proof.checkpoint.split('\n\n')[0] ?? ''}\n`, [other, ...witnesses]),
    };
    expect(() => verifyTlogProof(foreign, hashLeaf(testEntry(3)), POLICY)).toThrow(TlogError);
  });

  test('a proof without extra data round-trips', async () => {
    const proof = await makeProof(0);
    const parsed = parseTlogProof(formatTlogProof(proof));
    expect(parsed.extra).toBeUndefined();
    expect(normalise(parsed)).toEqual(normalise(proof));
  });

  test.each([
    ['a wrong header', (t: string) => t.replace('tlog-proof@v1', 'tlog-proof@v2')],
    ['no index', (t: string) => t.replace(/index \d+\n/, '')],
    ['a leading zero index', (t: string) => t.replace('index 6', 'index 06')],
    ['a short hash', (t: string) => t.replace(/\n([A-Za-z0-9+/]{43}=)\n/, '\nAAAA\n')],
    ['no blank line', (t: string) => t.replace('\n\nexample.com', '\nexample.com')],
    ['bad extra', (t: string) => t.replace('index', 'extra !!\nindex')],
    ['a truncated checkpoint', (t: string) => t.slice(0, -10)],
  ])('parseTlogProof() rejects a proof with %s', async (_, mutate) => {
    const text = formatTlogProof(await makeProof(6));
    expect(() => parseTlogProof(mutate(text))).toThrow(TlogError);
  });

  test('parsedCheckpoint skips parsing only that exact note', async () => {
    const proof = await makeProof(6);
    const text = formatTlogProof(proof);
    const parsed = parseTlogProof(text, { parsedCheckpoint: proof.checkpoint });
    expect(normalise(parsed)).toEqual(normalise(proof));
    // The named note is taken as parsed: even text that is no note passes (the caller vouches).
    const odd = `${text.slice(0, text.indexOf('\n\n'))}\n\nnot a note`;
    expect(() => parseTlogProof(odd)).toThrow(TlogError);
    expect(parseTlogProof(odd, { parsedCheckpoint: 'not a note' }).checkpoint).toBe('not a note');
    // Any other checkpoint text is parsed as usual, so a broken one is still refused.
    const broken = text.slice(0, -10);
    expect(() => parseTlogProof(broken, { parsedCheckpoint: proof.checkpoint })).toThrow(TlogError);
  });

  test('arbitrary and mutated proofs throw only TlogError (property)', async () => {
    const text = formatTlogProof(await makeProof(6));
    const mutated = fc
      .tuple(fc.nat(text.length), fc.string({ maxLength: 3 }), fc.nat(3))
      .map(([at, s, cut]) => text.slice(0, at) + s + text.slice(at + cut));
    fc.assert(
      fc.property(fc.oneof(fc.string(), mutated), (input) => {
        try {
          verifyTlogProof(parseTlogProof(input), hashLeaf(testEntry(6)), POLICY);
        } catch (e) {
          expect(e).toBeInstanceOf(TlogError);
        }
      }),
      { numRuns: 2000 },
    );
  });
});
