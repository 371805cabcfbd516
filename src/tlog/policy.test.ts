import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { TlogError } from './errors.js';
import {
  SIG_TYPE_COSIGNATURE_V1,
  SIG_TYPE_ED25519,
  type SignatureType,
  formatVerifierKey,
  newSigner,
} from './keys.js';
import { formatTlogPolicy, parseTlogPolicy, quorumSatisfied, quorumTime } from './policy.js';

function vkey(name: string, type: SignatureType, fill: number): string {
  return formatVerifierKey(newSigner(name, type, new Uint8Array(32).fill(fill)));
}

const LOG = vkey('example.com/log', SIG_TYPE_ED25519, 1);
const W = (i: number) => vkey(`w${i}.example`, SIG_TYPE_COSIGNATURE_V1, 10 + i);

// The structure of the tlog-policy spec's example, with real keys.
const EXAMPLE = `
# comment
log ${LOG}

witness X1 ${W(1)}
witness X2 ${W(2)}
witness X3 ${W(3)} https://x3.example/
group X-witnesses 2 X1 X2 X3

witness Y1 ${W(4)}
witness Y2 ${W(5)}
witness Y3 ${W(6)}
group Y-witnesses any Y1 Y2 Y3

  group X-and-Y all X-witnesses\tY-witnesses
quorum X-and-Y
`;

describe('parseTlogPolicy()', () => {
  test('reads the spec example structure and evaluates its quorum', () => {
    const policy = parseTlogPolicy(EXAMPLE);
    expect(policy.logs).toHaveLength(1);
    expect(policy.witnesses.map((w) => w.name)).toEqual(['X1', 'X2', 'X3', 'Y1', 'Y2', 'Y3']);
    expect(policy.witnesses[2]?.url).toBe('https://x3.example/');
    const q = (names: string[]) => quorumSatisfied(policy.quorum, new Set(names));
    expect(q(['X1', 'X2', 'Y3'])).toBe(true);
    expect(q(['X1', 'Y1', 'Y2', 'Y3'])).toBe(false);
    expect(q(['X1', 'X2', 'X3'])).toBe(false);
    expect(q([])).toBe(false);
  });

  test('quorumTime: when the quorum had cosigned, not when the earliest witness did', () => {
    const policy = parseTlogPolicy(EXAMPLE);
    const at = (pairs: [string, number][]) =>
      quorumTime(
        policy.quorum,
        pairs.map(([name, timestamp]) => ({ name, timestamp })),
      );
    // X needs 2 of 3 and Y 1 of 3: the quorum stands once X2 has cosigned, at 30.
    expect(
      at([
        ['Y3', 10],
        ['X1', 5],
        ['X2', 30],
        ['X3', 40],
      ]),
    ).toBe(30);
    // One early witness (X1 at 1) cannot move it, nor can a cosigner outside the quorum.
    expect(
      at([
        ['X1', 1],
        ['Y1', 50],
        ['X3', 60],
      ]),
    ).toBe(60);
    expect(
      at([
        ['X1', 1],
        ['X2', 2],
      ]),
    ).toBeUndefined();
    expect(at([])).toBeUndefined();
    const none = parseTlogPolicy(`log ${LOG}\nwitness X1 ${W(1)}\nquorum none\n`);
    expect(quorumTime(none.quorum, [{ name: 'X1', timestamp: 7 }])).toBeUndefined();
  });

  test('quorum none accepts no cosignatures', () => {
    const policy = parseTlogPolicy(`log ${LOG}\nquorum none\n`);
    expect(quorumSatisfied(policy.quorum, new Set())).toBe(true);
  });

  test.each([
    ['no quorum', `log ${LOG}\n`],
    ['two quorums', 'quorum none\nquorum none\n'],
    ['an unknown keyword', 'quorum none\nlogs x\n'],
    ['a witness used before it is defined', `group g 1 A\nwitness A ${W(1)}\nquorum g\n`],
    ['a duplicate name', `witness A ${W(1)}\nwitness A ${W(2)}\nquorum A\n`],
    ['a duplicate witness key', `witness A ${W(1)}\nwitness B ${W(1)}\nquorum A\n`],
    ['a duplicate log key', `log ${LOG}\nlog ${LOG}\nquorum none\n`],
    ['a threshold above n', `witness A ${W(1)}\ngroup g 2 A\nquorum g\n`],
    ['a zero threshold', `witness A ${W(1)}\ngroup g 0 A\nquorum g\n`],
    ['a threshold with a leading zero', `witness A ${W(1)}\ngroup g 01 A\nquorum g\n`],
    ['a member listed twice', `witness A ${W(1)}\ngroup g 1 A A\nquorum g\n`],
    ['a member of two groups', `witness A ${W(1)}\ngroup g 1 A\ngroup h 1 A\nquorum g\n`],
    ['none as a member', `witness A ${W(1)}\ngroup g 1 A none\nquorum g\n`],
    ['an empty group', 'group g any\nquorum g\n'],
    ['a log key of the witness type', `log ${W(1)}\nquorum none\n`],
    ['a witness key of the log type', `witness A ${LOG}\nquorum A\n`],
    ['a carriage return', 'quorum none\r\n'],
    ['a bad key', 'log example.com+00000000+AAAA\nquorum none\n'],
    ['extra words', `log ${LOG} https://x y\nquorum none\n`],
  ])('rejects a policy with %s', (_, text) => {
    expect(() => parseTlogPolicy(text)).toThrow(TlogError);
  });

  test('format then parse gives back the same policy', () => {
    const policy = parseTlogPolicy(EXAMPLE);
    const again = parseTlogPolicy(formatTlogPolicy(policy));
    expect(formatTlogPolicy(again)).toBe(formatTlogPolicy(policy));
    expect(again.witnesses.map((w) => [w.name, w.url])).toEqual(
      policy.witnesses.map((w) => [w.name, w.url]),
    );
  });

  test('arbitrary and mutated text throws only TlogError (property)', () => {
    const mutated = fc
      .tuple(fc.nat(EXAMPLE.length), fc.string({ maxLength: 4 }), fc.nat(6))
      .map(([at, s, cut]) => EXAMPLE.slice(0, at) + s + EXAMPLE.slice(at + cut));
    fc.assert(
      fc.property(fc.oneof(fc.string(), mutated), (text) => {
        try {
          parseTlogPolicy(text);
        } catch (e) {
          expect(e).toBeInstanceOf(TlogError);
        }
      }),
      { numRuns: 1000 },
    );
  });
});
