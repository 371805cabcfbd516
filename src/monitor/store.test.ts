import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { hashPartOf, makeClaim } from '../../test/support/claims.js';
import { addLog } from '../../test/support/monitor-store.js';
import { type ClaimJson, entryFromJson } from '../claim/index.js';
import { openSqlite } from '../db/index.js';
import { formatEntryBundle } from '../tlog/index.js';
import { answerDigest } from './bundles.js';
import { pathReport } from './server.js';
import { MANY_PATHS, MAX_ANSWERS_PER_LOG, MonitorStore, pathFindingKey } from './store.js';

const bytes = (c: ClaimJson) => Buffer.from(entryFromJson(c).entry);

describe('answerDigest()', () => {
  it('is equal for equal answers whatever the deriver, and differs with the NAR hash', () => {
    const a = makeClaim(3);
    const b = { ...a, deriver: `${hashPartOf(99)}-other.drv` };
    expect(answerDigest(bytes(b))).toEqual(answerDigest(bytes(a)));
    expect(answerDigest(bytes(makeClaim(3, 1)))).not.toEqual(answerDigest(bytes(a)));
  });

  it('hashes the entry from its nar-hash line to its last reference line, deriver or not', () => {
    const noDeriver: ClaimJson = { ...makeClaim(5) };
    delete noDeriver.deriver;
    const manyReferences = {
      ...makeClaim(6),
      references: ['a', 'b', 'c'].map((s) => `${hashPartOf(7, s)}-r`),
    };
    for (const claim of [makeClaim(0), makeClaim(5), noDeriver, manyReferences]) {
      const text = Buffer.from(bytes(claim)).toString('latin1');
      const end = claim.deriver === undefined ? text.length : text.indexOf('deriver ');
      const expected = createHash('sha256')
        .update(text.slice(text.indexOf('nar-hash '), end), 'latin1')
        .digest();
      expect(Buffer.from(answerDigest(bytes(claim)))).toEqual(expected);
    }
    expect(answerDigest(bytes(noDeriver))).toEqual(answerDigest(bytes(makeClaim(5))));
  });
});

