/**
 * Narinfo answers: each path resolved once however many ask at the same time, the answer kept
 * in memory ready to write, and a trusted path's references decided before Nix asks for them.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { MAX_LOOKUP_PATHS } from '../claim/index.js';
import type { Logger, Registry } from '../server/index.js';
import { isLoopback } from './client-address.js';
import type { ProxyConfig } from './config.js';
import { headline } from './explain.js';
import type { Resolution, Resolver } from './resolver.js';
import type { ProxyState, ServedNar } from './state.js';

/** A body and its headers, ready to write. */
interface Written {
  readonly body: Buffer;
  readonly headers: Readonly<Record<string, string>>;
}

/** A narinfo answer kept in memory, ready to write. */
export interface Answer extends Written {
  readonly status: 200 | 404;
  /** With `serve-zstd`, the trusted narinfo for clients on other machines (the `.nar.zst`). */
  readonly zstd?: Written;
  readonly verdict: string;
  readonly reason: string;
  readonly expires: number;
  readonly count: () => void;
  /** The store path's name, when a claim about it names it (for demand reports). */
  readonly name?: string;
  /** Where the NAR of a trusted answer comes from. */
  readonly served?: ServedNar;
  /** Set once its NAR was queued to be fetched ahead. */
  ahead?: boolean;
}

/** A resolution and the answer made of it. */
export interface Resolved {
  readonly resolution: Resolution;
  readonly answer: Answer;
  readonly prefetched: boolean;
}

/** Most answers kept in memory (oldest dropped first). */
const MAX_CACHED = 100_000;
/** Prefetching stops while this many paths are being resolved. */
const MAX_PREFETCHING = 5000;

export class Answers {
  private readonly kept = new Map<string, Answer>();
  private readonly inflight = new Map<string, Promise<Resolved>>();
  private readonly verdicts = new Map<string, () => void>();
  private readonly narinfos;
  private readonly decisions;
  /** Called when a trusted answer is sent on a GET (its NAR can be fetched ahead). */
  onSent: ((hashPart: string, answer: Answer) => void) | undefined;

