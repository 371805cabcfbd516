/**
 * The proxy's NAR decoders, run in this process as the proxy runs them (`maxOutput` is the
 * NAR size its narinfo claims): how long the event loop is blocked at most, and how much the
 * resident memory grows, while each decompression bomb is refused (beside an honest NAR of the
 * same compression); and the decode rate of an honest 64 MiB NAR in zstd and xz beside the
 * Debian tools. `benchDecoders` takes the `decompress` to measure, so an older build can be
 * measured the same way (see docs/benchmarks.md).
 */
import { execFileSync } from 'node:child_process';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { bombs, bzip2SymbolFlood } from './bombs.js';
import { type Row, formatRate } from './harness.js';
import { have } from './processes.js';
import { writeNar } from '../src/nix/index.js';

type Decompress = (
  compression: string,
  input: Iterable<Uint8Array>,
  options: { maxOutput?: number },
) => AsyncIterable<Uint8Array>;

const MB = 1_000_000;
const MiB = 1 << 20;

/** What decoding `bytes` cost: wall time, the longest event-loop block, the RSS growth. */
async function run(decompress: Decompress, compression: string, bytes: Buffer, maxOutput: number) {
  const histogram = monitorEventLoopDelay({ resolution: 1 });
  histogram.enable();
  // The histogram's timer starts with the next turn: a block before then would go unseen.
  await new Promise((r) => setTimeout(r, 5));
  const rss = process.memoryUsage.rss();
  let peak = rss;
  const sampler = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage.rss());
  }, 1);
  const chunks: Buffer[] = [];
  for (let i = 0; i < bytes.length; i += 65536) chunks.push(bytes.subarray(i, i + 65536));
  const start = performance.now();
  let output = 0;
  let error = '';
  try {
    for await (const chunk of decompress(compression, chunks, { maxOutput }))
      output += chunk.length;
  } catch (e) {
    error = (e as Error).message;
  }
  const ms = performance.now() - start;
  peak = Math.max(peak, process.memoryUsage.rss());
  clearInterval(sampler);
  // A block that just ended is recorded when the histogram's timer next runs.
  await new Promise((r) => setTimeout(r, 20));
  histogram.disable();
  return { ms, maxDelayMs: histogram.max / 1e6, rssMiB: (peak - rss) / MiB, output, error };
}

/** A NAR of `size` bytes of build-log-like text (compressible, not trivially). */
function honestNar(size: number): Buffer {
  const lines: string[] = [];
  let length = 0;
  for (let i = 0; length < size; i++) {
    const line = `line ${i % 1000} of a build log: /nix/store/${String(i % 97).padStart(32, '0')}-x ${(i * 2654435761) % 4294967296}\n`;
    lines.push(line);
    length += line.length;
  }
  const data = Buffer.from(lines.join('')).subarray(0, size);
  return Buffer.concat([
    ...writeNar({ type: 'regular', executable: false, size, contents: () => [data] }),
  ]);
}

export async function benchDecoders(decompress: Decompress): Promise<Row[]> {
  const rows: Row[] = [];
  const small = honestNar(200_000);
  const tools: Record<string, [string, string[]]> = {
    zstd: ['zstd', ['-q', '-c', '-19']],
    bzip2: ['bzip2', ['-9', '-c']],
    xz: ['xz', ['-9', '-c']],
    gzip: ['gzip', ['-9', '-c']],
    br: ['brotli', ['-c', '-q', '11']],
  };
  for (const bomb of bombs()) {
    // A small NAR's claim (fetched ahead) and a 100 MB one (streamed).
    for (const maxOutput of [200, 100 * MB]) {
      const r = await run(decompress, bomb.compression, bomb.bytes, maxOutput);
      const [tool, args] = tools[bomb.compression] ?? ['', []];
      const honest = have(tool)
        ? await run(
            decompress,
            bomb.compression,
            execFileSync(tool, args, { input: small, maxBuffer: 1 << 28 }),
            small.length,
          )
        : undefined;
      rows.push({
        name: `${bomb.name} bomb (${bomb.bytes.length} B), cap ${maxOutput >= MB ? `${maxOutput / MB} MB` : `${maxOutput} B`}: longest event-loop block`,
        value: `${r.maxDelayMs.toFixed(0)} ms`,
        baseline:
          honest === undefined ? '—' : `${honest.maxDelayMs.toFixed(0)} ms (honest 200 kB NAR)`,
        ratio: '—',
        note: `ended after ${r.ms.toFixed(0)} ms, RSS +${r.rssMiB.toFixed(0)} MiB: ${r.error.slice(0, 60) || `no error (${r.output} bytes)`}`,
      });
    }
  }
  for (const kind of ['mtf', 'long-codes'] as const) {
    const flood = bzip2SymbolFlood(kind);
    const r = await run(decompress, 'bzip2', flood, 100 * MB);
    rows.push({
      name: `bzip2 block of 900,000 costly symbols, ${kind} (${flood.length} B), cap 100 MB: longest event-loop block`,
      value: `${r.maxDelayMs.toFixed(0)} ms`,
      baseline: '—',
      ratio: '—',
      note: `ended after ${r.ms.toFixed(0)} ms, RSS +${r.rssMiB.toFixed(0)} MiB: ${r.error.slice(0, 60)}`,
    });
  }
  const nar = honestNar(64 * MiB);
  for (const [compression, tool, args] of [
    ['zstd', 'zstd', ['-q', '-c', '-3']],
    ['xz', 'xz', ['-6', '-c', '-T2']],
  ] as const) {
    if (!have(tool)) continue;
    const packed = execFileSync(tool, args, { input: nar, maxBuffer: 1 << 28 });
    const r = await run(decompress, compression, packed, nar.length);
    if (r.output !== nar.length) throw new Error(`${compression}: decoded ${r.output} bytes`);
    const start = performance.now();
    execFileSync(tool, ['-d', '-c'], { input: packed, maxBuffer: 1 << 28 });
    const toolMs = performance.now() - start;
    rows.push({
      name: `decode an honest 64 MiB NAR, ${compression} (${tool} ${args.filter((a) => a !== '-c' && a !== '-q').join(' ')})`,
      value: formatRate((nar.length / r.ms) * 1000, 'B'),
      baseline: `${formatRate((nar.length / toolMs) * 1000, 'B')} (${tool} -d)`,
      ratio: (toolMs / r.ms).toFixed(2),
      note: `longest event-loop block ${r.maxDelayMs.toFixed(0)} ms, RSS +${r.rssMiB.toFixed(0)} MiB`,
    });
  }
  return rows;
}
