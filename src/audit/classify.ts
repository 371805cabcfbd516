/**
 * What `accord audit` concludes for one local store path: the proxy's decision for it now,
 * compared with what the store holds (NAR hash, NAR size, references). Pure: the decision and
 * the store's record come in, a category with its reason and what to do goes out.
 */
import type { Answer, Decision } from '../policy/index.js';

/** What the local store records about one valid path. */
export interface LocalPath {
  /** The full store path. */
  readonly path: string;
  readonly hashPart: string;
  /** `sha256:<nix32>`, as in claims. */
  readonly narHash: string;
  readonly narSize: number;
  /** Base names, sorted; a reference to itself included (as in narinfo files and claims). */
  readonly references: readonly string[];
  /** The full path of the derivation that built it, when the store knows it. */
  readonly deriver?: string;
}

/** The audit's categories: the first two are not failures. */
export const AUDIT_CATEGORIES = [
  'ok',
  'unknown',
  'no-quorum-now',
  'differs',
  'conflict',
  'distrusted',
  'revoked',
] as const;

export type AuditCategory = (typeof AUDIT_CATEGORIES)[number];

/** Whether a category means the path's trust no longer holds. */
export function isFailure(category: AuditCategory): boolean {
  return category !== 'ok' && category !== 'unknown';
}

/** One part of a claim on which the trusted answer and the store disagree. */
export type Difference = 'nar-hash' | 'nar-size' | 'references';

/** The audit's conclusion for one path. */
export interface AuditFinding {
  readonly category: AuditCategory;
  /** One sentence saying why. */
  readonly reason: string;
  /** With `differs`: what differs. */
  readonly differences?: readonly Difference[];
  /** The members (log origins, cache names) named by the reason: revoked, distrusted. */
  readonly members?: readonly string[];
}

/**
 * What the decision's evidence says about former support: the members that supported the
 * store's answer before (claims or signatures the proxy verified and stored), whatever they
 * count for now.
 */
export interface FormerSupport {
  readonly supporters: ReadonlySet<string>;
  /** By log origin: the indexes of its stored claims that state the store's answer. */
  readonly claims?: ReadonlyMap<string, ReadonlySet<number>>;
}

/** Where the trusted answer and the store's record differ (none: the same NAR). */
export function compareWithStore(answer: Answer, local: LocalPath): Difference[] {
  const differences: Difference[] = [];
  if (answer.narHash !== local.narHash) differences.push('nar-hash');
  if (answer.narSize !== local.narSize) differences.push('nar-size');
  const refs = [...answer.references].sort();
  if (refs.length !== local.references.length || refs.some((r, i) => r !== local.references[i]))
    differences.push('references');
  return differences;
}

/** Whether a missing vote's reason says that the member's key is revoked. */
const REVOKED = /\brevoked\b/i;
/** The reason the proxy gives for a log distrusted for a fork (`LogClient.fallback`). */
const DISTRUSTED = /^distrusted\b/;

/** The members of the decision missing for a reason matching `pattern`. */
function missingFor(decision: Decision, pattern: RegExp): string[] {
  return [
    ...decision.logs.flatMap((l) =>
      l.status === 'missing' && pattern.test(l.reason) ? [l.origin] : [],
    ),
    ...decision.caches.flatMap((c) =>
      c.status === 'missing' && pattern.test(c.reason) ? [c.cache] : [],
    ),
  ];
}

/**
 * The members whose key is revoked, from the decision's evidence: votes missing because of it,
 * and logs' claims the decision excluded because of it (with the excluded entries' indexes).
 */
export function revokedEvidence(decision: Decision): {
  readonly missing: readonly string[];
  readonly excluded: ReadonlyMap<string, readonly number[]>;
} {
  const excluded = new Map<string, number[]>();
  for (const log of decision.logs) {
    if (log.status !== 'answered') continue;
    const indexes = (log.excluded ?? []).filter((e) => e.cause === 'revoked').map((e) => e.index);
    if (indexes.length > 0) excluded.set(log.origin, indexes);
  }
  return { missing: missingFor(decision, REVOKED), excluded };
}

/** The members the decision's evidence says have a revoked key (see {@link revokedEvidence}). */
export function revokedMembers(decision: Decision): string[] {
  const { missing, excluded } = revokedEvidence(decision);
  return [...new Set([...missing, ...excluded.keys()])];
}

