/**
 * The proxy's HTTP interface, a Nix binary cache: nix-cache-info, narinfo answers decided by
 * the policy and signed by the proxy, verified NAR streams; plus /explain, /stats and /metrics.
 * Nothing "not trusted" or "not found" is ever a 5xx (Nix 2.8 would fail the build): it is 404.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { MAX_LOOKUP_PATHS } from '../claim/index.js';
import { formatCacheInfo, isHashPart } from '../nix/index.js';
import {
  HttpError,
  type Logger,
  type Registry,
  send,
  sendError,
  sendMetrics,
} from '../server/index.js';
import type { ProxyConfig } from './config.js';
import { NarCache } from './nar-cache.js';
import {
  NAR_HEADERS,
  WHOLE_NAR_BYTES,
  type WholeNarOutcome,
  fetchWholeNar,
  streamNar,
} from './nar-stream.js';
import type { Resolution, Resolver } from './resolver.js';
import type { ProxyState, ServedNar } from './state.js';
import type { Upstream } from './upstream.js';

/** A narinfo answer kept in memory, ready to write. */
interface CacheEntry {
  readonly status: 200 | 404;
  readonly body: Buffer;
  readonly headers: Readonly<Record<string, string>>;
  readonly verdict: string;
  readonly reason: string;
  readonly expires: number;
  readonly count: () => void;
  /** Where the NAR of a trusted answer comes from. */
  readonly served?: ServedNar;
  /** Set once its NAR was queued to be fetched ahead. */
  ahead?: boolean;
}

/** Most answers kept in memory (oldest dropped first). */
const MAX_CACHED = 100_000;
/** NARs fetched ahead at the same time, and most waiting their turn. */
const AHEAD_RUNNING = 8;
const AHEAD_QUEUED = 1000;

