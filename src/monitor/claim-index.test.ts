import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type SqliteDatabase, openSqlite } from '../db/index.js';
import { ClaimIndex, sameAnswer, type IndexRecord } from './claim-index.js';

const record = (key: number, log: number, index: number, answer = index): IndexRecord => ({
  key,
  log,
  index,
  answer: Buffer.alloc(32, answer % 256),
});
const plain = (records: Iterable<IndexRecord>) =>
  [...records].map((r) => [r.key, r.log, r.index, Buffer.from(r.answer).toString('hex')]);
const order = (a: IndexRecord, b: IndexRecord) =>
  a.key - b.key || a.log - b.log || a.index - b.index;

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
          }
          const expected = plain(model.sort(order));
          expect(plain(index.scan())).toEqual(expected);
          for (let key = 0; key <= 12; key++)
            expect(plain(index.lookup(key))).toEqual(expected.filter((r) => r[0] === key));
        }, block);
      }),
      { numRuns: 300 },
    );
  });

  it('keeps full 48-bit keys and indexes', () => {
    withIndex((index) => {
      const big = record(2 ** 48 - 1, 2 ** 32 - 1, 2 ** 48 - 2);
      index.add([big, record(0, 0, 0)]);
      expect(plain(index.lookup(2 ** 48 - 1))).toEqual(plain([big]));
    });
  });
});
