/**
 * Asking a builder log about a path, trusting nothing it says until verified: the checkpoint
 * (log signature and witness quorum), how it relates to the checkpoint of that log verified
 * before (the trust kernel, with hashes from the log's tiles), each entry's inclusion proof, and
 * that each entry is about the path asked. Only a fork, with evidence that verifies, distrusts a
 * log (for good); data that does not check out is read again and is otherwise a missing vote.
 */
import {
  type BuildClaim,
  type LookupEntry,
  MAX_BATCH_LOOKUP_BYTES,
  MAX_LOOKUP_BYTES,
  STATEMENTS_LOOKUP_KEY,
  parseBatchLookup,
  parseEntry,
  parseLookup,
} from '../claim/index.js';
import type {
  BuilderLog,
  ExcludedClaim,
  IdentityLog,
  LogObservation,
  ObservedClaim,
  Policy,
} from '../policy/index.js';
import type { Logger } from '../server/index.js';
import {
  type Checkpoint,
  type NoteVerifier,
  type VerifiedCheckpoint,
  SIG_TYPE_COSIGNATURE_V1,
  SIG_TYPE_ED25519,
  cosignatureTimestamp,
  formatForkEvidence,
  formatVerifierKey,
  hashLeaf,
  openCheckpoint,
  parseTlogProof,
  quorumSatisfied,
  quorumTime,
  relateCheckpointsWith,
  tileHashReader,
  tilePathReader,
  verifyInclusion,
} from '../tlog/index.js';
import { FetchError, fetchBytes, fetchIfPresent, postBytes } from '../server/index.js';
import { logKeysAt } from '../identity/index.js';
import { IdentityKeys } from './identity-keys.js';
import type { ProxyState, StoredClaim } from './state.js';

/** The log was caught signing two histories: `evidence` is fork evidence that verifies. */
class Misbehaviour extends Error {
  override readonly name = 'Misbehaviour';
  constructor(
    message: string,
    readonly evidence: string,
  ) {
    super(message);
  }
}

/** Older checkpoints remembered as prefixes of the stored one, so a replay is checked once. */
const MAX_KNOWN_OLDER = 64;

export interface LogClientOptions {
  readonly policy: Policy;
  readonly state: ProxyState;
  readonly logger: Logger;
  readonly timeoutMs: number;
  readonly storeDir: string;
  /** Called when a log is caught misbehaving (fork, rollback). */
  readonly onMisbehaviour?: (origin: string, reason: string) => void;
  /** How often an identity log's key statements are read again (ms). */
  readonly statementRefreshMs?: number;
  /** Called with each new checkpoint note whose log signature verified (for gossip). */
  readonly onCheckpoint?: (origin: string, note: string) => void;
}

/** Checks that a lookup entry is in `checkpoint`: its tlog-proof is against `note` and verifies. */
function checkIncluded(e: LookupEntry, note: string, checkpoint: Checkpoint): void {
  const proof = parseTlogProof(e.proof ?? '', { parsedCheckpoint: note });
  if (proof.checkpoint !== note || proof.index !== e.index)
    throw new Error(`entry ${e.index}: proof is not against the answer's checkpoint`);
  verifyInclusion(
    hashLeaf(Buffer.from(e.entry)),
    e.index,
    checkpoint.treeSize,
    proof.inclusionProof,
    checkpoint.rootHash,
  );
}

const logKeysNow = (state: Parameters<typeof logKeysAt>[0]) =>
  logKeysAt(state, Math.floor(Date.now() / 1000));

/** Talks to one builder log. */
export class LogClient {
  private checkpointLock: Promise<unknown> = Promise.resolve();
  /** The last checkpoint note verified, to skip verifying the same bytes again. */
  private lastVerified: { note: string; checkpoint: Checkpoint } | undefined;
  private readonly knownOlder = new Set<string>();

