import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { brotliCompressSync, constants, gzipSync } from 'node:zlib';
import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { bombs, bzip2SymbolFlood } from '../../bench/bombs.js';
import { DecodeOutput } from './decode-output.js';
import { decompress } from './decompress.js';
import { NixError } from './errors.js';
import { formatHash } from './hash.js';
import { hashNarStream } from './nar-hash.js';
import { ZstdDecoder } from './zstd.js';

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

/** Runs a Debian compression tool (installed by scripts/install-test-deps.sh) over `input`. */
function tool(command: string, args: string[], input: Uint8Array): Buffer {
  const run = spawnSync(command, args, { input, maxBuffer: 1 << 28 });
  if (run.status !== 0) throw new Error(`${command} failed: ${String(run.stderr)}`);
  return run.stdout;
}

/** Settles `run`, counting the event-loop turns (setImmediate callbacks) taken meanwhile. */
async function turnsDuring(run: Promise<unknown>): Promise<{ turns: number; error: unknown }> {
  let turns = 0;
  let settled = false;
  const tick = () => {
    if (settled) return;
    turns++;
    setImmediate(tick);
  };
  setImmediate(tick);
  let error: unknown;
  try {
    await run;
  } catch (e) {
    error = e;
  }
  settled = true;
  return { turns, error };
}

