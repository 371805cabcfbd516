/**
 * Guix signatures against the real libgcrypt, through guile-gcrypt (the bindings Guix signs
 * with): keys it generates, signatures both ways over many messages, byte-identical
 * deterministic signatures, narinfos, EdDSA refused, and the ACL number spellings.
 * Each test runs one Guile process over a batch of commands (test/interop/guix-gcrypt.scm).
 */
import { createPublicKey, hash, verify } from 'node:crypto';
import { beforeAll, describe, expect, test } from 'vitest';
import {
  type GuixNarInfoFields,
  type GuixSecretKey,
  formatGuixAcl,
  formatGuixNarInfoBody,
  formatGuixPublicKey,
  formatGuixSecretKey,
  formatGuixSignature,
  formatGuixUrlBlocks,
  generateGuixSecretKey,
  guixPublicKey,
  parseGuixAcl,
  parseGuixPublicKey,
  parseGuixSecretKey,
  parseGuixSignature,
  decodeGuixText,
  sexpToGuixText,
  signGuix,
  signGuixNarInfo,
  verifyGuixNarInfo,
  verifyGuixSignature,
} from '../../src/guix/index.js';
import { parseHash, parseStorePath } from '../../src/nix/index.js';
import { HAVE_GUILE, requireAvailable, shouldRun } from '../support/requirements.js';
import { QUOTED, guixErrorCode } from '../support/guix.js';
import { gcrypt } from '../support/guix-cache.js';

const MESSAGES = 200;
const b64 = (data: Uint8Array | string): string => Buffer.from(data).toString('base64');
const unb64 = (text: string): Buffer => Buffer.from(text, 'base64');
/** An s-expression as Guix passes it around: its text (a character per byte) in UTF-8. */
const sexpB64 = (sexp: Uint8Array): string => b64(sexpToGuixText(sexp));
const unSexpB64 = (text: string): Uint8Array => decodeGuixText(unb64(text));

/** Message i: 0 to 299 bytes, deterministic, some of them text. */
function message(i: number): Uint8Array {
  if (i % 5 === 0)
    return new Uint8Array(Buffer.from(`StorePath: /gnu/store/m${i}\nNarSize: ${i}\n`));
  const bytes = Buffer.alloc(i + (i % 100));
  for (let at = 0; at < bytes.length; at += 64) {
    hash('sha512', `message ${i} ${at}`, 'buffer').copy(bytes, at);
  }
  return new Uint8Array(bytes);
}

/** The message with one byte changed (or one byte added to an empty one). */
function tampered(m: Uint8Array, i: number): Uint8Array {
  if (m.length === 0) return Uint8Array.of(i);
  const t = Uint8Array.from(m);
  t[i % t.length] = (t[i % t.length] as number) ^ (1 << (i % 8));
  return t;
}

