/**
 * Following builder logs: every new checkpoint is checked against what the monitor verified
 * before (signature, then consistency), every entry is downloaded, hashed into the monitor's own
 * copy of the tree and indexed by store path, and checkpoints gossiped by proxies and witnesses
 * are compared with that copy. What shows misbehaviour becomes a finding with its evidence.
 */
import { createHash } from 'node:crypto';
import { MAX_LOOKUP_BYTES, STATEMENTS_LOOKUP_KEY, parseLookup } from '../claim/index.js';
import type { BuilderLog, IdentityLog } from '../policy/index.js';
import { FetchError, type Logger, fetchBytes, fetchIfPresent } from '../server/index.js';
import { type IdentityState, foldStatements, logKeysAt } from '../identity/index.js';
import {
  type Checkpoint,
  type CheckpointRelation,
  type NoteVerifier,
  EMPTY_EDGE,
  EMPTY_ROOT,
  type Tile,
  type TileEdge,
  TILE_WIDTH,
  TlogError,
  type VerifiedCheckpoint,
  appendLeaves,
  edgeRootHash,
  encodeBase64,
  equalBytes,
  formatForkEvidence,
  formatTlogProof,
  formatVerifierKey,
  openCheckpoint,
  parseEntryBundle,
  proveCompleteConsistency,
  proveInclusion,
  relateCheckpoints,
  relateCheckpointsWith,
  rootsFromConsistencyProof,
  tileHashReader,
  tilePath,
  tilePathReader,
} from '../tlog/index.js';
import {
  type Finding,
  type FollowedLog,
  MANY_PATHS,
  type MonitorStore,
  type NewClaim,
  type StoredBundle,
  type SeenCheckpoint,
  pathFindingKey,
} from './store.js';
import { verdict } from './verdict.js';
import { type ReadBundle, decodeBundle, fetchBundles, readBundles } from './bundles.js';
import { MonitorError } from './errors.js';

/** Largest checkpoint note accepted from a log, a proxy or a witness. */
export const MAX_CHECKPOINT_BYTES = 64 * 1024;
/** Entries stored per transaction while ingesting: many, as index inserts land at random. */
const BATCH_ENTRIES = 256 * TILE_WIDTH;
/** Bytes of entry bundles stored per transaction at most (a log's entries may be large). */
const BATCH_BYTES = 64 * 1024 * 1024;
/** Times a batch of entries that is not the log's is fetched (the later ones afresh). */
const BATCH_ATTEMPTS = 3;
/** Invalid entries reported per ingest (the rest are counted). */
const MAX_REPORTED_INVALID = 20;

/** A log the monitor follows: one with a fixed key, or one whose keys an identity names. */
export type FollowedLogConfig = BuilderLog | IdentityLog;

export interface MonitorOptions {
  readonly store: MonitorStore;
  /** The logs followed: with one key, or named by an identity whose statements give the keys. */
  readonly logs: readonly FollowedLogConfig[];
  /** Witnesses to ask for the checkpoints they cosigned (GET <url>/<sha256(origin)>/checkpoint). */
  readonly witnesses: readonly { readonly name: string; readonly url: string }[];
  readonly storeDir: string;
  readonly logger: Logger;
  readonly timeoutMs: number;
  /** Entry bundles fetched at once from one log. */
  readonly concurrency: number;
  /** Called once per new finding, after it is stored. */
  readonly onFinding?: (finding: Finding) => void;
  /** Called as entries of a log are ingested: `done` of `total` new entries. */
  readonly onProgress?: (origin: string, done: number, total: number) => void;
  /** Entries stored per transaction at most (65,536; tests make it small). */
  readonly batchEntries?: number;
  /**
   * The root key of the identity behind each log, by origin: the log's key statements are
   * checked against it, and one not signed by it or contradicting an earlier one is a finding.
   */
  readonly identities?: ReadonlyMap<string, NoteVerifier>;
}

