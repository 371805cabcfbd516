/**
 * zstd decoding in bounded steps: frames and blocks are parsed here (RFC 8878 §3.1) and fzstd
 * is handed one block at a time, behind a rewritten frame header whose window is no larger
 * than the output can reach, so neither a declared window nor a flood of blocks can make it
 * allocate or copy without bound.
 */
import { Decompress } from 'fzstd';
import type { DecodeOutput, StepDecoder } from './decode-output.js';
import { NixError } from './errors.js';

/**
 * The largest window a frame may declare: 2²⁷ bytes (128 MiB), the default `windowLogMax` of
 * zstd's own decoder, so anything `zstd -d` decodes without `--memory` is accepted.
 */
export const ZSTD_MAX_WINDOW = 1 << 27;

/** RFC 8878 §3.1.1.2: Block_Maximum_Size is at most 128 KiB. */
const MAX_BLOCK = 128 << 10;

/**
 * Blocks allowed before any output, and the output that earns one more. fzstd's cost per
 * block is the window (it shifts the whole window), and an honest encoder fills each block
 * with 128 KiB of output but the last of a frame: one block per 64 KiB allows twice that.
 */
const FREE_BLOCKS = 64;
const OUTPUT_PER_BLOCK = 64 << 10;

const FRAME_MAGIC = 0xfd2fb528;
const SKIPPABLE_MAGIC = 0x184d2a50; // low 4 bits free: 0x184D2A50…0x184D2A5F

type State =
  'magic' | 'skippable-size' | 'descriptor' | 'header' | 'block-header' | 'block' | 'checksum';

const u32 = (b: Uint8Array, at: number) =>
  ((b[at] ?? 0) | ((b[at + 1] ?? 0) << 8) | ((b[at + 2] ?? 0) << 16) | ((b[at + 3] ?? 0) << 24)) >>>
  0;

/** A zstd decoder: each `write` decodes at most one block. */
export class ZstdDecoder implements StepDecoder {
  readonly slice = 64 << 10;
  private readonly fzstd: Decompress;
  private state: State = 'magic';
  private unit = new Uint8Array(3 + MAX_BLOCK);
  private filled = 0;
  private want = 4;
  private skip = 0;
  private descriptor = 0;
  private blockHeader = 0;
  private blockMax = 0;
  private contentSize: number | undefined;
  private frameOutput = 0;
  private blocks = 0;
  private frames = 0;
  /** The window kept for the current frame, in bytes (fzstd holds this much). */
  keptWindow = 0;

  constructor(private readonly out: DecodeOutput) {
    this.fzstd = new Decompress((piece) => {
      this.frameOutput += piece.length;
      out.push(piece);
    });
  }

  write(input: Uint8Array): number {
    let at = 0;
    for (;;) {
      if (this.skip > 0) {
        const n = Math.min(this.skip, input.length - at);
        this.skip -= n;
        at += n;
        if (this.skip > 0) return at;
        continue;
      }
      if (this.filled < this.want) {
        if (at === input.length) return at;
        const n = Math.min(this.want - this.filled, input.length - at);
        this.unit.set(input.subarray(at, at + n), this.filled);
        this.filled += n;
        at += n;
        continue;
      }
      if (this.complete()) return at; // one block per step
    }
  }

  end(): boolean {
    if (this.write(new Uint8Array(0)) !== 0) throw new Error('bug: zstd end consumed input');
    if (this.frames === 0) throw new NixError('malformed', 'no zstd frame');
    if (this.filled < this.want && (this.state !== 'magic' || this.filled > 0 || this.skip > 0))
      throw new NixError('malformed', 'truncated zstd data');
    if (this.filled >= this.want) return false; // a complete unit is still to be decoded
    this.fzstd.push(new Uint8Array(0), true);
    return true;
  }

  close(): void {
    this.unit = new Uint8Array(0);
  }

  /** Expects `n` more bytes in state `state`. */
  private next(state: State, n: number): void {
    this.state = state;
    this.filled = 0;
    this.want = n;
  }

