/**
 * Following an identity's statements: each must be signed by the root, chain onto the one
 * before and keep every promise it made. The rules live here, in {@link checkNext}, for the
 * log that accepts statements, the proxy that follows them and the monitor that audits them.
 */
import { type NoteVerifier, formatVerifierKey } from '../tlog/index.js';
import { IdentityError } from './errors.js';
import { type VerifiedStatement, parseStatementNote, verifyStatement } from './note.js';
import type { KeyStatement, StatementKey } from './statement.js';

/**
 * Why a statement is refused:
 * - `not-root`: not signed by the root key, or not a statement at all (it proves nothing
 *   about the identity: anyone can write one; it is set aside);
 * - `first`: the first statement an identity has is not sequence 0;
 * - `gap`: a sequence number is missing before this one;
 * - `equivocation`: two different statements with one sequence number;
 * - `chain`: `previous` is not the hash of the statement before;
 * - `issued-back`: issued before the statement before;
 * - `revocation-removed`: a revocation of the statement before is not in this one;
 * - `revocation-later`: a revocation's `since` moved later;
 * - `retroactive`: a key trusted for a time before this statement was issued that the
 *   statement before did not trust it for.
 *
 * All but `not-root` and `gap` come with two notes the root signed that cannot both hold:
 * evidence anyone can re-check with the root key ({@link verifyContradiction}).
 */
export type RefusalCode =
  | 'not-root'
  | 'first'
  | 'gap'
  | 'equivocation'
  | 'chain'
  | 'issued-back'
  | 'revocation-removed'
  | 'revocation-later'
  | 'retroactive';

/** A refused statement, with why and the notes that show it (the earlier first). */
export interface Refusal {
  readonly code: RefusalCode;
  readonly message: string;
  /** The sequence number of the refused statement, when it has one. */
  readonly sequence?: number;
  readonly notes: readonly string[];
}

/** What an identity's statements say so far: its latest statement, and the chain that led to it. */
export interface IdentityState {
  readonly name: string;
  /** The root key, as its verifier key text. */
  readonly root: string;
  readonly sequence: number;
  readonly issued: number;
  /** The latest statement's hash: the `previous` of the next one. */
  readonly head: string;
  readonly statement: KeyStatement;
  /** Every statement note of the chain, by sequence (the evidence for this state). */
  readonly notes: readonly string[];
}

function refuse(
  code: RefusalCode,
  message: string,
  next: VerifiedStatement,
  earlier?: string,
): Refusal {
  return {
    code,
    message: `statement ${next.statement.sequence}: ${message}`,
    sequence: next.statement.sequence,
    notes: earlier === undefined ? [next.note] : [earlier, next.note],
  };
}

type Interval = { readonly from: number; readonly until?: number };

/**
 * The first moment `next` trusts that `last` did not (`undefined` if none): the start of
 * `next` minus `last`, two intervals [from, until).
 */
function firstNewMoment(next: Interval, last: Interval | undefined): number | undefined {
  if (last === undefined) return next.from;
  if (next.from < last.from) return next.from;
  if (last.until === undefined) return undefined;
  const start = Math.max(next.from, last.until);
  return next.until === undefined || start < next.until ? start : undefined;
}

const keyId = (k: { kind: string; key: string }) => `${k.kind} ${k.key}`;

/**
 * Whether `next` may follow `state` (nothing yet when undefined): sequence 0 first, then one
 * more each time, `previous` the hash of the last statement's text, `issued` not earlier,
 * every revocation kept with a `since` no later, and no key trusted for a moment before
 * `next.issued` that the last statement did not trust it for (no retroactive trust; the first
 * statement may name keys already in use). Returns the refusal, or undefined when it may.
 * The signature is the caller's to have checked ({@link verifyStatement}).
 */
export function checkNext(
  state: IdentityState | undefined,
  next: VerifiedStatement,
): Refusal | undefined {
  const s = next.statement;
  if (state === undefined) {
    return s.sequence === 0
      ? undefined
      : refuse('first', `the first statement must have sequence 0`, next);
  }
  const lastNote = state.notes[state.sequence];
  if (s.sequence <= state.sequence) {
    const same = state.notes[s.sequence];
    if (same === undefined) throw new Error('bug: a state lacks a note of its chain');
    return refuse('equivocation', `differs from statement ${s.sequence} already seen`, next, same);
  }
  if (s.sequence !== state.sequence + 1)
    return refuse('gap', `statement ${state.sequence + 1} is missing`, next, lastNote);
  if (s.previous !== state.head)
    return refuse(
      'chain',
      `previous ${s.previous ?? 'none'} is not statement ${state.sequence}'s hash ${state.head}`,
      next,
      lastNote,
    );
  const last = state.statement;
  if (s.issued < last.issued)
    return refuse(
      'issued-back',
      `issued ${s.issued} is before statement ${last.sequence}'s ${last.issued}`,
      next,
      lastNote,
    );
  const revoked = new Map(s.revocations.map((r) => [keyId(r), r.since]));
  for (const r of last.revocations) {
    const since = revoked.get(keyId(r));
    if (since === undefined)
      return refuse(
        'revocation-removed',
        `drops the revocation of ${r.kind} key ${r.key}`,
        next,
        lastNote,
      );
    if (since > r.since)
      return refuse(
        'revocation-later',
        `moves the revocation of ${r.kind} key ${r.key} from ${r.since} to ${since}`,
        next,
        lastNote,
      );
  }
  const before = new Map<string, StatementKey>(last.keys.map((k) => [keyId(k), k]));
  for (const k of s.keys) {
    const moment = firstNewMoment(k, before.get(keyId(k)));
    if (moment !== undefined && moment < s.issued)
      return refuse(
        'retroactive',
        `trusts ${k.kind} key ${k.key} from ${moment}, before it was issued (${s.issued})`,
        next,
        lastNote,
      );
  }
  return undefined;
}

