/**
 * The dashboard's data: the models src/web draws, made from the monitor's verified state. The
 * reproducibility counts take one pass over the whole claim index, so they are made again only
 * when a log's verified tree grew (after a poll), not per request; every other model reads a
 * bounded number of index lookups.
 */
import {
  canonicalDeriver,
  canonicalReferences,
  canonicalStorePath,
  claimToJson,
  parseEntry,
} from '../claim/index.js';
import { HASH_PART_LENGTH } from '../nix/index.js';
import {
  type LogObservation,
  type Policy,
  decide,
  describeRule,
  logOrigins,
} from '../policy/index.js';
import {
  SIG_TYPE_COSIGNATURE_V1,
  cosignatureTimestamp,
  openCheckpoint,
  quorumSatisfied,
} from '../tlog/index.js';
import type {
  DemandModel,
  WantedModel,
  NarDiff,
  NarDiffUnavailable,
  ClosureModel,
  ClosurePath,
  ClosureStatus,
  LogSummary,
  OverviewModel,
  PathModel,
  ReproPoint,
} from '../web/index.js';
import { demandTop, pathDemand, wantedList } from './demand.js';
import { diffListings, fetchClaimedNar, listNar } from './nar-diff.js';
import { pathFailures } from './rebuild-failures.js';
import type { Monitor } from './monitor.js';
import { FINDING_KINDS, type MonitorStore, pathFindingKey } from './store.js';
import { type ReproCounts, countReproducibility, countReproducibilityYielding } from './repro.js';
import { verdict } from './verdict.js';

/** A closure walk stops here (a NixOS system closure is a few thousand paths). */
export const MAX_CLOSURE_PATHS = 50_000;

/** Comparisons kept (by the pair of answers compared); the oldest goes first. */
const MAX_DIFFS_KEPT = 256;

/** The models of the dashboard's pages, from one monitor. */
export class Dashboard {
  private counts: { signature: string; counts: ReproCounts } | undefined;
  private readonly diffs = new Map<string, Promise<NarDiff | NarDiffUnavailable>>();

  constructor(
    private readonly options: {
      readonly monitor: Monitor;
      readonly store: MonitorStore;
      readonly policy: Policy;
      readonly storeDir: string;
      /** Builders' binary caches by log origin, where the NARs they claimed can be fetched. */
      readonly caches?: ReadonlyMap<string, string>;
      readonly timeoutMs?: number;
      /** NARs larger than this are not compared (default 256 MiB). */
      readonly maxDiffNarBytes?: number;
      readonly now?: () => number;
    },
  ) {}

  /**
   * The path's model with the file-level comparison of its two most claimed answers, where
   * each has a log whose cache is known: waits up to `waitMs` for it, else says it is pending
   * (the comparison goes on, and the next request shows it).
   */
  async pathWithDiff(hashPart: string, waitMs: number): Promise<PathModel> {
    const model = this.path(hashPart);
    const [first, second] = model.answers;
    if (first === undefined || second === undefined) return model;
    const caches = this.options.caches ?? new Map<string, string>();
    const sideOf = (a: typeof first) => {
      const log = a.logs.find((l) => caches.has(l));
      return log === undefined
        ? undefined
        : { log, narHash: a.narHash, narSize: a.narSize, cache: caches.get(log) as string };
    };
    const a = sideOf(first);
    const b = sideOf(second);
    if (a === undefined || b === undefined) {
      return {
        ...model,
        diff: {
          status: 'no-cache',
          reason:
            'The cache of a builder of each answer is not configured (monitor serve --cache ORIGIN=URL), so the NARs cannot be compared.',
        },
      };
    }
    const key = `${first.answer} ${second.answer}`;
    let job = this.diffs.get(key);
    if (job === undefined) {
      job = this.compare(hashPart, a, b);
      this.diffs.set(key, job);
      if (this.diffs.size > MAX_DIFFS_KEPT)
        this.diffs.delete(this.diffs.keys().next().value as string);
      // A failure is shown, then tried again by a later request.
      void job.then((d) => {
        if ('status' in d) setTimeout(() => this.diffs.delete(key), 30_000).unref();
      });
    }
    const pending: NarDiffUnavailable = {
      status: 'pending',
      reason: 'The NARs are being fetched and compared; this page reloads when done.',
    };
    const diff = await Promise.race([
      job,
      new Promise<NarDiffUnavailable>((resolve) =>
        setTimeout(() => {
          resolve(pending);
        }, waitMs).unref(),
      ),
    ]);
    return { ...model, diff };
  }

