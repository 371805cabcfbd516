/**
 * The submit module: the builder's client — claims for freshly built outputs (as Nix's
 * post-build-hook), a durable spool for when the log is away, and backfill from a binary cache.
 */
export {
  type LogEndpoint,
  SubmitError,
  type SubmitErrorKind,
  statusKind,
  submitClaims,
} from './client.js';
export { type RefusedClaim, Spool, type SpooledClaim } from './spool.js';
export { type SubmitReport, flushSpool, submitOrSpool } from './hook.js';
export {
  type BackfillOptions,
  type BackfillProgress,
  backfill,
  hashPartOf,
  listFileCache,
} from './backfill.js';
