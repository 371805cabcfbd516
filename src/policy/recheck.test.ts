/**
 * Re-checking narinfos whose evidence comes from an identity's log: the proof verifies under
 * the log keys the identity's statements name (carried in the narinfo, or given), valid when
 * the witnesses cosigned the checkpoint, and a revocation since T leaves only what was cosigned
 * before T. (Static logs and caches: test/integration/verify.test.ts, with a real proxy and Nix.)
 */
import { createHash } from 'node:crypto';
import { describe, expect, test } from 'vitest';
import { claimFromJson, formatEntry } from '../claim/index.js';
import {
  checkStatement,
  formatStatement,
  signStatement,
  statementHash,
} from '../identity/index.js';
import {
  SIG_TYPE_COSIGNATURE_V1,
  encodeBase64,
  formatCheckpoint,
  formatTlogProof,
  formatVerifierKey,
  newSigner,
  proveInclusion,
  signNote,
  treeHash,
  type NoteSigner,
} from '../tlog/index.js';
import { logKey, logSigner, rootSigner } from '../../test/support/identity.js';
import { makeClaim } from '../../test/support/claims.js';
import { MemoryTree } from '../../test/support/memory-tree.js';
import { parsePolicy } from './policy.js';
import { STATEMENT_FIELD, recheckNarInfo } from './recheck.js';

const ORIGIN = 'builder1.example.org/log';
const root = rootSigner();
/** Witness `name` cosigning at `at`. */
const witnessAt = (name: string, at: number): NoteSigner =>
  newSigner(name, SIG_TYPE_COSIGNATURE_V1, createHash('sha256').update(name).digest(), {
    now: () => at,
  });
const witness = (at: number) => witnessAt('witness.example', at);
/** The policy: builder 1's identity alone decides; `quorum`, a quorum line (or w, or none). */
const policy = (quorum: boolean | string) =>
  parsePolicy(
    [
      `identity ${formatVerifierKey(root)} ${ORIGIN} https://log.builder1.example.org`,
      'trust one 1 builder1.example.org/log',
      'decide one',
      `witness w ${formatVerifierKey(witness(0))}`,
      `witness a ${formatVerifierKey(witnessAt('a.example', 0))}`,
      `witness b ${formatVerifierKey(witnessAt('b.example', 0))}`,
      'group ab all a b',
      typeof quorum === 'string' ? quorum : quorum ? 'quorum w' : 'quorum none',
      '',
    ].join('\n'),
  );

/** Statement `sequence` of the chain: the given log keys and revocations. */
function chain(
  steps: {
    keys: { key: string; from: number; until?: number }[];
    revoked?: { key: string; since: number }[];
  }[],
): string[] {
  const notes: string[] = [];
  let previous: string | undefined;
  for (const [sequence, step] of steps.entries()) {
    const s = checkStatement({
      identity: 'builder1.example.org',
      sequence,
      ...(previous === undefined ? {} : { previous }),
      issued: 1000 + sequence,
      keys: step.keys.map((k) => ({ kind: 'log' as const, ...k })),
      revocations: (step.revoked ?? []).map((r) => ({ kind: 'log' as const, ...r })),
    });
    previous = statementHash(formatStatement(s));
    notes.push(signStatement(s, root));
  }
  return notes;
}

const claim = makeClaim(1);
/** A narinfo for `claim` with a proof from a checkpoint signed by `signers`, and `notes`. */
async function narinfo(signers: NoteSigner[], notes: readonly string[]): Promise<string> {
  const tree = new MemoryTree();
  const entries = [makeClaim(0), claim].map((c) => Buffer.from(formatEntry(claimFromJson(c))));
  for (const e of entries) tree.appendEntry(e);
  const checkpoint = signNote(
    formatCheckpoint({
      origin: ORIGIN,
      treeSize: 2,
      rootHash: await treeHash(2, tree),
      extensions: [],
    }),
    signers,
  );
  const proof = formatTlogProof({
    index: 1,
    inclusionProof: await proveInclusion(1, 2, tree),
    checkpoint,
    extra: entries[1] as Buffer,
  });
  return [
    `StorePath: ${claim.storePath}`,
    'URL: nar/x.nar',
    'Compression: none',
    `NarHash: ${claim.narHash}`,
    `NarSize: ${claim.narSize}`,
    `References: ${claim.references.join(' ')}`,
    `Accord-Proof: ${encodeBase64(Buffer.from(proof))}`,
    ...notes.map((n) => `${STATEMENT_FIELD}: ${encodeBase64(Buffer.from(n))}`),
    '',
  ].join('\n');
}