  /** An identity log's keys, from its key statements (undefined for a log with one key). */
  private readonly identity: IdentityKeys | undefined;
  /** When the last checkpoint verified was seen, and the log keys that signed it. */
  private latestSigners: { at: number; signers: string[] } = { at: 0, signers: [] };

  constructor(
    readonly log: BuilderLog | IdentityLog,
    private readonly options: LogClientOptions,
  ) {
    this.identity =
      'root' in log
        ? new IdentityKeys(log, options.state, options.logger, options.statementRefreshMs ?? 60_000)
        : undefined;
  }

  /** The keys evidence of this log's fork must be signed by: its key, or its identity's unrevoked ones. */
  forkEvidenceKeys(): NoteVerifier[] {
    return 'verifier' in this.log ? [this.log.verifier] : (this.identity?.unrevoked() ?? []);
  }

  /** An identity log's key statement notes held (none for a log with one key). */
  statementNotes(): readonly string[] {
    return this.identity?.notes() ?? [];
  }

  private get witnessKeys() {
    return this.options.policy.witnessPolicy.witnesses.map((w) => w.verifier);
  }

  /** The log keys a checkpoint may be signed by now. */
  private logKeys(): NoteVerifier[] {
    return 'verifier' in this.log ? [this.log.verifier] : (this.identity?.verifiers() ?? []);
  }

  /**
   * Verifies a lookup's checkpoint ({@link verifyCheckpoint}). An identity log's statements are
   * read again first when their refresh is due, and when the checkpoint is signed by no key
   * they make valid (a rotation the proxy has not seen yet), which is then verified once more.
   * A failed read leaves the keys as they were.
   */
  private async openChecked(note: string): Promise<Checkpoint> {
    const identity = this.identity;
    const read = identity !== undefined && identity.due() && (await this.followStatements());
    try {
      return this.verifyCheckpoint(note);
    } catch (error) {
      if (identity === undefined || read) throw error;
      await this.followStatements();
      return this.verifyCheckpoint(note);
    }
  }

  /**
   * {@link readStatements}; a failure is logged, and the next try waits for the refresh
   * interval (unless a checkpoint needs an unknown key). True once tried.
   */
  private async followStatements(): Promise<true> {
    try {
      await this.readStatements();
    } catch (error) {
      this.options.logger.warn('key statements not read', {
        log: this.log.origin,
        reason: (error as Error).message,
      });
    }
    this.identity?.checked();
    return true;
  }

  /**
   * Reads the identity's key statements from its log (`/lookup/accord-keys`): folded onto the
   * chain kept, the answer's checkpoint must verify under the keys they make valid now, relate
   * to the stored one like any checkpoint, and include every statement taken.
   */
  private async readStatements(): Promise<void> {
    const identity = this.identity;
    if (identity === undefined) return;
    const body = await this.fetchLookup(STATEMENTS_LOOKUP_KEY);
    const sequenced = body.entries.filter((e) => e.proof !== undefined);
    const next = identity.candidate(sequenced.map((e) => e.entry));
    if (next === undefined) throw new Error('the log holds no key statement by the root');
    // The statements are the root's word; the checkpoint shows they are public. It may be
    // signed by a key they now retire or revoke (a log re-signs after its next entry).
    const keys = new Map(
      [...logKeysNow(next), ...this.logKeys()].map((k) => [formatVerifierKey(k), k]),
    );
    const checkpoint = this.verifyCheckpoint(body.checkpoint, [...keys.values()]);
    await this.accept(checkpoint, body.checkpoint);
    for (const e of sequenced)
      if (next.notes.includes(e.entry)) checkIncluded(e, body.checkpoint, checkpoint);
    identity.adopt(next);
  }