/** The state after `next`, which {@link checkNext} accepted. */
export function applyStatement(
  state: IdentityState | undefined,
  next: VerifiedStatement,
  root: NoteVerifier,
): IdentityState {
  return {
    name: next.statement.identity,
    root: formatVerifierKey(root),
    sequence: next.statement.sequence,
    issued: next.statement.issued,
    head: next.hash,
    statement: next.statement,
    notes: [...(state?.notes ?? []), next.note],
  };
}

/** What following an identity's statements gave. */
export type FoldResult =
  | {
      /** Every statement root-signed chained and kept its promises. */
      readonly kind: 'ok';
      /** The state after the last one; undefined when there was none. */
      readonly state: IdentityState | undefined;
      /** Notes set aside: not root-signed statements (`not-root`), to report. */
      readonly ignored: readonly Refusal[];
    }
  | {
      /** Root-signed statements contradict each other, or one is missing. */
      readonly kind: 'refused';
      readonly refusal: Refusal;
      /** The state after the statements before the refused one. */
      readonly state: IdentityState | undefined;
      readonly ignored: readonly Refusal[];
    };

/**
 * Follows an identity's statement notes (attacker-controlled, in any order, repeats allowed)
 * from `base` (or from nothing) with the identity's root key. Notes that are not statements
 * signed by the root are set aside (`ignored`); the root-signed ones are taken by sequence,
 * and the first that {@link checkNext} refuses (two different ones with one sequence is
 * `equivocation`) stops the fold, with the state before it.
 */
export function foldStatements(
  root: NoteVerifier,
  notes: readonly (string | Uint8Array)[],
  base?: IdentityState,
): FoldResult {
  if (base !== undefined && base.root !== formatVerifierKey(root))
    throw new IdentityError('signature', `state of ${base.name} is not under this root key`);
  const ignored: Refusal[] = [];
  const bySequence = new Map<number, VerifiedStatement[]>();
  for (const note of notes) {
    let verified: VerifiedStatement;
    try {
      verified = verifyStatement(note, root);
    } catch (error) {
      if (!(error instanceof IdentityError)) throw error;
      const text = typeof note === 'string' ? note : Buffer.from(note).toString('utf8');
      ignored.push({ code: 'not-root', message: error.message, notes: [text] });
      continue;
    }
    const list = bySequence.get(verified.statement.sequence) ?? [];
    if (!list.some((v) => v.text === verified.text)) list.push(verified);
    bySequence.set(verified.statement.sequence, list);
  }
  let state = base;
  for (const sequence of [...bySequence.keys()].sort((a, b) => a - b)) {
    const [first, second] = bySequence.get(sequence) as VerifiedStatement[];
    if (first === undefined) continue;
    // A statement already in the base state, seen again: the same text is nothing new.
    if (state !== undefined && sequence <= state.sequence && second === undefined) {
      const known = state.notes[sequence];
      if (known !== undefined && parseStatementNote(known).text === first.text) continue;
    }
    if (second !== undefined) {
      const refusal = refuse(
        'equivocation',
        `two different statements with sequence ${sequence}`,
        second,
        first.note,
      );
      return { kind: 'refused', refusal, state, ignored };
    }
    const refusal = checkNext(state, first);
    if (refusal !== undefined) return { kind: 'refused', refusal, state, ignored };
    state = applyStatement(state, first, root);
  }
  return { kind: 'ok', state, ignored };
}

/**
 * Re-checks the evidence of a refusal offline: two notes, both signed by `root`, that cannot
 * both hold (same sequence and different texts, or consecutive and the later one breaks a
 * rule of {@link checkNext}). Returns the refusal they show; throws `IdentityError` when they
 * are not such evidence.
 */
export function verifyContradiction(
  root: NoteVerifier,
  earlier: string | Uint8Array,
  later: string | Uint8Array,
): Refusal {
  const a = verifyStatement(earlier, root);
  const b = verifyStatement(later, root);
  const sa = a.statement.sequence;
  const sb = b.statement.sequence;
  if (sa === sb) {
    if (a.text === b.text) throw new IdentityError('malformed', 'the two statements are the same');
    return refuse('equivocation', `two different statements with sequence ${sa}`, b, a.note);
  }
  if (sb !== sa + 1)
    throw new IdentityError('malformed', `statements ${sa} and ${sb} are not consecutive`);
  const refusal = checkFollows(a, b, root);
  if (refusal === undefined)
    throw new IdentityError('malformed', `statement ${sb} follows statement ${sa} correctly`);
  return refusal;
}

/**
 * The rules of {@link checkNext} between two statements alone: whether `next` may follow
 * `last` (both verified with `root`), whatever came before `last`. For a tool that writes the
 * next statement, and for re-checking evidence; following an identity needs its whole chain.
 */
export function checkFollows(
  last: VerifiedStatement,
  next: VerifiedStatement,
  root: NoteVerifier,
): Refusal | undefined {
  const sequence = last.statement.sequence;
  // The chain's notes up to `last`, only `last` known: checkNext reads no other.
  const notes: string[] = [];
  notes[sequence] = last.note;
  return checkNext({ ...applyStatement(undefined, last, root), notes }, next);
}
