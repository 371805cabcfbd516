/**
 * The identity module: builder identities that outlive their keys. An identity is a name and a
 * long-lived root key; the root signs key statements (`accord/keys/v1`, docs/identity.md)
 * naming the log, Nix and Guix keys that speak for it, from when until when, and the keys it
 * revoked. Pure: the log, the proxy, the policy and the monitor follow statements with it.
 */
export { IdentityError, type IdentityErrorCode } from './errors.js';
export {
  KEY_KINDS,
  type KeyKind,
  MAX_KEY_TEXT,
  checkKeyText,
  formatGuixKey,
  formatLogKey,
  formatNixKey,
  normalizeKeyText,
  parseGuixKey,
  parseLogKey,
  parseNixKey,
} from './keys.js';
export {
  type KeyStatement,
  MAX_REVOCATIONS,
  MAX_STATEMENT_KEYS,
  MAX_STATEMENT_SIZE,
  MAX_TIME,
  type Revocation,
  STATEMENT_HEADER,
  type StatementKey,
  checkStatement,
  formatStatement,
  isIdentityName,
  parseStatement,
} from './statement.js';
export {
  STATEMENT_NOTE_PREFIX,
  type VerifiedStatement,
  parseStatementNote,
  signStatement,
  statementHash,
  verifyStatement,
} from './note.js';
export {
  type FoldResult,
  type IdentityState,
  type Refusal,
  type RefusalCode,
  applyStatement,
  checkFollows,
  checkNext,
  foldStatements,
  verifyContradiction,
} from './fold.js';
export {
  type KeyStatus,
  guixKeysAt,
  isRevoked,
  keyStatus,
  keysAt,
  logKeysAt,
  nixKeysAt,
} from './query.js';