describe('MonitorStore conflicts', () => {
  // Log a claims paths 0…3; log b claims 0 and 1 the same (b with another deriver for 1), 2
  // with another NAR hash, and 3 twice, the second time with another NAR hash.
  const otherDeriver = { ...makeClaim(1), deriver: `${hashPartOf(77)}-other.drv` };
  const a = [0, 1, 2, 3].map((i) => makeClaim(i));
  const b = [makeClaim(0), otherDeriver, makeClaim(2, 1), makeClaim(3), makeClaim(3, 2)];

  for (const many of [false, true]) {
    it(`finds the paths whose answers differ, not those whose derivers do (${many ? 'one pass' : 'path by path'})`, () => {
      const store = new MonitorStore(':memory:');
      try {
        addLog(store, 'a', a);
        addLog(store, 'b', b);
        const paths = b.map((c) => entryFromJson(c).claim.storePath.hashPart);
        // More paths than MANY_PATHS take the pass over the whole index.
        const asked = many ? [...paths, ...Array<string>(MANY_PATHS).fill(hashPartOf(0))] : paths;
        expect(store.conflictingPaths('b', 0, b.length, asked).sort()).toEqual(
          [hashPartOf(2), hashPartOf(3)].sort(),
        );
        expect(store.claims(hashPartOf(1)).map((c) => c.origin)).toEqual(['a', 'b']);
        expect(new Set(store.claims(hashPartOf(1)).map((c) => c.answer)).size).toBe(1);
        expect(store.claims(hashPartOf(3)).map((c) => [c.origin, c.index])).toEqual([
          ['a', 3],
          ['b', 3],
          ['b', 4],
        ]);
      } finally {
        store.close();
      }
    });
  }

  for (const many of [false, true]) {
    it(`sees every log's claims about a path however many one log makes (${many ? 'one pass' : 'path by path'})`, () => {
      const store = new MonitorStore(':memory:');
      try {
        // Log a (whose origin sorts first) claims path 0 1,500 times; log b disagrees once.
        addLog(
          store,
          'a',
          Array.from({ length: 1500 }, () => makeClaim(0)),
        );
        addLog(store, 'b', [makeClaim(0, 1)]);
        const asked = many ? Array<string>(MANY_PATHS + 1).fill(hashPartOf(0)) : [hashPartOf(0)];
        expect(store.conflictingPaths('b', 0, 1, asked)).toEqual([hashPartOf(0)]);
        const claims = store.claims(hashPartOf(0));
        expect(claims.map((c) => [c.origin, c.index])).toEqual([
          ['a', 0],
          ['b', 0],
        ]);
        expect(new Set(claims.map((c) => c.answer)).size).toBe(2);
        const report = pathReport(store, hashPartOf(0), '/nix/store');
        expect(report.agree).toBe(false);
        expect(report.claims.map((c) => [c.log, c.narHash])).toEqual([
          ['a', makeClaim(0).narHash],
          ['b', makeClaim(0, 1).narHash],
        ]);
      } finally {
        store.close();
      }
    });
  }

  it('keeps each distinct answer of a log about a path, up to the cap, whatever came before', () => {
    const store = new MonitorStore(':memory:');
    try {
      // 1,200 repeats, then another answer, then more distinct answers than the cap.
      const claims = [
        ...Array.from({ length: 1200 }, () => makeClaim(0)),
        makeClaim(0, 1),
        ...Array.from({ length: MAX_ANSWERS_PER_LOG + 5 }, (_, v) => makeClaim(0, v + 2)),
      ];
      addLog(store, 'a', claims);
      addLog(store, 'b', [makeClaim(0, 1)]);
      const found = store.claims(hashPartOf(0));
      expect(found.filter((c) => c.origin === 'a')).toHaveLength(MAX_ANSWERS_PER_LOG);
      expect(found.filter((c) => c.origin === 'b').map((c) => c.index)).toEqual([0]);
      // Each of a's answers is listed with the first claim that made it.
      const firsts = new Map<string, number>();
      claims.forEach((c, index) => {
        const answer = Buffer.from(answerDigest(bytes(c))).toString('hex');
        if (!firsts.has(answer)) firsts.set(answer, index);
      });
      for (const c of found.filter((f) => f.origin === 'a'))
        expect(c.index).toBe(firsts.get(c.answer));
    } finally {
      store.close();
    }
  });

  it('answers with the claim written again for an entry after an ingest cut short', () => {
    const store = new MonitorStore(':memory:');
    try {
      // Entry 0 written unverified with one answer; the next ingest drops it first, as the log
      // may now serve another entry at that index, which is verified.
      const first = bytes(makeClaim(0));
      const second = bytes(makeClaim(0, 1));
      for (const e of [first, second]) {
        store.dropUnverified('a');
        store.addEntries(
          'a',
          [{ index: 0, data: formatEntryBundle([e]) }],
          [{ hashPart: hashPartOf(0), index: 0, answer: answerDigest(e) }],
          [],
          1,
        );
      }
      store.verified('a', 1, new Uint8Array(32), 'a checkpoint');
      expect(store.claims(hashPartOf(0)).map((c) => c.answer)).toEqual([
        Buffer.from(answerDigest(second)).toString('hex'),
      ]);
    } finally {
      store.close();
    }
  });

  it('ignores claims beyond a log’s verified size, and drops them (bundles kept gzip-encoded)', () => {
    const store = new MonitorStore(':memory:');
    try {
      addLog(store, 'a', a, true);
      const entries = [...a, makeClaim(2, 1)].map(bytes);
      store.addEntries(
        'a',
        [{ index: 0, data: gzipSync(formatEntryBundle(entries)), gzip: true }],
        [{ hashPart: hashPartOf(2), index: 4, answer: answerDigest(entries[4] as Buffer) }],
        [],
        5,
      );
      expect(store.claims(hashPartOf(2)).map((c) => c.index)).toEqual([2]);
      store.dropUnverified('a');
      expect(store.bundle('a', 0)).toEqual(formatEntryBundle(entries.slice(0, 4)));
      store.verified('a', 5, new Uint8Array(32), 'a checkpoint');
      expect(store.claims(hashPartOf(2)).map((c) => c.index)).toEqual([2]);
    } finally {
      store.close();
    }
  });
});

