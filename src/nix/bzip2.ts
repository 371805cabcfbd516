/**
 * A bzip2 decoder in bounded steps (the format of bzip2 1.0: stream header `BZh1`…`BZh9`,
 * blocks of Huffman-coded MTF/RUNA-RUNB symbols over a BWT, run-length coded, with CRCs;
 * concatenated streams allowed). One step decodes one block's symbols, or writes at most
 * `OUTPUT_STEP` bytes of a decoded block, so a block that expands 50-fold (bzip2's run
 * lengths) never stalls the event loop or sits whole in memory. Memory: the input of one
 * block (under 4.2 MB even when hostile) and a 4 × level × 100 000-byte BWT vector.
 */
import type { DecodeOutput, StepDecoder } from './decode-output.js';
import { NixError } from './errors.js';

/** The most output one step writes, and the most symbols it reads. */
const OUTPUT_STEP = 256 << 10;
const SYMBOL_STEP = 65_536;
const MAX_GROUPS = 6;
const MAX_CODE_BITS = 20;
const GROUP_SIZE = 50;
const BLOCK_MAGIC_HI = 0x314159;
const BLOCK_MAGIC_LO = 0x265359;
const END_MAGIC_HI = 0x177245;
const END_MAGIC_LO = 0x385090;

/** bzip2's CRC: CRC-32 with polynomial 0x04C11DB7, most significant bit first. */
const CRC_TABLE = (() => {
  const table = new Int32Array(256);
  for (let i = 0; i < 256; i++) {
    let c = i << 24;
    for (let k = 0; k < 8; k++) c = c & 0x80000000 ? (c << 1) ^ 0x04c11db7 : c << 1;
    table[i] = c;
  }
  return table;
})();

/** Thrown by the bit reader when the buffered input ends inside what is being read. */
const NEED_MORE = new Error('need more input');

const bad = (what: string) => new NixError('malformed', `bad bzip2 data: ${what}`);

/** Huffman decoding tables of one group. */
interface HuffmanTable {
  count: Int32Array;
  first: Int32Array;
  index: Int32Array;
  symbols: Uint16Array;
}

/** A block whose symbols are being read: its tables and where the reading is. */
interface Reading {
  readonly origPtr: number;
  readonly expectedCrc: number;
  readonly seqToByte: Uint8Array;
  readonly inUse: number;
  readonly selectors: Uint8Array;
  readonly tables: HuffmanTable[];
  mtf: Uint8Array;
  byteCount: Int32Array;
  count: number;
  selector: number;
  left: number;
  table: number;
  run: number;
  runWeight: number;
}

/** A decoded block being written out: inverse-BWT position and run-length state. */
interface Emitting {
  pos: number;
  left: number;
  last: number;
  run: number;
  repeat: number;
  crc: number;
  readonly expectedCrc: number;
}

/**
 * A bzip2 decoder driven by `decompress`: a block is decoded once its input is buffered (a try
 * that runs short waits for twice the input, so retries cost at most the block again), and a
 * step does one block's symbols (at most 32,767 selectors × 50 Huffman codes of ≤ 20 bits) or
 * writes `OUTPUT_STEP` bytes of it.
 */
export class Bzip2Decoder implements StepDecoder {
  readonly slice = 64 << 10;
  // Buffered input and the bit reader's position in it.
  private buf = new Uint8Array(64 << 10);
  private length = 0;
  private byte = 0;
  private bitBuf = 0;
  private bitCount = 0;
  /** Try a block once this many bytes are buffered (doubled after each try that ran short). */
  private threshold = 0;
  private level = 0; // 0: a stream header is expected next
  private streamCrc = 0;
  private tt = new Int32Array(0);
  private reading: Reading | undefined;
  private emitting: Emitting | undefined;
  private streams = 0;

  constructor(private readonly out: DecodeOutput) {}

  write(input: Uint8Array): number {
    if (this.emitting !== undefined) {
      this.emit();
      return 0;
    }
    // Buffered input is decoded before more is taken, so the buffer holds at most one block.
    const available = this.length - this.byte;
    if (available > 0 && available >= this.threshold) {
      this.step(false);
      return 0;
    }
    this.append(input);
    return input.length;
  }

