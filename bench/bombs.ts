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

/** Writes bits most significant first (bzip2's order). */
class BitWriter {
  private readonly bytes: number[] = [];
  private acc = 0;
  private n = 0;
  write(value: number, bits: number): void {
    for (let i = bits - 1; i >= 0; i--) {
      this.acc = (this.acc << 1) | ((value >>> i) & 1);
      if (++this.n === 8) {
        this.bytes.push(this.acc);
        this.acc = 0;
        this.n = 0;
      }
    }
  }
  finish(): Buffer {
    if (this.n > 0) this.write(0, 8 - this.n);
    return Buffer.from(this.bytes);
  }
}

/**
 * One bzip2 block (level 9) of 899,999 symbols made to cost its decoder the most per symbol:
 * every byte value in use, and each symbol either the one that moves the last of 256 entries
 * to the front of the MTF list (`'mtf'`, a 1-bit code) or a 20-bit code (`'long-codes'`). Its
 * CRC is wrong: the cost is paid before the CRC can be checked.
 */
export function bzip2SymbolFlood(kind: 'mtf' | 'long-codes'): Buffer {
  const w = new BitWriter();
  w.write(0x425a68, 24);
  w.write(0x39, 8); // level 9
  w.write(0x314159, 24);
  w.write(0x265359, 24);
  w.write(0, 32); // block CRC (wrong)
  w.write(0, 1); // not randomised
  w.write(0, 24); // origin pointer
  w.write(0xffff, 16);
  for (let i = 0; i < 16; i++) w.write(0xffff, 16); // all 256 byte values
  const symbols = 899_999;
  const selectors = Math.ceil((symbols + 1) / 50);
  w.write(2, 3); // two Huffman groups
  w.write(selectors, 15);
  for (let i = 0; i < selectors; i++) w.write(0, 1); // group 0 each time
  const alphaSize = 258;
  // Code lengths: `mtf`: symbol 256 (MTF index 255) gets 1 bit, the rest 10 bits;
  // `long-codes`: every symbol 20 bits, symbol 256 the first of them.
  const lengths = Array.from({ length: alphaSize }, (_, s) =>
    kind === 'mtf' ? (s === 256 ? 1 : 10) : 20,
  );
  for (let g = 0; g < 2; g++) {
    let len = lengths[0] ?? 1;
    w.write(len, 5);
    for (const target of lengths) {
      for (; len < target; len++) w.write(2, 2); // "10": one longer
      for (; len > target; len--) w.write(3, 2); // "11": one shorter
      w.write(0, 1);
    }
  }
  // Canonical codes: for `mtf`, symbol 256 has the only 1-bit code, 0; for `long-codes`,
  // codes are assigned in symbol order, so symbol 256 has the 257th, 256.
  const code = kind === 'mtf' ? 0 : 256;
  const bits = kind === 'mtf' ? 1 : 20;
  for (let i = 0; i < symbols; i++) w.write(code, bits);
  // End of block, symbol 257: the 20-bit code 257, or the 257th 10-bit code (they start at 512).
  if (kind === 'mtf') w.write(512 + 256, 10);
  else w.write(257, 20);
  w.write(0x177245, 24);
  w.write(0x385090, 24);
  w.write(0, 32);
  return w.finish();
}