/** Prefetching stops while this many paths are being resolved. */
const MAX_PREFETCHING = 5000;

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
}) {
  const { config, resolver, state, logger, metrics } = options;
  const answers = new Map<string, CacheEntry>();
  const inflight = new Map<string, Promise<Resolved>>();
  const narinfos = metrics.counter('accord_proxy_narinfo_total', 'narinfo answers by verdict');
  const nars = metrics.counter(
    'accord_proxy_nar_total',
    'NARs by outcome: responses (ok, cached, failed, mismatch) and fetches ahead (prefetched)',
  );
  const narBytes = metrics.counter('accord_proxy_nar_bytes_total', 'Verified NAR bytes served');
  const narCache = new NarCache(config.narCacheBytes);
  metrics.gauge(
    'accord_proxy_nar_cache_bytes',
    'Bytes of verified NARs kept in memory',
    () => narCache.bytes,
  );
  const decisions = metrics.histogram(
    'accord_proxy_decision_seconds',
    'Time to resolve a path',
    [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
  );
  const cacheInfo = formatCacheInfo({
    storeDir: config.storeDir,
    wantMassQuery: true,
    priority: config.priority,
  });

  /** A resolution and the answer made of it. */
  interface Resolved {
    readonly resolution: Resolution;
    readonly entry: CacheEntry;
    readonly prefetched: boolean;
  }

  /** Keeps `pending` as the resolution of `hashPart` until it settles. */
  function track(hashPart: string, pending: Promise<Resolution>, prefetched: boolean) {
    const start = performance.now();
    const resolved = pending
      .then((resolution) => ({
        resolution,
        entry: remember(hashPart, resolution, prefetched),
        prefetched,
      }))
      .finally(() => {
        inflight.delete(hashPart);
        decisions.observe((performance.now() - start) / 1000);
      });
    inflight.set(hashPart, resolved);
    return resolved;
  }

  /**
   * Resolves a path once even when many requests ask for it at the same time. A request that
   * joined a prefetch which refused the path asks again on its own (the prefetch may have run
   * into a busy upstream): a prefetch never makes Nix see a refusal.
   */
  async function resolveOnce(hashPart: string): Promise<Resolved> {
    const joined = inflight.get(hashPart);
    if (joined !== undefined) {
      const r = await joined;
      if (!(r.prefetched && r.resolution.narinfo === undefined)) return r;
    }
    return inflight.get(hashPart) ?? track(hashPart, resolver.resolve(hashPart), false);
  }

  /**
   * Nix asks for a path's references right after the path: decide them now, with one batched
   * lookup per log. Only answers kept for a while make this worthwhile.
   */
  function prefetch(resolution: Resolution) {
    const claim = resolution.decision.claim;
    if (!config.prefetchReferences || config.cacheTtlSeconds === 0 || claim === undefined) return;
    const wanted = [...new Set(claim.references.map((ref) => ref.slice(0, 32)))].filter(
      (h) => h !== resolution.hashPart && cached(h) === undefined && !inflight.has(h),
    );
    const room = MAX_PREFETCHING - inflight.size;
    wanted.length = Math.max(0, Math.min(wanted.length, room));
    for (let i = 0; i < wanted.length; i += MAX_LOOKUP_PATHS) {
      for (const [h, pending] of resolver.resolveMany(wanted.slice(i, i + MAX_LOOKUP_PATHS))) {
        track(h, pending, true).catch((error: unknown) => {
          logger.warn('prefetch failed', { hashPart: h, error });
        });
      }
    }
  }

  /**
   * Makes the answer for a resolution and keeps it. A prefetched refusal is not kept: the
   * path is decided afresh when Nix asks (a prefetch may have run into a busy upstream).
   */
  function remember(hashPart: string, r: Resolution, prefetched: boolean): CacheEntry {
    const trusted = r.narinfo !== undefined;
    const body = Buffer.from(r.narinfo ?? `${r.reason}\n`);
    const verdict = trusted ? 'trusted' : (r.reason.split(':')[0] ?? 'refused');
    const entry: CacheEntry = {
      status: trusted ? 200 : 404,
      body,
      headers: {
        'Content-Type': trusted ? 'text/x-nix-narinfo' : 'text/plain; charset=utf-8',
        'Content-Length': String(body.length),
        'Cache-Control': 'no-cache',
        ...(trusted ? {} : { 'X-Accord-Reason': r.reason.replace(/[^\x20-\x7e]/g, '?') }),
      },
      verdict,
      reason: r.reason,
      expires: Date.now() + 1000 * (trusted ? config.cacheTtlSeconds : config.negativeTtlSeconds),
      count: countVerdict(verdict),
      ...(r.served === undefined ? {} : { served: r.served }),
    };
    if (prefetched && !trusted) return entry;
    answers.delete(hashPart);
    answers.set(hashPart, entry);
    if (answers.size > MAX_CACHED) answers.delete(answers.keys().next().value as string);
    logger.info(trusted ? 'serving path' : 'refusing path', {
      hashPart,
      reason: r.reason,
      ...(prefetched ? { prefetched } : {}),
    });
    if (trusted) prefetch(r);
    return entry;
  }

  const verdictCounters = new Map<string, () => void>();
  const countVerdict = (verdict: string) => {
    let inc = verdictCounters.get(verdict);
    if (inc === undefined) {
      inc = narinfos.bind({ verdict });
      verdictCounters.set(verdict, inc);
    }
    return inc;
  };

  /** Writes a kept answer: the hot path of a warm proxy, with nothing left to compute. */
  function answer(req: IncomingMessage, res: ServerResponse, hashPart: string, entry: CacheEntry) {
    entry.count();
    state.countRequest(hashPart, entry.verdict);
    res.writeHead(entry.status, entry.headers);
    res.end(req.method === 'HEAD' ? undefined : entry.body);
    if (req.method === 'GET' && entry.served !== undefined && entry.ahead !== true) {
      entry.ahead = true;
      fetchAhead(hashPart, entry.served);
    }
  }

  // Whole fetches of small NARs under way, by path and everything the answer says of its NAR:
  // a request and a fetch ahead of the same NAR share one download, whose outcome is dealt
  // with once, here.
  const wholeFetches = new Map<string, Promise<WholeNarOutcome>>();
  const fetchKey = (hashPart: string, s: ServedNar) =>
    `${hashPart} ${s.narHash} ${s.narSize} ${s.upstream} ${s.narUrl} ${s.compression}`;
  const sameServed = (a: ServedNar | undefined, b: ServedNar) =>
    a !== undefined && fetchKey('', a) === fetchKey('', b);

  function fetchWhole(
    hashPart: string,
    served: ServedNar,
    upstream: Upstream,
    ahead: boolean,
  ): Promise<WholeNarOutcome> {
    const key = fetchKey(hashPart, served);
    const running = wholeFetches.get(key);
    if (running !== undefined) return running;
    const done = fetchWholeNar(served, upstream)
      .then((outcome) => {
        if (outcome.kind === 'ok') {
          narCache.put(served.narHash, outcome.nar);
          if (ahead) nars.inc({ outcome: 'prefetched' });
        } else if (outcome.kind === 'mismatch') {
          nars.inc({ outcome: 'mismatch' });
          caught(hashPart, served, outcome.reason, ahead ? 'caught ahead' : 'next cache');
        } else if (ahead) {
          // Asked for later, it is fetched again (and a failure reported then).
          logger.debug('NAR fetch ahead failed', { hashPart, reason: outcome.reason });
        }
        return outcome;
      })
      .catch((error: unknown): WholeNarOutcome => {
        // Recording a wrong NAR failed (the state is closing): nothing is sent of it anyway.
        logger.error('NAR check failed', { hashPart, error });
        return { kind: 'failed', reason: error instanceof Error ? error.message : String(error) };
      })
      .finally(() => {
        wholeFetches.delete(key);
      });
    wholeFetches.set(key, done);
    return done;
  }

  // Nix downloads a NAR right after reading its narinfo. A small NAR is fetched and checked
  // as the narinfo goes out, so it waits in memory when Nix asks; a wrong one is caught then.
  const aheadQueue: { hashPart: string; served: ServedNar }[] = [];
  let aheadRunning = 0;
  let closing = false;

  function fetchAhead(hashPart: string, served: ServedNar) {
    if (closing || !config.prefetchNars || served.narSize > WHOLE_NAR_BYTES) return;
    if (!narCache.accepts(served.narSize) || aheadQueue.length >= AHEAD_QUEUED) return;
    aheadQueue.push({ hashPart, served });
    startAhead();
  }

  function startAhead() {
    while (!closing && aheadRunning < AHEAD_RUNNING) {
      const next = aheadQueue.shift();
      if (next === undefined) return;
      const { hashPart, served } = next;
      // Not a NAR already here or on its way, nor one whose path was decided again since.
      if (narCache.has(served.narHash) || wholeFetches.has(fetchKey(hashPart, served))) continue;
      let now: ServedNar | undefined;
      try {
        now = state.served(hashPart);
      } catch (error) {
        // Called from request handlers: a state that cannot be read stops only this.
        logger.error('fetch ahead skipped', { hashPart, error });
        continue;
      }
      if (!sameServed(now, served)) continue;
      const upstream = configured(served);
      if (upstream === undefined) continue;
      aheadRunning++;
      void fetchWhole(hashPart, served, upstream, true)
        .then(() => {
          aheadRunning--;
          startAhead();
        })
        .catch((error: unknown) => {
          logger.error('fetch ahead stopped', { error });
        });
    }
  }

  /** Stops fetching ahead and waits for the fetches under way (before the state closes). */
  async function drain(): Promise<void> {
    closing = true;
    aheadQueue.length = 0;
    await Promise.all(wholeFetches.values());
  }

  /** The kept answer for a path, if still fresh. */
  function cached(hashPart: string): CacheEntry | undefined {
    const entry = answers.get(hashPart);
    return entry !== undefined && entry.expires > Date.now() ? entry : undefined;
  }

  async function narinfo(req: IncomingMessage, res: ServerResponse, hashPart: string) {
    answer(req, res, hashPart, cached(hashPart) ?? (await resolveOnce(hashPart)).entry);
  }

  /** Sends a NAR held in memory (checked already) in one write. */
  function sendNar(req: IncomingMessage, res: ServerResponse, nar: Buffer, outcome: string) {
    const head = req.method === 'HEAD';
    res.writeHead(200, { ...NAR_HEADERS, 'Content-Length': String(nar.length) });
    res.end(head ? undefined : nar);
    nars.inc({ outcome });
    if (!head) narBytes.inc({}, nar.length);
  }

  /** An upstream served something other than the agreed NAR: never use it for this path. */
  function caught(hashPart: string, served: ServedNar, reason: string, what: string) {
    const upstream = served.upstream;
    logger.error(`upstream NAR does not match: ${what}`, { hashPart, upstream, reason });
    state.markBadUpstream(upstream, hashPart, reason);
    // The answer that sends Nix there goes (not one decided since, with another NAR source).
    if (sameServed(state.served(hashPart), served)) {
      state.forgetServed(hashPart);
      answers.delete(hashPart);
    }
  }

  /** The upstream a served NAR comes from, if it is still configured. */
  function configured(served: ServedNar): Upstream | undefined {
    return resolver.upstreams.find((u) => u.url === served.upstream);
  }

  /** The upstream of a served NAR, or 404 when it is no longer configured. */
  function upstreamOf(served: ServedNar): Upstream {
    const upstream = configured(served);
    if (upstream === undefined)
      throw new HttpError(404, 'the upstream of this NAR is no longer configured');
    return upstream;
  }

  async function nar(req: IncomingMessage, res: ServerResponse, hashPart: string, narHash: string) {
    const wanted = `sha256:${narHash}`;
    let served = state.served(hashPart);
    if (served?.narHash !== wanted) {
      // Not resolved by this proxy yet (or since a restart): decide now.
      served = (await resolveOnce(hashPart)).resolution.served;
    }
    if (served?.narHash !== wanted) throw new HttpError(404, 'no trusted NAR with this hash');
    const cached = narCache.get(wanted);
    if (cached !== undefined) {
      sendNar(req, res, cached, 'cached');
      return;
    }
    if (served.narSize <= WHOLE_NAR_BYTES) {
      // Checked before a byte is sent: an upstream caught with a wrong NAR is passed over for
      // the next one that has the agreed NAR, within this same request.
      for (let tries = 0; tries < resolver.upstreams.length; tries++) {
        const upstream = upstreamOf(served);
        // A fetch ahead under way is joined; if it failed, this request tries once itself.
        const joined = wholeFetches.has(fetchKey(hashPart, served));
        let outcome = await fetchWhole(hashPart, served, upstream, false);
        if (outcome.kind === 'failed' && joined)
          outcome = await fetchWhole(hashPart, served, upstream, false);
        if (outcome.kind === 'ok') {
          sendNar(req, res, outcome.nar, 'ok');
          return;
        }
        if (outcome.kind === 'failed') {
          nars.inc({ outcome: 'failed' });
          logger.warn('NAR download failed', {
            hashPart,
            upstream: upstream.url,
            reason: outcome.reason,
          });
          throw new HttpError(404, `NAR not available: ${outcome.reason}`);
        }
        // A wrong NAR (its upstream is now out for this path): decide again.
        served = (await resolveOnce(hashPart)).resolution.served;
        if (served?.narHash !== wanted || state.isBadUpstream(served.upstream, hashPart)) break;
      }
      throw new HttpError(404, 'no upstream cache has the agreed NAR');
    }
    const upstream = upstreamOf(served);
    const head = req.method === 'HEAD';
    // A client that goes away stops the download (not one whose response was sent whole).
    const abort = new AbortController();
    res.on('close', () => {
      if (!res.writableFinished) abort.abort();
    });
    const keep = !head && narCache.accepts(served.narSize);
    const outcome = await streamNar(res, served, upstream, abort.signal, { head, keep });
    nars.inc({ outcome: outcome.kind });
    if (outcome.kind === 'ok') {
      narBytes.inc({}, outcome.bytes);
      if (outcome.nar !== undefined) narCache.put(wanted, outcome.nar);
      return;
    }
    if (outcome.kind === 'mismatch') {
      caught(hashPart, served, outcome.reason, 'response cut');
      // Caught at the first bytes, before the response began: it is still a plain 404.
      if (!res.headersSent) throw new HttpError(404, 'the upstream NAR does not match');
      return;
    }
    logger.warn('NAR download failed', {
      hashPart,
      upstream: upstream.url,
      reason: outcome.reason,
    });
    if (!outcome.started) throw new HttpError(404, `NAR not available: ${outcome.reason}`);
  }

  async function explain(req: IncomingMessage, res: ServerResponse, hashPart: string) {
    const r = (await resolveOnce(hashPart)).resolution;
    const body = {
      hashPart,
      verdict: r.decision.verdict,
      reason: r.reason,
      decision: r.decision,
      served: r.served ?? null,
    };
    send(req, res, 200, `${JSON.stringify(body, null, 2)}\n`, {
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
      await narinfo(req, res, m[1] ?? '');
    } else if (
      (m = /^\/nar\/([0-9a-z]{32})-([0-9a-z]{52})\.nar$/.exec(path)) !== null &&
      isHashPart(m[1] ?? '')
    ) {
      await nar(req, res, m[1] ?? '', m[2] ?? '');
    } else if ((m = /^\/explain\/([0-9a-z]{32})$/.exec(path)) !== null && isHashPart(m[1] ?? '')) {
      await explain(req, res, m[1] ?? '');
    } else if (path === '/stats/requests') {
      send(req, res, 200, JSON.stringify(state.topRequests(1000)), {
        type: 'application/json',
        cacheControl: 'no-store',
      });
    } else if (path === '/metrics') {
      sendMetrics(req, res, metrics);
    } else {
      throw new HttpError(404, 'not found');
    }
  }

  const NARINFO = /^\/([0-9a-df-np-sv-z]{32})\.narinfo$/;
  const handle = (req: IncomingMessage, res: ServerResponse): void => {
    // Warm narinfo answers are written at once, without the general routing.
    const hit = req.method === 'GET' ? NARINFO.exec(req.url ?? '') : null;
    const entry = hit === null ? undefined : cached(hit[1] ?? '');
    if (hit !== null && entry !== undefined) {
      answer(req, res, hit[1] ?? '', entry);
      return;
    }
    route(req, res).catch((error: unknown) => {
      // Never a 5xx for a narinfo: Nix retries and then fails the whole build.
      const status = error instanceof HttpError ? error.status : 404;
      if (!(error instanceof HttpError)) logger.error('request failed', { url: req.url, error });
      sendError(
        req,
        res,
        error instanceof HttpError ? error : new HttpError(status, 'not available'),
        logger,
      );
    });
  };
  return Object.assign(handle, { drain });
}
