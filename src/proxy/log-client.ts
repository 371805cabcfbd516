/**
 * Asking a builder log about a path, trusting nothing it says until verified: the checkpoint
 * (log signature and witness quorum), its consistency with every checkpoint of that log seen
 * before (computed from the log's tiles), each entry's inclusion proof, and that each entry is
 * about the path asked. A rollback or a fork distrusts the log for good and is reported.
 */
import { type BuildClaim, parseEntry } from '../claim/index.js';
import type { BuilderLog, LogObservation, ObservedClaim, Policy } from '../policy/index.js';
import type { Logger } from '../server/index.js';
import {
  type Checkpoint,
  type Tile,
  SIG_TYPE_COSIGNATURE_V1,
  equalBytes,
  hashLeaf,
  openCheckpoint,
  parseTlogProof,
  proveConsistency,
  quorumSatisfied,
  tileHashReader,
  tilePath,
  verifyConsistency,
  verifyInclusion,
} from '../tlog/index.js';
import { FetchError, fetchBytes, postBytes } from '../server/index.js';
import type { ProxyState } from './state.js';

/** Verification failed in a way that shows the log misbehaving (it is distrusted). */
class Misbehaviour extends Error {
  override readonly name = 'Misbehaviour';
  constructor(
    message: string,
    readonly evidence: string,
  ) {
    super(message);
  }
}

const MAX_LOOKUP_BYTES = 4 << 20;
/** A batch answer may be this large (it proves up to {@link MAX_BATCH} paths). */
const MAX_BATCH_LOOKUP_BYTES = 64 << 20;
/** Most paths asked in one `POST /lookup` (the log server's limit). */
export const MAX_BATCH = 1000;

type LookupEntry = { index: number; entry: string; proof: string | undefined };

function parseJson(bytes: Buffer): unknown {
  try {
    return JSON.parse(bytes.toString('utf8'));
  } catch {
    throw new Error('lookup answer is not JSON');
  }
}

/** One path's entries from a lookup answer (attacker-controlled), checking types. */
function parseEntries(raw: unknown): LookupEntry[] {
  if (!Array.isArray(raw) || raw.length > 10_000) throw new Error('lookup answer lacks entries');
  return raw.map((item: unknown) => {
    const e = item as { index?: unknown; entry?: unknown; proof?: unknown };
    if (!Number.isSafeInteger(e.index) || typeof e.entry !== 'string')
      throw new Error('bad lookup entry');
    if (e.proof !== undefined && typeof e.proof !== 'string') throw new Error('bad lookup proof');
    return { index: e.index as number, entry: e.entry, proof: e.proof };
  });
}

/** Reads a `GET /lookup/<hash part>` answer into only the fields used. */
function parseLookup(bytes: Buffer): { checkpoint: string; entries: LookupEntry[] } {
  const o = parseJson(bytes) as { checkpoint?: unknown; entries?: unknown };
  if (typeof o.checkpoint !== 'string') throw new Error('lookup answer lacks a checkpoint');
  return { checkpoint: o.checkpoint, entries: parseEntries(o.entries) };
}

/** Reads a `POST /lookup` answer: every path asked must be there. */
function parseBatchLookup(
  bytes: Buffer,
  hashParts: readonly string[],
): { checkpoint: string; paths: Map<string, LookupEntry[]> } {
  const o = parseJson(bytes) as { checkpoint?: unknown; paths?: unknown };
  if (typeof o.checkpoint !== 'string') throw new Error('lookup answer lacks a checkpoint');
  if (typeof o.paths !== 'object' || o.paths === null || Array.isArray(o.paths))
    throw new Error('lookup answer lacks paths');
  const all = o.paths as Record<string, unknown>;
  const paths = new Map<string, LookupEntry[]>();
  for (const h of hashParts) {
    if (!Object.hasOwn(all, h)) throw new Error(`lookup answer lacks ${h}`);
    paths.set(h, parseEntries(all[h]));
  }
  return { checkpoint: o.checkpoint, paths };
}

export interface LogClientOptions {
  readonly policy: Policy;
  readonly state: ProxyState;
  readonly logger: Logger;
  readonly timeoutMs: number;
  readonly storeDir: string;
  /** Called when a log is caught misbehaving (fork, rollback). */
  readonly onMisbehaviour?: (origin: string, reason: string) => void;
  /** Called with each new checkpoint note whose log signature verified (for gossip). */
  readonly onCheckpoint?: (origin: string, note: string) => void;
}

/** Talks to one builder log. */
export class LogClient {
  private checkpointLock: Promise<unknown> = Promise.resolve();
  /** The last checkpoint note verified, to skip verifying the same bytes again. */
  private lastVerified: { note: string; checkpoint: Checkpoint } | undefined;

  constructor(
    readonly log: BuilderLog,
    private readonly options: LogClientOptions,
  ) {}

  private get witnessKeys() {
    return this.options.policy.witnessPolicy.witnesses.map((w) => w.verifier);
  }

