/** The monitor's error type: why a checkpoint handed to it was not taken. */

/**
 * Not evidence of misbehaviour, only of a checkpoint that does not verify:
 * - `unknown-log`: its origin is not a followed log;
 * - `malformed`: it does not parse as a checkpoint (or is too large);
 * - `untrusted`: it carries no valid signature by the log's key.
 */
export type MonitorErrorCode = 'unknown-log' | 'malformed' | 'untrusted';

export class MonitorError extends Error {
  override readonly name = 'MonitorError';
  constructor(
    readonly code: MonitorErrorCode,
    message: string,
  ) {
    super(message);
  }
}