/**
 * What became of a checkpoint handed to {@link Monitor.observe}: consistent with the verified
 * tree, pending (beyond it), or a fork, with fork evidence (`accord/fork-evidence/v1`) that
 * verifies with the log's key — a proxy acts on the evidence, not on the word.
 */
export type Observation =
  | { readonly status: 'consistent' | 'pending'; readonly origin: string; readonly size: number }
  | {
      readonly status: 'fork';
      readonly origin: string;
      readonly size: number;
      readonly evidence: string;
      readonly finding: Finding;
    };

/** The outcome of following one log once. */
export interface PollResult {
  readonly origin: string;
  readonly size: number;
  readonly added: number;
  readonly error?: string;
}

function rootKey(size: number, root: Uint8Array): string {
  return `${size}:${encodeBase64(root)}`;
}

/** A checkpoint seen (or verified) as the kernel takes it. */
function asVerified(c: SeenCheckpoint): VerifiedCheckpoint {
  return { treeSize: c.size, rootHash: c.root, note: c.note };
}

/** The monitor's verified checkpoint of a log, as a seen checkpoint. */
function verifiedCheckpoint(state: FollowedLog): SeenCheckpoint {
  return {
    size: state.verifiedSize,
    root: state.root,
    note: state.checkpoint,
    source: 'verified by the monitor',
  };
}

export class Monitor {
  private readonly logs: Map<string, FollowedLogConfig>;
  /** An identity log's statements read from its log ahead of ingesting them, by origin. */
  private readonly aheadStatements = new Map<string, IdentityState>();
  /** An identity log's state from the statements ingested, and the verified size it is of. */
  private readonly ingested = new Map<string, { size: number; state: IdentityState | undefined }>();
  private readonly locks = new Map<string, Promise<unknown>>();
  /** Per log: when it was last polled and what went wrong, for /logs. */
  readonly status = new Map<string, { polledAt?: number; error?: string }>();

  constructor(private readonly options: MonitorOptions) {
    this.logs = new Map(options.logs.map((l) => [l.origin, l]));
  }

  get followed(): readonly FollowedLogConfig[] {
    return [...this.logs.values()];
  }

  /** The root key of the identity behind a log, if any (configured, or the log's identity). */
  private rootOf(origin: string): NoteVerifier | undefined {
    const log = this.logs.get(origin);
    return (
      this.options.identities?.get(origin) ??
      (log !== undefined && 'root' in log ? log.root : undefined)
    );
  }

  /**
   * The keys a checkpoint of `log` may be signed by now: its one key, or for an identity log
   * those valid now by the statements ingested and the ones read ahead from its log.
   */
  logKeys(log: FollowedLogConfig): NoteVerifier[] {
    if ('verifier' in log) return [log.verifier];
    const now = Math.floor(Date.now() / 1000);
    const keys = new Map<string, NoteVerifier>();
    for (const state of [this.ingestedChain(log), this.aheadStatements.get(log.origin)])
      for (const k of state === undefined ? [] : logKeysAt(state, now))
        keys.set(formatVerifierKey(k), k);
    return [...keys.values()];
  }

  /**
   * The identity's state from the statements ingested, folded again only when the verified
   * tree changed (statements come in with its entries).
   */
  private ingestedChain(log: IdentityLog): IdentityState | undefined {
    const { store } = this.options;
    const size = store.log(log.origin)?.verifiedSize ?? 0;
    const kept = this.ingested.get(log.origin);
    if (kept?.size === size) return kept.state;
    const notes = store.statements(log.origin).map((s) => s.note);
    const state = foldStatements(log.root, notes).state;
    this.ingested.set(log.origin, { size, state });
    return state;
  }

