import { createPublicKey, verify } from 'node:crypto';
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { digestToInteger, ecdsaSign, rfc6979Nonces, verifyEcdsa } from './ecdsa.js';
import { GROUP_ORDER, generateGuixSecretKey, guixPublicKey } from './keys.js';
import {
  formatGuixSignature,
  parseGuixSignature,
  sha256Digest,
  signGuix,
  verifyGuixSignature,
} from './signature.js';
import { guixErrorCode } from '../../test/support/guix.js';

const VECTORS = new URL('../../test/vectors/guix/', import.meta.url);
const GCRYPT = JSON.parse(readFileSync(new URL('gcrypt-rfc6979.json', VECTORS), 'utf8')) as {
  d: string;
  q: string;
  signatures: { message: string; r: string; s: string }[];
};
const KEY = { q: Buffer.from(GCRYPT.q, 'hex'), d: Buffer.from(GCRYPT.d, 'hex') };
const PUBLIC = { q: KEY.q };
const bytes = (s: string): Uint8Array => new Uint8Array(Buffer.from(s));

describe('ecdsaSign()', () => {
  test('is byte-identical to libgcrypt for the same key and digest (24 signatures)', () => {
    for (const { message, r, s } of GCRYPT.signatures) {
      const sig = ecdsaSign(sha256Digest(bytes(message)), KEY);
      expect([sig.r.toString(16), sig.s.toString(16)]).toEqual([
        r.replace(/^0+/, ''),
        s.replace(/^0+/, ''),
      ]);
    }
  });

  test('feeds RFC 6979 the key as written (not reduced mod ℓ) and the digest shifted by 3', () => {
    // libgcrypt's Ed25519 secret scalars lie in [2^254, 2^255), above ℓ: a reduction changes k.
    expect(BigInt(`0x${GCRYPT.d}`) > GROUP_ORDER).toBe(true);
    const digest = sha256Digest(bytes('message 0'));
    expect(digestToInteger(digest)).toBe(BigInt(`0x${Buffer.from(digest).toString('hex')}`) >> 3n);
    const reduced = Buffer.from(
      (BigInt(`0x${GCRYPT.d}`) % GROUP_ORDER).toString(16).padStart(64, '0'),
      'hex',
    );
    const k1 = rfc6979Nonces(KEY.d, digest).next().value;
    const k2 = rfc6979Nonces(reduced, digest).next().value;
    expect(k1).not.toBe(k2);
  });
});

describe('verifyEcdsa()', () => {
  test('accepts libgcrypt’s signatures and refuses them on another digest or key', () => {
    const other = guixPublicKey(generateGuixSecretKey());
    for (const { message, r, s } of GCRYPT.signatures) {
      const sig = { r: BigInt(`0x${r}`), s: BigInt(`0x${s}`) };
      const digest = sha256Digest(bytes(message));
      expect(verifyEcdsa(digest, sig, PUBLIC)).toBe(sig);
      expect(
        guixErrorCode(() => verifyEcdsa(sha256Digest(bytes(`${message}.`)), sig, PUBLIC)),
      ).toBe('signature');
      expect(guixErrorCode(() => verifyEcdsa(digest, sig, other))).toBe('signature');
    }
  });

  test('refuses r or s of 0, ℓ or beyond, and r + ℓ', () => {
    const [first] = GCRYPT.signatures;
    const r = BigInt(`0x${first?.r}`);
    const s = BigInt(`0x${first?.s}`);
    const digest = sha256Digest(bytes('message 0'));
    for (const sig of [
      { r: 0n, s },
      { r, s: 0n },
      { r: r + GROUP_ORDER, s },
      { r, s: s + GROUP_ORDER },
      { r: GROUP_ORDER, s },
      { r, s: GROUP_ORDER - s },
    ]) {
      expect(guixErrorCode(() => verifyEcdsa(digest, sig, PUBLIC))).toBe('signature');
    }
  });

  test('signs and verifies random messages with random keys (property)', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 100 }), (message) => {
        const key = generateGuixSecretKey();
        const digest = sha256Digest(message);
        const sig = ecdsaSign(digest, key);
        expect(ecdsaSign(digest, key)).toEqual(sig);
        verifyEcdsa(digest, sig, key);
        const flipped = Uint8Array.from(digest);
        flipped[0] = (flipped[0] as number) ^ 0x80;
        expect(guixErrorCode(() => verifyEcdsa(flipped, sig, key))).toBe('signature');
      }),
      { numRuns: 30 },
    );
  });
});

