/**
 * Key statements, `accord/keys/v1` (docs/identity.md): the text an identity's root key signs,
 * naming every key that speaks for the identity, with when, and every key it revoked. One
 * encoding per statement: {@link parseStatement} accepts only what {@link formatStatement}
 * writes.
 */
import { decodeBase64, isValidKeyName, parseDecimal } from '../tlog/index.js';
import { IdentityError } from './errors.js';
import { KEY_KINDS, type KeyKind, checkKeyText, parseLogKey } from './keys.js';

/** The first line of every statement of this version. */
export const STATEMENT_HEADER = 'accord/keys/v1';
/** Largest signed statement (note text and signature), as for a log entry. */
export const MAX_STATEMENT_SIZE = 60_000;
/** Most keys one statement lists, all kinds together. */
export const MAX_STATEMENT_KEYS = 256;
/** Most revocations one statement lists (they are never dropped, so they accumulate). */
export const MAX_REVOCATIONS = 256;
/** Latest time a statement may name: the year 10000 (times are POSIX seconds). */
export const MAX_TIME = 253_402_300_799;

/** A key that speaks for the identity from `from` (inclusive) until `until` (exclusive). */
export interface StatementKey {
  readonly kind: KeyKind;
  /** The key in its statement form (keys.ts). */
  readonly key: string;
  readonly from: number;
  readonly until?: number;
}

/** A key compromised since `since`: nothing under it counts from then on. */
export interface Revocation {
  readonly kind: KeyKind;
  readonly key: string;
  readonly since: number;
}

/** One key statement: the identity's complete key set as of `issued`. */
export interface KeyStatement {
  /** The identity's name, which is its root key's name. */
  readonly identity: string;
  /** 0 for the first statement, then one more each time. */
  readonly sequence: number;
  /** Base64 SHA-256 of the previous statement's text; absent exactly when `sequence` is 0. */
  readonly previous?: string;
  /** When the statement was made, in POSIX seconds. */
  readonly issued: number;
  readonly keys: readonly StatementKey[];
  readonly revocations: readonly Revocation[];
}

const HEADER_LINE = `${STATEMENT_HEADER}\n`;
const NAME = /^[\x21-\x2a\x2c-\x7e]{1,255}$/;

function malformed(why: string, cause?: unknown): IdentityError {
  return new IdentityError('malformed', `invalid ${STATEMENT_HEADER} statement: ${why}`, { cause });
}

/** Whether `name` can name an identity: 1 to 255 printable ASCII characters, no space, no `+`. */
export function isIdentityName(name: string): boolean {
  return NAME.test(name) && isValidKeyName(name);
}

function byteCompare(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a), Buffer.from(b));
}

/** The canonical order of key and revocation lines: by kind (log, nix, guix), then key bytes. */
function compareKeyed(a: { kind: KeyKind; key: string }, b: { kind: KeyKind; key: string }) {
  return KEY_KINDS.indexOf(a.kind) - KEY_KINDS.indexOf(b.kind) || byteCompare(a.key, b.key);
}

function checkTime(t: number, what: string): void {
  if (!Number.isSafeInteger(t) || t < 0 || t > MAX_TIME)
    throw malformed(`${what} ${t} is not a time from 0 to ${MAX_TIME}`);
}

function checkKey(kind: KeyKind, key: string): void {
  if (!KEY_KINDS.includes(kind)) throw malformed(`unknown key kind ${JSON.stringify(kind)}`);
  try {
    checkKeyText(kind, key);
  } catch (cause) {
    throw malformed(cause instanceof Error ? cause.message : String(cause), cause);
  }
}

/**
 * Checks a statement and puts it in canonical order: a valid identity name; sequence, times
 * and `previous` well formed (`previous` present exactly when sequence > 0); each key valid
 * for its kind, listed once, with `from < until`; no two log keys with one name and key ID and
 * no two Nix keys with one name (verifiers pick keys by those); the root never listed as a log
 * key's name; each revoked key revoked once; within the caps.
 */
