/**
 * The witness's HTTP interface (C2SP tlog-witness): POST /add-checkpoint, and the monitoring
 * endpoint GET /<hex SHA-256 of origin>/checkpoint; plus /metrics and /health.
 */
import { createHash } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import {
  type ErrorMapper,
  HttpError,
  type Logger,
  type Registry,
  readBody,
  send,
  sendHealth,
  sendMetrics,
  routeHandler,
} from '../server/index.js';
import { WitnessError, type WitnessErrorCode } from './errors.js';
import { type Witness, addCheckpoint } from './witness.js';

/** Largest add-checkpoint body: 63 proof lines and a checkpoint with many signatures. */
const MAX_BODY = 256 * 1024;

/** The statuses c2sp.org/tlog-witness gives each refusal. */
const STATUS: Readonly<Record<WitnessErrorCode, number>> = {
  malformed: 400,
  'unknown-log': 404,
  untrusted: 403,
  stale: 409,
  inconsistent: 422,
};

/** The witness's one error mapping: a 409 carries the stored size as `text/x.tlog.size`. */
export const witnessErrors: ErrorMapper = (error) => {
  if (!(error instanceof WitnessError)) return undefined;
  if (error.code === 'stale')
    return new HttpError(409, String(error.details.size ?? 0), {}, 'text/x.tlog.size');
  return new HttpError(STATUS[error.code], error.message);
};

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
      res.once('finish', () => {
        requests.inc({ status: String(res.statusCode) });
      });
      const body = await readBody(req, { maxBytes: MAX_BODY, timeoutMs: 10_000 });
      let line: string;
      try {
        line = await addCheckpoint(witness, body.toString('utf8'));
      } catch (error) {
        if (error instanceof WitnessError) {
          // A refused checkpoint that proves the log forked is kept, in the log.
          const evidence = error.details.evidence;
          if (evidence === undefined)
            logger.info('add-checkpoint refused', { code: error.code, reason: error.message });
          else logger.warn('log fork shown to the witness', { reason: error.message, evidence });
        }
        throw error;
      }
      send(req, res, 200, line, { type: 'text/plain; charset=utf-8', cacheControl: 'no-store' });
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
    if (path === '/health') {
      const [first] = witness.logs.keys();
      await sendHealth(req, res, async () => {
        if (first !== undefined) await witness.storage.latest(first);
        return { logs: witness.logs.size };
      });
      return;
    }
    throw new HttpError(404, 'not found');
  }

  return routeHandler(route, logger, witnessErrors);
}
