/**
 * What `accord explain --json` prints and `GET /explain/<hash part>` answers: one plain-data
 * shape (hashes in `sha256:<nix32>`, store paths as strings), documented in docs/proxy.md. Its
 * headline names the logs distrusted for a fork, not only the evidence deep inside.
 */
import { claimToJson } from '../claim/index.js';
import type { Resolution } from './resolver.js';

/** The logs the decision did not count because they are distrusted for a fork. */
export function distrustedLogs(r: Resolution): string[] {
  return r.decision.logs.flatMap((log) =>
    log.status === 'missing' && log.reason.startsWith('distrusted') ? [log.origin] : [],
  );
}

/** The one-line reason, with any distrusted log named. */
export function headline(r: Resolution): string {
  const distrusted = distrustedLogs(r);
  return distrusted.length === 0
    ? r.reason
    : `${r.reason} (distrusted for a fork: ${distrusted.join(', ')})`;
}

/** The explanation of a resolution, as JSON-ready plain data. */
export function explainJson(r: Resolution) {
  const { decision } = r;
  return {
    hashPart: r.hashPart,
    verdict: decision.verdict,
    served: r.narinfo !== undefined,
    reason: headline(r),
    claim: decision.claim ?? null,
    answers: decision.answers,
    logs: decision.logs.map((log) =>
      log.status === 'missing'
        ? { origin: log.origin, status: log.status, reason: log.reason }
        : {
            origin: log.origin,
            status: log.status,
            verifiedEarlier: log.stored === true,
            claims: log.claims.map((c) => ({
              ...claimToJson(c.claim),
              index: c.index,
              treeSize: c.treeSize,
            })),
            ...(log.excluded === undefined ? {} : { excluded: log.excluded }),
          },
    ),
    caches: decision.caches.map((cache) =>
      cache.status === 'missing'
        ? { cache: cache.cache, status: cache.status, reason: cache.reason }
        : {
            cache: cache.cache,
            status: cache.status,
            verifiedEarlier: cache.stored === true,
            signatures: cache.votes.map((v) => ({
              ...claimToJson(v.claim),
              key: v.key,
              verifiedAt: new Date(v.verifiedAt).toISOString(),
            })),
          },
    ),
    upstreams: r.upstreams ?? [],
    nar: r.served === undefined ? null : { narHash: r.served.narHash, narSize: r.served.narSize },
  };
}
