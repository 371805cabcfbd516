/**
 * The witness module: a C2SP tlog-witness that cosigns a log's checkpoint only when it is a
 * consistent extension of the last one it cosigned, remembering that before answering.
 */
export type { WitnessStorage, WitnessedCheckpoint } from './storage.js';
export { openSqliteWitnessStorage } from './sqlite-storage.js';
export { openPostgresWitnessStorage } from './postgres-storage.js';
export { WitnessError, type WitnessErrorCode } from './errors.js';
export { type Witness, addCheckpoint } from './witness.js';
export { createWitnessHandler, witnessErrors } from './server.js';
export { type WitnessService, openWitnessStorage, startWitness } from './service.js';