  /**
   * Opens a checkpoint: the log's signature (by `keys`, the log's keys by default), then the
   * witness quorum of the policy. For an identity log, records who signed it and when it was
   * seen (when the witness quorum had cosigned it, if earlier): what decides whether its claims
   * count.
   */
  verifyCheckpoint(note: string, keys: readonly NoteVerifier[] = this.logKeys()): Checkpoint {
    if (this.lastVerified?.note === note) return this.lastVerified.checkpoint;
    const { checkpoint, note: opened } = openCheckpoint(note, keys, this.witnessKeys);
    this.options.onCheckpoint?.(this.log.origin, note);
    const { witnesses, quorum } = this.options.policy.witnessPolicy;
    const cosigners = opened.verified.flatMap(({ verifier, signature }) => {
      const w = witnesses.find((x) => x.verifier === verifier);
      return w !== undefined && verifier.type === SIG_TYPE_COSIGNATURE_V1
        ? [{ name: w.name, timestamp: cosignatureTimestamp(signature.signature) }]
        : [];
    });
    if (!quorumSatisfied(quorum, new Set(cosigners.map((c) => c.name)))) {
      throw new Error(`checkpoint of size ${checkpoint.treeSize} lacks the witness quorum`);
    }
    if (checkpoint.origin !== this.log.origin) throw new Error('checkpoint of another origin');
    if (this.identity !== undefined) {
      const signers = opened.verified.flatMap(({ verifier }) =>
        verifier.type === SIG_TYPE_ED25519 ? [formatVerifierKey(verifier)] : [],
      );
      // Seen now, or earlier when the witness quorum had cosigned it before.
      const at = Math.min(Math.floor(Date.now() / 1000), quorumTime(quorum, cosigners) ?? Infinity);
      this.latestSigners = { at, signers };
      this.options.state.recordSigners(this.log.origin, checkpoint.treeSize, at, signers);
    }
    this.lastVerified = { note, checkpoint };
    return checkpoint;
  }

  /**
   * The claims that count and those that do not: every claim of a log with one key; for an
   * identity log, those first seen in a checkpoint signed by a key valid then.
   */
  private partition(claims: readonly ObservedClaim[]): {
    claims: ObservedClaim[];
    excluded: ExcludedClaim[];
  } {
    const identity = this.identity;
    if (identity === undefined) return { claims: [...claims], excluded: [] };
    const counted: ObservedClaim[] = [];
    const excluded: ExcludedClaim[] = [];
    for (const c of claims) {
      const why = identity.counts(c.index, this.latestSigners);
      if (why === undefined) counted.push(c);
      else excluded.push({ index: c.index, ...why });
    }
    return { claims: counted, excluded };
  }

  /** An answered observation of `claims`, with the claims that do not count set apart. */
  private answered(claims: readonly ObservedClaim[], stored: boolean): LogObservation {
    const { claims: counted, excluded } = this.partition(claims);
    return {
      origin: this.log.origin,
      status: 'answered',
      claims: counted,
      ...(stored ? { stored } : {}),
      ...(excluded.length === 0 ? {} : { excluded }),
    };
  }

  /**
   * The log's tiles for the tree of `treeSize` leaves, unauthenticated: only what the kernel
   * checks against a signed root is used. `fresh` asks caches on the way for new copies.
   */
  private tiles(treeSize: number, fresh: boolean) {
    return tileHashReader(
      treeSize,
      tilePathReader((path) =>
        fetchIfPresent(`${this.log.url}/${path}`, this.options.timeoutMs, 8192, { fresh }),
      ),
    );
  }

  /** The kernel's relation of `next` to `last`, from the log's tiles; bad data read again, fresh. */
  private relate(last: VerifiedCheckpoint, next: VerifiedCheckpoint) {
    const size = Math.max(last.treeSize, next.treeSize);
    return relateCheckpointsWith(last, next, [this.tiles(size, false), this.tiles(size, true)]);
  }

