/** Test support: a monitor store holding a verified log of given claims. */
import { gzipSync } from 'node:zlib';
import { type ClaimJson, entryFromJson } from '../../src/claim/index.js';
import type { MonitorStore } from '../../src/monitor/index.js';
import { TILE_WIDTH, formatEntryBundle } from '../../src/tlog/index.js';
import { answerDigest } from '../../src/monitor/bundles.js';

/** Stores and verifies a log of `claims`, in bundles of 256 (no tiles: not needed here). */
export function addLog(
  store: MonitorStore,
  origin: string,
  claims: readonly ClaimJson[],
  gzip = false,
) {
  const entries = claims.map((c) => Buffer.from(entryFromJson(c).entry));
  const bundles = Array.from({ length: Math.ceil(entries.length / TILE_WIDTH) }, (_, index) => {
    const bundle = formatEntryBundle(entries.slice(index * TILE_WIDTH, (index + 1) * TILE_WIDTH));
    return { index, data: gzip ? gzipSync(bundle) : bundle, gzip };
  });
  store.addEntries(
    origin,
    bundles,
    entries.map((e, index) => ({
      hashPart: entryFromJson(claims[index] as ClaimJson).claim.storePath.hashPart,
      index,
      answer: answerDigest(e),
    })),
    [],
    entries.length,
  );
  store.verified(origin, entries.length, new Uint8Array(32), `${origin} checkpoint`);
}