  /**
   * Reads an identity log's key statements ahead of its entries (a rotated key signs
   * checkpoints before the monitor has ingested the statement naming it). Only notes the root
   * signed are taken, onto the chain ingested; ingestion checks them in the log later.
   */
  private async readStatementsAhead(log: IdentityLog): Promise<void> {
    const body = parseLookup(
      await fetchBytes(
        `${log.url}/lookup/${STATEMENTS_LOOKUP_KEY}`,
        this.options.timeoutMs,
        MAX_LOOKUP_BYTES,
      ),
      STATEMENTS_LOOKUP_KEY,
    );
    const base = this.ingestedChain(log);
    const ahead = foldStatements(
      log.root,
      body.entries.map((e) => e.entry),
      base,
    ).state;
    if (ahead !== undefined) this.aheadStatements.set(log.origin, ahead);
  }

  /** Runs `work` after every earlier task on the same log (one writer per log). */
  private serial<T>(origin: string, work: () => Promise<T>): Promise<T> {
    const before = this.locks.get(origin) ?? Promise.resolve();
    const result = before.then(work, work);
    this.locks.set(
      origin,
      result.catch(() => undefined),
    );
    return result;
  }

  private finding(key: string, kind: Finding['kind'], summary: string, evidence: unknown): Finding {
    const { store, onFinding } = this.options;
    const added = store.addFinding(key, kind, summary, evidence);
    if (added === undefined) return store.finding(key) as Finding;
    this.logFinding(added, 'finding');
    onFinding?.(added);
    return added;
  }

  /** Records a finding that changes as claims come in: raised once, when new; then updated. */
  private putFinding(key: string, kind: Finding['kind'], summary: string, evidence: unknown) {
    const { finding, change } = this.options.store.putFinding(key, kind, summary, evidence);
    if (change === 'none') return;
    this.logFinding(finding, change === 'new' ? 'finding' : 'finding updated');
    if (change === 'new') this.options.onFinding?.(finding);
  }

  private logFinding(finding: Finding, message: string): void {
    const { kind, summary } = finding;
    if (kind === 'disagreement') this.options.logger.info(message, { kind, summary });
    else this.options.logger.warn(message, { kind, summary });
  }

  /** Opens a checkpoint note of a followed log, checking the log's signature only. */
  private open(note: string): { log: FollowedLogConfig; checkpoint: Checkpoint } {
    const end = note.indexOf('\n');
    const origin = end < 0 ? note : note.slice(0, end);
    const log = this.logs.get(origin);
    if (log === undefined)
      throw new MonitorError(
        'unknown-log',
        `not a followed log: ${JSON.stringify(origin.slice(0, 200))}`,
      );
    try {
      const { checkpoint } = openCheckpoint(note, this.logKeys(log), [], {
        maxSize: MAX_CHECKPOINT_BYTES,
      });
      if (checkpoint.treeSize === 0 && !equalBytes(checkpoint.rootHash, EMPTY_ROOT))
        throw new TlogError('malformed', 'a checkpoint of size 0 must have the empty root');
      return { log, checkpoint };
    } catch (error) {
      const untrusted =
        error instanceof TlogError && (error.code === 'untrusted' || error.code === 'signature');
      throw new MonitorError(
        untrusted ? 'untrusted' : 'malformed',
        `checkpoint rejected: ${(error as Error).message}`,
      );
    }
  }

  /** Reads the monitor's own tiles of a log (verified up to the log's verified size). */
  private localTiles(origin: string, treeSize: number) {
    const { store } = this.options;
    return tileHashReader(treeSize, {
      readTiles: (tiles: readonly Tile[]) =>
        Promise.resolve(
          tiles.map((t) => {
            const data = store.tile(origin, t.level, t.index);
            if (data === undefined || data.length < t.width * 32)
              throw new Error(`bug: monitor lacks ${tilePath(t)} of ${origin}`);
            return data.subarray(0, t.width * 32);
          }),
        ),
    });
  }

  /**
   * Reads a log's tiles over HTTP, unauthenticated (the kernel checks what it computes from
   * them against a signed root); `fresh` asks caches on the way for new copies.
   */
  private remoteTiles(log: FollowedLogConfig, treeSize: number, fresh: boolean) {
    return tileHashReader(
      treeSize,
      tilePathReader((path) =>
        fetchIfPresent(`${log.url}/${path}`, this.options.timeoutMs, TILE_WIDTH * 32, { fresh }),
      ),
    );
  }

