import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import {
  type Derivation,
  MAX_DERIVATION_BYTES,
  formatDerivation,
  parseDerivation,
} from './derivation.js';
import { NixError } from './errors.js';
import { NIX32_ALPHABET } from './nix32.js';

// Written by Nix 2.8 (nix-instantiate), copied from /nix/store.
const CHAIN = `Derive([("out","/nix/store/04a8kwvg4p210sb2pay52k4j6xg5id5k-chain-3","","")],[("/nix/store/vhrcrzl0r606nn5mgknds7n6as0xwvgs-chain-2.drv",["out"])],[],"x86_64-linux","/bin/sh",["-c","/bin/mkdir $out; echo chain payload 3 > $out/data; echo /nix/store/3ffbm8m3sw0iaa6wpr2xsr60qvayfalk-chain-2 > $out/prev;"],[("builder","/bin/sh"),("name","chain-3"),("out","/nix/store/04a8kwvg4p210sb2pay52k4j6xg5id5k-chain-3"),("salt","e2e-1796347345102"),("system","x86_64-linux")])`;
const MULTI = `Derive([("dev","/nix/store/93fslsnff330alrs8xbawaih4szq0cqf-multi-hook-1796348206600-dev","",""),("out","/nix/store/dxlf7fad3ffjk9pcl5wfs9sfkxcyzwr8-multi-hook-1796348206600","","")],[],[],"x86_64-linux","/bin/sh",["-c","/bin/mkdir $out $dev; echo out > $out/o; echo $out > $dev/ref"],[("builder","/bin/sh"),("dev","/nix/store/93fslsnff330alrs8xbawaih4szq0cqf-multi-hook-1796348206600-dev"),("name","multi-hook-1796348206600"),("out","/nix/store/dxlf7fad3ffjk9pcl5wfs9sfkxcyzwr8-multi-hook-1796348206600"),("outputs","out dev"),("system","x86_64-linux")])`;

const code = (fn: () => unknown) => {
  try {
    fn();
  } catch (e) {
    if (e instanceof NixError) return e.code;
    throw e;
  }
  return 'ok';
};

const hashPart = fc
  .array(fc.constantFrom(...NIX32_ALPHABET.split('')), { minLength: 32, maxLength: 32 })
  .map((a) => a.join(''));
const storePath = fc
  .tuple(hashPart, fc.stringMatching(/^[a-z0-9][a-z0-9.+_-]{0,20}$/))
  .map(([h, n]) => `/nix/store/${h}-${n}`);
// latin1: one byte per character, as the file is read.
const anyText = fc.uint8Array({ maxLength: 30 }).map((b) => Buffer.from(b).toString('latin1'));
const derivations: fc.Arbitrary<Derivation> = fc
  .record({
    outputs: fc.uniqueArray(
      fc.tuple(
        fc.stringMatching(/^[a-z]{1,8}$/),
        storePath,
        fc.constantFrom('', 'sha256'),
        fc.constantFrom('', 'abc'),
      ),
      { selector: ([n]) => n, minLength: 1, maxLength: 3 },
    ),
    inputDrvs: fc.uniqueArray(
      fc.tuple(
        storePath.map((p) => `${p}.drv`),
        fc.uniqueArray(fc.stringMatching(/^[a-z]{1,8}$/), { maxLength: 3 }),
      ),
      { selector: ([p]) => p, maxLength: 3 },
    ),
    inputSrcs: fc.uniqueArray(storePath, { maxLength: 3 }),
    system: anyText,
    builder: anyText,
    args: fc.array(anyText, { maxLength: 3 }),
    env: fc.uniqueArray(fc.tuple(anyText, anyText), { selector: ([n]) => n, maxLength: 4 }),
  })
  .map((d) => ({
    ...d,
    outputs: new Map(d.outputs.map(([n, path, hashAlgo, hash]) => [n, { path, hashAlgo, hash }])),
    inputDrvs: new Map(d.inputDrvs.map(([p, names]) => [p, [...names].sort()])),
    inputSrcs: [...d.inputSrcs].sort(),
    env: new Map(d.env),
  }));

