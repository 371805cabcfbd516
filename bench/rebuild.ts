/**
 * `accord rebuild` against plain `nix-store --realise` of the same kind of derivations, in the
 * same run: each side builds its own fresh derivations (same scripts, another salt), one at a
 * time, so the difference is what Accord adds per derivation — its queries to the store, the
 * claims, the spool and the submission to a log. Beside them: `nix-store --realise` called once
 * per derivation (what any tool that builds and looks at each derivation in turn pays at
 * least: the floor), `accord rebuild` of an empty work list (its fixed cost: Node, the state,
 * the spool), and, when ACCORD_REBUILD_BEFORE names another build's `bin/accord.js`, that
 * build's `accord rebuild` (before and after in one run).
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { newToken, parseSubmitters, startLogService, submitterLine } from '../src/log/index.js';
import { silentLogger } from '../src/server/index.js';
import { SIG_TYPE_ED25519, newSigner } from '../src/tlog/index.js';
import type { Row } from './harness.js';

const exec = promisify(execFile);
const BIN = new URL('../../bin/accord.js', import.meta.url).pathname;
const NIX_CONFIG = [
  'experimental-features = nix-command',
  'sandbox = false',
  'build-users-group =',
  'substituters =',
].join('\n');
const env = { ...process.env, NIX_CONFIG };

/** `count` derivations that each take about `seconds` to build, new to the store. */
async function derivations(dir: string, count: number, seconds: number): Promise<string[]> {
  const salt = randomBytes(8).toString('hex');
  const file = join(dir, `bench-${salt}.nix`);
  const attrs = Array.from(
    { length: count },
    (_, i) =>
      `  d${i} = derivation { name = "accord-bench-rebuild-${i}"; salt = "${salt}"; system = builtins.currentSystem; builder = "/bin/sh"; args = [ "-c" "/bin/sleep ${seconds}; echo ${i} > $out" ]; };`,
  );
  writeFileSync(file, `{\n${attrs.join('\n')}\n}\n`);
  return (await exec('nix-instantiate', [file], { env, encoding: 'utf8' })).stdout
    .trim()
    .split('\n');
}

/** Seconds `run` takes. Asynchronous: the log answering a rebuilder runs in this process. */
async function timed(run: () => Promise<unknown>): Promise<number> {
  const start = performance.now();
  await run();
  return (performance.now() - start) / 1000;
}

export async function benchRebuild(count = 10, seconds = 1, rounds = 3): Promise<Row[]> {
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
  let runs = 0;
  const rebuild = async (bin: string, drvs: readonly string[]) => {
    const run = join(dir, `run-${++runs}`);
    const work = join(dir, `work-${runs}`);
    writeFileSync(work, drvs.map((d) => `${d}\n`).join(''));
    return timed(() =>
      exec(
        process.execPath,
        [
          bin,
          'rebuild',
          '--from',
          work,
          '--log',
          log.url,
          '--token-file',
          join(dir, 'token'),
          '--state',
          join(run, 'state.db'),
          '--spool',
          join(run, 'spool.db'),
          '--quiet',
        ],
        { env },
      ),
    );
  };
  try {
    writeFileSync(join(dir, 'token'), `${token}\n`);
    const before = process.env.ACCORD_REBUILD_BEFORE;
    // The machine is shared: every side is measured `rounds` times, interleaved, and the median
    // kept.
    const times = {
      plain: [] as number[],
      floor: [] as number[],
      previous: [] as number[],
      accord: [] as number[],
    };
    for (let round = 0; round < rounds; round++) {
      const together = await derivations(dir, count, seconds);
      times.plain.push(
        await timed(() =>
          exec('nix-store', ['--realise', '--max-jobs', '1', ...together], { env }),
        ),
      );
      const oneByOne = await derivations(dir, count, seconds);
      times.floor.push(
        await timed(async () => {
          for (const drv of oneByOne) await exec('nix-store', ['--realise', drv], { env });
        }),
      );
      if (before !== undefined)
        times.previous.push(await rebuild(before, await derivations(dir, count, seconds)));
      times.accord.push(await rebuild(BIN, await derivations(dir, count, seconds)));
    }
    const median = (xs: number[]) =>
      [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;
    const plain = median(times.plain);
    const floor = median(times.floor);
    const previous = before === undefined ? undefined : median(times.previous);
    const accord = median(times.accord);
    const empty = await rebuild(BIN, []);
    const perDrv = (t: number) => `${((1000 * (t - plain)) / count).toFixed(0)} ms per derivation`;
    const share = (t: number) => `${((100 * (t - plain)) / plain).toFixed(1)}%`;
    const all = (xs: number[]) => `runs ${xs.map((x) => x.toFixed(2)).join(', ')} s`;
    const row = (name: string, t: number, runs: number[], note: string): Row => ({
      name,
      value: `${t.toFixed(2)} s`,
      baseline: `${plain.toFixed(2)} s (nix-store --realise --max-jobs 1 of ${count} like them; ${all(times.plain)})`,
      ratio: (plain / t).toFixed(3),
      note: `${note}; median of ${all(runs)}`,
    });
    return [
      row(
        `nix-store --realise once per derivation, ${count} of ~${seconds} s (the floor of a tool that builds each in turn)`,
        floor,
        times.floor,
        `overhead ${share(floor)}; ${perDrv(floor)}`,
      ),
      ...(previous === undefined
        ? []
        : [
            row(
              `accord rebuild of ${before ?? ''}, ${count} fresh derivations of ~${seconds} s each, one at a time`,
              previous,
              times.previous,
              `overhead ${share(previous)} of the build time; ${perDrv(previous)}`,
            ),
          ]),
      row(
        `accord rebuild of ${count} fresh derivations of ~${seconds} s each, one at a time`,
        accord,
        times.accord,
        `overhead ${share(accord)} of the build time (goal ≤ 5%); ${perDrv(accord)}; ${((1000 * (accord - floor)) / count).toFixed(0)} ms per derivation over the floor`,
      ),
      {
        name: 'accord rebuild of an empty work list (its fixed cost: Node, state, spool)',
        value: `${empty.toFixed(2)} s`,
        baseline: '',
        ratio: '',
        note: `${((1000 * empty) / count).toFixed(0)} ms per derivation over ${count}`,
      },
    ];
  } finally {
    await log.close();
    rmSync(dir, { recursive: true, force: true });
  }
}
