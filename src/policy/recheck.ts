/**
 * Decisions anyone can re-check: the evidence a proxy writes into the narinfos it serves, in
 * fields Nix ignores, and the offline re-check of a narinfo against a policy. For each
 * supporting log, `Accord-Proof: <base64 of a C2SP tlog-proof>` whose `extra` is the claim's
 * entry text (the checkpoint with its cosignatures, the inclusion proof); for each supporting
 * cache, `Accord-Signature: <cache> <Sig>`, that cache's own signature on the same fields.
 */
import { type BuildClaim, formatEntry, parseEntry } from '../claim/index.js';
import {
  type NarInfo,
  NIX_STORE_DIR,
  type NixPublicKey,
  fingerprint,
  formatHash,
  parseNarInfo,
  verifyDetached,
} from '../nix/index.js';
import {
  decodeBase64,
  encodeBase64,
  formatTlogProof,
  hashLeaf,
  parseTlogProof,
  verifyTlogProof,
} from '../tlog/index.js';
import {
  type CacheObservation,
  type Decision,
  type LogObservation,
  answerKey,
  answerOf,
  decide,
} from './decide.js';
import type { Policy } from './policy.js';

export const PROOF_FIELD = 'Accord-Proof';
export const SIGNATURE_FIELD = 'Accord-Signature';
/** Largest evidence field value read (a proof with its cosigned checkpoint is a few KiB). */
const MAX_EVIDENCE_FIELD = 64 << 10;
/** Most evidence fields read from one narinfo. */
const MAX_EVIDENCE_FIELDS = 256;

/** The answer a trusted decision trusts, as its {@link answerKey}. */
const trustedKey = (decision: Decision) => {
  const trusted = decision.answers.find((a) => a.satisfied);
  return decision.verdict === 'trusted' && trusted !== undefined
    ? answerKey(trusted.answer)
    : undefined;
};

/**
 * The evidence lines (`Name: value`, without newlines) for a trusted decision: a proof for
 * each supporting log whose claim of the trusted answer was kept with its proof, and the
 * signature of each supporting cache that has one to show (a Nix `Sig`).
 */
export function evidenceLines(decision: Decision): string[] {
  const key = trustedKey(decision);
  if (key === undefined) return [];
  const agrees = (claim: BuildClaim) => answerKey(answerOf(claim)) === key;
  const lines: string[] = [];
  for (const log of decision.logs) {
    if (log.status !== 'answered') continue;
    const c = log.claims.find((c) => c.proof !== undefined && agrees(c.claim));
    if (c?.proof === undefined) continue;
    const proof = { ...parseTlogProof(c.proof), extra: Buffer.from(formatEntry(c.claim)) };
    lines.push(`${PROOF_FIELD}: ${encodeBase64(Buffer.from(formatTlogProof(proof)))}`);
  }
  for (const cache of decision.caches) {
    if (cache.status !== 'answered') continue;
    const v = cache.votes.find((v) => v.signature !== undefined && agrees(v.claim));
    if (v?.signature !== undefined) lines.push(`${SIGNATURE_FIELD}: ${cache.cache} ${v.signature}`);
  }
  return lines;
}

/** What re-checking a narinfo found. */
export interface Recheck {
  /** True when its evidence alone satisfies the policy for exactly what the narinfo states. */
  readonly ok: boolean;
  readonly reason: string;
  /** The decision its evidence supports (absent when the narinfo or its evidence is malformed). */
  readonly decision?: Decision;
}

const refuse = (reason: string, decision?: Decision): Recheck => ({
  ok: false,
  reason,
  ...(decision === undefined ? {} : { decision }),
});

/**
 * Re-checks a narinfo offline against `policy`: every evidence field must verify (a proof:
 * signed by a policy log, cosigned by the witness quorum, the entry included, about this store
 * path; a signature: by a key of the named cache over this narinfo's fields), no log or cache
 * may give two, and the policy's decision over that evidence must trust exactly the NAR hash,
 * size and references the narinfo states. With `proxyKeys`, the narinfo must also carry a
 * `Sig` by one of them. Any field that does not verify refuses the narinfo: a proxy never
 * writes one.
 */
