/**
 * The policy module: Accord's trust policy file and the pure k-of-n decision over verified
 * claims, with the evidence behind every verdict.
 */
export { PolicyError } from './errors.js';
export {
  type BuilderLog,
  type Policy,
  type TrustRule,
  describeRule,
  parsePolicy,
  trustSatisfied,
} from './policy.js';
export {
  type Answer,
  type Decision,
  type LogObservation,
  type ObservedClaim,
  decide,
} from './decide.js';
