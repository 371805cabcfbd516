/**
 * The monitor's index of claims by path key, kept in SQLite as a log-structured merge of sorted
 * runs. Each batch of claims becomes one new run: sorted in memory and written as blocks of
 * records, so adding a claim costs a share of one block's insert instead of a B-tree insert at a
 * random place (whose pages are all rewritten by every large transaction). Runs of one size tier
 * are merged once there are `fanout` of them, so a lookup reads a few blocks in each of a few
 * dozen runs at most, and each claim is rewritten about log_fanout(claims) times in all.
 *
 * A record is 48 bytes: the 48-bit path key, the log id (32 bits), the 32-byte digest of the
 * entry's answer and the entry index (48 bits), all big-endian, so that records sort as their
 * bytes do: by key, log, answer, then index. A (key, log, index) is added once: to write an
 * entry's claim again (the log served other entries at those indexes), drop it first.
 */
import type { SqliteDatabase } from '../db/index.js';
import { KeyFilter } from './key-filter.js';

const SCHEMA = `
CREATE TABLE IF NOT EXISTS claim_runs (id INTEGER PRIMARY KEY, count INTEGER NOT NULL);
-- per run and log: one past the largest entry index of the log in the run
CREATE TABLE IF NOT EXISTS claim_run_logs (
  run INTEGER NOT NULL,
  log INTEGER NOT NULL,
  end_index INTEGER NOT NULL,
  PRIMARY KEY (run, log)
) WITHOUT ROWID;
-- block seq of a run holds its records seq × block … , the last of which is last
CREATE TABLE IF NOT EXISTS claim_blocks (
  run INTEGER NOT NULL,
  seq INTEGER NOT NULL,
  last BLOB NOT NULL,
  data BLOB NOT NULL,
  PRIMARY KEY (run, seq)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS claim_blocks_by_last ON claim_blocks (run, last);
`;

/** Bytes per record. */
export const RECORD_BYTES = 48;
const LOG_AT = 6;
const ANSWER_AT = 10;
const INDEX_AT = 42;
/**
 * A log's distinct answers about one key read from each run at most: a log that claims more
 * is equivocating, and these are enough to show it.
 */
export const MAX_ANSWERS_PER_LOG = 16;

/** One claim in the index. */
export interface IndexRecord {
  /** 48-bit key of the store path (the index does not know how it was made). */
  readonly key: number;
  readonly log: number;
  readonly index: number;
  /** SHA-256 of the entry's answer: equal digests are equal answers. */
  readonly answer: Uint8Array;
}

function recordAt(block: Buffer, at: number): IndexRecord {
  return {
    key: block.readUIntBE(at, 6),
    log: block.readUInt32BE(at + LOG_AT),
    index: block.readUIntBE(at + INDEX_AT, 6),
    answer: block.subarray(at + ANSWER_AT, at + INDEX_AT),
  };
}

/** Orders records by key, then log, then answer, then index. */
function compare(a: IndexRecord, b: IndexRecord): number {
  return a.key - b.key || a.log - b.log || Buffer.compare(a.answer, b.answer) || a.index - b.index;
}

/**
 * The 48 bytes that sort just before or just after every record whose first fields are
 * `key`, then `log`, then `answer` (each optional from the last): a bound to search runs for.
 */
function bound(end: 'low' | 'high', key: number, log?: number, answer?: Uint8Array): Buffer {
  const bytes = Buffer.alloc(RECORD_BYTES, end === 'low' ? 0 : 0xff);
  bytes.writeUIntBE(key, 0, 6);
  if (log !== undefined) bytes.writeUInt32BE(log, LOG_AT);
  if (answer !== undefined) bytes.set(answer, ANSWER_AT);
  return bytes;
}

/** A record where it is stored: `block[at, at + RECORD_BYTES)`, its numbers decoded. */
export interface RecordView {
  readonly key: number;
  readonly log: number;
  readonly index: number;
  readonly block: Buffer;
  readonly at: number;
}

/** Whether the records at `a[aAt…]` and `b[bAt…]` have the same answer digest. */
export function sameAnswer(a: Buffer, aAt: number, b: Buffer, bAt: number): boolean {
  return b.compare(a, aAt + ANSWER_AT, aAt + INDEX_AT, bAt + ANSWER_AT, bAt + INDEX_AT) === 0;
}

/**
 * A position in one run, read a block at a time: the record under it is `block[at, at + 48)`,
 * with its key, log and index decoded. Merges copy records as bytes, never as objects.
 */
class RunCursor implements RecordView {
  key = 0;
  log = 0;
  index = 0;
  done = false;
  block: Buffer = Buffer.alloc(0);
  at = 0;
  private seq = 0;