  private async compare(
    hashPart: string,
    a: { log: string; narHash: string; narSize: number; cache: string },
    b: { log: string; narHash: string; narSize: number; cache: string },
  ): Promise<NarDiff | NarDiffUnavailable> {
    const options = {
      timeoutMs: this.options.timeoutMs ?? 30_000,
      maxNarBytes: this.options.maxDiffNarBytes ?? 256 << 20,
    };
    const fetchSide = async (side: typeof a) => {
      try {
        return await fetchClaimedNar(side.cache, hashPart, side, options);
      } catch (error) {
        throw new Error(`${side.log}'s cache: ${(error as Error).message}`, { cause: error });
      }
    };
    try {
      const [x, y] = await Promise.all([fetchSide(a), fetchSide(b)]);
      const { entries, truncated } = diffListings(listNar(x), listNar(y));
      const label = (s: typeof a) => ({
        log: s.log,
        narHash: s.narHash,
        cache: s.cache.startsWith('file:') ? 'a file:// cache' : s.cache,
      });
      return { sides: [label(a), label(b)], entries, truncated };
    } catch (error) {
      return { status: 'failed', reason: (error as Error).message };
    }
  }

  private now(): number {
    return (this.options.now ?? Date.now)();
  }

  /** The verified trees the counts were made of. */
  private signature(): string {
    return this.options.store
      .logs()
      .map((l) => `${l.origin} ${l.verifiedSize}`)
      .join('\n');
  }

  /**
   * Counts again when a verified tree changed since the last count, letting the event loop run
   * (the monitor calls it after each poll's ingest, when the index is not being written), and
   * records the share in the history.
   */
  async refresh(): Promise<void> {
    const { store, storeDir } = this.options;
    const signature = this.signature();
    if (this.counts?.signature === signature) return;
    this.keep(signature, await countReproducibilityYielding(store, storeDir));
  }

  private keep(signature: string, counts: ReproCounts): ReproCounts {
    this.counts = { signature, counts };
    this.options.store.addReproPoint(this.now(), counts.shared, counts.agreeing);
    return counts;
  }

  /** The counts of the last poll (made now, in one go, before the first). */
  private counted(): ReproCounts {
    return (
      this.counts?.counts ??
      this.keep(this.signature(), countReproducibility(this.options.store, this.options.storeDir))
    );
  }

  private logSummary(origin: string, url: string, counts: ReproCounts): LogSummary {
    const { store, monitor, policy } = this.options;
    const state = store.log(origin);
    const status = monitor.status.get(origin);
    const tally = counts.perLog.get(origin) ?? { claims: 0, shared: 0, agreeing: 0 };
    let cosigners: string[] = [];
    let cosignedAt: number | null = null;
    const log = monitor.followed.find((l) => l.origin === origin);
    if (state !== undefined && log !== undefined) {
      const witnesses = policy.witnessPolicy.witnesses;
      const { note } = openCheckpoint(
        state.checkpoint,
        monitor.logKeys(log),
        witnesses.map((w) => w.verifier),
      );
      for (const { verifier, signature } of note.verified) {
        const w = witnesses.find((x) => x.verifier === verifier);
        if (w === undefined || verifier.type !== SIG_TYPE_COSIGNATURE_V1) continue;
        cosigners.push(w.name);
        const at = cosignatureTimestamp(signature.signature) * 1000;
        cosignedAt = Math.max(cosignedAt ?? 0, at);
      }
      cosigners = [...new Set(cosigners)].sort();
    }
    return {
      origin,
      url,
      treeSize: state?.verifiedSize ?? 0,
      verifiedAt: state?.verifiedAt ?? null,
      cosigners,
      witnessed:
        cosigners.length > 0 && quorumSatisfied(policy.witnessPolicy.quorum, new Set(cosigners)),
      cosignedAt,
      ...tally,
      error: status?.error ?? null,
    };
  }

  overview(): OverviewModel {
    const { monitor, store, storeDir } = this.options;
    const counts = this.counted();
    const findings: Record<string, number> = Object.fromEntries(FINDING_KINDS.map((k) => [k, 0]));
    for (const [kind, n] of store.findingCounts()) findings[kind] = n;
    const now = this.now();
    const history: ReproPoint[] = store.reproHistory();
    return {
      generatedAt: now,
      storeDir,
      logs: monitor.followed.map((l) => this.logSummary(l.origin, l.url, counts)),
      paths: counts.paths,
      reproducibility: { at: now, shared: counts.shared, agreeing: counts.agreeing },
      history,
      findings,
    };
  }

