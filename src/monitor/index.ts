/**
 * The monitor module: follows builder logs through their tiles, keeps a verified copy and an
 * index of claims by store path, and reports forks, equivocating logs and disagreeing builders
 * with the evidence that shows them.
 */
export {
  FINDING_KINDS,
  type Finding,
  type FollowedLog,
  type IndexedClaim,
  MonitorStore,
} from './store.js';
export { MonitorError, type MonitorErrorCode } from './errors.js';
export { Monitor, type Observation, type PollResult } from './monitor.js';
export { createMonitorHandler, pathReport } from './server.js';
export { createAlerter } from './alerts.js';
export { type MonitorConfig, type MonitorService, startMonitor } from './service.js';
export { Dashboard } from './dashboard.js';
export { countReproducibility } from './repro.js';
export {
  DEMAND_CLOCK_SKEW_SECONDS,
  type DemandAccepted,
  type DemandRow,
  type DemandTop,
  type WantedPath,
  acceptDemand,
  demandTop,
  formatWantedList,
  pathDemand,
  wantedList,
} from './demand.js';
export { MAX_DEMAND_LIMIT } from './demand-routes.js';