  /**
   * Checks a signed checkpoint against the monitor's verified copy of its log, through the
   * trust kernel: another checkpoint of the same size with another root, or one the verified
   * tree does not have as a prefix, is a fork. Larger checkpoints wait until the log is
   * followed that far (the verified tree only grows, so the comparison never changes).
   */
  private async compare(
    log: FollowedLogConfig,
    checkpoint: Checkpoint,
    note: string,
    source: string,
  ): Promise<Observation> {
    const { store } = this.options;
    const { origin } = log;
    const size = checkpoint.treeSize;
    const seen: SeenCheckpoint = { size, root: checkpoint.rootHash, note, source };
    const state = store.log(origin);
    if (state === undefined || size > state.verifiedSize) store.sawCheckpoint(origin, seen);
    const twin = store
      .seenCheckpoints(origin, size, size)
      .find((other) => !equalBytes(other.root, seen.root));
    if (twin !== undefined) {
      return this.fork(origin, size, relateCheckpoints(asVerified(twin), asVerified(seen)), [
        twin,
        seen,
      ]);
    }
    if (state === undefined || size > state.verifiedSize)
      return { status: 'pending', origin, size };
    const mine = verifiedCheckpoint(state);
    // The monitor's own tiles of the verified tree were checked against its root: bad data
    // from them is a bug, not a fault of the log.
    const relation = await relateCheckpointsWith(asVerified(mine), asVerified(seen), [
      this.localTiles(origin, state.verifiedSize),
    ]);
    if (relation.kind === 'same' || relation.kind === 'older')
      return { status: 'consistent', origin, size };
    if (relation.kind === 'fork') return this.fork(origin, size, relation, [mine, seen]);
    throw new Error(`bug: the verified tree of ${origin} gives ${relation.kind}`);
  }

  /** Records a fork the kernel found as a finding with its evidence, and answers with both. */
  private fork(
    origin: string,
    size: number,
    relation: CheckpointRelation,
    checkpoints: readonly SeenCheckpoint[],
  ): Observation & { status: 'fork' } {
    if (relation.kind !== 'fork') throw new Error(`bug: ${relation.kind} taken for a fork`);
    const evidence = formatForkEvidence(relation.evidence);
    const key = `fork ${origin} ${checkpoints
      .map((c) => rootKey(c.size, c.root))
      .sort()
      .join(' ')}`;
    const finding = this.finding(
      key,
      'fork',
      `fork: ${origin}: ${relation.reason} (${checkpoints.map((c) => c.source).join(' and ')})`,
      {
        origin,
        reason: relation.reason,
        evidence,
        checkpoints: checkpoints.map((c) => ({ source: c.source, note: c.note })),
      },
    );
    return { status: 'fork', origin, size, evidence, finding };
  }

  /**
   * A checkpoint from outside (a proxy, a witness): verified, stored and compared with the
   * monitor's copy of the log. Throws a {@link MonitorError} when it does not verify.
   */
  observe(note: string, source: string): Promise<Observation> {
    const { log, checkpoint } = this.open(note);
    return this.serial(log.origin, () => this.compare(log, checkpoint, note, source));
  }

  /** Follows one log to its latest checkpoint; errors are returned, not thrown. */
  poll(origin: string): Promise<PollResult> {
    const log = this.logs.get(origin);
    if (log === undefined) throw new Error(`not a followed log: ${origin}`);
    return this.serial(origin, async () => {
      const status = { polledAt: Date.now() } as { polledAt: number; error?: string };
      this.status.set(origin, status);
      try {
        const result = await this.follow(log);
        return result;
      } catch (error) {
        status.error =
          error instanceof FetchError || error instanceof MonitorError
            ? error.message
            : `failed: ${(error as Error).message}`;
        this.options.logger.warn('log poll failed', { log: origin, reason: status.error });
        const state = this.options.store.log(origin);
        return { origin, size: state?.verifiedSize ?? 0, added: 0, error: status.error };
      }
    });
  }

