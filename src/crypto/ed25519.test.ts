import { createHash, verify } from 'node:crypto';
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { beforeAll, describe, expect, test } from 'vitest';
import { requireAvailable, shouldRun } from '../../test/support/requirements.js';
import {
  type Ed25519Backend,
  ED25519_VERIFIER,
  HAVE_LIBSODIUM,
  ed25519Sign,
  ed25519VerifyWith,
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

interface WycheproofFile {
  numberOfTests: number;
  testGroups: {
    publicKey: { pk: string };
    tests: {
      tcId: number;
      comment: string;
      flags: string[];
      msg: string;
      sig: string;
      result: string;
    }[];
  }[];
}

// Wycheproof's Ed25519 verification vectors (test/vectors/README.md): 151 valid and invalid cases.
const WYCHEPROOF_FILE = JSON.parse(
  readFileSync(new URL('../../test/vectors/wycheproof/ed25519_test.json', import.meta.url), 'utf8'),
) as WycheproofFile;
const WYCHEPROOF = WYCHEPROOF_FILE.testGroups.flatMap((g) =>
  g.tests.map((t) => ({ ...t, pk: g.publicKey.pk, what: t.comment || t.flags.join(', ') })),
);

const p = 2n ** 255n - 19n;
const L = 2n ** 252n + 27742317777372353535851937790883648493n;
const Y8 = 2707385501144840649318225287225658788936804267575313519463743609750303402022n;

function le(v: bigint): Buffer {
  const out = Buffer.alloc(32);
  for (let i = 0; i < 32; i++, v >>= 8n) out[i] = Number(v & 0xffn);
  return out;
}

function fromLe(bytes: Uint8Array): bigint {
  return bytes.reduceRight((v, b) => (v << 8n) | BigInt(b), 0n);
}

/**
 * Every encoding of a small-order point that OpenSSL decodes: the 8 torsion points' y values
 * and the non-canonical y = p (0) and p + 1 (1), with either sign bit.
 */
const SMALL_ORDER_KEYS = [1n, p - 1n, 0n, Y8, p - Y8, p, p + 1n].flatMap((y) =>
  [0, 1].map((sign) => {
    const key = le(y);
    key[31] = (key[31] as number) | (sign << 7);
    return { name: `${key.toString('hex').slice(0, 8)}…${key.toString('hex').slice(-4)}`, key };
  }),
);

// R = B (the base point, RFC 8032 §5.1) and S = 1: [S]B = R + [k]A holds whenever [k]A is the
// identity, which for a small-order A is true of one message in at most 8. Neither R nor S
// breaks a rule, so only the check of the key refuses this.
const BASE_POINT = hex('5866666666666666666666666666666666666666666666666666666666666666');
const FORGERY = Buffer.concat([BASE_POINT, le(1n)]);

/** The first message, of "0" … "63", under which OpenSSL alone accepts `FORGERY` by `key`. */
function messageOpenSslAccepts(key: Uint8Array): Buffer | undefined {
  const keyObject = importPublicKey(key).keyObject;
  for (let i = 0; i < 64; i++) {
    const message = Buffer.from(String(i));
    if (verify(null, message, keyObject, FORGERY)) return message;
  }
  return undefined;
}

/**
 * A signature with R = identity that the holder of RFC 8032 TEST 1's seed can make for any
 * message: S = k·a mod L, so [S]B = [k]A = R + [k]A. Cofactorless checks such as OpenSSL's
 * accept it; libsodium refuses R of small order.
 */
function identityRSignature(message: Uint8Array): { publicKey: Buffer; signature: Buffer } {
  const seed = hex(RFC8032[0]?.seed ?? '');
  const publicKey = hex(RFC8032[0]?.publicKey ?? '');
  const h = createHash('sha512').update(seed).digest();
  // RFC 8032 §5.1.5: the secret scalar is the first half of SHA-512(seed), clamped.
  const a = (fromLe(h.subarray(0, 32)) & ((1n << 254n) - 8n)) | (1n << 254n);
  const R = le(1n);
  const k = fromLe(createHash('sha512').update(R).update(publicKey).update(message).digest()) % L;
  return { publicKey, signature: Buffer.concat([R, le((k * a) % L)]) };
}

const BACKENDS: { backend: Ed25519Backend; available: boolean; what: string }[] = [
  { backend: 'node:crypto', available: true, what: 'node:crypto' },
  { backend: 'libsodium', available: HAVE_LIBSODIUM, what: 'sodium-native (libsodium)' },
];

test('the Wycheproof file holds its 151 cases', () => {
  expect(WYCHEPROOF).toHaveLength(151);
  expect(WYCHEPROOF_FILE.numberOfTests).toBe(151);
});

for (const { backend, available, what } of BACKENDS) {
  describe.runIf(shouldRun(available))(`ed25519VerifyWith('${backend}')`, () => {
    beforeAll(() => {
      requireAvailable(available, what);
    });
    const verifyWith = (key: Uint8Array, message: Uint8Array, signature: Uint8Array) =>
      ed25519VerifyWith(backend, importPublicKey(key), message, signature);

    test.each(RFC8032)('verifies RFC 8032 vector with public key $publicKey', (v) => {
      const key = importSeed(hex(v.seed));
      expect(Buffer.from(key.publicKey).toString('hex')).toBe(v.publicKey);
      expect(Buffer.from(ed25519Sign(key, hex(v.message))).toString('hex')).toBe(v.signature);
      expect(verifyWith(hex(v.publicKey), hex(v.message), hex(v.signature))).toBe(true);
      expect(verifyWith(hex(v.publicKey), hex(`${v.message}00`), hex(v.signature))).toBe(false);
    });

    test.each(WYCHEPROOF)('Wycheproof tcId $tcId ($what) is $result', (t) => {
      expect(verifyWith(hex(t.pk), hex(t.msg), hex(t.sig))).toBe(t.result === 'valid');
    });

    test.each(SMALL_ORDER_KEYS)(
      'refuses a forgery under the small-order key $name that OpenSSL alone accepts',
      ({ key }) => {
        const message = messageOpenSslAccepts(key);
        expect(message).toBeDefined();
        expect(verifyWith(key, message ?? Buffer.alloc(0), FORGERY)).toBe(false);
      },
    );

    test('refuses R = identity from a real key, which OpenSSL alone accepts', () => {
      const message = Buffer.from('any message');
      const { publicKey, signature } = identityRSignature(message);
      expect(verify(null, message, importPublicKey(publicKey).keyObject, signature)).toBe(true);
      expect(verifyWith(publicKey, message, signature)).toBe(false);
    });

    test('refuses a non-canonical S (S + L)', () => {
      const key = importSeed(hex(RFC8032[0]?.seed ?? ''));
      const signature = Buffer.from(ed25519Sign(key, Buffer.alloc(0)));
      const s = fromLe(signature.subarray(32)) + L;
      expect(
        verifyWith(
          key.publicKey,
          Buffer.alloc(0),
          Buffer.concat([signature.subarray(0, 32), le(s)]),
        ),
      ).toBe(false);
    });
  });
}

describe.runIf(shouldRun(HAVE_LIBSODIUM))('with sodium-native loaded', () => {
  beforeAll(() => {
    requireAvailable(HAVE_LIBSODIUM, 'sodium-native (libsodium)');
  });

  test('ED25519_VERIFIER, which ed25519Verify uses, is libsodium', () => {
    expect(ED25519_VERIFIER).toBe('libsodium');
  });

  test('libsodium and node:crypto agree on valid and altered signatures (property)', () => {
    const flip = (b: Uint8Array, at: number) => {
      const c = Buffer.from(b);
      const i = Math.floor(at / 8) % Math.max(1, c.length);
      if (c.length > 0) c[i] = (c[i] as number) ^ (1 << (at % 8));
      return c;
    };
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 300 }),
        fc.nat(64 * 8 - 1),
        fc.constantFrom('signature', 'message', 'key', 'none'),
        (message, bit, what) => {
          const key = generateSeed();
          const signature = Buffer.from(ed25519Sign(key, message));
          const [k, m, s] =
            what === 'signature'
              ? [key.publicKey, message, flip(signature, bit)]
              : what === 'message'
                ? [key.publicKey, flip(message, bit), signature]
                : what === 'key'
                  ? [flip(key.publicKey, bit % 256), message, signature]
                  : [key.publicKey, message, signature];
          const pub = importPublicKey(k);
          const sodium = ed25519VerifyWith('libsodium', pub, m, s);
          expect(sodium).toBe(ed25519VerifyWith('node:crypto', pub, m, s));
          if (what === 'none') expect(sodium).toBe(true);
          if (what === 'signature' || what === 'key') expect(sodium).toBe(false);
        },
      ),
      { numRuns: 500 },
    );
  });
});
