/**
 * The witness's storage interface and contract; SQLite and PostgreSQL pass one conformance
 * suite (storage.case.ts).
 *
 * Contract:
 * - One record per log origin: the latest checkpoint the witness cosigned (size, root hash, and
 *   the note as served, with the log's signature and the cosignature).
 * - `advance` is an atomic compare-and-set: it stores the new record only if the stored size
 *   is still `oldSize` (0 with no record); otherwise it stores nothing and reports the stored
 *   size. Two concurrent requests can therefore never both advance from the same state, and
 *   the witness never rolls back.
 * - Durability: when `advance` resolves true the record is committed and survives kill -9 and
 *   power loss; the witness answers only after that, so it can never have cosigned something
 *   it does not remember.
 */

/** A log's latest cosigned checkpoint. */
export interface WitnessedCheckpoint {
  readonly size: number;
  readonly rootHash: Uint8Array;
  /** The checkpoint with the log's signature and the witness's cosignature. */
  readonly note: string;
}

export interface WitnessStorage {
  latest(origin: string): Promise<WitnessedCheckpoint | undefined>;
  /** Stores `next` for `origin` if the stored size is `oldSize`; else returns the stored size. */
  advance(
    origin: string,
    oldSize: number,
    next: WitnessedCheckpoint,
  ): Promise<{ readonly ok: true } | { readonly ok: false; readonly size: number }>;
  close(): Promise<void>;
}
