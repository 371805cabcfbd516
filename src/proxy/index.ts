/**
 * The proxy module: a local Nix substituter that serves a store path only when k of the n
 * configured builder logs agree, re-signing the narinfo with its own key and streaming the NAR
 * with its hash verified.
 */
export {
  ConfigError,
  type DemandConfig,
  type ProxyConfig,
  type UpstreamConfig,
  type ZstdConfig,
  loadProxyConfig,
  parseProxyConfig,
} from './config.js';
export {
  type DemandPeriod,
  ProxyState,
  type ProxyStateOptions,
  type RequestCount,
  type ServedNar,
  type StoredCheckpoint,
} from './state.js';
export { type DemandRound, DemandReporter } from './demand.js';
export { LogClient } from './log-client.js';
export { Upstream } from './upstream.js';
export { type Resolution, Resolver, narPath } from './resolver.js';
export { type NarOutcome, streamNar } from './nar-stream.js';
export { ProxyError, type ProxyErrorCode } from './errors.js';
export { Compressors } from './compressors.js';
export { isLoopback } from './client-address.js';
export { createProxyHandler, proxyErrors } from './server.js';
export { explainJson, headline } from './explain.js';
export { type ProxyOptions, type ProxyService, openResolver, startProxy } from './service.js';
