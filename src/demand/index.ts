/**
 * The demand module: the signed reports a monitor takes — the `accord/demand/v1` report a proxy
 * sends (request counts per store path per period, signed with the proxy's Nix key as a note
 * key), the `accord/rebuild/v1` report a rebuilder sends (the builds that failed, signed with
 * its log key) — the one set of rules they are opened under, and reporter keys. Pure: no I/O.
 */
export { DemandError, type DemandErrorCode } from './errors.js';
export {
  DEMAND_HEADER,
  type DemandPath,
  type DemandReport,
  MAX_DEMAND_BYTES,
  MAX_DEMAND_PATHS,
  MAX_PERIOD_SECONDS,
  MIN_PERIOD_SECONDS,
  formatDemandLine,
  formatDemandReport,
  openDemandReport,
  parseDemandReport,
  signDemandReport,
} from './report.js';
export {
  MAX_REASON_BYTES,
  MAX_REBUILD_FAILURES,
  REBUILD_HEADER,
  type RebuildFailure,
  type RebuildReport,
  formatRebuildReport,
  openRebuildReport,
  parseRebuildReport,
  shortReason,
  signRebuildReport,
} from './rebuild-report.js';
export { MAX_REPORT_BYTES } from './signed.js';
export { demandSigner, demandVerifier, parseReporters } from './keys.js';