  private async follow(log: FollowedLogConfig): Promise<PollResult> {
    const { store, timeoutMs } = this.options;
    const { origin } = log;
    const note = (
      await fetchBytes(`${log.url}/checkpoint`, timeoutMs, MAX_CHECKPOINT_BYTES)
    ).toString('utf8');
    let opened: { checkpoint: Checkpoint };
    try {
      opened = this.open(note);
    } catch (error) {
      // A key the identity's statements name, not ingested yet: read them, and try again.
      if (!('root' in log) || !(error instanceof MonitorError) || error.code !== 'untrusted')
        throw error;
      await this.readStatementsAhead(log);
      opened = this.open(note);
    }
    const { checkpoint } = opened;
    if (checkpoint.origin !== origin)
      throw new MonitorError('untrusted', 'checkpoint of another log');
    const state: FollowedLog = store.log(origin) ?? {
      origin,
      verifiedSize: 0,
      root: EMPTY_ROOT,
      checkpoint: '',
      verifiedAt: null,
    };
    const size = checkpoint.treeSize;
    if (size <= state.verifiedSize) {
      await this.compare(log, checkpoint, note, 'log');
      return { origin, size: state.verifiedSize, added: 0 };
    }
    const seen: SeenCheckpoint = { size, root: checkpoint.rootHash, note, source: 'log' };
    store.sawCheckpoint(origin, seen);
    if (state.verifiedSize > 0) {
      const mine = verifiedCheckpoint(state);
      const relation = await relateCheckpointsWith(asVerified(mine), asVerified(seen), [
        this.remoteTiles(log, size, false),
        this.remoteTiles(log, size, true),
      ]);
      if (relation.kind === 'fork') {
        this.fork(origin, size, relation, [mine, seen]);
        throw new Error(`checkpoint of size ${size} forks from the verified tree`);
      }
      if (relation.kind === 'bad-data') {
        // Nothing anyone could hold against the log: the next poll reads the tiles again.
        throw new Error(
          `the log's tiles do not relate its checkpoint of size ${size} to the verified size ${state.verifiedSize}: ${relation.reason}`,
        );
      }
    }
    const added = await this.ingest(log, state, checkpoint, note);
    return { origin, size: added === 0 ? state.verifiedSize : size, added };
  }

