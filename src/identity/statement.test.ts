import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import {
  CACHE_NIXOS_ORG_KEY,
  guixKey,
  logKey,
  nixKey,
  realGuixKey,
  rootSigner,
  verifierOf,
} from '../../test/support/identity.js';
import { formatVerifierKey } from '../tlog/index.js';
import { IdentityError } from './errors.js';
import { normalizeKeyText, parseGuixKey, parseLogKey, parseNixKey } from './keys.js';
import { parseStatementNote, signStatement, statementHash, verifyStatement } from './note.js';
import {
  type KeyStatement,
  MAX_STATEMENT_SIZE,
  formatStatement,
  parseStatement,
} from './statement.js';

const root = rootSigner();
const rootKey = verifierOf(root);
const PREVIOUS = statementHash('accord/keys/v1\nidentity builder1.example.org\n');

/** The example of docs/identity.md. */
const EXAMPLE: KeyStatement = {
  identity: 'builder1.example.org',
  sequence: 1,
  previous: PREVIOUS,
  issued: 1_780_000_000,
  keys: [
    { kind: 'nix', key: CACHE_NIXOS_ORG_KEY, from: 1_700_000_000 },
    { kind: 'log', key: logKey(2), from: 1_780_000_000 },
    { kind: 'log', key: logKey(1), from: 1_700_000_000, until: 1_780_604_800 },
    { kind: 'guix', key: realGuixKey(), from: 1_700_000_000 },
  ],
  revocations: [{ kind: 'log', key: logKey(0), since: 1_760_000_000 }],
};

const expectRefused = (f: () => unknown, code = 'malformed') => {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(IdentityError);
    expect((e as IdentityError).code).toBe(code);
    return;
  }
  throw new Error('was not refused');
};

