import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { TlogError } from './errors.js';
import {
  SIG_TYPE_COSIGNATURE_V1,
  SIG_TYPE_ED25519,
  formatSignerKey,
  formatVerifierKey,
  generateKey,
  newSigner,
  parseSignerKey,
  parseVerifierKey,
} from './keys.js';
import { formatSignedNote, openNote, parseSignedNote, signNote } from './note.js';

// golang.org/x/mod/sumdb/note's documented example (the Go reference implementation).
const GO_SKEY = 'PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz';
const GO_VKEY = 'PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW';
const GO_TEXT =
  "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n";
const GO_NOTE = `${GO_TEXT}\n— PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n`;

// c2sp.org/signed-note §Verifier keys, Example.
const SPEC_VKEY = 'example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k';
const SPEC_NOTE =
  'This is an example message.\n\n— example.com/foo Uw2QOkn8srV1yJGh2VYRlL1Tnagv1YEq6TfXppzi2ONncAlTgK7Ztg1ERYNZXsYjOBH3mFXmRKuwHjG1Yu72IneyaQM=\n';

/** Every string that differs from `s` in exactly one character, over a small alphabet. */
function singleCharChanges(s: string): string[] {
  const out: string[] = [];
  for (let i = 0; i < s.length; i++) {
    for (const c of ['A', 'a', '0', '+', '/', 'Z']) {
      if (s.charAt(i) !== c) out.push(s.slice(0, i) + c + s.slice(i + 1));
    }
  }
  return out;
}

describe('signed-note vectors', () => {
  test('signNote() reproduces the Go reference note byte for byte', () => {
    const signer = parseSignerKey(GO_SKEY);
    expect(signer.keyId.toString(16)).toBe('c74f20a3');
    expect(formatVerifierKey(signer)).toBe(GO_VKEY);
    expect(formatSignerKey(signer)).toBe(GO_SKEY);
    expect(signNote(GO_TEXT, [signer])).toBe(GO_NOTE);
  });

  test('openNote() verifies the Go reference note and the signed-note spec example', () => {
    const go = openNote(GO_NOTE, [parseVerifierKey(GO_VKEY)]);
    expect(go.text).toBe(GO_TEXT);
    expect(go.verified.map((v) => v.verifier.name)).toEqual(['PeterNeumann']);
    const spec = openNote(SPEC_NOTE, [parseVerifierKey(SPEC_VKEY)]);
    expect(spec.text).toBe('This is an example message.\n');
    expect(spec.verified).toHaveLength(1);
  });

  test('every one-character change to the spec vkey is rejected or fails to verify the note', () => {
    const changes = singleCharChanges(SPEC_VKEY);
    expect(changes.length).toBeGreaterThan(300);
    for (const vkey of changes) {
      let verifier;
      try {
        verifier = parseVerifierKey(vkey);
      } catch (e) {
        expect(e).toBeInstanceOf(TlogError);
        continue;
      }
      expect(() => openNote(SPEC_NOTE, [verifier])).toThrow(TlogError);
    }
  });

  test('every single-byte change to the spec signature is rejected', () => {
    const sigLine = SPEC_NOTE.split('\n')[2] as string;
    const b64 = sigLine.split(' ')[2] as string;
    const sig = Buffer.from(b64, 'base64');
    const verifier = parseVerifierKey(SPEC_VKEY);
    for (let i = 0; i < sig.length; i++) {
      for (const delta of [1, 0x80]) {
        const bad = Buffer.from(sig);
        bad[i] = ((bad[i] as number) + delta) & 0xff;
        const note = SPEC_NOTE.replace(b64, bad.toString('base64'));
        expect(() => openNote(note, [verifier])).toThrow(TlogError);
      }
    }
  });

  test('every one-character change to the Go private key is rejected or signs differently', () => {
    for (const skey of singleCharChanges(GO_SKEY)) {
      try {
        const signer = parseSignerKey(skey);
        expect(signNote(GO_TEXT, [signer])).not.toBe(GO_NOTE);
      } catch (e) {
        expect(e).toBeInstanceOf(TlogError);
      }
    }
  });
});

describe('keys', () => {
  test('generateKey() makes keys that sign and verify, for both signature types', () => {
    for (const type of [SIG_TYPE_ED25519, SIG_TYPE_COSIGNATURE_V1] as const) {
      const { signerKey, verifierKey } = generateKey('example.org/log', type);
      expect(signerKey).toMatch(/^PRIVATE\+KEY\+example\.org\/log\+[0-9a-f]{8}\+/);
      const signer = parseSignerKey(signerKey);
      const verifier = parseVerifierKey(verifierKey);
      expect(verifier.keyId).toBe(signer.keyId);
      expect(verifier.type).toBe(type);
      const note = signNote('hello\n', [signer]);
      expect(openNote(note, [verifier]).text).toBe('hello\n');
    }
  });

  test.each([
    ['empty name', '+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k'],
    ['space in name', 'example com+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k'],
    ['uppercase key ID', 'example.com/foo+530D903A+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k'],
    ['short key ID', 'example.com/foo+530d903+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k'],
    ['wrong key ID', 'example.com/foo+530d903b+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k'],
    ['unknown type', 'example.com/foo+530d903a+AkyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k'],
    ['short key', 'example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U0='],
    ['no parts', 'example.com/foo'],
    [
      'non-canonical base64',
      'example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2l',
    ],
  ])('parseVerifierKey() rejects a key with %s', (_, vkey) => {
    expect(() => parseVerifierKey(vkey)).toThrow(TlogError);
  });

  test('a name with a Unicode space (U+2003, U+0085) is rejected', () => {
    expect(() => newSigner('a\u2003b', SIG_TYPE_ED25519, new Uint8Array(32))).toThrow(TlogError);
    expect(() => newSigner('a\u0085b', SIG_TYPE_ED25519, new Uint8Array(32))).toThrow(TlogError);
  });
});

