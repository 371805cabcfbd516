/** Test support for the guix module: what a call throws, and a key with an unusual q. */
import { GuixError } from '../../src/guix/index.js';

/** The GuixError `f` throws, or undefined when it returns; any other error is rethrown. */
export function guixError(f: () => unknown): GuixError | undefined {
  try {
    f();
  } catch (e) {
    if (e instanceof GuixError) return e;
    throw e;
  }
  return undefined;
}

/** The `code` of the GuixError `f` throws, or 'none' when it returns. */
export function guixErrorCode(f: () => unknown): string {
  return guixError(f)?.code ?? 'none';
}

/**
 * A secret key (found by chance) whose q libgcrypt writes as a quoted string with bytes above
 * 0xa0, not as hex: Guix's files and Signature payloads carry such text as UTF-8.
 */
export const QUOTED = {
  q: '54C54C3764DB43312FD1F96DF72526F90C0B4374EFB60B622EBC090B7AA3A9DB',
  d: '62761C3F36FEE5284D4CA25A59B46927A87783C8C5772E7F7663E7E543DB5D08',
};
