/**
 * Guix ACL files (`/etc/guix/acl`): `(acl (entry <subject> (tag (guix import))) …)` where a
 * subject is a `(public-key …)` or, as the K-of-N proposal (guix-devel, June 2020) writes it,
 * `(k-of-n K N <subject>…)`. Returned as plain data; turning it into a policy is not done here.
 */
import { GuixError } from './errors.js';
import { type GuixPublicKey, atomIs, publicKeyFromSexp, publicKeySexp } from './keys.js';
import {
  type Sexp,
  type SexpList,
  describeSexp,
  formatSexp,
  isSexpAtom,
  parseSexp,
  readGuixText,
  sexpAtom,
  sexpAtomText,
  sexpToGuixText,
} from './sexp.js';

/** An authorised subject: one key, or K of N subjects. */
export type GuixAclSubject =
  | { readonly kind: 'key'; readonly key: GuixPublicKey }
  | {
      readonly kind: 'k-of-n';
      readonly k: number;
      readonly n: number;
      readonly subjects: readonly GuixAclSubject[];
    };

/** A parsed ACL: the subjects of its `(guix import)` entries, in file order. */
export interface GuixAcl {
  readonly entries: readonly GuixAclSubject[];
}

/** Largest ACL file read. */
export const MAX_ACL_SIZE = 1 << 20;
/** Most entries, and most subjects in one `k-of-n`. */
export const MAX_ACL_ENTRIES = 1024;
/** Deepest nesting of `k-of-n` groups. */
export const MAX_KOFN_DEPTH = 4;

const DECIMAL = /^[1-9][0-9]{0,3}$/;

function bad(why: string): GuixError {
  return new GuixError('malformed', `Guix ACL: ${why}`);
}

/**
 * A `k-of-n` number in any of the three spellings: bare `2` (read as the digits), quoted
 * `"2"` (the same atom) or hex `#02#` (a big-endian integer, one or two bytes). An atom that is
 * all ASCII digits is read as decimal, so `#32#` is 2, not 50.
 */
function readNumber(s: Sexp | undefined, what: string): number {
  if (s === undefined || !isSexpAtom(s))
    throw bad(`${what} must be a number, got ${describeSexp(s)}`);
  const text = sexpAtomText(s);
  if (/^[0-9]+$/.test(text)) {
    if (!DECIMAL.test(text)) throw bad(`${what} ${JSON.stringify(text)} is not a number from 1`);
    return Number(text);
  }
  if (s.length === 0 || s.length > 2 || s[0] === 0) {
    throw bad(`${what} must be decimal digits or one or two bytes of hex without leading zero`);
  }
  return s.reduce((n, b) => n * 256 + b, 0);
}

function readSubject(s: Sexp | undefined, depth: number): GuixAclSubject {
  if (s === undefined || isSexpAtom(s)) throw bad(`want a subject, got ${describeSexp(s)}`);
  if (atomIs(s[0], 'public-key')) return { kind: 'key', key: publicKeyFromSexp(s) };
  if (!atomIs(s[0], 'k-of-n')) {
    throw new GuixError(
      'unsupported',
      `Guix ACL: subject ${describeSexp(s)} is neither (public-key …) nor (k-of-n …)`,
    );
  }
  if (depth >= MAX_KOFN_DEPTH) {
    throw new GuixError('limit', `Guix ACL: k-of-n nested deeper than ${MAX_KOFN_DEPTH}`);
  }
  const k = readNumber(s[1], 'K');
  const n = readNumber(s[2], 'N');
  const subjects = s.slice(3);
  if (subjects.length > MAX_ACL_ENTRIES)
    throw new GuixError('limit', 'Guix ACL: too many subjects');
  if (n !== subjects.length) throw bad(`(k-of-n ${k} ${n} …) lists ${subjects.length} subjects`);
  if (k < 1 || k > n) throw bad(`(k-of-n ${k} ${n} …): want 1 ≤ K ≤ N`);
  return { kind: 'k-of-n', k, n, subjects: subjects.map((x) => readSubject(x, depth + 1)) };
}