  /**
   * Downloads entries from the verified size to the checkpoint's, hashing them into the
   * monitor's tree and storing them (unverified) with their claims; when the resulting root is
   * the checkpoint's, marks them verified and looks for conflicting claims. Returns the number
   * of entries verified (0 when the entries did not match the checkpoint).
   */
  private async ingest(
    log: FollowedLogConfig,
    state: FollowedLog,
    checkpoint: Checkpoint,
    note: string,
  ): Promise<number> {
    const { store, storeDir, timeoutMs, concurrency } = this.options;
    const { origin } = log;
    const from = state.verifiedSize;
    const size = checkpoint.treeSize;
    // What an earlier ingest cut short wrote beyond the verified size goes first: the log may
    // serve other entries at those indexes now.
    store.dropUnverified(origin);
    let edge: TileEdge = from === 0 ? EMPTY_EDGE : store.edge(origin, from);
    const invalid: { index: number; reason: string }[] = [];
    let invalidCount = 0;
    const bundles = readBundles({ url: log.url, from, size, storeDir, timeoutMs, concurrency });
    // Entries that do not hash to the signed root are bad data, not misbehaviour anyone could
    // prove (whoever is on the path can corrupt them): they are dropped and fetched again.
    const mismatch = (why: string) => {
      store.dropUnverified(origin);
      return new Error(why);
    };
    let batch: StoredBundle[] = [];
    let batchBytes = 0;
    let claims: NewClaim[] = [];
    let statements: number[] = [];
    /** Statements stored by this ingest (their indexes). */
    const storedStatements: number[] = [];
    let leaves: Uint8Array[] = [];
    const newPaths: string[] = [];
    let counted = { invalidCount, invalid: invalid.length, paths: 0 };
    const take = (bundle: ReadBundle) => {
      const base = bundle.index * TILE_WIDTH;
      if (bundle.skip > 0) {
        // The partial bundle verified before: the log must serve the same entries again. Its
        // stored copy encodes exactly those entries, so the new bundle must begin with it.
        const stored = store.bundle(origin, bundle.index) ?? new Uint8Array();
        const served = decodeBundle(bundle.data, bundle.gzip);
        if (
          parseEntryBundle(stored).length !== bundle.skip ||
          !equalBytes(stored, served.subarray(0, stored.length))
        ) {
          throw mismatch(`it serves entries below ${from} that differ from the verified ones`);
        }
      }
      batch.push({ index: bundle.index, data: bundle.data, gzip: bundle.gzip });
      batchBytes += bundle.data.length;
      for (let j = 0; j < bundle.leaves.length; j += 32)
        leaves.push(bundle.leaves.subarray(j, j + 32));
      bundle.positions.forEach((position, i) => {
        const hashPart = bundle.hashParts[i] as string;
        const answer = bundle.answers.subarray(32 * i, 32 * i + 32);
        claims.push({ hashPart, index: base + position, answer });
        if (newPaths.length <= MANY_PATHS) newPaths.push(hashPart);
      });
      for (const position of bundle.statements) statements.push(base + position);
      invalidCount += bundle.invalidCount;
      for (const { position, reason } of bundle.invalid) {
        if (invalid.length < MAX_REPORTED_INVALID) invalid.push({ index: base + position, reason });
      }
    };
    const reset = () => {
      batch = [];
      batchBytes = 0;
      claims = [];
      statements = [];
      leaves = [];
      counted = { invalidCount, invalid: invalid.length, paths: newPaths.length };
    };
    /**
     * Stores the batch once its entries are shown to be the log's: the tree they make with the
     * verified ones must be a prefix of the signed one. A batch that is not (corrupted on the
     * way: one bad bundle must not make a whole ingest start again) is fetched afresh.
     */
    const flush = async () => {
      const start = edge.treeSize;
      for (let attempt = 0; ; attempt++) {
        const appended = appendLeaves(edge, leaves);
        const check = await this.prefixCheck(log, checkpoint, appended.edge);
        if (check !== 'differs') {
          edge = appended.edge;
          store.addEntries(origin, batch, claims, appended.tiles, size, statements);
          storedStatements.push(...statements);
          this.options.onProgress?.(origin, edge.treeSize - from, size - from);
          reset();
          return;
        }
        const until = appended.edge.treeSize;
        if (attempt === BATCH_ATTEMPTS - 1)
          throw mismatch(
            `the entries it serves from ${start} to ${until} do not match the checkpoint's root`,
          );
        invalidCount = counted.invalidCount;
        invalid.length = counted.invalid;
        newPaths.length = counted.paths;
        reset();
        const again = fetchBundles({
          url: log.url,
          from: start,
          size,
          until,
          storeDir,
          timeoutMs,
          concurrency,
          fresh: true,
        });
        for await (const bundle of again) take(bundle);
      }
    };
    for await (const bundle of bundles) {
      take(bundle);
      if (
        leaves.length >= (this.options.batchEntries ?? BATCH_ENTRIES) ||
        batchBytes >= BATCH_BYTES
      )
        await flush();
    }
    if (leaves.length > 0) await flush();
    const rootHash = edgeRootHash(edge);
    if (!equalBytes(rootHash, checkpoint.rootHash)) {
      throw mismatch(
        `the entries it serves from ${from} to ${size} do not match the checkpoint's root`,
      );
    }
    store.verified(origin, size, rootHash, note);
    if (invalidCount > 0) {
      this.finding(
        `invalid-entries ${origin} ${from} ${size}`,
        'bad-entries',
        `${origin}: ${invalidCount} of entries ${from}–${size - 1} are not valid accord/build/v1 entries`,
        { origin, checkpoint: note, invalid, count: invalidCount },
      );
    }
    if (storedStatements.length > 0) this.checkStatements(origin, note);
    this.options.logger.info('log verified', { log: origin, from, size });
    // Checkpoints seen earlier that were beyond the verified tree can be checked now.
    for (const seen of store.seenCheckpoints(origin, from + 1, size)) {
      await this.compare(log, this.open(seen.note).checkpoint, seen.note, seen.source);
    }
    store.forgetSeen(origin, size);
    await this.conflicts(store.conflictingPaths(origin, from, size, newPaths));
    return size - from;
  }

