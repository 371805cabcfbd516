/**
 * Resolving a store path: ask every configured log (in parallel, within the deadline), decide
 * by the policy, find an upstream narinfo with the agreed NAR, and write the proxy's own signed
 * narinfo for it.
 */
import { formatEntry, parseEntry } from '../claim/index.js';
import { signGuixNarInfo } from '../guix/index.js';
import {
  type CacheObservation,
  type Decision,
  type LogObservation,
  type SignatureVote,
  decide,
  evidenceLines,
} from '../policy/index.js';
import {
  type NarInfo,
  formatNarInfo,
  formatHash,
  hashesEqual,
  parseHash,
  parseStorePath,
  signNarInfo,
} from '../nix/index.js';
import { FetchError, type Logger } from '../server/index.js';
import type { ProxyConfig } from './config.js';
import { LogClient, type LogClientOptions } from './log-client.js';
import type { ProxyState, ServedNar } from './state.js';
import { Upstream, type UpstreamNarInfo } from './upstream.js';

/** The outcome for one path: the decision, and the narinfo to serve when there is one. */
export interface Resolution {
  readonly hashPart: string;
  readonly decision: Decision;
  /** The signed narinfo text, when trusted and an upstream has the agreed NAR. */
  readonly narinfo?: string;
  /**
   * With `serve-zstd`, the same narinfo for clients on other machines: its URL the `.nar.zst`
   * of the same NAR, `Compression: zstd`, no FileHash or FileSize (not known beforehand). The
   * signature covers neither URL nor compression, so it is the same.
   */
  readonly narinfoZstd?: string;
  readonly served?: ServedNar;
  /** Why there is no narinfo (or what was served). */
  readonly reason: string;
  /** What each configured upstream had for the path, when it was asked. */
  readonly upstreams?: readonly UpstreamReport[];
}

/** What one upstream had for a path, for `accord explain` (named by its label). */
export interface UpstreamReport {
  readonly upstream: string;
  readonly outcome:
    | 'serves the NAR'
    | 'has the NAR too'
    | 'has another NAR'
    | 'no narinfo'
    | 'narinfo refused'
    | 'unavailable'
    | 'backing off'
    | 'caught with a wrong NAR';
  readonly detail?: string;
}

/** An upstream's answer for a path: its narinfo, or why there is none. */
interface UpstreamAnswer {
  readonly upstream: Upstream;
  readonly info: UpstreamNarInfo | undefined;
  /** Why there is no narinfo to use, when there is none. */
  readonly why?: { readonly outcome: UpstreamReport['outcome']; readonly detail?: string };
  /** The narinfo was refused for a fault of its own (told to clients). */
  readonly rejected?: string;
}

type NarFile = NonNullable<UpstreamNarInfo['nar']>;

/** Resolves `promise`, or `onTimeout()` once `ms` have passed. */
function withDeadline<T>(promise: Promise<T>, ms: number, onTimeout: () => T): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<T>((resolve) => {
    timer = setTimeout(() => {
      resolve(onTimeout());
    }, ms);
  });
  return Promise.race([promise, timeout]).finally(() => {
    clearTimeout(timer);
  });
}

/** The narinfo URL of a NAR the proxy serves: `nar/<hash part>-<nix32 NAR hash>.nar`. */
export function narPath(hashPart: string, narHash: string): string {
  return `nar/${hashPart}-${narHash.replace(/^sha256:/, '')}.nar`;
}

/** The narinfo URL of the zstd-compressed variant of a NAR the proxy serves. */
export const zstdNarPath = (hashPart: string, narHash: string) =>
  `${narPath(hashPart, narHash)}.zst`;

/** The `upstream` of a NAR served from the proxy's own disk cache. */
export const LOCAL_NAR = 'accord:disk-cache';

export class Resolver {
  readonly logs: readonly LogClient[];
  readonly upstreams: readonly Upstream[];

  /**
   * Whether the proxy itself holds the verified NAR of that hash and size (its disk cache): a
   * trusted path is then served with no upstream at all.
   */
  hasLocalNar: (narHash: string, narSize: number) => boolean = () => false;