describe('recheckNarInfo with identity logs', () => {
  const k1 = logKey(1, ORIGIN);
  const k2 = logKey(2, ORIGIN);
  const s1 = logSigner(1, ORIGIN);
  const s2 = logSigner(2, ORIGIN);

  test('a rotated key: old and new checkpoints verify with the chain the narinfo carries', async () => {
    const notes = chain([
      { keys: [{ key: k1, from: 0 }] },
      {
        keys: [
          { key: k1, from: 0, until: 5000 },
          { key: k2, from: 4000 },
        ],
      },
    ]);
    const old = recheckNarInfo(policy(true), await narinfo([s1, witness(3000)], notes));
    expect(old.ok, old.reason).toBe(true);
    expect(recheckNarInfo(policy(true), await narinfo([s2, witness(6000)], notes)).ok).toBe(true);
    // Cosigned when the key was not valid: before its from, after its until.
    const early = recheckNarInfo(policy(true), await narinfo([s2, witness(3000)], notes));
    expect(early.reason).toMatch(/not a valid key of builder1\.example\.org at 3000/);
    expect(recheckNarInfo(policy(true), await narinfo([s1, witness(5000)], notes)).ok).toBe(false);
    // No time without witnesses: a key the statements list counts.
    expect(recheckNarInfo(policy(false), await narinfo([s2], notes)).ok).toBe(true);
  });

  test('no statements, statements by another root, a key the statements do not name: refused', async () => {
    const notes = chain([{ keys: [{ key: k1, from: 0 }] }]);
    const none = recheckNarInfo(policy(true), await narinfo([s1, witness(3000)], []));
    expect(none.reason).toMatch(/no key statement of builder1\.example\.org/);
    // Given from a file instead, they count.
    expect(
      recheckNarInfo(policy(true), await narinfo([s1, witness(3000)], []), { statements: notes })
        .ok,
    ).toBe(true);
    const other = rootSigner('builder1.example.org', 'look-alike');
    const forged = signStatement(
      checkStatement({
        identity: 'builder1.example.org',
        sequence: 0,
        issued: 1000,
        keys: [{ kind: 'log', key: k2, from: 0 }],
        revocations: [],
      }),
      other,
    );
    const r = recheckNarInfo(policy(true), await narinfo([s2, witness(3000)], [forged]));
    expect(r.reason).toMatch(/no key statement/);
    const unnamed = recheckNarInfo(policy(true), await narinfo([s2, witness(3000)], notes));
    expect(unnamed.reason).toMatch(
      /signed by no log key the statements of builder1\.example\.org name/,
    );
  });

  test('a revocation since T: checkpoints cosigned before T count, later ones and undated ones do not', async () => {
    const notes = chain([
      { keys: [{ key: k1, from: 0 }] },
      {
        keys: [
          { key: k1, from: 0 },
          { key: k2, from: 6000 },
        ],
        revoked: [{ key: k1, since: 5000 }],
      },
    ]);
    expect(recheckNarInfo(policy(true), await narinfo([s1, witness(4999)], notes)).ok).toBe(true);
    const after = recheckNarInfo(policy(true), await narinfo([s1, witness(5000)], notes));
    expect(after.reason).toMatch(
      /revoked since 5000, and the witness quorum cosigned this checkpoint at 5000/,
    );
    // The new key's checkpoint after T may hold what the revoked key added: not offline.
    expect(recheckNarInfo(policy(true), await narinfo([s2, witness(7000)], notes)).ok).toBe(false);
    const undated = recheckNarInfo(policy(false), await narinfo([s1], notes));
    expect(undated.reason).toMatch(/no witness quorum dates this checkpoint/);
    // A witness the quorum does not need dates nothing, even cosigning early.
    expect(recheckNarInfo(policy(false), await narinfo([s1, witness(10)], notes)).reason).toMatch(
      /no witness quorum dates/,
    );
    // A revocation published after the proxy served: given with --statements, it counts.
    const served = await narinfo([s1, witness(5500)], notes.slice(0, 1));
    expect(recheckNarInfo(policy(true), served).ok).toBe(true);
    expect(recheckNarInfo(policy(true), served, { statements: notes }).ok).toBe(false);
  });

  test('the time is when the whole quorum had cosigned: one early witness cannot backdate past a revocation', async () => {
    const notes = chain([
      { keys: [{ key: k1, from: 0 }] },
      { keys: [{ key: k1, from: 0 }], revoked: [{ key: k1, since: 5000 }] },
    ]);
    const both = [s1, witnessAt('a.example', 4000), witnessAt('b.example', 6000)];
    const all = recheckNarInfo(policy('quorum ab'), await narinfo(both, notes));
    expect(all.reason).toMatch(/the witness quorum cosigned this checkpoint at 6000/);
    // With a quorum of a alone, a's time is the quorum's.
    expect(recheckNarInfo(policy('quorum a'), await narinfo(both, notes)).ok).toBe(true);
    // b is no part of quorum a: its early cosignature gives no time to a checkpoint a saw late.
    const bEarly = [s1, witnessAt('a.example', 6000), witnessAt('b.example', 10)];
    expect(recheckNarInfo(policy('quorum a'), await narinfo(bEarly, notes)).ok).toBe(false);
  });

  test('a revocation counts for its own log only, and not once its key was retired', async () => {
    const other = logKey(7, 'elsewhere.example.org/log');
    const notes = chain([
      {
        keys: [
          { key: k1, from: 0 },
          { key: k2, from: 0, until: 2000 },
        ],
      },
      {
        keys: [
          { key: k1, from: 0 },
          { key: k2, from: 0, until: 2000 },
        ],
        revoked: [
          { key: other, since: 100 },
          { key: k2, since: 3000 },
        ],
      },
    ]);
    const r = recheckNarInfo(policy(true), await narinfo([s1, witness(9000)], notes));
    expect(r.ok, r.reason).toBe(true);
    // Undated, the retired key's revocation counts: its signature could be from any time.
    expect(recheckNarInfo(policy(false), await narinfo([s2], notes)).reason).toMatch(
      /revoked since 3000, and no witness quorum dates/,
    );
    // The reason names the statements it was checked under.
    expect(r.reason).toContain('key statements: builder1.example.org up to statement 1');
  });

  test('a malformed statement field refuses the narinfo; it does not throw', async () => {
    const text = await narinfo([s1, witness(3000)], []);
    const r = recheckNarInfo(policy(true), `${text}${STATEMENT_FIELD}: %%%not base64\n`);
    expect(r.ok).toBe(false);
    expect(r.reason).toMatch(/^evidence field 2: /);
  });

  test('statements that contradict each other refuse the identity’s proofs', async () => {
    const [first = ''] = chain([{ keys: [{ key: k1, from: 0 }] }]);
    const a = chain([{ keys: [{ key: k1, from: 0 }] }, { keys: [{ key: k1, from: 0 }] }])[1] ?? '';
    const b = chain([{ keys: [{ key: k1, from: 0 }] }, { keys: [{ key: k2, from: 0 }] }])[1] ?? '';
    const r = recheckNarInfo(policy(true), await narinfo([s1, witness(3000)], [first, a, b]));
    expect(r.reason).toMatch(/key statements of builder1\.example\.org are refused/);
  });
});