  /**
   * Relates `next` to the stored checkpoint of this log (the trust kernel) and stores it when
   * it extends it. An older checkpoint that is a prefix is left alone (its proofs still hold:
   * what is in a prefix is in the log). Throws {@link Misbehaviour} on a fork, and an Error
   * when the data does not check out. Serialised per log, so concurrent lookups cannot race.
   */
  private accept(next: Checkpoint, note: string): Promise<void> {
    const run = async () => {
      const { state } = this.options;
      const stored = state.checkpoint(this.log.origin);
      const cp = { treeSize: next.treeSize, rootHash: next.rootHash, note };
      if (stored === undefined) {
        state.saveCheckpoint(this.log.origin, { size: cp.treeSize, root: cp.rootHash, note });
        return;
      }
      if (this.knownOlder.has(note)) return;
      const last = { treeSize: stored.size, rootHash: stored.root, note: stored.note };
      const relation = await this.relate(last, cp);
      switch (relation.kind) {
        case 'same':
          return;
        case 'extends':
          state.saveCheckpoint(this.log.origin, { size: cp.treeSize, root: cp.rootHash, note });
          return;
        case 'older':
          if (this.knownOlder.size >= MAX_KNOWN_OLDER) this.knownOlder.clear();
          this.knownOlder.add(note);
          return;
        case 'fork':
          throw new Misbehaviour(`fork: ${relation.reason}`, formatForkEvidence(relation.evidence));
        case 'bad-data':
          throw new Error(
            `checkpoint of size ${cp.treeSize} cannot be checked against the verified size ${stored.size}: ${relation.reason}`,
          );
      }
    };
    const result = this.checkpointLock.then(run, run);
    this.checkpointLock = result.catch(() => undefined);
    return result;
  }

  /** `GET /lookup/<key>` of the log, size-capped and parsed (nothing verified yet). */
  private async fetchLookup(key: string) {
    const url = `${this.log.url}/lookup/${key}`;
    return parseLookup(await fetchBytes(url, this.options.timeoutMs, MAX_LOOKUP_BYTES), key);
  }

  /** Verified claims about `hashPart` from a live lookup; throws on any failure. */
  private async lookup(hashPart: string): Promise<ObservedClaim[]> {
    const body = await this.fetchLookup(hashPart);
    const checkpoint = await this.openChecked(body.checkpoint);
    await this.accept(checkpoint, body.checkpoint);
    return this.verifyEntries(hashPart, body.entries, body.checkpoint, checkpoint);
  }

  /**
   * Verified claims about many paths from one `POST /lookup`; throws on any failure (one bad
   * proof rejects the whole answer).
   */
  private async lookupBatch(hashParts: readonly string[]): Promise<Map<string, ObservedClaim[]>> {
    const body = parseBatchLookup(
      await postBytes(
        `${this.log.url}/lookup`,
        JSON.stringify({ hashParts }),
        'application/json',
        this.options.timeoutMs,
        MAX_BATCH_LOOKUP_BYTES,
      ),
      hashParts,
    );
    const checkpoint = await this.openChecked(body.checkpoint);
    await this.accept(checkpoint, body.checkpoint);
    // One commit for the claims of every path, not one per path.
    return this.options.state.transaction(
      () =>
        new Map(
          [...body.paths].map(
            ([h, entries]) =>
              [h, this.verifyEntries(h, entries, body.checkpoint, checkpoint)] as const,
          ),
        ),
    );
  }

  /** Checks each entry's proof and subject, keeps the verified claims, and returns them. */
  private verifyEntries(
    hashPart: string,
    entries: readonly LookupEntry[],
    note: string,
    checkpoint: Checkpoint,
  ): ObservedClaim[] {
    const claims: ObservedClaim[] = [];
    const kept: StoredClaim[] = [];
    for (const e of entries) {
      if (e.proof === undefined || e.index >= checkpoint.treeSize) continue; // not yet sequenced
      checkIncluded(e, note, checkpoint);
      const claim: BuildClaim = parseEntry(e.entry, this.options.storeDir);
      if (claim.storePath.hashPart !== hashPart) {
        throw new Error(`entry ${e.index} is about ${claim.storePath.hashPart}, not ${hashPart}`);
      }
      const treeSize = checkpoint.treeSize;
      claims.push({ claim, index: e.index, treeSize, proof: e.proof });
      kept.push({ index: e.index, entry: e.entry, treeSize, proof: e.proof });
    }
    this.options.state.saveClaims(this.log.origin, hashPart, kept);
    return claims;
  }

