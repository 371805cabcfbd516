/**
 * Guix signing keys as `guix archive --generate-key` writes them (libgcrypt's
 * `(genkey (ecdsa (curve Ed25519) (flags rfc6979)))`, advanced form):
 * `(public-key (ecc (curve Ed25519) (q #…#)))` and `(private-key (ecc (curve Ed25519) (q #…#)
 * (d #…#)))`. `q` is the 32-byte compressed Edwards point d·G (not an EdDSA public key).
 */
import { randomBytes } from 'node:crypto';
import { ed25519 } from '@noble/curves/ed25519.js';
import { GuixError } from './errors.js';
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

const Point = ed25519.Point;
type EdPoint = ReturnType<typeof Point.fromBytes>;

/** The order ℓ of the Ed25519 base point. */
export const GROUP_ORDER = Point.CURVE().n;

/** A Guix public key: the curve point `q` (32 bytes, as in the key file). */
export interface GuixPublicKey {
  readonly q: Uint8Array;
}

/** A Guix secret key: `q` and the secret scalar `d` (big-endian, as in the key file). */
export interface GuixSecretKey extends GuixPublicKey {
  readonly d: Uint8Array;
}

/** Largest key file read (a real one is about 200 bytes). */
export const MAX_KEY_FILE_SIZE = 4096;

/** The point `q` encodes, or a `malformed` error. */
export function keyPoint(key: GuixPublicKey): EdPoint {
  let point: EdPoint;
  try {
    point = Point.fromBytes(key.q, false);
  } catch (cause) {
    throw new GuixError('malformed', 'Guix key: q is not a point on Ed25519', { cause });
  }
  if (point.isSmallOrder()) throw new GuixError('malformed', 'Guix key: q has small order');
  return point;
}

/** Big-endian unsigned integer of bytes. */
export function bytesToBigint(bytes: Uint8Array): bigint {
  return bytes.length === 0 ? 0n : BigInt(`0x${Buffer.from(bytes).toString('hex')}`);
}

/** Minimal big-endian bytes of a non-negative integer (an MPI as libgcrypt writes it). */
export function bigintToBytes(n: bigint, length?: number): Uint8Array {
  let hex = n.toString(16);
  if (hex.length % 2 !== 0) hex = `0${hex}`;
  if (n === 0n) hex = '';
  if (length !== undefined) hex = hex.padStart(2 * length, '0');
  return new Uint8Array(Buffer.from(hex, 'hex'));
}

/** The `(name value)` sublist of `list` (a one-atom parameter), or an error. */
export function param(list: SexpList, name: string, what: string): Uint8Array {
  const found = list.filter((s) => !isSexpAtom(s) && s.length > 0 && atomIs(s[0], name));
  const entry = found[0];
  if (found.length !== 1 || entry === undefined || isSexpAtom(entry)) {
    throw new GuixError('malformed', `${what}: want exactly one (${name} …)`);
  }
  const value = entry[1];
  if (entry.length !== 2 || !isSexpAtom(value)) {
    throw new GuixError('malformed', `${what}: (${name} …) must hold one atom`);
  }
  return value;
}

/** Whether `s` is the atom `text`. */
export function atomIs(s: Sexp | undefined, text: string): boolean {
  return isSexpAtom(s) && sexpAtomText(s) === text;
}

/**
 * Reads `(public-key (ecc (curve Ed25519) (q …)))` (or `private-key` with `d`) from a parsed
 * s-expression; a key of another kind is refused saying what it is.
 */
function readKey(
  sexp: SexpList,
  kind: 'public-key' | 'private-key',
): GuixSecretKey | GuixPublicKey {
  const what = kind === 'public-key' ? 'Guix public key' : 'Guix secret key';
  const head = sexp[0];
  if (!atomIs(head, kind)) {
    const other = atomIs(head, 'public-key') || atomIs(head, 'private-key') ? 'the other half' : '';
    throw new GuixError(
      'malformed',
      `${what}: want (${kind} …), got ${describeSexp(sexp)}${other ? ` (${other} of a key pair)` : ''}`,
    );
  }
  const body = sexp[1];
  if (sexp.length !== 2 || body === undefined || isSexpAtom(body)) {
    throw new GuixError('malformed', `${what}: want one (ecc …) inside (${kind} …)`);
  }
  const algorithm = isSexpAtom(body[0]) ? sexpAtomText(body[0]) : '';
  if (algorithm !== 'ecc') {
    const name = { rsa: 'an RSA key', dsa: 'a DSA key', elg: 'an ElGamal key' }[algorithm];
    throw new GuixError('unsupported', `${what}: ${name ?? describeSexp(body)}, not an ECC key`);
  }
  const curve = sexpAtomText(param(body, 'curve', what));
  if (curve !== 'Ed25519') {
    throw new GuixError('unsupported', `${what}: an ECC key on curve ${curve}, not Ed25519`);
  }
  const flags = body.find((s) => !isSexpAtom(s) && atomIs(s[0], 'flags'));
  if (flags !== undefined && !isSexpAtom(flags)) {
    const eddsa = flags.some((f) => atomIs(f, 'eddsa'));
    throw new GuixError(
      'unsupported',
      `${what}: ${eddsa ? 'an EdDSA key (flags eddsa); Guix keys are ECDSA' : 'unexpected (flags …)'}`,
    );
  }
  const names = kind === 'public-key' ? ['curve', 'q'] : ['curve', 'q', 'd'];
  if (body.length !== names.length + 1) {
    throw new GuixError('malformed', `${what}: (ecc …) must hold exactly ${names.join(', ')}`);
  }
  const q = param(body, 'q', what);
  if (q.length !== 32)
    throw new GuixError('malformed', `${what}: q must be 32 bytes, got ${q.length}`);
  const key: GuixPublicKey = { q };
  const point = keyPoint(key);
  if (kind === 'public-key') return key;
  const d = param(body, 'd', what);
  if (d.length === 0 || d.length > 32 || d[0] === 0) {
    throw new GuixError('malformed', `${what}: d must be 1 to 32 bytes without leading zeros`);
  }
  const scalar = bytesToBigint(d) % GROUP_ORDER;
  if (scalar === 0n || !Point.BASE.multiply(scalar).equals(point)) {
    throw new GuixError('malformed', `${what}: q is not d·G (a corrupted or spliced key file)`);
  }
  return { q, d };
}

