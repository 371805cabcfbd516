/** Plumbing shared by Accord's HTTP servers: logs, metrics, bodies, errors, listening. */
export { type LogLevel, type Logger, createLogger, silentLogger } from './logger.js';
export { Counter, Gauge, Histogram, Registry } from './metrics.js';
export {
  type BodyLimits,
  type ErrorMapper,
  HttpError,
  type SendOptions,
  acceptsGzip,
  close,
  gzipBody,
  listen,
  parseListen,
  readBody,
  routeHandler,
  send,
  sendError,
  sendHealth,
  sendMetrics,
} from './http.js';
export {
  type EncodedBody,
  FetchError,
  type FetchOptions,
  download,
  fetchBytes,
  fetchIfPresent,
  fetchEncoded,
  postBytes,
  refuseFetches,
} from './fetch.js';
export { type TlsFiles, type WebServer, createWebServer, readTls } from './tls.js';
export { watchFiles } from './watch.js';