  constructor(
    private readonly config: ProxyConfig,
    private readonly resolver: Resolver,
    private readonly state: ProxyState,
    private readonly logger: Logger,
    metrics: Registry,
  ) {
    this.narinfos = metrics.counter('accord_proxy_narinfo_total', 'narinfo answers by verdict');
    this.decisions = metrics.histogram(
      'accord_proxy_decision_seconds',
      'Time to resolve a path',
      [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    );
  }

  /** The kept answer for a path, if still fresh. */
  cached(hashPart: string): Answer | undefined {
    const a = this.kept.get(hashPart);
    return a !== undefined && a.expires > Date.now() ? a : undefined;
  }

  /** Drops the kept answer of a path (its NAR source was caught serving a wrong NAR). */
  forget(hashPart: string): void {
    this.kept.delete(hashPart);
  }

  /**
   * Writes a kept answer: the hot path of a warm proxy, with nothing left to compute. A client
   * on another machine gets the zstd variant when there is one; one on this machine (loopback)
   * the plain NAR, never worth compressing for a local copy. Both variants are kept in the
   * same answer, so one client's is never written to another.
   */
  write(req: IncomingMessage, res: ServerResponse, hashPart: string, answer: Answer): void {
    answer.count();
    this.state.countRequest(hashPart, answer.verdict, answer.name);
    const variant =
      answer.zstd === undefined || isLoopback(req.socket.remoteAddress) ? answer : answer.zstd;
    res.writeHead(answer.status, variant.headers);
    res.end(req.method === 'HEAD' ? undefined : variant.body);
    if (req.method === 'GET' && answer.served !== undefined) this.onSent?.(hashPart, answer);
  }

  /**
   * Resolves a path once even when many requests ask for it at the same time. A request that
   * joined a prefetch which refused the path asks again on its own (the prefetch may have run
   * into a busy upstream): a prefetch never makes Nix see a refusal.
   */
  async resolveOnce(hashPart: string): Promise<Resolved> {
    const joined = this.inflight.get(hashPart);
    if (joined !== undefined) {
      const r = await joined;
      if (!(r.prefetched && r.resolution.narinfo === undefined)) return r;
    }
    return (
      this.inflight.get(hashPart) ?? this.track(hashPart, this.resolver.resolve(hashPart), false)
    );
  }

  /** Keeps `pending` as the resolution of `hashPart` until it settles. */
  private track(hashPart: string, pending: Promise<Resolution>, prefetched: boolean) {
    const start = performance.now();
    const resolved = pending
      .then((resolution) => ({
        resolution,
        answer: this.remember(hashPart, resolution, prefetched),
        prefetched,
      }))
      .finally(() => {
        this.inflight.delete(hashPart);
        this.decisions.observe((performance.now() - start) / 1000);
      });
    this.inflight.set(hashPart, resolved);
    return resolved;
  }

  /**
   * Nix asks for a path's references right after the path: decide them now, with one batched
   * lookup per log. Only answers kept for a while make this worthwhile.
   */
  private prefetch(resolution: Resolution) {
    const claim = resolution.decision.claim;
    const { config } = this;
    if (!config.prefetchReferences || config.cacheTtlSeconds === 0 || claim === undefined) return;
    const wanted = [...new Set(claim.references.map((ref) => ref.slice(0, 32)))].filter(
      (h) => h !== resolution.hashPart && this.cached(h) === undefined && !this.inflight.has(h),
    );
    const room = MAX_PREFETCHING - this.inflight.size;
    wanted.length = Math.max(0, Math.min(wanted.length, room));
    for (let i = 0; i < wanted.length; i += MAX_LOOKUP_PATHS) {
      for (const [h, pending] of this.resolver.resolveMany(wanted.slice(i, i + MAX_LOOKUP_PATHS))) {
        this.track(h, pending, true).catch((error: unknown) => {
          this.logger.warn('prefetch failed', { hashPart: h, error });
        });
      }
    }
  }

  /**
   * Makes the answer for a resolution and keeps it. A prefetched refusal is not kept: the
   * path is decided afresh when Nix asks (a prefetch may have run into a busy upstream).
   */
  private remember(hashPart: string, r: Resolution, prefetched: boolean): Answer {
    const trusted = r.narinfo !== undefined;
    const reason = headline(r);
    const body = Buffer.from(r.narinfo ?? `${reason}\n`);
    const verdict = trusted ? 'trusted' : (r.reason.split(':')[0] ?? 'refused');
    const ttl = trusted ? this.config.cacheTtlSeconds : this.config.negativeTtlSeconds;
    const name = [
      ...r.decision.logs.flatMap((log) => (log.status === 'answered' ? log.claims : [])),
      ...r.decision.caches.flatMap((cache) => (cache.status === 'answered' ? cache.votes : [])),
    ].find((c) => c.claim.storePath.hashPart === hashPart)?.claim.storePath.name;
    // Guix keeps a narinfo answer as long as max-age says (a 404 two minutes without it), so
    // every answer says how long it holds: a refusal may change soon. The body depends on the
    // client's address when there is a zstd variant: no shared cache may keep it for another.
    const maxAge = `max-age=${ttl}`;
    const cacheControl = r.narinfoZstd === undefined ? maxAge : `private, ${maxAge}`;
    const narinfo = (text: Buffer): Written => ({
      body: text,
      headers: {
        'Content-Type': 'text/x-nix-narinfo',
        'Content-Length': String(text.length),
        'Cache-Control': cacheControl,
      },
    });
    const answer: Answer = {
      status: trusted ? 200 : 404,
      ...(trusted
        ? narinfo(body)
        : {
            body,
            headers: {
              'Content-Type': 'text/plain; charset=utf-8',
              'Content-Length': String(body.length),
              'Cache-Control': maxAge,
              'X-Accord-Reason': reason.replace(/[^\x20-\x7e]/g, '?'),
            },
          }),
      ...(r.narinfoZstd === undefined ? {} : { zstd: narinfo(Buffer.from(r.narinfoZstd)) }),
      verdict,
      reason,
      expires: Date.now() + 1000 * ttl,
      count: this.countVerdict(verdict),
      ...(name === undefined ? {} : { name }),
      ...(r.served === undefined ? {} : { served: r.served }),
    };
    if (prefetched && !trusted) return answer;
    this.kept.delete(hashPart);
    this.kept.set(hashPart, answer);
    if (this.kept.size > MAX_CACHED) this.kept.delete(this.kept.keys().next().value as string);
    this.logger.info(trusted ? 'serving path' : 'refusing path', {
      hashPart,
      reason: r.reason,
      ...(prefetched ? { prefetched } : {}),
    });
    if (trusted) this.prefetch(r);
    return answer;
  }

  private countVerdict(verdict: string): () => void {
    let inc = this.verdicts.get(verdict);
    if (inc === undefined) {
      inc = this.narinfos.bind({ verdict });
      this.verdicts.set(verdict, inc);
    }
    return inc;
  }
}