describe('decompress() against decompression bombs', () => {
  const MAX = 1_000_000;

  test.each(bombs().map((b) => [b.name, b] as const))(
    '%s: a NixError once past maxOutput (or before, for what cannot be honest), in turns of its own',
    async (name, bomb) => {
      const { turns, error } = await turnsDuring(
        collect(decompress(bomb.compression, chunks(bomb.bytes, 65536), { maxOutput: MAX })),
      );
      expect(error).toBeInstanceOf(NixError);
      expect((error as NixError).code).toBe('limit');
      const why = {
        'zstd window': /zstd frame window of 2013265920 bytes exceeds the cap of 134217728/,
        'zstd block flood': /zstd data has more than 64 blocks for 64 bytes of output/,
      }[name];
      expect((error as Error).message).toMatch(why ?? /decompressed data exceeds 1000000 bytes/);
      // Even a bomb refused at its first bytes is decoded in a turn of its own.
      expect(turns).toBeGreaterThanOrEqual(1);
    },
  );

  test.each([
    ['bzip2', 'zeros-1g.bz2'],
    ['xz', 'zeros-256m.xz'],
    ['gzip', 'zeros-48m.gz'],
  ])(
    '%s: a stream of bombs (concatenated members) is read no further than the first',
    async (c) => {
      const bomb = bombs().find((b) => b.compression === c)?.bytes ?? Buffer.alloc(0);
      let pulled = 0;
      async function* many(): AsyncGenerator<Uint8Array> {
        for (let i = 0; i < 1000; i++) {
          await Promise.resolve();
          pulled++;
          yield bomb;
        }
      }
      await expect(collect(decompress(c, many(), { maxOutput: MAX }))).rejects.toThrow(
        /exceeds 1000000 bytes/,
      );
      // bzip2 waits for a block's worth of input before it decodes (unless a block fits).
      expect(pulled).toBeLessThanOrEqual(2);
    },
  );

  test('zstd: a window above 128 MiB is refused before any block; 128 MiB itself decodes', async () => {
    const frame = (wd: number) =>
      Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0x00, wd, 0x19, 0x00, 0x00, 0x61, 0x62, 0x63]);
    // 2^27 + 2^27/8: the smallest window over the cap.
    await expect(collect(decompress('zstd', [frame((17 << 3) | 1)]))).rejects.toThrow(
      /window of 150994944 bytes exceeds the cap of 134217728/,
    );
    expect((await collect(decompress('zstd', [frame(17 << 3)]))).toString()).toBe('abc');
    // Single-segment frames: the window is the content size.
    const single = Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0xa0, 0, 0, 0, 0x09, 0x01, 0, 0, 0]);
    await expect(collect(decompress('zstd', [single]))).rejects.toThrow(/window of 150994944/);
  });

  test('ZstdDecoder keeps a window no larger than the output cap can reach (never under 128 KiB)', () => {
    const header = (wd: number) => Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0x00, wd]);
    const kept = (wd: number, max: number) => {
      const decoder = new ZstdDecoder(new DecodeOutput(max));
      decoder.write(header(wd));
      return decoder.keptWindow;
    };
    expect(kept(17 << 3, 1_000_000)).toBe(1 << 20); // 128 MiB declared, 1 MB cap
    expect(kept(17 << 3, 100)).toBe(128 << 10);
    expect(kept(17 << 3, Number.MAX_SAFE_INTEGER)).toBe(1 << 27);
    expect(kept(1 << 3, 1_000_000)).toBe(2 << 10); // declared 2 KiB: kept as it is
  });

  test('zstd: data made with a 128 MiB window and far matches decodes under a cap near its size', async () => {
    const half = randomBytes(3 << 20);
    const data = Buffer.concat([half, half]);
    const packed = tool('zstd', ['-q', '-c', '--long=27', '-3'], data);
    expect(packed[5]).toBe(17 << 3); // the window descriptor: 128 MiB
    expect(packed.length).toBeLessThan(half.length + 100_000); // the far match was used
    const out = await collect(
      decompress('zstd', chunks(packed, 65536), { maxOutput: data.length }),
    );
    expect(out.equals(data)).toBe(true);
  });

  test('zstd: skippable frames, several frames, checksums and empty frames decode', async () => {
    const skippable = Buffer.from([0x53, 0x2a, 0x4d, 0x18, 3, 0, 0, 0, 1, 2, 3]);
    const a = tool('zstd', ['-q', '-c'], Buffer.from('first '));
    const b = tool('zstd', ['-q', '-c', '--no-check'], Buffer.from('second'));
    const empty = tool('zstd', ['-q', '-c'], Buffer.alloc(0));
    const all = Buffer.concat([skippable, a, empty, skippable, b]);
    expect((await collect(decompress('zstd', chunks(all, 1)))).toString()).toBe('first second');
  });

  test.each<[string, number[], RegExp]>([
    ['a reserved block type', [0x00, 0x58, 0x07, 0x00, 0x00], /reserved type/],
    [
      'a block over the 128 KiB maximum',
      [0x00, 0x88, 0x09, 0x00, 0x10, 0x61],
      /exceeds the frame's maximum of 131072/,
    ],
    ['a dictionary', [0x01, 0x58, 0x07, 0x01, 0x00, 0x00], /needs dictionary 7/],
    ['a reserved header bit', [0x08, 0x58, 0x01, 0x00, 0x00], /reserved bit/],
    [
      'a content size that is not what it holds',
      [0x20, 0x05, 0x19, 0x00, 0x00, 0x61, 0x62, 0x63],
      /3 bytes, its header says 5/,
    ],
  ])('zstd: a frame with %s is refused with a NixError naming it', async (_, rest, why) => {
    const frame = Buffer.from([0x28, 0xb5, 0x2f, 0xfd, ...rest]);
    const run = collect(decompress('zstd', [frame]));
    await expect(run).rejects.toThrow(NixError);
    await expect(collect(decompress('zstd', [frame]))).rejects.toThrow(why);
  });

  test('zstd: a block flood may not outrun the output (honest frames have 128 KiB blocks)', async () => {
    // 70 blocks of one byte: over the 64 free blocks; 70 blocks of 128 KiB earn their place.
    const frame = (size: number) => {
      const blocks: number[] = [];
      for (let i = 0; i < 70; i++) {
        const h = (size << 3) | (1 << 1) | (i === 69 ? 1 : 0);
        blocks.push(h & 0xff, (h >> 8) & 0xff, h >> 16, 0x61);
      }
      return Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0x00, 17 << 3, ...blocks]);
    };
    await expect(collect(decompress('zstd', [frame(1)]))).rejects.toThrow(/more than 64 blocks/);
    const honest = decompress('zstd', [frame(128 << 10)], { maxOutput: 70 << 17 });
    expect((await collect(honest)).length).toBe(70 << 17);
  });

  test('xz: a file made by xz -9 (64 MiB dictionary) decodes; one needing more than the memlimit is refused', async () => {
    const data = Buffer.from('an xz test '.repeat(1000));
    const nine = tool('xz', ['-9', '-c'], data);
    expect((await collect(decompress('xz', chunks(nine, 100)))).equals(data)).toBe(true);
    const huge = tool('xz', ['-c', '--lzma2=dict=1536MiB'], data);
    await expect(collect(decompress('xz', [huge]))).rejects.toThrow(
      /cannot decompress xz data: .*[Mm]em/,
    );
  });

  test.each(['-1', '-9'])(
    'bzip2 %s: concatenated streams of text, runs and random bytes decode',
    async (level) => {
      const parts = [
        Buffer.from('bzip2 text '.repeat(50_000)),
        Buffer.concat([Buffer.alloc(300_000, 7), Buffer.from('end of runs')]),
        randomBytes(250_000),
        Buffer.alloc(0),
      ];
      const packed = Buffer.concat(parts.map((p) => tool('bzip2', [level, '-c'], p)));
      const out = await collect(decompress('bzip2', chunks(packed, 4096)));
      expect(out.equals(Buffer.concat(parts))).toBe(true);
    },
  );

  test('bzip2: with any one bit flipped, what bzip2 -d accepts decodes the same, the rest is a NixError', async () => {
    const packed = tool('bzip2', ['-9', '-c'], Buffer.from('bzip2 crc '.repeat(10_000)));
    // Not the last byte: its low bits are padding.
    for (let bit = 32; bit < (packed.length - 1) * 8; bit += 7) {
      const bad = Buffer.from(packed);
      bad[bit >> 3] = (bad[bit >> 3] ?? 0) ^ (1 << (bit & 7));
      const reference = spawnSync('bzip2', ['-d', '-c'], { input: bad });
      const run = collect(decompress('bzip2', [bad]));
      if (reference.status === 0) expect((await run).equals(reference.stdout)).toBe(true);
      else await expect(run).rejects.toThrow(NixError);
    }
  });

  test.each(['mtf', 'long-codes'] as const)(
    'bzip2: a block of 900,000 costly symbols (%s) is read in many turns, then refused',
    async (kind) => {
      const flood = bzip2SymbolFlood(kind);
      const { turns, error } = await turnsDuring(collect(decompress('bzip2', [flood])));
      expect(error).toBeInstanceOf(NixError);
      expect((error as Error).message).toMatch(/block CRC does not match/);
      // 899,999 symbols in steps of 65,536: at least 14 turns for them alone.
      expect(turns).toBeGreaterThanOrEqual(14);
    },
  );

  test('a legit 4 MB NAR decodes in many turns: the event loop runs between steps', async () => {
    for (const [c, file] of [
      ['zstd', 'big.nar.zst'],
      ['bzip2', 'big.nar.bz2'],
      ['xz', 'big.nar.xz'],
    ]) {
      const { turns, error } = await turnsDuring(
        collect(decompress(c ?? '', [fixture(file ?? '')])),
      );
      expect(error).toBeUndefined();
      expect(turns).toBeGreaterThan(10);
    }
  });
});

