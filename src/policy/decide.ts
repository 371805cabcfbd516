/**
 * The k-of-n decision for one store path: which answers (NAR hash, size, references) the
 * configured logs' verified claims support, and whether exactly one satisfies the policy.
 */
import { type BuildClaim, claimToJson, type ClaimJson } from '../claim/index.js';
import { formatHash } from '../nix/index.js';
import { type Policy, trustSatisfied } from './policy.js';

/** One verified claim a log made about the path. */
export interface ObservedClaim {
  readonly claim: BuildClaim;
  /** The entry's index in the log, and the size of the checkpoint that proved it. */
  readonly index: number;
  readonly treeSize: number;
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
    }
  | { readonly origin: string; readonly status: 'missing'; readonly reason: string };

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
    readonly supporters: readonly string[];
    readonly satisfied: boolean;
  }[];
  /** Every configured log: what it said or why it did not count. */
  readonly logs: readonly LogObservation[];
  /** One sentence saying why. */
  readonly reason: string;
}

function answerOf(claim: BuildClaim): Answer {
  return {
    narHash: formatHash(claim.narHash),
    narSize: claim.narSize,
    references: [...claim.references].sort(),
  };
}

function answerKey(a: Answer): string {
  return `${a.narHash};${a.narSize};${a.references.join(',')}`;
}

/**
 * Decides from the observations of the configured logs. n is the configured set: a log
 * missing from `observations`, or observed as missing, is a missing vote, never a yes. A log
 * supports every distinct answer it claimed. Exactly one satisfied answer is trusted; none is
 * `no-quorum`; two or more is a `conflict`, refused and reported.
 */
export function decide(policy: Policy, observations: readonly LogObservation[]): Decision {
  const byOrigin = new Map(observations.map((o) => [o.origin, o]));
  const logs: LogObservation[] = policy.logs.map(
    (log) =>
      byOrigin.get(log.origin) ?? { origin: log.origin, status: 'missing', reason: 'not asked' },
  );
  const answers = new Map<string, { answer: Answer; supporters: Set<string>; claim: BuildClaim }>();
  for (const log of logs) {
    if (log.status !== 'answered') continue;
    for (const { claim } of log.claims) {
      const answer = answerOf(claim);
      const key = answerKey(answer);
      const entry = answers.get(key) ?? { answer, supporters: new Set<string>(), claim };
      entry.supporters.add(log.origin);
      answers.set(key, entry);
    }
  }
  const evaluated = [...answers.values()].map((a) => ({
    answer: a.answer,
    supporters: [...a.supporters].sort(),
    satisfied: trustSatisfied(policy.decide, a.supporters),
    claim: a.claim,
  }));
  const satisfied = evaluated.filter((a) => a.satisfied);
  const missing = logs.filter((l) => l.status === 'missing').length;
  const result = evaluated.map(({ answer, supporters, satisfied: s }) => ({
    answer,
    supporters,
    satisfied: s,
  }));
  const [only] = satisfied;
  if (satisfied.length === 1 && only !== undefined) {
    return {
      verdict: 'trusted',
      claim: claimToJson(only.claim),
      answers: result,
      logs,
      reason: `${only.supporters.length} of ${logs.length} logs agree (${only.supporters.join(', ')})`,
    };
  }
  if (satisfied.length > 1) {
    return {
      verdict: 'conflict',
      answers: result,
      logs,
      reason: `${satisfied.length} different answers each satisfy the policy`,
    };
  }
  const best = Math.max(0, ...evaluated.map((a) => a.supporters.length));
  return {
    verdict: 'no-quorum',
    answers: result,
    logs,
    reason:
      evaluated.length === 0
        ? `no configured log has a claim (${missing} of ${logs.length} did not answer)`
        : `no answer satisfies the policy (best: ${best} of ${logs.length} logs; ${missing} missing)`,
  };
}
