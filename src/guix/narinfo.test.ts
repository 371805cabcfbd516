import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { formatHash, parseHash, parseStorePath } from '../nix/index.js';
import { GuixError } from './errors.js';
import { generateGuixSecretKey, guixPublicKey, parseGuixPublicKey } from './keys.js';
import {
  type GuixNarInfoFields,
  parseGuixNarInfo,
  signGuixNarInfo,
  verifyGuixNarInfo,
} from './narinfo.js';
import { formatSexp, parseSexp } from './sexp.js';
import { formatGuixSignature } from './signature.js';
import { QUOTED, guixErrorCode } from '../../test/support/guix.js';

const VECTORS = new URL('../../test/vectors/guix/', import.meta.url);
const read = (name: string): string => readFileSync(new URL(name, VECTORS), 'utf8');
const CI_KEY = parseGuixPublicKey(read('ci.guix.gnu.org.pub'));
const NAMES = ['sed-4.4', 'opensmtpd-test', 'hello-2.10-hurd'];
const REAL = NAMES.map((name) => ({ name, text: read(`${name}.narinfo`) }));

describe('the ci.guix.gnu.org narinfos', () => {
  test.each(REAL)('$name verifies under ci.guix.gnu.org.pub', ({ text }) => {
    const info = verifyGuixNarInfo(text, [CI_KEY]);
    expect(info.signature?.host).toMatch(/^berlin\.guix(sd)?\.(org|gnu\.org)$/);
    expect(info.storePath.storeDir).toBe('/gnu/store');
    expect(info.system).toMatch(/-/);
    expect(Buffer.from(info.signedText).toString()).toBe(text.slice(0, text.indexOf('Signature:')));
    // The signature re-serialises byte-identically (libgcrypt's advanced form).
    const base64 = text.slice(text.lastIndexOf(';') + 1, -1);
    const sexp = Buffer.from(base64, 'base64');
    const signature = info.signature?.signature;
    if (signature === undefined) throw new Error('unsigned');
    expect(Buffer.from(formatGuixSignature(signature)).equals(sexp)).toBe(true);
    expect(Buffer.from(formatSexp(parseSexp(sexp))).equals(sexp)).toBe(true);
  });

  test('reads every field, URL blocks paired by position', () => {
    const hello = parseGuixNarInfo(REAL[2]?.text ?? '');
    expect(hello.urls).toEqual([
      {
        url: 'nar/gzip/803q5wapfnmr91ag8d9dzwabkbdxz3ay-hello-2.10',
        compression: 'gzip',
        fileSize: 61822,
      },
      {
        url: 'nar/lzip/803q5wapfnmr91ag8d9dzwabkbdxz3ay-hello-2.10',
        compression: 'lzip',
        fileSize: 52887,
      },
    ]);
    expect(hello.narSize).toBe(204328);
    expect(hello.references).toHaveLength(3);
    expect(hello.deriver).toBe('jqdvjhcxxnbq370y8i2c973c9zfiqrgl-hello-2.10.drv');
    expect(hello.system).toBe('i586-gnu');
    const smtpd = parseGuixNarInfo(REAL[1]?.text ?? '');
    expect(smtpd.urls).toEqual([
      {
        url: 'nar/gzip/y857mykfnc9vd1sc2lqz5g35l111fp71-opensmtpd-test',
        compression: 'gzip',
        fileSize: 894,
      },
    ]);
  });

  test.each(REAL)('$name: every one-byte change before Signature: is refused', ({ text }) => {
    const bytes = Buffer.from(text);
    const end = text.indexOf('Signature:');
    let refused = 0;
    for (let i = 0; i < end; i++) {
      for (const delta of [1, 0x20]) {
        const changed = Buffer.from(bytes);
        changed[i] = (changed[i] as number) ^ delta;
        expect(guixErrorCode(() => verifyGuixNarInfo(changed, [CI_KEY]))).not.toBe('none');
        refused++;
      }
    }
    expect(refused).toBe(2 * end);
  });

  test.each(REAL)('$name: a change in the signature itself is refused', ({ text }) => {
    const start = text.lastIndexOf(';') + 1;
    for (let i = start; i < text.length - 1; i += 7) {
      const c = text[i] === 'A' ? 'B' : 'A';
      const changed = text.slice(0, i) + c + text.slice(i + 1);
      expect(guixErrorCode(() => verifyGuixNarInfo(changed, [CI_KEY]))).not.toBe('none');
    }
  });

  test.each(REAL)('$name is refused under another key (untrusted)', ({ text }) => {
    const other = guixPublicKey(generateGuixSecretKey());
    expect(guixErrorCode(() => verifyGuixNarInfo(text, [other]))).toBe('untrusted');
    expect(guixErrorCode(() => verifyGuixNarInfo(text, []))).toBe('untrusted');
  });

  test.each(REAL)('$name: its r and s as an EdDSA signature are refused', ({ text }) => {
    const base64 = text.slice(text.lastIndexOf(';') + 1, -1);
    const sexp = Buffer.from(base64, 'base64').toString('latin1').replace('(ecdsa', '(eddsa');
    const changed = text.replace(base64, Buffer.from(sexp, 'latin1').toString('base64'));
    expect(guixErrorCode(() => verifyGuixNarInfo(changed, [CI_KEY]))).toBe('unsupported');
  });
});

