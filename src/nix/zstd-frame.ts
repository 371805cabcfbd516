/**
 * zstd frames as the proxy writes and forwards them (RFC 8878 §3.1.1): a frame of raw blocks,
 * made without compressing, and the end of one frame recognised in a compressor's output, so
 * that a response is ended only once its frame is complete.
 */
import { NixError } from './errors.js';

/** RFC 8878 §3.1.1.2: Block_Maximum_Size is at most 128 KiB. */
const MAX_BLOCK = 128 << 10;

/** Magic_Number 0xFD2FB528, little-endian (§3.1.1). */
const MAGIC = [0x28, 0xb5, 0x2f, 0xfd] as const;

/** The last block of a raw frame: raw, empty, Last_Block set (§3.1.1.2). */
export const ZSTD_RAW_END: Uint8Array = Uint8Array.of(1, 0, 0);

/**
 * The header of a frame holding `contentSize` bytes in raw blocks: Single_Segment with the
 * content size in 8 bytes (a decoder checks the total against it), no checksum, no dictionary.
 *
 * @example
 * const frame = [zstdRawFrameHeader(3), ...zstdRawBlocks(Buffer.from('abc')), ZSTD_RAW_END];
 */
export function zstdRawFrameHeader(contentSize: number): Uint8Array {
  if (!Number.isSafeInteger(contentSize) || contentSize < 0)
    throw new Error(`bug: zstd content size ${contentSize}`);
  const header = Buffer.alloc(13);
  header.set(MAGIC);
  header[4] = 0xe0; // Frame_Content_Size_Flag 3 (8 bytes), Single_Segment_Flag
  header.writeBigUInt64LE(BigInt(contentSize), 5);
  return header;
}

/**
 * `data` as raw blocks of at most 128 KiB, none of them the last (end a frame with
 * {@link ZSTD_RAW_END}). The blocks are views of `data`, each behind its 3-byte header.
 */
export function zstdRawBlocks(data: Uint8Array): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let at = 0; at < data.length; at += MAX_BLOCK) {
    const block = data.subarray(at, at + MAX_BLOCK);
    const v = block.length * 8; // Block_Size << 3, Block_Type 0 (raw), Last_Block 0
    out.push(Uint8Array.of(v & 0xff, (v >>> 8) & 0xff, v >>> 16), block);
  }
  return out;
}

type State = 'descriptor' | 'header' | 'block-header' | 'skip' | 'done';

const corrupt = (why: string) => new NixError('malformed', `zstd output is corrupt: ${why}`);

/**
 * Follows one zstd frame through its headers and block headers (block contents are skipped,
 * not decoded) and says when it is complete: its last block and checksum passed, nothing
 * after. Throws `NixError('malformed')` at the first byte that cannot be part of one frame.
 */
export class ZstdFrameEnd {
  private state: State = 'descriptor';
  private readonly got: number[] = [];
  private want = 5;
  private skip = 0;
  private afterSkip: State = 'block-header';
  private checksum = false;
  private fcsSize = 0;
  /** The content size the frame header declares, when it declares one. */
  contentSize: number | undefined;

  /** Whether the frame ended with the bytes seen so far. */
  get complete(): boolean {
    return this.state === 'done';
  }

  /** Takes the next bytes of the frame. */
  update(chunk: Uint8Array): void {
    let at = 0;
    while (at < chunk.length) {
      if (this.state === 'done') throw corrupt('bytes after the end of the frame');
      if (this.state === 'skip') {
        const n = Math.min(this.skip, chunk.length - at);
        this.skip -= n;
        at += n;
        if (this.skip === 0) this.state = this.afterSkip;
        continue;
      }
      while (this.got.length < this.want && at < chunk.length) this.got.push(chunk[at++] ?? 0);
      if (this.got.length === this.want) this.parse();
    }
  }

  private parse(): void {
    const b = this.got;
    if (this.state === 'descriptor') {
      if (MAGIC.some((m, i) => b[i] !== m)) throw corrupt('not a zstd frame');
      const fhd = b[4] ?? 0;
      if ((fhd & 0x08) !== 0) throw corrupt('reserved bit set');
      const single = (fhd & 0x20) !== 0;
      const fcs = [single ? 1 : 0, 2, 4, 8][fhd >> 6] ?? 0;
      this.checksum = (fhd & 0x04) !== 0;
      this.fcsSize = fcs;
      const rest = (single ? 0 : 1) + ([0, 1, 2, 4][fhd & 3] ?? 0) + fcs;
      this.expect(rest === 0 ? 'block-header' : 'header', rest === 0 ? 3 : rest);
    } else if (this.state === 'header') {
      // The frame content size is the header's last field, little-endian (2 bytes: plus 256).
      if (this.fcsSize > 0) {
        const field = b.slice(b.length - this.fcsSize);
        const size = field.reduceRight((n, byte) => n * 256 + byte, 0);
        this.contentSize = this.fcsSize === 2 ? size + 256 : size;
      }
      this.expect('block-header', 3);
    } else {
      const v = (b[0] ?? 0) | ((b[1] ?? 0) << 8) | ((b[2] ?? 0) << 16);
      const type = (v >> 1) & 3;
      const size = v >>> 3;
      if (type === 3) throw corrupt('reserved block type');
      if (size > MAX_BLOCK) throw corrupt(`block of ${size} bytes`);
      const last = (v & 1) === 1;
      // An RLE block holds one byte; the last block is followed by its 4-byte checksum.
      this.skip = (type === 1 ? 1 : size) + (last && this.checksum ? 4 : 0);
      this.afterSkip = last ? 'done' : 'block-header';
      this.expect(this.skip === 0 ? this.afterSkip : 'skip', 3);
    }
  }

  private expect(state: State, want: number): void {
    this.got.length = 0;
    this.state = state;
    this.want = want;
  }
}
