/**
 * The demand module: the `accord/demand/v1` report a proxy sends a monitor (request counts per
 * store path per period, signed with the proxy's Nix key as a note key), and reporter keys.
 * Pure: no I/O.
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
export { demandSigner, demandVerifier, parseReporters } from './keys.js';
