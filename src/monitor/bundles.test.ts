import { type Server, createServer } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashPartOf, makeClaim } from '../../test/support/claims.js';
import { entryFromJson } from '../claim/index.js';
import { FetchError, close, listen } from '../server/index.js';
import { TILE_WIDTH, formatEntryBundle, hashLeaf } from '../tlog/index.js';
import {
  type ReadBundle,
  answerDigest,
  bundlesOnWorker,
  fetchBundles,
  hashPartAt,
  readBundle,
} from './bundles.js';

const entry = (i: number, variant = 0) => Buffer.from(entryFromJson(makeClaim(i, variant)).entry);
const bundleOf = (b: number, width = TILE_WIDTH) =>
  formatEntryBundle(Array.from({ length: width }, (_, j) => entry(b * TILE_WIDTH + j)));

describe('readBundle()', () => {
  it('gives every leaf hash, and the claim or the reason of each entry', () => {
    const bad = Buffer.from('not an entry\n');
    const entries = [entry(0), bad, entry(2)];
    const read = readBundle(7, formatEntryBundle(entries), 3, '/nix/store');
    expect(read.index).toBe(7);
    for (const [j, e] of entries.entries()) {
      expect(Buffer.from(read.leaves.subarray(32 * j, 32 * j + 32))).toEqual(
        Buffer.from(hashLeaf(e)),
      );
    }
    expect([...read.positions]).toEqual([0, 2]);
    expect([hashPartAt(read, 0), hashPartAt(read, 1)]).toEqual([hashPartOf(0), hashPartOf(2)]);
    expect(Buffer.from(read.answers.subarray(32, 64))).toEqual(Buffer.from(answerDigest(entry(2))));
    expect(read.invalid.map((i) => i.position)).toEqual([1]);
    expect(read.invalid[0]?.reason).toMatch(/first line/);
  });

  it('rejects a bundle whose entry count is not its width', () => {
    expect(() => readBundle(0, formatEntryBundle([entry(0)]), 2, '/nix/store')).toThrow(
      /1 entries, want 2/,
    );
  });
});

describe('answerDigest()', () => {
  it('is equal for equal answers whatever the deriver, and differs with the NAR hash', () => {
    const a = makeClaim(3);
    const b = { ...a, deriver: `${hashPartOf(99)}-other.drv` };
    const digest = (c: typeof a) => answerDigest(Buffer.from(entryFromJson(c).entry));
    expect(digest(b)).toEqual(digest(a));
    expect(digest(makeClaim(3, 1))).not.toEqual(digest(a));
  });
});

describe('bundlesOnWorker()', () => {
  // A log of 3.5 bundles whose bundle 2 is missing and whose bundle 5 is malformed.
  const size = 3 * TILE_WIDTH + 128;
  let server: Server;
  let url: string;
  const job = (first: number, end: number, jobSize = size) => ({
    url,
    first,
    end,
    size: jobSize,
    storeDir: '/nix/store',
    timeoutMs: 5000,
    concurrency: 2,
  });
  const collect = async (bundles: AsyncIterable<ReadBundle>) => {
    const out: ReadBundle[] = [];
    for await (const b of bundles) out.push(b);
    return out;
  };

  beforeAll(async () => {
    server = createServer((req, res) => {
      const m = /^\/tile\/entries\/(\d+)(\.p\/(\d+))?$/.exec(req.url ?? '');
      const b = Number(m?.[1]);
      if (m === null || b === 2) return void res.writeHead(404).end();
      const body = b === 5 ? Buffer.from([0, 9, 1]) : bundleOf(b, Number(m[3] ?? TILE_WIDTH));
      res.writeHead(200).end(body);
    });
    url = await listen(server, '127.0.0.1', 0);
  });
  afterAll(() => close(server));

  it('yields the bundles in order, read as in this thread', async () => {
    const onWorker = await collect(bundlesOnWorker(job(0, 2)));
    const here = await collect(fetchBundles(job(0, 2)));
    expect(onWorker.map((b) => b.index)).toEqual([0, 1]);
    expect(onWorker.map((b) => [b.leaves, b.positions, b.hashParts, b.answers])).toEqual(
      here.map((b) => [b.leaves, b.positions, b.hashParts, b.answers]),
    );
    expect(Buffer.from(onWorker[1]?.data ?? [])).toEqual(bundleOf(1));
  });

  it('reads the partial bundle at the end of the tree', async () => {
    const [last] = await collect(bundlesOnWorker(job(3, 4)));
    expect(last?.positions.length).toBe(128);
    expect(hashPartAt(last as ReadBundle, 127)).toBe(hashPartOf(3 * TILE_WIDTH + 127));
  });

  it('fails with a FetchError naming the bundle the log does not serve', async () => {
    const bundles: ReadBundle[] = [];
    const error = await (async () => {
      for await (const b of bundlesOnWorker(job(0, 4))) bundles.push(b);
    })().catch((e: unknown) => e);
    expect(bundles.map((b) => b.index)).toEqual([0, 1]);
    expect(error).toBeInstanceOf(FetchError);
    expect((error as FetchError).status).toBe(404);
    expect((error as FetchError).message).toMatch(/tile\/entries\/002: HTTP 404/);
  });

  it('fails with the reason when a bundle is malformed', async () => {
    const error = await collect(bundlesOnWorker(job(5, 6, 6 * TILE_WIDTH))).catch(
      (e: unknown) => e,
    );
    expect(error).not.toBeInstanceOf(FetchError);
    expect((error as Error).message).toMatch(/entry bundle/);
  });
});
