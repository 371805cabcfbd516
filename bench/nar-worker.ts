/**
 * Benchmark worker: hashes one path as `accord nar hash` does (or, with `--js`, with the
 * JavaScript serialiser even where the native one is built), in a fresh process, and prints the
 * wall time and the process's peak resident memory as JSON.
 */
import { readFileSync } from 'node:fs';
import { HAVE_NATIVE_NAR, hashNarPath, narSourceFromPath } from '../src/host/index.js';
import { formatHash, hashNarSource } from '../src/nix/index.js';

const [path, mode] = process.argv.slice(2);
if (path === undefined) throw new Error('usage: nar-worker PATH [--js]');
const start = performance.now();
const native = HAVE_NATIVE_NAR && mode !== '--js';
const { narHash, narSize } = !native ? hashNarSource(narSourceFromPath(path)) : hashNarPath(path);
const seconds = (performance.now() - start) / 1000;
// VmHWM is this process's own peak RSS; getrusage's maxRSS would include the parent's peak,
// which Linux carries across fork and exec.
const hwm = /VmHWM:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'));
const maxRssKiB = Number(hwm?.[1] ?? NaN);
process.stdout.write(
  `${JSON.stringify({ seconds, narSize, narHash: formatHash(narHash), maxRssKiB, native })}\n`,
);
