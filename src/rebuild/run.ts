/**
 * `accord rebuild`'s loop: for each work item, find the derivation, rebuild it with Nix
 * ({@link rebuildBatch}: a batch of items at a time, the fresh builds of a batch in one Nix
 * call), spool the claims of what it built for the rebuilder's own log, keep the built NARs in
 * a binary cache directory when asked (so a dashboard can show what differs), and record what
 * came of it. An item already done — its claims in the spool under its key, or its failure
 * recorded — is skipped; a fresh build under way when a run was killed is built fresh again,
 * which Nix does not do twice for what it finished. So a run killed at any point and started
 * again builds and submits each item once.
 */
import { existsSync } from 'node:fs';
import type { ClaimJson } from '../claim/index.js';
import { narSourceFromPath, writeFileCache } from '../host/index.js';
import { writeNar } from '../nix/index.js';
import type { Spool } from '../submit/index.js';
import type { Derivation } from '../nix/index.js';
import {
  type BuildOutcome,
  type NixOptions,
  type Target,
  localDerivers,
  readDerivation,
  rebuildBatch,
} from './nix-build.js';
import type { ItemStatus, RebuildState } from './state.js';
import type { WorkItem } from './worklist.js';

export interface RebuildOptions extends NixOptions {
  readonly items: readonly WorkItem[];
  readonly spool: Spool;
  /** The log the claims are for (the spool's name for it: its URL). */
  readonly log: string;
  readonly state: RebuildState;
  /** Builds at the same time. */
  readonly jobs: number;
  /** Keep every built NAR here, as a file binary cache (narinfo and NAR per path). */
  readonly cacheDir?: string;
  /** Called as each item ends, with the counts so far. */
  readonly onItem?: (done: number, total: number, item: ItemReport) => void;
  /** Called as Nix ends builds, with the items done so far counting those ended. */
  readonly onProgress?: (done: number, total: number) => void;
}

/** What came of one item, for the summary. */
export interface ItemReport {
  readonly item: WorkItem;
  readonly status: Exclude<ItemStatus, 'started'> | 'done-before';
  /** The claims made (one per output built). */
  readonly claims: readonly ClaimJson[];
  readonly reason?: string;
}

export interface RebuildSummary {
  readonly total: number;
  readonly built: number;
  readonly differs: number;
  readonly failed: number;
  readonly noDerivation: number;
  readonly doneBefore: number;
  readonly items: readonly ItemReport[];
}

/**
 * Items a batch holds: one Nix call builds a batch's fresh derivations, and its claims enter
 * the spool when the call ends.
 */
const BATCH = 64;

/** The spool key of an item: what it asks to rebuild. */
export function itemKey(item: WorkItem): string {
  return `rebuild ${item.storePath ?? item.drv ?? ''}`;
}

const HOW_TO_GET_A_DRV =
  "give it in the work list (STORE-PATH DERIVATION) or evaluate the expression that produces it here (nix-instantiate '<nixpkgs>' -A ATTRIBUTE, with the same nixpkgs revision) so that its .drv is in the store";

/** The derivation of an item and the outputs to rebuild, or why there is none. */
function derivationOf(
  item: WorkItem,
  derivers: ReadonlyMap<string, string>,
): { drv: string; derivation: Derivation; outputs: string[] } | { reason: string } {
  // The store's deriver of a path it has (none for a path it does not have).
  const drv = item.drv ?? (item.storePath === undefined ? undefined : derivers.get(item.storePath));
  if (drv === undefined)
    return { reason: `no derivation for ${item.storePath ?? ''}: ${HOW_TO_GET_A_DRV}` };
  if (!existsSync(drv)) return { reason: `${drv} is not in the local store: ${HOW_TO_GET_A_DRV}` };
  let derivation: Derivation;
  try {
    derivation = readDerivation(drv);
  } catch (error) {
    return { reason: `cannot read ${drv}: ${(error as Error).message}` };
  }
  const outputs = [...derivation.outputs.values()].map((o) => o.path);
  if (item.storePath === undefined) return { drv, derivation, outputs };
  if (!outputs.includes(item.storePath))
    return {
      reason: `${drv} does not produce ${item.storePath} (its outputs: ${outputs.join(', ')})`,
    };
  return { drv, derivation, outputs: [item.storePath] };
}

/**
 * The report of an item done in an earlier run (claimed, or failed); else whether a fresh build
 * of it was under way when a run was killed.
 */
function doneBefore(item: WorkItem, options: RebuildOptions): ItemReport | { fresh: boolean } {
  const key = itemKey(item);
  const spooled = options.spool.once(key);
  if (spooled !== undefined) return { item, status: 'done-before', claims: spooled };
  const recorded = options.state.outcome(key);
  if (recorded?.status === 'failed' || recorded?.status === 'no-derivation')
    return {
      item,
      status: recorded.status,
      claims: [],
      reason: `${recorded.detail}\n(in an earlier run; --retry-failed tries again)`,
    };
  return { fresh: recorded?.status === 'started' && recorded.detail === 'fresh' };
}

