/**
 * The rebuild module: `accord rebuild` — any machine with Nix rebuilds the paths a work list
 * names (a monitor's wanted list, a file), without substituting them, and submits claims of
 * what it built to its own log through the durable spool; failures are recorded as failures and
 * reported to a monitor, signed with the rebuilder's log key.
 */
export { MAX_WORK_ITEMS, type WorkItem, WorkListError, parseWorkList } from './worklist.js';
export { readDerivation } from './nix-build.js';
export { RebuildState } from './state.js';
export { type FailureReport, reportFailures } from './report.js';
export {
  type ItemReport,
  type RebuildOptions,
  type RebuildSummary,
  itemKey,
  rebuild,
} from './run.js';
