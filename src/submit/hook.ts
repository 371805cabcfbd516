/**
 * `accord submit` as Nix's post-build-hook: claims for the outputs just built, submitted with a
 * deadline; when the log cannot take them they go to the spool and the hook still succeeds, so
 * the build loop is never held up for long nor stopped.
 */
import type { ClaimJson } from '../claim/index.js';
import { claimFromJson } from '../claim/index.js';
import { SubmitError, type LogEndpoint, submitClaims } from './client.js';
import type { Spool } from './spool.js';

/** How a submission run ended. */
export interface SubmitReport {
  /** Claims the log acknowledged in this run (new ones and spooled ones). */
  readonly submitted: number;
  /** Claims now waiting in the spool. */
  readonly spooled: number;
  /** Why the log could not take claims, if it could not. */
  readonly error?: string;
}

/** Spooled claims are retried in batches of this many, oldest first. */
const FLUSH_BATCH = 500;

/**
 * Retries spooled claims until the spool is empty, the log fails, or `deadline` (a
 * `performance.now()` time) passes. Returns how many were submitted, or the error.
 */
export async function flushSpool(
  endpoint: LogEndpoint,
  spool: Spool,
  deadline: number,
): Promise<{ submitted: number; error?: string }> {
  let submitted = 0;
  while (performance.now() < deadline) {
    const batch = spool.pending(endpoint.url, FLUSH_BATCH);
    if (batch.length === 0) break;
    try {
      await submitClaims(
        endpoint,
        batch.map((b) => b.claim),
      );
    } catch (e) {
      if (!(e instanceof SubmitError)) throw e;
      return { submitted, error: e.message };
    }
    spool.remove(batch.map((b) => b.id));
    submitted += batch.length;
  }
  return { submitted };
}

/**
 * Submits `claims` (first retrying the spool): every claim is either acknowledged by the log or
 * stored in the spool when this resolves. Claims are checked before anything is sent.
 */
export async function submitOrSpool(
  endpoint: LogEndpoint,
  spool: Spool,
  claims: readonly ClaimJson[],
  budgetMs: number,
): Promise<SubmitReport> {
  for (const c of claims) claimFromJson(c);
  const deadline = performance.now() + budgetMs;
  const flushed = await flushSpool(endpoint, spool, deadline);
  let error = flushed.error;
  let submitted = flushed.submitted;
  if (claims.length > 0) {
    if (error === undefined) {
      try {
        await submitClaims(endpoint, claims);
        submitted += claims.length;
      } catch (e) {
        if (!(e instanceof SubmitError)) throw e;
        error = e.message;
      }
    }
    if (error !== undefined) spool.add(endpoint.url, claims);
  }
  const report = { submitted, spooled: spool.count(endpoint.url) };
  return error === undefined ? report : { ...report, error };
}
