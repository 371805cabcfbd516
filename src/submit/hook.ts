/**
 * `accord submit` as Nix's post-build-hook: claims for the outputs just built go to the durable
 * spool, then the spool is submitted with a deadline, so the build loop is never held up for
 * long. When the log cannot take them now they wait there; a claim the log refuses for good is
 * set aside and reported, and never blocks the claims after it.
 */
import type { ClaimJson } from '../claim/index.js';
import { claimFromJson } from '../claim/index.js';
import { SubmitError, type SubmitErrorKind, type LogEndpoint, submitClaims } from './client.js';
import type { Spool, SpooledClaim } from './spool.js';

/** How a submission run ended. */
export interface SubmitReport {
  /** Claims the log acknowledged in this run (new ones and spooled ones). */
  readonly submitted: number;
  /** Claims now waiting in the spool. */
  readonly spooled: number;
  /** Claims the log refused for good in this run, set aside with its answer. */
  readonly refused: readonly { readonly storePath: string; readonly reason: string }[];
  /** Why the log could not take the claims still waiting, if it could not. */
  readonly error?: string;
  /** What kind of failure `error` is. */
  readonly errorKind?: SubmitErrorKind;
}

/** Spooled claims are submitted in batches of this many, oldest first. */
const FLUSH_BATCH = 500;

/** The outcome of submitting part of the spool. */
interface Progress {
  submitted: number;
  refused: { storePath: string; reason: string }[];
}

/**
 * Submits `batch`; when the log refuses it for good, halves it until each refused claim stands
 * alone and sets that one aside. Other failures are thrown, leaving the rest spooled.
 */
async function submitBatch(
  endpoint: LogEndpoint,
  spool: Spool,
  batch: readonly SpooledClaim[],
  progress: Progress,
  deadline: number,
): Promise<void> {
  if (performance.now() >= deadline) throw new SubmitError('the time allowed ran out');
  try {
    await submitClaims(
      endpoint,
      batch.map((b) => b.claim),
    );
  } catch (e) {
    if (!(e instanceof SubmitError) || e.kind !== 'refused') throw e;
    const [only] = batch;
    if (batch.length === 1 && only !== undefined) {
      spool.refuse(only.id, e.message);
      progress.refused.push({ storePath: only.claim.storePath, reason: e.message });
      return;
    }
    const half = Math.ceil(batch.length / 2);
    await submitBatch(endpoint, spool, batch.slice(0, half), progress, deadline);
    await submitBatch(endpoint, spool, batch.slice(half), progress, deadline);
    return;
  }
  spool.remove(batch.map((b) => b.id));
  progress.submitted += batch.length;
}

/**
 * Submits spooled claims until the spool is empty, the log fails, or `deadline` (a
 * `performance.now()` time) passes.
 */
export async function flushSpool(
  endpoint: LogEndpoint,
  spool: Spool,
  deadline: number,
): Promise<SubmitReport> {
  const progress: Progress = { submitted: 0, refused: [] };
  let failure: SubmitError | undefined;
  while (performance.now() < deadline) {
    const batch = spool.pending(endpoint.url, FLUSH_BATCH);
    if (batch.length === 0) break;
    try {
      await submitBatch(endpoint, spool, batch, progress, deadline);
    } catch (e) {
      if (!(e instanceof SubmitError)) throw e;
      failure = e;
      break;
    }
  }
  const report = { ...progress, spooled: spool.count(endpoint.url) };
  return failure === undefined
    ? report
    : { ...report, error: failure.message, errorKind: failure.kind };
}

/**
 * Checks `claims`, stores them in the spool, and submits the spool: every claim is acknowledged
 * by the log, waiting in the spool, or set aside as refused when this resolves.
 */
export async function submitOrSpool(
  endpoint: LogEndpoint,
  spool: Spool,
  claims: readonly ClaimJson[],
  budgetMs: number,
): Promise<SubmitReport> {
  for (const c of claims) claimFromJson(c);
  spool.add(endpoint.url, claims);
  return flushSpool(endpoint, spool, performance.now() + budgetMs);
}
