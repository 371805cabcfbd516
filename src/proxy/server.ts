/**
 * The proxy's HTTP interface, a Nix binary cache: nix-cache-info, narinfo answers decided by
 * the policy and signed by the proxy, verified NARs; plus /explain, /stats, /metrics and /health.
 * Nothing "not trusted" or "not found" is ever a 5xx (Nix 2.8 would fail the build): it is 404.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { logOrigins } from '../policy/index.js';
import { formatCacheInfo, isHashPart } from '../nix/index.js';
import {
  type ErrorMapper,
  HttpError,
  type Logger,
  type Registry,
  send,
  sendError,
  sendHealth,
  sendMetrics,
} from '../server/index.js';
import { Answers } from './answers.js';
import type { Compressors } from './compressors.js';
import type { ProxyConfig } from './config.js';
import { ProxyError, type ProxyErrorCode } from './errors.js';
import { explainJson } from './explain.js';
import { Nars } from './nars.js';
import type { Resolver } from './resolver.js';
import type { ProxyState } from './state.js';

const STATUS: Readonly<Record<ProxyErrorCode, number>> = { 'no-nar': 404, unavailable: 404 };

/** The proxy's one error mapping; anything unexpected is a 404 too, never a 5xx. */
export const proxyErrors: ErrorMapper = (error) =>
  error instanceof ProxyError ? new HttpError(STATUS[error.code], error.message) : undefined;

const NARINFO = /^\/([0-9a-df-np-sv-z]{32})\.narinfo$/;

/**
 * The proxy's request handler; its `drain()` stops fetching NARs ahead and waits for the
 * fetches under way, before the state closes.
 */
export function createProxyHandler(options: {
  readonly config: ProxyConfig;
  readonly resolver: Resolver;
  readonly state: ProxyState;
  readonly logger: Logger;
  readonly metrics: Registry;
  /** With `serve-zstd`: the compressors for `.nar.zst`. */
  readonly compressors?: Compressors;
}) {
  const { config, resolver, state, logger, metrics } = options;
  const answers = new Answers(config, resolver, state, logger, metrics);
  const nars = new Nars(config, resolver, answers, state, logger, metrics, options.compressors);
  resolver.hasLocalNar = (narHash, narSize) => nars.hasOnDisk(narHash, narSize);
  // A trusted answer going out has its NAR fetched ahead.
  answers.onSent = (hashPart, answer) => {
    nars.ahead(hashPart, answer);
  };
  const cacheInfo = formatCacheInfo({
    storeDir: config.storeDir,
    wantMassQuery: true,
    priority: config.priority,
  });

  async function explain(req: IncomingMessage, res: ServerResponse, hashPart: string) {
    const r = (await answers.resolveOnce(hashPart)).resolution;
    send(req, res, 200, `${JSON.stringify(explainJson(r), null, 2)}\n`, {
      type: 'application/json',
      cacheControl: 'no-store',
    });
  }

  async function route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (req.method !== 'GET' && req.method !== 'HEAD')
      throw new HttpError(405, 'use GET', { Allow: 'GET, HEAD' });
    const path = new URL(req.url ?? '/', 'http://proxy').pathname;
    let m: RegExpExecArray | null;
    if (path === '/nix-cache-info') {
      send(req, res, 200, cacheInfo, {
        type: 'text/x-nix-cache-info',
        cacheControl: 'public, max-age=86400',
      });
    } else if ((m = /^\/([0-9a-z]{32})\.narinfo$/.exec(path)) !== null && isHashPart(m[1] ?? '')) {
      const hashPart = m[1] ?? '';
      const answer = answers.cached(hashPart) ?? (await answers.resolveOnce(hashPart)).answer;
      answers.write(req, res, hashPart, answer);
    } else if (
      (m = /^\/nar\/([0-9a-z]{32})-([0-9a-z]{52})\.nar(\.zst)?$/.exec(path)) !== null &&
      isHashPart(m[1] ?? '')
    ) {
      await nars.serve(req, res, m[1] ?? '', m[2] ?? '', m[3] !== undefined);
    } else if ((m = /^\/explain\/([0-9a-z]{32})$/.exec(path)) !== null && isHashPart(m[1] ?? '')) {
      await explain(req, res, m[1] ?? '');
    } else if (path === '/stats/requests') {
      send(req, res, 200, JSON.stringify(state.topRequests(1000)), {
        type: 'application/json',
        cacheControl: 'no-store',
      });
    } else if (path === '/metrics') {
      sendMetrics(req, res, metrics);
    } else if (path === '/health') {
      await sendHealth(req, res, () => ({
        logs: logOrigins(config.policy).length,
        logsDistrusted: logOrigins(config.policy).filter(
          (origin) => state.distrusted(origin) !== undefined,
        ),
      }));
    } else {
      throw new HttpError(404, 'not found');
    }
  }

  const handle = (req: IncomingMessage, res: ServerResponse): void => {
    // Warm narinfo answers are written at once, without the general routing.
    const hit = req.method === 'GET' ? NARINFO.exec(req.url ?? '') : null;
    const answer = hit === null ? undefined : answers.cached(hit[1] ?? '');
    if (hit !== null && answer !== undefined) {
      answers.write(req, res, hit[1] ?? '', answer);
      return;
    }
    route(req, res).catch((error: unknown) => {
      let http = error instanceof HttpError ? error : proxyErrors(error);
      if (http === undefined) {
        // Never a 5xx: Nix retries and then fails the whole build.
        logger.error('request failed', { url: req.url, error });
        http = new HttpError(404, 'not available');
      }
      sendError(req, res, http, logger);
    });
  };
  return Object.assign(handle, { drain: () => nars.drain() });
}