function isImportTag(s: Sexp | undefined): boolean {
  if (s === undefined || isSexpAtom(s) || s.length !== 2 || !atomIs(s[0], 'tag')) return false;
  const tag = s[1];
  return (
    tag !== undefined &&
    !isSexpAtom(tag) &&
    tag.length === 2 &&
    atomIs(tag[0], 'guix') &&
    atomIs(tag[1], 'import')
  );
}

/**
 * Parses an ACL file (attacker-controlled where users copy ACLs around), its bytes (UTF-8, as
 * Guix reads it) or its text: advanced or canonical form, bare numbers allowed. Each entry must be `(entry <subject> (tag (guix import)))`, as
 * Guix's reader requires (it fails on any other entry); keys must be Guix keys.
 */
export function parseGuixAcl(input: Uint8Array | string): GuixAcl {
  const bytes = readGuixText(input, MAX_ACL_SIZE);
  const sexp = parseSexp(bytes, { maxBytes: MAX_ACL_SIZE, bareNumbers: true });
  if (!atomIs(sexp[0], 'acl')) throw bad(`want (acl …), got ${describeSexp(sexp)}`);
  const entries = sexp.slice(1);
  if (entries.length > MAX_ACL_ENTRIES) throw new GuixError('limit', 'Guix ACL: too many entries');
  return {
    entries: entries.map((entry) => {
      if (isSexpAtom(entry) || !atomIs(entry[0], 'entry') || entry.length !== 3) {
        throw bad(`want (entry <subject> (tag (guix import))), got ${describeSexp(entry)}`);
      }
      if (!isImportTag(entry[2])) {
        throw new GuixError(
          'unsupported',
          'Guix ACL: an entry whose tag is not (tag (guix import))',
        );
      }
      return readSubject(entry[1], 0);
    }),
  };
}

/** The keys an ACL authorises alone (its plain `public-key` entries), as Guix reads them. */
export function plainAclKeys(acl: GuixAcl): GuixPublicKey[] {
  return acl.entries.flatMap((e) => (e.kind === 'key' ? [e.key] : []));
}

function subjectSexp(subject: GuixAclSubject, numbers: 'bare' | 'quoted' | 'hex'): SexpList {
  if (subject.kind === 'key') return publicKeySexp(subject.key);
  // libgcrypt writes a one-byte atom from 32 to 255 as a character, not hex: those stay decimal.
  const number = (n: number): Uint8Array =>
    numbers !== 'hex' || (n >= 32 && n < 256)
      ? sexpAtom(String(n))
      : Uint8Array.of(...(n > 255 ? [n >> 8, n & 255] : [n]));
  return [
    sexpAtom('k-of-n'),
    number(subject.k),
    number(subject.n),
    ...subject.subjects.map((s) => subjectSexp(s, numbers)),
  ];
}

/**
 * An ACL file in the advanced form, as `guix archive --authorize` writes it. `numbers` spells
 * the K and N of `k-of-n` entries: `quoted` (`"2"`, the default) and `hex` (`#02#`; numbers
 * from 32 to 255 stay decimal) parse in today's Guix; `bare` (`2`, the proposal's spelling)
 * does not parse in libgcrypt at all. The text is Guix text: write it as UTF-8.
 */
export function formatGuixAcl(acl: GuixAcl, numbers: 'bare' | 'quoted' | 'hex' = 'quoted'): string {
  const entry = (s: GuixAclSubject): SexpList => [
    sexpAtom('entry'),
    subjectSexp(s, numbers),
    [sexpAtom('tag'), [sexpAtom('guix'), sexpAtom('import')]],
  ];
  const text = sexpToGuixText(formatSexp([sexpAtom('acl'), ...acl.entries.map(entry)]));
  // libgcrypt writes a digits-only atom as a quoted string; the proposal wrote the digits bare.
  return numbers === 'bare'
    ? text.replace(/\(k-of-n "([0-9]+)" "([0-9]+)"/g, '(k-of-n $1 $2')
    : text;
}
