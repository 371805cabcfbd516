/**
 * How reproducible the followed logs' claims are: one pass over the whole claim index counting
 * the paths two or more logs claim, those they agree on, and each log's share (the dashboard's
 * overview).
 */
import { sameAnswer } from './claim-index.js';
import type { MonitorStore } from './store.js';
import { verdict } from './verdict.js';

export interface ReproCounts {
  readonly paths: number;
  readonly shared: number;
  readonly agreeing: number;
  readonly perLog: ReadonlyMap<string, { claims: number; shared: number; agreeing: number }>;
}

/**
 * Counts, in one pass over the index: the distinct paths; the paths two or more logs claim and
 * of those the ones with one answer; per log, the paths it claims, those another log claims
 * too, and those where its only answer is the majority's. Paths that share an index key are
 * told apart by their entries (only where answers differ, as equal answers are one answer).
 */
export function countReproducibility(store: MonitorStore, storeDir: string): ReproCounts {
  const steps = counting(store, storeDir);
  for (let step = steps.next(); ; step = steps.next()) if (step.done === true) return step.value;
}

/**
 * The same count, letting the event loop run every {@link GROUPS_PER_STEP} paths, so that the
 * monitor keeps answering while it counts a large index. The index must not be written until
 * it resolves (the monitor counts after a poll's ingest, before the next).
 */
export async function countReproducibilityYielding(
  store: MonitorStore,
  storeDir: string,
): Promise<ReproCounts> {
  const steps = counting(store, storeDir);
  for (let step = steps.next(); ; step = steps.next()) {
    if (step.done === true) return step.value;
    await new Promise((resolve) => setImmediate(resolve));
  }
}

/** Index keys counted between two turns of the event loop. */
const GROUPS_PER_STEP = 8192;

function* counting(store: MonitorStore, storeDir: string): Generator<void, ReproCounts> {
  const origins = store.logOrigins();
  const perLog = new Map<string, { claims: number; shared: number; agreeing: number }>();
  for (const origin of origins.values()) perLog.set(origin, { claims: 0, shared: 0, agreeing: 0 });
  let paths = 0;
  let shared = 0;
  let agreeing = 0;
  const tally = (logs: Iterable<string>, agreed: (origin: string) => boolean, many: boolean) => {
    for (const origin of logs) {
      const t = perLog.get(origin);
      if (t === undefined) continue;
      t.claims++;
      if (many) {
        t.shared++;
        if (agreed(origin)) t.agreeing++;
      }
    }
  };
  let groups = 0;
  for (const { key, records } of store.verifiedGroups()) {
    if (++groups % GROUPS_PER_STEP === 0) yield;
    const first = records[0];
    if (first === undefined) continue;
    const oneAnswer = records.every((r) => sameAnswer(first.block, first.at, r.block, r.at));
    if (oneAnswer) {
      const logs = new Set(records.map((r) => origins.get(r.log) ?? ''));
      paths++;
      if (logs.size > 1) {
        shared++;
        agreeing++;
      }
      tally(logs, () => true, logs.size > 1);
      continue;
    }
    const byPath = new Map<string, { origin: string; answer: string; entry: string }[]>();
    for (const c of store.claimsWithKey(key))
      byPath.set(c.hashPart, [...(byPath.get(c.hashPart) ?? []), c]);
    for (const claims of byPath.values()) {
      const v = verdict(claims, storeDir);
      const logs = new Set(claims.map((c) => c.origin));
      paths++;
      if (logs.size > 1) {
        shared++;
        if (v.groups.length === 1) agreeing++;
      }
      const minority = new Set(v.minority);
      tally(logs, (o) => v.majority !== undefined && !minority.has(o), logs.size > 1);
    }
  }
  return { paths, shared, agreeing, perLog };
}
