/** Key files: written with mode 0600, never silently overwritten. */
import { chmodSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import {
  type NoteSigner,
  type NoteVerifier,
  SIG_TYPE_ED25519,
  parseSignerKey,
  parseVerifierKey,
} from '../tlog/index.js';
import { readOptionFile } from './command.js';

/** Writes `text` to a new file readable only by its owner; refuses an existing file. */
export function writeSecretFile(path: string, text: string): void {
  if (existsSync(path)) throw new Error(`${path} exists; not overwriting it`);
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, text, { mode: 0o600, flag: 'wx' });
  chmodSync(path, 0o600);
}

/**
 * Reads the signed-note private key file (one line, `PRIVATE+KEY+…`) option `flag` names; a
 * Nix secret key there is named as such.
 */
export function readSignerKey(
  path: string,
  flag = '--key',
): NoteSigner & { readonly seed: Uint8Array } {
  return readOptionFile(flag, path, (text) => {
    const line = text.trim();
    if (/^[^\s:+]+:[A-Za-z0-9+/]+=*$/.test(line))
      throw new Error(
        "this is a Nix secret key (nix key generate-secret); make a log or witness key with 'accord keygen'",
      );
    return parseSignerKey(line);
  });
}

/**
 * Reads an identity's root verifier key (one line, `<name>+<id>+<base64>`, an Ed25519 note
 * key) from the file option `flag` names.
 */
export function readRootKey(flag: string, path: string): NoteVerifier {
  return readOptionFile(flag, path, (text) => {
    const line = text.trim();
    if (line.startsWith('PRIVATE+KEY+'))
      throw new Error(
        'this is a private key; give the root verifier key (accord identity init prints it)',
      );
    const key = parseVerifierKey(line);
    if (key.type !== SIG_TYPE_ED25519) throw new Error('not an Ed25519 note key (type 0x01)');
    return key;
  });
}