  /** Handles the complete unit in `this.unit`; true when it decoded a block. */
  private complete(): boolean {
    const u = this.unit;
    switch (this.state) {
      case 'magic': {
        const magic = u32(u, 0);
        this.frames++;
        if (magic === FRAME_MAGIC) this.next('descriptor', 1);
        else if ((magic & 0xfffffff0) >>> 0 === SKIPPABLE_MAGIC) this.next('skippable-size', 4);
        else throw new NixError('malformed', 'not zstd data: bad frame magic number');
        return false;
      }
      case 'skippable-size':
        this.skip = u32(u, 0);
        this.next('magic', 4);
        return false;
      case 'descriptor': {
        const d = u[0] ?? 0;
        if ((d & 0x08) !== 0)
          throw new NixError('malformed', 'zstd frame header: reserved bit set');
        this.descriptor = d;
        const fcsFlag = d >> 6;
        const single = (d >> 5) & 1;
        const fcsBytes = fcsFlag === 0 ? single : 1 << fcsFlag;
        const dictBytes = [0, 1, 2, 4][d & 3] ?? 0;
        this.next('header', (single === 1 ? 0 : 1) + dictBytes + fcsBytes);
        return false;
      }
      case 'header':
        this.startFrame();
        this.next('block-header', 3);
        return false;
      case 'block-header': {
        const h = (u[0] ?? 0) | ((u[1] ?? 0) << 8) | ((u[2] ?? 0) << 16);
        const type = (h >> 1) & 3;
        const size = h >>> 3;
        if (type === 3) throw new NixError('malformed', 'zstd block of the reserved type');
        if (size > this.blockMax)
          throw new NixError(
            'malformed',
            `zstd block of ${size} bytes exceeds the frame's maximum of ${this.blockMax}`,
          );
        this.blocks++;
        const allowed = FREE_BLOCKS + Math.floor(this.out.total / OUTPUT_PER_BLOCK);
        if (this.blocks > allowed)
          throw new NixError(
            'limit',
            `zstd data has more than ${allowed} blocks for ${this.out.total} bytes of output`,
          );
        this.blockHeader = h;
        this.next('block', type === 1 ? 1 : size);
        return false;
      }
      case 'block': {
        const block = new Uint8Array(3 + this.filled);
        block[0] = this.blockHeader & 0xff;
        block[1] = (this.blockHeader >> 8) & 0xff;
        block[2] = this.blockHeader >> 16;
        block.set(u.subarray(0, this.filled), 3);
        this.fzstd.push(block);
        if ((this.blockHeader & 1) === 0) this.next('block-header', 3);
        else {
          if (this.contentSize !== undefined && this.frameOutput !== this.contentSize)
            throw new NixError(
              'malformed',
              `zstd frame has ${this.frameOutput} bytes, its header says ${this.contentSize}`,
            );
          if ((this.descriptor & 0x04) !== 0) this.next('checksum', 4);
          else this.next('magic', 4);
        }
        return true;
      }
      case 'checksum':
        // Not verified: the NAR hash covers the content.
        this.next('magic', 4);
        return false;
    }
  }

  /**
   * Reads the rest of a frame header (RFC 8878 §3.1.1.1), refuses a window beyond
   * `ZSTD_MAX_WINDOW` or a dictionary, and starts fzstd on an equivalent header whose window
   * is at most what the output cap can reach (never below 128 KiB, a block's maximum).
   */
  private startFrame(): void {
    const u = this.unit;
    const d = this.descriptor;
    const single = (d >> 5) & 1;
    let at = 0;
    let window = 0;
    if (single === 0) {
      const wd = u[at++] ?? 0;
      const base = 2 ** (10 + (wd >> 3));
      window = base + (base / 8) * (wd & 7);
    }
    const dictBytes = [0, 1, 2, 4][d & 3] ?? 0;
    let dictionary = 0;
    for (let i = 0; i < dictBytes; i++) dictionary += (u[at++] ?? 0) * 2 ** (8 * i);
    if (dictionary !== 0)
      throw new NixError('unsupported', `zstd frame needs dictionary ${dictionary}`);
    const fcsFlag = d >> 6;
    const fcsBytes = fcsFlag === 0 ? single : 1 << fcsFlag;
    let fcs = 0;
    for (let i = 0; i < fcsBytes; i++) fcs += (u[at++] ?? 0) * 2 ** (8 * i);
    if (fcsBytes === 2) fcs += 256;
    this.contentSize = fcsBytes === 0 ? undefined : fcs;
    if (single === 1) window = fcs;
    if (window > ZSTD_MAX_WINDOW)
      throw new NixError(
        'limit',
        `zstd frame window of ${window} bytes exceeds the cap of ${ZSTD_MAX_WINDOW}`,
      );
    this.blockMax = Math.min(window, MAX_BLOCK);
    this.frameOutput = 0;
    // The window fzstd keeps: matches never reach past the output so far, which the cap
    // bounds, so a smaller window decodes the same bytes.
    const need = Math.min(window, Math.max(this.out.max, MAX_BLOCK));
    let log = 10;
    while (2 ** log < need) log++;
    this.keptWindow = 2 ** log;
    // Magic, a descriptor with an 8-byte content size and a 4-byte dictionary ID (both zero,
    // and no checksum: it is skipped here), the window: 18 bytes, enough for fzstd to start
    // the frame at once rather than wait for more input.
    const header = new Uint8Array(18);
    header.set([0x28, 0xb5, 0x2f, 0xfd, 0xc3, (log - 10) << 3]);
    this.fzstd.push(header);
  }
}
