/**
 * The sequencer: integrates accepted entries into the tree — tiles and a signed checkpoint —
 * every interval, in one process at a time (the storage's sequencer lock).
 */
import {
  type NoteSigner,
  type Tile,
  appendLeaves,
  edgeFromTiles,
  edgeTiles,
  formatCheckpoint,
  parseSignedNote,
  signNote,
  tileHashReader,
  tilePath,
} from '../tlog/index.js';
import { type Logger, type Registry, silentLogger } from '../server/index.js';
import type { LogStorage } from './storage.js';
import type { WitnessClient } from './witnesses.js';

/** Signature lines of a note (the log's and the witnesses'). */
function signatureCount(note: string): number {
  return note
    .slice(note.lastIndexOf('\n\n') + 2)
    .split('\n')
    .filter((l) => l !== '').length;
}

export interface SequencerOptions {
  readonly storage: LogStorage;
  readonly origin: string;
  readonly signer: NoteSigner;
  /**
   * More keys of the same origin that sign every checkpoint too: during a key rotation the old
   * and the new key both sign, so clients and witnesses that know either verify it.
   */
  readonly extraSigners?: readonly NoteSigner[];
  /** Time between rounds, in milliseconds (default 500). */
  readonly intervalMs?: number;
  /** Most entries integrated per round (default 65,536); a full round is followed at once. */
  readonly maxBatch?: number;
  readonly logger?: Logger;
  readonly metrics?: Registry;
  /** Called with each checkpoint this process publishes. */
  readonly onPublish?: (checkpoint: string, treeSize: number) => void;
  /** Witnesses asked to cosign each checkpoint before it is published. */
  readonly witnesses?: WitnessClient;
}

/** Reads a stored tile cut to `width` hashes (stored tiles may have grown since). */
async function readTile(storage: LogStorage, level: number, index: number, width: number) {
  const data = await storage.tile(level, index);
  if (data === undefined || data.length < width * 32) {
    throw new Error(`bug: tile ${level}/${index} of width ${width} is missing from storage`);
  }
  return data.subarray(0, width * 32);
}

export class Sequencer {
  private readonly storage: LogStorage;
  private readonly options: SequencerOptions;
  private readonly logger: Logger;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private stopped = true;
  private readonly rounds;
  private readonly integrated;

  private readonly signers: readonly NoteSigner[];