describe('MonitorStore state from before the claim index and gzip-encoded bundles', () => {
  it('moves the rows of the claims table into the index, and reads plain bundles', () => {
    const dir = mkdtempSync(join(tmpdir(), 'accord-monitor-store-'));
    const path = join(dir, 'monitor.db');
    try {
      const before = new MonitorStore(path);
      addLog(
        before,
        'a',
        [0, 1, 2].map((i) => makeClaim(i)),
      );
      before.close();
      // Turn the state back into the old layout: one row per claim, no index.
      const db = openSqlite(path);
      const blocks = db.prepare<[], Buffer>('SELECT data FROM claim_blocks').pluck().all();
      db.exec(`CREATE TABLE claims (path_key INTEGER NOT NULL, log INTEGER NOT NULL,
        idx INTEGER NOT NULL, answer BLOB NOT NULL, PRIMARY KEY (path_key, log, idx)) WITHOUT ROWID;
        DELETE FROM claim_blocks; DELETE FROM claim_run_logs; DELETE FROM claim_runs;
        CREATE TABLE plain (id INTEGER PRIMARY KEY, data BLOB NOT NULL);
        INSERT INTO plain SELECT id, data FROM bundles; DROP TABLE bundles;
        ALTER TABLE plain RENAME TO bundles;`);
      const insert = db.prepare('INSERT INTO claims VALUES (?, ?, ?, ?)');
      for (const block of blocks)
        for (let at = 0; at < block.length; at += 48)
          insert.run(
            block.readUIntBE(at, 6),
            block.readUInt32BE(at + 6),
            block.readUIntBE(at + 42, 6),
            block.subarray(at + 10, at + 42),
          );
      expect(blocks).toHaveLength(1);
      db.close();

      const after = new MonitorStore(path);
      try {
        for (const i of [0, 1, 2]) {
          expect(after.claims(hashPartOf(i)).map((c) => [c.origin, c.index, c.answer])).toEqual([
            ['a', i, Buffer.from(answerDigest(bytes(makeClaim(i)))).toString('hex')],
          ]);
        }
        expect(
          after.db
            .prepare("SELECT COUNT(*) FROM sqlite_master WHERE name = 'claims'")
            .pluck()
            .get(),
        ).toBe(0);
      } finally {
        after.close();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('MonitorStore findings', () => {
  it('putFinding() records a finding once, then updates it in place when it changes', () => {
    const store = new MonitorStore(':memory:');
    try {
      const key = pathFindingKey('disagreement', hashPartOf(0));
      const first = store.putFinding(key, 'disagreement', 'one', { n: 1 });
      expect(first.change).toBe('new');
      expect(store.putFinding(key, 'disagreement', 'one', { n: 1 }).change).toBe('none');
      const second = store.putFinding(key, 'disagreement', 'two', { n: 2 });
      expect(second.change).toBe('updated');
      expect(store.findings()).toEqual([
        { ...first.finding, summary: 'two', evidence: { n: 2 }, updated: second.finding.updated },
      ]);
      expect(store.finding(key)?.updated).toBeGreaterThanOrEqual(first.finding.at);
    } finally {
      store.close();
    }
  });

  it('keeps the latest finding of each path and kind from state that kept one per set of answers', () => {
    const dir = mkdtempSync(join(tmpdir(), 'accord-monitor-findings-'));
    const path = join(dir, 'monitor.db');
    try {
      const before = new MonitorStore(path);
      const evidence = (i: number, n: number) => ({ hashPart: hashPartOf(i), claims: [], n });
      before.addFinding('fork a 1:x 1:y', 'fork', 'fork', {});
      before.addFinding(`disagreement ${hashPartOf(0)} d1`, 'disagreement', 'old', evidence(0, 1));
      before.addFinding(
        `log-equivocation a ${hashPartOf(0)} d1`,
        'log-equivocation',
        'a',
        evidence(0, 1),
      );
      before.addFinding(`disagreement ${hashPartOf(0)} d2`, 'disagreement', 'new', evidence(0, 2));
      before.addFinding(
        `log-equivocation b ${hashPartOf(0)} d2`,
        'log-equivocation',
        'b',
        evidence(0, 2),
      );
      before.addFinding(
        `disagreement ${hashPartOf(1)} d3`,
        'disagreement',
        'other',
        evidence(1, 3),
      );
      // Drop the column of update times, as in state from before it.
      before.db.exec('ALTER TABLE findings DROP COLUMN updated');
      before.close();
      const after = new MonitorStore(path);
      try {
        expect(after.findings().map((f) => [f.kind, f.summary])).toEqual([
          ['fork', 'fork'],
          ['disagreement', 'new'],
          ['log-equivocation', 'b'],
          ['disagreement', 'other'],
        ]);
        expect(after.finding(pathFindingKey('disagreement', hashPartOf(0)))?.summary).toBe('new');
        expect(after.finding(pathFindingKey('log-equivocation', hashPartOf(0)))?.summary).toBe('b');
        expect(after.finding(pathFindingKey('disagreement', hashPartOf(1)))?.summary).toBe('other');
        const [fork] = after.findings();
        expect(fork?.updated).toBe(fork?.at);
      } finally {
        after.close();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('MonitorStore.latestFindings()', () => {
  it('lists the newest findings first, of one kind when asked, with the path they are about', () => {
    const store = new MonitorStore(join(mkdtempSync(join(tmpdir(), 'accord-findings-')), 'm.db'));
    try {
      const h = '0123456789abcdfghijklmnpqrsvwxyz';
      store.addFinding(`disagreement ${h}`, 'disagreement', 'one', { hashPart: h });
      store.addFinding('fork log-a', 'fork', 'two', {});
      store.addFinding(`log-equivocation ${h}`, 'log-equivocation', 'three', {});
      expect(store.latestFindings(2).map((f) => f.summary)).toEqual(['three', 'two']);
      expect(store.latestFindings(10).map((f) => f.hashPart)).toEqual([h, null, h]);
      expect(store.latestFindings(10, 'disagreement').map((f) => f.summary)).toEqual(['one']);
    } finally {
      store.close();
    }
  });
});
