/** The error type of the claim module. */

/** `malformed`: not a valid entry or claim; `limit`: larger than allowed. */
export type ClaimErrorCode = 'malformed' | 'limit';

/** Thrown when an entry or a claim is invalid; `message` says which part and why. */
export class ClaimError extends Error {
  override readonly name = 'ClaimError';
  readonly code: ClaimErrorCode;

  constructor(code: ClaimErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }
}
