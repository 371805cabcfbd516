/**
 * The monitor's error type: why a checkpoint or a signed report (demand, rebuild) handed to it
 * was not taken.
 */

/**
 * Not evidence of misbehaviour, only of a checkpoint or report that does not verify:
 * - `unknown-log`: its origin is not a followed log;
 * - `malformed`: it does not parse as a checkpoint or report;
 * - `untrusted`: it carries no valid signature by the log's key (or by a reporter key);
 * - `too-large`: a report over the size caps;
 * - `replay`: a report for a time already reported by the same reporter, or one that has not
 *   come (see replay.ts).
 */
export type MonitorErrorCode = 'unknown-log' | 'malformed' | 'untrusted' | 'too-large' | 'replay';

export class MonitorError extends Error {
  override readonly name = 'MonitorError';
  constructor(
    readonly code: MonitorErrorCode,
    message: string,
  ) {
    super(message);
  }
}
