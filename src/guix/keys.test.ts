import { readFileSync } from 'node:fs';
import { describe, expect, test } from 'vitest';
import { QUOTED, guixError } from '../../test/support/guix.js';
import { type GuixError } from './errors.js';
import {
  formatGuixPublicKey,
  formatGuixSecretKey,
  generateGuixSecretKey,
  guixPublicKey,
  parseGuixPublicKey,
  parseGuixSecretKey,
  sameGuixKey,
} from './keys.js';

const VECTORS = new URL('../../test/vectors/guix/', import.meta.url);
const CI_KEY = readFileSync(new URL('ci.guix.gnu.org.pub', VECTORS), 'utf8');
const GCRYPT = JSON.parse(readFileSync(new URL('gcrypt-rfc6979.json', VECTORS), 'utf8')) as {
  d: string;
  q: string;
};
const Q = GCRYPT.q.toUpperCase();
const D = GCRYPT.d.toUpperCase();
// As guix archive --generate-key writes the secret key file (libgcrypt's advanced form).
const SECRET = `(private-key \n (ecc \n  (curve Ed25519)\n  (q #${Q}#)\n  (d #${D}#)\n  )\n )\n`;

function error(f: () => unknown): GuixError {
  const e = guixError(f);
  if (e === undefined) throw new Error('no error');
  return e;
}

describe('parseGuixPublicKey() and formatGuixPublicKey()', () => {
  test('read ci.guix.gnu.org.pub and write it back byte-identically', () => {
    const key = parseGuixPublicKey(CI_KEY);
    expect(Buffer.from(key.q).toString('hex').toUpperCase()).toBe(
      '8D156F295D24B0D9A86FA5741A840FF2D24F60F7B6C4134814AD55625971B394',
    );
    expect(formatGuixPublicKey(key)).toBe(CI_KEY);
  });

  test('read the canonical form too (as text: one character per byte)', () => {
    const q = Buffer.from(Q, 'hex');
    const canonical = Buffer.concat([
      Buffer.from('(10:public-key(3:ecc(5:curve7:Ed25519)(1:q32:'),
      q,
      Buffer.from(')))'),
    ]);
    expect(sameGuixKey(parseGuixPublicKey(canonical.toString('latin1')), { q })).toBe(true);
  });

  test('a q that libgcrypt writes as a quoted string travels as UTF-8, as Guix writes files', () => {
    // libgcrypt writes this q as a quoted string with bytes above 0xa0 (Latin-1 characters).
    const key = parseGuixSecretKey(
      `(private-key (ecc (curve Ed25519) (q #${QUOTED.q}#) (d #${QUOTED.d}#)))`,
    );
    const text = formatGuixPublicKey(key);
    expect(text).toMatch(/\(q "T\u00c5L7d/);
    const file = Buffer.from(text, 'utf8');
    expect(file.includes(Buffer.from('\u00c5', 'utf8'))).toBe(true);
    expect(sameGuixKey(parseGuixPublicKey(file), key)).toBe(true);
    expect(sameGuixKey(parseGuixSecretKey(Buffer.from(formatGuixSecretKey(key))), key)).toBe(true);
    // The raw Latin-1 bytes are not UTF-8: Guix could not read such a file, nor can Accord.
    expect(error(() => parseGuixPublicKey(Buffer.from(text, 'latin1'))).code).toBe('malformed');
  });

  test.each([
    ['(public-key (rsa (n #00C1#) (e #010001#)))', 'unsupported', 'an RSA key'],
    ['(public-key (dsa (p #01#) (q #01#) (g #01#) (y #01#)))', 'unsupported', 'a DSA key'],
    [`(public-key (ecc (curve "NIST P-256") (q #04${Q}#)))`, 'unsupported', 'curve NIST P-256'],
    [`(public-key (ecc (curve Ed25519) (flags eddsa) (q #${Q}#)))`, 'unsupported', 'EdDSA key'],
    [SECRET, 'malformed', 'other half'],
    [`(public-key (ecc (curve Ed25519) (q #${Q}#) (q #${Q}#)))`, 'malformed', 'must hold exactly'],
    [`(public-key (ecc (curve Ed25519) (q #${Q}#) (x #00#)))`, 'malformed', 'exactly curve, q'],
    [`(public-key (ecc (curve Ed25519) (q #${Q.slice(2)}#)))`, 'malformed', '32 bytes'],
    [`(public-key (ecc (curve Ed25519) (q #${'FF'.repeat(32)}#)))`, 'malformed', 'not a point'],
    [`(public-key (ecc (curve Ed25519) (q #01${'00'.repeat(31)}#)))`, 'malformed', 'small order'],
    [`(public-key (ecc (curve Ed25519) (q #${Q}#)) extra)`, 'malformed', 'one (ecc'],
  ])('refuses %s', (text, code, message) => {
    const e = error(() => parseGuixPublicKey(text));
    expect(e.code).toBe(code);
    expect(e.message).toContain(message);
  });

  test('refuses a file over the size cap (limit)', () => {
    expect(error(() => parseGuixPublicKey(CI_KEY + ' '.repeat(5000))).code).toBe('limit');
  });
});

describe('parseGuixSecretKey() and formatGuixSecretKey()', () => {
  test('read a key libgcrypt generated and write it back byte-identically', () => {
    const key = parseGuixSecretKey(SECRET);
    expect(Buffer.from(key.q).toString('hex')).toBe(GCRYPT.q);
    expect(formatGuixSecretKey(key)).toBe(SECRET);
    expect(formatGuixPublicKey(guixPublicKey(key))).toBe(
      `(public-key \n (ecc \n  (curve Ed25519)\n  (q #${Q}#)\n  )\n )\n`,
    );
  });

  test('refuses a key whose q is not d·G, a public key, and leading zeros in d', () => {
    const other = Buffer.from(parseGuixPublicKey(CI_KEY).q).toString('hex').toUpperCase();
    expect(error(() => parseGuixSecretKey(SECRET.replace(Q, other))).message).toContain('d·G');
    expect(error(() => parseGuixSecretKey(CI_KEY)).message).toContain('other half');
    expect(error(() => parseGuixSecretKey(SECRET.replace(`#${D}#`, `#00${D}#`))).message).toContain(
      'leading zeros',
    );
  });

  test('generateGuixSecretKey() makes keys shaped as libgcrypt makes them, that round-trip', () => {
    for (let i = 0; i < 20; i++) {
      const key = generateGuixSecretKey();
      expect(key.d.length).toBe(32);
      expect((key.d[0] as number) >> 6).toBe(1);
      expect((key.d[31] as number) & 7).toBe(0);
      const again = parseGuixSecretKey(formatGuixSecretKey(key));
      expect(sameGuixKey(again, key)).toBe(true);
    }
  });
});
