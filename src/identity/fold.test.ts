import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import {
  Chain,
  guixKey,
  logKey,
  logSigner,
  nixKey,
  rootSigner,
  verifierOf,
} from '../../test/support/identity.js';
import { openNote, signNote } from '../tlog/index.js';
import { IdentityError } from './errors.js';
import { type FoldResult, foldStatements, verifyContradiction } from './fold.js';
import { signStatement, statementHash } from './note.js';
import { guixKeysAt, isRevoked, keyStatus, keysAt, logKeysAt, nixKeysAt } from './query.js';
import type { KeyStatement } from './statement.js';

const root = rootSigner();
const rootKey = verifierOf(root);
const DAY = 86_400;
const T0 = 1_780_000_000;

/** A chain: statement 0 with log key 1, statement 1 rotating to log key 2 with a week of overlap. */
function rotation(): Chain {
  const chain = new Chain(root);
  chain.next({
    issued: T0,
    keys: [{ kind: 'log', key: logKey(1), from: T0 - 100 * DAY }],
    revocations: [],
  });
  chain.next({
    issued: T0 + 10 * DAY,
    keys: [
      { kind: 'log', key: logKey(1), from: T0 - 100 * DAY, until: T0 + 17 * DAY },
      { kind: 'log', key: logKey(2), from: T0 + 10 * DAY },
    ],
    revocations: [],
  });
  return chain;
}

/** The `i`th of `list`, which the test made sure is there. */
function at<T>(list: readonly T[], i: number): T {
  const item = list[i];
  if (item === undefined) throw new Error(`no item ${i}`);
  return item;
}

function ok(result: FoldResult) {
  if (result.kind !== 'ok') throw new Error(`refused: ${result.refusal.message}`);
  if (result.state === undefined) throw new Error('no state');
  return result.state;
}

function refused(result: FoldResult, code: string) {
  if (result.kind !== 'refused') throw new Error('was not refused');
  expect(result.refusal.code).toBe(code);
  return result;
}

/** The statement after `chain`'s last, with `change` applied, signed (not added to the chain). */
function after(chain: Chain, change: Partial<KeyStatement>, last: KeyStatement): string {
  const statement: KeyStatement = {
    ...last,
    sequence: chain.notes.length,
    previous: chain.head() as string,
    ...change,
  };
  return signStatement(statement, root);
}

const second: KeyStatement = {
  identity: root.name,
  sequence: 1,
  issued: T0 + 10 * DAY,
  keys: [
    { kind: 'log', key: logKey(1), from: T0 - 100 * DAY, until: T0 + 17 * DAY },
    { kind: 'log', key: logKey(2), from: T0 + 10 * DAY },
  ],
  revocations: [{ kind: 'log', key: logKey(0), since: T0 - 50 * DAY }],
};