/** The logs the decision did not count because they are distrusted for a fork. */
export function distrustedMembers(decision: Decision): string[] {
  return missingFor(decision, DISTRUSTED);
}

const describeAnswer = (a: { narHash: string; narSize: number; references: readonly string[] }) =>
  `${a.narHash}, ${a.narSize} bytes, ${a.references.length} reference${a.references.length === 1 ? '' : 's'}`;

/**
 * Classifies a store path by the proxy's decision now:
 * - trusted with the store's NAR (hash, size and references): `ok`;
 * - trusted with another NAR: `differs`;
 * - two answers each satisfy the policy: `conflict`;
 * - not trusted, and a member that supported the store's answer before is missing now because
 *   its key is revoked, or a claim of the store's answer is excluded because the key it was
 *   logged under is revoked: `revoked`; a former supporter distrusted for a fork: `distrusted`;
 * - not trusted, and no member says anything about the path — no claim, counted or not, and
 *   no signature: `unknown` (built locally, or from elsewhere: not a failure);
 * - not trusted otherwise: `no-quorum-now`.
 */
export function classify(
  local: LocalPath,
  decision: Decision,
  former: FormerSupport = { supporters: new Set() },
): AuditFinding {
  if (decision.verdict === 'trusted') {
    const agreed = decision.answers.find((a) => a.satisfied);
    if (agreed === undefined) throw new Error('bug: a trusted decision without a satisfied answer');
    const differences = compareWithStore(agreed.answer, local);
    if (differences.length === 0) return { category: 'ok', reason: decision.reason };
    return {
      category: 'differs',
      differences,
      reason:
        `the trusted answer (${describeAnswer(agreed.answer)}) is not what the store holds ` +
        `(${describeAnswer(local)}): ${differences.join(', ')} differ`,
    };
  }
  if (decision.verdict === 'conflict') return { category: 'conflict', reason: decision.reason };
  // A revoked member counts here only for support of the store's answer: a missing vote of a
  // former supporter, or an excluded claim that stated the store's answer.
  const evidence = revokedEvidence(decision);
  const revoked = [
    ...new Set([
      ...evidence.missing.filter((m) => former.supporters.has(m)),
      ...[...evidence.excluded].flatMap(([origin, indexes]) =>
        indexes.some((i) => former.claims?.get(origin)?.has(i) === true) ? [origin] : [],
      ),
    ]),
  ].sort();
  if (revoked.length > 0)
    return {
      category: 'revoked',
      members: revoked,
      reason: `a supporting key is revoked (${revoked.join(', ')}): ${decision.reason}`,
    };
  const distrusted = distrustedMembers(decision).filter((m) => former.supporters.has(m));
  if (distrusted.length > 0)
    return {
      category: 'distrusted',
      members: distrusted,
      reason: `a supporter is distrusted for a fork (${distrusted.join(', ')}): ${decision.reason}`,
    };
  // A claim that does not count (a key not valid when it was logged) is still something said.
  const excluded = decision.logs.some(
    (l) => l.status === 'answered' && (l.excluded ?? []).length > 0,
  );
  if (decision.answers.length === 0 && !excluded)
    return { category: 'unknown', reason: decision.reason };
  const own = decision.answers.find((a) => compareWithStore(a.answer, local).length === 0);
  const support =
    own === undefined
      ? "no member supports the store's NAR"
      : `the store's NAR has ${own.supporters.length} supporter${own.supporters.length === 1 ? '' : 's'} (${own.supporters.join(', ')})`;
  return { category: 'no-quorum-now', reason: `${decision.reason}; ${support}` };
}

/** What to do about a failing path: commands to run, most careful first. */
export function advice(local: LocalPath, finding: AuditFinding): string[] {
  if (!isFailure(finding.category)) return [];
  const steps = [
    `nix-store --query --referrers ${local.path}   # what still uses it`,
    `nix-store --delete ${local.path}   # refused while something uses it; then fetch it again through the proxy`,
  ];
  if (local.deriver !== undefined)
    steps.push(`nix-store --realise --check ${local.deriver}   # rebuild it here and compare`);
  return steps;
}
