/**
 * Streaming decompression for the compressions binary caches use: none, xz, zstd, bzip2, br
 * and gzip. gzip and br come from node:zlib, xz from liblzma (lzma-native), zstd from fzstd
 * (one block at a time, see zstd.ts) and bzip2 from bzip2.ts. Every decoder runs in bounded
 * steps: the input is cut into slices, each step's output goes through one `DecodeOutput`
 * that stops the decoder at the first piece past `maxOutput`, and the event loop runs between
 * steps, so no input can stall it or grow memory without bound.
 */
import type { Transform } from 'node:stream';
import { createRequire } from 'node:module';
import { createBrotliDecompress, createGunzip } from 'node:zlib';
import type lzmaNative from 'lzma-native';
import { Bzip2Decoder } from './bzip2.js';
import { DecodeOutput, type StepDecoder } from './decode-output.js';
import { NixError } from './errors.js';
import { ZstdDecoder } from './zstd.js';

/** liblzma's binding, loaded when an xz stream first comes: most commands never decode one. */
let lzmaModule: typeof lzmaNative | undefined;
const lzma = (): typeof lzmaNative =>
  (lzmaModule ??= createRequire(import.meta.url)('lzma-native') as typeof lzmaNative);

/** Resolves in a later turn of the event loop, after the I/O that is ready now. */
const nextTurn = () =>
  new Promise<void>((resolve) => {
    setImmediate(resolve);
  });

/** Compression names (as in narinfo `Compression:`) this module decodes. */
export const SUPPORTED_COMPRESSIONS = ['none', 'xz', 'zstd', 'bzip2', 'br', 'gzip'] as const;

/** Options: the most output to produce before failing (a decompression-bomb guard). */
export interface DecompressOptions {
  readonly maxOutput?: number;
}

/**
 * The most memory liblzma may use for one xz stream: 96 MiB. `xz -9` (a 64 MiB dictionary)
 * needs 65 MiB to decode and Nix's default preset 6 (8 MiB) needs 9 MiB.
 */
export const XZ_MEMLIMIT = 96 << 20;

/** No decoding: the input passes through, sliced like the others. */
class Identity implements StepDecoder {
  readonly slice = 1 << 20;
  constructor(private readonly out: DecodeOutput) {}
  write(input: Uint8Array): number {
    this.out.push(input);
    return input.length;
  }
  end(): boolean {
    return true;
  }
  close(): void {}
}

/**
 * A node:zlib or liblzma Transform, which decodes off the main thread: its output arrives in
 * pieces on the main thread and goes to `out` as it comes, and the Transform is destroyed at
 * the first piece past the cap. Each `write` hands it one slice and waits until it is done.
 */
class TransformDecoder implements StepDecoder {
  private failure: Error | undefined;
  private settle: (() => void) | undefined;

  constructor(
    private readonly transform: Transform,
    private readonly out: DecodeOutput,
    readonly slice: number,
  ) {
    transform.on('data', (piece: Uint8Array) => {
      try {
        out.push(piece);
      } catch (error) {
        this.fail(error);
      }
    });
    transform.on('error', (error: unknown) => {
      this.fail(error);
    });
    transform.on('end', () => this.settle?.());
  }

  private fail(error: unknown): void {
    this.failure ??= error instanceof Error ? error : new Error(String(error));
    this.transform.destroy();
    this.settle?.();
  }

  /** Runs `start` and waits until it calls back, the stream ends or it fails. */
  private async wait(start: (done: () => void) => void): Promise<void> {
    await new Promise<void>((resolve) => {
      this.settle = resolve;
      if (this.failure === undefined) start(resolve);
      else resolve();
    });
    this.settle = undefined;
    if (this.failure !== undefined) throw this.failure;
  }

  async write(input: Uint8Array): Promise<number> {
    await this.wait((done) => {
      this.transform.write(input, () => {
        done();
      });
    });
    return input.length;
  }

  async end(): Promise<boolean> {
    // Settled by 'end', once all output is delivered, or by a failure.
    await this.wait(() => {
      this.transform.end();
    });
    return true;
  }

  close(): void {
    this.transform.destroy();
  }
}

function decoder(compression: string, out: DecodeOutput): StepDecoder {
  switch (compression) {
    case 'none':
      return new Identity(out);
    case 'gzip':
      return new TransformDecoder(createGunzip(), out, 64 << 10);
    case 'br':
      return new TransformDecoder(createBrotliDecompress(), out, 64 << 10);
    case 'xz':
      // liblzma decodes a whole slice before its output is seen: at most ~8000 times the
      // slice (LZMA's best ratio) comes out past the cap.
      return new TransformDecoder(
        lzma().createDecompressor({ memlimit: XZ_MEMLIMIT }),
        out,
        1 << 10,
      );
    case 'bzip2':
      return new Bzip2Decoder(out);
    case 'zstd':
      return new ZstdDecoder(out);
    default:
      throw new NixError(
        'unsupported',
        `compression ${JSON.stringify(compression)} is not supported`,
      );
  }
}

/**
 * Decompresses `input` as `compression` (a narinfo `Compression:` value). Decoder failures
 * become `NixError('malformed')`; output beyond `maxOutput` bytes is `NixError('limit')`,
 * raised within one decoder step of the cap. Between steps the event loop runs.
 */
export async function* decompress(
  compression: string,
  input: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
  options: DecompressOptions = {},
): AsyncGenerator<Uint8Array> {
  const out = new DecodeOutput(options.maxOutput ?? Number.MAX_SAFE_INTEGER);
  const step = decoder(compression, out);
  let inputError: { error: unknown } | undefined;
  // Failures of the input itself (a broken download) pass through unchanged; anything else
  // the decoder throws means the data is not valid `compression` data.
  async function* source(): AsyncGenerator<Uint8Array> {
    try {
      yield* input;
    } catch (error) {
      inputError = { error };
      throw error;
    }
  }
  try {
    // Each step runs in a turn of its own: even the first, so a request that arrived with
    // the data is served before any of it is decoded.
    for await (const chunk of source()) {
      let at = 0;
      while (at < chunk.length) {
        await nextTurn();
        at += await step.write(chunk.subarray(at, at + step.slice));
        yield* out.take();
      }
    }
    for (let done = false; !done;) {
      await nextTurn();
      done = await step.end();
      yield* out.take();
    }
  } catch (cause) {
    if (out.total > out.max) throw out.overLimit();
    if (inputError !== undefined) throw inputError.error;
    if (cause instanceof NixError) throw cause;
    throw new NixError('malformed', `cannot decompress ${compression} data: ${String(cause)}`, {
      cause,
    });
  } finally {
    step.close();
  }
}
