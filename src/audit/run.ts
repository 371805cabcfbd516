/**
 * Running the audit: the proxy's own decision (its Resolver: the same lookups, proofs, trust
 * kernel, stored evidence and k-of-n rule) for every local path, in batches of one
 * `POST /lookup` per log, a few batches at a time, each compared with the store's record.
 */
import { type BuildClaim, MAX_LOOKUP_PATHS, parseEntry } from '../claim/index.js';
import { type Decision, type Policy, answerOf } from '../policy/index.js';
import { type ProxyState, type Resolution, type Resolver, explainJson } from '../proxy/index.js';
import {
  AUDIT_CATEGORIES,
  type AuditCategory,
  type AuditFinding,
  type FormerSupport,
  type LocalPath,
  advice,
  classify,
  compareWithStore,
  distrustedMembers,
  isFailure,
  revokedMembers,
} from './classify.js';

/** A path whose trust no longer holds: what the store has, why, the evidence, what to do. */
export interface AuditFailure {
  readonly local: LocalPath;
  readonly finding: AuditFinding;
  readonly advice: readonly string[];
  /** The decision with all its evidence, as `accord explain --json` prints it. */
  readonly evidence: ReturnType<typeof explainJson>;
}

/** The audit's result: how many paths fell in each category, and every failure. */
export interface AuditReport {
  readonly paths: number;
  readonly counts: Record<AuditCategory, number>;
  readonly failures: readonly AuditFailure[];
}

export interface AuditOptions {
  /** Paths per batch (one lookup per log): at most MAX_LOOKUP_PATHS. */
  readonly batchSize?: number;
  /** Batches in flight at once. */
  readonly concurrency?: number;
  /** Called after each batch with the number of paths audited so far. */
  readonly onProgress?: (done: number) => void;
}

/**
 * The members that supported the store's answer before, from the evidence the proxy stored:
 * claims verified earlier (kept even for a log distrusted since) and caches' signatures.
 */
function formerSupport(
  state: ProxyState,
  policy: Policy,
  local: LocalPath,
  storeDir: string,
): FormerSupport {
  const same = (claim: BuildClaim) => compareWithStore(answerOf(claim), local).length === 0;
  const supporters = new Set<string>();
  const claims = new Map<string, Set<number>>();
  for (const c of state.storedClaims(local.hashPart)) {
    if (!same(parseEntry(c.entry, storeDir))) continue;
    supporters.add(c.origin);
    const indexes = claims.get(c.origin) ?? new Set<number>();
    claims.set(c.origin, indexes.add(c.index));
  }
  for (const cache of policy.caches)
    for (const s of state.storedSignatures(local.hashPart, cache.name, 0))
      if (same(parseEntry(s.entry, storeDir))) supporters.add(cache.name);
  return { supporters, claims };
}

/** Classifies one path by its resolution, with the former support looked up only when needed. */
function conclude(
  local: LocalPath,
  decision: Decision,
  lookupFormer: () => FormerSupport,
): AuditFinding {
  const needsFormer =
    decision.verdict === 'no-quorum' &&
    (revokedMembers(decision).length > 0 || distrustedMembers(decision).length > 0);
  return classify(local, decision, needsFormer ? lookupFormer() : undefined);
}

/**
 * Audits every path of `pages` (store records, in pages of any size) through `resolver`: the
 * proxy's decision now, compared with the store. The resolver's state is the proxy's: claims
 * and checkpoints verified now are stored there, as the proxy would.
 */
export async function auditStore(
  resolver: Resolver,
  state: ProxyState,
  policy: Policy,
  storeDir: string,
  pages: Iterable<readonly LocalPath[]>,
  options: AuditOptions = {},
): Promise<AuditReport> {
  const batchSize = Math.min(options.batchSize ?? MAX_LOOKUP_PATHS, MAX_LOOKUP_PATHS);
  const concurrency = Math.max(1, options.concurrency ?? 2);
  const counts = Object.fromEntries(AUDIT_CATEGORIES.map((c) => [c, 0])) as Record<
    AuditCategory,
    number
  >;
  const failures: AuditFailure[] = [];
  let done = 0;
  const batches = rebatch(pages, batchSize);
  const worker = async () => {
    for (let next = batches.next(); next.done !== true; next = batches.next()) {
      const batch = next.value;
      const resolutions = resolver.resolveMany(batch.map((p) => p.hashPart));
      for (const local of batch) {
        const pending = resolutions.get(local.hashPart);
        if (pending === undefined) throw new Error(`bug: no resolution for ${local.hashPart}`);
        const r: Resolution = await pending;
        const finding = conclude(local, r.decision, () =>
          formerSupport(state, policy, local, storeDir),
        );
        counts[finding.category]++;
        if (isFailure(finding.category))
          failures.push({
            local,
            finding,
            advice: advice(local, finding),
            evidence: explainJson(r),
          });
      }
      done += batch.length;
      options.onProgress?.(done);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  failures.sort((a, b) => (a.local.path < b.local.path ? -1 : a.local.path > b.local.path ? 1 : 0));
  return { paths: done, counts, failures };
}

/** Regroups pages of any size into batches of `size` (the last may be smaller). */
function* rebatch(pages: Iterable<readonly LocalPath[]>, size: number): Generator<LocalPath[]> {
  let batch: LocalPath[] = [];
  for (const page of pages) {
    for (const p of page) {
      batch.push(p);
      if (batch.length === size) {
        yield batch;
        batch = [];
      }
    }
  }
  if (batch.length > 0) yield batch;
}
