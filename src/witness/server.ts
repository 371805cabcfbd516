/**
 * The witness's HTTP interface (C2SP tlog-witness): POST /add-checkpoint, and the monitoring
 * endpoint GET /<hex SHA-256 of origin>/checkpoint; plus /metrics.
 */
import { createHash } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import {
  HttpError,
  type Logger,
  type Registry,
  readBody,
  send,
  sendMetrics,
  routeHandler,
} from '../server/index.js';
import { type Witness, addCheckpoint } from './witness.js';

/** Largest add-checkpoint body: 63 proof lines and a checkpoint with many signatures. */
const MAX_BODY = 256 * 1024;

export function createWitnessHandler(options: {
  witness: Witness;
  logger: Logger;
  metrics: Registry;
}) {
  const { witness, logger, metrics } = options;
  const requests = metrics.counter(
    'accord_witness_add_checkpoint_total',
    'add-checkpoint answers by status',
  );
  const byHash = new Map(
    [...witness.logs.keys()].map((origin) => [
      createHash('sha256').update(origin).digest('hex'),
      origin,
    ]),
  );

  async function route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = new URL(req.url ?? '/', 'http://witness').pathname;
    if (path === '/add-checkpoint') {
      if (req.method !== 'POST') throw new HttpError(405, 'use POST', { Allow: 'POST' });
      const body = await readBody(req, { maxBytes: MAX_BODY, timeoutMs: 10_000 });
      const result = await addCheckpoint(witness, body.toString('utf8'));
      requests.inc({ status: String(result.status) });
      if (result.status !== 200)
        logger.info('add-checkpoint refused', {
          status: result.status,
          reason: result.body.trim(),
        });
      send(req, res, result.status, result.body, {
        type:
          result.status !== 200 && result.type !== undefined
            ? result.type
            : 'text/plain; charset=utf-8',
        cacheControl: 'no-store',
      });
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD')
      throw new HttpError(405, 'use GET', { Allow: 'GET, HEAD' });
    const m = /^\/([0-9a-f]{64})\/checkpoint$/.exec(path);
    if (m !== null) {
      const origin = byHash.get(m[1] ?? '');
      const latest = origin === undefined ? undefined : await witness.storage.latest(origin);
      if (latest === undefined) throw new HttpError(404, 'no checkpoint cosigned for this log');
      send(req, res, 200, latest.note, {
        type: 'text/plain; charset=utf-8',
        cacheControl: 'public, max-age=10',
      });
      return;
    }
    if (path === '/metrics') {
      sendMetrics(req, res, metrics);
      return;
    }
    throw new HttpError(404, 'not found');
  }

  return routeHandler(route, logger);
}