const H1 = '8kib1cirdv0qbmn9hdkjzjfx3n5nw1yw';
const H2 = 'n6nvxlk2j8ysffjh3jphn1k5silnakh6';
const FIELDS: GuixNarInfoFields = {
  storePath: parseStorePath(`/gnu/store/${H1}-sed-4.4`, '/gnu/store'),
  narHash: parseHash('sha256:18v7dgny1xna7f53mbkj8bk4y2f00l5rjk2k6hj166kjv964lz7r'),
  narSize: 637360,
  references: [`${H2}-glibc-2.25`, `${H1}-sed-4.4`],
  deriver: `pi8686q63rwr4md90vm3qxwhk2g2fvqa-sed-4.4.drv`,
  urls: [
    { url: `nar/gzip/${H1}-sed-4.4`, compression: 'gzip', fileSize: 218663 },
    { url: `nar/zstd/${H1}-sed-4.4`, compression: 'zstd', fileSize: 200000 },
  ],
};
const KEY = generateGuixSecretKey();
const SIGNED = signGuixNarInfo(FIELDS, KEY, 'cache.example');

describe('signGuixNarInfo()', () => {
  test('writes guix publish’s fields, then Signature, then the URL blocks', () => {
    const lines = SIGNED.split('\n').map((l) => l.slice(0, l.indexOf(':')));
    expect(lines).toEqual([
      'StorePath',
      'NarHash',
      'NarSize',
      'References',
      'Deriver',
      'Signature',
      'URL',
      'Compression',
      'FileSize',
      'URL',
      'Compression',
      'FileSize',
      '',
    ]);
    expect(SIGNED).toContain(`\nReferences: ${H2}-glibc-2.25 ${H1}-sed-4.4\n`);
    expect(SIGNED).toMatch(/\nSignature: 1;cache\.example;[A-Za-z0-9+/]+=*\n/);
  });

  test('what it writes parses back to the same fields and verifies', () => {
    const info = verifyGuixNarInfo(SIGNED, [guixPublicKey(KEY)]);
    expect(info.references).toEqual(FIELDS.references);
    expect(info.urls).toEqual(FIELDS.urls);
    expect(formatHash(info.narHash)).toBe(formatHash(FIELDS.narHash));
    expect(info.deriver).toBe(FIELDS.deriver);
  });

  test('URL blocks after the signature are not signed: they may change', () => {
    const moved = SIGNED.replace(`URL: nar/gzip/`, 'URL: https://elsewhere.example/nar/gzip/');
    expect(verifyGuixNarInfo(moved, [guixPublicKey(KEY)]).urls[0]?.url).toContain('elsewhere');
  });

  test('FileSize lines only when every URL block has a size (Guix pairs them by position)', () => {
    const urls = [
      { url: 'nar/y', compression: 'gzip', fileSize: 1 },
      { url: 'nar/x', compression: 'none' },
    ];
    const text = signGuixNarInfo({ ...FIELDS, urls }, KEY, 'h');
    expect(text).not.toContain('FileSize');
    expect(verifyGuixNarInfo(text, [guixPublicKey(KEY)]).urls[0]?.fileSize).toBeUndefined();
  });

  test('a signature with a Latin-1 quoted atom travels as UTF-8, as guix publish writes it', () => {
    const key = { q: Buffer.from(QUOTED.q, 'hex'), d: Buffer.from(QUOTED.d, 'hex') };
    const text = signGuixNarInfo(FIELDS, key, 'h');
    const payload = Buffer.from(
      text.slice(text.indexOf(';h;') + 3, text.indexOf('\nURL')),
      'base64',
    );
    expect(payload.includes(Buffer.from('(q "T\u00c5L7d', 'utf8'))).toBe(true);
    expect(verifyGuixNarInfo(text, [key]).storePath.name).toBe('sed-4.4');
    const raw = Buffer.from(payload.toString('utf8'), 'latin1').toString('base64');
    const latin1 = text.replace(payload.toString('base64'), raw);
    expect(guixErrorCode(() => verifyGuixNarInfo(latin1, [key]))).toBe('malformed');
  });

  test('no references is written "References: " and read back', () => {
    const text = signGuixNarInfo({ ...FIELDS, references: [] }, KEY, 'h');
    expect(text).toContain('\nReferences: \n');
    expect(verifyGuixNarInfo(text, [guixPublicKey(KEY)]).references).toEqual([]);
  });

  test('round-trips random fields (property)', () => {
    const baseName = fc
      .tuple(fc.constantFrom(H1, H2), fc.stringMatching(/^[a-z][a-z0-9.+-]{0,20}$/))
      .map(([h, n]) => `${h}-${n}`);
    fc.assert(
      fc.property(
        fc.uniqueArray(baseName, { maxLength: 4 }),
        fc.integer({ min: 1, max: 2 ** 40 }),
        fc.array(
          fc.record({
            url: fc.stringMatching(/^nar\/[a-z0-9%+-]{1,30}$/),
            compression: fc.constantFrom('gzip', 'lzip', 'zstd', 'none'),
            fileSize: fc.nat(),
          }),
          { minLength: 1, maxLength: 3 },
        ),
        (references, narSize, urls) => {
          const fields = { ...FIELDS, references, narSize, urls };
          const info = verifyGuixNarInfo(signGuixNarInfo(fields, KEY, 'h'), [guixPublicKey(KEY)]);
          expect([info.references, info.narSize, info.urls]).toEqual([references, narSize, urls]);
        },
      ),
      { numRuns: 50 },
    );
  });
});

