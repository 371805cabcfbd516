/** The error type of the identity module: every failure carries a `code` a caller can branch on. */

/**
 * - `malformed`: a key statement's text or note does not follow docs/identity.md;
 * - `limit`: larger than a statement may be (bytes, keys, revocations);
 * - `signature`: not signed by the identity's root key, or a key given is not of the right kind.
 */
export type IdentityErrorCode = 'malformed' | 'limit' | 'signature';

/** Thrown by the identity module's parsers and verifiers; `message` says what failed and why. */
export class IdentityError extends Error {
  override readonly name = 'IdentityError';
  readonly code: IdentityErrorCode;

  constructor(code: IdentityErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }
}
