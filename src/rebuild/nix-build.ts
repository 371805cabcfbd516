/**
 * Rebuilding derivations with the local Nix, never substituting the outputs under test. For a
 * batch of derivations: their inputs are realised first, in one call (these may come from
 * substituters); then the derivations whose outputs are not in the store are built fresh, all
 * in one `nix-store --realise --keep-going` with substitution off, and those whose outputs are
 * already valid (from a cache, or an earlier build) are built again with `--check
 * --keep-failed`, one derivation a call, which keeps a differing result beside the output as
 * `<output>.check`. Nix reports each build in its internal-json log format ({@link BuildLog}),
 * so one call's failures are told apart; what was built is what the store holds valid after
 * it. The derivations' outputs and inputs are read from their `.drv` files, not asked of Nix.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { closeSync, existsSync, fstatSync, lstatSync, openSync, readSync } from 'node:fs';
import { type ClaimJson } from '../claim/index.js';
import {
  type StoredPath,
  narSourceFromPath,
  runNix,
  storedClaims,
  storedPaths,
} from '../host/index.js';
import {
  BuildLog,
  type BuildProgress,
  type Derivation,
  MAX_DERIVATION_BYTES,
  NIX_STORE_DIR,
  encodeNix32,
  parseDerivation,
  writeNar,
} from '../nix/index.js';

/** What rebuilding one output gave. */
export type BuildOutcome =
  | {
      /** Built here: fresh, or `--check` found the same bytes as the path in the store. */
      readonly status: 'built';
      readonly claim: ClaimJson;
      readonly checked: boolean;
      /** Where the built bytes are (the output path). */
      readonly path: string;
    }
  | {
      /** `--check` built other bytes than the store's copy: the claim is of this build. */
      readonly status: 'differs';
      readonly claim: ClaimJson;
      /** The store's copy's claim (built elsewhere or earlier). */
      readonly stored: ClaimJson;
      readonly path: string;
      /** The NAR of this build (made to hash it). */
      readonly nar: Buffer;
    }
  | {
      /** Not compared: Nix's check stopped at another output that differs. Not claimed. */
      readonly status: 'unchecked';
      readonly reason: string;
    }
  | { readonly status: 'failed'; readonly reason: string };

export interface NixOptions {
  /** Deadline of one build in ms (0: none), Nix's own `timeout` setting. */
  readonly buildTimeoutMs: number;
}

/** One derivation to rebuild, and which of its outputs. */
export interface Target {
  readonly drv: string;
  readonly derivation: Derivation;
  /** The outputs to rebuild (store paths). */
  readonly outputs: readonly string[];
  /** Build fresh even when the outputs are valid (a fresh build of ours was interrupted). */
  readonly fresh: boolean;
}

type BuildMode = 'fresh' | 'check';

/**
 * The options of the builds under test: no substitution, and on this machine — what a remote
 * builder made is copied in, not built here.
 */
const HERE = ['--option', 'substitute', 'false', '--option', 'builders', ''];

const nixStore = (args: readonly string[], timeoutMs: number) =>
  runNix('nix-store', args, timeoutMs);

/** What one building call of Nix said, and how it ended. */
interface NixRun {
  readonly log: BuildLog;
  /** Exit code 0. */
  readonly ok: boolean;
  /** Why Nix gave no answer of its own (it could not start, or was killed); else undefined. */
  readonly broken?: string;
}

/**
 * Runs `nix-store --realise ARGS…` with its internal-json log read line by line, for the
 * derivations `drvs` (those whose builds and errors to tell apart).
 */
function realise(
  args: readonly string[],
  drvs: Iterable<string>,
  options: NixOptions,
  onProgress?: (progress: BuildProgress) => void,
): Promise<NixRun> {
  const timeout =
    options.buildTimeoutMs > 0
      ? ['--option', 'timeout', String(Math.ceil(options.buildTimeoutMs / 1000))]
      : [];
  const log = new BuildLog(drvs, NIX_STORE_DIR);
  return new Promise((resolve) => {
    let child: ReturnType<typeof spawn>;
    try {
      child = spawn(
        'nix-store',
        ['--realise', '--log-format', 'internal-json', ...timeout, ...args],
        { stdio: ['ignore', 'ignore', 'pipe'] },
      );
    } catch (error) {
      resolve({ log, ok: false, broken: (error as Error).message });
      return;
    }
    if (child.stderr === null) throw new Error('bug: nix-store without a standard error pipe');
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (chunk: string) => {
      log.feed(chunk, onProgress);
    });
    child.once('error', (error) => {
      resolve({ log, ok: false, broken: error.message });
    });
    child.once('close', (code, signal) => {
      log.end();
      if (signal !== null) resolve({ log, ok: false, broken: `nix-store was killed (${signal})` });
      else resolve({ log, ok: code === 0 });
    });
  });
}