describe('openNote()', () => {
  const a = newSigner('a.example', SIG_TYPE_ED25519, new Uint8Array(32).fill(1));
  const b = newSigner('b.example', SIG_TYPE_ED25519, new Uint8Array(32).fill(2));
  const va = parseVerifierKey(formatVerifierKey(a));
  const vb = parseVerifierKey(formatVerifierKey(b));

  test('ignores signatures by unknown keys, including ones sharing a name or a key ID', () => {
    const other = newSigner('a.example', SIG_TYPE_ED25519, new Uint8Array(32).fill(3));
    const note = signNote('text\n', [other, b]);
    const opened = openNote(note, [vb]);
    expect(opened.verified.map((v) => v.verifier.name)).toEqual(['b.example']);
    expect(opened.unverified.map((s) => s.name)).toEqual(['a.example']);
    expect(() => openNote(note, [va])).toThrow(/does not verify|no signature/);
  });

  test('rejects the whole note when a known key signature is bad, even beside a good one', () => {
    const note = signNote('text\n', [a, b]);
    const forged = note.replace(/(— b\.example )(\S+)/, (_, prefix: string, b64: string) => {
      const sig = Buffer.from(b64, 'base64');
      sig[10] = (sig[10] as number) ^ 1; // past the key ID: same key, bad signature
      return prefix + sig.toString('base64');
    });
    expect(() => openNote(forged, [va, vb])).toThrow(TlogError);
    expect(openNote(forged, [va]).verified).toHaveLength(1);
  });

  test('splits text and signatures at the last blank line', () => {
    const note = signNote('first\n\nsecond\n', [a]);
    expect(openNote(note, [va]).text).toBe('first\n\nsecond\n');
  });

  test('accepts at least 16 signatures and refuses more than the limit', () => {
    const signers = [...Array(20).keys()].map((i) =>
      newSigner(`w${i}.example`, SIG_TYPE_ED25519, new Uint8Array(32).fill(i + 10)),
    );
    const note = signNote('many\n', signers);
    const verifiers = signers.map((s) => parseVerifierKey(formatVerifierKey(s)));
    expect(openNote(note, verifiers).verified).toHaveLength(20);
    expect(() => openNote(note, verifiers, { maxSignatures: 16 })).toThrow(/20 signatures/);
    expect(() => openNote(note, verifiers, { maxSize: 100 })).toThrow(TlogError);
  });

  test.each([
    ['no blank line', 'text\n— a.example AAAAAAA=\n'],
    ['no signature', 'text\n\n'],
    ['no final newline', 'text\n\n— a.example AAAAAAA='],
    ['a carriage return', 'text\r\n\n— a.example AAAAAAA=\n'],
    ['a tab', 'te\txt\n\n— a.example AAAAAAA=\n'],
    ['a hyphen for the em dash', 'text\n\n- a.example AAAAAAA=\n'],
    ['a short signature', 'text\n\n— a.example AAAA\n'],
    ['two spaces', 'text\n\n— a.example  AAAAAAA=\n'],
    ['a blank signature line', 'text\n\n— a.example AAAAAAA=\n\n'],
    ['a lone surrogate', 'te\uD800xt\n\n— a.example AAAAAAA=\n'],
  ])('parseSignedNote() rejects a note with %s', (_, note) => {
    expect(() => parseSignedNote(note)).toThrow(TlogError);
  });

  test('parseSignedNote() rejects invalid UTF-8 bytes', () => {
    const bytes = Buffer.concat([
      Buffer.from('te'),
      Buffer.from([0xff]),
      Buffer.from('xt\n\n— a.example AAAAAAA=\n'),
    ]);
    expect(() => parseSignedNote(bytes)).toThrow(/UTF-8/);
  });

  test('parse and format are inverse on valid notes (property)', () => {
    const line = fc.stringMatching(/^[a-z0-9 .:/-]{0,40}$/);
    fc.assert(
      fc.property(
        fc.array(line, { minLength: 1, maxLength: 5 }),
        fc.array(fc.integer({ min: 0, max: 3 }), { minLength: 1, maxLength: 4 }),
        (lines, keys) => {
          const text = `${lines.join('\n')}\n`;
          const signers = keys.map((k) =>
            newSigner(`k${k}.example`, SIG_TYPE_ED25519, new Uint8Array(32).fill(k)),
          );
          const note = signNote(text, signers);
          const parsed = parseSignedNote(note);
          expect(parsed.text).toBe(text);
          expect(formatSignedNote(parsed)).toBe(note);
        },
      ),
    );
  });

  test('arbitrary and mutated input throws only TlogError (property)', () => {
    const valid = signNote('origin\n5\nroot\n', [a, b]);
    const mutated = fc
      .tuple(fc.nat(valid.length), fc.string({ maxLength: 3 }), fc.nat(3))
      .map(([at, insert, cut]) => valid.slice(0, at) + insert + valid.slice(at + cut));
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.uint8Array(), mutated), (input) => {
        try {
          openNote(input, [va, vb]);
        } catch (e) {
          expect(e).toBeInstanceOf(TlogError);
        }
      }),
      { numRuns: 3000 },
    );
  });
});