  end(): boolean {
    if (this.emitting !== undefined) {
      this.emit();
      return false;
    }
    if (this.byte >= this.length && this.bitCount === 0 && this.level === 0) {
      if (this.streams === 0) throw bad('no stream');
      return true;
    }
    this.step(true);
    return false;
  }

  close(): void {
    this.buf = new Uint8Array(0);
    this.tt = new Int32Array(0);
  }

  private append(input: Uint8Array): void {
    // Drop what was read; keep the rest (a block under way starts at the saved position).
    if (this.byte > 0) {
      this.buf.copyWithin(0, this.byte, this.length);
      this.length -= this.byte;
      this.byte = 0;
    }
    if (this.length + input.length > this.buf.length) {
      const bigger = new Uint8Array(Math.max(this.buf.length * 2, this.length + input.length));
      bigger.set(this.buf.subarray(0, this.length));
      this.buf = bigger;
    }
    this.buf.set(input, this.length);
    this.length += input.length;
  }

  private bits(n: number): number {
    while (this.bitCount < n) {
      if (this.byte >= this.length) throw NEED_MORE;
      this.bitBuf = ((this.bitBuf << 8) | (this.buf[this.byte++] ?? 0)) >>> 0;
      this.bitCount += 8;
    }
    this.bitCount -= n;
    return (this.bitBuf >>> this.bitCount) & ((1 << n) - 1);
  }

  /** Reads a stream header, a block or a stream end; at the end of input, short is an error. */
  private step(final: boolean): void {
    const saved = [this.byte, this.bitBuf, this.bitCount] as const;
    try {
      if (this.reading !== undefined) this.readSymbols(this.reading);
      else if (this.level === 0) this.streamHeader();
      else this.block();
      this.threshold = 0;
    } catch (error) {
      if (error !== NEED_MORE) throw error;
      if (final) throw bad('truncated');
      [this.byte, this.bitBuf, this.bitCount] = saved;
      // Honest blocks are under level × 101 000 bytes; a try that ran short doubles the wait.
      const available = this.length - this.byte;
      this.threshold = Math.max(available * 2, this.level * 101_000 + 1024);
    }
  }

  private streamHeader(): void {
    const magic = this.bits(24);
    if (magic !== 0x425a68) throw bad('no BZh stream header');
    const level = this.bits(8) - 0x30;
    if (level < 1 || level > 9) throw bad(`block size ${level} is not 1 to 9`);
    this.level = level;
    this.streamCrc = 0;
    this.streams++;
    if (this.tt.length < level * 100_000) this.tt = new Int32Array(level * 100_000);
  }

  private block(): void {
    const hi = this.bits(24);
    const lo = this.bits(24);
    if (hi === END_MAGIC_HI && lo === END_MAGIC_LO) {
      const crc = (this.bits(16) * 65536 + this.bits(16)) | 0;
      if (crc !== this.streamCrc) throw bad('stream CRC does not match');
      this.bitCount -= this.bitCount % 8; // streams end on a byte boundary
      this.level = 0;
      return;
    }
    if (hi !== BLOCK_MAGIC_HI || lo !== BLOCK_MAGIC_LO) throw bad('no block or end marker');
    const expectedCrc = (this.bits(16) * 65536 + this.bits(16)) | 0;
    if (this.bits(1) !== 0) throw new NixError('unsupported', 'randomised bzip2 blocks');
    const origPtr = this.bits(24);
    // Symbol map: which byte values occur.
    const used = this.bits(16);
    const seqToByte = new Uint8Array(256);
    let inUse = 0;
    for (let i = 0; i < 16; i++) {
      if ((used & (0x8000 >> i)) === 0) continue;
      const bits = this.bits(16);
      for (let j = 0; j < 16; j++)
        if ((bits & (0x8000 >> j)) !== 0) seqToByte[inUse++] = i * 16 + j;
    }
    if (inUse === 0) throw bad('a block using no byte values');
    const alphaSize = inUse + 2;
    const groups = this.bits(3);
    if (groups < 2 || groups > MAX_GROUPS) throw bad(`${groups} Huffman groups`);
    const nSelectors = this.bits(15);
    if (nSelectors === 0) throw bad('no selectors');
    const mtfGroups = [0, 1, 2, 3, 4, 5];
    const selectors = new Uint8Array(nSelectors);
    for (let i = 0; i < nSelectors; i++) {
      let j = 0;
      while (this.bits(1) === 1) if (++j >= groups) throw bad('selector out of range');
      const g = mtfGroups[j] ?? 0;
      mtfGroups.splice(j, 1);
      mtfGroups.unshift(g);
      selectors[i] = g;
    }
    const tables = Array.from({ length: groups }, () => this.huffmanTable(alphaSize));
    const mtf = new Uint8Array(256);
    for (let i = 0; i < 256; i++) mtf[i] = i;
    this.reading = {
      origPtr,
      expectedCrc,
      seqToByte,
      inUse,
      selectors,
      tables,
      mtf,
      byteCount: new Int32Array(256),
      count: 0,
      selector: 0,
      left: 0,
      table: 0,
      run: 0,
      runWeight: 1,
    };
  }