/**
 * Reads and parses a derivation of the local store (its size capped before it is read); throws
 * with what is wrong (not there, too large, not a derivation Nix wrote).
 */
export function readDerivation(drv: string): Derivation {
  const fd = openSync(drv, 'r');
  try {
    const size = fstatSync(fd).size;
    if (size > MAX_DERIVATION_BYTES)
      throw new Error(`${drv}: larger than ${MAX_DERIVATION_BYTES} bytes`);
    const bytes = Buffer.alloc(size);
    let read = 0;
    while (read < size) {
      const n = readSync(fd, bytes, read, size - read, read);
      if (n === 0) break;
      read += n;
    }
    return parseDerivation(bytes.subarray(0, read).toString('latin1'));
  } finally {
    closeSync(fd);
  }
}

/** Whether anything is at `path` (a valid store path always is). */
function onDisk(path: string): boolean {
  try {
    lstatSync(path);
    return true;
  } catch {
    return false;
  }
}

/**
 * The derivations that produced `paths`, where the store knows one and has it: one query for
 * the paths on disk (a path not on disk is not valid, and has none).
 */
export async function localDerivers(paths: readonly string[]): Promise<Map<string, string>> {
  const derivers = new Map<string, string>();
  const keep = (path: string, drv: string | undefined) => {
    if (drv !== undefined && drv.endsWith('.drv') && existsSync(drv)) derivers.set(path, drv);
  };
  const present = paths.filter(onDisk);
  const query = async (asked: readonly string[]) =>
    (await nixStore(['--query', '--deriver', ...asked], 60_000)).split('\n').slice(0, asked.length);
  if (present.length === 0) return derivers;
  try {
    const answers = await query(present);
    if (answers.length !== present.length) throw new Error('one answer a path');
    present.forEach((path, i) => {
      keep(path, answers[i]);
    });
  } catch {
    // One path Nix does not hold valid fails the whole query: ask one at a time.
    for (const path of present) keep(path, (await query([path]).catch(() => []))[0]);
  }
  return derivers;
}

/**
 * Realises the inputs of `targets` that are not targets themselves, in one call (substituters
 * allowed); returns, for each target that cannot be built for want of an input, why. What
 * counts is what the store holds valid afterwards, so a failure is pinned on the targets whose
 * input outputs are missing, and a target whose input is a failed target fails too.
 */
async function realiseInputs(
  targets: readonly Target[],
  options: NixOptions & { readonly jobs: number },
): Promise<Map<Target, string>> {
  const drvs = new Set(targets.map((t) => t.drv));
  const inputs = new Set<string>();
  for (const t of targets)
    for (const input of t.derivation.inputDrvs.keys()) if (!drvs.has(input)) inputs.add(input);
  const failed = new Map<Target, string>();
  if (inputs.size === 0) return failed;
  const run = await realise(
    ['--keep-going', '--max-jobs', String(options.jobs), ...inputs],
    inputs,
    options,
  );
  if (!run.ok) {
    // Which inputs are missing: the outputs the targets use of each, asked of the store.
    const missing = new Map<string, string>();
    const used = new Map<string, string[]>();
    for (const input of inputs) {
      const names = new Set<string>();
      for (const t of targets)
        for (const n of t.derivation.inputDrvs.get(input) ?? []) names.add(n);
      try {
        const outputs = readDerivation(input).outputs;
        const paths = [...names].map((n) => outputs.get(n)?.path);
        if (paths.every((p) => p !== undefined)) used.set(input, paths);
        else missing.set(input, `${input} lacks an output a derivation of the batch uses`);
      } catch (error) {
        missing.set(input, (error as Error).message);
      }
    }
    const valid = await storedClaims([...new Set([...used.values()].flat())]);
    for (const [input, paths] of used)
      if (paths.some((p) => valid.get(p) == null))
        missing.set(input, run.broken ?? run.log.failure(input));
    for (const t of targets)
      for (const input of t.derivation.inputDrvs.keys()) {
        const why = missing.get(input);
        if (why !== undefined && !failed.has(t))
          failed.set(t, `an input of the derivation could not be realised: ${input}\n${why}`);
      }
  }
  // A target whose input is a target that cannot be built cannot be built either.
  for (let changed = true; changed;) {
    changed = false;
    const out = new Set([...failed.keys()].map((t) => t.drv));
    for (const t of targets)
      if (!failed.has(t))
        for (const input of t.derivation.inputDrvs.keys())
          if (out.has(input)) {
            failed.set(t, `an input of the derivation could not be realised: ${input} (above)`);
            changed = true;
            break;
          }
  }
  return failed;
}

