/**
 * Decisions anyone can re-check: the evidence a proxy writes into the narinfos it serves, in
 * fields Nix ignores, and the offline re-check of a narinfo against a policy. For each
 * supporting log, `Accord-Proof: <base64 of a C2SP tlog-proof>` whose `extra` is the claim's
 * entry text (the checkpoint with its cosignatures, the inclusion proof); for each supporting
 * cache, `Accord-Signature: <cache> <Sig>`, that cache's own signature on the same fields;
 * for each supporting identity log, `Accord-Statement: <base64 of a key statement note>` for
 * every statement of the identity's chain the proxy held, which say the log keys that signed.
 */
import { type BuildClaim, formatEntry, parseEntry } from '../claim/index.js';
import {
  type IdentityState,
  MAX_STATEMENT_SIZE,
  foldStatements,
  logKeysAt,
  parseLogKey,
} from '../identity/index.js';
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
  openCheckpoint,
  parseCheckpoint,
  parseSignedNote,
  parseTlogProof,
  quorumTime,
  type VerifiedTlogProof,
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
import type { IdentityLog, Policy } from './policy.js';

export const PROOF_FIELD = 'Accord-Proof';
export const SIGNATURE_FIELD = 'Accord-Signature';
export const STATEMENT_FIELD = 'Accord-Statement';
/** Largest evidence field value read (a proof with its cosigned checkpoint is a few KiB). */
const MAX_EVIDENCE_FIELD = 64 << 10;
/** Most evidence fields read from one narinfo: proofs and signatures, and key statements. */
const MAX_EVIDENCE_FIELDS = 256;
const MAX_STATEMENT_FIELDS = 256;
/** Largest key statement field: the base64 of the largest statement note, with the name. */
const MAX_STATEMENT_FIELD = STATEMENT_FIELD.length + 2 + 4 * Math.ceil(MAX_STATEMENT_SIZE / 3);

/** The answer a trusted decision trusts, as its {@link answerKey}. */
const trustedKey = (decision: Decision) => {
  const trusted = decision.answers.find((a) => a.satisfied);
  return decision.verdict === 'trusted' && trusted !== undefined
    ? answerKey(trusted.answer)
    : undefined;
};

/**
 * The evidence lines (`Name: value`, without newlines) for a trusted decision: a proof for
 * each supporting log whose claim of the trusted answer was kept with its proof, with the key
 * statement notes `statements` gives for the log when it is an identity's, and the signature
 * of each supporting cache that has one to show (a Nix `Sig`).
 */
