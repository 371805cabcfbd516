/**
 * The log's identity key statements: a statement is taken only when its identity's root key
 * signed it and it follows the last one the log holds (docs/identity.md), so the log's
 * statements are always one valid chain. They are entries like claims, under the lookup key
 * `accord-keys`.
 */
import { STATEMENTS_LOOKUP_KEY } from '../claim/index.js';
import {
  IdentityError,
  type VerifiedStatement,
  checkNext,
  foldStatements,
  parseStatementNote,
  verifyStatement,
} from '../identity/index.js';
import { HttpError } from '../server/index.js';
import { type NoteVerifier, hashLeaf } from '../tlog/index.js';
import type { LogStorage } from './storage.js';

/** Furthest in the future a statement's `issued` may be when it arrives. */
export const MAX_ISSUED_AHEAD_SECONDS = 600;

/** The identity whose statements a log takes. */
export interface StatementChain {
  /** The identity's root key. */
  readonly root: NoteVerifier;
  /** The clock, in POSIX seconds (tests set it). */
  readonly now?: () => number;
}

/**
 * Appends a statement note (attacker-controlled body) to the log and returns its index:
 * 400 unless the root signed it (413 if too large), 409 unless it follows the log's last
 * statement ({@link checkNext}) or when another was appended first. A statement already in the
 * log (same text) gets its index back.
 */
export async function acceptStatement(
  storage: LogStorage,
  chain: StatementChain,
  body: Uint8Array,
): Promise<number> {
  let next: VerifiedStatement;
  try {
    next = verifyStatement(body, chain.root);
  } catch (error) {
    if (!(error instanceof IdentityError)) throw error;
    throw new HttpError(error.code === 'limit' ? 413 : 400, error.message);
  }
  const stored = await storage.lookup(STATEMENTS_LOOKUP_KEY);
  const held = foldStatements(
    chain.root,
    stored.map((e) => e.data),
  );
  if (held.kind === 'refused' || held.ignored.length > 0) {
    const why = held.kind === 'refused' ? held.refusal.message : held.ignored[0]?.message;
    throw new HttpError(409, `the log's statements are not one chain under this root: ${why}`);
  }
  const state = held.state;
  const sequence = next.statement.sequence;
  if (state !== undefined && sequence <= state.sequence) {
    const same = stored[sequence];
    if (same !== undefined && parseStatementNote(same.data).text === next.text) return same.index;
  }
  const refusal = checkNext(state, next);
  if (refusal !== undefined) throw new HttpError(409, refusal.message);
  const now = (chain.now ?? (() => Math.floor(Date.now() / 1000)))();
  if (next.statement.issued > now + MAX_ISSUED_AHEAD_SECONDS)
    throw new HttpError(
      400,
      `statement ${sequence}: issued ${next.statement.issued} is in the future`,
    );
  const data = Buffer.from(next.note);
  const last = stored[stored.length - 1];
  const index = await storage.addChained(
    { data, leafHash: hashLeaf(data), hashPart: STATEMENTS_LOOKUP_KEY },
    last === undefined ? undefined : hashLeaf(last.data),
  );
  if (index === undefined)
    throw new HttpError(409, `statement ${sequence}: another statement was appended first`);
  return index;
}