describe('decompress() on arbitrary bytes (property tests)', () => {
  const zstdHeader = [0x28, 0xb5, 0x2f, 0xfd];
  const bzip2Header = [0x42, 0x5a, 0x68, 0x39, 0x31, 0x41, 0x59, 0x26, 0x53, 0x59];

  test.each<[string, number[]]>([
    ['zstd', zstdHeader],
    ['bzip2', bzip2Header],
  ])(
    '%s: any bytes after a valid start decode or are a NixError, within the cap',
    async (c, start) => {
      await fc.assert(
        fc.asyncProperty(
          fc.uint8Array({ maxLength: 400 }),
          fc.integer({ min: 1, max: 64 }),
          async (tail, piece) => {
            const input = Buffer.concat([Buffer.from(start), tail]);
            try {
              const out = await collect(
                decompress(c, chunks(input, piece), { maxOutput: 1 << 20 }),
              );
              expect(out.length).toBeLessThanOrEqual(1 << 20);
            } catch (error) {
              expect(error).toBeInstanceOf(NixError);
            }
          },
        ),
        { numRuns: 300 },
      );
    },
  );

  test.each([
    ['zstd', 'tree.nar.zst'],
    ['bzip2', 'tree.nar.bz2'],
  ])(
    '%s: every truncation of a real file is a NixError, every bit flip decodes or is one',
    async (c, file) => {
      const packed = fixture(file);
      for (let n = 0; n < packed.length; n++)
        await expect(collect(decompress(c, [packed.subarray(0, n)]))).rejects.toThrow(NixError);
      for (let bit = 0; bit < packed.length * 8; bit++) {
        const bad = Buffer.from(packed);
        bad[bit >> 3] = (bad[bit >> 3] ?? 0) ^ (1 << (bit & 7));
        await collect(decompress(c, [bad], { maxOutput: 1 << 20 })).catch((error: unknown) => {
          expect(error).toBeInstanceOf(NixError);
        });
      }
    },
  );
});