  constructor(
    private readonly config: ProxyConfig,
    private readonly state: ProxyState,
    private readonly logger: Logger,
    hooks: Pick<LogClientOptions, 'onMisbehaviour' | 'onCheckpoint'> = {},
  ) {
    this.logs = [...config.policy.logs, ...config.policy.identities].map(
      (log) =>
        new LogClient(log, {
          policy: config.policy,
          state,
          logger,
          timeoutMs: config.logTimeoutMs,
          storeDir: config.storeDir,
          statementRefreshMs: config.statementRefreshMs,
          ...hooks,
        }),
    );
    const reading = {
      storeDir: config.storeDir,
      guix: 'guix' in config.signingKey,
      policy: config.policy,
    };
    this.upstreams = config.upstreams.map((u) => new Upstream(u, logger, reading));
  }

  /** What every configured log says, each bounded by the deadline. */
  observe(hashPart: string, deadlineMs: number): Promise<LogObservation[]> {
    return Promise.all(
      this.logs.map((client) =>
        withDeadline(client.observe(hashPart), deadlineMs, () =>
          client.fallback(hashPart, `no answer within ${deadlineMs} ms`),
        ),
      ),
    );
  }

  /**
   * Every upstream's narinfo for a path, or why there is none: not asked (caught with a wrong
   * NAR for the path, backing off), none, unavailable, or refused for a fault of its own.
   */
  private fetchNarInfos(hashPart: string, deadlineMs: number): Promise<UpstreamAnswer[]> {
    return Promise.all(
      this.upstreams.map(async (upstream): Promise<UpstreamAnswer> => {
        if (this.state.isBadUpstream(upstream.url, hashPart))
          return { upstream, info: undefined, why: { outcome: 'caught with a wrong NAR' } };
        const until = upstream.backingOffUntil();
        if (until !== undefined) {
          const detail = `not asked until ${new Date(until).toISOString()}`;
          return { upstream, info: undefined, why: { outcome: 'backing off', detail } };
        }
        return withDeadline(
          upstream.narinfo(hashPart).then(
            (info): UpstreamAnswer =>
              info === undefined
                ? { upstream, info, why: { outcome: 'no narinfo' } }
                : { upstream, info },
            (error: unknown) => {
              this.logger.warn('upstream narinfo rejected', {
                upstream: upstream.url,
                hashPart,
                error,
              });
              // A fetch failure's message may name a local file: only the narinfo's own faults
              // are told to clients.
              if (error instanceof FetchError)
                return { upstream, info: undefined, why: { outcome: 'unavailable' } };
              const rejected = (error as Error).message;
              return {
                upstream,
                info: undefined,
                rejected,
                why: { outcome: 'narinfo refused', detail: rejected },
              };
            },
          ),
          deadlineMs,
          () => ({
            upstream,
            info: undefined,
            why: { outcome: 'unavailable', detail: `no answer within ${deadlineMs} ms` },
          }),
        );
      }),
    );
  }

  /**
   * Which upstream serves a trusted path, and what each one had: the first (by priority) whose
   * narinfo names the agreed NAR — hash, size and references — and has not been caught with a
   * wrong one (checked again here: one may have been caught while this ran).
   */
  private chooseUpstream(
    hashPart: string,
    agreed: { narHash: string; narSize: number; references: readonly string[] },
    found: readonly UpstreamAnswer[],
  ): { picked?: { upstream: Upstream; nar: NarFile }; reports: UpstreamReport[] } {
    const wanted = parseHash(agreed.narHash);
    const refs = [...agreed.references].sort().join(' ');
    let picked: { upstream: Upstream; nar: NarFile } | undefined;
    const reports = found.map(({ upstream, info, why }): UpstreamReport => {
      const name = upstream.label;
      if (why !== undefined) return { upstream: name, ...why };
      if (info === undefined) return { upstream: name, outcome: 'unavailable' };
      const carries =
        hashesEqual(info.narHash, wanted) &&
        info.narSize === agreed.narSize &&
        info.references.join(' ') === refs;
      if (!carries) {
        this.logger.warn('upstream has a different NAR than the builders agree on', {
          upstream: upstream.url,
          hashPart,
        });
        const detail = `${formatHash(info.narHash)}, ${info.narSize} bytes`;
        return { upstream: name, outcome: 'has another NAR', detail };
      }
      if (info.nar === undefined)
        return {
          upstream: name,
          outcome: 'has the NAR too',
          detail: 'in no compression the proxy decodes',
        };
      if (picked !== undefined) return { upstream: name, outcome: 'has the NAR too' };
      if (this.state.isBadUpstream(upstream.url, hashPart))
        return { upstream: name, outcome: 'caught with a wrong NAR' };
      picked = { upstream, nar: info.nar };
      return { upstream: name, outcome: 'serves the NAR' };
    });
    return picked === undefined ? { reports } : { picked, reports };
  }