export function checkStatement(s: KeyStatement): KeyStatement {
  if (!isIdentityName(s.identity))
    throw malformed(`identity ${JSON.stringify(s.identity)} is not a valid name`);
  if (!Number.isSafeInteger(s.sequence) || s.sequence < 0)
    throw malformed(`sequence ${s.sequence} is not a non-negative integer`);
  if (s.sequence === 0 && s.previous !== undefined)
    throw malformed('statement 0 has a previous statement');
  if (s.sequence > 0) {
    if (s.previous === undefined) throw malformed(`statement ${s.sequence} lacks previous`);
    let hash: Uint8Array;
    try {
      hash = decodeBase64(s.previous, 'previous');
    } catch (cause) {
      throw malformed('previous is not canonical base64', cause);
    }
    if (hash.length !== 32) throw malformed(`previous is ${hash.length} bytes, not 32`);
  }
  checkTime(s.issued, 'issued');
  if (s.keys.length > MAX_STATEMENT_KEYS)
    throw new IdentityError(
      'limit',
      `statement lists ${s.keys.length} keys, most ${MAX_STATEMENT_KEYS}`,
    );
  if (s.revocations.length > MAX_REVOCATIONS)
    throw new IdentityError(
      'limit',
      `statement lists ${s.revocations.length} revocations, most ${MAX_REVOCATIONS}`,
    );
  const keys = [...s.keys].sort(compareKeyed);
  const picked = new Set<string>();
  keys.forEach((k, i) => {
    checkKey(k.kind, k.key);
    checkTime(k.from, `${k.kind} key from`);
    if (k.until !== undefined) {
      checkTime(k.until, `${k.kind} key until`);
      if (k.until <= k.from) throw malformed(`${k.kind} key ${k.key}: until is not after from`);
    }
    const before = keys[i - 1];
    if (before !== undefined && compareKeyed(before, k) === 0)
      throw malformed(`${k.kind} key ${k.key} is listed twice`);
    // Verifiers choose a key by these: two keys sharing one would be ambiguous.
    let pick: string | undefined;
    if (k.kind === 'log') {
      const v = parseLogKey(k.key);
      if (v.name === s.identity)
        throw malformed(`log key ${k.key} is named as the identity: the root signs no checkpoint`);
      pick = `log ${v.name} ${v.keyId}`;
    } else if (k.kind === 'nix') {
      pick = `nix ${k.key.slice(0, k.key.indexOf(':'))}`;
    }
    if (pick !== undefined) {
      if (picked.has(pick)) throw malformed(`two ${k.kind} keys share the name of ${k.key}`);
      picked.add(pick);
    }
  });
  const revocations = [...s.revocations].sort(compareKeyed);
  revocations.forEach((r, i) => {
    checkKey(r.kind, r.key);
    checkTime(r.since, `revocation of ${r.kind} key since`);
    const before = revocations[i - 1];
    if (before !== undefined && compareKeyed(before, r) === 0)
      throw malformed(`${r.kind} key ${r.key} is revoked twice`);
  });
  return {
    identity: s.identity,
    sequence: s.sequence,
    ...(s.previous === undefined ? {} : { previous: s.previous }),
    issued: s.issued,
    keys: keys.map((k) => ({
      kind: k.kind,
      key: k.key,
      from: k.from,
      ...(k.until === undefined ? {} : { until: k.until }),
    })),
    revocations: revocations.map((r) => ({ kind: r.kind, key: r.key, since: r.since })),
  };
}

/** The text of a statement {@link checkStatement} returned. */
function statementText(s: KeyStatement): string {
  let text = `${HEADER_LINE}identity ${s.identity}\nsequence ${s.sequence}\n`;
  if (s.previous !== undefined) text += `previous ${s.previous}\n`;
  text += `issued ${s.issued}\n`;
  for (const k of s.keys)
    text += `${k.kind} ${k.key} ${k.from}${k.until === undefined ? '' : ` ${k.until}`}\n`;
  for (const r of s.revocations) text += `revoke ${r.kind} ${r.key} ${r.since}\n`;
  if (Buffer.byteLength(text) > MAX_STATEMENT_SIZE)
    throw new IdentityError('limit', `statement of ${Buffer.byteLength(text)} bytes is too large`);
  return text;
}

