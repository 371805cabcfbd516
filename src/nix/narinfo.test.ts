import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { NixError } from './errors.js';
import { formatHash } from './hash.js';
import {
  formatNixPublicKey,
  formatNixSecretKey,
  generateNixSecretKey,
  nixPublicKey,
  parseNixPublicKey,
  parseNixSecretKey,
} from './keys.js';
import {
  fingerprint,
  formatNarInfo,
  parseNarInfo,
  signNarInfo,
  verifiedSigners,
} from './narinfo.js';

const H1 = 'mmn0yi58md42710kmdc31mms77d6ms72';
const H2 = '5qn9lblnzjgza2vb23kwaclrcxnska2z';
const H3 = '87vxc1xg309brqyx06pbkc7hb90gcqq4';
const NAR_HASH = 'sha256:163yrmg0lahh5faylpff1abpbdrmcvc0aqa06s5s1pfscnxnggi9';

const SAMPLE = [
  `StorePath: /nix/store/${H1}-demo`,
  'URL: nar/1w1fff338fvdw53sqgamddn1b2xgds473pv6y13gizdbqjv4i5p3.nar.xz',
  'Compression: xz',
  'FileHash: sha256:1w1fff338fvdw53sqgamddn1b2xgds473pv6y13gizdbqjv4i5p3',
  'FileSize: 412',
  `NarHash: ${NAR_HASH}`,
  'NarSize: 744',
  `References: ${H2}-dep ${H1}-demo`,
  `Deriver: ${H3}-demo.drv`,
  'Sig: a:AAAA',
  'Sig: b:BBBB',
  '',
].join('\n');

describe('parseNarInfo()', () => {
  test('reads every field and re-serialises byte-identically in Nix order', () => {
    const info = parseNarInfo(SAMPLE);
    expect(info.storePath.hashPart).toBe(H1);
    expect(info.compression).toBe('xz');
    expect(formatHash(info.narHash)).toBe(NAR_HASH);
    expect(info.narSize).toBe(744);
    expect(info.fileSize).toBe(412);
    expect(info.references).toEqual([`${H2}-dep`, `${H1}-demo`]);
    expect(info.deriver).toBe(`${H3}-demo.drv`);
    expect(info.sigs).toEqual(['a:AAAA', 'b:BBBB']);
    expect(formatNarInfo(info)).toBe(SAMPLE);
  });

  test('a missing Compression means bzip2; empty References and unknown-deriver are accepted', () => {
    const text = SAMPLE.replace('Compression: xz\n', '')
      .replace(/References: .*\n/, 'References: \n')
      .replace(/Deriver: .*\n/, 'Deriver: unknown-deriver\n');
    const info = parseNarInfo(text);
    expect(info.compression).toBe('bzip2');
    expect(info.references).toEqual([]);
    expect(info.deriver).toBeUndefined();
  });

  test('reads NarHash in base16, base64 and SRI form, and ignores unknown fields', () => {
    const hex = Buffer.from(parseNarInfo(SAMPLE).narHash.digest).toString('hex');
    const sri = `sha256-${Buffer.from(hex, 'hex').toString('base64')}`;
    for (const form of [`sha256:${hex}`, sri]) {
      const info = parseNarInfo(`${SAMPLE.replace(NAR_HASH, form)}X-Extra: whatever\n`);
      expect(formatHash(info.narHash)).toBe(NAR_HASH);
    }
  });

  test.each([
    ['no StorePath', (t: string) => t.replace(/StorePath: .*\n/, '')],
    ['no URL', (t: string) => t.replace(/URL: .*\n/, '')],
    ['an empty URL', (t: string) => t.replace(/URL: .*\n/, 'URL: \n')],
    ['no NarHash', (t: string) => t.replace(/NarHash: .*\n/, '')],
    ['no NarSize', (t: string) => t.replace(/NarSize: .*\n/, '')],
    ['NarSize 0', (t: string) => t.replace('NarSize: 744', 'NarSize: 0')],
    ['NarSize with a leading zero', (t: string) => t.replace('NarSize: 744', 'NarSize: 0744')],
    ['a negative FileSize', (t: string) => t.replace('FileSize: 412', 'FileSize: -1')],
    ['a duplicate References', (t: string) => `${t}References: \n`],
    [
      'a duplicate CA',
      (t: string) =>
        `${t}CA: text:sha256:${NAR_HASH.slice(7)}\nCA: text:sha256:${NAR_HASH.slice(7)}\n`,
    ],
    ['a duplicate StorePath', (t: string) => `${t}StorePath: /nix/store/${H2}-dep\n`],
    ['a duplicate reference', (t: string) => t.replace(`${H2}-dep`, `${H1}-demo`)],
    ['a bad reference', (t: string) => t.replace(`${H2}-dep`, 'dep')],
    ['a bad deriver', (t: string) => t.replace(`${H3}-demo.drv`, 'x.drv')],
    ['a store path outside the store', (t: string) => t.replace('/nix/store/', '/gnu/store/')],
    [
      'a SHA-1 NarHash',
      (t: string) => t.replace(NAR_HASH, 'sha1:0000000000000000000000000000000000000000'),
    ],
    ['a bad NarHash', (t: string) => t.replace(NAR_HASH, 'sha256:xyz')],
    ['no final newline', (t: string) => t.slice(0, -1)],
    ['a line without ": "', (t: string) => `${t}Garbage\n`],
    ['a CRLF line end', (t: string) => t.replace('NarSize: 744\n', 'NarSize: 744\r\n')],
    ['a bad CA', (t: string) => `${t}CA: nonsense\n`],
  ])('rejects a narinfo with %s', (_, mutate) => {
    expect(() => parseNarInfo(mutate(SAMPLE))).toThrow(NixError);
  });

  test('rejects a narinfo over 1 MiB before parsing it', () => {
    expect(() => parseNarInfo(`${SAMPLE}X: ${'a'.repeat(1 << 20)}\n`)).toThrow(/larger than/);
  });

  test('arbitrary and mutated text is a narinfo or a NixError; accepted text re-parses equal (property)', () => {
    const mutated = fc
      .tuple(fc.nat(SAMPLE.length), fc.string({ maxLength: 4 }), fc.nat(4))
      .map(([at, s, cut]) => SAMPLE.slice(0, at) + s + SAMPLE.slice(at + cut));
    fc.assert(
      fc.property(fc.oneof(fc.string(), mutated), (text) => {
        let info;
        try {
          info = parseNarInfo(text);
        } catch (e) {
          expect(e).toBeInstanceOf(NixError);
          return;
        }
        const again = formatNarInfo(info);
        expect(formatNarInfo(parseNarInfo(again))).toBe(again);
      }),
      { numRuns: 3000 },
    );
  });
});