  /**
   * Reads one Huffman-coded symbol: from 20 bits peeked at once, or bit by bit near the end of
   * the buffered input (where running short means waiting for more).
   */
  private huffmanSymbol(table: HuffmanTable): number {
    while (this.bitCount < MAX_CODE_BITS && this.byte < this.length) {
      this.bitBuf = ((this.bitBuf << 8) | (this.buf[this.byte++] ?? 0)) >>> 0;
      this.bitCount += 8;
    }
    const peeked = this.bitCount >= MAX_CODE_BITS;
    const bits = peeked ? (this.bitBuf >>> (this.bitCount - MAX_CODE_BITS)) & 0xfffff : 0;
    let code = 0;
    for (let l = 1; l <= MAX_CODE_BITS; l++) {
      code = peeked ? bits >>> (MAX_CODE_BITS - l) : code * 2 + this.bits(1);
      const offset = code - (table.first[l] ?? 0);
      if (offset < (table.count[l] ?? 0)) {
        if (peeked) this.bitCount -= l;
        return table.symbols[(table.index[l] ?? 0) + offset] ?? 0;
      }
    }
    throw bad('invalid Huffman code');
  }

  /** Reads one group's code lengths (delta coded) and builds its canonical decoding table. */
  private huffmanTable(alphaSize: number): HuffmanTable {
    const lengths = new Uint8Array(alphaSize);
    let len = this.bits(5);
    for (let i = 0; i < alphaSize; i++) {
      for (;;) {
        if (len < 1 || len > MAX_CODE_BITS) throw bad(`Huffman code length ${len}`);
        if (this.bits(1) === 0) break;
        len += this.bits(1) === 0 ? 1 : -1;
      }
      lengths[i] = len;
    }
    const count = new Int32Array(MAX_CODE_BITS + 1);
    for (const l of lengths) count[l] = (count[l] ?? 0) + 1;
    const first = new Int32Array(MAX_CODE_BITS + 1); // first code of each length
    const index = new Int32Array(MAX_CODE_BITS + 1); // its position in `symbols`
    let code = 0;
    let at = 0;
    for (let l = 1; l <= MAX_CODE_BITS; l++) {
      first[l] = code;
      index[l] = at;
      code = (code + (count[l] ?? 0)) * 2;
      at += count[l] ?? 0;
    }
    const symbols = new Uint16Array(alphaSize);
    const next = Int32Array.from(index);
    for (let s = 0; s < alphaSize; s++) {
      const l = lengths[s] ?? 0;
      symbols[next[l] ?? 0] = s;
      next[l] = (next[l] ?? 0) + 1;
    }
    return { count, first, index, symbols };
  }

