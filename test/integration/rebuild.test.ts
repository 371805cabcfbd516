/**
 * `accord rebuild` with real Nix: a fresh build, a `--check` rebuild that agrees, one that
 * does not (the differing build is claimed and its NAR kept), a failing derivation (reported,
 * never claimed) and a path without a derivation; a second run does nothing again; and a run
 * killed with SIGKILL halfway, then started again, builds every path once and submits every
 * claim once. Each derivation counts its completed builds in a file outside the store.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { claimToJson, parseEntry } from '../../src/claim/index.js';
import { RebuildState, itemKey, readDerivation } from '../../src/rebuild/index.js';
import { ACCORD_BIN, runAccord } from '../support/cli.js';
import { type TestLog, startTestLog } from '../support/log.js';
import { NIX_CONFIG, nixEnv } from '../support/nix.js';
import { HAVE_NIX, requireAvailable, shouldRun } from '../support/requirements.js';

const exec = promisify(execFile);

/** A Nix file of derivations whose scripts count their builds in `counts`. */
function writeDerivations(
  dir: string,
  counts: string,
  salt: string,
  scripts: Record<string, string>,
) {
  const attrs = Object.entries(scripts)
    .map(
      ([name, script]) =>
        `  ${name} = derivation { name = "rebuild-${name}"; salt = "${salt}"; system = builtins.currentSystem; builder = "/bin/sh"; args = [ "-c" "echo started >> ${counts}/${name}.started; ${script}" ]; };`,
    )
    .join('\n');
  const file = join(dir, 'rebuild.nix');
  writeFileSync(file, `{\n${attrs}\n}\n`);
  return file;
}

const done = (script: string, name: string, counts: string) =>
  `${script}; echo done >> ${counts}/${name}.done`;

async function instantiate(file: string, attr: string): Promise<string> {
  return (await exec('nix-instantiate', [file, '-A', attr], { env: nixEnv })).stdout.trim();
}
async function outputOf(drv: string): Promise<string> {
  return (await exec('nix-store', ['--query', '--outputs', drv], { env: nixEnv })).stdout.trim();
}
const lines = (path: string) =>
  existsSync(path)
    ? readFileSync(path, 'utf8')
        .split('\n')
        .filter((l) => l !== '').length
    : 0;

async function logClaims(log: TestLog) {
  const { treeSize } = await log.service.storage.state();
  const entries = await log.service.storage.entries(0, treeSize);
  return entries.map((e) => claimToJson(parseEntry(e)));
}

