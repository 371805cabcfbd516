/**
 * Nix signing keys and `Sig:` values: secret keys `name:base64(seed ‖ public key)`, public keys
 * `name:base64(public key)`, signatures `name:base64(Ed25519 signature)`, as `nix key
 * generate-secret`, `nix key convert-secret-to-public` and `nix store sign` use them.
 */
import {
  type Ed25519PrivateKey,
  type Ed25519PublicKey,
  ed25519Sign,
  ed25519Verify,
  generateSeed,
  importPublicKey,
  importSeed,
} from '../crypto/index.js';
import { NixError } from './errors.js';

/** A secret key ready to sign. */
export interface NixSecretKey {
  readonly name: string;
  readonly key: Ed25519PrivateKey;
}

/** A public key ready to verify. */
export interface NixPublicKey {
  readonly name: string;
  readonly key: Ed25519PublicKey;
}

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** Splits `name:base64` into the name and decoded bytes of `size` bytes. */
function splitKey(text: string, size: number, what: string): [string, Uint8Array] {
  // Key files written by Nix or by hand may end in one newline.
  const line = text.endsWith('\n') ? text.slice(0, -1) : text;
  const colon = line.indexOf(':');
  const name = line.slice(0, colon);
  const material = line.slice(colon + 1);
  if (colon <= 0 || /[\s\0]/.test(name))
    throw new NixError('malformed', `${what}: want name:base64`);
  const bytes = BASE64.test(material) ? Buffer.from(material, 'base64') : undefined;
  if (bytes?.toString('base64') !== material || bytes.length !== size) {
    throw new NixError('malformed', `${what} ${name}: want canonical base64 of ${size} bytes`);
  }
  return [name, new Uint8Array(bytes)];
}

/**
 * Parses a secret key file. The public half stored after the seed must be the one the seed
 * derives, as a corrupted or spliced key file would otherwise sign with an unexpected key.
 */
export function parseNixSecretKey(text: string): NixSecretKey {
  const [name, bytes] = splitKey(text, 64, 'Nix secret key');
  const key = importSeed(bytes.subarray(0, 32));
  if (!Buffer.from(key.publicKey).equals(bytes.subarray(32))) {
    throw new NixError('signature', `Nix secret key ${name}: public half does not match the seed`);
  }
  return { name, key };
}

/** Parses a public key `name:base64(32 bytes)`. */
export function parseNixPublicKey(text: string): NixPublicKey {
  const [name, bytes] = splitKey(text, 32, 'Nix public key');
  return { name, key: importPublicKey(bytes) };
}

/** Formats a secret key as `nix key generate-secret` prints it (no trailing newline). */
export function formatNixSecretKey(secret: NixSecretKey): string {
  const bytes = Buffer.concat([secret.key.seed, secret.key.publicKey]);
  return `${secret.name}:${bytes.toString('base64')}`;
}

/** Formats a public key as `nix key convert-secret-to-public` prints it. */
export function formatNixPublicKey(key: NixPublicKey | NixSecretKey): string {
  return `${key.name}:${Buffer.from(key.key.publicKey).toString('base64')}`;
}

/** The public half of a secret key. */
export function nixPublicKey(secret: NixSecretKey): NixPublicKey {
  return { name: secret.name, key: importPublicKey(secret.key.publicKey) };
}

/** Generates a new key named `name` (for example `cache.example.org-1`). */
export function generateNixSecretKey(name: string): NixSecretKey {
  if (name.length === 0 || /[\s:\0]/.test(name)) {
    throw new NixError('malformed', `Nix key name ${JSON.stringify(name)} is not valid`);
  }
  return { name, key: generateSeed() };
}

/** Signs `message` and returns the `Sig:` value `name:base64(signature)`. */
export function signDetached(message: string, secret: NixSecretKey): string {
  const sig = ed25519Sign(secret.key, Buffer.from(message));
  return `${secret.name}:${Buffer.from(sig).toString('base64')}`;
}

/**
 * Checks one `Sig:` value against trusted public keys: true when its key name is trusted and
 * the signature over `message` verifies. Unknown names and malformed values are false, as in
 * Nix.
 */
export function verifyDetached(
  message: string,
  sig: string,
  keys: readonly NixPublicKey[],
): boolean {
  const colon = sig.indexOf(':');
  if (colon <= 0) return false;
  const name = sig.slice(0, colon);
  const material = sig.slice(colon + 1);
  const key = keys.find((k) => k.name === name);
  if (key === undefined || !BASE64.test(material)) return false;
  const bytes = Buffer.from(material, 'base64');
  if (bytes.toString('base64') !== material) return false;
  return ed25519Verify(key.key, Buffer.from(message), bytes);
}