  /** Opens a checkpoint: the log's signature, then the witness quorum of the policy. */
  verifyCheckpoint(note: string): Checkpoint {
    if (this.lastVerified?.note === note) return this.lastVerified.checkpoint;
    const { checkpoint, note: opened } = openCheckpoint(
      note,
      [this.log.verifier],
      this.witnessKeys,
    );
    this.options.onCheckpoint?.(this.log.origin, note);
    const witnesses = this.options.policy.witnessPolicy.witnesses;
    const cosigned = new Set(
      opened.verified.flatMap(({ verifier }) => {
        const w = witnesses.find((x) => x.verifier === verifier);
        return w !== undefined && verifier.type === SIG_TYPE_COSIGNATURE_V1 ? [w.name] : [];
      }),
    );
    if (!quorumSatisfied(this.options.policy.witnessPolicy.quorum, cosigned)) {
      throw new Error(`checkpoint of size ${checkpoint.treeSize} lacks the witness quorum`);
    }
    if (checkpoint.origin !== this.log.origin) throw new Error('checkpoint of another origin');
    this.lastVerified = { note, checkpoint };
    return checkpoint;
  }

  // Tiles come from the log unauthenticated: nothing computed from them is kept, only the
  // verified outcome of the consistency check that uses them.
  private readTiles(treeSize: number) {
    return tileHashReader(treeSize, {
      readTiles: (tiles: readonly Tile[]) =>
        Promise.all(
          tiles.map((t) =>
            fetchBytes(`${this.log.url}/${tilePath(t)}`, this.options.timeoutMs, 8192),
          ),
        ),
    });
  }

  /**
   * Checks `next` against the stored checkpoint of this log and stores it when it is newer
   * and consistent. Serialised per log, so concurrent lookups cannot race.
   */
  private accept(next: Checkpoint, note: string): Promise<void> {
    const run = async () => {
      const { state } = this.options;
      const stored = state.checkpoint(this.log.origin);
      if (stored !== undefined) {
        if (next.treeSize < stored.size) {
          throw new Misbehaviour(
            `rollback: checkpoint of size ${next.treeSize} after size ${stored.size}`,
            `${stored.note}\n${note}`,
          );
        }
        if (next.treeSize === stored.size) {
          if (!equalBytes(next.rootHash, stored.root)) {
            throw new Misbehaviour(
              `fork: two roots for size ${next.treeSize}`,
              `${stored.note}\n${note}`,
            );
          }
          return;
        }
        if (stored.size > 0) {
          const proof = await proveConsistency(
            stored.size,
            next.treeSize,
            this.readTiles(next.treeSize),
          );
          try {
            verifyConsistency(stored.size, next.treeSize, proof, stored.root, next.rootHash);
          } catch {
            throw new Misbehaviour(
              `fork: size ${next.treeSize} is not consistent with size ${stored.size}`,
              `${stored.note}\n${note}`,
            );
          }
        }
      }
      state.saveCheckpoint(this.log.origin, { size: next.treeSize, root: next.rootHash, note });
    };
    const result = this.checkpointLock.then(run, run);
    this.checkpointLock = result.catch(() => undefined);
    return result;
  }

  /** Verified claims about `hashPart` from a live lookup; throws on any failure. */
  private async lookup(hashPart: string): Promise<ObservedClaim[]> {
    const body = parseLookup(
      await fetchBytes(
        `${this.log.url}/lookup/${hashPart}`,
        this.options.timeoutMs,
        MAX_LOOKUP_BYTES,
      ),
    );
    const checkpoint = this.verifyCheckpoint(body.checkpoint);
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
    const checkpoint = this.verifyCheckpoint(body.checkpoint);
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
    const kept: { index: number; entry: string; treeSize: number }[] = [];
    for (const e of entries) {
      if (e.proof === undefined || e.index >= checkpoint.treeSize) continue; // not yet sequenced
      const proof = parseTlogProof(e.proof, { parsedCheckpoint: note });
      if (proof.checkpoint !== note || proof.index !== e.index) {
        throw new Error(`entry ${e.index}: proof is not against the answer's checkpoint`);
      }
      verifyInclusion(
        hashLeaf(Buffer.from(e.entry)),
        e.index,
        checkpoint.treeSize,
        proof.inclusionProof,
        checkpoint.rootHash,
      );
      const claim: BuildClaim = parseEntry(e.entry, this.options.storeDir);
      if (claim.storePath.hashPart !== hashPart) {
        throw new Error(`entry ${e.index} is about ${claim.storePath.hashPart}, not ${hashPart}`);
      }
      claims.push({ claim, index: e.index, treeSize: checkpoint.treeSize });
      kept.push({ index: e.index, entry: e.entry, treeSize: checkpoint.treeSize });
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
    if (before.length > 0) return { origin, status: 'answered', claims: before, stored: true };
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

  /** {@link observe} for many paths in one `POST /lookup` (at most {@link MAX_BATCH}). */
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
      return new Map(
        hashParts.map((h) => {
          const claims = live.get(h) ?? [];
          const known = new Set(claims.map((c) => c.index));
          const before = this.stored(h, known);
          return [h, { origin, status: 'answered', claims: [...claims, ...before] }] as const;
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
