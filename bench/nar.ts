/**
 * NAR serialise+hash throughput beside `sha256sum` of the same NAR bytes, on one large file and
 * on a large tree, at 100 MB and 1 GB, with the peak memory of each run.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, mkdirSync, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Row, formatTime } from './harness.js';

const MB = 1_000_000;

/** Writes `size` bytes of incompressible data (a random block repeated with a counter). */
function writeData(path: string, size: number): void {
  const block = randomBytes(1 << 20);
  const fd = openSync(path, 'w');
  for (let written = 0, i = 0; written < size; i++) {
    block.writeUInt32LE(i, 0);
    const n = Math.min(block.length, size - written);
    writeSync(fd, block, 0, n);
    written += n;
  }
  closeSync(fd);
}

/** A tree of about `size` bytes in directories of 50 files, file sizes cycling through `sizes`. */
function writeTree(root: string, size: number, sizes: readonly number[]): number {
  let total = 0;
  let files = 0;
  for (let d = 0; total < size; d++) {
    const dir = join(root, `dir-${d}`, `sub-${d % 7}`);
    mkdirSync(dir, { recursive: true });
    for (let f = 0; f < 50 && total < size; f++) {
      const n = sizes[(d * 50 + f) % sizes.length] ?? 100;
      writeData(join(dir, `file-${f}`), n);
      total += n;
      files++;
    }
  }
  return files;
}

const MIXED = [100, 1_000, 4_096, 10_000, 60_000, 300_000, 1_000_000];
const SMALL = [500, 1_000, 2_000, 4_096, 8_000];

interface WorkerResult {
  seconds: number;
  narSize: number;
  narHash: string;
  maxRssKiB: number;
  native: boolean;
}

/** The best of three fresh processes hashing `path` (with `--js`, the JavaScript serialiser). */
function bestWorker(path: string, ...flags: string[]): WorkerResult {
  const worker = new URL('./nar-worker.js', import.meta.url).pathname;
  let best: WorkerResult | undefined;
  for (let i = 0; i < 3; i++) {
    const out = execFileSync(process.execPath, [worker, path, ...flags], { encoding: 'utf8' });
    const r = JSON.parse(out) as WorkerResult;
    if (best === undefined || r.seconds < best.seconds) best = r;
  }
  if (best === undefined) throw new Error('bug: no run');
  return best;
}

/** Best-of-3 wall seconds of a command (page cache warm); undefined if it cannot run. */
function commandSeconds(command: string, args: readonly string[]): number | undefined {
  let best = Infinity;
  for (let i = 0; i < 3; i++) {
    const start = performance.now();
    const r = spawnSync(command, args, { stdio: 'ignore' });
    if (r.status !== 0) return undefined;
    best = Math.min(best, (performance.now() - start) / 1000);
  }
  return best;
}

export function benchNar(sizes: readonly number[]): Row[] {
  const rows: Row[] = [];
  const dir = mkdtempSync(join(tmpdir(), 'accord-bench-nar-'));
  try {
    for (const size of sizes) {
      const inputs: [string, string][] = [];
      const file = join(dir, `file-${size}`);
      writeData(file, size);
      inputs.push([`one ${size / MB} MB file`, file]);
      const tree = join(dir, `tree-${size}`);
      const files = writeTree(tree, size, MIXED);
      inputs.push([`tree of ${files} files, ${size / MB} MB`, tree]);
      // Many small files stress the file system calls rather than hashing (100 MB only).
      const small = join(dir, `small-${size}`);
      if (size <= 100 * MB) {
        const count = writeTree(small, size, SMALL);
        inputs.push([`tree of ${count} small files, ${size / MB} MB`, small]);
      }
      for (const [name, path] of inputs) {
        const nar = join(dir, 'dump.nar');
        execFileSync('sh', [
          '-c',
          `"$0" "$1" nar dump "$2" > "$3"`,
          process.execPath,
          new URL('../../bin/accord.js', import.meta.url).pathname,
          path,
          nar,
        ]);
        const baseline = commandSeconds('sha256sum', [nar]);
        if (baseline === undefined) throw new Error('sha256sum failed');
        const nixSeconds = commandSeconds('nix', ['hash', 'path', path]);
        const best = bestWorker(path);
        const js = best.native ? bestWorker(path, '--js') : best;
        if (js.narHash !== best.narHash) throw new Error(`${name}: serialisers disagree`);
        const mbps = (n: number, s: number) => `${(n / MB / s).toFixed(0)} MB/s`;
        rows.push({
          name: `NAR serialise+hash, ${name}`,
          value: `${mbps(best.narSize, best.seconds)} (${formatTime(best.seconds * 1e6)}, ${best.native ? 'native' : 'JavaScript'} serialiser), peak RSS ${(best.maxRssKiB / 1024).toFixed(0)} MiB`,
          baseline: `${mbps(best.narSize, baseline)} (sha256sum of the NAR)`,
          ratio: (baseline / best.seconds).toFixed(2),
          note: [
            best.native &&
              `JavaScript serialiser: ${mbps(js.narSize, js.seconds)} (ratio ${(baseline / js.seconds).toFixed(2)}), peak RSS ${(js.maxRssKiB / 1024).toFixed(0)} MiB`,
            nixSeconds === undefined
              ? 'nix not installed'
              : `nix hash path: ${mbps(best.narSize, nixSeconds)}`,
          ]
            .filter(Boolean)
            .join('; '),
        });
        rmSync(nar);
      }
      for (const [, path] of inputs) rmSync(path, { recursive: true });
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return rows;
}
