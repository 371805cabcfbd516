/** The one error type of the tlog module: every failure carries a `code` a caller can branch on. */

/**
 * What went wrong, for callers that branch on it:
 * - `malformed`: input text or bytes do not follow the format's grammar;
 * - `limit`: input is larger than a configured or format limit;
 * - `range`: a size or index is outside what the operation accepts;
 * - `proof`: a Merkle proof does not verify;
 * - `signature`: a signature by a known key does not verify, or a key is invalid;
 * - `untrusted`: no trusted key signed, or a witness quorum is not met.
 */
export type TlogErrorCode = 'malformed' | 'limit' | 'range' | 'proof' | 'signature' | 'untrusted';

/** Thrown by every tlog function on bad input; `message` says what failed and why. */
export class TlogError extends Error {
  override readonly name = 'TlogError';
  readonly code: TlogErrorCode;

  constructor(code: TlogErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }
}
