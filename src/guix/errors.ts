/** The one error type of the guix module, with a `code` a caller can branch on. */

/**
 * - `malformed`: input does not follow the format (s-expression, key, signature, narinfo, ACL);
 * - `limit`: input exceeds a size, depth or count cap;
 * - `unsupported`: a well-formed input of a kind Accord does not handle (another key type or
 *   curve, an EdDSA signature, an s-expression display hint);
 * - `signature`: a signature does not verify, or its signed hash is not the hash of the data;
 * - `untrusted`: a valid signature by a key other than the one(s) it was checked against.
 */
export type GuixErrorCode = 'malformed' | 'limit' | 'unsupported' | 'signature' | 'untrusted';

/** Thrown by every guix function on bad input; `message` says what failed and why. */
export class GuixError extends Error {
  override readonly name = 'GuixError';
  readonly code: GuixErrorCode;

  constructor(code: GuixErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }
}