  /**
   * Reads up to SYMBOL_STEP symbols of the block in `this.reading`; at its end-of-block
   * symbol, inverts the BWT and starts emitting. Running short of input leaves `this.reading`
   * as it was (the caller rewinds the bit reader to the same point).
   */
  private readSymbols(r: Reading): void {
    const max = this.level * 100_000;
    const tt = this.tt;
    const mtf = r.mtf.slice();
    const byteCount = r.byteCount.slice();
    const eob = r.inUse + 1;
    let { count, selector, left, run, runWeight } = r;
    let table = r.tables[r.table];
    let tableIndex = r.table;
    let ended = false;
    for (let n = 0; n < SYMBOL_STEP; n++) {
      if (left === 0) {
        if (selector >= r.selectors.length) throw bad('more symbols than selectors');
        tableIndex = r.selectors[selector++] ?? 0;
        table = r.tables[tableIndex];
        left = GROUP_SIZE;
      }
      left--;
      if (table === undefined) throw new Error('bug: no Huffman table');
      const sym = this.huffmanSymbol(table);
      if (sym <= 1) {
        // RUNA/RUNB: a bijective base-2 run length of the front byte.
        run += runWeight * (sym + 1);
        runWeight *= 2;
        if (count + run > max) throw bad('run beyond the block size');
        continue;
      }
      if (run > 0) {
        const b = r.seqToByte[mtf[0] ?? 0] ?? 0;
        byteCount[b] = (byteCount[b] ?? 0) + run;
        tt.fill(b, count, count + run);
        count += run;
        run = 0;
        runWeight = 1;
      }
      if (sym === eob) {
        ended = true;
        break;
      }
      if (count >= max) throw bad('block larger than its stream header allows');
      const i = sym - 1;
      const front = mtf[i] ?? 0;
      mtf.copyWithin(1, 0, i);
      mtf[0] = front;
      const b = r.seqToByte[front] ?? 0;
      byteCount[b] = (byteCount[b] ?? 0) + 1;
      tt[count++] = b;
    }
    Object.assign(r, { mtf, byteCount, count, selector, left, run, runWeight, table: tableIndex });
    if (!ended) return;
    this.reading = undefined;
    const { origPtr, expectedCrc } = r;
    if (origPtr >= count) throw bad(`origin pointer ${origPtr} beyond ${count} symbols`);
    // Inverse BWT: link each position to the next, in the high bits of tt.
    let sum = 0;
    for (let b = 0; b < 256; b++) {
      const c = byteCount[b] ?? 0;
      byteCount[b] = sum;
      sum += c;
    }
    for (let i = 0; i < count; i++) {
      const b = (tt[i] ?? 0) & 0xff;
      const to = byteCount[b] ?? 0;
      tt[to] = (tt[to] ?? 0) | (i << 8);
      byteCount[b] = to + 1;
    }
    this.emitting = {
      pos: (tt[origPtr] ?? 0) >>> 8,
      left: count,
      last: -1,
      run: 0,
      repeat: 0,
      crc: -1,
      expectedCrc,
    };
    this.emit();
  }

  /** Writes up to OUTPUT_STEP bytes of the block being emitted; checks its CRC at the end. */
  private emit(): void {
    const e = this.emitting;
    if (e === undefined) return;
    const tt = this.tt;
    const piece = new Uint8Array(OUTPUT_STEP);
    let n = 0;
    let { pos, left, last, run, repeat, crc } = e;
    while (n < OUTPUT_STEP) {
      if (repeat > 0) {
        const k = Math.min(repeat, OUTPUT_STEP - n);
        for (let i = 0; i < k; i++)
          crc = (crc << 8) ^ (CRC_TABLE[((crc >>> 24) ^ last) & 0xff] ?? 0);
        piece.fill(last, n, n + k);
        n += k;
        repeat -= k;
        continue;
      }
      if (left === 0) break;
      const entry = tt[pos] ?? 0;
      const b = entry & 0xff;
      pos = entry >>> 8;
      left--;
      if (run === 4) {
        repeat = b; // the count after four equal bytes
        run = 0;
        continue;
      }
      if (b === last) run++;
      else {
        run = 1;
        last = b;
      }
      crc = (crc << 8) ^ (CRC_TABLE[((crc >>> 24) ^ b) & 0xff] ?? 0);
      piece[n++] = b;
    }
    Object.assign(e, { pos, left, last, run, repeat, crc });
    if (left === 0 && repeat === 0) {
      this.emitting = undefined;
      const blockCrc = ~crc | 0;
      if (blockCrc !== e.expectedCrc) throw bad('block CRC does not match');
      this.streamCrc = (((this.streamCrc << 1) | (this.streamCrc >>> 31)) ^ blockCrc) | 0;
    }
    this.out.push(piece.subarray(0, n));
  }
}
