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
import { FetchError, fetchBytes } from '../server/index.js';
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

interface LookupBody {
  checkpoint: string;
  entries: { index: number; entry: string; proof: string | undefined }[];
}

/** Reads a /lookup answer (attacker-controlled) into only the fields used, checking types. */
function parseLookup(bytes: Buffer): LookupBody {
  let doc: unknown;
  try {
    doc = JSON.parse(bytes.toString('utf8'));
  } catch {
    throw new Error('lookup answer is not JSON');
  }
  const o = doc as { checkpoint?: unknown; entries?: unknown };
  if (typeof o.checkpoint !== 'string' || !Array.isArray(o.entries) || o.entries.length > 10_000) {
    throw new Error('lookup answer lacks a checkpoint or entries');
  }
  const entries = o.entries.map((raw: unknown) => {
    const e = raw as { index?: unknown; entry?: unknown; proof?: unknown };
    if (!Number.isSafeInteger(e.index) || typeof e.entry !== 'string')
      throw new Error('bad lookup entry');
    if (e.proof !== undefined && typeof e.proof !== 'string') throw new Error('bad lookup proof');
    return { index: e.index as number, entry: e.entry, proof: e.proof };
  });
  return { checkpoint: o.checkpoint, entries };
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
    const claims: ObservedClaim[] = [];
    for (const e of body.entries) {
      if (e.proof === undefined || e.index >= checkpoint.treeSize) continue; // not yet sequenced
      const proof = parseTlogProof(e.proof);
      if (proof.checkpoint !== body.checkpoint || proof.index !== e.index) {
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
    }
    this.options.state.saveClaims(
      this.log.origin,
      hashPart,
      claims.map((c) => ({
        index: c.index,
        entry: body.entries.find((e) => e.index === c.index)?.entry ?? '',
        treeSize: c.treeSize,
      })),
    );
    return claims;
  }

  /** Claims about `hashPart` verified earlier and kept. */
  private stored(hashPart: string): ObservedClaim[] {
    return this.options.state
      .storedClaims(hashPart)
      .filter((c) => c.origin === this.log.origin)
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

  /**
   * What this log says about a path, as an observation for the decision: its verified claims
   * (live, together with any verified before), or {@link fallback}.
   */
  async observe(hashPart: string): Promise<LogObservation> {
    const origin = this.log.origin;
    if (this.options.state.distrusted(origin) !== undefined) return this.fallback(hashPart, '');
    try {
      const live = await this.lookup(hashPart);
      const known = new Set(live.map((c) => c.index));
      const before = this.stored(hashPart).filter((c) => !known.has(c.index));
      return { origin, status: 'answered', claims: [...live, ...before] };
    } catch (error) {
      if (error instanceof Misbehaviour) {
        this.options.state.distrust(origin, error.message, error.evidence);
        this.options.logger.error('log misbehaves: distrusted', {
          log: origin,
          reason: error.message,
        });
        this.options.onMisbehaviour?.(origin, error.message);
        return this.fallback(hashPart, '');
      }
      const reason =
        error instanceof FetchError
          ? error.message
          : `answer rejected: ${(error as Error).message}`;
      this.options.logger.warn('log lookup failed', { log: origin, hashPart, reason });
      return this.fallback(hashPart, reason);
    }
  }
}