describe('parseDerivation()', () => {
  test('reads what Nix wrote: outputs, input derivations and the rest, and formats it back byte for byte', () => {
    const chain = parseDerivation(CHAIN);
    expect([...chain.outputs]).toEqual([
      [
        'out',
        { path: '/nix/store/04a8kwvg4p210sb2pay52k4j6xg5id5k-chain-3', hashAlgo: '', hash: '' },
      ],
    ]);
    expect([...chain.inputDrvs]).toEqual([
      ['/nix/store/vhrcrzl0r606nn5mgknds7n6as0xwvgs-chain-2.drv', ['out']],
    ]);
    expect(chain.builder).toBe('/bin/sh');
    expect(chain.env.get('name')).toBe('chain-3');
    const multi = parseDerivation(MULTI);
    expect([...multi.outputs.keys()]).toEqual(['dev', 'out']);
    expect(formatDerivation(chain)).toBe(CHAIN);
    expect(formatDerivation(multi)).toBe(MULTI);
  });

  test('reads the escapes Nix writes, and no other', () => {
    const text = CHAIN.replace('"-c"', '"a\\"b\\\\c\\nd\\re\\tf"');
    expect(parseDerivation(text).args[0]).toBe('a"b\\c\nd\re\tf');
    expect(formatDerivation(parseDerivation(text))).toBe(text);
    expect(code(() => parseDerivation(CHAIN.replace('"-c"', '"\\x"')))).toBe('malformed');
  });

  test('round-trips every derivation', () => {
    fc.assert(
      fc.property(derivations, (d) => {
        expect(parseDerivation(formatDerivation(d))).toEqual(d);
      }),
    );
  });

  test.each([
    ['another head', CHAIN.replace('Derive(', 'DrvWithVersion(')],
    ['a space', CHAIN.replace('],[', '], [')],
    ['an output path outside the store', CHAIN.replace('/nix/store/04a8', '/tmp/store/04a8')],
    [
      'an input derivation that is no store path',
      CHAIN.replace('/nix/store/vhrc', '/nix/store/vhr!'),
    ],
    ['text after it', `${CHAIN}\n`],
    ['no outputs', CHAIN.replace(/^Derive\(\[[^\]]*\]/, 'Derive([]')],
    ['outputs out of order', MULTI.replace('("dev",', '("zzz",')],
    ['an unterminated string', CHAIN.slice(0, 30)],
    ['environment variables repeated', CHAIN.replace('("name","chain-3")', '("builder","x")')],
  ])('refuses a derivation with %s', (_, text) => {
    expect(code(() => parseDerivation(text))).toBe('malformed');
  });

  test('refuses an output without a path (content-addressed) as unsupported, and a text over the cap before reading it', () => {
    expect(
      code(() =>
        parseDerivation(
          CHAIN.replace(
            '"/nix/store/04a8kwvg4p210sb2pay52k4j6xg5id5k-chain-3","",""',
            '"","r:sha256",""',
          ),
        ),
      ),
    ).toBe('unsupported');
    expect(code(() => parseDerivation(`${CHAIN}${' '.repeat(MAX_DERIVATION_BYTES)}`))).toBe(
      'limit',
    );
  });

  test('never throws anything but a NixError on random or mutated input', () => {
    const mutated = fc
      .tuple(fc.nat(CHAIN.length), fc.nat(CHAIN.length), fc.string({ maxLength: 5 }))
      .map(([a, b, s]) => CHAIN.slice(0, Math.min(a, b)) + s + CHAIN.slice(Math.max(a, b)));
    fc.assert(
      fc.property(fc.oneof(fc.string(), mutated), (input) => {
        try {
          expect(formatDerivation(parseDerivation(input))).toBe(input);
        } catch (e) {
          expect(e).toBeInstanceOf(NixError);
        }
      }),
      { numRuns: 2000 },
    );
  });
});
