import { type Server, createServer } from 'node:http';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashPartOf, makeClaim } from '../../test/support/claims.js';
import { Chain, logKey } from '../../test/support/identity.js';
import { entryFromJson } from '../claim/index.js';
import { FetchError, close, listen } from '../server/index.js';
import { TILE_WIDTH, formatEntryBundle, hashLeaf } from '../tlog/index.js';
import {
  type ReadBundle,
  bundlesOnWorker,
  decodeBundle,
  fetchBundles,
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
    expect([read.hashParts[0], read.hashParts[1]]).toEqual([hashPartOf(0), hashPartOf(2)]);
    expect(read.invalidCount).toBe(1);
    expect(read.invalid.map((i) => i.position)).toEqual([1]);
    expect(read.invalid[0]?.reason).toMatch(/first line/);
  });

  it('tells key statements from claims and bad entries; a broken statement is a bad entry', () => {
    const chain = new Chain();
    const statement = Buffer.from(
      chain.next({ issued: 1, keys: [{ kind: 'log', key: logKey(1), from: 1 }], revocations: [] }),
    );
    const broken = Buffer.from('accord/keys/v1\nidentity x\n');
    const entries = [entry(0), statement, broken, Buffer.from('accord/keys/v1'), entry(4)];
    const read = readBundle(0, formatEntryBundle(entries), 5, '/nix/store');
    expect([...read.positions]).toEqual([0, 4]);
    expect([...read.statements]).toEqual([1]);
    expect(read.invalid.map((i) => i.position)).toEqual([2, 3]);
    expect(read.leaves.length).toBe(5 * 32);
  });

  it('reads from position skip on', () => {
    const entries = [entry(0), Buffer.from('bad\n'), entry(2), entry(3)];
    const read = readBundle(0, formatEntryBundle(entries), 4, '/nix/store', 2);
    expect(read.skip).toBe(2);
    expect(Buffer.from(read.leaves)).toEqual(
      Buffer.concat([hashLeaf(entries[2] as Buffer), hashLeaf(entries[3] as Buffer)]),
    );
    expect([...read.positions]).toEqual([2, 3]);
    expect(read.invalidCount).toBe(0);
  });

  it('counts every invalid entry but keeps few reasons, each cut short', () => {
    const huge = Buffer.from(`accord/build/v1\nstore-path ${'\u0001'.repeat(30_000)}\n`);
    const read = readBundle(0, formatEntryBundle(Array(100).fill(huge)), 100, '/nix/store');
    expect(read.invalidCount).toBe(100);
    expect(read.invalid).toHaveLength(20);
    expect(Math.max(...read.invalid.map((i) => i.reason.length))).toBeLessThanOrEqual(201);
  });

  it('rejects a bundle whose entry count is not its width', () => {
    expect(() => readBundle(0, formatEntryBundle([entry(0)]), 2, '/nix/store')).toThrow(
      /1 entries, want 2/,
    );
  });
});

