import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type SqliteDatabase, openSqlite } from '../db/index.js';
import { ClaimIndex, MAX_ANSWERS_PER_LOG, sameAnswer, type IndexRecord } from './claim-index.js';

const record = (key: number, log: number, index: number, answer = index): IndexRecord => ({
  key,
  log,
  index,
  answer: Buffer.alloc(32, answer % 256),
});
const plain = (records: Iterable<IndexRecord>) =>
  [...records].map((r) => [r.key, r.log, r.index, Buffer.from(r.answer).toString('hex')]);
const order = (a: IndexRecord, b: IndexRecord) =>
  a.key - b.key || a.log - b.log || Buffer.compare(a.answer, b.answer) || a.index - b.index;
type Plain = ReturnType<typeof plain>[number];
const same = (a: Plain, b: Plain) => a.every((x, i) => x === b[i]);
/** Of records in order, the first of each key, log and answer. */
const firsts = (records: Plain[]) =>
  records.filter(
    (r, i) =>
      i === 0 ||
      !same(
        (records[i - 1] as Plain).filter((_, j) => j !== 2),
        r.filter((_, j) => j !== 2),
      ),
  );

function withIndex(test: (index: ClaimIndex, db: SqliteDatabase) => void, blockRecords = 3) {
  const db = openSqlite(':memory:');
  try {
    test(new ClaimIndex(db, { blockRecords, fanout: 3 }), db);
  } finally {
    db.close();
  }
}

