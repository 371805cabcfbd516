import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { KernelWorld } from '../../test/support/kernel-cases.js';
import { TlogError } from './errors.js';
import {
  FORK_EVIDENCE_HEADER,
  formatForkEvidence,
  parseForkEvidence,
  verifyForkEvidence,
} from './evidence.js';
import { SIG_TYPE_ED25519, formatVerifierKey, newSigner, parseVerifierKey } from './keys.js';
import { proveCompleteConsistency } from './proof.js';
import { type ForkEvidence, relateCheckpoints } from './relation.js';

const signer = newSigner('evidence.test/log', SIG_TYPE_ED25519, new Uint8Array(32).fill(4));
const verifier = parseVerifierKey(formatVerifierKey(signer));
const world = new KernelWorld(signer);

async function fork(last: ['honest' | 'forked', number], next: ['honest' | 'forked', number]) {
  const a = await world.checkpoint(...last);
  const b = await world.checkpoint(...next);
  const [small, large] = a.treeSize <= b.treeSize ? [a, b] : [b, a];
  const proof =
    small.treeSize === large.treeSize
      ? []
      : await proveCompleteConsistency(
          small.treeSize,
          large.treeSize,
          world.tree(large === a ? last[0] : next[0]),
        );
  const relation = relateCheckpoints(a, b, proof);
  if (relation.kind !== 'fork') throw new Error(`bug: ${relation.kind}`);
  return relation.evidence;
}

describe('fork evidence', () => {
  test('formats as header, proof lines, blank line, the two notes; parses back', async () => {
    const evidence = await fork(['honest', 5], ['forked', 9]);
    const text = formatForkEvidence(evidence);
    expect(text.startsWith(`${FORK_EVIDENCE_HEADER}\n`)).toBe(true);
    expect(text).toContain(`\n\n${evidence.notes[0]}\n${evidence.notes[1]}`);
    expect(formatForkEvidence(parseForkEvidence(text))).toBe(text);
    expect(verifyForkEvidence(text, [verifier]).origin).toBe('evidence.test/log');
  });

  test('verifyForkEvidence() refuses every one-character change', async () => {
    for (const evidence of [
      await fork(['honest', 5], ['forked', 9]),
      await fork(['honest', 9], ['forked', 9]),
      await fork(['honest', 4], ['forked', 9]),
    ]) {
      const text = formatForkEvidence(evidence);
      verifyForkEvidence(text, [verifier]);
      for (let i = 0; i < text.length; i++) {
        const edited = `${text.slice(0, i)}${text[i] === 'A' ? 'B' : 'A'}${text.slice(i + 1)}`;
        expect(() => verifyForkEvidence(edited, [verifier]), `change at ${i}`).toThrow(TlogError);
      }
      // Nor lines dropped or added.
      const lines = text.split('\n');
      for (let i = 0; i < lines.length; i++) {
        const dropped = [...lines.slice(0, i), ...lines.slice(i + 1)].join('\n');
        expect(() => verifyForkEvidence(dropped, [verifier]), `line ${i} dropped`).toThrow(
          TlogError,
        );
      }
      expect(() => verifyForkEvidence(`${text}\n`, [verifier])).toThrow(TlogError);
    }
  });

  test('verifyForkEvidence() refuses consistent checkpoints, swapped notes and other keys', async () => {
    const a = await world.checkpoint('honest', 5);
    const b = await world.checkpoint('honest', 9);
    const consistent: ForkEvidence = {
      notes: [a.note, b.note],
      proof: await proveCompleteConsistency(5, 9, world.tree('honest')),
    };
    expect(() => verifyForkEvidence(consistent, [verifier])).toThrow(/not evidence of a fork/);
    expect(() => formatForkEvidence({ ...consistent, notes: [b.note, a.note] })).toThrow(
      /smaller checkpoint must come first/,
    );
    const real = await fork(['honest', 5], ['forked', 9]);
    const other = newSigner('evidence.test/log', SIG_TYPE_ED25519, new Uint8Array(32).fill(5));
    expect(() => verifyForkEvidence(real, [parseVerifierKey(formatVerifierKey(other))])).toThrow(
      TlogError,
    );
    // The same history signed by two logs of different origins is no fork of either.
    const elsewhere = new KernelWorld(
      newSigner('elsewhere.test/log', SIG_TYPE_ED25519, new Uint8Array(32).fill(4)),
    );
    const c = await elsewhere.checkpoint('forked', 9);
    expect(() =>
      verifyForkEvidence({ notes: [real.notes[0], c.note], proof: real.proof }, [
        verifier,
        parseVerifierKey(formatVerifierKey(elsewhere.signer)),
      ]),
    ).toThrow(TlogError);
  });

  test('parseForkEvidence() throws only TlogError on arbitrary and mutated text (property)', async () => {
    const text = formatForkEvidence(await fork(['honest', 5], ['forked', 9]));
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string({ maxLength: 400 }),
          fc
            .tuple(fc.nat(text.length), fc.nat(text.length), fc.string({ maxLength: 8 }))
            .map(([i, j, s]) => text.slice(0, Math.min(i, j)) + s + text.slice(Math.max(i, j))),
        ),
        (input) => {
          try {
            verifyForkEvidence(input, [verifier]);
            return input === text;
          } catch (error) {
            return error instanceof TlogError;
          }
        },
      ),
      { numRuns: 500 },
    );
  });
});
