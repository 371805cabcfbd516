/** Key files: written with mode 0600, never silently overwritten. */
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { type NoteSigner, parseSignerKey } from '../tlog/index.js';

/** Writes `text` to a new file readable only by its owner; refuses an existing file. */
export function writeSecretFile(path: string, text: string): void {
  if (existsSync(path)) throw new Error(`${path} exists; not overwriting it`);
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, text, { mode: 0o600, flag: 'wx' });
  chmodSync(path, 0o600);
}

/** Reads a signed-note private key file (one line, `PRIVATE+KEY+…`). */
export function readSignerKey(path: string): NoteSigner & { readonly seed: Uint8Array } {
  return parseSignerKey(readFileSync(path, 'utf8').trim());
}