export function recheckNarInfo(
  policy: Policy,
  text: string,
  options: { storeDir?: string; proxyKeys?: readonly NixPublicKey[] } = {},
): Recheck {
  const storeDir = options.storeDir ?? NIX_STORE_DIR;
  let info: NarInfo;
  try {
    info = parseNarInfo(text, storeDir);
  } catch (error) {
    return refuse(`not a narinfo: ${(error as Error).message}`);
  }
  const keys = options.proxyKeys ?? [];
  if (keys.length > 0 && !info.sigs.some((s) => verifyDetached(fingerprint(info), s, keys)))
    return refuse('no Sig by the proxy keys given');
  const fields = text
    .split('\n')
    .filter((l) => l.startsWith(`${PROOF_FIELD}: `) || l.startsWith(`${SIGNATURE_FIELD}: `));
  if (fields.length > MAX_EVIDENCE_FIELDS)
    return refuse(`more than ${MAX_EVIDENCE_FIELDS} evidence fields`);
  const logs = new Map<string, LogObservation>();
  const caches = new Map<string, CacheObservation>();
  for (const [i, line] of fields.entries()) {
    const where = `evidence field ${i + 1}`;
    if (line.length > MAX_EVIDENCE_FIELD)
      return refuse(`${where}: longer than ${MAX_EVIDENCE_FIELD} bytes`);
    try {
      if (line.startsWith(`${PROOF_FIELD}: `)) {
        const observed = checkProof(policy, line.slice(PROOF_FIELD.length + 2), info, storeDir);
        if (logs.has(observed.origin))
          return refuse(`${where}: a second proof from ${observed.origin}`);
        logs.set(observed.origin, observed);
      } else {
        const observed = checkSignature(policy, line.slice(SIGNATURE_FIELD.length + 2), info);
        if (caches.has(observed.cache))
          return refuse(`${where}: a second signature of ${observed.cache}`);
        caches.set(observed.cache, observed);
      }
    } catch (error) {
      return refuse(`${where}: ${(error as Error).message}`);
    }
  }
  const decision = decide(policy, [...logs.values()], [...caches.values()]);
  if (decision.verdict !== 'trusted' || decision.claim === undefined)
    return refuse(`the evidence does not satisfy the policy: ${decision.reason}`, decision);
  const trusted = decision.claim;
  if (answerKey(answerOf(info)) !== trustedKey(decision))
    return refuse(
      `the narinfo states ${formatHash(info.narHash)}, ${info.narSize} bytes, but its evidence trusts ${trusted.narHash}, ${trusted.narSize} bytes (or other references)`,
      decision,
    );
  return { ok: true, reason: decision.reason, decision };
}

function checkProof(
  policy: Policy,
  value: string,
  info: NarInfo,
  storeDir: string,
): LogObservation {
  const text = Buffer.from(decodeBase64(value, 'Accord-Proof')).toString('utf8');
  const proof = parseTlogProof(text);
  if (proof.extra === undefined) throw new Error('the proof carries no entry (extra)');
  const entry = Buffer.from(proof.extra).toString('utf8');
  const claim = parseEntry(entry, storeDir);
  if (
    claim.storePath.hashPart !== info.storePath.hashPart ||
    claim.storePath.name !== info.storePath.name
  )
    throw new Error(
      `the proof's claim is about ${claim.storePath.hashPart}-${claim.storePath.name}`,
    );
  const verified = verifyTlogProof(proof, hashLeaf(Buffer.from(entry)), policy.witnessPolicy);
  const origin = verified.checkpoint.origin;
  if (!policy.logs.some((l) => l.origin === origin))
    throw new Error(`${origin} is not a log of the policy`);
  return {
    origin,
    status: 'answered',
    claims: [{ claim, index: verified.index, treeSize: verified.checkpoint.treeSize }],
  };
}

function checkSignature(policy: Policy, value: string, info: NarInfo): CacheObservation {
  const space = value.indexOf(' ');
  const name = value.slice(0, space);
  const signature = value.slice(space + 1);
  const cache = policy.caches.find((c) => c.name === name);
  if (space <= 0 || cache === undefined)
    throw new Error(`${JSON.stringify(name)} is not a cache of the policy`);
  if (!verifyDetached(fingerprint(info), signature, cache.nixKeys))
    throw new Error(`the signature of ${name} does not verify over this narinfo's fields`);
  const key = signature.slice(0, signature.indexOf(':'));
  return {
    cache: name,
    status: 'answered',
    votes: [{ claim: info, key, verifiedAt: 0, signature }],
  };
}
