import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { NIX32_ALPHABET, parseHash, parseStorePath } from '../nix/index.js';
import {
  type BuildClaim,
  MAX_ENTRY_SIZE,
  claimFromJson,
  claimToJson,
  entryFromJson,
  formatEntry,
  parseEntry,
  sameOutput,
} from './claim.js';
import { ClaimError } from './errors.js';

// The example entry of DESIGN.md ("The log entry").
const EXAMPLE = `accord/build/v1
store-path /nix/store/mmn0yi58md42710kmdc31mms77d6ms72-demo
nar-hash sha256:163yrmg0lahh5faylpff1abpbdrmcvc0aqa06s5s1pfscnxnggi9
nar-size 744
reference 5qn9lblnzjgza2vb23kwaclrcxnska2z-dep
deriver 87vxc1xg309brqyx06pbkc7hb90gcqq4-demo.drv
`;

describe('accord/build/v1 entries', () => {
  test('the design example parses and formats back byte for byte', () => {
    const claim = parseEntry(EXAMPLE);
    expect(claim.storePath.name).toBe('demo');
    expect(claim.narSize).toBe(744);
    expect(claim.references).toEqual(['5qn9lblnzjgza2vb23kwaclrcxnska2z-dep']);
    expect(claim.deriver).toBe('87vxc1xg309brqyx06pbkc7hb90gcqq4-demo.drv');
    expect(formatEntry(claim)).toBe(EXAMPLE);
    expect(parseEntry(Buffer.from(EXAMPLE))).toEqual(claim);
  });

  test('references are written sorted; an entry without references or deriver is valid', () => {
    const claim = parseEntry(EXAMPLE);
    const refs = ['zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz-b', '00000000000000000000000000000000-a'];
    const text = formatEntry({ ...claim, references: refs });
    expect(text).toContain('reference 0000');
    expect(text.indexOf('reference 0000')).toBeLessThan(text.indexOf('reference zzzz'));
    const bare = EXAMPLE.replace(/reference .*\n/, '').replace(/deriver .*\n/, '');
    expect(formatEntry(parseEntry(bare))).toBe(bare);
  });

  test.each([
    ['a wrong header', (t: string) => t.replace('v1', 'v2')],
    ['fields out of order', (t: string) => t.replace(/(nar-hash .*\n)(nar-size .*\n)/, '$2$1')],
    [
      'unsorted references',
      (t: string) =>
        t
          .replace('reference 5qn', 'reference 1ab\nreference 5qn')
          .replace('reference 1ab', 'reference zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz-z'),
    ],
    ['a duplicate reference', (t: string) => t.replace(/(reference .*\n)/, '$1$1')],
    ['a base16 hash', (t: string) => t.replace(/nar-hash .*/, `nar-hash sha256:${'0'.repeat(64)}`)],
    ['a SHA-1 hash', (t: string) => t.replace(/nar-hash .*/, `nar-hash sha1:${'0'.repeat(32)}`)],
    ['nar-size 0', (t: string) => t.replace('nar-size 744', 'nar-size 0')],
    ['a leading zero', (t: string) => t.replace('nar-size 744', 'nar-size 0744')],
    ['a size beyond 2^53', (t: string) => t.replace('nar-size 744', 'nar-size 9007199254740993')],
    [
      'nix32 with bits beyond 256',
      (t: string) => t.replace(/nar-hash .*/, `nar-hash sha256:${'z'.repeat(52)}`),
    ],
    ['a store path elsewhere', (t: string) => t.replace('/nix/store/', '/gnu/store/')],
    ['a deriver that is not a .drv', (t: string) => t.replace('demo.drv', 'demo')],
    ['an unknown line', (t: string) => `${t}system x86_64-linux\n`],
    ['a trailing blank line', (t: string) => `${t}\n`],
    ['no final newline', (t: string) => t.slice(0, -1)],
    ['CRLF', (t: string) => t.replaceAll('\n', '\r\n')],
    ['two spaces', (t: string) => t.replace('nar-size 744', 'nar-size  744')],
  ])('parseEntry() rejects an entry with %s', (_, mutate) => {
    expect(() => parseEntry(mutate(EXAMPLE))).toThrow(ClaimError);
  });

  test('a Guix entry parses with /gnu/store', () => {
    const guix = EXAMPLE.replace('/nix/store/', '/gnu/store/');
    expect(parseEntry(guix, '/gnu/store').storePath.storeDir).toBe('/gnu/store');
  });

  test('format then parse is the identity on random claims (property)', () => {
    const hashPart = fc.string({
      unit: fc.constantFrom(...Array.from({ length: 32 }, (_, i) => NIX32_ALPHABET.charAt(i))),
      minLength: 32,
      maxLength: 32,
    });
    const name = fc.stringMatching(/^[a-z][a-z0-9.+_-]{0,20}$/);
    const baseName = fc.tuple(hashPart, name).map(([h, n]) => `${h}-${n}`);
    const claim = fc.record({
      path: baseName,
      digest: fc.uint8Array({ minLength: 32, maxLength: 32 }),
      narSize: fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }),
      references: fc.uniqueArray(baseName, { maxLength: 8 }),
      deriver: fc.option(
        baseName.map((b) => `${b}.drv`),
        { nil: undefined },
      ),
    });
    fc.assert(
      fc.property(claim, (c) => {
        const built: BuildClaim = {
          storePath: parseStorePath(`/nix/store/${c.path}`),
          narHash: { algorithm: 'sha256', digest: c.digest },
          narSize: c.narSize,
          references: c.references,
          ...(c.deriver === undefined ? {} : { deriver: c.deriver }),
        };
        const text = formatEntry(built);
        const parsed = parseEntry(text);
        expect(formatEntry(parsed)).toBe(text);
        expect(sameOutput(parsed, built)).toBe(true);
        expect(formatEntry(claimFromJson(JSON.parse(JSON.stringify(claimToJson(parsed)))))).toBe(
          text,
        );
      }),
    );
  });

  test('arbitrary and mutated text is an entry or a ClaimError (property)', () => {
    const mutated = fc
      .tuple(fc.nat(EXAMPLE.length), fc.string({ maxLength: 4 }), fc.nat(4))
      .map(([at, s, cut]) => EXAMPLE.slice(0, at) + s + EXAMPLE.slice(at + cut));
    fc.assert(
      fc.property(fc.oneof(fc.string(), mutated, fc.uint8Array()), (input) => {
        try {
          const claim = parseEntry(input);
          expect(formatEntry(claim)).toBe(
            typeof input === 'string' ? input : Buffer.from(input).toString(),
          );
        } catch (e) {
          expect(e).toBeInstanceOf(ClaimError);
        }
      }),
      { numRuns: 3000 },
    );
  });
});