describe.runIf(shouldRun(HAVE_NIX))('accord rebuild with real Nix', () => {
  let log: TestLog;
  let dir: string;
  let tokenFile: string;
  const children: ChildProcess[] = [];

  beforeAll(async () => {
    requireAvailable(HAVE_NIX, 'Nix');
    log = await startTestLog();
    dir = mkdtempSync(join(tmpdir(), 'accord-rebuild-'));
    tokenFile = join(dir, 'token');
    writeFileSync(tokenFile, `${log.token}\n`);
  });
  afterAll(async () => {
    for (const c of children) c.kill('SIGKILL');
    await log.close();
  });

  const args = (work: string, state: string) => [
    'rebuild',
    '--from',
    work,
    '--log',
    log.url,
    '--token-file',
    tokenFile,
    '--state',
    join(state, 'state.db'),
    '--spool',
    join(state, 'spool.db'),
    '--cache-dir',
    join(state, 'cache'),
    '--json',
  ];

  test('fresh, agreeing and differing rebuilds are claimed; a failure and a missing derivation are reported, not claimed; a second run does nothing again', async () => {
    const counts = mkdtempSync(join(tmpdir(), 'accord-rebuild-counts-'));
    const file = writeDerivations(dir, counts, `${Date.now()}`, {
      fresh: done('echo fresh > $out', 'fresh', counts),
      present: done('echo present > $out', 'present', counts),
      // $$, the shell's process id: another output in every build.
      unstable: done('echo build $$ > $out', 'unstable', counts),
      broken: 'echo this derivation fails; exit 1',
    });
    const drv = Object.fromEntries(
      await Promise.all(
        ['fresh', 'present', 'unstable', 'broken'].map(async (a) => [
          a,
          await instantiate(file, a),
        ]),
      ),
    ) as Record<string, string>;
    const out = Object.fromEntries(
      await Promise.all(Object.entries(drv).map(async ([a, d]) => [a, await outputOf(d)])),
    ) as Record<string, string>;
    // Built before: the rebuild checks these two.
    await exec('nix-store', ['--realise', drv.present ?? '', drv.unstable ?? ''], { env: nixEnv });
    const missing = `/nix/store/${'0'.repeat(32)}-rebuild-nowhere`;
    const work = join(dir, 'work');
    writeFileSync(
      work,
      [
        `# a work list`,
        drv.fresh,
        `${out.present} ${drv.present}`,
        out.unstable, // its deriver, from the local store
        drv.broken,
        missing,
        '',
      ].join('\n'),
    );
    const state = mkdtempSync(join(tmpdir(), 'accord-rebuild-state-'));
    const first = await runAccord(args(work, state), { env: { NIX_CONFIG } });
    expect(first.code, first.stderr).toBe(3);
    const summary = JSON.parse(first.stdout) as {
      built: number;
      differs: number;
      failed: number;
      noDerivation: number;
      items: { status: string; reason?: string }[];
      submit: { submitted: number };
    };
    expect(summary, first.stdout).toMatchObject({
      built: 2,
      differs: 1,
      failed: 1,
      noDerivation: 1,
    });
    expect(summary.items.map((i) => i.status)).toEqual([
      'built',
      'built',
      'differs',
      'failed',
      'no-derivation',
    ]);
    expect(summary.items[3]?.reason).toContain('this derivation fails');
    expect(summary.items[4]?.reason).toContain('nix-instantiate');
    expect(summary.submit.submitted).toBe(3);
    // Each build ran once more than before (present and unstable were built once already).
    expect([lines(join(counts, 'fresh.done')), lines(join(counts, 'present.done'))]).toEqual([
      1, 2,
    ]);
    expect(lines(join(counts, 'unstable.done'))).toBe(2);
    await log.waitForSize(3);
    const claims = await logClaims(log);
    expect(claims.map((c) => c.storePath).sort()).toEqual(
      [out.fresh, out.present, out.unstable].sort(),
    );
    // The differing build is claimed as what it is, and kept for the dashboard.
    const info = JSON.parse(
      (await exec('nix', ['path-info', '--json', out.unstable ?? ''], { env: nixEnv })).stdout,
    ) as { narHash: string }[];
    const unstableClaim = claims.find((c) => c.storePath === out.unstable);
    expect(unstableClaim?.narHash).not.toBe(info[0]?.narHash);
    const narinfo = readFileSync(
      join(state, 'cache', `${(out.unstable ?? '').slice(11, 43)}.narinfo`),
      'utf8',
    );
    expect(narinfo).toContain(`NarHash: ${unstableClaim?.narHash ?? ''}`);

    const again = await runAccord(args(work, state), { env: { NIX_CONFIG } });
    expect(again.code, again.stdout).toBe(3); // the failures are still failures
    const second = JSON.parse(again.stdout) as {
      doneBefore: number;
      submit: { submitted: number };
    };
    expect(second).toMatchObject({ doneBefore: 3, failed: 1, noDerivation: 1 });
    expect(second.submit.submitted).toBe(0);
    expect(lines(join(counts, 'fresh.done'))).toBe(1);
    expect(lines(join(counts, 'broken.started'))).toBe(1);
    expect((await logClaims(log)).length).toBe(3);
  }, 300_000);

  test('a batch: side-by-side builds, failures and a failed input each told apart, the fresh builds under one Nix call', async () => {
    const counts = mkdtempSync(join(tmpdir(), 'accord-rebuild-counts-'));
    const salt = `${Date.now()}`;
    // $PPID: the Nix process that ran the builder.
    const parent = (n: string) => `echo $PPID > ${counts}/${n}.parent`;
    const file = join(dir, 'batch.nix');
    const drvOf = (name: string, script: string, extra = '') =>
      `  ${name} = derivation { name = "batch-${name}"; salt = "${salt}"; ${extra} system = builtins.currentSystem; builder = "/bin/sh"; args = [ "-c" "${script}" ]; };`;
    writeFileSync(
      file,
      `rec {
${drvOf('ok1', `${parent('ok1')}; /bin/sleep 0.5; echo ok1 > $out`)}
${drvOf('ok2', `${parent('ok2')}; /bin/sleep 0.5; echo ok2 > $out`)}
${drvOf('bad1', 'echo first reason; /bin/sleep 0.3; exit 4')}
${drvOf('bad2', 'echo second reason; exit 5')}
${drvOf('after', 'echo $dep > $out', 'dep = bad1;')}
${drvOf('input', 'echo the input fails; exit 6')}
${drvOf('uses', 'echo $dep > $out', 'dep = input;')}
${drvOf('next', 'echo $dep > $out', 'dep = uses;')}
}
`,
    );
    const names = ['ok1', 'bad1', 'ok2', 'bad2', 'after', 'uses', 'next'];
    const drvs = await Promise.all(names.map((n) => instantiate(file, n)));
    const work = join(dir, 'work-batch');
    writeFileSync(work, `${drvs.join('\n')}\n`);
    const state = mkdtempSync(join(tmpdir(), 'accord-rebuild-state-'));
    const run = await runAccord([...args(work, state), '--jobs', '2'], { env: { NIX_CONFIG } });
    expect(run.code, run.stderr).toBe(3);
    const summary = JSON.parse(run.stdout) as { items: { status: string; reason?: string }[] };
    const by = Object.fromEntries(names.map((n, i) => [n, summary.items[i]]));
    expect(names.map((n) => by[n]?.status)).toEqual([
      'built',
      'failed',
      'built',
      'failed',
      'failed',
      'failed',
      'failed',
    ]);
    const reason = (n: string) => by[n]?.reason ?? '';
    expect(reason('bad1')).toMatch(
      /-batch-bad1\.drv' failed with exit code 4\nlast log lines:\n> first reason$/,
    );
    expect(reason('bad2')).toMatch(
      /-batch-bad2\.drv' failed with exit code 5\nlast log lines:\n> second reason$/,
    );
    expect(reason('bad1')).not.toContain('second reason');
    expect(reason('after')).toMatch(
      /dependencies of derivation '.*-batch-after\.drv' failed to build/,
    );
    expect(reason('uses')).toMatch(
      /^an input of the derivation could not be realised: .*-batch-input\.drv\n/,
    );
    expect(reason('uses')).toContain('> the input fails');
    expect(reason('next')).toMatch(/could not be realised: .*-batch-uses\.drv \(above\)$/);
    // Both fresh builds ran under the same Nix process: one call for the batch.
    const ok1Parent = Number(readFileSync(join(counts, 'ok1.parent'), 'utf8'));
    expect(ok1Parent).toBeGreaterThan(1);
    expect(Number(readFileSync(join(counts, 'ok2.parent'), 'utf8'))).toBe(ok1Parent);
  }, 120_000);

  test('killed with SIGKILL halfway and started again: every path built once, every claim submitted once', async () => {
    const counts = mkdtempSync(join(tmpdir(), 'accord-rebuild-counts-'));
    const names = ['k1', 'k2', 'k3', 'k4'];
    const file = writeDerivations(
      dir,
      counts,
      `${Date.now()}`,
      Object.fromEntries(names.map((n) => [n, done(`/bin/sleep 1; echo ${n} > $out`, n, counts)])),
    );
    const drvs = await Promise.all(names.map((n) => instantiate(file, n)));
    const outs = await Promise.all(drvs.map(outputOf));
    const work = join(dir, 'work-kill');
    writeFileSync(work, `${drvs.join('\n')}\n`);
    const state = mkdtempSync(join(tmpdir(), 'accord-rebuild-state-'));
    const before = (await logClaims(log)).length;
    const child = spawn(process.execPath, [ACCORD_BIN, ...args(work, state)], {
      env: { ...process.env, NIX_CONFIG },
      stdio: 'ignore',
    });
    children.push(child);
    // Killed while the second derivation builds.
    for (let i = 0; i < 600 && lines(join(counts, 'k2.started')) === 0; i++)
      await new Promise((r) => setTimeout(r, 50));
    expect(lines(join(counts, 'k2.started'))).toBe(1);
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    const rerun = await runAccord(args(work, state), { env: { NIX_CONFIG } });
    expect(rerun.code, rerun.stderr).toBe(0);
    // The orphaned Nix may finish k2: either way no derivation completes twice.
    for (const n of names) expect(lines(join(counts, `${n}.done`)), n).toBe(1);
    await log.waitForSize(before + 4);
    const claims = (await logClaims(log)).slice(before);
    expect(claims.map((c) => c.storePath).sort()).toEqual([...outs].sort());
  }, 300_000);

  test('a fresh build that Nix finished after the rebuilder died is claimed, not built again with --check', async () => {
    const counts = mkdtempSync(join(tmpdir(), 'accord-rebuild-counts-'));
    const file = writeDerivations(dir, counts, `${Date.now()}`, {
      orphan: done('echo orphan > $out', 'orphan', counts),
    });
    const drv = await instantiate(file, 'orphan');
    const work = join(dir, 'work-orphan');
    writeFileSync(work, `${drv}\n`);
    const state = mkdtempSync(join(tmpdir(), 'accord-rebuild-state-'));
    // As a killed run leaves it: the fresh build recorded as started, and Nix, orphaned, done.
    const record = new RebuildState(join(state, 'state.db'));
    record.record(itemKey({ drv }), 'started', 'fresh');
    record.close();
    await exec('nix-store', ['--realise', drv], { env: nixEnv });
    const run = await runAccord(args(work, state), { env: { NIX_CONFIG } });
    expect(run.code, run.stderr).toBe(0);
    expect((JSON.parse(run.stdout) as { built: number }).built).toBe(1);
    expect(lines(join(counts, 'orphan.done'))).toBe(1);
  }, 120_000);

  test('an interrupted fresh build whose output was substituted since is checked, never claimed unbuilt', async () => {
    const counts = mkdtempSync(join(tmpdir(), 'accord-rebuild-counts-'));
    const file = writeDerivations(dir, counts, `${Date.now()}`, {
      swapped: done('echo swapped > $out', 'swapped', counts),
    });
    const drv = await instantiate(file, 'swapped');
    const out = await outputOf(drv);
    // Built once, copied to a cache, deleted, and substituted back: valid, but not built here.
    await exec('nix-store', ['--realise', drv], { env: nixEnv });
    const cache = join(dir, `swapped-cache-${Date.now()}`);
    await exec('nix', ['copy', '--to', `file://${cache}`, out], { env: nixEnv });
    await exec('nix-store', ['--delete', out], { env: nixEnv });
    await exec(
      'nix',
      ['copy', '--from', `file://${cache}`, '--option', 'require-sigs', 'false', out],
      { env: nixEnv },
    );
    const info = JSON.parse(
      (await exec('nix', ['path-info', '--json', out], { env: nixEnv })).stdout,
    ) as { ultimate?: boolean }[];
    expect(info[0]?.ultimate).toBeUndefined();
    const work = join(dir, 'work-swapped');
    writeFileSync(work, `${drv}\n`);
    const state = mkdtempSync(join(tmpdir(), 'accord-rebuild-state-'));
    // As a killed run leaves it: the fresh build recorded as started.
    const record = new RebuildState(join(state, 'state.db'));
    record.record(itemKey({ drv }), 'started', 'fresh');
    record.close();
    const run = await runAccord(args(work, state), { env: { NIX_CONFIG } });
    expect(run.code, run.stderr).toBe(0);
    expect((JSON.parse(run.stdout) as { built: number }).built).toBe(1);
    // It was built again (--check), not claimed as the copy that came from the cache.
    expect(lines(join(counts, 'swapped.done'))).toBe(2);
  }, 120_000);

  test('multi-output derivations: one output checked while another is not in the store; one that differs is claimed', async () => {
    const salt = `${Date.now()}`;
    const file = join(dir, 'multi.nix');
    const multi = (name: string, script: string) =>
      `  ${name} = derivation { name = "multi-${name}"; salt = "${salt}"; outputs = [ "out" "dev" ]; system = builtins.currentSystem; builder = "/bin/sh"; args = [ "-c" "${script}" ]; };`;
    writeFileSync(
      file,
      `{\n${multi('half', 'echo out > $out; echo dev > $dev')}\n${multi('moving', 'echo $$ > $out; echo dev > $dev')}\n}\n`,
    );
    const half = await instantiate(file, 'half');
    const moving = await instantiate(file, 'moving');
    const outputs = (drv: string) =>
      Object.fromEntries(
        [...readDerivation(drv).outputs].map(([name, o]) => [name, o.path]),
      ) as Record<string, string>;
    const h = outputs(half);
    const m = outputs(moving);
    await exec('nix-store', ['--realise', half, moving], { env: nixEnv });
    // Only `out` of half stays in the store, as when one output alone was substituted.
    await exec('nix-store', ['--delete', h.dev ?? ''], { env: nixEnv });
    const work = join(dir, 'work-multi');
    writeFileSync(work, `${h.out} ${half}\n${moving}\n`);
    const state = mkdtempSync(join(tmpdir(), 'accord-rebuild-state-'));
    const run = await runAccord(args(work, state), { env: { NIX_CONFIG } });
    const summary = JSON.parse(run.stdout) as {
      items: { status: string; reason?: string; claims: { storePath: string }[] }[];
    };
    expect(summary.items[0], run.stdout).toMatchObject({ status: 'built' });
    // moving's out differs: claimed as built; dev is claimed only when Nix compared it.
    expect(summary.items[1]?.status, run.stdout).toBe('differs');
    const claimed = (summary.items[1]?.claims ?? []).map((c) => c.storePath);
    expect(claimed).toContain(m.out);
    if (!claimed.includes(m.dev ?? '')) expect(summary.items[1]?.reason).toContain('not compared');
    expect(run.code, run.stderr).toBe(0);
  }, 120_000);

  test('readDerivation() reads the outputs and input derivations Nix reads, escapes and all', async () => {
    const salt = `${Date.now()}`;
    const file = join(dir, 'aterm.nix');
    writeFileSync(
      file,
      `rec {
  dep = derivation { name = "aterm-dep"; salt = "${salt}"; system = builtins.currentSystem; builder = "/bin/sh"; args = [ "-c" "echo dep > $out" ]; };
  multi = derivation { name = "aterm-multi"; salt = "${salt}"; outputs = [ "out" "dev" "doc" ]; odd = "quote \\" backslash \\\\ newline \\n tab \\t"; system = builtins.currentSystem; builder = "/bin/sh"; args = [ "-c" "echo \${dep} > $out; echo > $dev; echo > $doc" ]; };
}
`,
    );
    const drv = await instantiate(file, 'multi');
    const parsed = readDerivation(drv);
    const outputs = (await exec('nix-store', ['--query', '--outputs', drv], { env: nixEnv })).stdout
      .split('\n')
      .filter((l) => l !== '');
    expect([...parsed.outputs.values()].map((o) => o.path).sort()).toEqual(outputs.sort());
    expect([...parsed.outputs.keys()]).toEqual(['dev', 'doc', 'out']);
    const references = (
      await exec('nix-store', ['--query', '--references', drv], { env: nixEnv })
    ).stdout
      .split('\n')
      .filter((l) => l.endsWith('.drv'));
    expect([...parsed.inputDrvs.keys()]).toEqual(references);
    expect(parsed.env.get('odd')).toBe('quote " backslash \\ newline \n tab \t');
  });

  test('an output the store records as valid but that is not on disk is reported as failed, never claimed', async () => {
    const counts = mkdtempSync(join(tmpdir(), 'accord-rebuild-counts-'));
    const file = writeDerivations(dir, counts, `${Date.now()}`, {
      gone: done('echo gone > $out', 'gone', counts),
    });
    const drv = await instantiate(file, 'gone');
    const out = await outputOf(drv);
    await exec('nix-store', ['--realise', drv], { env: nixEnv });
    // What a damaged store looks like: registered valid, nothing on disk.
    await exec('rm', ['-rf', out]);
    const work = join(dir, 'work-gone');
    writeFileSync(work, `${drv}\n`);
    const state = mkdtempSync(join(tmpdir(), 'accord-rebuild-state-'));
    const before = (await logClaims(log)).length;
    try {
      const run = await runAccord(args(work, state), { env: { NIX_CONFIG } });
      expect(run.code, run.stderr).toBe(3);
      const summary = JSON.parse(run.stdout) as { items: { status: string; reason?: string }[] };
      expect(summary.items[0]?.status).toBe('failed');
      expect(summary.items[0]?.reason).toContain('not on disk');
      expect((await logClaims(log)).length).toBe(before);
    } finally {
      await exec('nix-store', ['--repair-path', out], { env: nixEnv }).catch(() => undefined);
    }
  }, 120_000);

  test('--jobs 1 runs one build at a time', async () => {
    const counts = mkdtempSync(join(tmpdir(), 'accord-rebuild-counts-'));
    const lock = join(counts, 'building');
    const names = ['j1', 'j2', 'j3'];
    // A build that finds another one under way fails.
    const file = writeDerivations(
      dir,
      counts,
      `${Date.now()}`,
      Object.fromEntries(
        names.map((n) => [
          n,
          done(
            `/bin/mkdir ${lock} || exit 1; /bin/sleep 0.3; echo ${n} > $out; /bin/rmdir ${lock}`,
            n,
            counts,
          ),
        ]),
      ),
    );
    const work = join(dir, 'work-jobs');
    writeFileSync(
      work,
      `${(await Promise.all(names.map((n) => instantiate(file, n)))).join('\n')}\n`,
    );
    const state = mkdtempSync(join(tmpdir(), 'accord-rebuild-state-'));
    const run = await runAccord([...args(work, state), '--jobs', '1'], { env: { NIX_CONFIG } });
    expect(run.code, run.stdout).toBe(0);
    expect((JSON.parse(run.stdout) as { built: number }).built).toBe(3);
  }, 120_000);
});
