import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { decompress } from './decompress.js';
import { NixError } from './errors.js';
import { ZSTD_RAW_END, ZstdFrameEnd, zstdRawBlocks, zstdRawFrameHeader } from './zstd-frame.js';

const rawFrame = (data: Uint8Array) =>
  Buffer.concat([zstdRawFrameHeader(data.length), ...zstdRawBlocks(data), ZSTD_RAW_END]);

/** `zstd -<level>` of `data`, by the zstd tool (with its default content checksum). */
function zstdTool(data: Uint8Array, level = 3): Buffer {
  const r = spawnSync('zstd', ['-q', '-c', `-${level}`], { input: data, maxBuffer: 1 << 28 });
  if (r.status !== 0) throw new Error(`zstd failed: ${String(r.stderr)}`);
  return r.stdout;
}

function unzstdTool(frame: Uint8Array): Buffer {
  const r = spawnSync('zstd', ['-q', '-d', '-c'], { input: frame, maxBuffer: 1 << 28 });
  if (r.status !== 0) throw new Error(`zstd -d failed: ${String(r.stderr)}`);
  return r.stdout;
}

async function decodeOurs(frame: Uint8Array): Promise<Buffer> {
  const out: Uint8Array[] = [];
  for await (const c of decompress('zstd', [frame])) out.push(c);
  return Buffer.concat(out);
}

/** Feeds `bytes` to a new tracker in pieces cut at `cuts`; whether it says complete. */
function track(bytes: Uint8Array, cuts: readonly number[] = []): boolean {
  const end = new ZstdFrameEnd();
  let at = 0;
  for (const cut of [...cuts].sort((a, b) => a - b)) {
    end.update(bytes.subarray(at, cut));
    at = Math.max(at, cut);
  }
  end.update(bytes.subarray(at));
  return end.complete;
}

const sizes = [0, 1, 1000, 128 << 10, (128 << 10) + 1, 700_000];

describe('zstdRawFrameHeader() and zstdRawBlocks()', () => {
  test.each(sizes)(
    'a raw frame of %i bytes decodes to them, by zstd and by decompress()',
    async (n) => {
      const data = randomBytes(n);
      const frame = rawFrame(data);
      expect(unzstdTool(frame).equals(data)).toBe(true);
      expect((await decodeOurs(frame)).equals(data)).toBe(true);
    },
  );

  test('contentSize: what the frame header declares (raw frames), or nothing / the true size (zstd)', () => {
    for (const n of [0, 1, 255, 256, 65_791, 65_792, 2 ** 32 + 5]) {
      const f = new ZstdFrameEnd();
      f.update(zstdRawFrameHeader(n));
      expect(f.contentSize).toBe(n);
    }
    for (const n of [1, 300, 70_000]) {
      const f = new ZstdFrameEnd();
      f.update(zstdTool(randomBytes(n)));
      expect(f.complete).toBe(true);
      expect([undefined, n]).toContain(f.contentSize);
    }
    // 2-byte and 4-byte fields: 0x40 and 0x80 descriptors (not single segment, window byte 0).
    const two = new ZstdFrameEnd();
    two.update(Uint8Array.of(0x28, 0xb5, 0x2f, 0xfd, 0x40, 0x00, 0x10, 0x00));
    expect(two.contentSize).toBe(16 + 256);
    const four = new ZstdFrameEnd();
    four.update(Uint8Array.of(0x28, 0xb5, 0x2f, 0xfd, 0x80, 0x00, 0x01, 0x02, 0x03, 0x04));
    expect(four.contentSize).toBe(0x04030201);
  });

  test('a raw frame declares its content size: one byte short is refused by zstd', () => {
    const data = randomBytes(5000);
    const short = Buffer.concat([zstdRawFrameHeader(5001), ...zstdRawBlocks(data), ZSTD_RAW_END]);
    expect(() => unzstdTool(short)).toThrow(/zstd -d failed/);
  });

  test('round-trips any bytes split into any pieces (property)', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.uint8Array({ maxLength: 3000 }), { maxLength: 8 }),
        async (pieces) => {
          const data = Buffer.concat(pieces);
          const frame = Buffer.concat([
            zstdRawFrameHeader(data.length),
            ...pieces.flatMap((p) => zstdRawBlocks(p)),
            ZSTD_RAW_END,
          ]);
          expect((await decodeOurs(frame)).equals(data)).toBe(true);
          expect(track(frame)).toBe(true);
        },
      ),
    );
  });
});

describe('ZstdFrameEnd', () => {
  const frames = sizes.flatMap((n) => {
    // Compressible and incompressible contents: compressed, raw and RLE blocks.
    const random = randomBytes(n);
    const text = Buffer.from('a NAR of text '.repeat(Math.ceil(n / 14)).slice(0, n));
    return [zstdTool(random), zstdTool(text), zstdTool(Buffer.alloc(n)), zstdTool(text, 19)];
  });

  test('is complete at the end of every frame the zstd tool writes, in any pieces', () => {
    for (const frame of frames) {
      expect(track(frame)).toBe(true);
      fc.assert(
        fc.property(fc.array(fc.nat({ max: frame.length }), { maxLength: 20 }), (cuts) => {
          expect(track(frame, cuts)).toBe(true);
        }),
        { numRuns: 20 },
      );
    }
  });

  test('is complete at the end of a raw frame', () => {
    expect(track(rawFrame(randomBytes(300_000)))).toBe(true);
  });

  test('is never complete before the end: every proper prefix is incomplete', () => {
    for (const frame of [...frames, rawFrame(randomBytes(1000))]) {
      const ends = new Set([0, 1, 4, 5, 6, frame.length - 4, frame.length - 1]);
      for (let i = 0; i < frame.length; i += Math.max(1, Math.floor(frame.length / 50)))
        ends.add(i);
      for (const end of ends) {
        if (end < 0 || end >= frame.length) continue;
        expect(track(frame.subarray(0, end)), `${end} of ${frame.length}`).toBe(false);
      }
    }
  });

  test('refuses bytes after the end, another magic number and a reserved block type', () => {
    const frame = zstdTool(Buffer.from('hello'));
    expect(() => track(Buffer.concat([frame, Buffer.of(0)]))).toThrow(NixError);
    expect(() => track(Buffer.concat([frame, frame]))).toThrow(/after the end/);
    const other = Buffer.from(frame);
    other[0] = 0x29;
    expect(() => track(other)).toThrow(/not a zstd frame/);
    // A block header of type 3 right after a 6-byte header (no FCS, window byte).
    expect(() => track(Buffer.of(0x28, 0xb5, 0x2f, 0xfd, 0x00, 0x38, 0x06, 0, 0))).toThrow(
      /reserved block type/,
    );
  });
});
