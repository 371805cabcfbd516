/**
 * The monitor's HTTP interface: the JSON API — GET /logs, /findings, /paths/<hash part>,
 * /demand, /wanted, /metrics, /health; POST /checkpoints, where proxies hand over the
 * checkpoints they have seen, POST /demand, where they report what was asked of them, and POST
 * /rebuilds, where rebuilders report the builds that failed — and
 * the dashboard's pages (./pages.ts), HTML to browsers and JSON to the rest.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { claimToJson, parseEntry } from '../claim/index.js';
import {
  type ErrorMapper,
  HttpError,
  type Logger,
  type Registry,
  readBody,
  sendHealth,
  sendMetrics,
  routeHandler,
} from '../server/index.js';
import type { NoteVerifier } from '../tlog/index.js';
import { demandRoutes } from './demand-routes.js';
import { MonitorError, type MonitorErrorCode } from './errors.js';
import type { Policy } from '../policy/index.js';
import type { Dashboard } from './dashboard.js';
import { MAX_CHECKPOINT_BYTES, type Monitor } from './monitor.js';
import { routeDashboard, sendJson } from './pages.js';
import type { MonitorStore } from './store.js';

const STATUS: Readonly<Record<MonitorErrorCode, number>> = {
  'unknown-log': 404,
  malformed: 400,
  untrusted: 403,
  'too-large': 413,
  replay: 409,
};

/** The monitor's one error mapping. */
export const monitorErrors: ErrorMapper = (error) =>
  error instanceof MonitorError ? new HttpError(STATUS[error.code], error.message) : undefined;

/** Everything the monitor knows about one store path: each log's verified claims. */
export function pathReport(store: MonitorStore, hashPart: string, storeDir: string) {
  const found = store.claims(hashPart);
  const claims = found.map((c) => ({
    log: c.origin,
    index: c.index,
    ...claimToJson(parseEntry(c.entry, storeDir)),
  }));
  const answers = new Set(found.map((c) => c.answer));
  return { hashPart, agree: answers.size <= 1, claims };
}

export function createMonitorHandler(options: {
  monitor: Monitor;
  store: MonitorStore;
  dashboard: Dashboard;
  policy: Policy;
  storeDir: string;
  logger: Logger;
  metrics: Registry;
  /** The keys of the proxies whose demand reports are taken (POST /demand). */
  reporters?: readonly NoteVerifier[];
}) {
  const { monitor, store, dashboard, policy, storeDir, logger, metrics, reporters = [] } = options;
  const defaultK = policy.decide.kind === 'group' ? policy.decide.threshold : 1;
  const gossip = metrics.counter(
    'accord_monitor_checkpoints_received_total',
    'checkpoints handed to the monitor, by outcome',
  );
  // A rebuilder signs its failure reports with its log's key: only followed logs' keys count.
  const logKeys = () => monitor.followed.flatMap((log) => monitor.logKeys(log));
  const demand = demandRoutes({ store, storeDir, reporters, logKeys, metrics });

  async function route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://monitor');
    const path = url.pathname;
    if (path === '/checkpoints') {
      if (req.method !== 'POST') throw new HttpError(405, 'use POST', { Allow: 'POST' });
      const body = await readBody(req, { maxBytes: MAX_CHECKPOINT_BYTES, timeoutMs: 10_000 });
      const from = `proxy ${req.socket.remoteAddress ?? 'unknown'}`;
      try {
        const seen = await monitor.observe(body.toString('utf8'), from);
        gossip.inc({ outcome: seen.status });
        sendJson(req, res, 200, seen);
      } catch (error) {
        if (error instanceof MonitorError) gossip.inc({ outcome: 'rejected' });
        throw error;
      }
      return;
    }
    const reading = req.method === 'GET' || req.method === 'HEAD';
    if (reading && (await routeDashboard(dashboard, store, defaultK, req, res, url))) return;
    const reply = (status: number, body: unknown) => {
      sendJson(req, res, status, body);
    };
    if (await demand(req, res, url, reply)) return;
    if (!reading) throw new HttpError(405, 'use GET', { Allow: 'GET, HEAD' });
    if (path === '/logs') {
      sendJson(
        req,
        res,
        200,
        monitor.followed.map((log) => {
          const state = store.log(log.origin);
          const status = monitor.status.get(log.origin);
          return {
            origin: log.origin,
            url: log.url,
            verifiedSize: state?.verifiedSize ?? 0,
            checkpoint: state?.checkpoint ?? null,
            polledAt: status?.polledAt === undefined ? null : new Date(status.polledAt),
            error: status?.error ?? null,
          };
        }),
      );
      return;
    }
    if (path === '/findings') {
      const changed = url.searchParams.get('changedSince');
      if (changed !== null) {
        if (!/^[0-9]{1,15}$/.test(changed))
          throw new HttpError(400, 'changedSince must be a time in milliseconds since the epoch');
        sendJson(req, res, 200, store.findingsChangedSince(Number(changed)));
        return;
      }
      const since = url.searchParams.get('since') ?? '0';
      if (!/^[0-9]{1,15}$/.test(since)) throw new HttpError(400, 'since must be a finding id');
      sendJson(req, res, 200, store.findings(Number(since)));
      return;
    }
    if (path === '/metrics') {
      sendMetrics(req, res, metrics);
      return;
    }
    if (path === '/health') {
      await sendHealth(req, res, () => ({
        logs: monitor.followed.length,
        verifiedEntries: monitor.followed.reduce(
          (n, log) => n + (store.log(log.origin)?.verifiedSize ?? 0),
          0,
        ),
        logsFailing: monitor.followed
          .filter((log) => monitor.status.get(log.origin)?.error !== undefined)
          .map((log) => log.origin),
      }));
      return;
    }
    throw new HttpError(404, 'not found');
  }

  return routeHandler(route, logger, monitorErrors);
}
