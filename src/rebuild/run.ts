/**
 * `accord rebuild`'s loop: for each work item, find the derivation, rebuild it with Nix
 * ({@link rebuildDerivation}), spool the claims of what it built for the rebuilder's own log,
 * keep the built NARs in a binary cache directory when asked (so a dashboard can show what
 * differs), and record what came of it. Nix builds `jobs` items at a time, while what the last
 * build made is read and recorded; an item already done — its claims in the spool under its
 * key, or its failure recorded — is skipped, so a run killed at any point and started again
 * builds and submits each item once.
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
  localDeriver,
  readDerivation,
  rebuildDerivation,
} from './nix-build.js';
import type { ItemStatus, RebuildState } from './state.js';
import type { WorkItem } from './worklist.js';

export interface RebuildOptions extends NixOptions {
  readonly items: readonly WorkItem[];
  readonly spool: Spool;
  /** The log the claims are for (the spool's name for it: its URL). */
  readonly log: string;
  readonly state: RebuildState;
  /** Items rebuilt at the same time. */
  readonly jobs: number;
  /** Keep every built NAR here, as a file binary cache (narinfo and NAR per path). */
  readonly cacheDir?: string;
  /** Called as each item ends, with the counts so far. */
  readonly onItem?: (done: number, total: number, item: ItemReport) => void;
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

/** The spool key of an item: what it asks to rebuild. */
export function itemKey(item: WorkItem): string {
  return `rebuild ${item.storePath ?? item.drv ?? ''}`;
}

const HOW_TO_GET_A_DRV =
  "give it in the work list (STORE-PATH DERIVATION) or evaluate the expression that produces it here (nix-instantiate '<nixpkgs>' -A ATTRIBUTE, with the same nixpkgs revision) so that its .drv is in the store";

/** The derivation of an item and the outputs to rebuild, or why there is none. */
async function derivationOf(
  item: WorkItem,
  options: NixOptions,
): Promise<{ drv: string; derivation: Derivation; outputs: string[] } | { reason: string }> {
  let drv = item.drv;
  // The store's deriver of a path it has (none for a path it does not have).
  if (drv === undefined && item.storePath !== undefined)
    drv = await localDeriver(item.storePath, options);
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

/** Runs work `n` at a time, in the order asked. */
function limiter(n: number): <T>(work: () => Promise<T>) => Promise<T> {
  let running = 0;
  const waiting: (() => void)[] = [];
  return async <T>(work: () => Promise<T>): Promise<T> => {
    if (running >= n) await new Promise<void>((resolve) => waiting.push(resolve));
    else running++;
    try {
      return await work();
    } finally {
      const next = waiting.shift();
      if (next === undefined) running--;
      else next();
    }
  };
}

async function rebuildItem(
  item: WorkItem,
  options: RebuildOptions,
  exclusive: <T>(work: () => Promise<T>) => Promise<T>,
): Promise<ItemReport> {
  const key = itemKey(item);
  const spooled = options.spool.once(key);
  const recorded = options.state.outcome(key);
  if (spooled !== undefined) return { item, status: 'done-before', claims: spooled };
  if (recorded?.status === 'failed' || recorded?.status === 'no-derivation')
    return {
      item,
      status: recorded.status,
      claims: [],
      reason: `${recorded.detail}\n(in an earlier run; --retry-failed tries again)`,
    };
  const found = await derivationOf(item, options);
  if ('reason' in found) {
    options.state.record(key, 'no-derivation', found.reason);
    return { item, status: 'no-derivation', claims: [], reason: found.reason };
  }
  const outcomes: Map<string, BuildOutcome> = await rebuildDerivation(
    found.drv,
    found.derivation,
    found.outputs,
    {
      ...options,
      exclusive,
      fresh: recorded?.status === 'started' && recorded.detail === 'fresh',
      onStart(mode) {
        options.state.record(key, 'started', mode);
      },
    },
  );
  const failed = [...outcomes].flatMap(([output, o]) => (o.status === 'failed' ? [output] : []));
  if (failed.length > 0) {
    const reason = [
      ...new Set(failed.map((o) => (outcomes.get(o) as { reason: string }).reason)),
    ].join('\n');
    // With the outputs to report to a monitor (--report), in one transaction.
    options.state.recordFailure(key, reason, failed);
    return { item, status: 'failed', claims: [], reason };
  }
  const built = [...outcomes.values()] as Exclude<BuildOutcome, { status: 'failed' }>[];
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
      ? `the store's copy is other bytes: ${built.flatMap((o) => (o.status === 'differs' ? [`${o.stored.storePath} is ${o.stored.narHash}, built ${o.claim.narHash}`] : [])).join('; ')}`
      : undefined;
  options.state.record(key, status, reason ?? '');
  return { item, status, claims, ...(reason === undefined ? {} : { reason }) };
}

/** Rebuilds every item, `jobs` builds at a time; resolves with the summary. */
export async function rebuild(options: RebuildOptions): Promise<RebuildSummary> {
  const { items } = options;
  const reports: ItemReport[] = new Array<ItemReport>(items.length);
  let next = 0;
  let done = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      const item = items[i] as WorkItem;
      let report: ItemReport;
      try {
        report = await rebuildItem(item, options, builds);
      } catch (error) {
        // A fault of this item (Nix not answering, a store query failing) is its failure.
        const reason = (error as Error).message;
        options.state.record(itemKey(item), 'failed', reason);
        report = { item, status: 'failed', claims: [], reason };
      }
      reports[i] = report;
      options.onItem?.(++done, items.length, report);
    }
  };
  // `jobs` builds at a time; twice as many items under way, so that reading what one build
  // made and recording it overlaps the next build.
  const jobs = Math.max(1, options.jobs);
  const builds = limiter(jobs);
  await Promise.all(Array.from({ length: 2 * jobs }, worker));
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