  /**
   * Follows the key statements of the log `origin` against its identity's root key, when one
   * is configured: each note not signed by the root, and the first statement that contradicts
   * an earlier one (or a missing one), is a `bad-statement` finding with the notes and their
   * indexes in the log, whose checkpoint `note` includes them.
   */
  private checkStatements(origin: string, note: string): void {
    const root = this.rootOf(origin);
    if (root === undefined) return;
    const stored = this.options.store.statements(origin);
    const indexOf = new Map(stored.map((s) => [s.note, s.index]));
    const result = foldStatements(
      root,
      stored.map((s) => s.note),
    );
    const evidence = (r: { code: string; message: string; notes: readonly string[] }) => ({
      origin,
      checkpoint: note,
      code: r.code,
      message: r.message,
      notes: r.notes.map((n) => ({ index: indexOf.get(n) ?? null, note: n })),
    });
    for (const r of result.ignored) {
      const index = indexOf.get(r.notes[0] ?? '') ?? -1;
      this.finding(
        `bad-statement ${origin} ${index}`,
        'bad-statement',
        `${origin}: entry ${index} is not a key statement signed by the identity's root key`,
        evidence(r),
      );
    }
    if (result.kind === 'refused') {
      const r = result.refusal;
      this.finding(
        `bad-statement ${origin} ${r.code} ${r.sequence ?? ''}`,
        'bad-statement',
        `${origin}: ${r.message} (${r.code})`,
        evidence(r),
      );
    }
  }

  /**
   * Whether the tree `edge` describes is the first `edge.treeSize` leaves of the signed
   * checkpoint's tree: its root is the signed root when the sizes are equal, else the old root
   * of a consistency proof from the log's tiles that leads to the signed root. `unknown` when
   * no copy of the tiles gives such a proof (the final root check decides then).
   */
  private async prefixCheck(
    log: FollowedLogConfig,
    checkpoint: Checkpoint,
    edge: TileEdge,
  ): Promise<'prefix' | 'differs' | 'unknown'> {
    const root = edgeRootHash(edge);
    const size = checkpoint.treeSize;
    if (edge.treeSize === size) return equalBytes(root, checkpoint.rootHash) ? 'prefix' : 'differs';
    for (const fresh of [false, true]) {
      try {
        const proof = await proveCompleteConsistency(
          edge.treeSize,
          size,
          this.remoteTiles(log, size, fresh),
        );
        const roots = rootsFromConsistencyProof(edge.treeSize, size, proof);
        if (!equalBytes(roots.newRoot, checkpoint.rootHash)) continue;
        return equalBytes(roots.oldRoot, root) ? 'prefix' : 'differs';
      } catch (error) {
        if (!(error instanceof FetchError || error instanceof TlogError)) throw error;
      }
    }
    return 'unknown';
  }

  /** Inclusion proof of an entry in the log's verified tree, as a C2SP tlog-proof. */
  private async inclusion(origin: string, index: number): Promise<string> {
    const state = this.options.store.log(origin);
    if (state === undefined) throw new Error('bug: proof for an unverified log');
    const proof = await proveInclusion(
      index,
      state.verifiedSize,
      this.localTiles(origin, state.verifiedSize),
    );
    return formatTlogProof({ index, inclusionProof: proof, checkpoint: state.checkpoint });
  }