describe('ClaimIndex', () => {
  it('scans views whose earlier blocks stay readable as the scan moves on', () => {
    withIndex((index) => {
      // Key 5 spans two blocks of 3 records; its last record has another answer.
      index.add([
        record(5, 1, 0, 7),
        record(5, 1, 1, 7),
        record(5, 1, 2, 7),
        record(5, 1, 3, 7),
        record(5, 1, 4, 8),
        record(9, 1, 5),
      ]);
      let first: { block: Buffer; at: number } | undefined;
      const same: boolean[] = [];
      const seen: number[] = [];
      for (const view of index.scanViews()) {
        seen.push(view.index);
        if (view.key !== 5) continue;
        if (first === undefined) first = { block: view.block, at: view.at };
        else same.push(sameAnswer(first.block, first.at, view.block, view.at));
      }
      expect(seen).toEqual([0, 1, 2, 3, 4, 5]);
      expect(same).toEqual([true, true, true, false]);
    });
  });

  it('finds a key whose records span several blocks of several runs', () => {
    withIndex((index) => {
      index.add([
        record(5, 1, 0),
        record(5, 1, 1),
        record(5, 1, 2),
        record(5, 1, 3),
        record(9, 1, 4),
      ]);
      index.add([record(1, 2, 0), record(5, 2, 1), record(7, 2, 2)]);
      expect(plain(index.lookup(5))).toEqual(
        plain([
          record(5, 1, 0),
          record(5, 1, 1),
          record(5, 1, 2),
          record(5, 1, 3),
          record(5, 2, 1),
        ]),
      );
      expect(index.lookup(6)).toEqual([]);
      expect(index.lookup(2 ** 48 - 1)).toEqual([]);
    });
  });

  it('merges the runs of a tier once there are fanout of them, keeping every record', () => {
    withIndex((index, db) => {
      const runs = () => db.prepare('SELECT count FROM claim_runs ORDER BY count').pluck().all();
      index.add([record(3, 1, 0)]);
      index.add([record(1, 1, 1)]);
      expect(runs()).toEqual([1, 1]);
      index.add([record(2, 1, 2)]);
      expect(runs()).toEqual([3]);
      index.add([record(0, 1, 3), record(4, 1, 4), record(4, 1, 5)]);
      index.add([record(6, 1, 6), record(7, 1, 7), record(8, 1, 8)]);
      expect(runs()).toEqual([9]);
      expect(plain(index.scan()).map((r) => r[0])).toEqual([0, 1, 2, 3, 4, 4, 6, 7, 8]);
    });
  });

  it('drops the records of one log from an index on', () => {
    withIndex((index) => {
      index.add([record(1, 1, 0), record(1, 2, 0), record(2, 1, 5), record(3, 1, 9)]);
      index.add([record(2, 2, 7)]);
      index.drop(1, 5);
      expect(plain(index.scan())).toEqual(
        plain([record(1, 1, 0), record(1, 2, 0), record(2, 2, 7)]),
      );
      index.drop(2, 0);
      index.drop(1, 0);
      expect(plain(index.scan())).toEqual([]);
    });
  });

  it('agrees with a plain list under any adds and drops', () => {
    const op = fc.oneof(
      fc.record({
        add: fc.array(
          fc.record({
            key: fc.integer({ min: 0, max: 12 }),
            log: fc.integer({ min: 1, max: 3 }),
            index: fc.integer({ min: 0, max: 40 }),
            answer: fc.integer({ min: 0, max: 3 }),
          }),
          { maxLength: 20 },
        ),
      }),
      fc.record({ drop: fc.integer({ min: 1, max: 3 }), from: fc.integer({ min: 0, max: 40 }) }),
    );
    fc.assert(
      fc.property(fc.array(op, { maxLength: 25 }), fc.integer({ min: 1, max: 4 }), (ops, block) => {
        withIndex((index) => {
          let model: IndexRecord[] = [];
          for (const o of ops) {
            if ('add' in o) {
              // Records not in the index (the contract of add), each once.
              const records = o.add
                .map((r) => record(r.key, r.log, r.index, r.answer))
                .filter(
                  (r, i, all) =>
                    !model.some((m) => order(m, r) === 0) &&
                    all.findIndex((o2) => order(o2, r) === 0) === i,
                );
              index.add(records);
              model.push(...records);
            } else {
              index.drop(o.drop, o.from);
              model = model.filter((r) => r.log !== o.drop || r.index < o.from);
            }
            // Every key asked after every change: the runs' key filters are made as it goes,
            // and must follow the runs that merges and drops replace (their ids come back).
            for (let key = 0; key <= 12; key++) {
              const have = model.filter((r) => r.key === key);
              expect(index.lookup(key).length > 0, `key ${key}`).toBe(have.length > 0);
            }
          }
          const expected = plain(model.sort(order));
          expect(plain(index.scan())).toEqual(expected);
          for (let key = 0; key <= 12; key++) {
            // The first claim of each log and answer, once each runs' repeats are set aside.
            const found = plain(index.lookup(key));
            expect(found.every((r) => expected.some((e) => same(e, r)))).toBe(true);
            expect(firsts(found)).toEqual(firsts(expected.filter((r) => r[0] === key)));
          }
        }, block);
      }),
      { numRuns: 300 },
    );
  });

  it('a run made and read inside a rolled-back transaction leaves no filter behind', () => {
    withIndex((index, db) => {
      index.add([record(1, 1, 0)]);
      expect(index.lookup(1)).toHaveLength(1);
      // The second run, read inside the transaction, is rolled back; its id comes back for a
      // run holding another key, which must be found.
      try {
        db.transaction(() => {
          index.add([record(2, 1, 1)]);
          expect(index.lookup(2)).toHaveLength(1);
          throw new Error('roll back');
        })();
      } catch {
        // rolled back
      }
      index.add([record(3, 1, 2)]);
      expect(index.lookup(3)).toHaveLength(1);
      expect(index.lookup(2)).toHaveLength(0);
    });
  });

  it('looks up the first claim of each log and answer, however many repeats a log makes', () => {
    withIndex((index) => {
      // Log 1 claims key 5 with answer 7 a thousand times (many blocks), then answers 8 and 9;
      // log 2 claims it once with answer 8; then more answers of log 1 than a lookup reads.
      index.add([
        ...Array.from({ length: 1000 }, (_, i) => record(5, 1, i, 7)),
        record(5, 1, 1000, 8),
        record(5, 1, 1001, 9),
        record(5, 2, 0, 8),
        record(6, 1, 1002, 7),
      ]);
      expect(plain(index.lookup(5))).toEqual(
        plain([
          record(5, 1, 0, 7),
          record(5, 1, 1000, 8),
          record(5, 1, 1001, 9),
          record(5, 2, 0, 8),
        ]),
      );
      index.add([
        ...Array.from({ length: MAX_ANSWERS_PER_LOG + 4 }, (_, i) =>
          record(5, 1, 2000 + i, 10 + i),
        ),
        record(5, 2, 1, 200),
        record(5, 2, 2, 201),
      ]);
      const found = index.lookup(5);
      // Of each run, at most MAX_ANSWERS_PER_LOG answers of log 1; log 2's are all there.
      expect(found.filter((r) => r.log === 1 && r.index >= 2000)).toHaveLength(MAX_ANSWERS_PER_LOG);
      expect(found.filter((r) => r.log === 2).map((r) => r.index)).toEqual([0, 1, 2]);
    }, 4);
  });

  it('moves the records of the first layout (index before answer) into runs of this one', () => {
    const db = openSqlite(':memory:');
    try {
      db.exec(`CREATE TABLE claim_runs (id INTEGER PRIMARY KEY, count INTEGER NOT NULL);
        CREATE TABLE claim_run_logs (run INTEGER NOT NULL, log INTEGER NOT NULL,
          end_index INTEGER NOT NULL, PRIMARY KEY (run, log)) WITHOUT ROWID;
        CREATE TABLE claim_blocks (run INTEGER NOT NULL, seq INTEGER NOT NULL,
          last_key INTEGER NOT NULL, data BLOB NOT NULL, PRIMARY KEY (run, seq)) WITHOUT ROWID;
        CREATE INDEX claim_blocks_by_key ON claim_blocks (run, last_key, seq);`);
      const records = [record(1, 1, 0, 3), record(1, 1, 1, 2), record(2, 2, 5), record(9, 1, 7)];
      const block = (rs: IndexRecord[]) =>
        Buffer.concat(
          rs.map((r) => {
            const b = Buffer.alloc(48);
            b.writeUIntBE(r.key, 0, 6);
            b.writeUInt32BE(r.log, 6);
            b.writeUIntBE(r.index, 10, 6);
            b.set(r.answer, 16);
            return b;
          }),
        );
      const insert = db.prepare('INSERT INTO claim_blocks VALUES (?, ?, ?, ?)');
      insert.run(1, 0, 1, block(records.slice(0, 2)));
      insert.run(1, 1, 2, block(records.slice(2, 3)));
      insert.run(2, 0, 9, block(records.slice(3)));
      const index = new ClaimIndex(db, { blockRecords: 3, fanout: 3 });
      expect(plain(index.scan())).toEqual(plain([...records].sort(order)));
      expect(plain(index.lookup(1))).toEqual(plain([record(1, 1, 1, 2), record(1, 1, 0, 3)]));
      const tables = db
        .prepare("SELECT name FROM sqlite_master WHERE name LIKE 'claim%' ORDER BY name")
        .pluck()
        .all();
      expect(tables).toEqual([
        'claim_blocks',
        'claim_blocks_by_last',
        'claim_run_logs',
        'claim_runs',
      ]);
      // Opening it again moves nothing more.
      expect(plain(new ClaimIndex(db).scan())).toEqual(plain([...records].sort(order)));
    } finally {
      db.close();
    }
  });

  it('keeps full 48-bit keys and indexes', () => {
    withIndex((index) => {
      const big = record(2 ** 48 - 1, 2 ** 32 - 1, 2 ** 48 - 2);
      index.add([big, record(0, 0, 0)]);
      expect(plain(index.lookup(2 ** 48 - 1))).toEqual(plain([big]));
    });
  });
});