  constructor(options: SequencerOptions) {
    this.options = options;
    this.signers = [options.signer, ...(options.extraSigners ?? [])];
    for (const s of this.signers) {
      if (s.name !== options.origin)
        throw new Error(`log key ${s.name} is not named as the origin ${options.origin}`);
    }
    const ids = new Set(this.signers.map((s) => s.keyId));
    if (ids.size !== this.signers.length) throw new Error('the same log key is given twice');
    this.storage = options.storage;
    this.logger = options.logger ?? silentLogger;
    this.rounds = options.metrics?.histogram(
      'accord_log_sequence_seconds',
      'Time of sequencing rounds that published a checkpoint',
      [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    );
    this.integrated = options.metrics?.counter(
      'accord_log_entries_sequenced_total',
      'Entries this process integrated into the tree',
    );
  }

  /**
   * One round: if this process holds the sequencer lock and entries are waiting, appends up to
   * `maxBatch` of them and publishes the new tree. Returns how many entries it integrated.
   */
  async round(): Promise<number> {
    if (!(await this.storage.trySequencerLock())) return 0;
    const start = performance.now();
    const state = await this.storage.state();
    const { treeSize } = state;
    const end = Math.min(state.nextIndex, treeSize + (this.options.maxBatch ?? 65_536));
    if (end === treeSize && state.checkpoint !== undefined) {
      if (!this.signedByAll(state.checkpoint)) await this.resign(treeSize, state.checkpoint);
      else await this.rewitness(treeSize, state.checkpoint);
      return 0;
    }
    const edge = edgeFromTiles(
      treeSize,
      await Promise.all(
        edgeTiles(treeSize).map((t) => readTile(this.storage, t.level, t.index, t.width)),
      ),
    );
    const leaves = end > treeSize ? await this.storage.leafHashes(treeSize, end) : [];
    if (leaves.length !== end - treeSize) throw new Error('bug: storage returned too few leaves');
    const grown = appendLeaves(edge, leaves);
    let checkpoint = signNote(
      formatCheckpoint({
        origin: this.options.origin,
        treeSize: end,
        rootHash: grown.rootHash,
        extensions: [],
      }),
      this.signers,
    );
    const tiles = grown.tiles.map(({ tile, data }) => ({
      level: tile.level,
      index: tile.index,
      data,
    }));
    if (this.options.witnesses !== undefined && this.options.witnesses.size > 0) {
      // Witnesses get consistency proofs of the new tree: its new tiles are still in memory.
      const fresh = new Map(grown.tiles.map(({ tile, data }) => [tilePath(tile), data]));
      const hashes = tileHashReader(end, {
        readTiles: (wanted: readonly Tile[]) =>
          Promise.all(
            wanted.map((t): Promise<Uint8Array> =>
              Promise.resolve(
                fresh.get(tilePath(t)) ?? readTile(this.storage, t.level, t.index, t.width),
              ),
            ),
          ),
      });
      checkpoint += await this.options.witnesses.cosignatures(checkpoint, end, hashes);
    }

    if (!(await this.storage.publish(treeSize, end, tiles, checkpoint))) {
      this.logger.warn('another sequencer published first', { treeSize });
      return 0;
    }
    const seconds = (performance.now() - start) / 1000;
    this.rounds?.observe(seconds);
    this.integrated?.inc({}, end - treeSize);
    this.logger.info('published checkpoint', {
      treeSize: end,
      added: end - treeSize,
      tiles: tiles.length,
      ms: Math.round(seconds * 1000),
    });
    this.options.onPublish?.(checkpoint, end);
    return end - treeSize;
  }

  private lastRewitness = 0;

  /** Whether the log's signatures on `note` are exactly those of this process's keys. */
  private signedByAll(note: string): boolean {
    const ids = parseSignedNote(note)
      .signatures.filter((sig) => sig.name === this.options.origin)
      .map((sig) => sig.keyId)
      .sort((a, b) => a - b);
    const want = this.signers.map((s) => s.keyId).sort((a, b) => a - b);
    return ids.length === want.length && ids.every((id, i) => id === want[i]);
  }

  /**
   * Republishes the published tree signed by this process's keys (a key added or retired
   * since it was signed), with the witnesses' cosignatures, so that clients and witnesses
   * that know only the new key need not wait for the next entry.
   */
  private async resign(treeSize: number, note: string): Promise<void> {
    const text = note.slice(0, note.lastIndexOf('\n\n') + 1);
    let next = signNote(text, this.signers);
    const witnesses = this.options.witnesses;
    if (witnesses !== undefined && witnesses.size > 0) {
      const hashes = tileHashReader(treeSize, {
        readTiles: (wanted: readonly Tile[]) =>
          Promise.all(wanted.map((t) => readTile(this.storage, t.level, t.index, t.width))),
      });
      next += await witnesses.cosignatures(next, treeSize, hashes);
    }
    if (await this.storage.publish(treeSize, treeSize, [], next)) {
      this.logger.info('republished checkpoint signed by the current log keys', { treeSize });
      this.options.onPublish?.(next, treeSize);
    }
  }

  /**
   * When the published checkpoint lacks some witness's cosignature (it was down), asks again
   * (at most every 5 s) and republishes the same tree with the cosignatures it gets.
   */
  private async rewitness(treeSize: number, note: string): Promise<void> {
    const witnesses = this.options.witnesses;
    if (witnesses === undefined || witnesses.size === 0) return;
    const full = this.signers.length + witnesses.size;
    if (signatureCount(note) >= full || Date.now() - this.lastRewitness < 5000) return;
    this.lastRewitness = Date.now();
    const text = note.slice(0, note.lastIndexOf('\n\n') + 1);
    const base = signNote(text, this.signers);
    const hashes = tileHashReader(treeSize, {
      readTiles: (wanted: readonly Tile[]) =>
        Promise.all(wanted.map((t) => readTile(this.storage, t.level, t.index, t.width))),
    });
    const next = base + (await witnesses.cosignatures(base, treeSize, hashes));
    if (signatureCount(next) <= signatureCount(note)) return;
    if (await this.storage.publish(treeSize, treeSize, [], next)) {
      this.logger.info('republished checkpoint with more cosignatures', { treeSize });
      this.options.onPublish?.(next, treeSize);
    }
  }

  /** Runs rounds every interval until {@link stop}; a full round is followed immediately. */
  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    const loop = async () => {
      let added = 0;
      try {
        added = await this.round();
      } catch (error) {
        this.logger.error('sequencing round failed', { error });
      }
      if (this.stopped) return;
      const full = added >= (this.options.maxBatch ?? 65_536);
      this.timer = setTimeout(
        () => {
          this.running = loop();
        },
        full ? 0 : (this.options.intervalMs ?? 500),
      );
    };
    this.running = loop();
  }

  /** Stops after the current round. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.running;
  }
}
