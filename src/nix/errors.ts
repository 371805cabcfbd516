/** The one error type of the nix module, with a `code` a caller can branch on. */

/**
 * - `malformed`: input does not follow the format (narinfo, NAR, hash, store path, key);
 * - `limit`: input exceeds a size, depth or length cap;
 * - `signature`: a signature or key is invalid, or a signature does not verify;
 * - `unsupported`: a valid input asks for something not implemented (a compression, say);
 * - `mismatch`: streamed content does not match the hash or size it was promised to have.
 */
export type NixErrorCode = 'malformed' | 'limit' | 'signature' | 'unsupported' | 'mismatch';

/** Thrown by every nix function on bad input; `message` says what failed and why. */
export class NixError extends Error {
  override readonly name = 'NixError';
  readonly code: NixErrorCode;

  constructor(code: NixErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }
}
