import { readFileSync } from 'node:fs';
import { brotliCompressSync, constants, gzipSync } from 'node:zlib';
import { describe, expect, test } from 'vitest';
import { decompress } from './decompress.js';
import { NixError } from './errors.js';
import { formatHash } from './hash.js';
import { hashNarStream } from './nar-hash.js';

const FIXTURES = new URL('../../test/fixtures/nar/', import.meta.url);
const fixture = (name: string) => readFileSync(new URL(name, FIXTURES));

const TREE_NAR = fixture('tree.nar');
const TREE_HASH = 'sha256:038fxarzvzdjszsc6h7yzg5nv5qad0m6053g51rq9fz1aka9sq53';
const BIG_HASH = 'sha256:0fxgb2qb6j9yiykxwa7m17l7zx635jsbb98gd30m0a5yybfgs28z';
const BIG_SIZE = 4253680;

/** Yields `bytes` in pieces of `size`, as a network stream would. */
async function* chunks(bytes: Uint8Array, size: number): AsyncGenerator<Uint8Array> {
  for (let i = 0; i < bytes.length; i += size) {
    await Promise.resolve();
    yield bytes.subarray(i, i + size);
  }
}

async function collect(stream: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const parts: Uint8Array[] = [];
  for await (const c of stream) parts.push(c);
  return Buffer.concat(parts);
}

describe('decompress()', () => {
  test.each([
    ['none', 'tree.nar'],
    ['xz', 'tree.nar.xz'],
    ['zstd', 'tree.nar.zst'],
    ['bzip2', 'tree.nar.bz2'],
    ['gzip', 'tree.nar.gz'],
    ['br', 'tree.nar.br'],
  ])(
    '%s: files made by the Debian tools decode to the NAR, fed in 7-byte pieces',
    async (c, file) => {
      const out = await collect(decompress(c, chunks(fixture(file), 7)));
      expect(out.equals(TREE_NAR)).toBe(true);
    },
  );

  test.each([
    ['xz', 'big.nar.xz'],
    ['zstd', 'big.nar.zst'],
    ['bzip2', 'big.nar.bz2'],
  ])('%s: a 4 MB NAR streams through and hashes to its NAR hash', async (c, file) => {
    const summary = await hashNarStream(decompress(c, chunks(fixture(file), 4096)));
    expect(formatHash(summary.narHash)).toBe(BIG_HASH);
    expect(summary.narSize).toBe(BIG_SIZE);
  });

  test('gzip and br of a 4 MB NAR made in the test decode in 1000-byte pieces', async () => {
    const nar = await collect(decompress('xz', chunks(fixture('big.nar.xz'), 65536)));
    for (const [c, packed] of [
      ['gzip', gzipSync(nar)],
      ['br', brotliCompressSync(nar, { params: { [constants.BROTLI_PARAM_QUALITY]: 4 } })],
    ] as const) {
      const summary = await hashNarStream(decompress(c, chunks(packed, 1000)));
      expect(formatHash(summary.narHash)).toBe(BIG_HASH);
    }
  });

  test.each(['xz', 'zstd', 'bzip2', 'gzip', 'br'])(
    '%s: garbage and truncated input are NixErrors',
    async (c) => {
      const garbage = Buffer.from('this is not compressed data at all, not even a little');
      await expect(collect(decompress(c, chunks(garbage, 5)))).rejects.toThrow(NixError);
      const ext = { xz: 'xz', zstd: 'zst', bzip2: 'bz2', gzip: 'gz', br: 'br' }[c] ?? '';
      const packed = fixture(`tree.nar.${ext}`);
      const truncated = collect(decompress(c, chunks(packed.subarray(0, packed.length - 20), 64)));
      await expect(truncated).rejects.toThrow(NixError);
    },
  );

  test.each(['xz', 'zstd', 'bzip2'])(
    '%s: streams decode concurrently, and an abandoned one blocks none',
    async (c) => {
      const ext = { xz: 'xz', zstd: 'zst', bzip2: 'bz2' }[c] ?? '';
      const abandoned = decompress(c, chunks(fixture(`big.nar.${ext}`), 4096))[
        Symbol.asyncIterator
      ]();
      await abandoned.next();
      const all = await Promise.all(
        [1, 2, 3].map(() => hashNarStream(decompress(c, chunks(fixture(`big.nar.${ext}`), 8192)))),
      );
      for (const summary of all) expect(formatHash(summary.narHash)).toBe(BIG_HASH);
      await abandoned.return(undefined);
    },
  );

  test('refuses output beyond maxOutput (a decompression bomb guard)', async () => {
    const run = collect(
      decompress('xz', chunks(fixture('big.nar.xz'), 4096), { maxOutput: 1_000_000 }),
    );
    await expect(run).rejects.toThrow(/exceeds 1000000 bytes/);
  });

  test('an unsupported compression is a NixError naming it; input failures pass through', async () => {
    await expect(collect(decompress('lz4', chunks(TREE_NAR, 10)))).rejects.toThrow(
      /"lz4" is not supported/,
    );
    async function* broken(): AsyncGenerator<Uint8Array> {
      await Promise.resolve();
      yield fixture('tree.nar.gz').subarray(0, 10);
      throw new Error('connection reset');
    }
    await expect(collect(decompress('gzip', broken()))).rejects.toThrow('connection reset');
  });

  test('the hash of a decoded NAR matches nix-store --dump of the tree', async () => {
    const summary = await hashNarStream(decompress('zstd', chunks(fixture('tree.nar.zst'), 3)));
    expect(formatHash(summary.narHash)).toBe(TREE_HASH);
  });
});