/** The store paths whose hash parts may appear in an output of `drv`: its closure's outputs. */
async function candidates(drv: string): Promise<string[]> {
  const out = await nixStore(['--query', '--requisites', '--include-outputs', drv], 600_000);
  return out.split('\n').filter((p) => p !== '' && !p.endsWith('.drv'));
}

/**
 * The claim for a copy of `output` at `path` (its `.check` sibling), with its NAR: NAR hash
 * and size of its archive, and its references found as Nix finds them, by scanning the archive
 * for the hash parts of the store paths the build could refer to.
 */
async function claimOfCopy(
  drv: string,
  output: string,
  path: string,
  stored: ClaimJson,
): Promise<{ claim: ClaimJson; nar: Buffer }> {
  const nar = Buffer.concat([...writeNar(narSourceFromPath(path))]);
  const storeDir = output.slice(0, output.lastIndexOf('/'));
  const references = (await candidates(drv))
    .map((p) => p.slice(storeDir.length + 1))
    .filter((base) => nar.includes(base.slice(0, 32)))
    .sort();
  const claim = {
    ...stored,
    narHash: `sha256:${encodeNix32(createHash('sha256').update(nar).digest())}`,
    narSize: nar.length,
    references,
  };
  return { claim, nar };
}

const failAll = (outputs: readonly string[], reason: string) =>
  new Map<string, BuildOutcome>(outputs.map((o) => [o, { status: 'failed', reason }]));

/** The outcome of an output the store holds valid after a build: built, unless not on disk. */
function builtOutcome(output: string, claim: ClaimJson, checked: boolean): BuildOutcome {
  if (!onDisk(output))
    return {
      status: 'failed',
      reason: `the store records ${output} as valid but it is not on disk (nix-store --verify --repair)`,
    };
  return { status: 'built', claim, checked, path: output };
}

/** Runs `work` over `list`, `n` at a time; a fault stops taking work, and is thrown once all end. */
async function eachLimited<T>(n: number, list: readonly T[], work: (t: T) => Promise<void>) {
  let next = 0;
  let failed = false;
  const worker = async () => {
    try {
      while (!failed && next < list.length) await work(list[next++] as T);
    } catch (error) {
      failed = true;
      throw error;
    }
  };
  const ended = await Promise.allSettled(
    Array.from({ length: Math.max(1, Math.min(n, list.length)) }, worker),
  );
  const fault = ended.find((e) => e.status === 'rejected');
  if (fault !== undefined) throw fault.reason;
}

export interface BatchOptions extends NixOptions {
  /** Builds at the same time (Nix's `--max-jobs`; checks run this many calls at once). */
  readonly jobs: number;
  /** Called once the modes are known, before Nix builds: recorded, so that a restart resumes the same way. */
  readonly onStart: (modes: ReadonlyMap<Target, BuildMode>) => void;
  /** Called with the fresh builds ended so far, as Nix counts them. */
  readonly onProgress?: (ended: number) => void;
  /** Called with what came of each target, as soon as it is known. */
  readonly onDone: (target: Target, outcomes: Map<string, BuildOutcome>) => void | Promise<void>;
}

/**
 * Rebuilds `targets` (their `.drv` files read already) and tells `onDone` what came of each
 * output: inputs realised, then the fresh builds in one Nix call and the checks `jobs` at a
 * time. A build that fails, an input that cannot be realised, is a failure of its targets
 * only; a fault of Nix or the store (a query failing) throws.
 */
