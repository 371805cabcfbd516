/**
 * Streaming decompression for the compressions binary caches use: none, xz, zstd, bzip2, br
 * and gzip. gzip and br come from node:zlib, xz from liblzma (lzma-native), zstd from fzstd and
 * bzip2 from unbzip2-stream; none buffers a whole file.
 */
import { Readable, type Transform } from 'node:stream';
import { createBrotliDecompress, createGunzip } from 'node:zlib';
import { Decompress as ZstdDecompress } from 'fzstd';
import lzma from 'lzma-native';
import unbzip2 from 'unbzip2-stream';
import { NixError } from './errors.js';

/** Compression names (as in narinfo `Compression:`) this module decodes. */
export const SUPPORTED_COMPRESSIONS = ['none', 'xz', 'zstd', 'bzip2', 'br', 'gzip'] as const;

/** Options: the most output to produce before failing (a decompression-bomb guard). */
export interface DecompressOptions {
  readonly maxOutput?: number;
}

async function* zstd(input: AsyncIterable<Uint8Array>): AsyncGenerator<Uint8Array> {
  const out: Uint8Array[] = [];
  const decoder = new ZstdDecompress((chunk) => out.push(chunk));
  try {
    for await (const chunk of input) {
      decoder.push(chunk);
      yield* out.splice(0);
    }
    decoder.push(new Uint8Array(0), true);
  } catch (cause) {
    throw cause instanceof NixError ? cause : new NixError('malformed', 'bad zstd data', { cause });
  }
  yield* out.splice(0);
}

/** Runs a Transform decoder (node:zlib, liblzma) over an async iterable, with backpressure. */
function viaTransform(input: AsyncIterable<Uint8Array>, transform: Transform): Readable {
  const source = Readable.from(input, { objectMode: false });
  source.on('error', (e) => transform.destroy(e));
  return source.pipe(transform);
}

/**
 * unbzip2-stream is a classic `through` stream that decodes synchronously inside `write`: it is
 * driven directly, its output collected from 'data' events and its errors from 'error' events
 * (so a malformed input can never become an unhandled error).
 */
async function* bzip2(input: AsyncIterable<Uint8Array>): AsyncGenerator<Uint8Array> {
  const stream = unbzip2();
  const out: Uint8Array[] = [];
  let failure: { error: unknown } | undefined;
  stream.on('data', (chunk: Uint8Array) => out.push(chunk));
  stream.on('error', (error: unknown) => (failure ??= { error }));
  for await (const chunk of input) {
    stream.write(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength));
    if (failure !== undefined) throw failure.error;
    yield* out.splice(0);
  }
  stream.end();
  if (failure !== undefined) throw failure.error;
  yield* out.splice(0);
}

function decoder(compression: string, input: AsyncIterable<Uint8Array>): AsyncIterable<Uint8Array> {
  switch (compression) {
    case 'none':
      return input;
    case 'gzip':
      return viaTransform(input, createGunzip());
    case 'br':
      return viaTransform(input, createBrotliDecompress());
    case 'bzip2':
      return bzip2(input);
    case 'zstd':
      return zstd(input);
    case 'xz':
      return viaTransform(input, lzma.createDecompressor());
    default:
      throw new NixError(
        'unsupported',
        `compression ${JSON.stringify(compression)} is not supported`,
      );
  }
}

/**
 * Decompresses `input` as `compression` (a narinfo `Compression:` value). Decoder failures
 * become `NixError('malformed')`; output beyond `maxOutput` bytes is `NixError('limit')`.
 */
export async function* decompress(
  compression: string,
  input: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
  options: DecompressOptions = {},
): AsyncGenerator<Uint8Array> {
  const max = options.maxOutput ?? Number.MAX_SAFE_INTEGER;
  let total = 0;
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
  const overLimit = () => new NixError('limit', `decompressed data exceeds ${max} bytes`);
  try {
    for await (const chunk of decoder(compression, source())) {
      total += chunk.length;
      if (total > max) break;
      yield chunk;
    }
  } catch (cause) {
    // Stopping a decoder early can make it throw (an aborted web stream): the limit is the news.
    if (total > max) throw overLimit();
    if (inputError !== undefined) throw inputError.error;
    if (cause instanceof NixError) throw cause;
    throw new NixError('malformed', `cannot decompress ${compression} data: ${String(cause)}`, {
      cause,
    });
  }
  if (total > max) throw overLimit();
}
