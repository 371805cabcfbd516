/** A running proxy: state, resolver and HTTP server wired together. */
import { formatCacheKey } from '../policy/index.js';
import {
  type Logger,
  Registry,
  close,
  createWebServer,
  listen,
  parseListen,
} from '../server/index.js';
import { Compressors } from './compressors.js';
import type { ProxyConfig } from './config.js';
import { DemandReporter } from './demand.js';
import { CheckpointGossip } from './gossip.js';
import { Resolver } from './resolver.js';
import { createProxyHandler } from './server.js';
import { ProxyState } from './state.js';

export interface ProxyService {
  readonly url: string;
  /** With `serve-zstd`: its compressors. */
  readonly compressors?: Compressors;
  readonly resolver: Resolver;
  readonly state: ProxyState;
  readonly gossip: CheckpointGossip;
  /** Sends demand reports, when the config has a `[demand]` table. */
  readonly demand: DemandReporter | undefined;
  close(): Promise<void>;
}

/** Options for tests: the clock demand is counted and reported by. */
export interface ProxyOptions {
  readonly now?: () => number;
}

/** Opens the proxy's state and resolver without serving (for `accord explain`). */
export function openResolver(
  config: ProxyConfig,
  logger: Logger,
  metrics?: Registry,
  options: ProxyOptions = {},
) {
  const state = new ProxyState(config.statePath, {
    ...(config.demand === undefined ? {} : { demandPeriodSeconds: config.demand.periodSeconds }),
    ...(options.now === undefined ? {} : { now: options.now }),
  });
  const misbehaving = metrics?.counter(
    'accord_proxy_log_misbehaviour_total',
    'Logs caught in a fork, with evidence that verifies',
  );
  const caught = (origin: string) => {
    misbehaving?.inc({ log: origin });
  };
  const gossip = new CheckpointGossip(
    config.monitors,
    (origin) => resolver.logs.find((l) => l.log.origin === origin)?.forkEvidenceKeys() ?? [],
    state,
    logger,
    config.logTimeoutMs,
    caught,
  );
  const resolver = new Resolver(config, state, logger, {
    onMisbehaviour: caught,
    onCheckpoint: (origin, note) => {
      gossip.offer(origin, note);
    },
  });
  return { state, resolver, gossip };
}

/** Starts the proxy on `listen` (default: the config's). */
export async function startProxy(
  config: ProxyConfig,
  logger: Logger,
  listenOverride?: string,
  options: ProxyOptions = {},
): Promise<ProxyService> {
  const metrics = new Registry();
  // Before anything opens: a zstd that does not run is a config error.
  const compressors =
    config.zstd === undefined ? undefined : await Compressors.start(config.zstd, logger);
  const { state, resolver, gossip } = openResolver(config, logger, metrics, options);
  const handler = createProxyHandler({
    config,
    resolver,
    state,
    logger,
    metrics,
    ...(compressors === undefined ? {} : { compressors }),
  });
  const { server, unwatch } = createWebServer(
    { requestTimeout: 0, headersTimeout: 10_000 },
    handler,
    config.tls,
    logger,
  );
  // Nix comes back in bursts; keep its connections open between them.
  server.keepAliveTimeout = 60_000;
  const { host, port } = parseListen(listenOverride ?? config.listen);
  const url = await listen(server, host, port);
  const flush = setInterval(() => {
    state.flushCounts();
  }, 5000);
  const key = config.signingKey;
  // The config refuses [demand] with a Guix key: reports are signed with a Nix key.
  const demand =
    config.demand === undefined || 'guix' in key
      ? undefined
      : new DemandReporter(config.demand, key, state, logger, options.now);
  demand?.start();
  logger.info('proxy listening', {
    url,
    logs: config.policy.logs.length + config.policy.identities.length,
    caches: config.policy.caches.length,
    upstreams: config.upstreams.map((u) => u.url),
    key: 'guix' in key ? formatCacheKey({ guix: key.guix }) : key.name,
  });
  return {
    url,
    ...(compressors === undefined ? {} : { compressors }),
    resolver,
    state,
    gossip,
    demand,
    async close() {
      clearInterval(flush);
      await demand?.close();
      unwatch();
      await close(server);
      await handler.drain();
      await gossip.drain();
      await compressors?.close();
      state.close();
    },
  };
}
