import { createHash } from 'node:crypto';
import { describe, expect, test } from 'vitest';
import { parseCheckpoint } from './checkpoint.js';
import {
  COSIGNATURE_SIZE,
  cosignatureMessage,
  cosignatureTimestamp,
  encodeTimestampedSignature,
} from './cosignature.js';
import { encodeUtf8 } from './encoding.js';
import { TlogError } from './errors.js';
import {
  SIG_TYPE_COSIGNATURE_V1,
  computeKeyId,
  formatVerifierKey,
  newSigner,
  parseVerifierKey,
} from './keys.js';
import { openNote, parseSignatureLine, signNote } from './note.js';

// c2sp.org/tlog-cosignature: the example checkpoint, its witness line and signed message.
const CHECKPOINT =
  'example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n';
const WITNESS_LINE =
  '— witness.example.com/w1 jWbPPwAAAABkGFDLEZMHwSRaJNiIDoe9DYn/zXcrtPHeolMI5OWXEhZCB9dlrDJsX3b2oyin1nPZqhf5nNo0xUe+mbIUBkBIfZ+qnA==';
const SIGNED_MESSAGE = `cosignature/v1\ntime 1679315147\n${CHECKPOINT}`;

describe('the tlog-cosignature spec example', () => {
  // The spec publishes no public key for witness.example.com/w1, so its Ed25519 signature
  // cannot be checked; its framing and the message it signs can, byte for byte.
  test('the witness line frames key ID, timestamp 1679315147 and a 64-byte signature', () => {
    const sig = parseSignatureLine(WITNESS_LINE);
    expect(sig.name).toBe('witness.example.com/w1');
    expect(sig.keyId.toString(16)).toBe('8d66cf3f');
    expect(sig.signature).toHaveLength(COSIGNATURE_SIZE);
    expect(cosignatureTimestamp(sig.signature)).toBe(1679315147);
  });

  test('cosignatureMessage() builds the spec example message exactly', () => {
    parseCheckpoint(CHECKPOINT);
    const message = cosignatureMessage(encodeUtf8(CHECKPOINT), 1679315147n);
    expect(Buffer.from(message).toString()).toBe(SIGNED_MESSAGE);
  });
});

describe('v1 cosignatures', () => {
  const seed = new Uint8Array(32).fill(9);
  const cosigner = newSigner('witness.example/w1', SIG_TYPE_COSIGNATURE_V1, seed, {
    now: () => 1700000000,
  });
  const verifier = parseVerifierKey(formatVerifierKey(cosigner));

  test('the key ID hashes name, newline, 0x04 and the public key', () => {
    const digest = createHash('sha256')
      .update('witness.example/w1\n\x04')
      .update(cosigner.publicKey)
      .digest();
    expect(verifier.keyId).toBe(digest.readUInt32BE(0));
    expect(computeKeyId('witness.example/w1', 1, cosigner.publicKey)).not.toBe(verifier.keyId);
    expect(formatVerifierKey(cosigner)).toMatch(/^witness\.example\/w1\+[0-9a-f]{8}\+B/);
  });

  test('a cosigned checkpoint verifies and carries its timestamp', () => {
    const note = signNote(CHECKPOINT, [cosigner]);
    const opened = openNote(note, [verifier]);
    const sig = opened.verified[0]?.signature.signature as Uint8Array;
    expect(cosignatureTimestamp(sig)).toBe(1700000000);
  });

  test('every single-byte change to the cosignature is rejected', () => {
    const note = signNote(CHECKPOINT, [cosigner]);
    const line = note.split('\n')[4] as string;
    const b64 = line.split(' ')[2] as string;
    const bytes = Buffer.from(b64, 'base64');
    for (let i = 4; i < bytes.length; i++) {
      const bad = Buffer.from(bytes);
      bad[i] = (bad[i] as number) ^ 0x01;
      expect(() => openNote(note.replace(b64, bad.toString('base64')), [verifier])).toThrow(
        TlogError,
      );
    }
  });

  test('a cosignature does not verify for a different checkpoint or as a plain note signature', () => {
    const note = signNote(CHECKPOINT, [cosigner]);
    const other = note.replace('20852163', '20852164');
    expect(() => openNote(other, [verifier])).toThrow(TlogError);
  });

  test('timestamps above 2^63-1 are refused', () => {
    expect(() => encodeTimestampedSignature(2n ** 63n, new Uint8Array(64))).toThrow(TlogError);
    const framed = Buffer.alloc(72);
    framed.writeBigUInt64BE(2n ** 63n);
    expect(() => cosignatureTimestamp(framed)).toThrow(TlogError);
  });
});