describe('parseGuixNarInfo() refuses', () => {
  const sed = REAL[0]?.text ?? '';
  test.each([
    ['no StorePath', (t: string) => t.replace(/StorePath: .*\n/, '')],
    ['a StorePath outside /gnu/store', (t: string) => t.replace('/gnu/store/8', '/nix/store/8')],
    ['no NarHash', (t: string) => t.replace(/NarHash: .*\n/, '')],
    [
      'a base16 NarHash',
      (t: string) => t.replace(/NarHash: .*\n/, `NarHash: sha256:${'00'.repeat(32)}\n`),
    ],
    ['NarSize 0', (t: string) => t.replace(/NarSize: .*\n/, 'NarSize: 0\n')],
    ['NarSize 01', (t: string) => t.replace(/NarSize: .*\n/, 'NarSize: 01\n')],
    ['no References', (t: string) => t.replace(/References: .*\n/, '')],
    ['a duplicate reference', (t: string) => t.replace(/(References: )(\S+)/, '$1$2 $2')],
    ['a bad reference', (t: string) => t.replace(/References: /, 'References: x ')],
    ['two spaces between references', (t: string) => t.replace(/(References: \S+) /, '$1  ')],
    ['no URL', (t: string) => t.replace(/URL: .*\n/, '')],
    ['a URL without Compression', (t: string) => t.replace(/Compression: .*\n/, '')],
    ['two FileSizes for one URL', (t: string) => t.replace(/(FileSize: .*\n)/, '$1$1')],
    ['a duplicate NarSize', (t: string) => t.replace(/(NarSize: .*\n)/, '$1$1')],
    ['NarSize after Signature', (t: string) => `${t}NarSize: 1\n`.replace(/NarSize: \d+\n/, '')],
    [
      'Deriver after Signature',
      (t: string) => `${t.replace(/Deriver: .*\n/, '')}Deriver: ${H1}-x.drv\n`,
    ],
    ['two Signatures', (t: string) => t + t.slice(t.indexOf('Signature:'))],
    ['"Signature:" inside a field', (t: string) => t.replace('System: ', 'System: Signature:')],
    ['Signature version 2', (t: string) => t.replace('Signature: 1;', 'Signature: 2;')],
    ['Signature with four parts', (t: string) => t.replace('Signature: 1;', 'Signature: 1;x;')],
    ['Signature with bad base64', (t: string) => t.replace(/(Signature: .*)=\n/, '$1\n')],
    ['no final newline', (t: string) => t.slice(0, -1)],
    ['an empty line', (t: string) => t.replace('\nNarHash', '\n\nNarHash')],
    ['a line without ": "', (t: string) => t.replace('NarSize: ', 'NarSize:')],
    ['a space after the value', (t: string) => t.replace(/(NarSize: \d+)/, '$1 ')],
    ['a CR', (t: string) => t.replace('\n', '\r\n')],
  ])('%s', (_, change) => {
    const changed = change(sed);
    expect(changed).not.toBe(sed);
    expect(guixErrorCode(() => parseGuixNarInfo(changed))).toBe('malformed');
  });

  test('an unsigned narinfo parses but does not verify (signature)', () => {
    const unsigned = sed.slice(0, sed.indexOf('Signature:'));
    expect(parseGuixNarInfo(unsigned).signature).toBeUndefined();
    expect(guixErrorCode(() => verifyGuixNarInfo(unsigned, [CI_KEY]))).toBe('signature');
  });

  test('invalid UTF-8 (malformed) and input over the size cap (limit)', () => {
    const bytes = Buffer.from(sed);
    bytes[bytes.indexOf('sed-4.4')] = 0xff;
    expect(guixErrorCode(() => parseGuixNarInfo(bytes))).toBe('malformed');
    expect(guixErrorCode(() => parseGuixNarInfo(`${sed}X: ${'a'.repeat(1 << 20)}\n`))).toBe(
      'limit',
    );
  });

  test('random bytes and mutated narinfos never crash: a narinfo or a GuixError (property)', () => {
    const mutated = fc
      .tuple(
        fc.constantFrom(...REAL.map((r) => r.text)),
        fc.nat(),
        fc.integer({ min: 0, max: 255 }),
      )
      .map(([t, at, byte]) => {
        const b = Buffer.from(t);
        b[at % b.length] = byte;
        return b;
      });
    fc.assert(
      fc.property(fc.oneof(fc.uint8Array({ maxLength: 300 }), mutated), (bytes) => {
        try {
          verifyGuixNarInfo(bytes, [CI_KEY]);
        } catch (e) {
          expect(e).toBeInstanceOf(GuixError);
        }
      }),
      { numRuns: 1000 },
    );
  });
});
