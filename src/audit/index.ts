/**
 * The audit module: `accord audit` re-checks the paths of a local Nix store against today's
 * logs and policy through the proxy's own decision, and says which no longer hold.
 */
export {
  AUDIT_CATEGORIES,
  type AuditCategory,
  type AuditFinding,
  type Difference,
  type FormerSupport,
  type LocalPath,
  advice,
  classify,
  compareWithStore,
  distrustedMembers,
  isFailure,
  revokedEvidence,
  revokedMembers,
} from './classify.js';
export { AuditError, type AuditErrorCode } from './errors.js';
export { NIX_DB_PATH, NixStoreDb } from './store-db.js';
export { type AuditFailure, type AuditOptions, type AuditReport, auditStore } from './run.js';