  /**
   * Records what the claims about each store path show, for paths whose claims differ: two
   * answers from one log (the log equivocates) or different answers across logs (builders
   * disagree). There is one finding per path and kind, made again from every claim each time a
   * claim about the path comes in: it lists each log's first claim with each answer, with its
   * inclusion proof, and for a disagreement which logs are in the majority and which are not.
   */
  private async conflicts(hashParts: readonly string[]): Promise<void> {
    const { store, storeDir } = this.options;
    for (const hashPart of hashParts) {
      const claims = store.claims(hashPart).map((c) => ({
        origin: c.origin,
        index: c.index,
        answer: c.answer,
        entry: c.entry,
      }));
      const byLog = new Map<string, Set<string>>();
      for (const c of claims) byLog.set(c.origin, (byLog.get(c.origin) ?? new Set()).add(c.answer));
      const equivocating = [...byLog].filter(([, a]) => a.size > 1).map(([log]) => log);
      if (equivocating.length > 0) {
        const [only] = equivocating;
        await this.pathFinding(
          'log-equivocation',
          hashPart,
          equivocating.length === 1
            ? `${only} claims ${byLog.get(only as string)?.size} different NARs for ${hashPart}`
            : `${equivocating.join(', ')} each claim different NARs for ${hashPart}`,
          claims.filter((c) => equivocating.includes(c.origin)),
          (proven) => ({ hashPart, logs: equivocating, claims: proven }),
        );
      }
      const { groups, majority, minority } = verdict(claims, storeDir);
      if (byLog.size > 1 && groups.length > 1) {
        await this.pathFinding(
          'disagreement',
          hashPart,
          majority === undefined
            ? `builders disagree on ${hashPart}: ${groups.length} different NARs from ${byLog.size} logs, no majority`
            : `builders disagree on ${hashPart}: ${majority.logs.length} of ${byLog.size} logs (${majority.logs.join(', ')}) against ${minority.join(', ')}`,
          claims,
          (proven) => ({
            hashPart,
            claims: proven,
            answers: groups,
            majority: majority ?? null,
            minority,
          }),
        );
      }
    }
  }

  /**
   * Records the finding of a kind about a path from its claims, each with its inclusion proof
   * — unless the finding already says the same but for the proofs (a proof in an older tree
   * stays evidence), so that a claim repeated changes nothing.
   */
  private async pathFinding<C extends { origin: string; index: number }>(
    kind: Finding['kind'],
    hashPart: string,
    summary: string,
    claims: readonly C[],
    evidence: (claims: readonly (C & { proof: string })[]) => unknown,
  ): Promise<void> {
    const key = pathFindingKey(kind, hashPart);
    const known = this.options.store.finding(key);
    const bare = (e: unknown) =>
      JSON.stringify(e, (k, v: unknown) => (k === 'proof' ? undefined : v));
    if (
      known?.summary === summary &&
      bare(known.evidence) === bare(evidence(claims.map((c) => ({ ...c, proof: '' }))))
    )
      return;
    const proven = await Promise.all(
      claims.map(async (c) => ({ ...c, proof: await this.inclusion(c.origin, c.index) })),
    );
    this.putFinding(key, kind, summary, evidence(proven));
  }

  /** Asks each witness for the latest checkpoint it cosigned of each log, and compares it. */
  async pollWitnesses(): Promise<void> {
    const { witnesses, timeoutMs, logger } = this.options;
    const asks = witnesses.flatMap((w) =>
      this.followed.map(async (log) => {
        const id = createHash('sha256').update(log.origin).digest('hex');
        try {
          const note = (
            await fetchBytes(`${w.url}/${id}/checkpoint`, timeoutMs, MAX_CHECKPOINT_BYTES)
          ).toString('utf8');
          await this.observe(note, `witness ${w.name}`);
        } catch (error) {
          if (error instanceof FetchError && error.notFound) return;
          logger.warn('witness poll failed', {
            witness: w.name,
            log: log.origin,
            reason: (error as Error).message,
          });
        }
      }),
    );
    await Promise.all(asks);
  }
}