describe('claims', () => {
  const claim = parseEntry(EXAMPLE);

  test('sameOutput() compares hash, size and references but not the deriver', () => {
    expect(sameOutput(claim, { ...claim, deriver: '00000000000000000000000000000000-x.drv' })).toBe(
      true,
    );
    expect(sameOutput(claim, { ...claim, narSize: 745 })).toBe(false);
    expect(sameOutput(claim, { ...claim, references: [] })).toBe(false);
    const other = parseHash(`sha256:${'1'.repeat(64)}`);
    expect(sameOutput(claim, { ...claim, narHash: other })).toBe(false);
  });

  test.each([
    ['not an object', []],
    ['an unknown key', { ...claimToJson(claim), extra: 1 }],
    ['a string size', { ...claimToJson(claim), narSize: '744' }],
    ['a fractional size', { ...claimToJson(claim), narSize: 1.5 }],
    ['a bad reference', { ...claimToJson(claim), references: ['nope'] }],
    ['references not strings', { ...claimToJson(claim), references: [1] }],
    ['a bad hash', { ...claimToJson(claim), narHash: 'sha256:xyz' }],
  ])('claimFromJson() rejects %s', (_, value) => {
    expect(() => claimFromJson(value)).toThrow(ClaimError);
  });

  test('claimFromJson() and entryFromJson() take an entry of MAX_ENTRY_SIZE bytes and refuse one byte more', () => {
    /** The claim with references added until its entry is exactly `size` bytes. */
    const ofSize = (size: number) => {
      const json = { ...claimToJson(claim), references: [] as string[] };
      let length =
        Buffer.byteLength(formatEntry(claim)) -
        'reference 5qn9lblnzjgza2vb23kwaclrcxnska2z-dep\n'.length;
      for (let i = 0; length < size; i++) {
        const hash = Array.from(i.toString(32).padStart(32, '0'))
          .map((d) => NIX32_ALPHABET[parseInt(d, 32)])
          .join('');
        // "reference <hash>-<name>\n" is 44 bytes and the name; names of 1 to 200 bytes.
        const rest = size - length - 44;
        const name = 'r'.repeat(rest <= 200 ? rest : Math.min(200, rest - 45));
        json.references.push(`${hash}-${name}`);
        length += 44 + name.length;
      }
      expect(length).toBe(size);
      return json;
    };
    expect(Buffer.byteLength(entryFromJson(ofSize(MAX_ENTRY_SIZE)).entry)).toBe(MAX_ENTRY_SIZE);
    const over = ofSize(MAX_ENTRY_SIZE + 1);
    for (const read of [claimFromJson, entryFromJson]) {
      expect(() => read(over)).toThrow(expect.objectContaining({ code: 'limit' }));
    }
  });

  test('claimFromJson() accepts the SRI form nix path-info prints', () => {
    const json = claimToJson(claim);
    const sri = `sha256-${Buffer.from(claim.narHash.digest).toString('base64')}`;
    expect(formatEntry(claimFromJson({ ...json, narHash: sri }))).toBe(EXAMPLE);
  });
});
