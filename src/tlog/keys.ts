/**
 * C2SP signed-note keys: key names, key IDs, verifier keys (`name+hash+base64`), private keys
 * (`PRIVATE+KEY+name+hash+base64`), for Ed25519 note signatures (type 0x01) and Ed25519 v1
 * cosignatures (type 0x04).
 */
import { createHash } from 'node:crypto';
import {
  type Ed25519PrivateKey,
  PUBLIC_KEY_SIZE,
  SEED_SIZE,
  ed25519Sign,
  ed25519Verify,
  generateSeed,
  importPublicKey,
  importSeed,
} from '../crypto/index.js';
import {
  cosignatureMessage,
  decodeTimestampedSignature,
  encodeTimestampedSignature,
} from './cosignature.js';
import { TlogError } from './errors.js';
import { decodeBase64, encodeBase64, encodeUtf8 } from './encoding.js';

/** Signature type of Ed25519 note signatures (signed-note). */
export const SIG_TYPE_ED25519 = 0x01;
/** Signature type of timestamped Ed25519 checkpoint cosignatures (tlog-cosignature/v1). */
export const SIG_TYPE_COSIGNATURE_V1 = 0x04;

/** The signature types this implementation signs and verifies. */
export type SignatureType = typeof SIG_TYPE_ED25519 | typeof SIG_TYPE_COSIGNATURE_V1;

/** Checks a note signature against the note text. */
export interface NoteVerifier {
  readonly name: string;
  /** The 32-bit key ID, as an unsigned number. */
  readonly keyId: number;
  readonly type: SignatureType;
  readonly publicKey: Uint8Array;
  /** True when `signature` (the bytes after the key ID) is valid for `text`. */
  verify(text: Uint8Array, signature: Uint8Array): boolean;
}

/** Produces note signatures. */
export interface NoteSigner {
  readonly name: string;
  readonly keyId: number;
  readonly type: SignatureType;
  readonly publicKey: Uint8Array;
  /** The signature (without key ID) of `text`. */
  sign(text: Uint8Array): Uint8Array;
}

/** Options for cosigners: the clock giving the POSIX time a cosignature carries. */
export interface SignerOptions {
  readonly now?: () => number;
}

const SPACE = /\p{White_Space}/u;

/** A valid key name is non-empty and has no Unicode space and no `+` (signed-note §Format). */
export function isValidKeyName(name: string): boolean {
  return name.length > 0 && !SPACE.test(name) && !name.includes('+') && !/[\0-\x1f]/.test(name);
}

function checkKeyName(name: string): void {
  if (!isValidKeyName(name)) {
    throw new TlogError('malformed', `invalid key name ${JSON.stringify(name)}`);
  }
}

/** `SHA-256(name ‖ 0x0A ‖ type ‖ public key)[:4]` as an unsigned 32-bit number. */
export function computeKeyId(name: string, type: number, publicKey: Uint8Array): number {
  const digest = createHash('sha256')
    .update(encodeUtf8(name))
    .update(new Uint8Array([0x0a, type]))
    .update(publicKey)
    .digest();
  return digest.readUInt32BE(0);
}

function formatKeyId(keyId: number): string {
  return keyId.toString(16).padStart(8, '0');
}

function parseKeyId(text: string, what: string): number {
  if (!/^[0-9a-f]{8}$/.test(text)) throw new TlogError('malformed', `${what}: bad key ID`);
  return Number.parseInt(text, 16);
}

function checkType(type: number | undefined, what: string): SignatureType {
  if (type === SIG_TYPE_ED25519 || type === SIG_TYPE_COSIGNATURE_V1) return type;
  throw new TlogError('malformed', `${what}: unsupported signature type ${type ?? 'none'}`);
}

/** Builds a verifier for a raw Ed25519 public key under `name` and signature `type`. */
export function newVerifier(
  name: string,
  type: SignatureType,
  publicKey: Uint8Array,
): NoteVerifier {
  checkKeyName(name);
  let key;
  try {
    key = importPublicKey(publicKey);
  } catch (cause) {
    throw new TlogError('signature', `invalid Ed25519 public key for ${name}`, { cause });
  }
  const keyId = computeKeyId(name, type, key.publicKey);
  const verify =
    type === SIG_TYPE_ED25519
      ? (text: Uint8Array, sig: Uint8Array) => ed25519Verify(key, text, sig)
      : (text: Uint8Array, sig: Uint8Array) => {
          const decoded = decodeTimestampedSignature(sig);
          if (decoded === undefined) return false;
          return ed25519Verify(key, cosignatureMessage(text, decoded.timestamp), decoded.signature);
        };
  return { name, keyId, type, publicKey: key.publicKey, verify };
}