describe('formatStatement() and parseStatement()', () => {
  test('formatStatement() writes the canonical order, parseStatement() reads it back', () => {
    const text = formatStatement(EXAMPLE);
    const lines = text.split('\n');
    expect(lines.slice(0, 5)).toEqual([
      'accord/keys/v1',
      'identity builder1.example.org',
      'sequence 1',
      `previous ${PREVIOUS}`,
      'issued 1780000000',
    ]);
    expect(lines.slice(5, 9).map((l) => l.split(' ')[0])).toEqual(['log', 'log', 'nix', 'guix']);
    expect(lines[9]).toBe(`revoke log ${logKey(0)} 1760000000`);
    expect(lines[10]).toBe('');
    expect(parseStatement(text)).toEqual(parseStatement(formatStatement(parseStatement(text))));
    expect(formatStatement(parseStatement(text))).toBe(text);
  });

  test('parseStatement() refuses lines out of canonical order', () => {
    const text = formatStatement(EXAMPLE);
    const lines = text.split('\n');
    const swapped = [...lines];
    [swapped[5], swapped[6]] = [swapped[6] as string, swapped[5] as string];
    expectRefused(() => parseStatement(swapped.join('\n')));
    const moved = [...lines.slice(0, 5), lines[7], lines[5], lines[6], ...lines.slice(8)];
    expectRefused(() => parseStatement(moved.join('\n')));
    const revokeFirst = [...lines.slice(0, 5), lines[9], ...lines.slice(5, 9), ...lines.slice(10)];
    expectRefused(() => parseStatement(revokeFirst.join('\n')));
  });

  test.each([
    ['no header', (t: string) => t.replace('accord/keys/v1\n', '')],
    ['another version', (t: string) => t.replace('accord/keys/v1', 'accord/keys/v2')],
    ['CRLF', (t: string) => t.replaceAll('\n', '\r\n')],
    ['no final newline', (t: string) => t.slice(0, -1)],
    ['a trailing space', (t: string) => t.replace('issued 1780000000', 'issued 1780000000 ')],
    ['two spaces', (t: string) => t.replace('sequence 1', 'sequence  1')],
    ['a leading zero', (t: string) => t.replace('issued 1780000000', 'issued 01780000000')],
    ['a plus sign', (t: string) => t.replace('sequence 1', 'sequence +1')],
    ['no previous', (t: string) => t.replace(/previous .*\n/, '')],
    [
      'previous of 31 bytes',
      (t: string) => t.replace(PREVIOUS, Buffer.alloc(31).toString('base64')),
    ],
    ['an unknown line', (t: string) => `${t}comment hello\n`],
    ['an empty line', (t: string) => `${t}\n`],
    ['a key line after a revocation', (t: string) => `${t}nix ${nixKey(9)} 1\n`],
    [
      'a time beyond the year 9999',
      (t: string) => t.replace('issued 1780000000', 'issued 253402300800'),
    ],
    [
      'issued before identity',
      (t: string) => t.replace(/identity (.*)\n(sequence .*\n)/, '$2identity $1\n'),
    ],
  ])('parseStatement() refuses %s', (_, edit) => {
    const text = formatStatement(EXAMPLE);
    const edited = edit(text);
    expect(edited).not.toBe(text);
    expectRefused(() => parseStatement(edited));
  });

  test.each<[string, Partial<KeyStatement>]>([
    ['statement 0 with a previous', { sequence: 0 }],
    [
      'a key listed twice',
      { keys: [...EXAMPLE.keys, { kind: 'nix', key: CACHE_NIXOS_ORG_KEY, from: 5 }] },
    ],
    [
      'a Guix key listed twice',
      {
        keys: [
          { kind: 'guix', key: realGuixKey(), from: 1 },
          { kind: 'guix', key: realGuixKey(), from: 2 },
        ],
      },
    ],
    ['until not after from', { keys: [{ kind: 'log', key: logKey(1), from: 5, until: 5 }] }],
    [
      'two Nix keys with one name',
      {
        keys: [
          { kind: 'nix', key: CACHE_NIXOS_ORG_KEY, from: 1 },
          { kind: 'nix', key: nixKey(1).replace(/^[^:]*/, 'cache.nixos.org-1'), from: 1 },
        ],
      },
    ],
    [
      'a log key named as the identity',
      { keys: [{ kind: 'log', key: logKey(1, 'builder1.example.org'), from: 1 }] },
    ],
    [
      'a key revoked twice',
      {
        revocations: [
          { kind: 'log', key: logKey(0), since: 1 },
          { kind: 'log', key: logKey(0), since: 2 },
        ],
      },
    ],
    ['a bad identity name', { identity: 'has space' }],
    ['an identity name with +', { identity: 'a+b' }],
    ['a negative time', { issued: -1 }],
    ['a fractional time', { issued: 1.5 }],
    [
      'a cosignature key as a log key',
      {
        keys: [
          {
            kind: 'log',
            key: formatVerifierKey({ ...verifierOf(rootSigner('w')), type: 4 }),
            from: 1,
          },
        ],
      },
    ],
    ['a Nix key as a log key', { keys: [{ kind: 'log', key: CACHE_NIXOS_ORG_KEY, from: 1 }] }],
    ['a log key as a Guix key', { keys: [{ kind: 'guix', key: logKey(1), from: 1 }] }],
    ['an unknown kind', { keys: [{ kind: 'pgp' as 'log', key: logKey(1), from: 1 }] }],
  ])('formatStatement() refuses %s', (_, change) => {
    expectRefused(() => formatStatement({ ...EXAMPLE, ...change }));
  });

  test('a statement over the size cap is refused', () => {
    const revocations = Array.from({ length: 256 }, (_, i) => ({
      kind: 'log' as const,
      key: logKey(i, `a-very-long-origin-name-for-log-number-${i}.example.org/${'x'.repeat(200)}`),
      since: i,
    }));
    expectRefused(() => formatStatement({ ...EXAMPLE, revocations }), 'limit');
    expectRefused(
      () => parseStatement(`accord/keys/v1\n${'x'.repeat(MAX_STATEMENT_SIZE)}\n`),
      'limit',
    );
  });

  test('keys must be in their canonical form', () => {
    expectRefused(() => parseNixKey(`${CACHE_NIXOS_ORG_KEY}\n`));
    expectRefused(() => parseNixKey(CACHE_NIXOS_ORG_KEY.replace('=', '')));
    expectRefused(() => parseLogKey(`${logKey(1)} `));
    expectRefused(() => parseGuixKey(realGuixKey().slice(0, -4)));
    // A Guix key file's advanced form reads as the same key.
    const file = `(public-key (ecc (curve Ed25519) (q #8D156F295D24B0D9A86FA5741A840FF2D24F60F7B6C4134814AD55625971B394#)))`;
    expect(normalizeKeyText('guix', file)).toBe(realGuixKey());
    expect(parseLogKey(logKey(3)).name).toBe('builder1.example.org/log');
  });
});

/** Arbitrary valid statements over a pool of keys. */
const keyPool = [
  ...[0, 1, 2, 3].map((i) => ({ kind: 'log' as const, key: logKey(i) })),
  { kind: 'log' as const, key: logKey(0, 'other.example/log') },
  ...[0, 1, 2].map((i) => ({ kind: 'nix' as const, key: nixKey(i) })),
  { kind: 'guix' as const, key: realGuixKey() },
  { kind: 'guix' as const, key: guixKey() },
];
const time = fc.integer({ min: 0, max: 4_000_000_000 });
const statementArb: fc.Arbitrary<KeyStatement> = fc
  .record({
    sequence: fc.nat({ max: 1000 }),
    issued: time,
    keys: fc.subarray(keyPool).chain((keys) =>
      fc
        .tuple(...keys.map(() => fc.tuple(time, fc.option(fc.integer({ min: 1, max: 1e6 })))))
        .map((times) =>
          keys.map((k, i) => {
            const [from, length] = times[i] as [number, number | null];
            return { ...k, from, ...(length === null ? {} : { until: from + length }) };
          }),
        ),
    ),
    revocations: fc
      .subarray(keyPool)
      .chain((keys) =>
        fc
          .tuple(...keys.map(() => time))
          .map((t) => keys.map((k, i) => ({ ...k, since: t[i] as number }))),
      ),
    previous: fc.uint8Array({ minLength: 32, maxLength: 32 }),
  })
  .map((r) => ({
    identity: 'builder1.example.org',
    sequence: r.sequence,
    ...(r.sequence === 0 ? {} : { previous: Buffer.from(r.previous).toString('base64') }),
    issued: r.issued,
    keys: r.keys,
    revocations: r.revocations,
  }));