  /** Resolves a path within the configured deadline. */
  async resolve(hashPart: string): Promise<Resolution> {
    const deadline = this.config.narinfoDeadlineMs;
    // Upstream narinfos are fetched while the logs are asked: a decision waits for one round
    // trip instead of two (a refused path costs a wasted narinfo request).
    const narinfos = this.fetchNarInfos(hashPart, deadline);
    const observations = await this.observe(hashPart, Math.min(this.config.logTimeoutMs, deadline));
    return this.conclude(hashPart, observations, await narinfos);
  }

  /**
   * Resolves many paths (at most `MAX_LOOKUP_PATHS`) with one `POST /lookup` per log, as when
   * prefetching a closure: each path's resolution settles on its own.
   */
  resolveMany(hashParts: readonly string[]): Map<string, Promise<Resolution>> {
    const deadline = this.config.narinfoDeadlineMs;
    const logDeadline = Math.min(this.config.logTimeoutMs, deadline);
    const observed = Promise.all(
      this.logs.map((client) =>
        withDeadline(client.observeMany(hashParts), logDeadline, () =>
          client.fallbackMany(hashParts, `no answer within ${logDeadline} ms`),
        ),
      ),
    );
    return new Map(
      hashParts.map((h) => {
        const narinfos = this.fetchNarInfos(h, deadline);
        const resolution = observed.then(async (perLog) => {
          const observations = this.logs.map(
            (client, i) => perLog[i]?.get(h) ?? client.fallback(h, 'not in the answer'),
          );
          return this.conclude(h, observations, await narinfos);
        });
        return [h, resolution] as const;
      }),
    );
  }

  /** Decides from what the logs said, and writes the narinfo when an upstream has the NAR. */
  private conclude(
    hashPart: string,
    observations: readonly LogObservation[],
    narinfos: readonly UpstreamAnswer[],
  ): Resolution {
    const decision = decide(this.config.policy, observations, this.cacheVotes(hashPart, narinfos));
    const claim = decision.claim;
    if (decision.verdict !== 'trusted' || claim === undefined) {
      return { hashPart, decision, reason: `${decision.verdict}: ${decision.reason}` };
    }
    const { picked: found, reports: upstreams } = this.chooseUpstream(hashPart, claim, narinfos);
    if (found === undefined && this.hasLocalNar(claim.narHash, claim.narSize)) {
      const local = { upstream: LOCAL_NAR, narUrl: '', compression: 'none' };
      return {
        ...this.trusted(hashPart, decision, claim, local, "the proxy's disk cache"),
        upstreams,
      };
    }
    if (found === undefined) {
      const refused = narinfos.flatMap((a) =>
        a.rejected === undefined ? [] : [`${a.upstream.label}: ${a.rejected}`],
      );
      const why = refused.length === 0 ? '' : ` (refused: ${refused.join('; ')})`;
      return {
        hashPart,
        decision,
        reason: `trusted, but no upstream cache has the agreed NAR${why}`,
        upstreams,
      };
    }
    const { upstream, nar } = found;
    const source = { upstream: upstream.url, narUrl: nar.url, compression: nar.compression };
    return { ...this.trusted(hashPart, decision, claim, source, upstream.label), upstreams };
  }

