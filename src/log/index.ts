/**
 * The log module: a builder's append-only log — storage backends, the sequencer, and the HTTP
 * server (C2SP tlog-tiles read path, submissions, lookups with tlog-proofs).
 */
export { Submitters, hashToken, newToken, parseSubmitters, submitterLine } from './auth.js';
export type { LogState, LogStorage, NewEntry, StoredEntry, StoredTile } from './storage.js';
export { openSqliteLogStorage } from './sqlite-storage.js';
export { openPostgresLogStorage } from './postgres-storage.js';
export { Sequencer, type SequencerOptions } from './sequencer.js';
export { WitnessClient, type WitnessEndpoint } from './witnesses.js';
export { type LogServerOptions, createLogHandler } from './server.js';
export { MAX_ISSUED_AHEAD_SECONDS, type StatementChain, acceptStatement } from './statements.js';
export {
  type LogService,
  type LogServiceConfig,
  openLogStorage,
  startLogService,
} from './service.js';