  constructor(private readonly readBlock: (seq: number) => Buffer | undefined) {
    this.at = -RECORD_BYTES;
    this.advance();
  }

  advance(): void {
    this.at += RECORD_BYTES;
    if (this.at >= this.block.length) {
      const block = this.readBlock(this.seq++);
      if (block === undefined) {
        this.done = true;
        return;
      }
      this.block = block;
      this.at = 0;
    }
    this.key = this.block.readUIntBE(this.at, 6);
    this.log = this.block.readUInt32BE(this.at + LOG_AT);
    this.index = this.block.readUIntBE(this.at + INDEX_AT, 6);
  }
}

function before(a: RunCursor, b: RunCursor): boolean {
  return (
    (a.key - b.key ||
      a.log - b.log ||
      a.block.compare(
        b.block,
        b.at + ANSWER_AT,
        b.at + INDEX_AT,
        a.at + ANSWER_AT,
        a.at + INDEX_AT,
      ) ||
      a.index - b.index) < 0
  );
}

/**
 * The records of several runs in order, a k-way merge over a binary heap: yields the cursor
 * standing on each record in turn (use it before asking for the next).
 */
function* merged(cursors: RunCursor[]): Generator<RunCursor> {
  const heap = cursors.filter((c) => !c.done);
  const down = (i: number) => {
    for (;;) {
      const l = 2 * i + 1;
      if (l >= heap.length) return;
      const r = l + 1;
      const least = r < heap.length && before(heap[r] as RunCursor, heap[l] as RunCursor) ? r : l;
      if (!before(heap[least] as RunCursor, heap[i] as RunCursor)) return;
      [heap[i], heap[least]] = [heap[least] as RunCursor, heap[i] as RunCursor];
      i = least;
    }
  };
  for (let i = (heap.length >> 1) - 1; i >= 0; i--) down(i);
  while (heap.length > 0) {
    const top = heap[0] as RunCursor;
    yield top;
    top.advance();
    if (top.done) {
      const last = heap.pop() as RunCursor;
      if (heap.length === 0) return;
      heap[0] = last;
    }
    down(0);
  }
}

/** Records sorted and encoded as one block, to be written through a cursor like a run. */
function encodeSorted(records: readonly IndexRecord[]): Buffer {
  const sorted = [...records].sort(compare);
  const data = Buffer.allocUnsafe(sorted.length * RECORD_BYTES);
  sorted.forEach((r, i) => {
    const at = i * RECORD_BYTES;
    data.writeUIntBE(r.key, at, 6);
    data.writeUInt32BE(r.log, at + LOG_AT);
    data.writeUIntBE(r.index, at + INDEX_AT, 6);
    data.set(r.answer, at + ANSWER_AT);
  });
  return data;
}

/** Tuning: records per block and runs merged at once (small values in tests). */
export interface ClaimIndexOptions {
  readonly blockRecords?: number;
  readonly fanout?: number;
}

export class ClaimIndex {
  private readonly q;
  private readonly blockRecords: number;
  private readonly fanout: number;
  private readonly readBlock: (run: number, seq: number) => Buffer | undefined;
  /** Filters of the runs asked about, by run id (see {@link mayHold}). */
  private readonly filters = new Map<number, KeyFilter>();

  constructor(
    private readonly db: SqliteDatabase,
    options: ClaimIndexOptions = {},
  ) {
    // Small blocks: a lookup reads one or a few blocks in each run.
    this.blockRecords = options.blockRecords ?? 64;
    this.fanout = options.fanout ?? 8;
    const before = this.setAsideFirstLayout();
    db.exec(SCHEMA);
    this.q = {
      newRun: db
        .prepare<[], number>('INSERT INTO claim_runs (count) VALUES (0) RETURNING id')
        .pluck(),
      setCount: db.prepare('UPDATE claim_runs SET count = ? WHERE id = ?'),
      runs: db.prepare<[], { id: number; count: number }>(
        'SELECT id, count FROM claim_runs ORDER BY id',
      ),
      runLog: db.prepare('INSERT INTO claim_run_logs (run, log, end_index) VALUES (?, ?, ?)'),
      runsOf: db
        .prepare<[number, number], number>(
          'SELECT run FROM claim_run_logs WHERE log = ? AND end_index > ? ORDER BY run',
        )
        .pluck(),
      block: db.prepare('INSERT INTO claim_blocks (run, seq, last, data) VALUES (?, ?, ?, ?)'),
      readBlock: db
        .prepare<[number, number], Buffer>(
          'SELECT data FROM claim_blocks WHERE run = ? AND seq = ?',
        )
        .pluck(),
      // The first block of a run holding a record at or after a bound, or after it.
      blockFrom: db.prepare<[number, Buffer], { seq: number; data: Buffer }>(
        'SELECT seq, data FROM claim_blocks WHERE run = ? AND last >= ? ORDER BY last LIMIT 1',
      ),
      blockAfter: db.prepare<[number, Buffer], { seq: number; data: Buffer }>(
        'SELECT seq, data FROM claim_blocks WHERE run = ? AND last > ? ORDER BY last LIMIT 1',
      ),
      dropRun: [
        db.prepare('DELETE FROM claim_blocks WHERE run = ?'),
        db.prepare('DELETE FROM claim_run_logs WHERE run = ?'),
        db.prepare('DELETE FROM claim_runs WHERE id = ?'),
      ],
    };
    const read = this.q.readBlock;
    this.readBlock = (run, seq) => read.get(run, seq);
    if (before) this.moveFirstLayout();
  }