  /** Claims about `hashPart` verified earlier and kept (but for the indexes in `except`). */
  private stored(hashPart: string, except: ReadonlySet<number> = new Set()): ObservedClaim[] {
    return this.options.state
      .storedClaims(hashPart)
      .filter((c) => c.origin === this.log.origin && !except.has(c.index))
      .map((c) => ({
        claim: parseEntry(c.entry, this.options.storeDir),
        index: c.index,
        treeSize: c.treeSize,
        ...(c.proof === undefined ? {} : { proof: c.proof }),
      }));
  }

  /**
   * The observation to use when the log cannot be asked or does not verify: its claims
   * verified earlier (evidence that stays valid), or a missing vote with `reason`.
   */
  fallback(hashPart: string, reason: string): LogObservation {
    const origin = this.log.origin;
    const distrusted = this.options.state.distrusted(origin);
    if (distrusted !== undefined)
      return { origin, status: 'missing', reason: `distrusted: ${distrusted.reason}` };
    const before = this.stored(hashPart);
    if (before.length > 0) return this.answered(before, true);
    return { origin, status: 'missing', reason };
  }

  /** {@link fallback} for each of `hashParts`. */
  fallbackMany(hashParts: readonly string[], reason: string): Map<string, LogObservation> {
    return new Map(hashParts.map((h) => [h, this.fallback(h, reason)] as const));
  }

  /**
   * What this log says about a path, as an observation for the decision: its verified claims
   * (live, together with any verified before), or {@link fallback}.
   */
  async observe(hashPart: string): Promise<LogObservation> {
    const found = await this.observeWith([hashPart], async () => {
      return new Map([[hashPart, await this.lookup(hashPart)]]);
    });
    return found.get(hashPart) ?? this.fallback(hashPart, '');
  }

  /** {@link observe} for many paths in one `POST /lookup` (at most `MAX_LOOKUP_PATHS`). */
  observeMany(hashParts: readonly string[]): Promise<Map<string, LogObservation>> {
    return this.observeWith(hashParts, () => this.lookupBatch(hashParts));
  }

  private async observeWith(
    hashParts: readonly string[],
    lookup: () => Promise<Map<string, ObservedClaim[]>>,
  ): Promise<Map<string, LogObservation>> {
    const origin = this.log.origin;
    if (this.options.state.distrusted(origin) !== undefined)
      return this.fallbackMany(hashParts, '');
    try {
      const live = await lookup();
      // Caught forking while this lookup ran (here or by a monitor): nothing of it counts.
      if (this.options.state.distrusted(origin) !== undefined)
        return this.fallbackMany(hashParts, '');
      return new Map(
        hashParts.map((h) => {
          const claims = live.get(h) ?? [];
          const known = new Set(claims.map((c) => c.index));
          const before = this.stored(h, known);
          return [h, this.answered([...claims, ...before], false)] as const;
        }),
      );
    } catch (error) {
      if (error instanceof Misbehaviour) {
        this.options.state.distrust(origin, error.message, error.evidence);
        this.options.logger.error('log misbehaves: distrusted', {
          log: origin,
          reason: error.message,
        });
        this.options.onMisbehaviour?.(origin, error.message);
        return this.fallbackMany(hashParts, '');
      }
      const reason =
        error instanceof FetchError
          ? error.message
          : `answer rejected: ${(error as Error).message}`;
      this.options.logger.warn('log lookup failed', {
        log: origin,
        ...(hashParts.length === 1 ? { hashPart: hashParts[0] } : { paths: hashParts.length }),
        reason,
      });
      return this.fallbackMany(hashParts, reason);
    }
  }
}