describe('fingerprints and signatures', () => {
  test('fingerprint() joins full sorted reference paths with commas', () => {
    expect(fingerprint(parseNarInfo(SAMPLE))).toBe(
      `1;/nix/store/${H1}-demo;${NAR_HASH};744;/nix/store/${H2}-dep,/nix/store/${H1}-demo`,
    );
  });

  test('signNarInfo() adds a Sig that verifies with the public key only', () => {
    const key = generateNixSecretKey('accord-test-1');
    const other = generateNixSecretKey('accord-test-1');
    const signed = signNarInfo(parseNarInfo(SAMPLE), key);
    expect(signed.sigs).toHaveLength(3);
    expect(verifiedSigners(signed, [nixPublicKey(key)])).toEqual(['accord-test-1']);
    expect(verifiedSigners(signed, [nixPublicKey(other)])).toEqual([]);
    const tampered = { ...signed, narSize: 745 };
    expect(verifiedSigners(tampered, [nixPublicKey(key)])).toEqual([]);
    const reparsed = parseNarInfo(formatNarInfo(signed));
    expect(verifiedSigners(reparsed, [nixPublicKey(key)])).toEqual(['accord-test-1']);
  });

  test('Nix key files round-trip; a spliced secret key is refused', () => {
    const key = generateNixSecretKey('cache.example.org-1');
    const text = formatNixSecretKey(key);
    expect(text).toMatch(/^cache\.example\.org-1:[A-Za-z0-9+/]{86}==$/);
    expect(formatNixSecretKey(parseNixSecretKey(`${text}\n`))).toBe(text);
    const pub = formatNixPublicKey(key);
    expect(formatNixPublicKey(parseNixPublicKey(pub))).toBe(pub);
    const other = generateNixSecretKey('x');
    const bytes = Buffer.from(text.split(':')[1] ?? '', 'base64');
    bytes.set(other.key.publicKey, 32);
    expect(() => parseNixSecretKey(`x:${bytes.toString('base64')}`)).toThrow(/does not match/);
    for (const bad of ['nocolon', ':AAAA', `x:${'A'.repeat(42)}==`, 'x y:AAAA', `x:${text}`]) {
      expect(() => parseNixPublicKey(bad)).toThrow(NixError);
    }
  });
});
