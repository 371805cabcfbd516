/** Test support: running the real `nix` binary as root, single-user, without substituters. */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import {
  type NarInfo,
  type NixSecretKey,
  encodeNix32,
  formatNarInfo,
  parseNarInfo,
  signNarInfo,
} from '../../src/nix/index.js';

const exec = promisify(execFile);

/** NIX_CONFIG for tests: no sandbox, no build users, no substituters, flakes-free CLI. */
export const NIX_CONFIG = [
  'experimental-features = nix-command',
  'sandbox = false',
  'build-users-group =',
  'substituters =',
  'require-sigs = false',
].join('\n');

export const nixEnv = { ...process.env, NIX_CONFIG };

/** Runs a Nix command and returns its standard output; throws with stderr on failure. */
export async function nix(
  command: string,
  args: readonly string[],
  input?: string,
): Promise<string> {
  try {
    const child = exec(command, [...args], { env: nixEnv, maxBuffer: 1 << 30, encoding: 'utf8' });
    if (input !== undefined) {
      child.child.stdin?.end(input);
    }
    const { stdout } = await child;
    return stdout;
  } catch (e) {
    const err = e as { stderr?: string; message: string };
    throw new Error(`${command} ${args.join(' ')} failed: ${err.stderr ?? err.message}`, {
      cause: e,
    });
  }
}

/** Runs a Nix command and returns its standard output as bytes. */
export async function nixBytes(command: string, args: readonly string[]): Promise<Buffer> {
  const { stdout } = await exec(command, [...args], {
    env: nixEnv,
    maxBuffer: 1 << 30,
    encoding: 'buffer',
  });
  return stdout;
}

/**
 * A Nix expression for a derivation whose builder /bin/sh runs `script` (PATH is empty inside:
 * use absolute paths). `script` is a Nix string body, so `${dep}` interpolates a dependency.
 */
export function shDerivation(name: string, script: string, salt: string): string {
  return (
    `derivation { name = "${name}"; system = builtins.currentSystem; builder = "/bin/sh"; ` +
    `args = [ "-c" "${script}" ]; salt = "${salt}"; }`
  );
}

/** Builds a Nix expression and returns its output paths. */
export async function build(expression: string): Promise<string[]> {
  const dir = mkdtempSync(join(tmpdir(), 'accord-nix-'));
  const file = join(dir, 'default.nix');
  writeFileSync(file, `${expression}\n`);
  const out = await nix('nix-build', ['--no-out-link', file]);
  return out.trim().split('\n');
}

/**
 * Builds `demo-<tag>`, which refers to `dep-<tag>` (a two-path closure with a reference and a
 * symlink into the dependency), and returns demo's path. The tag makes the paths new.
 */
export async function buildClosure(tag: string): Promise<string> {
  const dep = shDerivation(`dep-${tag}`, '/bin/mkdir $out; echo dependency > $out/file', tag);
  const demo = shDerivation(
    `demo-${tag}`,
    '/bin/mkdir $out; echo ${dep} > $out/ref; /bin/ln -s ${dep}/file $out/link',
    tag,
  );
  const [path] = await build(`let dep = ${dep}; in ${demo}`);
  if (path === undefined) throw new Error('nix-build printed no path');
  return path;
}

/**
 * Realises `paths` substituting only from `substituter`, trusting only `publicKey`, with Nix's
 * narinfo cache off (every run asks the substituter afresh).
 */
export function substituteFrom(
  substituter: string,
  publicKey: string,
  paths: readonly string[],
  options: readonly string[] = [],
): Promise<string> {
  return nix('nix-store', [
    '--realise',
    ...paths,
    ...options,
    '--option',
    'substituters',
    substituter,
    '--option',
    'trusted-public-keys',
    publicKey,
    '--option',
    'require-sigs',
    'true',
    '--option',
    'narinfo-cache-negative-ttl',
    '0',
    '--option',
    'narinfo-cache-positive-ttl',
    '0',
  ]);
}

/** Whether `path` is a valid path of the local store. */
export async function isValid(path: string): Promise<boolean> {
  return (await nix('nix-store', ['--check-validity', '--print-invalid', path])).trim() === '';
}

/**
 * Makes the file:// cache in `cacheDir` serve other bytes for `path`: its NAR with the first
 * `payload` of it changed to `Payload`, under a narinfo naming that NAR (signed by `key` when
 * given, as a cache signing what it serves). Returns the new narinfo.
 */
export function serveOtherBytes(cacheDir: string, path: string, key?: NixSecretKey): NarInfo {
  const file = join(cacheDir, `${path.slice(11, 43)}.narinfo`);
  const info = parseNarInfo(readFileSync(file, 'utf8'));
  const nar = readFileSync(join(cacheDir, info.url));
  const at = nar.indexOf('payload');
  if (at < 0) throw new Error(`${path}: no payload to change`);
  nar[at] = 'P'.charCodeAt(0);
  const digest = {
    algorithm: 'sha256' as const,
    digest: createHash('sha256').update(nar).digest(),
  };
  const url = `nar/${encodeNix32(digest.digest)}.nar`;
  writeFileSync(join(cacheDir, url), nar);
  const other: NarInfo = { ...info, url, fileHash: digest, narHash: digest, sigs: [] };
  const served = key === undefined ? other : signNarInfo(other, key);
  writeFileSync(file, formatNarInfo(served));
  return served;
}
