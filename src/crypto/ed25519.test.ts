import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import {
  ED25519_VERIFIER,
  ed25519Sign,
  ed25519Verify,
  ed25519VerifyOpenSsl,
  generateSeed,
  importPublicKey,
  importSeed,
} from './ed25519.js';

const hex = (s: string) => Buffer.from(s, 'hex');

// RFC 8032 §7.1, TEST 1–3.
const RFC8032 = [
  {
    seed: '9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60',
    publicKey: 'd75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a',
    message: '',
    signature:
      'e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b',
  },
  {
    seed: '4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb',
    publicKey: '3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c',
    message: '72',
    signature:
      '92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00',
  },
  {
    seed: 'c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7',
    publicKey: 'fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025',
    message: 'af82',
    signature:
      '6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac18ff9b538d16f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a',
  },
];

describe('Ed25519', () => {
  test('verification uses libsodium on this platform', () => {
    expect(ED25519_VERIFIER).toBe('libsodium');
  });

  test.each(RFC8032)('RFC 8032 vector with public key $publicKey', (v) => {
    const key = importSeed(hex(v.seed));
    expect(Buffer.from(key.publicKey).toString('hex')).toBe(v.publicKey);
    expect(Buffer.from(ed25519Sign(key, hex(v.message))).toString('hex')).toBe(v.signature);
    const pub = importPublicKey(hex(v.publicKey));
    expect(ed25519Verify(pub, hex(v.message), hex(v.signature))).toBe(true);
    expect(ed25519Verify(pub, hex(`${v.message}00`), hex(v.signature))).toBe(false);
  });

  test('libsodium and OpenSSL agree on valid and altered signatures (property)', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 300 }),
        fc.nat(64 * 8 - 1),
        fc.constantFrom('signature', 'message', 'key', 'none'),
        (message, bit, what) => {
          const key = generateSeed();
          const pub = importPublicKey(key.publicKey);
          const signature = Buffer.from(ed25519Sign(key, message));
          const flip = (b: Uint8Array, at: number) => {
            const c = Buffer.from(b);
            const i = Math.floor(at / 8) % Math.max(1, c.length);
            if (c.length > 0) c[i] = (c[i] as number) ^ (1 << (at % 8));
            return c;
          };
          const args: [Uint8Array, Uint8Array, Uint8Array] =
            what === 'signature'
              ? [pub.publicKey, message, flip(signature, bit)]
              : what === 'message'
                ? [pub.publicKey, flip(message, bit), signature]
                : what === 'key'
                  ? [flip(pub.publicKey, bit % 256), message, signature]
                  : [pub.publicKey, message, signature];
          const k = importPublicKey(args[0]);
          const sodium = ed25519Verify(k, args[1], args[2]);
          expect(sodium).toBe(ed25519VerifyOpenSsl(k, args[1], args[2]));
          if (what === 'none') expect(sodium).toBe(true);
          if (what === 'signature' || what === 'key') expect(sodium).toBe(false);
        },
      ),
      { numRuns: 500 },
    );
  });

  test('a small-order key cannot verify a forged signature (OpenSSL alone would accept it)', () => {
    // The identity point as a public key, and R = identity, S = 0: [S]B = R + [k]A for any
    // message. libsodium refuses small-order keys; OpenSSL's check passes.
    const identity = Buffer.alloc(32);
    identity[0] = 1;
    const forged = Buffer.concat([identity, Buffer.alloc(32)]);
    const key = importPublicKey(identity);
    expect(ed25519VerifyOpenSsl(key, Buffer.from('any message'), forged)).toBe(true);
    expect(ed25519Verify(key, Buffer.from('any message'), forged)).toBe(false);
  });

  test('a non-canonical S (S + L) is refused', () => {
    const key = importSeed(hex(RFC8032[0]?.seed ?? ''));
    const signature = Buffer.from(ed25519Sign(key, Buffer.alloc(0)));
    // S is little-endian; add the group order L.
    const L = hex('edd3f55c1a631258d69cf7a2def9de1400000000000000000000000000000010');
    let carry = 0;
    for (let i = 0; i < 32; i++) {
      const sum = (signature[32 + i] as number) + (L[i] as number) + carry;
      signature[32 + i] = sum & 0xff;
      carry = sum >> 8;
    }
    const pub = importPublicKey(key.publicKey);
    expect(ed25519Verify(pub, Buffer.alloc(0), signature)).toBe(false);
    expect(ed25519VerifyOpenSsl(pub, Buffer.alloc(0), signature)).toBe(false);
  });
});
