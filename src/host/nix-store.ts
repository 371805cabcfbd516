/** Queries to the local Nix store through the `nix-store` and `nix` commands. */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import type { ClaimJson } from '../claim/index.js';

const exec = promisify(execFile);

/** Runs a Nix command; its standard output, or an error carrying its standard error. */
export async function run(
  command: string,
  args: readonly string[],
  timeoutMs: number,
): Promise<string> {
  try {
    const { stdout } = await exec(command, [...args], {
      timeout: timeoutMs,
      maxBuffer: 64 << 20,
      encoding: 'utf8',
    });
    return stdout;
  } catch (e) {
    const err = e as { stderr?: string; message: string };
    throw new Error(`${command} ${args.join(' ')}: ${(err.stderr ?? err.message).trim()}`, {
      cause: e,
    });
  }
}

/**
 * Builds attributes of a Nix file, one `nix-build --no-out-link FILE -A ATTR` each, and returns
 * their output paths in the order asked.
 */
export async function buildAttributes(
  file: string,
  attributes: readonly string[],
  timeoutMs = 300_000,
): Promise<string[]> {
  const paths: string[] = [];
  for (const attribute of attributes) {
    const out = await run('nix-build', ['--no-out-link', file, '-A', attribute], timeoutMs);
    const path = out.trim().split('\n').at(-1);
    if (path === undefined || path === '')
      throw new Error(`nix-build -A ${attribute} printed no path`);
    paths.push(path);
  }
  return paths;
}

/** The output paths of a derivation (`nix-store -q --outputs`). */
export async function queryOutputs(drvPath: string, timeoutMs = 10_000): Promise<string[]> {
  const out = await run('nix-store', ['--query', '--outputs', drvPath], timeoutMs);
  return out.split('\n').filter((l) => l !== '');
}

interface PathInfo {
  path?: string;
  narHash?: string;
  narSize?: number;
  references?: string[];
  deriver?: string | null;
  valid?: boolean;
  ultimate?: boolean;
}

/** A valid path as the store records it: its claim, and whether it was built here. */
export interface StoredPath {
  readonly claim: ClaimJson;
  /** Built on this machine (Nix's `ultimate`), not substituted or copied in. */
  readonly ultimate: boolean;
}

/**
 * What the local store records about each of `paths`, as a claim, or null for a path it does
 * not hold valid — in one `nix path-info --json` (an array in Nix 2.8, an object keyed by path
 * from 2.19; the hash is normalised by the claim parser). References are base names; a path's
 * reference to itself is kept, as in narinfo files.
 */
export async function storedClaims(
  paths: readonly string[],
  timeoutMs = 10_000,
): Promise<Map<string, ClaimJson | null>> {
  const stored = await storedPaths(paths, timeoutMs);
  return new Map([...stored].map(([path, p]) => [path, p?.claim ?? null]));
}

/** {@link storedClaims}, with whether each path was built here. */
export async function storedPaths(
  paths: readonly string[],
  timeoutMs = 10_000,
): Promise<Map<string, StoredPath | null>> {
  const claims = new Map<string, StoredPath | null>();
  if (paths.length === 0) return claims;
  let out: string;
  try {
    out = await run(
      'nix',
      ['--extra-experimental-features', 'nix-command', 'path-info', '--json', ...paths],
      timeoutMs,
    );
  } catch (error) {
    // Nix from 2.19 exits non-zero for an invalid path, and still prints the JSON.
    out = ((error as Error).cause as { stdout?: string } | undefined)?.stdout ?? '';
    if (!out.trimStart().startsWith('[') && !out.trimStart().startsWith('{')) throw error;
  }
  const parsed = JSON.parse(out) as PathInfo[] | Record<string, PathInfo | null>;
  const infos: [string, PathInfo][] = Array.isArray(parsed)
    ? parsed.map((i) => [i.path ?? '', i])
    : Object.entries(parsed).map(([path, i]) => [path, i ?? { valid: false }]);
  const base = (p: string) => p.slice(p.lastIndexOf('/') + 1);
  for (const [path, info] of infos) {
    if (info.valid === false || info.narHash === undefined || info.narSize === undefined) {
      claims.set(path, null);
      continue;
    }
    const claim: ClaimJson = {
      storePath: path,
      narHash: info.narHash,
      narSize: info.narSize,
      references: (info.references ?? []).map(base),
    };
    if (typeof info.deriver === 'string') claim.deriver = base(info.deriver);
    claims.set(path, { claim, ultimate: info.ultimate === true });
  }
  for (const path of paths)
    if (!claims.has(path)) throw new Error(`nix path-info did not answer for ${path}`);
  return claims;
}

/** What the local store records about valid paths, as claims, in the order asked; throws for a path it does not hold valid. */
export async function pathInfoClaims(
  paths: readonly string[],
  timeoutMs = 10_000,
): Promise<ClaimJson[]> {
  const claims = await storedClaims(paths, timeoutMs);
  return paths.map((path) => {
    const claim = claims.get(path);
    if (claim === undefined || claim === null)
      throw new Error(`${path} is not a valid path in the local store`);
    return claim;
  });
}