describe('the signature s-expression', () => {
  const message = bytes('StorePath: /gnu/store/x\n');
  const signature = signGuix(message, KEY);
  const text = Buffer.from(formatGuixSignature(signature)).toString('latin1');

  test('formatGuixSignature() writes the structure Guix writes; r and s drop leading zeros', () => {
    expect(text).toMatch(
      /^\(signature \n \(data \n {2}\(flags rfc6979\)\n {2}\(hash sha256 #[0-9A-F]{64}#\)\n {2}\)\n \(sig-val \n {2}\(ecdsa \n {3}\(r #[0-9A-F]+#\)\n {3}\(s #[0-9A-F]+#\)\n {3}\)\n {2}\)\n \(public-key \n {2}\(ecc \n {3}\(curve Ed25519\)\n {3}\(q #[0-9A-F]{64}#\)\n {3}\)\n {2}\)\n \)\n$/,
    );
    const short = GCRYPT.signatures.find((s) => s.r.length === 62);
    expect(short).toBeDefined();
    const sig = signGuix(bytes(short?.message ?? ''), KEY);
    const written = Buffer.from(formatGuixSignature(sig)).toString('latin1');
    expect(written).toContain(`(r #${short?.r.toUpperCase()}#)`);
  });

  test('parseGuixSignature() refuses r with a leading zero byte (libgcrypt never writes one)', () => {
    const short = GCRYPT.signatures.find((s) => s.r.length === 62);
    const sig = formatGuixSignature(signGuix(bytes(short?.message ?? ''), KEY));
    const padded = Buffer.from(sig).toString('latin1').replace('(r #', '(r #00');
    expect(guixErrorCode(() => parseGuixSignature(padded))).toBe('malformed');
  });

  test('verifyGuixSignature() returns the verified signature', () => {
    const verified = verifyGuixSignature(text, message, [PUBLIC]);
    expect(verified.r).toBe(signature.r);
    expect(parseGuixSignature(text)).toEqual(verified);
  });

  test('verifyGuixSignature() refuses another key (untrusted), other data and a wrong hash', () => {
    const other = guixPublicKey(generateGuixSecretKey());
    expect(guixErrorCode(() => verifyGuixSignature(text, message, [other]))).toBe('untrusted');
    expect(guixErrorCode(() => verifyGuixSignature(text, message, []))).toBe('untrusted');
    expect(guixErrorCode(() => verifyGuixSignature(text, bytes('other'), [PUBLIC]))).toBe(
      'signature',
    );
    // The hash of the other data, with the original r and s: the ECDSA check refuses it.
    const digest = Buffer.from(sha256Digest(bytes('other')))
      .toString('hex')
      .toUpperCase();
    const swapped = text.replace(/#[0-9A-F]{64}#\)\n {2}\)/, `#${digest}#)\n  )`);
    expect(guixErrorCode(() => verifyGuixSignature(swapped, bytes('other'), [PUBLIC]))).toBe(
      'signature',
    );
  });

  test('the same r and s are not an EdDSA signature, and an EdDSA signature is refused', () => {
    const spki = Buffer.concat([Buffer.from('302a300506032b6570032100', 'hex'), KEY.q]);
    const edKey = createPublicKey({ key: spki, format: 'der', type: 'spki' });
    const rs = Buffer.from(
      signature.r.toString(16).padStart(64, '0') + signature.s.toString(16).padStart(64, '0'),
      'hex',
    );
    expect(verify(null, message, edKey, rs)).toBe(false);
    const eddsa = text.replace('(ecdsa', '(eddsa');
    expect(guixErrorCode(() => verifyGuixSignature(eddsa, message, [PUBLIC]))).toBe('unsupported');
    const eddsaData = text.replace('(flags rfc6979)', '(flags eddsa)');
    expect(guixErrorCode(() => parseGuixSignature(eddsaData))).toBe('unsupported');
  });

  test.each([
    ['no flags', (t: string) => t.replace('(flags rfc6979)', '')],
    ['another hash', (t: string) => t.replace('sha256', 'sha512')],
    ['a short hash', (t: string) => t.replace(/sha256 #[0-9A-F]{64}#/, 'sha256 #00#')],
    ['r with a leading zero', (t: string) => t.replace('(r #', '(r #00')],
    ['an empty s', (t: string) => t.replace(/\(s #[0-9A-F]+#\)/, '(s "")')],
    ['no public key', (t: string) => t.replace(/\(public-key[^]*$/, ')')],
    ['an extra element', (t: string) => t.replace('(signature', '(signature (x)')],
    ['another head', (t: string) => t.replace('(signature', '(sig')],
  ])('parseGuixSignature() refuses %s', (_, change) => {
    expect(guixErrorCode(() => parseGuixSignature(change(text)))).toMatch(
      /^(malformed|unsupported)$/,
    );
  });
});