describe('foldStatements()', () => {
  test('follows a rotation: the new key from its start, the old until its end', () => {
    const state = ok(foldStatements(rootKey, rotation().notes));
    expect(state.sequence).toBe(1);
    expect(state.name).toBe('builder1.example.org');
    expect(state.notes).toHaveLength(2);
    const names = (t: number) => logKeysAt(state, t).map((v) => v.keyId);
    const [k1, k2] = [logSigner(1).keyId, logSigner(2).keyId];
    expect(names(T0)).toEqual([k1]);
    expect(new Set(names(T0 + 10 * DAY))).toEqual(new Set([k1, k2]));
    expect(new Set(names(T0 + 12 * DAY))).toEqual(new Set([k1, k2]));
    expect(names(T0 + 17 * DAY - 1)).toHaveLength(2);
    expect(names(T0 + 17 * DAY)).toEqual([k2]);
    // A checkpoint signed by both keys during the overlap opens with either set.
    const both = signNote(
      'builder1.example.org/log\n5\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n',
      [logSigner(1), logSigner(2)],
    );
    for (const t of [T0, T0 + 12 * DAY, T0 + 20 * DAY])
      expect(openNote(both, logKeysAt(state, t)).verified.length).toBeGreaterThan(0);
  });

  test('no statements give no state; the order notes come in does not matter', () => {
    expect(foldStatements(rootKey, [])).toEqual({ kind: 'ok', state: undefined, ignored: [] });
    const chain = rotation();
    chain.next({ ...second, issued: T0 + 20 * DAY, keys: second.keys.slice(1) });
    const inOrder = ok(foldStatements(rootKey, chain.notes));
    fc.assert(
      fc.property(
        fc.shuffledSubarray(chain.notes, { minLength: 3, maxLength: 3 }),
        fc.nat({ max: 2 }),
        (notes, dup) => {
          const again = [...notes, notes[dup] as string];
          expect(ok(foldStatements(rootKey, again))).toEqual(inOrder);
        },
      ),
      { numRuns: 30 },
    );
  });

  test('extends a state it was given, and refuses a state under another root', () => {
    const chain = rotation();
    const first = ok(foldStatements(rootKey, chain.notes.slice(0, 1)));
    expect(ok(foldStatements(rootKey, chain.notes, first))).toEqual(
      ok(foldStatements(rootKey, chain.notes)),
    );
    expect(() =>
      foldStatements(verifierOf(rootSigner('builder1.example.org', 'x')), [], first),
    ).toThrow(IdentityError);
  });

  test('sets aside a statement not signed by the root (not-root) and keeps the chain', () => {
    const chain = rotation();
    const thief = rootSigner('builder1.example.org', 'thief');
    const forged = signStatement(
      { ...second, sequence: 2, previous: chain.head() as string, issued: T0 + 11 * DAY },
      thief,
    );
    const result = foldStatements(rootKey, [...chain.notes, forged, 'junk\n\n— x AAAAAAA=\n']);
    expect(result.kind).toBe('ok');
    expect(result.ignored.map((r) => r.code)).toEqual(['not-root', 'not-root']);
    expect(result.ignored[0]?.notes).toEqual([forged]);
    expect(ok(result).sequence).toBe(1);
  });

  test('refuses a first statement that is not sequence 0 (first)', () => {
    const chain = rotation();
    refused(foldStatements(rootKey, chain.notes.slice(1)), 'first');
  });

  test('refuses a missing statement (gap), keeping the state before it', () => {
    const chain = rotation();
    chain.next({ ...second, issued: T0 + 20 * DAY });
    const result = refused(
      foldStatements(rootKey, [chain.notes[0] as string, chain.notes[2] as string]),
      'gap',
    );
    expect(result.state?.sequence).toBe(0);
  });

  test('refuses two different statements with one sequence (equivocation), with both as evidence', () => {
    const chain = rotation();
    const other = after(
      chain,
      {
        sequence: 1,
        previous: statementHash(`${chain.notes[0]?.split('\n\n')[0] ?? ''}\n`),
        issued: T0 + 11 * DAY,
      },
      second,
    );
    const result = refused(foldStatements(rootKey, [...chain.notes, other]), 'equivocation');
    expect(new Set(result.refusal.notes)).toEqual(new Set([chain.notes[1], other]));
    expect(result.state?.sequence).toBe(0);
    expect(
      verifyContradiction(rootKey, at(result.refusal.notes, 0), at(result.refusal.notes, 1)).code,
    ).toBe('equivocation');
    // Against a state that already holds statement 1.
    const base = ok(foldStatements(rootKey, chain.notes));
    refused(foldStatements(rootKey, [other], base), 'equivocation');
  });

  test('refuses a previous that is not the last statement hash (chain)', () => {
    const chain = rotation();
    const bad = after(
      chain,
      { previous: statementHash('something else\n'), issued: T0 + 20 * DAY },
      second,
    );
    const result = refused(foldStatements(rootKey, [...chain.notes, bad]), 'chain');
    expect(result.refusal.notes).toEqual([chain.notes[1], bad]);
    expect(verifyContradiction(rootKey, at(chain.notes, 1), bad).code).toBe('chain');
  });

  test('refuses an issued time before the last one (issued-back); the same time is fine', () => {
    const chain = rotation();
    refused(
      foldStatements(rootKey, [
        ...chain.notes,
        after(chain, { issued: T0 + 10 * DAY - 1 }, second),
      ]),
      'issued-back',
    );
    ok(
      foldStatements(rootKey, [
        ...chain.notes,
        after(chain, { issued: T0 + 10 * DAY, revocations: [] }, second),
      ]),
    );
  });

  describe('revocations', () => {
    const chain = new Chain(root);
    chain.next({
      issued: T0,
      keys: [{ kind: 'log', key: logKey(1), from: T0 - DAY }],
      revocations: [{ kind: 'log', key: logKey(0), since: T0 - 50 * DAY }],
    });
    const base: KeyStatement = {
      ...second,
      sequence: 1,
      issued: T0 + DAY,
      keys: [{ kind: 'log', key: logKey(1), from: T0 - DAY }],
    };

    test('a revocation dropped is refused (revocation-removed)', () => {
      refused(
        foldStatements(rootKey, [...chain.notes, after(chain, { ...base, revocations: [] }, base)]),
        'revocation-removed',
      );
    });

    test('a revocation moved later is refused (revocation-later); moved earlier or kept is fine', () => {
      const move = (since: number) =>
        after(chain, { ...base, revocations: [{ kind: 'log', key: logKey(0), since }] }, base);
      refused(
        foldStatements(rootKey, [...chain.notes, move(T0 - 50 * DAY + 1)]),
        'revocation-later',
      );
      ok(foldStatements(rootKey, [...chain.notes, move(T0 - 50 * DAY)]));
      ok(foldStatements(rootKey, [...chain.notes, move(T0 - 60 * DAY)]));
    });

    test('isRevoked() is false before since and true from since on, whatever the key validity says', () => {
      const revokeNow = after(
        chain,
        {
          ...base,
          revocations: [...base.revocations, { kind: 'log', key: logKey(1), since: T0 + 5 }],
        },
        base,
      );
      const state = ok(foldStatements(rootKey, [...chain.notes, revokeNow]));
      expect(isRevoked(state, 'log', logKey(1), T0 + 4)).toBe(false);
      expect(isRevoked(state, 'log', logKey(1), T0 + 5)).toBe(true);
      expect(keyStatus(state, 'log', logKey(1), T0 + 4)).toBe('valid');
      expect(keyStatus(state, 'log', logKey(1), T0 + 5)).toBe('revoked');
      expect(logKeysAt(state, T0 + 4)).toHaveLength(1);
      expect(logKeysAt(state, T0 + 5)).toEqual([]);
      expect(isRevoked(state, 'log', logKey(0), T0)).toBe(true);
      expect(isRevoked(state, 'nix', nixKey(0), T0)).toBe(false);
    });
  });

  describe('no retroactive trust', () => {
    const chain = new Chain(root);
    const issued0 = T0;
    chain.next({
      issued: issued0,
      keys: [
        // The first statement may name keys in use before it.
        { kind: 'log', key: logKey(1), from: T0 - 100 * DAY, until: T0 + 10 * DAY },
        { kind: 'nix', key: nixKey(1), from: T0 + 5 * DAY, until: T0 + 30 * DAY },
      ],
      revocations: [],
    });
    const issued = T0 + 20 * DAY; // after log key 1 expired, while nix key 1 is valid
    const next = (keys: KeyStatement['keys']) =>
      after(chain, { keys, revocations: [], issued }, { ...second, keys, revocations: [] });
    const log1 = {
      kind: 'log' as const,
      key: logKey(1),
      from: T0 - 100 * DAY,
      until: T0 + 10 * DAY,
    };
    const nix1 = { kind: 'nix' as const, key: nixKey(1), from: T0 + 5 * DAY, until: T0 + 30 * DAY };
    const cases: [string, KeyStatement['keys'], 'ok' | 'retroactive'][] = [
      [
        'a new key from before the statement',
        [log1, nix1, { kind: 'log', key: logKey(2), from: issued - 1 }],
        'retroactive',
      ],
      [
        'a new key from the statement on',
        [log1, nix1, { kind: 'log', key: logKey(2), from: issued }],
        'ok',
      ],
      [
        'a new Guix key from later',
        [log1, nix1, { kind: 'guix', key: guixKey(), from: issued + DAY }],
        'ok',
      ],
      ['a start moved earlier', [{ ...log1, from: T0 - 101 * DAY }, nix1], 'retroactive'],
      ['a start moved later', [{ ...log1, from: T0 - 99 * DAY }, nix1], 'ok'],
      ['an expired key extended', [{ ...log1, until: T0 + 11 * DAY }, nix1], 'retroactive'],
      [
        'an expired key made valid for good',
        [{ kind: 'log', key: logKey(1), from: log1.from }, nix1],
        'retroactive',
      ],
      ['a valid key extended', [log1, { ...nix1, until: T0 + 40 * DAY }], 'ok'],
      [
        'a valid key made valid for good',
        [log1, { kind: 'nix', key: nixKey(1), from: nix1.from }],
        'ok',
      ],
      ['a valid key cut short', [log1, { ...nix1, until: issued }], 'ok'],
      ['a key dropped', [nix1], 'ok'],
      ['a dropped key back later', [nix1, { ...log1, from: issued, until: issued + DAY }], 'ok'],
    ];
    test.each(cases)('%s', (_, keys, want) => {
      const result = foldStatements(rootKey, [...chain.notes, next(keys)]);
      if (want === 'ok') ok(result);
      else {
        refused(result, want);
        const r = result as Extract<FoldResult, { kind: 'refused' }>;
        expect(
          verifyContradiction(rootKey, at(r.refusal.notes, 0), at(r.refusal.notes, 1)).code,
        ).toBe(want);
      }
    });
  });

  test('verifyContradiction() refuses notes that are no evidence', () => {
    const chain = rotation();
    expect(() => verifyContradiction(rootKey, at(chain.notes, 0), at(chain.notes, 1))).toThrow(
      IdentityError,
    );
    expect(() => verifyContradiction(rootKey, at(chain.notes, 0), at(chain.notes, 0))).toThrow(
      IdentityError,
    );
    const thief = rootSigner('builder1.example.org', 'thief');
    const forged = signStatement(
      { ...second, previous: chain.head() as string, sequence: 2, issued: 0 },
      thief,
    );
    expect(() => verifyContradiction(rootKey, at(chain.notes, 1), forged)).toThrow(IdentityError);
  });
});

