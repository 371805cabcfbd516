/**
 * The signature s-expression Guix makes (`signature-sexp` in guix/pki.scm):
 * `(signature (data (flags rfc6979) (hash sha256 #…#)) (sig-val (ecdsa (r #…#) (s #…#)))
 * (public-key (ecc (curve Ed25519) (q #…#))))`, r and s minimal (no leading zero bytes).
 */
import { hash } from 'node:crypto';
import { type EcdsaSignature, ecdsaSign, verifyEcdsa } from './ecdsa.js';
import { GuixError } from './errors.js';
import {
  type GuixPublicKey,
  type GuixSecretKey,
  atomIs,
  bigintToBytes,
  bytesToBigint,
  guixPublicKey,
  param,
  publicKeyFromSexp,
  publicKeySexp,
  sameGuixKey,
} from './keys.js';
import {
  type SexpList,
  describeSexp,
  formatSexp,
  isSexpAtom,
  parseSexp,
  sexpAtom,
  sexpAtomText,
} from './sexp.js';

/** A parsed Guix signature: the signed SHA-256 digest, r and s, and the signer's key. */
export interface GuixSignature extends EcdsaSignature {
  readonly digest: Uint8Array;
  readonly publicKey: GuixPublicKey;
}

/** Largest signature s-expression read (a real one is about 450 bytes). */
export const MAX_SIGNATURE_SIZE = 8192;

function sublist(sexp: SexpList, index: number, head: string, what: string): SexpList {
  const s = sexp[index];
  if (s === undefined || isSexpAtom(s) || !atomIs(s[0], head)) {
    throw new GuixError('malformed', `${what}: want (${head} …), got ${describeSexp(s)}`);
  }
  return s;
}

function readMpi(list: SexpList, name: string): bigint {
  const bytes = param(list, name, 'Guix signature');
  if (bytes.length === 0 || bytes.length > 32 || bytes[0] === 0) {
    throw new GuixError(
      'malformed',
      `Guix signature: ${name} must be 1 to 32 bytes, no leading zero`,
    );
  }
  return bytesToBigint(bytes);
}

/**
 * Parses a signature s-expression (attacker-controlled), advanced or canonical form, of exactly
 * the structure Guix makes. An EdDSA signature is refused (`unsupported`): Guix never makes one.
 */
export function parseGuixSignature(input: Uint8Array | string): GuixSignature {
  const what = 'Guix signature';
  const sexp = parseSexp(input, { maxBytes: MAX_SIGNATURE_SIZE });
  if (!atomIs(sexp[0], 'signature') || sexp.length !== 4) {
    throw new GuixError(
      'malformed',
      `${what}: want (signature (data …) (sig-val …) (public-key …))`,
    );
  }
  const data = sublist(sexp, 1, 'data', what);
  const sigVal = sublist(sexp, 2, 'sig-val', what);
  const publicKey = publicKeyFromSexp(sublist(sexp, 3, 'public-key', what));
  const flags = sublist(data, 1, 'flags', what);
  if (flags.some((f) => atomIs(f, 'eddsa'))) {
    throw new GuixError('unsupported', `${what}: EdDSA data (flags eddsa); Guix signs with ECDSA`);
  }
  if (flags.length !== 2 || !atomIs(flags[1], 'rfc6979') || data.length !== 3) {
    throw new GuixError('malformed', `${what}: want (data (flags rfc6979) (hash sha256 …))`);
  }
  const hashList = sublist(data, 2, 'hash', what);
  const digest = hashList[2];
  if (hashList.length !== 3 || !atomIs(hashList[1], 'sha256') || !isSexpAtom(digest)) {
    throw new GuixError('malformed', `${what}: want (hash sha256 #…#)`);
  }
  if (digest.length !== 32) throw new GuixError('malformed', `${what}: the hash is not 32 bytes`);
  const scheme = sigVal[1];
  if (sigVal.length !== 2 || scheme === undefined || isSexpAtom(scheme)) {
    throw new GuixError('malformed', `${what}: want (sig-val (ecdsa …))`);
  }
  const name = isSexpAtom(scheme[0]) ? sexpAtomText(scheme[0]) : '';
  if (name !== 'ecdsa') {
    const known = name === 'eddsa' ? 'an EdDSA signature' : describeSexp(scheme);
    throw new GuixError('unsupported', `${what}: ${known}, not ECDSA (Guix signs with ECDSA)`);
  }
  if (scheme.length !== 3) throw new GuixError('malformed', `${what}: want (ecdsa (r …) (s …))`);
  return { digest, r: readMpi(scheme, 'r'), s: readMpi(scheme, 's'), publicKey };
}

/** The signature s-expression (advanced form, as Guix writes it into narinfos). */
export function formatGuixSignature(signature: GuixSignature): Uint8Array {
  const sexp: SexpList = [
    sexpAtom('signature'),
    [
      sexpAtom('data'),
      [sexpAtom('flags'), sexpAtom('rfc6979')],
      [sexpAtom('hash'), sexpAtom('sha256'), signature.digest],
    ],
    [
      sexpAtom('sig-val'),
      [
        sexpAtom('ecdsa'),
        [sexpAtom('r'), bigintToBytes(signature.r)],
        [sexpAtom('s'), bigintToBytes(signature.s)],
      ],
    ],
    publicKeySexp(signature.publicKey),
  ];
  return formatSexp(sexp);
}

/** SHA-256 of a message. */
export function sha256Digest(message: Uint8Array): Uint8Array {
  return new Uint8Array(hash('sha256', message, 'buffer'));
}

/** Signs `message` as Guix does: the SHA-256 digest, ECDSA with an RFC 6979 nonce. */
export function signGuix(message: Uint8Array, key: GuixSecretKey): GuixSignature {
  const digest = sha256Digest(message);
  return { ...ecdsaSign(digest, key), digest, publicKey: guixPublicKey(key) };
}

/**
 * Verifies a signature s-expression over `message` in Guix's order and returns it: the signer
 * is one of `trusted` (`untrusted` otherwise), the signed hash is SHA-256 of `message`
 * (`signature`), the ECDSA signature verifies under that key (`signature`).
 */
export function verifyGuixSignature(
  input: Uint8Array | string | GuixSignature,
  message: Uint8Array,
  trusted: readonly GuixPublicKey[],
): GuixSignature {
  const signature =
    typeof input === 'string' || input instanceof Uint8Array ? parseGuixSignature(input) : input;
  if (!trusted.some((k) => sameGuixKey(k, signature.publicKey))) {
    throw new GuixError('untrusted', 'Guix signature is by a key that is not trusted');
  }
  if (!Buffer.from(sha256Digest(message)).equals(signature.digest)) {
    throw new GuixError('signature', 'Guix signature: the signed hash is not the data’s SHA-256');
  }
  verifyEcdsa(signature.digest, signature, signature.publicKey);
  return signature;
}
