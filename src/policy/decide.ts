/**
 * The k-of-n decision for one store path: which answers (NAR hash, size, references) the
 * configured logs' verified claims and the configured caches' verified signatures support, and
 * whether exactly one satisfies the policy.
 */
import { type BuildClaim, claimToJson, type ClaimJson } from '../claim/index.js';
import { formatHash } from '../nix/index.js';
import { type Policy, logOrigins, trustSatisfied } from './policy.js';

/** One verified claim a log made about the path. */
export interface ObservedClaim {
  readonly claim: BuildClaim;
  /** The entry's index in the log, and the size of the checkpoint that proved it. */
  readonly index: number;
  readonly treeSize: number;
  /** The C2SP tlog-proof that proved it (the log's, against that checkpoint), when kept. */
  readonly proof?: string;
}

/**
 * What the proxy learned from one configured log: its verified claims (possibly none), or why
 * it has no vote (unreachable, proof failed, distrusted for a fork…). `stored` marks claims
 * verified earlier and kept, used because the log cannot be asked now.
 */
export type LogObservation =
  | {
      readonly origin: string;
      readonly status: 'answered';
      readonly claims: readonly ObservedClaim[];
      readonly stored?: boolean;
      /**
       * Claims the log has that do not count, and why: logged under a key revoked as
       * compromised (`revoked`), or under one not valid then (`not-valid`).
       */
      readonly excluded?: readonly ExcludedClaim[];
    }
  | { readonly origin: string; readonly status: 'missing'; readonly reason: string };

/** A cache's signature that verified, on a narinfo stating `claim`. */
export interface SignatureVote {
  readonly claim: BuildClaim;
  /** The key that signed: a Nix key's name, or `guix:<hex of q>`. */
  readonly key: string;
  /** When the proxy verified the signature (ms since the epoch). */
  readonly verifiedAt: number;
  /** The signature itself, when it can be checked again from the claim alone (a Nix `Sig`). */
  readonly signature?: string;
}

/**
 * What the proxy learned from one configured cache: the signatures by its keys it verified
 * (possibly none), or why it has no vote. `stored` marks votes verified earlier and kept, used
 * because the cache cannot be asked now.
 */
export type CacheObservation =
  | {
      readonly cache: string;
      readonly status: 'answered';
      readonly votes: readonly SignatureVote[];
      readonly stored?: boolean;
    }
  | { readonly cache: string; readonly status: 'missing'; readonly reason: string };

/** A claim of a log that does not count. */
export interface ExcludedClaim {
  readonly index: number;
  readonly cause: 'revoked' | 'not-valid';
  readonly reason: string;
}

/** The part of a claim builders must agree on. */
export interface Answer {
  readonly narHash: string;
  readonly narSize: number;
  readonly references: readonly string[];
}

/** A decision with all its evidence. */
export interface Decision {
  readonly verdict: 'trusted' | 'no-quorum' | 'conflict';
  /** The agreed claim, when trusted (from a supporting log; the deriver is informative). */
  readonly claim?: ClaimJson;
  readonly answers: readonly {
    readonly answer: Answer;
    /** Every member supporting it: log origins and cache names. */
    readonly supporters: readonly string[];
    /** The supporters whose vote is a cache's signature, not a log claim (weaker evidence). */
    readonly bySignature: readonly string[];
    readonly satisfied: boolean;
  }[];
  /** Every configured log: what it said or why it did not count. */
  readonly logs: readonly LogObservation[];
  /** Every configured cache: the signatures it gave or why it did not count. */
  readonly caches: readonly CacheObservation[];
  /** One sentence saying why. */
  readonly reason: string;
}

/** What of a claim builders must agree on (references sorted). */
export function answerOf(claim: BuildClaim): Answer {
  return {
    narHash: formatHash(claim.narHash),
    narSize: claim.narSize,
    references: [...claim.references].sort(),
  };
}

/** One string per answer: equal exactly when the answers agree. */
export function answerKey(a: Answer): string {
  return `${a.narHash};${a.narSize};${a.references.join(',')}`;
}

