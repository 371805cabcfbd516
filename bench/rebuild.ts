/**
 * `accord rebuild` against plain `nix-store --realise` of the same kind of derivations, in the
 * same run: each side builds its own fresh derivations (same scripts, another salt), one at a
 * time, so the difference is what Accord adds per derivation — its queries to the store, the
 * claims, the spool and the submission to a log. Beside them: `nix-store --realise` called once
 * per derivation (what any tool that builds and looks at each derivation in turn pays at
 * least: the floor), `accord rebuild` of an empty work list (its fixed cost: Node, the state,
 * the spool), and, when ACCORD_REBUILD_BEFORE names another build's `bin/accord.js`, that
 * build's `accord rebuild` (before and after in one run). Then the same for derivations whose
 * outputs are already in the store, which `accord rebuild` checks (`--check`, one a call),
 * against `nix-store --realise --check` of all of them in one call.
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
      checkPlain: [] as number[],
      checkFloor: [] as number[],
      checkAccord: [] as number[],
    };
    // Outputs already in the store: accord rebuild checks them, one derivation a Nix call.
    // --check builds again and leaves the store as it was, so one set serves every round.
    const present = await derivations(dir, count, seconds);
    await exec('nix-store', ['--realise', ...present], { env });
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
      times.checkPlain.push(
        await timed(() =>
          exec('nix-store', ['--realise', '--check', '--max-jobs', '1', ...present], { env }),
        ),
      );
      times.checkFloor.push(
        await timed(async () => {
          for (const drv of present)
            await exec('nix-store', ['--realise', '--check', drv], { env });
        }),
      );
      times.checkAccord.push(await rebuild(BIN, present));
    }
    const median = (xs: number[]) =>
      [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;
    const empty = await rebuild(BIN, []);
    const all = (xs: number[]) => `runs ${xs.map((x) => x.toFixed(2)).join(', ')} s`;
    /** A row against `base`, the times of Nix building all `count` in one call. */
    const against = (base: number[], what: string) => {
      const b = median(base);
      return (name: string, runs: number[], note: string): Row => {
        const t = median(runs);
        const over = `overhead ${((100 * (t - b)) / b).toFixed(1)}%; ${((1000 * (t - b)) / count).toFixed(0)} ms per derivation`;
        return {
          name,
          value: `${t.toFixed(2)} s`,
          baseline: `${b.toFixed(2)} s (${what} of ${count} like them in one call; ${all(base)})`,
          ratio: (b / t).toFixed(3),
          note: `${over}${note === '' ? '' : `; ${note}`}; median of ${all(runs)}`,
        };
      };
    };
    const fresh = against(times.plain, 'nix-store --realise --max-jobs 1');
    const check = against(times.checkPlain, 'nix-store --realise --check --max-jobs 1');
    return [
      fresh(
        `nix-store --realise once per derivation, ${count} of ~${seconds} s (the floor of a tool that builds each in its own call)`,
        times.floor,
        '',
      ),
      ...(before === undefined
        ? []
        : [
            fresh(
              `accord rebuild of ${before}, ${count} fresh derivations of ~${seconds} s each, one at a time`,
              times.previous,
              '',
            ),
          ]),
      fresh(
        `accord rebuild of ${count} fresh derivations of ~${seconds} s each, one at a time`,
        times.accord,
        'goal ≤ 5%',
      ),
      check(
        `nix-store --realise --check once per derivation, ${count} of ~${seconds} s (the floor of one check a call)`,
        times.checkFloor,
        '',
      ),
      check(
        `accord rebuild of ${count} derivations of ~${seconds} s whose outputs are in the store (--check, one a call)`,
        times.checkAccord,
        '',
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
