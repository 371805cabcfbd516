/**
 * `accord rebuild` against plain `nix-store --realise` of the same kind of derivations, in the
 * same run: each side builds its own fresh derivations (same scripts, another salt), one at a
 * time, so the difference is what Accord adds per derivation — its queries to the store, the
 * claims, the spool and the submission to a log.
 */
import { execFile, execFileSync } from 'node:child_process';
import { promisify } from 'node:util';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { newToken, parseSubmitters, startLogService, submitterLine } from '../src/log/index.js';
import { silentLogger } from '../src/server/index.js';
import { SIG_TYPE_ED25519, newSigner } from '../src/tlog/index.js';
import type { Row } from './harness.js';

const BIN = new URL('../../bin/accord.js', import.meta.url).pathname;
const NIX_CONFIG = [
  'experimental-features = nix-command',
  'sandbox = false',
  'build-users-group =',
  'substituters =',
].join('\n');
const env = { ...process.env, NIX_CONFIG };

/** `count` derivations that each take about `seconds` to build, new to the store. */
function derivations(dir: string, count: number, seconds: number): string[] {
  const salt = randomBytes(8).toString('hex');
  const file = join(dir, `bench-${salt}.nix`);
  const attrs = Array.from(
    { length: count },
    (_, i) =>
      `  d${i} = derivation { name = "accord-bench-rebuild-${i}"; salt = "${salt}"; system = builtins.currentSystem; builder = "/bin/sh"; args = [ "-c" "/bin/sleep ${seconds}; echo ${i} > $out" ]; };`,
  );
  writeFileSync(file, `{\n${attrs.join('\n')}\n}\n`);
  return execFileSync('nix-instantiate', [file], { env, encoding: 'utf8' }).trim().split('\n');
}

function timed(run: () => void): number {
  const start = performance.now();
  run();
  return (performance.now() - start) / 1000;
}

export async function benchRebuild(count = 10, seconds = 1): Promise<Row[]> {
  const dir = mkdtempSync(join(tmpdir(), 'accord-bench-rebuild-'));
  const token = newToken();
  const log = await startLogService({
    origin: 'bench.example/rebuilder',
    signer: newSigner('bench.example/rebuilder', SIG_TYPE_ED25519, randomBytes(32)),
    store: { kind: 'sqlite', path: join(dir, 'log.db') },
    host: '127.0.0.1',
    port: 0,
    submitters: parseSubmitters(submitterLine('bench', token)),
    storeDir: '/nix/store',
    intervalMs: 200,
    maxBodyBytes: 1 << 20,
    logger: silentLogger,
  });
  try {
    writeFileSync(join(dir, 'token'), `${token}\n`);
    const plainDrvs = derivations(dir, count, seconds);
    const plain = timed(() =>
      execFileSync('nix-store', ['--realise', '--max-jobs', '1', ...plainDrvs], {
        env,
        stdio: 'ignore',
      }),
    );
    const work = join(dir, 'work');
    writeFileSync(work, `${derivations(dir, count, seconds).join('\n')}\n`);
    // Not execFileSync: the log answering the rebuilder runs in this process.
    const start = performance.now();
    await promisify(execFile)(
      process.execPath,
      [
        BIN,
        'rebuild',
        '--from',
        work,
        '--log',
        log.url,
        '--token-file',
        join(dir, 'token'),
        '--state',
        join(dir, 'state.db'),
        '--spool',
        join(dir, 'spool.db'),
        '--quiet',
      ],
      { env },
    );
    const accord = (performance.now() - start) / 1000;
    const overhead = (accord - plain) / plain;
    return [
      {
        name: `accord rebuild of ${count} fresh derivations of ~${seconds} s each, one at a time`,
        value: `${accord.toFixed(2)} s`,
        baseline: `${plain.toFixed(2)} s (nix-store --realise --max-jobs 1 of ${count} like them)`,
        ratio: (plain / accord).toFixed(3),
        note: `overhead ${(100 * overhead).toFixed(1)}% of the build time (goal ≤ 5%); ${((1000 * (accord - plain)) / count).toFixed(0)} ms per derivation`,
      },
    ];
  } finally {
    await log.close();
    rmSync(dir, { recursive: true, force: true });
  }
}