describe('bundlesOnWorker()', () => {
  // A log of 3.5 bundles whose bundle 2 is missing and whose bundle 5 is malformed; bundle 0
  // comes last, so that an answer in arrival order would be seen. Bundle 1 comes gzip-encoded,
  // bundle 6 as something else that claims to be gzip, bundle 7 gzip-encoded and padded.
  const size = 3 * TILE_WIDTH + 128;
  let server: Server;
  let url: string;
  const job = (from: number, jobSize = size) => ({
    url,
    from,
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
  const fields = (b: ReadBundle) => [
    b.index,
    b.skip,
    Buffer.from(b.data),
    Buffer.from(b.leaves),
    [...b.positions],
    b.hashParts,
  ];

  beforeAll(async () => {
    server = createServer((req, res) => {
      const m = /^\/tile\/entries\/(\d+)(\.p\/(\d+))?$/.exec(req.url ?? '');
      const b = Number(m?.[1]);
      if (m === null || b === 2) return void res.writeHead(404).end();
      const body = b === 5 ? Buffer.from([0, 9, 1]) : bundleOf(b, Number(m[3] ?? TILE_WIDTH));
      const headers = b === 1 || b >= 6 ? { 'Content-Encoding': 'gzip' } : {};
      const padded = () => Buffer.concat([gzipSync(body), Buffer.alloc(1 << 20)]);
      const sent = b === 1 ? gzipSync(body) : b === 7 ? padded() : body;
      setTimeout(() => res.writeHead(200, headers).end(sent), b === 0 ? 100 : 0);
    });
    url = await listen(server, '127.0.0.1', 0);
  });
  afterAll(() => close(server));

  it('yields the bundles in order, read as in this thread', async () => {
    const twoBundles = job(0, 2 * TILE_WIDTH);
    const onWorker = await collect(bundlesOnWorker(twoBundles));
    expect(onWorker.map((b) => b.index)).toEqual([0, 1]);
    expect(onWorker.map(fields)).toEqual((await collect(fetchBundles(twoBundles))).map(fields));
    // Bundle 1 is kept as it came, gzip-encoded.
    expect(onWorker.map((b) => b.gzip)).toEqual([false, true]);
    expect(Buffer.from(decodeBundle(onWorker[1]?.data ?? new Uint8Array(), true))).toEqual(
      bundleOf(1),
    );
  });

  it('keeps a gzip encoding only when it is smaller than the bundle', async () => {
    const [padded] = await collect(fetchBundles(job(7 * TILE_WIDTH, 8 * TILE_WIDTH)));
    expect(padded?.gzip).toBe(false);
    expect(Buffer.from(padded?.data ?? new Uint8Array())).toEqual(bundleOf(7));
  });

  it('fails with a FetchError when a body said to be gzip does not decode', async () => {
    const error = await collect(fetchBundles(job(6 * TILE_WIDTH, 7 * TILE_WIDTH))).catch(
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(FetchError);
    expect((error as Error).message).toMatch(/entries\/006: the gzip body does not decode/);
  });

  it('waits for the consumer when its read-ahead is used up', async () => {
    const twoBundles = job(0, 2 * TILE_WIDTH);
    const oneAtATime = await collect(bundlesOnWorker(twoBundles, 1));
    expect(oneAtATime.map(fields)).toEqual((await collect(fetchBundles(twoBundles))).map(fields));
  });

  it('starts within the bundle of the verified size and reads the partial last one', async () => {
    const [last, ...more] = await collect(bundlesOnWorker(job(3 * TILE_WIDTH + 10)));
    expect(more).toEqual([]);
    expect([last?.index, last?.skip, last?.positions[0], last?.positions.length]).toEqual([
      3, 10, 10, 118,
    ]);
    expect(last?.leaves.length).toBe(32 * 118);
    expect(last?.hashParts[117]).toBe(hashPartOf(3 * TILE_WIDTH + 127));
  });

  it('fails with a FetchError naming the bundle the log does not serve', async () => {
    const bundles: ReadBundle[] = [];
    const error = await (async () => {
      for await (const b of bundlesOnWorker(job(0))) bundles.push(b);
    })().catch((e: unknown) => e);
    expect(bundles.map((b) => b.index)).toEqual([0, 1]);
    expect(error).toBeInstanceOf(FetchError);
    expect((error as FetchError).status).toBe(404);
    expect((error as FetchError).message).toMatch(/tile\/entries\/002: HTTP 404/);
  });

  it('fails with the reason when a bundle is malformed', async () => {
    const error = await collect(bundlesOnWorker(job(5 * TILE_WIDTH, 6 * TILE_WIDTH))).catch(
      (e: unknown) => e,
    );
    expect(error).not.toBeInstanceOf(FetchError);
    expect((error as Error).message).toMatch(/entry bundle/);
  });
});
