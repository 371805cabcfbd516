/** The error type of the witness: why an add-checkpoint request is refused. */

/**
 * - `malformed`: the request or its checkpoint does not parse, or the old size exceeds it;
 * - `unknown-log`: the checkpoint's origin is not a witnessed log;
 * - `untrusted`: no valid signature by a key trusted for the origin, or a bad one;
 * - `stale`: the old size is not that of the last checkpoint cosigned (`size` says which);
 * - `inconsistent`: the checkpoint is not a consistent extension of the last one cosigned.
 */
export type WitnessErrorCode = 'malformed' | 'unknown-log' | 'untrusted' | 'stale' | 'inconsistent';

/** Thrown by {@link addCheckpoint}; `message` says what was wrong. */
export class WitnessError extends Error {
  override readonly name = 'WitnessError';
  constructor(
    readonly code: WitnessErrorCode,
    message: string,
    readonly details: {
      /** For `stale`: the size of the last checkpoint cosigned. */
      readonly size?: number;
      /** For `inconsistent`: fork evidence, when the request proves the log forked. */
      readonly evidence?: string;
    } = {},
  ) {
    super(message);
  }
}
