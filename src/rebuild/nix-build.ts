/**
 * Rebuilding one derivation with the local Nix, never substituting the output under test: its
 * inputs are realised first (they may come from substituters), then the derivation itself is
 * built with substitution off — with `--check` when its output is already in the store (from a
 * cache or an earlier build), which builds it again and keeps a differing result beside it as
 * `<output>.check`. The derivation's outputs and inputs are read from its `.drv` file, not
 * asked of Nix.
 */
import { execFile } from 'node:child_process';
import { closeSync, existsSync, fstatSync, lstatSync, openSync, readSync } from 'node:fs';
import { promisify } from 'node:util';
import { type ClaimJson } from '../claim/index.js';
import { narSourceFromPath, storedClaims } from '../host/index.js';
import {
  type Derivation,
  MAX_DERIVATION_BYTES,
  encodeNix32,
  parseDerivation,
  writeNar,
} from '../nix/index.js';
import { createHash } from 'node:crypto';

const exec = promisify(execFile);

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
  | { readonly status: 'failed'; readonly reason: string };

export interface NixOptions {
  /** Deadline of one build in ms (0: none). */
  readonly buildTimeoutMs: number;
  /** Extra `--option NAME VALUE` pairs for every Nix command. */
  readonly nixOptions?: readonly (readonly [string, string])[];
}

async function nix(
  command: string,
  args: readonly string[],
  options: NixOptions,
  timeoutMs = 600_000,
): Promise<{ stdout: string; stderr: string }> {
  const extra = (options.nixOptions ?? []).flatMap(([k, v]) => ['--option', k, v]);
  return exec(command, [...args, ...extra], {
    timeout: timeoutMs,
    maxBuffer: 256 << 20,
    encoding: 'utf8',
  });
}

/** The last lines of a failed command's error output, for a report. */
function tail(error: unknown): string {
  const e = error as { stderr?: string; message?: string; killed?: boolean };
  if (e.killed === true) return 'the build ran past its deadline and was stopped';
  const text = (e.stderr ?? e.message ?? String(error)).trim().split('\n');
  return text.slice(-12).join('\n');
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

/** The derivation that produced a valid store path, if the store knows it and has it. */
export async function localDeriver(path: string, options: NixOptions): Promise<string | undefined> {
  try {
    const out = (
      await nix('nix-store', ['--query', '--deriver', path], options, 60_000)
    ).stdout.trim();
    return out.endsWith('.drv') && existsSync(out) ? out : undefined;
  } catch {
    return undefined;
  }
}

/** The store paths whose hash parts may appear in an output of `drv`: its closure's outputs. */
async function candidates(drv: string, options: NixOptions): Promise<string[]> {
  const out = await nix(
    'nix-store',
    ['--query', '--requisites', '--include-outputs', drv],
    options,
  );
  return out.stdout.split('\n').filter((p) => p !== '' && !p.endsWith('.drv'));
}

/**
 * The claim for a copy of `output` at `path` (its `.check` sibling), with its NAR: NAR hash and size of its
 * archive, and its references found as Nix finds them, by scanning the archive for the hash
 * parts of the store paths the build could refer to.
 */
async function claimOfCopy(
  drv: string,
  output: string,
  path: string,
  stored: ClaimJson,
  options: NixOptions,
): Promise<{ claim: ClaimJson; nar: Buffer }> {
  const nar = Buffer.concat([...writeNar(narSourceFromPath(path))]);
  const storeDir = output.slice(0, output.lastIndexOf('/'));
  const references = (await candidates(drv, options))
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

/**
 * Rebuilds `drv` and says, for each of `outputs`, what came of it. The inputs are realised
 * first (substituters allowed); then the derivation is built with `--option substitute false`,
 * or with `--check --keep-failed` when every requested output is already valid. That part runs
 * inside `exclusive` (the rebuilder's build slots); reading what was built comes after it, so
 * that the next build need not wait for it.
 */
export async function rebuildDerivation(
  drv: string,
  derivation: Derivation,
  outputs: readonly string[],
  options: NixOptions & {
    /** Build fresh even when the outputs are valid (a fresh build of ours was interrupted). */
    readonly fresh?: boolean;
    /** Called before Nix builds, with how: recorded so that a restart resumes the same way. */
    readonly onStart?: (mode: 'fresh' | 'check') => void;
    /** Runs the building part (by default at once). */
    readonly exclusive?: <T>(work: () => Promise<T>) => Promise<T>;
  },
): Promise<Map<string, BuildOutcome>> {
  const result = new Map<string, BuildOutcome>();
  const fail = (reason: string) => {
    for (const o of outputs) result.set(o, { status: 'failed', reason });
    return result;
  };
  const timeout = options.buildTimeoutMs;
  const inputs = [...derivation.inputDrvs.keys()];
  const exclusive = options.exclusive ?? (<T>(work: () => Promise<T>) => work());
  const built = await exclusive(async () => {
    try {
      if (inputs.length > 0) await nix('nix-store', ['--realise', ...inputs], options, timeout);
    } catch (error) {
      return { reason: `an input of the derivation could not be realised:\n${tail(error)}` };
    }
    // A valid path is on disk: outputs none of which is there need no question to Nix. Else
    // one query says which are valid, and what the store records of them.
    // A fresh build of ours that was cut short may have been finished by the orphaned Nix
    // process: building fresh again then costs nothing, where --check would build it twice.
    const stored =
      options.fresh !== true && outputs.some(onDisk) ? await storedClaims(outputs) : undefined;
    const check = stored !== undefined && outputs.every((o) => stored.get(o) != null);
    options.onStart?.(check ? 'check' : 'fresh');
    try {
      await nix(
        'nix-store',
        check
          ? ['--realise', '--check', '--keep-failed', drv]
          : ['--realise', drv, '--option', 'substitute', 'false'],
        options,
        timeout,
      );
    } catch (error) {
      if (!(check && /may not be deterministic/.test((error as { stderr?: string }).stderr ?? '')))
        return { reason: tail(error) };
      return { check, stored, differs: true };
    }
    return { check, stored, differs: false };
  });
  if ('reason' in built) return fail(built.reason);
  const { check, differs } = built;
  // --check leaves the store's record as it was; a fresh build made it.
  const claims = check && built.stored !== undefined ? built.stored : await storedClaims(outputs);
  for (const output of outputs) {
    const stored = claims.get(output);
    if (stored === undefined || stored === null) {
      result.set(output, { status: 'failed', reason: `Nix built ${drv} but not ${output}` });
      continue;
    }
    if (!onDisk(output)) {
      result.set(output, {
        status: 'failed',
        reason: `the store records ${output} as valid but it is not on disk (nix-store --verify --repair)`,
      });
      continue;
    }
    const copy = `${output}.check`;
    if (differs && existsSync(copy)) {
      const { claim, nar } = await claimOfCopy(drv, output, copy, stored, options);
      result.set(output, { status: 'differs', claim, stored, path: copy, nar });
    } else result.set(output, { status: 'built', claim: stored, checked: check, path: output });
  }
  return result;
}
