/**
 * The claim module: what a builder states about a store path, and its canonical log entry
 * (`accord/build/v1`). Pure: used by the log, the submitter, the policy and the monitor.
 */
export { ClaimError, type ClaimErrorCode } from './errors.js';
export { canonicalDeriver, canonicalReferences, canonicalStorePath } from './canonical.js';
export {
  type BuildClaim,
  type ClaimJson,
  ENTRY_HEADER,
  MAX_ENTRY_SIZE,
  checkClaim,
  claimFromJson,
  claimToJson,
  entryFromJson,
  formatEntry,
  parseEntry,
  sameOutput,
} from './claim.js';
export {
  type BatchLookupAnswer,
  type LookupAnswer,
  type LookupEntry,
  MAX_BATCH_LOOKUP_BYTES,
  MAX_LOOKUP_BYTES,
  MAX_LOOKUP_ENTRIES,
  MAX_LOOKUP_PATHS,
  MAX_LOOKUP_REQUEST_BYTES,
  STATEMENTS_LOOKUP_KEY,
  formatBatchLookup,
  formatLookup,
  parseBatchLookup,
  parseLookup,
} from './lookup.js';
