/**
 * The monitor's report routes: POST /demand (a proxy's signed report), POST /rebuilds (a
 * rebuilder's signed report of failed builds), GET /demand (the most requested paths) and GET
 * /wanted (the wanted list, as JSON or as text for a rebuilder).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { MAX_REPORT_BYTES } from '../demand/index.js';
import { type Counter, HttpError, type Registry, readBody, send } from '../server/index.js';
import type { NoteVerifier } from '../tlog/index.js';
import { acceptDemand, demandTop, formatWantedList, wantedList } from './demand.js';
import { MonitorError } from './errors.js';
import { acceptRebuildReport } from './rebuild-failures.js';
import type { MonitorStore } from './store.js';

/** Most paths one GET /demand or /wanted answers. */
export const MAX_DEMAND_LIMIT = 10_000;

function param(url: URL, name: string, fallback: number, max: number): number {
  const text = url.searchParams.get(name);
  if (text === null) return fallback;
  if (!/^[1-9][0-9]{0,9}$/.test(text) || Number(text) > max)
    throw new HttpError(400, `${name} must be a number from 1 to ${max}`);
  return Number(text);
}

/** Reads a signed report's body (capped) and takes it with `accept`, counting the outcome. */
async function takeReport(
  req: IncomingMessage,
  counter: Counter,
  accept: (body: Buffer) => object,
): Promise<object> {
  const body = await readBody(req, { maxBytes: MAX_REPORT_BYTES, timeoutMs: 10_000 }).catch(
    (error: unknown) => {
      const status = error instanceof HttpError ? error.status : 0;
      counter.inc({ outcome: status === 413 ? 'too-large' : 'unread' });
      throw error;
    },
  );
  try {
    const accepted = accept(body);
    counter.inc({ outcome: 'accepted' });
    return { status: 'accepted', ...accepted };
  } catch (error) {
    if (error instanceof MonitorError) counter.inc({ outcome: error.code });
    throw error;
  }
}

/**
 * The report routes over a monitor's store: a function that answers a report route and says
 * true, or says false for another path. Counts the reports received by outcome.
 */
export function demandRoutes(context: {
  readonly store: MonitorStore;
  readonly storeDir: string;
  /** The keys of the proxies whose demand reports are taken. */
  readonly reporters: readonly NoteVerifier[];
  /**
   * The keys of the followed logs now (an identity log's change with its statements): a
   * rebuilder signs its reports with its log's key.
   */
  readonly logKeys: () => readonly NoteVerifier[];
  readonly metrics: Registry;
}) {
  const { store, storeDir, reporters, logKeys } = context;
  const reports = context.metrics.counter(
    'accord_monitor_demand_reports_total',
    'demand reports received, by outcome (accepted or why refused)',
  );
  const rebuildReports = context.metrics.counter(
    'accord_monitor_rebuild_reports_total',
    'rebuild reports received, by outcome (accepted or why refused)',
  );

  return async (
    req: IncomingMessage,
    res: ServerResponse,
    url: URL,
    json: (status: number, body: unknown) => void,
  ): Promise<boolean> => {
    if (url.pathname === '/rebuilds') {
      if (req.method !== 'POST') throw new HttpError(405, 'use POST', { Allow: 'POST' });
      json(
        200,
        await takeReport(req, rebuildReports, (b) => acceptRebuildReport(store, b, logKeys())),
      );
      return true;
    }
    if (url.pathname !== '/demand' && url.pathname !== '/wanted') return false;
    if (url.pathname === '/demand' && req.method === 'POST') {
      json(200, await takeReport(req, reports, (b) => acceptDemand(store, b, reporters)));
      return true;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD')
      throw new HttpError(405, url.pathname === '/demand' ? 'use GET or POST' : 'use GET', {
        Allow: url.pathname === '/demand' ? 'GET, HEAD, POST' : 'GET, HEAD',
      });
    const limit = param(url, 'limit', 100, MAX_DEMAND_LIMIT);
    if (url.pathname === '/demand') {
      json(200, demandTop(store, { limit, storeDir }));
      return true;
    }
    const k = param(url, 'k', 1, 1_000_000);
    const format = url.searchParams.get('format') ?? 'json';
    if (format !== 'json' && format !== 'text')
      throw new HttpError(400, 'format must be json or text');
    const wanted = wantedList(store, { k, limit, storeDir });
    if (format === 'json') json(200, { k, paths: wanted });
    else
      send(req, res, 200, formatWantedList(wanted), {
        type: 'text/plain; charset=utf-8',
        cacheControl: 'no-store',
        gzip: true,
      });
    return true;
  };
}