/**
 * Decides from the observations of the configured logs and caches. n is the configured set: a
 * member missing from the observations, or observed as missing, is a missing vote, never a
 * yes. A log supports every distinct answer it claimed, a cache every distinct answer one of
 * its keys signed; a cache's key counts once, for that cache, however many signatures carry
 * it. Exactly one satisfied answer is trusted; none is `no-quorum`; two or more is a
 * `conflict`, refused and reported.
 */
export function decide(
  policy: Policy,
  observations: readonly LogObservation[],
  cacheObservations: readonly CacheObservation[] = [],
): Decision {
  const byOrigin = new Map(observations.map((o) => [o.origin, o]));
  const logs: LogObservation[] = logOrigins(policy).map(
    (origin) => byOrigin.get(origin) ?? { origin, status: 'missing', reason: 'not asked' },
  );
  const byCache = new Map(cacheObservations.map((o) => [o.cache, o]));
  const caches: CacheObservation[] = policy.caches.map(
    (c) => byCache.get(c.name) ?? { cache: c.name, status: 'missing', reason: 'not asked' },
  );
  const answers = new Map<
    string,
    { answer: Answer; supporters: Set<string>; bySignature: Set<string>; claim: BuildClaim }
  >();
  const support = (member: string, claim: BuildClaim, signature: boolean) => {
    const answer = answerOf(claim);
    const key = answerKey(answer);
    const entry = answers.get(key) ?? {
      answer,
      supporters: new Set<string>(),
      bySignature: new Set<string>(),
      claim,
    };
    entry.supporters.add(member);
    if (signature) entry.bySignature.add(member);
    answers.set(key, entry);
  };
  for (const log of logs) {
    if (log.status === 'answered')
      for (const { claim } of log.claims) support(log.origin, claim, false);
  }
  for (const cache of caches) {
    if (cache.status === 'answered')
      for (const { claim } of cache.votes) support(cache.cache, claim, true);
  }
  const evaluated = [...answers.values()].map((a) => ({
    answer: a.answer,
    supporters: [...a.supporters].sort(),
    bySignature: [...a.bySignature].sort(),
    satisfied: trustSatisfied(policy.decide, a.supporters),
    claim: a.claim,
  }));
  const satisfied = evaluated.filter((a) => a.satisfied);
  const n = logs.length + caches.length;
  const missing =
    logs.filter((l) => l.status === 'missing').length +
    caches.filter((c) => c.status === 'missing').length;
  const members = caches.length === 0 ? 'logs' : 'members';
  const result = evaluated.map((a) => ({
    answer: a.answer,
    supporters: a.supporters,
    bySignature: a.bySignature,
    satisfied: a.satisfied,
  }));
  const base = { answers: result, logs, caches };
  const [only] = satisfied;
  if (satisfied.length === 1 && only !== undefined) {
    const byLog = only.supporters.filter((s) => !only.bySignature.includes(s));
    const who =
      only.bySignature.length === 0
        ? byLog.join(', ')
        : [
            ...(byLog.length === 0 ? [] : [`log claims: ${byLog.join(', ')}`]),
            `signatures: ${only.bySignature.join(', ')}`,
          ].join('; ');
    return {
      verdict: 'trusted',
      claim: claimToJson(only.claim),
      ...base,
      reason: `${only.supporters.length} of ${n} ${members} agree (${who})`,
    };
  }
  if (satisfied.length > 1) {
    return {
      verdict: 'conflict',
      ...base,
      reason: `${satisfied.length} different answers each satisfy the policy`,
    };
  }
  const best = Math.max(0, ...evaluated.map((a) => a.supporters.length));
  return {
    verdict: 'no-quorum',
    ...base,
    reason:
      evaluated.length === 0
        ? `no configured ${caches.length === 0 ? 'log has a claim' : 'member has a claim or signature'} (${missing} of ${n} did not answer)`
        : `no answer satisfies the policy (best: ${best} of ${n} ${members}; ${missing} missing)`,
  };
}
