/**
 * Reporting failed builds to a monitor: the failures the rebuilder's state holds and no monitor
 * took yet, as signed `accord/rebuild/v1` reports (POST <monitor>/rebuilds), signed with the
 * rebuilder's log key — the monitor takes them from the logs it follows only. A failure is
 * marked reported once the monitor answered 200; one whose answer was lost goes again in the
 * next report, and the monitor counts each (path, rebuilder, attempt) once.
 */
import { MAX_REBUILD_FAILURES, signRebuildReport } from '../demand/index.js';
import { FetchError, postBytes } from '../server/index.js';
import type { NoteSigner } from '../tlog/index.js';
import type { RebuildState } from './state.js';

/** What reporting did: failures the monitor took, and those still to report. */
export interface FailureReport {
  readonly reported: number;
  readonly pending: number;
  /** Why the rest was not reported; `refused` when the monitor said no (a set-up error). */
  readonly error?: string;
  readonly refused?: boolean;
}

/**
 * Sends every unreported failure in `state` to `monitor` (its base URL), at most
 * {@link MAX_REBUILD_FAILURES} per report, each report at a later time than the last one taken.
 */
export async function reportFailures(options: {
  readonly state: RebuildState;
  readonly monitor: string;
  readonly signer: NoteSigner;
  readonly timeoutMs: number;
}): Promise<FailureReport> {
  const { state, signer } = options;
  const url = `${options.monitor}/rebuilds`;
  let reported = 0;
  for (;;) {
    const failures = state.unreported(MAX_REBUILD_FAILURES);
    if (failures.length === 0) return { reported, pending: 0 };
    const at = Math.max(Date.now(), state.lastReport() + 1, ...failures.map((f) => f.attempt));
    const note = signRebuildReport({ reporter: signer.name, at, failures }, signer);
    try {
      await postBytes(url, note, 'text/plain; charset=utf-8', options.timeoutMs, 1 << 16);
    } catch (error) {
      const pending = state.unreportedCount();
      const status = error instanceof FetchError ? error.status : undefined;
      return {
        reported,
        pending,
        error: `${url}: ${(error as Error).message}`,
        ...(status !== undefined && status >= 400 && status < 500 ? { refused: true } : {}),
      };
    }
    state.markReported(failures, at);
    reported += failures.length;
  }
}
