/**
 * Reporter keys: a proxy signs its demand reports with its Nix signing key, used as a C2SP
 * note key (Ed25519, type 0x01, the Nix key's name), so the key users already trust in
 * nix.conf is the reporter's identity. The two uses cannot be confused: a Nix signature covers
 * a fingerprint `1;<store path>;…` with no newline, a note text starts `accord/demand/v1` and
 * ends in a newline.
 */
import type { NixPublicKey, NixSecretKey } from '../nix/index.js';
import { parseNixPublicKey } from '../nix/index.js';
import {
  type NoteSigner,
  type NoteVerifier,
  SIG_TYPE_ED25519,
  isValidKeyName,
  newSigner,
  newVerifier,
} from '../tlog/index.js';
import { DemandError } from './errors.js';

function checkName(name: string): void {
  if (!isValidKeyName(name))
    throw new DemandError(
      'malformed',
      `key name ${JSON.stringify(name)} cannot name a note key (no spaces, no '+')`,
    );
}

/** The note signer of a proxy's demand reports, from its Nix secret key. */
export function demandSigner(key: NixSecretKey): NoteSigner {
  checkName(key.name);
  return newSigner(key.name, SIG_TYPE_ED25519, key.key.seed);
}

/** The note verifier of a reporter, from its Nix public key. */
export function demandVerifier(key: NixPublicKey): NoteVerifier {
  checkName(key.name);
  return newVerifier(key.name, SIG_TYPE_ED25519, key.key.publicKey);
}

/**
 * Parses a reporters file: one Nix public key `name:base64` per line (as nix.conf's
 * `trusted-public-keys` and `nix key convert-secret-to-public` write them); blank lines and
 * lines starting with `#` are skipped. Two keys with one name are refused.
 */
export function parseReporters(text: string): NoteVerifier[] {
  const verifiers: NoteVerifier[] = [];
  text.split('\n').forEach((raw, i) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) return;
    let verifier: NoteVerifier;
    try {
      verifier = demandVerifier(parseNixPublicKey(line));
    } catch (cause) {
      throw new DemandError('malformed', `reporters line ${i + 1}: ${(cause as Error).message}`, {
        cause,
      });
    }
    if (verifiers.some((v) => v.name === verifier.name))
      throw new DemandError(
        'malformed',
        `reporters line ${i + 1}: a second key named ${verifier.name}`,
      );
    verifiers.push(verifier);
  });
  return verifiers;
}