/** Builds a signer for an Ed25519 seed under `name` and signature `type`. */
export function newSigner(
  name: string,
  type: SignatureType,
  seed: Uint8Array,
  options: SignerOptions = {},
): NoteSigner & { readonly seed: Uint8Array } {
  checkKeyName(name);
  let key: Ed25519PrivateKey;
  try {
    key = importSeed(seed);
  } catch (cause) {
    throw new TlogError('signature', `invalid Ed25519 seed for ${name}`, { cause });
  }
  const keyId = computeKeyId(name, type, key.publicKey);
  const now = options.now ?? (() => Math.floor(Date.now() / 1000));
  const sign =
    type === SIG_TYPE_ED25519
      ? (text: Uint8Array) => ed25519Sign(key, text)
      : (text: Uint8Array) => {
          const timestamp = BigInt(now());
          return encodeTimestampedSignature(
            timestamp,
            ed25519Sign(key, cosignatureMessage(text, timestamp)),
          );
        };
  return { name, keyId, type, publicKey: key.publicKey, seed: key.seed, sign };
}

/** Splits `name+hash+base64` (the base64 may itself contain `+`). */
function splitKey(text: string, what: string): [string, string, string] {
  const first = text.indexOf('+');
  const second = first < 0 ? -1 : text.indexOf('+', first + 1);
  if (second < 0) throw new TlogError('malformed', `${what}: want name+hash+base64`);
  return [text.slice(0, first), text.slice(first + 1, second), text.slice(second + 1)];
}

/**
 * Parses a verifier key `<name>+<hex key ID>+<base64(type ‖ public key)>` (signed-note
 * §Verifier keys). The key ID must equal the one computed from name, type and key.
 */
export function parseVerifierKey(vkey: string): NoteVerifier {
  const [name, hash, material] = splitKey(vkey, 'verifier key');
  checkKeyName(name);
  const keyId = parseKeyId(hash, 'verifier key');
  const bytes = decodeBase64(material, 'verifier key');
  const type = checkType(bytes[0], 'verifier key');
  if (bytes.length !== 1 + PUBLIC_KEY_SIZE) {
    throw new TlogError('malformed', `verifier key: Ed25519 key of ${bytes.length - 1} bytes`);
  }
  const verifier = newVerifier(name, type, bytes.subarray(1));
  if (verifier.keyId !== keyId) {
    throw new TlogError('malformed', `verifier key ${name}: key ID does not match the key`);
  }
  return verifier;
}

/** Formats a verifier key for a signer or verifier. */
export function formatVerifierKey(key: {
  readonly name: string;
  readonly type: SignatureType;
  readonly publicKey: Uint8Array;
}): string {
  const material = encodeBase64(Buffer.concat([new Uint8Array([key.type]), key.publicKey]));
  return `${key.name}+${formatKeyId(computeKeyId(key.name, key.type, key.publicKey))}+${material}`;
}

const PRIVATE_PREFIX = 'PRIVATE+KEY+';

/**
 * Parses a private key `PRIVATE+KEY+<name>+<hex key ID>+<base64(type ‖ 32-byte seed)>`; the key
 * ID must match the public key derived from the seed, which catches a corrupted key file.
 */
export function parseSignerKey(
  skey: string,
  options: SignerOptions = {},
): NoteSigner & { readonly seed: Uint8Array } {
  if (!skey.startsWith(PRIVATE_PREFIX)) {
    throw new TlogError('malformed', 'private key: missing PRIVATE+KEY+ prefix');
  }
  const [name, hash, material] = splitKey(skey.slice(PRIVATE_PREFIX.length), 'private key');
  checkKeyName(name);
  const keyId = parseKeyId(hash, 'private key');
  const bytes = decodeBase64(material, 'private key');
  const type = checkType(bytes[0], 'private key');
  if (bytes.length !== 1 + SEED_SIZE) {
    throw new TlogError('malformed', `private key: Ed25519 seed of ${bytes.length - 1} bytes`);
  }
  const signer = newSigner(name, type, bytes.subarray(1), options);
  if (signer.keyId !== keyId) {
    throw new TlogError('malformed', `private key ${name}: key ID does not match the key`);
  }
  return signer;
}

/** Formats a private key for a signer made by {@link newSigner} or {@link parseSignerKey}. */
export function formatSignerKey(key: {
  readonly name: string;
  readonly type: SignatureType;
  readonly publicKey: Uint8Array;
  readonly seed: Uint8Array;
}): string {
  const material = encodeBase64(Buffer.concat([new Uint8Array([key.type]), key.seed]));
  const keyId = formatKeyId(computeKeyId(key.name, key.type, key.publicKey));
  return `${PRIVATE_PREFIX}${key.name}+${keyId}+${material}`;
}

/**
 * Generates a new key named `name` for signature `type` (0x01 for a log, 0x04 for a witness):
 * returns the private key text and the verifier key text.
 */
export function generateKey(
  name: string,
  type: SignatureType = SIG_TYPE_ED25519,
): { signerKey: string; verifierKey: string } {
  const signer = newSigner(name, type, generateSeed().seed);
  return { signerKey: formatSignerKey(signer), verifierKey: formatVerifierKey(signer) };
}