describe('statement properties', () => {
  test('parseStatement(formatStatement(s)) gives back s in canonical order, whatever the order given', () => {
    fc.assert(
      fc.property(statementArb, (s) => {
        const text = formatStatement(s);
        const parsed = parseStatement(text);
        expect(formatStatement(parsed)).toBe(text);
        const shuffled = {
          ...s,
          keys: [...s.keys].reverse(),
          revocations: [...s.revocations].reverse(),
        };
        expect(formatStatement(shuffled)).toBe(text);
        expect(parsed.keys).toHaveLength(s.keys.length);
      }),
      { numRuns: 200 },
    );
  });

  test('parseStatement() and parseStatementNote() throw only IdentityError on any input', () => {
    const base = formatStatement(EXAMPLE);
    const inputs = fc.oneof(
      fc.string({ maxLength: 300 }),
      fc.string({ unit: 'binary', maxLength: 300 }),
      fc
        .tuple(fc.nat({ max: base.length }), fc.string({ maxLength: 20 }), fc.nat({ max: 20 }))
        .map(([at, insert, drop]) => base.slice(0, at) + insert + base.slice(at + drop)),
    );
    fc.assert(
      fc.property(inputs, (text) => {
        for (const f of [
          () => parseStatement(text),
          () => parseStatementNote(`${text}\n— builder1.example.org AAAAAAA=\n`),
          () => parseStatementNote(Buffer.from(text, 'latin1')),
          () => verifyStatement(text, rootKey),
        ]) {
          try {
            f();
          } catch (e) {
            expect(e).toBeInstanceOf(IdentityError);
          }
        }
      }),
      { numRuns: 2000 },
    );
  });
});

describe('signed statements', () => {
  const note = signStatement(EXAMPLE, root);

  test('verifyStatement() accepts the root-signed note and gives its hash', () => {
    const v = verifyStatement(note, rootKey);
    expect(v.statement).toEqual(parseStatement(formatStatement(EXAMPLE)));
    expect(v.note).toBe(note);
    expect(v.hash).toBe(statementHash(formatStatement(EXAMPLE)));
    expect(verifyStatement(Buffer.from(note), rootKey).text).toBe(v.text);
  });

  test('verifyStatement() refuses a note signed by another key with the root name', () => {
    const forged = signStatement(EXAMPLE, rootSigner('builder1.example.org', 'thief'));
    expectRefused(() => verifyStatement(forged, rootKey), 'signature');
  });

  test('verifyStatement() refuses a statement for another identity, and a second signature', () => {
    const other = rootSigner('builder2.example.org');
    const theirs = signStatement({ ...EXAMPLE, identity: 'builder2.example.org' }, other);
    expectRefused(() => verifyStatement(theirs, rootKey), 'signature');
    const [, sigLine] = note.split('\n\n');
    expectRefused(() => verifyStatement(`${note}${sigLine ?? ''}`, rootKey));
    const witness = signStatement(EXAMPLE, root).split('\n\n')[1] ?? '';
    expectRefused(() =>
      verifyStatement(`${note}${witness.replace('builder1', 'witness1')}`, rootKey),
    );
  });

  test('signStatement() refuses a root key named otherwise than the identity', () => {
    expectRefused(() => signStatement(EXAMPLE, rootSigner('someone.else')), 'signature');
  });

  test('every one-bit flip, byte deletion and byte insertion of a signed statement is refused', () => {
    const bytes = Buffer.from(note);
    let tried = 0;
    const refuse = (edited: Buffer) => {
      tried++;
      expect(() => verifyStatement(edited, rootKey)).toThrow(IdentityError);
    };
    for (let i = 0; i < bytes.length; i++) {
      const values = new Set([0x00, 0x0a, 0x20, 0x7f, 0xff]);
      for (let bit = 0; bit < 8; bit++) values.add((bytes[i] as number) ^ (1 << bit));
      values.delete(bytes[i] as number);
      for (const v of values) {
        const edited = Buffer.from(bytes);
        edited[i] = v;
        refuse(edited);
      }
      refuse(Buffer.concat([bytes.subarray(0, i), bytes.subarray(i + 1)]));
      for (const v of [0x0a, 0x20, 0x30]) {
        refuse(Buffer.concat([bytes.subarray(0, i), Buffer.from([v]), bytes.subarray(i)]));
      }
    }
    expect(tried).toBeGreaterThan(bytes.length * 12);
  });
});