  /** Everything known about one path, without the file-level comparison (`diff` is null). */
  path(hashPart: string): PathModel {
    const { store, storeDir, policy } = this.options;
    const found = store.claims(hashPart);
    const v = verdict(found, storeDir);
    const sizes = new Map(store.logs().map((l) => [l.origin, l.verifiedSize]));
    const parsed = found.map((c) => ({ c, claim: parseEntry(c.entry, storeDir) }));
    const claims = parsed.map(({ c, claim }) => {
      return {
        log: c.origin,
        index: c.index,
        treeSize: sizes.get(c.origin) ?? 0,
        ...claimToJson(claim),
        answer: c.answer,
        inMajority: v.majority?.answer === c.answer,
      };
    });
    const observations: LogObservation[] = logOrigins(policy).map((origin) => ({
      origin,
      status: 'answered',
      claims: parsed
        .filter(({ c }) => c.origin === origin)
        .map(({ c, claim }) => ({ claim, index: c.index, treeSize: sizes.get(c.origin) ?? 0 })),
    }));
    const decision = decide(policy, observations);
    const failed = pathFailures(store, hashPart);
    const findings = (['disagreement', 'log-equivocation'] as const).flatMap((kind) => {
      const f = store.finding(pathFindingKey(kind, hashPart));
      return f === undefined ? [] : [{ id: f.id, kind: f.kind, summary: f.summary }];
    });
    return {
      hashPart,
      agree: v.groups.length <= 1,
      storePath:
        claims[0]?.storePath ?? (failed === null ? null : `${storeDir}/${hashPart}-${failed.name}`),
      claims,
      answers: v.groups,
      majority: v.majority?.answer ?? null,
      minority: v.minority,
      decision: {
        verdict: decision.verdict,
        reason: decision.reason,
        rule: describeRule(policy.decide),
      },
      demand: this.demandOf(hashPart),
      failures:
        failed === null
          ? null
          : { attempts: failed.attempts, builders: failed.builders, recent: failed.recent },
      diff: null,
      findings,
    };
  }

  private demandOf(hashPart: string): PathModel['demand'] {
    const d = pathDemand(this.options.store, hashPart, { storeDir: this.options.storeDir });
    return d === null ? null : { requests: d.requests, refused: d.refused, reporters: d.reporters };
  }

  /** The most requested paths. */
  demand(limit: number): DemandModel {
    return demandTop(this.options.store, { limit, storeDir: this.options.storeDir });
  }

  /** The wanted list for `k`. */
  wanted(k: number, limit: number): WantedModel {
    return {
      k,
      paths: wantedList(this.options.store, { k, limit, storeDir: this.options.storeDir }),
    };
  }

  /**
   * The closure of a path as the majority answers' references give it (every answer's where
   * there is no majority), each path with its status for `k`: agreed (one answer, k or more
   * logs), disputed (two or more answers), too few logs, or no claim.
   */
  closure(hashPart: string, k: number, limit = MAX_CLOSURE_PATHS): ClosureModel {
    const { store, storeDir } = this.options;
    const seen = new Map<string, string>([[hashPart, '']]);
    const paths: ClosurePath[] = [];
    let truncated = false;
    // Breadth first, a level at a time: one batched read of the claims per level.
    for (let level = [hashPart]; level.length > 0;) {
      const claimsOf = store.claimsOfPaths(level);
      const next: string[] = [];
      for (const h of level) {
        const found = claimsOf.get(h) ?? [];
        // Grouped by answer digest, without parsing: a verified entry is canonical, and only
        // the references of the answers followed are read from it.
        const byAnswer = new Map<string, { logs: Set<string>; entry: string }>();
        for (const c of found) {
          const g = byAnswer.get(c.answer) ?? { logs: new Set<string>(), entry: c.entry };
          g.logs.add(c.origin);
          byAnswer.set(c.answer, g);
        }
        const groups = [...byAnswer.values()].sort((a, b) => b.logs.size - a.logs.size);
        const [top, second] = groups;
        const majority =
          top !== undefined && top.logs.size > (second?.logs.size ?? 0) ? top : undefined;
        const storePath =
          found[0] === undefined
            ? `${storeDir}/${seen.get(h) || h}`
            : canonicalStorePath(found[0].entry);
        const logs = [...(majority?.logs ?? new Set(found.map((c) => c.origin)))].sort();
        const status: ClosureStatus =
          found.length === 0
            ? 'unclaimed'
            : groups.length > 1
              ? 'disputed'
              : logs.length < k
                ? 'too-few'
                : 'agreed';
        const deriver = found.map((c) => canonicalDeriver(c.entry)).find((d) => d !== undefined);
        paths.push({
          hashPart: h,
          storePath,
          status,
          logs,
          answers: groups.length,
          deriver: deriver === undefined ? null : `${storeDir}/${deriver}`,
        });
        for (const g of majority === undefined ? groups : [majority]) {
          for (const ref of canonicalReferences(g.entry)) {
            const refHash = ref.slice(0, HASH_PART_LENGTH);
            if (seen.has(refHash)) continue;
            if (seen.size >= limit) {
              truncated = true;
              continue;
            }
            seen.set(refHash, ref);
            next.push(refHash);
          }
        }
      }
      level = next;
    }
    const counts: Record<ClosureStatus, number> = {
      agreed: 0,
      disputed: 0,
      'too-few': 0,
      unclaimed: 0,
    };
    for (const p of paths) counts[p.status]++;
    return { root: paths[0]?.storePath ?? hashPart, k, paths, counts, truncated };
  }
}
