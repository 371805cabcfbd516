/**
 * Decompression bombs for the tests and the bench: the fixtures in test/fixtures/bombs/ (zeros
 * compressed by the Debian tools) and two zstd frames built here (RFC 8878 §3.1.1).
 */
import { existsSync, readFileSync } from 'node:fs';

// bench/bombs.ts runs from the sources (tests) and from dist/bench/ (the bench).
const FIXTURES = ['../test/fixtures/bombs/', '../../test/fixtures/bombs/']
  .map((p) => new URL(p, import.meta.url))
  .find((u) => existsSync(u));
const fixture = (name: string) => readFileSync(new URL(name, FIXTURES));

/** A zstd block header: last flag, type (0 raw, 1 RLE, 2 compressed), size. */
function blockHeader(last: boolean, type: number, size: number): number[] {
  const h = (size << 3) | (type << 1) | (last ? 1 : 0);
  return [h & 0xff, (h >> 8) & 0xff, (h >> 16) & 0xff];
}

/** An RLE block of 128 KiB zeros: 4 bytes. */
const rle = (last: boolean) => [...blockHeader(last, 1, 128 << 10), 0];

/**
 * A 22-byte zstd frame whose window descriptor declares 1.875 GiB (exponent 20, mantissa 7),
 * followed by four RLE blocks of 128 KiB.
 */
export function zstdWindowBomb(): Buffer {
  return Buffer.from([
    0x28,
    0xb5,
    0x2f,
    0xfd,
    0x00,
    (20 << 3) | 7,
    ...rle(false),
    ...rle(false),
    ...rle(false),
    ...rle(true),
  ]);
}

/**
 * A zstd frame with a 128 MiB window (the largest accepted) and `blocks` RLE blocks of one
 * byte each (4 bytes of input per byte of output): fzstd shifts its whole window for each.
 */
export function zstdBlockFlood(blocks = 400): Buffer {
  const body: number[] = [];
  for (let i = 0; i < blocks; i++) body.push(...blockHeader(i === blocks - 1, 1, 1), 0);
  return Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0x00, 17 << 3, ...body]);
}

/** Every bomb, by name: its narinfo compression and its bytes. */
export function bombs(): { name: string; compression: string; bytes: Buffer }[] {
  return [
    { name: 'zstd window', compression: 'zstd', bytes: zstdWindowBomb() },
    { name: 'zstd block flood', compression: 'zstd', bytes: zstdBlockFlood() },
    { name: 'bzip2', compression: 'bzip2', bytes: fixture('zeros-1g.bz2') },
    { name: 'xz', compression: 'xz', bytes: fixture('zeros-256m.xz') },
    { name: 'gzip', compression: 'gzip', bytes: fixture('zeros-48m.gz') },
    { name: 'brotli', compression: 'br', bytes: fixture('zeros-1g.br') },
  ];
}