describe.runIf(shouldRun(HAVE_GUILE))('Guix signatures against libgcrypt (guile-gcrypt)', () => {
  // Keys libgcrypt generated, as guix archive --generate-key writes them, and Accord's own.
  const gcryptKeys: { secret: string; public: string }[] = [];
  const accordKeys: GuixSecretKey[] = [
    generateGuixSecretKey(),
    generateGuixSecretKey(),
    { q: Buffer.from(QUOTED.q, 'hex'), d: Buffer.from(QUOTED.d, 'hex') },
  ];
  beforeAll(async () => {
    requireAvailable(HAVE_GUILE, 'guile with guile-gcrypt');
    for (const answer of await gcrypt(['genkey', 'genkey', 'genkey'])) {
      const [tag, secret, pub] = answer.split(' ');
      expect(tag).toBe('key');
      gcryptKeys.push({
        secret: unb64(secret ?? '').toString(),
        public: unb64(pub ?? '').toString(),
      });
    }
  });

  test('Accord reads libgcrypt’s key files and writes them back byte-identically', () => {
    for (const { secret, public: pub } of gcryptKeys) {
      const key = parseGuixSecretKey(secret);
      expect(formatGuixSecretKey(key)).toBe(secret);
      expect(formatGuixPublicKey(parseGuixPublicKey(pub))).toBe(pub);
      expect(formatGuixPublicKey(guixPublicKey(key))).toBe(pub);
    }
  });

  test(`Accord verifies ${MESSAGES} libgcrypt signatures and makes byte-identical ones`, async () => {
    const keys = [
      ...gcryptKeys,
      ...accordKeys.map((k) => ({
        secret: formatGuixSecretKey(k),
        public: formatGuixPublicKey(guixPublicKey(k)),
      })),
    ];
    const jobs = Array.from({ length: MESSAGES }, (_, i) => ({ i, key: keys[i % keys.length] }));
    const answers = await gcrypt(
      jobs.map(
        ({ i, key }) =>
          `sign ${b64(key?.secret ?? '')} ${b64(key?.public ?? '')} ${b64(message(i))}`,
      ),
    );
    answers.forEach((answer, n) => {
      const { i, key } = jobs[n] ?? { i: 0, key: undefined };
      const sexp = unSexpB64(answer.slice('sig '.length));
      const signer = parseGuixPublicKey(key?.public ?? '');
      const verified = verifyGuixSignature(sexp, message(i), [signer]);
      // Same key, same digest: the same RFC 6979 nonce, the same bytes.
      const ours = formatGuixSignature(signGuix(message(i), parseGuixSecretKey(key?.secret ?? '')));
      expect(Buffer.from(ours).equals(sexp)).toBe(true);
      expect(
        guixErrorCode(() => verifyGuixSignature(sexp, tampered(message(i), i), [signer])),
      ).toBe('signature');
      expect(verified.publicKey.q).toEqual(signer.q);
    });
  });

  test(`libgcrypt verifies ${MESSAGES} Accord signatures and refuses changed ones`, async () => {
    const signers = [...gcryptKeys.map((k) => parseGuixSecretKey(k.secret)), ...accordKeys];
    const commands: string[] = [];
    const expected: string[] = [];
    for (let i = 0; i < MESSAGES; i++) {
      const key = signers[i % signers.length] as GuixSecretKey;
      const pub = b64(formatGuixPublicKey(guixPublicKey(key)));
      const sig = formatGuixSignature(signGuix(message(i), key));
      const changed = tampered(message(i), i);
      commands.push(`verify ${sexpB64(sig)} ${b64(message(i))} ${pub}`);
      expected.push('valid');
      commands.push(`verify ${sexpB64(sig)} ${b64(changed)} ${pub}`);
      expected.push('hash-mismatch');
      // The changed message's own hash with the original r and s: libgcrypt's ECDSA check
      // refuses it, and so does Accord's.
      const forged = formatGuixSignature({
        ...signGuix(changed, key),
        r: parseGuixSignature(sig).r,
      });
      commands.push(`verify ${sexpB64(forged)} ${b64(changed)} ${pub}`);
      expected.push('invalid-signature');
      expect(guixErrorCode(() => verifyGuixSignature(forged, changed, [key]))).toBe('signature');
      const other = signers[(i + 1) % signers.length] as GuixSecretKey;
      commands.push(`verify ${sexpB64(sig)} ${b64(message(i))} ${b64(formatGuixPublicKey(other))}`);
      expected.push('unauthorized');
    }
    expect(await gcrypt(commands)).toEqual(expected);
  });

  const H = '8kib1cirdv0qbmn9hdkjzjfx3n5nw1yw';
  const fields = (i: number): GuixNarInfoFields => ({
    storePath: parseStorePath(`/gnu/store/${H}-item-${i}`, '/gnu/store'),
    narHash: parseHash(`sha256:${'0'.repeat(51)}${i % 10}`),
    narSize: 1000 + i,
    references: i % 2 === 0 ? [] : [`${H}-item-${i}`],
    urls: [{ url: `nar/gzip/${H}-item-${i}`, compression: 'gzip', fileSize: 100 + i }],
  });

  test('narinfos: libgcrypt verifies what Accord signs; Accord verifies what libgcrypt signs', async () => {
    // A key libgcrypt made, and one whose q libgcrypt writes as a quoted Latin-1 string.
    const keys = [parseGuixSecretKey(gcryptKeys[0]?.secret ?? ''), accordKeys[2] as GuixSecretKey];
    const keyOf = (i: number): GuixSecretKey => keys[i % 2] as GuixSecretKey;
    const commands: string[] = [];
    const expected: string[] = [];
    for (let i = 0; i < 20; i++) {
      const key = keyOf(i);
      const pub = b64(formatGuixPublicKey(key));
      const text = signGuixNarInfo(fields(i), key, 'cache.example');
      commands.push(`verify-narinfo ${b64(text)} ${pub}`);
      expected.push('valid');
      commands.push(
        `verify-narinfo ${b64(text.replace(`-item-${i}\n`, `-item-${i + 1}\n`))} ${pub}`,
      );
      expected.push('hash-mismatch');
      const secret = b64(formatGuixSecretKey(key));
      commands.push(`sign ${secret} ${pub} ${b64(formatGuixNarInfoBody(fields(i)))}`);
      expected.push('sig');
    }
    const answers = await gcrypt(commands);
    expect(answers.map((a) => a.split(' ')[0])).toEqual(expected);
    for (let i = 0; i < 20; i++) {
      const key = keyOf(i);
      const sig = (answers[3 * i + 2] ?? '').slice('sig '.length);
      const body = formatGuixNarInfoBody(fields(i));
      const text = `${body}Signature: 1;gcrypt.example;${sig}\n${formatGuixUrlBlocks(fields(i).urls)}`;
      expect(verifyGuixNarInfo(text, [key]).narSize).toBe(1000 + i);
      // libgcrypt signs with the same nonce: the narinfo is the one Accord writes.
      expect(text.replace('gcrypt.example', 'cache.example')).toBe(
        signGuixNarInfo(fields(i), key, 'cache.example'),
      );
      const changed = text.replace(`NarSize: ${1000 + i}`, `NarSize: ${2000 + i}`);
      expect(guixErrorCode(() => verifyGuixNarInfo(changed, [key]))).toBe('signature');
    }
  });

  test('an EdDSA signature libgcrypt makes is refused, though its r‖s is a valid EdDSA signature', async () => {
    const m = message(7);
    const [answer] = await gcrypt([`eddsa-sign ${b64(m)}`]);
    const sexp = sexpToGuixText(unSexpB64((answer ?? '').slice('sig '.length)));
    expect(sexp).toContain('(eddsa');
    expect(guixErrorCode(() => parseGuixSignature(sexp))).toBe('unsupported');
    const hex = (name: string): string =>
      sexp.match(new RegExp(`\\(${name} #([0-9A-F]+)#`))?.[1] ?? '';
    const q = Buffer.from(hex('q'), 'hex');
    const rs = Buffer.from(hex('r').padStart(64, '0') + hex('s').padStart(64, '0'), 'hex');
    const spki = Buffer.concat([Buffer.from('302a300506032b6570032100', 'hex'), q]);
    expect(verify(null, m, createPublicKey({ key: spki, format: 'der', type: 'spki' }), rs)).toBe(
      true,
    );
    // The same key, the same r and s, written as the ECDSA signature Guix expects: refused.
    const key = { q: new Uint8Array(q) };
    const asEcdsa = formatGuixSignature({
      digest: new Uint8Array(hash('sha256', m, 'buffer')),
      r: BigInt(`0x${hex('r')}`),
      s: BigInt(`0x${hex('s')}`),
      publicKey: key,
    });
    expect(guixErrorCode(() => verifyGuixSignature(asEcdsa, m, [key]))).toBe('signature');
  });

  test('ACL numbers: libgcrypt cannot parse bare 2 3, parses "2" "3" and #02# #03#; Accord reads all three', async () => {
    const keys = gcryptKeys.map((k) => parseGuixPublicKey(k.public));
    const acl = {
      entries: [
        {
          kind: 'k-of-n' as const,
          k: 2,
          n: 3,
          subjects: keys.map((key) => ({ kind: 'key' as const, key })),
        },
      ],
    };
    const texts = (['bare', 'quoted', 'hex'] as const).map((n) => formatGuixAcl(acl, n));
    expect(await gcrypt(texts.map((t) => `parse ${b64(t)}`))).toEqual(['error', 'ok', 'ok']);
    for (const text of texts) expect(parseGuixAcl(text).entries[0]).toMatchObject({ k: 2, n: 3 });
  });
});