  /**
   * Renames the tables of an index from before records held the answer ahead of the index
   * (blocks with a `last_key`), for {@link moveFirstLayout}. Returns whether there were any.
   */
  private setAsideFirstLayout(): boolean {
    const { db } = this;
    const columns = db.prepare<[], { name: string }>('PRAGMA table_info(claim_blocks)').all();
    if (!columns.some((c) => c.name === 'last_key')) return false;
    db.exec(`DROP INDEX IF EXISTS claim_blocks_by_key;
      DROP TABLE claim_run_logs;
      DROP TABLE claim_runs;
      ALTER TABLE claim_blocks RENAME TO claim_blocks_first_layout;`);
    return true;
  }

  /** Moves the records of the first layout into this one, 65,536 at a time, in one transaction. */
  private moveFirstLayout(): void {
    const { db } = this;
    const page = db.prepare<[number, number], { run: number; seq: number; data: Buffer }>(
      `SELECT run, seq, data FROM claim_blocks_first_layout WHERE (run, seq) > (?, ?)
       ORDER BY run, seq LIMIT 1024`,
    );
    db.transaction(() => {
      let records: IndexRecord[] = [];
      for (let blocks = page.all(-1, -1); blocks.length > 0;) {
        for (const { data } of blocks) {
          // First layout: key, log, index (48 bits), answer.
          for (let at = 0; at < data.length; at += RECORD_BYTES) {
            records.push({
              key: data.readUIntBE(at, 6),
              log: data.readUInt32BE(at + 6),
              index: data.readUIntBE(at + 10, 6),
              answer: data.subarray(at + 16, at + RECORD_BYTES),
            });
          }
          if (records.length >= 65_536) {
            this.add(records);
            records = [];
          }
        }
        const last = blocks[blocks.length - 1] as { run: number; seq: number };
        blocks = page.all(last.run, last.seq);
      }
      this.add(records);
      db.exec('DROP TABLE claim_blocks_first_layout');
    })();
  }

  /**
   * Adds records (not in the index) as a new run, then merges any tier that has `fanout` runs.
   * Runs in a transaction of its caller's or its own.
   */
  add(records: readonly IndexRecord[]): void {
    if (records.length === 0) return;
    this.db.transaction(() => {
      const data = encodeSorted(records);
      this.write(merged([new RunCursor((seq) => (seq === 0 ? data : undefined))]));
      this.compact();
    })();
  }

  /**
   * The first record (lowest index) of each log and answer with key `key`, in each run, for at
   * most {@link MAX_ANSWERS_PER_LOG} answers of each log per run (the lowest digests): a log
   * claiming a path many times costs a lookup no more than claiming it once, and hides no
   * other log's claims. The same log and answer may come from several runs. Ordered by log,
   * answer and index.
   */
  lookup(key: number): IndexRecord[] {
    const found: IndexRecord[] = [];
    for (const { id: run, count } of this.q.runs.all()) {
      if (!this.mayHold(run, count, key)) continue;
      let log = -1;
      let answers = 0;
      // Each step finds the first record after the bound: the next answer, or the next log.
      let from = bound('low', key);
      let after = false;
      seek: for (;;) {
        const row = (after ? this.q.blockAfter : this.q.blockFrom).get(run, from);
        if (row === undefined) break;
        const block = row.data;
        let at = this.search(block, from, after);
        if (at >= block.length) throw new Error('bug: claim block ends before its last record');
        while (block.readUIntBE(at, 6) === key) {
          const record = recordAt(block, at);
          if (record.log !== log) {
            log = record.log;
            answers = 0;
          }
          found.push(record);
          answers++;
          from =
            answers < MAX_ANSWERS_PER_LOG
              ? bound('high', key, log, record.answer)
              : bound('high', key, log);
          after = true;
          at = this.search(block, from, true);
          // Past this block: the next one with a record after the bound, if any.
          if (at >= block.length) continue seek;
        }
        break;
      }
    }
    return found.sort(compare);
  }

