/**
 * The policy module: Accord's trust policy file and the pure k-of-n decision over verified
 * claims, with the evidence behind every verdict.
 */
export { PolicyError } from './errors.js';
export {
  type BuilderLog,
  type CacheMember,
  type IdentityLog,
  type Policy,
  type TrustRule,
  describeRule,
  formatCacheKey,
  logOrigins,
  parseCacheKey,
  parsePolicy,
  trustSatisfied,
} from './policy.js';
export {
  type Answer,
  type CacheObservation,
  type Decision,
  type ExcludedClaim,
  type LogObservation,
  type ObservedClaim,
  type SignatureVote,
  answerOf,
  decide,
} from './decide.js';
export { type CacheVote, guixNarInfoVotes, nixNarInfoVotes } from './votes.js';
export { type GuixCacheOfKey, policyFromGuixAcl } from './from-guix-acl.js';
export {
  PROOF_FIELD,
  type Recheck,
  SIGNATURE_FIELD,
  evidenceLines,
  recheckNarInfo,
} from './recheck.js';