describe('queries', () => {
  test('nixKeysAt() and guixKeysAt() give parsed keys valid then; keysAt() gives their texts', () => {
    const chain = new Chain(root);
    const g = guixKey();
    chain.next({
      issued: T0,
      keys: [
        { kind: 'nix', key: nixKey(1), from: T0, until: T0 + DAY },
        { kind: 'nix', key: nixKey(2), from: T0 + DAY },
        { kind: 'guix', key: g, from: T0 },
      ],
      revocations: [],
    });
    const state = ok(foldStatements(rootKey, chain.notes));
    expect(nixKeysAt(state, T0).map((k) => k.name)).toEqual(['cache-1.example.org-1']);
    expect(nixKeysAt(state, T0 + DAY).map((k) => k.name)).toEqual(['cache-2.example.org-1']);
    expect(nixKeysAt(state, T0 - 1)).toEqual([]);
    expect(guixKeysAt(state, T0)).toHaveLength(1);
    expect(keysAt(state, 'guix', T0)).toEqual([g]);
    expect(keyStatus(state, 'nix', nixKey(1), T0 - 1)).toBe('not-yet-valid');
    expect(keyStatus(state, 'nix', nixKey(1), T0 + DAY)).toBe('expired');
    expect(keyStatus(state, 'nix', nixKey(3), T0)).toBe('unknown');
    expect(() => keyStatus(state, 'nix', 'not a key', T0)).toThrow(IdentityError);
  });
});