  /**
   * What each of the policy's caches signed for the path. A cache's votes are the valid
   * signatures by its keys on any upstream's narinfo (stored as they are verified). When the
   * cache itself could not be asked now, its signatures verified within the stored-signature
   * age count too; without any, it is a missing vote.
   */
  private cacheVotes(hashPart: string, narinfos: readonly UpstreamAnswer[]): CacheObservation[] {
    const { policy, storedSignatureMaxAgeMs } = this.config;
    if (policy.caches.length === 0) return [];
    const fresh = narinfos.flatMap((a) => a.info?.votes ?? []);
    this.state.transaction(() => {
      for (const { cache, vote } of fresh) {
        const { key, verifiedAt, signature } = vote;
        const stored = { key, entry: formatEntry(vote.claim), verifiedAt };
        this.state.saveSignature(hashPart, cache, {
          ...stored,
          ...(signature === undefined ? {} : { signature }),
        });
      }
    });
    return policy.caches.map((cache): CacheObservation => {
      const votes: SignatureVote[] = fresh.filter((v) => v.cache === cache.name).map((v) => v.vote);
      const own = narinfos.find((a) => a.upstream.url === cache.url);
      const outcome = own?.why?.outcome;
      const offline =
        outcome === 'unavailable' ||
        outcome === 'backing off' ||
        outcome === 'caught with a wrong NAR';
      if (!offline) {
        if (own?.rejected !== undefined && votes.length === 0)
          return {
            cache: cache.name,
            status: 'missing',
            reason: `narinfo refused: ${own.rejected}`,
          };
        return { cache: cache.name, status: 'answered', votes };
      }
      const since = Date.now() - storedSignatureMaxAgeMs;
      const stored = this.state.storedSignatures(hashPart, cache.name, since).map((s) => ({
        claim: parseEntry(s.entry, this.config.storeDir),
        key: s.key,
        verifiedAt: s.verifiedAt,
        ...(s.signature === undefined ? {} : { signature: s.signature }),
      }));
      if (votes.length === 0 && stored.length === 0)
        return {
          cache: cache.name,
          status: 'missing',
          reason: `${outcome}${own?.why?.detail === undefined ? '' : ` (${own.why.detail})`}`,
        };
      return {
        cache: cache.name,
        status: 'answered',
        votes: [...votes, ...stored],
        stored: stored.length > 0,
      };
    });
  }

  /** A trusted path's answer, its NAR to be served from `source` (recorded in the state). */
  private trusted(
    hashPart: string,
    decision: Decision,
    claim: NonNullable<Decision['claim']>,
    source: Pick<ServedNar, 'upstream' | 'narUrl' | 'compression'>,
    from: string,
  ): Resolution {
    const served: ServedNar = { ...source, narHash: claim.narHash, narSize: claim.narSize };
    this.state.saveServed(hashPart, served);
    return {
      hashPart,
      decision,
      ...this.narinfos(hashPart, decision, claim),
      served,
      reason: `${decision.reason}; NAR from ${from}`,
    };
  }

  /**
   * The proxy's narinfo for a trusted claim, signed by its key (and its zstd variant). A Nix
   * narinfo carries the decision's evidence after its own fields, in fields Nix ignores.
   */
  private narinfos(
    hashPart: string,
    decision: Decision,
    claim: NonNullable<Decision['claim']>,
  ): { narinfo: string; narinfoZstd?: string } {
    const storePath = parseStorePath(claim.storePath, this.config.storeDir);
    const narHash = parseHash(claim.narHash);
    // What the signature covers, and the rest but URL, compression and file hash and size.
    const common = {
      storePath,
      narHash,
      narSize: claim.narSize,
      references: claim.references,
      ...(claim.deriver === undefined ? {} : { deriver: claim.deriver }),
    };
    const key = this.config.signingKey;
    if ('guix' in key) {
      // Guix signs every byte before the Signature line; its one URL block follows, unsigned.
      const url = narPath(hashPart, claim.narHash);
      const urls = [{ url, compression: 'none', fileSize: claim.narSize }];
      return { narinfo: signGuixNarInfo({ ...common, urls }, key.guix, key.host) };
    }
    const ours: NarInfo = {
      ...common,
      url: narPath(hashPart, claim.narHash),
      compression: 'none',
      fileHash: narHash,
      fileSize: claim.narSize,
      sigs: [],
    };
    const signed = [key, ...this.config.moreSigningKeys].reduce(signNarInfo, ours);
    const evidence = evidenceLines(
      decision,
      (origin) => this.logs.find((l) => l.log.origin === origin)?.statementNotes() ?? [],
    )
      .map((line) => `${line}\n`)
      .join('');
    const narinfo = formatNarInfo(signed) + evidence;
    if (this.config.zstd === undefined) return { narinfo };
    // The same signature: it covers neither the URL nor the compression.
    const narinfoZstd =
      formatNarInfo({
        ...common,
        url: zstdNarPath(hashPart, claim.narHash),
        compression: 'zstd',
        sigs: signed.sigs,
      }) + evidence;
    return { narinfo, narinfoZstd };
  }
}