  /** Every record, in order. */
  *scan(): Generator<IndexRecord> {
    for (const view of this.scanViews()) yield recordAt(view.block, view.at);
  }

  /**
   * Every record, in order, without an object for each: the view is valid until the next is
   * asked for (its record's bytes, `block[at, at + 48)`, stay valid).
   */
  scanViews(): Generator<RecordView> {
    return merged(this.q.runs.all().map(({ id }) => this.cursor(id)));
  }

  /** Removes the records of `log` with an index of `from` or more. */
  drop(log: number, from: number): void {
    this.db.transaction(() => {
      for (const run of this.q.runsOf.all(log, from)) {
        this.write(merged([this.cursor(run)]), (r) => r.log !== log || r.index < from);
        this.dropRun(run);
      }
    })();
  }

  /** Byte offset of the first record in `block` at or after `bound` (after it, when `after`). */
  private search(block: Buffer, bound: Buffer, after: boolean): number {
    let lo = 0;
    let hi = block.length / RECORD_BYTES;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      const c = block.compare(bound, 0, RECORD_BYTES, mid * RECORD_BYTES, (mid + 1) * RECORD_BYTES);
      if (c < 0 || (after && c === 0)) lo = mid + 1;
      else hi = mid;
    }
    return lo * RECORD_BYTES;
  }

  /**
   * Whether run `run` (of `count` records) may hold records with `key`, by its filter, made
   * the first time it is asked from the run's records. Inside a transaction the run may still
   * change or be rolled back, so there is no filter then: every run may hold the key. A run's
   * filter goes when the run is dropped (a merge, a log's entries dropped).
   */
  private mayHold(run: number, count: number, key: number): boolean {
    let filter = this.filters.get(run);
    if (filter === undefined) {
      if (this.db.inTransaction) return true;
      filter = new KeyFilter(count);
      for (const r of merged([this.cursor(run)])) filter.add(r.key);
      this.filters.set(run, filter);
    }
    return filter.mayHold(key);
  }

  private cursor(run: number): RunCursor {
    return new RunCursor((seq) => this.readBlock(run, seq));
  }

  /** Writes ordered records as a new run (none when no record is kept). */
  private write(records: Iterable<RunCursor>, keep: (r: RunCursor) => boolean = () => true): void {
    const run = this.q.newRun.get() as number;
    const ends = new Map<number, number>();
    const block = Buffer.alloc(this.blockRecords * RECORD_BYTES);
    let count = 0;
    let at = 0;
    let seq = 0;
    const flush = () => {
      this.q.block.run(run, seq++, block.subarray(at - RECORD_BYTES, at), block.subarray(0, at));
      at = 0;
    };
    for (const r of records) {
      if (!keep(r)) continue;
      r.block.copy(block, at, r.at, r.at + RECORD_BYTES);
      at += RECORD_BYTES;
      count++;
      ends.set(r.log, Math.max(ends.get(r.log) ?? 0, r.index + 1));
      if (at === block.length) flush();
    }
    if (at > 0) flush();
    if (count === 0) {
      this.dropRun(run);
      return;
    }
    this.q.setCount.run(count, run);
    for (const [log, end] of ends) this.q.runLog.run(run, log, end);
  }

  private dropRun(run: number): void {
    this.filters.delete(run);
    for (const statement of this.q.dropRun) statement.run(run);
  }

  /** The size tier of a run of `count` records: ⌊log_fanout(count)⌋. */
  private tier(count: number): number {
    let tier = 0;
    for (let n = count; n >= this.fanout; n = Math.floor(n / this.fanout)) tier++;
    return tier;
  }

  /** Merges the runs of each tier that has `fanout` of them, until none has. */
  private compact(): void {
    for (;;) {
      const tiers = new Map<number, number[]>();
      for (const { id, count } of this.q.runs.all()) {
        const t = this.tier(count);
        tiers.set(t, [...(tiers.get(t) ?? []), id]);
      }
      const full = [...tiers.values()].find((runs) => runs.length >= this.fanout);
      if (full === undefined) return;
      this.write(merged(full.map((run) => this.cursor(run))));
      for (const run of full) this.dropRun(run);
    }
  }
}
