/** The audit module's one error class. */

export type AuditErrorCode = 'store-unreadable' | 'store-malformed' | 'not-in-store';

export class AuditError extends Error {
  override readonly name = 'AuditError';
  constructor(
    readonly code: AuditErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}
