/** A running monitor: its store, the logs it follows on a timer, alerts and the HTTP API. */
import type { Policy } from '../policy/index.js';
import {
  type Logger,
  Registry,
  type TlsFiles,
  type WebServer,
  close,
  createWebServer,
  listen,
} from '../server/index.js';
import type { NoteVerifier } from '../tlog/index.js';
import { createAlerter } from './alerts.js';
import { Monitor, type PollResult } from './monitor.js';
import { Dashboard } from './dashboard.js';
import { createMonitorHandler } from './server.js';
import { type Finding, MonitorStore } from './store.js';

export interface MonitorConfig {
  readonly policy: Policy;
  /** The SQLite file holding the monitor's copy of the logs. */
  readonly statePath: string;
  readonly storeDir: string;
  readonly logger: Logger;
  /** Time between polls of every log and witness; 0 polls only when asked. */
  readonly intervalMs: number;
  readonly timeoutMs: number;
  readonly concurrency: number;
  /** Serve the HTTP API here when given. */
  readonly listen?: { readonly host: string; readonly port: number };
  /** Serve it over HTTPS with this certificate and key (re-read when they change). */
  readonly tls?: TlsFiles;
  readonly alerts?: {
    readonly command?: string;
    readonly webhook?: string;
    readonly kinds?: ReadonlySet<Finding['kind']>;
  };
  readonly onProgress?: (origin: string, done: number, total: number) => void;
  /** Builders' binary caches by log origin, for the dashboard's NAR comparisons. */
  readonly caches?: ReadonlyMap<string, string>;
  /** The keys of the proxies whose demand reports POST /demand takes (none: all refused). */
  readonly reporters?: readonly NoteVerifier[];
}

export interface MonitorService {
  readonly monitor: Monitor;
  readonly store: MonitorStore;
  /** The HTTP API's address, when it listens. */
  readonly url: string | undefined;
  /** Follows every log once, then asks the witnesses; resolves when alerts are sent. */
  pollAll(): Promise<PollResult[]>;
  close(): Promise<void>;
}

export async function startMonitor(config: MonitorConfig): Promise<MonitorService> {
  const { policy, logger } = config;
  const store = new MonitorStore(config.statePath);
  const alerter = createAlerter({ ...config.alerts, timeoutMs: 30_000, logger });
  const metrics = new Registry();
  const ingested = metrics.counter('accord_monitor_entries_total', 'entries verified, by log');
  const findings = metrics.counter('accord_monitor_findings_total', 'new findings, by kind');
  const monitor = new Monitor({
    store,
    logs: [...policy.logs, ...policy.identities],
    witnesses: policy.witnessPolicy.witnesses.flatMap((w) =>
      w.url === undefined ? [] : [{ name: w.name, url: w.url.replace(/\/+$/, '') }],
    ),
    storeDir: config.storeDir,
    logger,
    timeoutMs: config.timeoutMs,
    concurrency: config.concurrency,
    onFinding(finding) {
      findings.inc({ kind: finding.kind });
      alerter.raise(finding);
    },
    ...(config.onProgress === undefined ? {} : { onProgress: config.onProgress }),
  });
  metrics.gauge('accord_monitor_verified_entries', 'entries verified, all logs together', () =>
    store.logs().reduce((sum, l) => sum + l.verifiedSize, 0),
  );

  const dashboard = new Dashboard({
    monitor,
    store,
    policy,
    storeDir: config.storeDir,
    timeoutMs: config.timeoutMs,
    ...(config.caches === undefined ? {} : { caches: config.caches }),
  });
  const pollAll = async () => {
    const results = await Promise.all(monitor.followed.map((log) => monitor.poll(log.origin)));
    for (const r of results) if (r.added > 0) ingested.inc({ log: r.origin }, r.added);
    await monitor.pollWitnesses();
    await alerter.drain();
    // The dashboard's counts are made now, not by the first page request after the poll.
    if (config.listen !== undefined) await dashboard.refresh();
    return results;
  };

  let server: WebServer | undefined;
  let unwatch: () => void = () => undefined;
  let url: string | undefined;
  if (config.listen !== undefined) {
    ({ server, unwatch } = createWebServer(
      { requestTimeout: 30_000, headersTimeout: 10_000 },
      createMonitorHandler({
        monitor,
        store,
        dashboard,
        policy,
        storeDir: config.storeDir,
        logger,
        metrics,
        ...(config.reporters === undefined ? {} : { reporters: config.reporters }),
      }),
      config.tls,
      logger,
    ));
    url = await listen(server, config.listen.host, config.listen.port);
    logger.info('monitor listening', { url, logs: monitor.followed.map((l) => l.origin) });
  }

  let timer: NodeJS.Timeout | undefined;
  let running: Promise<unknown> = Promise.resolve();
  let stopped = false;
  const loop = () => {
    running = pollAll()
      .catch((error: unknown) => {
        logger.error('poll failed', { reason: (error as Error).message });
      })
      .finally(() => {
        if (!stopped) timer = setTimeout(loop, config.intervalMs);
      });
  };
  if (config.intervalMs > 0) loop();

  return {
    monitor,
    store,
    url,
    pollAll,
    async close() {
      stopped = true;
      clearTimeout(timer);
      await running;
      unwatch();
      if (server !== undefined) await close(server);
      await alerter.drain();
      store.close();
    },
  };
}