/** The canonical text of a statement (what the root key signs), ending in a newline. */
export function formatStatement(statement: KeyStatement): string {
  return statementText(checkStatement(statement));
}

function decimal(text: string, what: string): number {
  try {
    return parseDecimal(text, what);
  } catch (cause) {
    throw malformed(`${what} ${JSON.stringify(text)} is not a canonical decimal`, cause);
  }
}

function time(text: string, what: string): number {
  const t = decimal(text, what);
  checkTime(t, what);
  return t;
}

/**
 * Parses a statement's text strictly (attacker-controlled): the header; `identity`,
 * `sequence`, `previous` (exactly when sequence > 0), `issued`; key lines
 * `<log|nix|guix> <key> <from> [<until>]`; `revoke <kind> <key> <since>` lines; each line
 * ending in a newline, in canonical order, nothing else. Only the text
 * {@link formatStatement} writes for the result parses.
 */
export function parseStatement(text: string): KeyStatement {
  const size = Buffer.byteLength(text);
  if (size > MAX_STATEMENT_SIZE)
    throw new IdentityError('limit', `statement of ${size} bytes is too large`);
  if (!text.startsWith(HEADER_LINE)) throw malformed(`first line is not ${STATEMENT_HEADER}`);
  if (!text.endsWith('\n')) throw malformed('does not end in a newline');
  const lines = text.slice(HEADER_LINE.length, -1).split('\n');
  if (lines.length > 4 + MAX_STATEMENT_KEYS + MAX_REVOCATIONS)
    throw new IdentityError('limit', `statement of ${lines.length + 1} lines is too long`);
  let at = 0;
  const field = (name: string): string | undefined => {
    const line = lines[at];
    if (line?.startsWith(`${name} `) !== true) return undefined;
    at++;
    return line.slice(name.length + 1);
  };
  const identity = field('identity');
  const sequenceText = field('sequence');
  if (identity === undefined || sequenceText === undefined)
    throw malformed('want identity and sequence lines after the header');
  const sequence = decimal(sequenceText, 'sequence');
  const previous = field('previous');
  const issuedText = field('issued');
  if (issuedText === undefined)
    throw malformed('want an issued line after sequence (and previous)');
  const issued = time(issuedText, 'issued');
  const keys: StatementKey[] = [];
  const revocations: Revocation[] = [];
  for (; at < lines.length; at++) {
    const line = lines[at] as string;
    const parts = line.split(' ');
    const [head, key, first, second] = parts;
    if (head === 'revoke' && parts.length === 4) {
      const kind = key as KeyKind;
      if (!KEY_KINDS.includes(kind))
        throw malformed(`revoke of unknown kind ${JSON.stringify(key)}`);
      revocations.push({ kind, key: first as string, since: time(second as string, 'since') });
      continue;
    }
    const kind = head as KeyKind;
    if (!KEY_KINDS.includes(kind) || parts.length < 3 || parts.length > 4 || revocations.length > 0)
      throw malformed(`unexpected line ${JSON.stringify(line.slice(0, 200))}`);
    keys.push({
      kind,
      key: key as string,
      from: time(first as string, `${kind} key from`),
      ...(second === undefined ? {} : { until: time(second, `${kind} key until`) }),
    });
  }
  const statement: KeyStatement = {
    identity,
    sequence,
    ...(previous === undefined ? {} : { previous }),
    issued,
    keys,
    revocations,
  };
  const checked = checkStatement(statement);
  // Every field's form is checked above, and checkStatement sorted the lines: the text is
  // canonical exactly when it is what the sorted statement formats to (order included).
  if (statementText(checked) !== text) throw malformed('not in canonical order');
  return checked;
}