/** Records what came of an item's build: its claims spooled, its NARs kept, or its failure. */
function finishItem(
  item: WorkItem,
  outcomes: ReadonlyMap<string, BuildOutcome>,
  options: RebuildOptions,
): ItemReport {
  const key = itemKey(item);
  const failed = [...outcomes].flatMap(([output, o]) => (o.status === 'failed' ? [output] : []));
  if (failed.length > 0) {
    const reason = [
      ...new Set(failed.map((o) => (outcomes.get(o) as { reason: string }).reason)),
    ].join('\n');
    // With the outputs to report to a monitor (--report), in one transaction.
    options.state.recordFailure(key, reason, failed);
    return { item, status: 'failed', claims: [], reason };
  }
  const built = [...outcomes.values()].flatMap((o) =>
    o.status === 'built' || o.status === 'differs' ? [o] : [],
  );
  // Outputs a check did not compare (it stopped at one that differs): neither claimed nor failed.
  const unchecked = [...outcomes].flatMap(([output, o]) =>
    o.status === 'unchecked' ? [output] : [],
  );
  if (options.cacheDir !== undefined)
    writeFileCache(
      options.cacheDir,
      built.map((o) => ({
        claim: o.claim,
        nar:
          o.status === 'differs' ? o.nar : Buffer.concat([...writeNar(narSourceFromPath(o.path))]),
      })),
      50,
    );
  const claims = built.map((o) => o.claim);
  const status: ItemStatus = built.some((o) => o.status === 'differs') ? 'differs' : 'built';
  // The claims and the key in one transaction: from here on the item is done.
  options.spool.addOnce(options.log, key, claims);
  const reason =
    status === 'differs'
      ? `the store's copy is other bytes: ${built.flatMap((o) => (o.status === 'differs' ? [`${o.stored.storePath} is ${o.stored.narHash}, built ${o.claim.narHash}`] : [])).join('; ')}${unchecked.length === 0 ? '' : `; not compared (Nix stops at the first output that differs): ${unchecked.join(', ')}`}`
      : undefined;
  options.state.record(key, status, reason ?? '');
  return { item, status, claims, ...(reason === undefined ? {} : { reason }) };
}

/**
 * Rebuilds every item, {@link BATCH} at a time: each batch's fresh builds in one Nix call
 * (`jobs` builds at once), its checks `jobs` at a time; resolves with the summary.
 */
export async function rebuild(options: RebuildOptions): Promise<RebuildSummary> {
  const { items } = options;
  const reports: ItemReport[] = new Array<ItemReport>(items.length);
  let done = 0;
  const finish = (i: number, report: ItemReport) => {
    reports[i] = report;
    options.onItem?.(++done, items.length, report);
  };
  for (let start = 0; start < items.length; start += BATCH) {
    const batch: number[] = [];
    const interrupted = new Set<number>();
    for (let i = start; i < Math.min(items.length, start + BATCH); i++) {
      const before = doneBefore(items[i] as WorkItem, options);
      if ('status' in before) finish(i, before);
      else {
        batch.push(i);
        if (before.fresh) interrupted.add(i);
      }
    }
    const unfinished = new Set(batch);
    const end = (i: number, report: ItemReport) => {
      unfinished.delete(i);
      finish(i, report);
    };
    try {
      const derivers = await localDerivers(
        batch.flatMap((i) => {
          const { storePath, drv } = items[i] as WorkItem;
          return storePath !== undefined && drv === undefined ? [storePath] : [];
        }),
      );
      const targets = new Map<Target, number>();
      for (const i of batch) {
        const item = items[i] as WorkItem;
        const found = derivationOf(item, derivers);
        if ('reason' in found) {
          options.state.record(itemKey(item), 'no-derivation', found.reason);
          end(i, { item, status: 'no-derivation', claims: [], reason: found.reason });
          continue;
        }
        targets.set({ ...found, fresh: interrupted.has(i) }, i);
      }
      const seen = done;
      await rebuildBatch([...targets.keys()], {
        ...options,
        onStart(modes) {
          options.state.recordStarted(
            [...modes].map(([t, mode]) => [
              itemKey(items[targets.get(t) as number] as WorkItem),
              mode,
            ]),
          );
        },
        onProgress(ended) {
          options.onProgress?.(Math.max(done, Math.min(seen + ended, items.length)), items.length);
        },
        onDone(target, outcomes) {
          const i = targets.get(target) as number;
          const item = items[i] as WorkItem;
          let report: ItemReport;
          try {
            report = finishItem(item, outcomes, options);
          } catch (error) {
            // Keeping what was built failed (the cache directory, the spool): this item's fault
            // — unless its claims made it into the spool, when it is done.
            const reason = (error as Error).message;
            const spooled = options.spool.once(itemKey(item));
            if (spooled !== undefined) report = { item, status: 'built', claims: spooled, reason };
            else {
              options.state.record(itemKey(item), 'failed', reason);
              report = { item, status: 'failed', claims: [], reason };
            }
          }
          end(i, report);
        },
      });
    } catch (error) {
      // A fault of Nix or the store (a query failing) fails the items of the batch left.
      const reason = (error as Error).message;
      for (const i of unfinished) {
        const item = items[i] as WorkItem;
        options.state.record(itemKey(item), 'failed', reason);
        end(i, { item, status: 'failed', claims: [], reason });
      }
    }
  }
  const count = (s: ItemReport['status']) => reports.filter((r) => r.status === s).length;
  return {
    total: items.length,
    built: count('built'),
    differs: count('differs'),
    failed: count('failed'),
    noDerivation: count('no-derivation'),
    doneBefore: count('done-before'),
    items: reports,
  };
}
