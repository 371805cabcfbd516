/**
 * Signature votes: which configured caches a signed narinfo is a vote of. The one place that
 * says what a valid signature by a cache's key is worth, for Nix narinfos and Guix narinfos
 * alike: a vote for exactly what the signature covers (store path, NAR hash, NAR size,
 * references), counted for the cache that owns the key, wherever the narinfo came from.
 */
import { type BuildClaim, checkClaim } from '../claim/index.js';
import { type GuixNarInfo, GuixError, sameGuixKey, verifyGuixNarInfo } from '../guix/index.js';
import { type NarInfo, fingerprint, verifyDetached } from '../nix/index.js';
import type { SignatureVote } from './decide.js';
import { type Policy, formatCacheKey } from './policy.js';

/** A cache's vote: the cache's name and the signature that made it. */
export interface CacheVote {
  readonly cache: string;
  readonly vote: SignatureVote;
}

/** What a narinfo states, as a claim (references sorted; refused when not valid). */
function claimOf(info: BuildClaim): BuildClaim {
  return checkClaim({
    storePath: info.storePath,
    narHash: info.narHash,
    narSize: info.narSize,
    references: info.references,
    ...(info.deriver === undefined ? {} : { deriver: info.deriver }),
  });
}

/**
 * The votes a Nix narinfo carries: one per cache of the policy with a key whose `Sig:` on it
 * verifies (over Nix's fingerprint: store path, NAR hash and size, references). Several `Sig`
 * lines by one cache's keys are one vote.
 */
export function nixNarInfoVotes(policy: Policy, info: NarInfo, verifiedAt: number): CacheVote[] {
  const claim = claimOf(info);
  const message = fingerprint(info);
  return policy.caches.flatMap((cache) => {
    if (cache.nixKeys.length === 0) return [];
    const signature = info.sigs.find((sig) => verifyDetached(message, sig, cache.nixKeys));
    if (signature === undefined) return [];
    const key = signature.slice(0, signature.indexOf(':'));
    return [{ cache: cache.name, vote: { claim, key, verifiedAt, signature } }];
  });
}

/**
 * The vote a Guix narinfo carries: its one `Signature`, when it is by a key of a cache of the
 * policy and verifies over every byte before it (which include NAR hash, size and
 * references). A signature by another key, or one that does not verify, is no vote.
 */
export function guixNarInfoVotes(
  policy: Policy,
  info: GuixNarInfo,
  verifiedAt: number,
): CacheVote[] {
  const signer = info.signature?.signature.publicKey;
  if (signer === undefined) return [];
  const cache = policy.caches.find((c) => c.guixKeys.some((k) => sameGuixKey(k, signer)));
  if (cache === undefined) return [];
  try {
    verifyGuixNarInfo(info, cache.guixKeys);
  } catch (error) {
    if (error instanceof GuixError) return [];
    throw error;
  }
  const claim = claimOf(info);
  return [
    { cache: cache.name, vote: { claim, key: formatCacheKey({ guix: signer }), verifiedAt } },
  ];
}
