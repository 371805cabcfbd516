/**
 * Key statements as signed notes: a statement's text signed by the identity's root key, with
 * exactly that one signature, so that a statement has one note and one log entry.
 */
import { createHash } from 'node:crypto';
import {
  type NoteSigner,
  type NoteVerifier,
  SIG_TYPE_ED25519,
  TlogError,
  encodeBase64,
  formatSignedNote,
  formatVerifierKey,
  openNote,
  parseSignedNote,
  signNote,
} from '../tlog/index.js';
import { IdentityError } from './errors.js';
import {
  type KeyStatement,
  MAX_STATEMENT_SIZE,
  STATEMENT_HEADER,
  formatStatement,
  parseStatement,
} from './statement.js';

/** A statement whose note carries a valid signature by the root key. */
export interface VerifiedStatement {
  readonly statement: KeyStatement;
  /** The statement's text, the bytes the root signed. */
  readonly text: string;
  /** The signed note, verbatim (the log entry). */
  readonly note: string;
  /** {@link statementHash} of `text`: what the next statement's `previous` must be. */
  readonly hash: string;
}

/** The prefix every statement note starts with, which no `accord/build/v1` entry has. */
export const STATEMENT_NOTE_PREFIX = `${STATEMENT_HEADER}\n`;

/**
 * Base64 SHA-256 of a statement's text. The chain hashes the text, not the note: the signature
 * bytes say nothing the text does not, and a line added to a note elsewhere (a second
 * signature, say) must not break the chain.
 */
export function statementHash(text: string): string {
  return encodeBase64(createHash('sha256').update(text, 'utf8').digest());
}

function toText(note: string | Uint8Array): string {
  const size = typeof note === 'string' ? Buffer.byteLength(note) : note.length;
  if (size > MAX_STATEMENT_SIZE)
    throw new IdentityError('limit', `statement note of ${size} bytes is too large`);
  return typeof note === 'string'
    ? note
    : Buffer.from(note.buffer, note.byteOffset, note.length).toString('utf8');
}

function checkRoot(root: { readonly type: number; readonly name: string }): void {
  if (root.type !== SIG_TYPE_ED25519)
    throw new IdentityError('signature', `root key ${root.name} is not an Ed25519 note key`);
}

/** Signs a statement with the identity's root key, whose name must be the identity's. */
export function signStatement(statement: KeyStatement, root: NoteSigner): string {
  checkRoot(root);
  if (root.name !== statement.identity)
    throw new IdentityError(
      'signature',
      `root key ${root.name} cannot sign for identity ${statement.identity}`,
    );
  return signNote(formatStatement(statement), [root]);
}

/**
 * Parses a statement note (attacker-controlled) without checking its signature: at most
 * {@link MAX_STATEMENT_SIZE} bytes, valid UTF-8, exactly one signature line, named as the
 * identity, in the note's one canonical form.
 */
export function parseStatementNote(note: string | Uint8Array): {
  readonly statement: KeyStatement;
  readonly text: string;
  readonly note: string;
} {
  const raw = toText(note);
  let signed;
  try {
    signed = parseSignedNote(note, { maxSize: MAX_STATEMENT_SIZE, maxSignatures: 16 });
  } catch (cause) {
    throw new IdentityError(
      'malformed',
      `statement note: ${cause instanceof Error ? cause.message : String(cause)}`,
      { cause },
    );
  }
  const statement = parseStatement(signed.text);
  if (signed.signatures.length !== 1)
    throw new IdentityError(
      'malformed',
      `statement note has ${signed.signatures.length} signatures, want the root's alone`,
    );
  const [signature] = signed.signatures;
  if (signature?.name !== statement.identity)
    throw new IdentityError(
      'signature',
      `statement for ${statement.identity} is signed by ${signature?.name ?? 'nobody'}, not its root`,
    );
  if (formatSignedNote(signed) !== raw)
    throw new IdentityError('malformed', 'statement note is not in canonical form');
  return { statement, text: signed.text, note: raw };
}

/**
 * Verifies a statement note against the identity's root key: {@link parseStatementNote}'s
 * checks, then the one signature must be the root's (name and key ID) and verify. Throws
 * `signature` when it is not the root's, `malformed` or `limit` when it does not parse.
 */
export function verifyStatement(note: string | Uint8Array, root: NoteVerifier): VerifiedStatement {
  checkRoot(root);
  // The root's signature first: a note anyone else signed (notes come from logs and narinfos)
  // costs one signature check, not the parsing of every key it lists.
  let opened;
  try {
    opened = openNote(note, [root], { maxSize: MAX_STATEMENT_SIZE, maxSignatures: 16 });
  } catch (cause) {
    const code = cause instanceof TlogError ? cause.code : undefined;
    if (code !== 'untrusted' && code !== 'signature')
      throw new IdentityError(
        code === 'limit' ? 'limit' : 'malformed',
        `statement note: ${(cause as Error).message}`,
        { cause },
      );
    const why =
      code === 'untrusted'
        ? `not signed by the root key ${formatVerifierKey(root)}`
        : 'its signature by the root key does not verify';
    // The sequence as the text says it, for the message only (nothing signed it).
    const sequence = /\nsequence (\d{1,15})\n/.exec(toText(note).slice(0, 4096))?.[1];
    throw new IdentityError(
      'signature',
      `statement${sequence === undefined ? '' : ` ${sequence}`}: ${why}`,
      { cause },
    );
  }
  const parsed = parseStatementNote(note);
  if (parsed.statement.identity !== root.name)
    throw new IdentityError(
      'signature',
      `statement is for identity ${parsed.statement.identity}, not ${root.name}`,
    );
  // parseStatementNote allowed one signature line, named as the identity: openNote verified it.
  if (opened.verified.length !== 1) throw new Error('bug: a statement verified without its root');
  return { ...parsed, hash: statementHash(parsed.text) };
}