export function evidenceLines(
  decision: Decision,
  statements: (origin: string) => readonly string[] = () => [],
): string[] {
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
    for (const note of statements(log.origin))
      lines.push(`${STATEMENT_FIELD}: ${encodeBase64(Buffer.from(note))}`);
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
  options: {
    storeDir?: string;
    proxyKeys?: readonly NixPublicKey[];
    /** Key statement notes of the policy's identities, beside those the narinfo carries. */
    statements?: readonly string[];
  } = {},
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
    .filter((l) =>
      [PROOF_FIELD, SIGNATURE_FIELD, STATEMENT_FIELD].some((f) => l.startsWith(`${f}: `)),
    );
  const isStatement = (l: string) => l.startsWith(`${STATEMENT_FIELD}: `);
  const statementFields = fields.filter(isStatement).length;
  if (fields.length - statementFields > MAX_EVIDENCE_FIELDS)
    return refuse(`more than ${MAX_EVIDENCE_FIELDS} proofs and signatures`);
  if (statementFields > MAX_STATEMENT_FIELDS)
    return refuse(`more than ${MAX_STATEMENT_FIELDS} key statements`);
  const notes = [...(options.statements ?? [])];
  for (const [i, line] of fields.entries()) {
    const max = isStatement(line) ? MAX_STATEMENT_FIELD : MAX_EVIDENCE_FIELD;
    if (line.length > max) return refuse(`evidence field ${i + 1}: longer than ${max} bytes`);
    if (!isStatement(line)) continue;
    try {
      notes.push(
        Buffer.from(decodeBase64(line.slice(STATEMENT_FIELD.length + 2), STATEMENT_FIELD)).toString(
          'utf8',
        ),
      );
    } catch (error) {
      return refuse(`evidence field ${i + 1}: ${(error as Error).message}`);
    }
  }
  const chains = new Map<string, Chain>();
  const chainOf = (identity: IdentityLog): Chain => {
    let chain = chains.get(identity.origin);
    if (chain === undefined) {
      const folded = foldStatements(identity.root, notes);
      chain = folded.kind === 'ok' ? { state: folded.state } : { refused: folded.refusal.message };
      chains.set(identity.origin, chain);
    }
    return chain;
  };
  const logs = new Map<string, LogObservation>();
  const caches = new Map<string, CacheObservation>();
  for (const [i, line] of fields.entries()) {
    const where = `evidence field ${i + 1}`;
    if (line.startsWith(`${STATEMENT_FIELD}: `)) continue;
    try {
      if (line.startsWith(`${PROOF_FIELD}: `)) {
        const observed = checkProof(
          policy,
          line.slice(PROOF_FIELD.length + 2),
          info,
          storeDir,
          chainOf,
        );
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
  // Which statements the identities' proofs were checked under: a proxy may leave out later
  // ones (a revocation); give those with --statements.
  const used = [...chains].flatMap(([origin, c]) =>
    'state' in c && c.state !== undefined && logs.has(origin)
      ? [`${c.state.name} up to statement ${c.state.sequence} (issued ${c.state.issued})`]
      : [],
  );
  const under = used.length === 0 ? '' : `; key statements: ${used.join(', ')}`;
  return { ok: true, reason: `${decision.reason}${under}`, decision };
}

/** An identity's statement chain as the evidence folds it, or why it is refused. */
type Chain = { readonly state: IdentityState | undefined } | { readonly refused: string };

/**
 * The first time from which claims of `origin` cannot be told apart offline from what a
 * revoked key added: the earliest `since` of a revocation of one of its log keys that still
 * spoke for the identity then (a key retired before its revocation's `since` signs nothing
 * anyone takes after that, when the checkpoint is `dated` by its witness quorum).
 */
function taintedSince(state: IdentityState, origin: string, dated: boolean): number | undefined {
  let since: number | undefined;
  for (const r of state.statement.revocations) {
    if (r.kind !== 'log' || parseLogKey(r.key).name !== origin) continue;
    // Undated, a checkpoint the retired key signed after its until cannot be told apart.
    const listed = state.statement.keys.find((k) => k.kind === 'log' && k.key === r.key);
    if (dated && listed?.until !== undefined && listed.until <= r.since) continue;
    since = Math.min(since ?? r.since, r.since);
  }
  return since;
}

/**
 * Verifies the proof of an identity log's claim with the log keys its statements name: the
 * checkpoint signed by one of them valid when the witness quorum had cosigned it (with no
 * witness quorum there is no time, and a key counts that the statements list). Once a log key
 * of the identity was revoked since T, a claim counts only in a checkpoint the quorum cosigned
 * before T: what came later cannot be told apart offline from what the revoked key added (the
 * proxy tells them apart by when it saw each tree).
 */
function checkIdentityProof(
  identity: IdentityLog,
  chain: Chain,
  proof: ReturnType<typeof parseTlogProof>,
  leaf: Uint8Array,
  policy: Policy,
): VerifiedTlogProof {
  const name = identity.root.name;
  if ('refused' in chain)
    throw new Error(
      `the key statements of ${name} are refused: ${chain.refused} (the narinfo's and those given must form one chain from sequence 0)`,
    );
  const { state } = chain;
  if (state === undefined)
    throw new Error(
      `no key statement of ${name} for ${identity.origin} (none in the narinfo, none given)`,
    );
  const listed = state.statement.keys.flatMap((k) =>
    k.kind === 'log' && parseLogKey(k.key).name === identity.origin ? [parseLogKey(k.key)] : [],
  );
  try {
    openCheckpoint(proof.checkpoint, listed);
  } catch (cause) {
    throw new Error(`the checkpoint is signed by no log key the statements of ${name} name`, {
      cause,
    });
  }
  const verified = verifyTlogProof(proof, leaf, {
    ...policy.witnessPolicy,
    logs: listed.map((verifier) => ({ verifier })),
  });
  const t = quorumTime(policy.witnessPolicy.quorum, verified.cosigners);
  const since = taintedSince(state, identity.origin, t !== undefined);
  if (since !== undefined && (t === undefined || t >= since))
    throw new Error(
      `a log key of ${name} is revoked since ${since}, and ${t === undefined ? 'no witness quorum dates this checkpoint' : `the witness quorum cosigned this checkpoint at ${t}`}: claims after the revocation cannot be re-checked offline`,
    );
  if (t !== undefined) {
    try {
      openCheckpoint(proof.checkpoint, logKeysAt(state, t));
    } catch (cause) {
      throw new Error(
        `the checkpoint's signer is not a valid key of ${name} at ${t}, when it was cosigned`,
        { cause },
      );
    }
  }
  return verified;
}

function checkProof(
  policy: Policy,
  value: string,
  info: NarInfo,
  storeDir: string,
  chainOf: (identity: IdentityLog) => Chain,
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
  const leaf = hashLeaf(Buffer.from(entry));
  const origin = parseCheckpoint(parseSignedNote(proof.checkpoint).text).origin;
  const identity = policy.identities.find((l) => l.origin === origin);
  let verified: VerifiedTlogProof;
  if (identity !== undefined)
    verified = checkIdentityProof(identity, chainOf(identity), proof, leaf, policy);
  else if (policy.logs.some((l) => l.origin === origin))
    verified = verifyTlogProof(proof, leaf, policy.witnessPolicy);
  else throw new Error(`${origin} is not a log of the policy`);
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
