/** Test support: deterministic identity root keys, log keys, Nix and Guix keys, statements. */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { importSeed } from '../../src/crypto/index.js';
import { generateGuixSecretKey, guixPublicKey, parseGuixPublicKey } from '../../src/guix/index.js';
import {
  type KeyStatement,
  formatGuixKey,
  formatLogKey,
  formatNixKey,
  signStatement,
  statementHash,
} from '../../src/identity/index.js';
import {
  type NoteSigner,
  type NoteVerifier,
  SIG_TYPE_ED25519,
  newSigner,
  newVerifier,
} from '../../src/tlog/index.js';

const seed = (label: string) => createHash('sha256').update(`accord test ${label}`).digest();

/** The root signer of identity `name` (`variant` gives another key with the same name). */
export function rootSigner(name = 'builder1.example.org', variant = ''): NoteSigner {
  return newSigner(name, SIG_TYPE_ED25519, seed(`root ${name} ${variant}`));
}

/** A signer's verifier. */
export function verifierOf(signer: NoteSigner): NoteVerifier {
  return newVerifier(signer.name, signer.type, signer.publicKey);
}

/** Log signer `i` (origin `builder1.example.org/log` unless given). */
export function logSigner(i: number, origin = 'builder1.example.org/log'): NoteSigner {
  return newSigner(origin, SIG_TYPE_ED25519, seed(`log ${origin} ${i}`));
}

/** Log key `i` in statement form. */
export function logKey(i: number, origin?: string): string {
  return formatLogKey(logSigner(i, origin));
}

/** Nix public key `i` (`cache-<i>.example.org-1:…`) in statement form. */
export function nixKey(i: number): string {
  const key = importSeed(seed(`nix ${i}`));
  return formatNixKey({ name: `cache-${i}.example.org-1`, key });
}

/** ci.guix.gnu.org's real public key (test/vectors/guix), in statement form. */
export function realGuixKey(): string {
  const file = new URL('../vectors/guix/ci.guix.gnu.org.pub', import.meta.url);
  return formatGuixKey(parseGuixPublicKey(readFileSync(file)));
}

/** A fresh (random) Guix key in statement form. */
export function guixKey(): string {
  return formatGuixKey(guixPublicKey(generateGuixSecretKey()));
}

/** cache.nixos.org's real Nix public key. */
export const CACHE_NIXOS_ORG_KEY = 'cache.nixos.org-1:6NCHdD59X431o0gWypbMrAURkbJ16ZPMQFGspcDShjY=';

/** Builds a chain of signed statements, each chaining onto the last. */
export class Chain {
  readonly notes: string[] = [];
  private last: { text: string; note: string } | undefined;

  constructor(readonly root: NoteSigner = rootSigner()) {}

  /** Signs the next statement (sequence and previous filled in) and returns its note. */
  next(s: Omit<KeyStatement, 'identity' | 'sequence' | 'previous'>): string {
    const statement: KeyStatement = {
      identity: this.root.name,
      sequence: this.notes.length,
      ...(this.last === undefined ? {} : { previous: statementHash(this.last.text) }),
      issued: s.issued,
      keys: s.keys,
      revocations: s.revocations,
    };
    const note = signStatement(statement, this.root);
    this.last = { text: note.slice(0, note.lastIndexOf('\n\n') + 1), note };
    this.notes.push(note);
    return note;
  }

  /** The hash the next statement must name as previous. */
  head(): string | undefined {
    return this.last === undefined ? undefined : statementHash(this.last.text);
  }
}
