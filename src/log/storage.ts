/**
 * The log's storage interface and its contract. Every backend (SQLite, PostgreSQL) passes the
 * same conformance suite (storage.case.ts).
 *
 * Contract:
 * - Durability: when `addEntries` or `publish` resolves, what it wrote is committed and survives
 *   a kill -9 of the process and a power loss of the machine (SQLite: WAL with synchronous =
 *   FULL; PostgreSQL: synchronous_commit on).
 * - Atomicity: each call writes all it was given or nothing.
 * - Entries: indexes are assigned densely from 0 in commit order and never change; an entry
 *   whose leaf hash is already stored keeps its index (re-submission is idempotent).
 * - Chains: `addChained` is a compare-and-set on the last entry of one key (hash part), in the
 *   same index order as `addEntries`, so that of two processes chaining onto one entry only
 *   one succeeds (the log's key statements form one chain).
 * - Tree: `publish` moves the published tree from `oldSize` to `newSize` only if the stored
 *   size is still `oldSize` (a compare-and-set), so two sequencers can never publish two
 *   different trees; tiles only grow (a stored tile is replaced by a longer one with the same
 *   prefix, never shortened).
 * - Consistency: after a call resolves, every later call (from any process sharing the store)
 *   sees its effects.
 * - Compressed bundles are a cache beside the entries, which stay the truth: the first encoding
 *   stored for a bundle is kept.
 * - Sequencing: `trySequencerLock` makes at most one process the sequencer at a time (SQLite:
 *   one process per database file; PostgreSQL: a session advisory lock, released by `close`
 *   or when the holder's connection ends).
 */

/** An entry to add: its bytes, leaf hash, and the store path hash part it claims about. */
export interface NewEntry {
  readonly data: Uint8Array;
  readonly leafHash: Uint8Array;
  readonly hashPart: string;
}

/** What the log has accepted and published. */
export interface LogState {
  /** Entries accepted: indexes 0 … nextIndex − 1 exist. */
  readonly nextIndex: number;
  /** Size of the latest published tree (≤ nextIndex). */
  readonly treeSize: number;
  /** The latest signed checkpoint, once one was published. */
  readonly checkpoint: string | undefined;
}

/** A stored entry found by lookup. */
export interface StoredEntry {
  readonly index: number;
  readonly data: Uint8Array;
}

/** The gzip encoding of a full entry bundle. */
export interface CompressedBundle {
  readonly index: number;
  readonly gzip: Uint8Array;
}

/** A tile's latest contents. */
export interface StoredTile {
  readonly level: number;
  readonly index: number;
  readonly data: Uint8Array;
}

export interface LogStorage {
  /** Adds entries (idempotent per leaf hash) and returns their indexes, in input order. */
  addEntries(entries: readonly NewEntry[]): Promise<number[]>;
  /**
   * Adds `entry` if the last entry stored under its hash part has leaf hash `last` (or, when
   * `last` is undefined, if there is none), and returns its index; resolves undefined, writing
   * nothing, when the last entry is another. An entry already stored keeps its index.
   */
  addChained(entry: NewEntry, last: Uint8Array | undefined): Promise<number | undefined>;
  /** The current state. */
  state(): Promise<LogState>;
  /** Leaf hashes of entries `[start, end)`; `end ≤ nextIndex`. */
  leafHashes(start: number, end: number): Promise<Uint8Array[]>;
  /** Data of entries `[start, end)`; `end ≤ nextIndex`. */
  entries(start: number, end: number): Promise<Uint8Array[]>;
  /** Entries claiming about `hashPart`, by ascending index. */
  lookup(hashPart: string): Promise<StoredEntry[]>;
  /** The stored gzip encoding of full entry bundle `index`, if one was stored. */
  compressedBundle(index: number): Promise<Uint8Array | undefined>;
  /** Stores gzip encodings of full entry bundles; a bundle stored before keeps its first one. */
  putCompressedBundles(bundles: readonly CompressedBundle[]): Promise<void>;
  /** The latest contents of tile (`level`, `index`), if any. */
  tile(level: number, index: number): Promise<Uint8Array | undefined>;
  /**
   * Stores `tiles` and `checkpoint` as the tree of `newSize` entries, if the published size is
   * still `oldSize`; resolves false (writing nothing) otherwise.
   */
  publish(
    oldSize: number,
    newSize: number,
    tiles: readonly StoredTile[],
    checkpoint: string,
  ): Promise<boolean>;
  /** Tries to become (or stay) the one sequencer; false while another process is. */
  trySequencerLock(): Promise<boolean>;
  close(): Promise<void>;
}