export async function rebuildBatch(
  targets: readonly Target[],
  options: BatchOptions,
): Promise<void> {
  // What came of a target; a fault in finding it out (a store query, reading a build) fails
  // that target alone.
  const settle = async (
    t: Target,
    outcomes: () => Map<string, BuildOutcome> | Promise<Map<string, BuildOutcome>>,
  ) => {
    let result: Map<string, BuildOutcome>;
    try {
      result = await outcomes();
    } catch (error) {
      result = failAll(t.outputs, (error as Error).message);
    }
    await options.onDone(t, result);
  };
  const inputFailures = await realiseInputs(targets, options);
  const ready: Target[] = [];
  for (const t of targets) {
    const why = inputFailures.get(t);
    if (why === undefined) ready.push(t);
    else await options.onDone(t, failAll(t.outputs, why));
  }
  // A valid path is on disk: outputs none of which is there need no question to Nix.
  const asked = ready.filter((t) => t.outputs.some(onDisk));
  const before = await storedPaths([...new Set(asked.flatMap((t) => t.outputs))]);
  // One mode a derivation: a check when every output asked of it is valid, but for a fresh
  // build of ours cut short, which the orphaned Nix process may have finished: what is valid
  // and was built here is claimed as it is (a check would build it twice).
  const freshDrvs = new Set(
    ready
      .filter(
        (t) =>
          t.outputs.some((o) => before.get(o) == null) ||
          (t.fresh && t.outputs.every((o) => before.get(o)?.ultimate === true)),
      )
      .map((t) => t.drv),
  );
  options.onStart(
    new Map(ready.map((t) => [t, freshDrvs.has(t.drv) ? 'fresh' : 'check'] as const)),
  );
  const fresh = ready.filter((t) => freshDrvs.has(t.drv));
  if (fresh.length > 0) {
    const run = await realise(
      ['--keep-going', '--max-jobs', String(options.jobs), ...HERE, ...freshDrvs],
      freshDrvs,
      options,
      (p) => options.onProgress?.(p.ended),
    );
    // One query for the batch; should it fail, each target asks for its own.
    const after = await storedPaths([...new Set(fresh.flatMap((t) => t.outputs))]).catch(
      () => undefined,
    );
    const outcome = (
      t: Target,
      output: string,
      stored: StoredPath | null | undefined,
    ): BuildOutcome => {
      if (stored == null)
        return {
          status: 'failed',
          reason:
            run.broken ??
            (run.log.of(t.drv).errors.length > 0 || !run.ok
              ? run.log.failure(t.drv)
              : `Nix built ${t.drv} but not ${output}`),
        };
      // Valid, but substituted or copied in: Nix kept that copy, and built nothing of it here.
      if (!stored.ultimate)
        return {
          status: 'failed',
          reason: `${output} is in the store but was not built here (substituted or copied in): remove it (nix-store --delete) to rebuild it`,
        };
      return builtOutcome(output, stored.claim, false);
    };
    for (const t of fresh)
      await settle(t, async () => {
        const stored = after ?? (await storedPaths(t.outputs));
        return new Map(t.outputs.map((o) => [o, outcome(t, o, stored.get(o))]));
      });
  }
  const checks = new Map<string, Target[]>();
  for (const t of ready)
    if (!freshDrvs.has(t.drv)) checks.set(t.drv, [...(checks.get(t.drv) ?? []), t]);
  await eachLimited(options.jobs, [...checks], async ([drv, same]) => {
    // Only the outputs asked for: Nix refuses to check a derivation some other output of which
    // is not valid (one output substituted alone).
    const byPath = new Map(
      [...(same[0] as Target).derivation.outputs].map(([name, o]) => [o.path, name]),
    );
    const names = [...new Set(same.flatMap((t) => t.outputs.map((o) => byPath.get(o) ?? o)))];
    const run = await realise(
      ['--check', '--keep-failed', ...HERE, `${drv}!${names.join(',')}`],
      [drv],
      options,
    );
    // One derivation a call: every message is about it.
    const said = [...run.log.of(drv).errors, ...run.log.other()];
    const differs = !run.ok && said.some((e) => /may not be deterministic/.test(e));
    // Nix stops at the first output that differs and names it: the outputs after it go
    // unchecked.
    const named =
      said.map((e) => /output '([^']+)' differs from/.exec(e)?.[1]).find(Boolean) ??
      (names.length === 1 ? [...byPath].find(([, n]) => n === names[0])?.[0] : undefined);
    let copy: Promise<{ claim: ClaimJson; nar: Buffer }> | undefined;
    const outcome = async (output: string): Promise<BuildOutcome> => {
      // --check leaves the store's record as it was.
      const claim = (before.get(output) as StoredPath).claim;
      if (!differs) return builtOutcome(output, claim, true);
      if (named === undefined)
        return {
          status: 'failed',
          reason: `Nix found the build of ${drv} differs, naming no output`,
        };
      if (output !== named)
        return {
          status: 'unchecked',
          reason: `not compared: Nix stopped at ${named}, which differs`,
        };
      if (!existsSync(`${output}.check`))
        return {
          status: 'failed',
          reason: `Nix found ${output} differs but left no .check copy of it`,
        };
      copy ??= claimOfCopy(drv, output, `${output}.check`, claim);
      const built = await copy;
      return {
        status: 'differs',
        claim: built.claim,
        stored: claim,
        path: `${output}.check`,
        nar: built.nar,
      };
    };
    for (const t of same)
      await settle(t, async () =>
        !run.ok && !differs
          ? failAll(t.outputs, run.broken ?? run.log.failure(drv))
          : new Map(await Promise.all(t.outputs.map(async (o) => [o, await outcome(o)] as const))),
      );
  });
}
