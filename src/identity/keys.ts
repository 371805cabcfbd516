/**
 * The keys an identity's statements name, each in the one text form a statement line holds:
 * a log's signed-note verifier key, a Nix cache's public key, a Guix key's canonical
 * s-expression in base64.
 */
import {
  type GuixPublicKey,
  formatCanonicalSexp,
  parseCanonicalSexp,
  parseGuixPublicKey,
  publicKeyFromSexp,
  publicKeySexp,
} from '../guix/index.js';
import { type NixPublicKey, formatNixPublicKey, parseNixPublicKey } from '../nix/index.js';
import {
  type NoteVerifier,
  SIG_TYPE_ED25519,
  decodeBase64,
  encodeBase64,
  formatVerifierKey,
  parseVerifierKey,
} from '../tlog/index.js';
import { IdentityError } from './errors.js';

/** What a key speaks for: a log's checkpoints, a Nix cache's narinfos, a Guix server's. */
export type KeyKind = 'log' | 'nix' | 'guix';

/** The kinds in the order a statement lists them. */
export const KEY_KINDS: readonly KeyKind[] = ['log', 'nix', 'guix'];

/** Longest key text accepted in a statement line (a Guix key is about 130 characters). */
export const MAX_KEY_TEXT = 1024;

function bad(kind: KeyKind, text: string, why: string, cause?: unknown): IdentityError {
  const shown = text.length > 80 ? `${text.slice(0, 80)}…` : text;
  return new IdentityError('malformed', `${kind} key ${JSON.stringify(shown)}: ${why}`, { cause });
}

function reason(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/**
 * Log keys parsed before, by text: importing a key costs far more than looking it up, and the
 * proxy and monitor ask for the same few keys on every checkpoint. Verifiers are immutable;
 * errors are not kept; the oldest is dropped past the bound.
 */
const parsedLogKeys = new Map<string, NoteVerifier>();
const MAX_PARSED_LOG_KEYS = 1024;

/** A log key (attacker-controlled text): an Ed25519 note verifier key in its canonical form. */
export function parseLogKey(text: string): NoteVerifier {
  const known = parsedLogKeys.get(text);
  if (known !== undefined) return known;
  const verifier = parseNewLogKey(text);
  if (parsedLogKeys.size >= MAX_PARSED_LOG_KEYS)
    parsedLogKeys.delete(parsedLogKeys.keys().next().value as string);
  parsedLogKeys.set(text, verifier);
  return verifier;
}

function parseNewLogKey(text: string): NoteVerifier {
  if (text.length > MAX_KEY_TEXT) throw bad('log', text, 'too long');
  let verifier: NoteVerifier;
  try {
    verifier = parseVerifierKey(text);
  } catch (cause) {
    throw bad('log', text, reason(cause), cause);
  }
  if (verifier.type !== SIG_TYPE_ED25519)
    throw bad('log', text, 'not an Ed25519 note key (type 0x01)');
  if (formatVerifierKey(verifier) !== text) throw bad('log', text, 'not in canonical form');
  return verifier;
}

/** A Nix key (attacker-controlled text): `name:base64(32-byte public key)`, nothing around it. */
export function parseNixKey(text: string): NixPublicKey {
  if (text.length > MAX_KEY_TEXT) throw bad('nix', text, 'too long');
  let key: NixPublicKey;
  try {
    key = parseNixPublicKey(text);
  } catch (cause) {
    throw bad('nix', text, reason(cause), cause);
  }
  if (formatNixPublicKey(key) !== text) throw bad('nix', text, 'not in canonical form');
  return key;
}

/**
 * A Guix key (attacker-controlled text): base64 of the canonical s-expression
 * `(public-key (ecc (curve Ed25519) (q …)))`, exactly as {@link formatGuixKey} writes it.
 */
export function parseGuixKey(text: string): GuixPublicKey {
  if (text.length > MAX_KEY_TEXT) throw bad('guix', text, 'too long');
  let key: GuixPublicKey;
  try {
    key = publicKeyFromSexp(parseCanonicalSexp(decodeBase64(text, 'guix key')));
  } catch (cause) {
    throw bad('guix', text, reason(cause), cause);
  }
  if (formatGuixKey(key) !== text) throw bad('guix', text, 'not in canonical form');
  return key;
}

/** The statement text of a Guix key. */
export function formatGuixKey(key: GuixPublicKey): string {
  return encodeBase64(formatCanonicalSexp(publicKeySexp({ q: key.q })));
}

/** The statement text of a log key. */
export function formatLogKey(key: {
  readonly name: string;
  readonly type: number;
  readonly publicKey: Uint8Array;
}): string {
  if (key.type !== SIG_TYPE_ED25519)
    throw new IdentityError('signature', `log key ${key.name}: not an Ed25519 note key`);
  return formatVerifierKey({ ...key, type: SIG_TYPE_ED25519 });
}

/** The statement text of a Nix key. */
export function formatNixKey(key: NixPublicKey): string {
  return formatNixPublicKey(key);
}

/** Checks that `text` is a key of `kind` in its statement form; throws `malformed` if not. */
export function checkKeyText(kind: KeyKind, text: string): void {
  if (kind === 'log') parseLogKey(text);
  else if (kind === 'nix') parseNixKey(text);
  else parseGuixKey(text);
}

/**
 * A key's statement form from any text a user or a configuration gives: a log vkey or a Nix
 * key as they are, a Guix key as its canonical base64 or as the key file's s-expression text.
 */
export function normalizeKeyText(kind: KeyKind, text: string): string {
  if (kind === 'guix' && text.trimStart().startsWith('(')) {
    try {
      return formatGuixKey(parseGuixPublicKey(text));
    } catch (cause) {
      throw bad('guix', text, reason(cause), cause);
    }
  }
  checkKeyText(kind, text);
  return text;
}
