/** The error type of the demand module. */

/**
 * - `malformed`: not a demand or rebuild report (grammar, numbers, order, key name);
 * - `too-large`: over the size caps (bytes or lines), checked before anything is parsed;
 * - `untrusted`: not signed, or not signed by a known reporter key with a valid signature.
 */
export type DemandErrorCode = 'malformed' | 'too-large' | 'untrusted';

/** Thrown when a signed report (demand or rebuild) is invalid; `message` says which part and why. */
export class DemandError extends Error {
  override readonly name = 'DemandError';
  constructor(
    readonly code: DemandErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}