function parseKeyFile(input: Uint8Array | string): SexpList {
  return parseSexp(readGuixText(input, MAX_KEY_FILE_SIZE), { maxBytes: MAX_KEY_FILE_SIZE });
}

/**
 * Parses a public key file (`/etc/guix/signing-key.pub`), advanced or canonical form: its bytes
 * (UTF-8, as Guix reads the file) or its text.
 */
export function parseGuixPublicKey(input: Uint8Array | string): GuixPublicKey {
  return publicKeyFromSexp(parseKeyFile(input));
}

/** The public key in an already parsed `(public-key …)` s-expression. */
export function publicKeyFromSexp(sexp: SexpList): GuixPublicKey {
  return readKey(sexp, 'public-key');
}

/** Parses a secret key file (`/etc/guix/signing-key.sec`); `q` must be `d`·G. */
export function parseGuixSecretKey(input: Uint8Array | string): GuixSecretKey {
  const key = readKey(parseKeyFile(input), 'private-key');
  if (!('d' in key)) throw new Error('bug: a private key without d');
  return key;
}

/** The `(public-key (ecc (curve Ed25519) (q …)))` s-expression of a key. */
export function publicKeySexp(key: GuixPublicKey): SexpList {
  return [
    sexpAtom('public-key'),
    [sexpAtom('ecc'), [sexpAtom('curve'), sexpAtom('Ed25519')], [sexpAtom('q'), key.q]],
  ];
}

/**
 * The public key file's text as `guix archive --generate-key` writes it (written as UTF-8, the
 * file is byte-identical to Guix's).
 */
export function formatGuixPublicKey(key: GuixPublicKey): string {
  return sexpToGuixText(formatSexp(publicKeySexp({ q: key.q })));
}

/** The secret key file's text, as `guix archive --generate-key` writes it. */
export function formatGuixSecretKey(key: GuixSecretKey): string {
  const sexp: SexpList = [
    sexpAtom('private-key'),
    [
      sexpAtom('ecc'),
      [sexpAtom('curve'), sexpAtom('Ed25519')],
      [sexpAtom('q'), key.q],
      [sexpAtom('d'), key.d],
    ],
  ];
  return sexpToGuixText(formatSexp(sexp));
}

/** The public half of a secret key. */
export function guixPublicKey(key: GuixSecretKey): GuixPublicKey {
  return { q: key.q };
}

/**
 * A key from the 64 hex digits of its `q` (either case), as a policy names it; the point must
 * be on the curve and not of small order.
 */
export function guixPublicKeyFromHex(hex: string): GuixPublicKey {
  if (!/^[0-9A-Fa-f]{64}$/.test(hex))
    throw new GuixError('malformed', 'Guix key: want the 64 hex digits of q');
  const key: GuixPublicKey = { q: new Uint8Array(Buffer.from(hex, 'hex')) };
  keyPoint(key);
  return key;
}

/** The 64 upper-case hex digits of a key's `q`, as its key file writes them. */
export function guixPublicKeyHex(key: GuixPublicKey): string {
  return Buffer.from(key.q).toString('hex').toUpperCase();
}

/** Whether two keys are the same key (Guix compares whole key s-expressions). */
export function sameGuixKey(a: GuixPublicKey, b: GuixPublicKey): boolean {
  return Buffer.from(a.q).equals(b.q);
}

/**
 * A new secret key shaped as libgcrypt 1.10's genkey makes them for this curve (observed over
 * 1500 keys): 32 random bytes with the top bit clear, the next bit set and the low three bits
 * clear; `q` = d·G.
 */
export function generateGuixSecretKey(): GuixSecretKey {
  const d = new Uint8Array(randomBytes(32));
  d[0] = ((d[0] as number) & 0x3f) | 0x40;
  d[31] = (d[31] as number) & 0xf8;
  const q = Point.BASE.multiply(bytesToBigint(d) % GROUP_ORDER).toBytes();
  return { q, d };
}
