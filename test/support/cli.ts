/** Test support: runs the built `accord` binary and captures its output. */
import { spawn } from 'node:child_process';

export const ACCORD_BIN = new URL('../../bin/accord.js', import.meta.url).pathname;

export interface RunResult<T = string> {
  readonly code: number | null;
  readonly stdout: T;
  readonly stderr: string;
}

interface RunOptions {
  input?: string | Uint8Array;
  env?: Record<string, string>;
  cwd?: string;
}

/** Runs `accord args…` to completion, with optional stdin and environment additions. */
export async function runAccord(
  args: readonly string[],
  options: RunOptions = {},
): Promise<RunResult> {
  const r = await runAccordBytes(args, options);
  return { ...r, stdout: r.stdout.toString() };
}

/** Like {@link runAccord}, with standard output as bytes. */
export function runAccordBytes(
  args: readonly string[],
  options: RunOptions = {},
): Promise<RunResult<Buffer>> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [ACCORD_BIN, ...args], {
      env: { ...process.env, ...options.env },
      cwd: options.cwd,
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d: Buffer) => err.push(d));
    child.on('error', reject);
    child.on('close', (code) => {
      resolve({
        code,
        stdout: Buffer.concat(out),
        stderr: Buffer.concat(err).toString(),
      });
    });
    child.stdin.end(options.input);
  });
}
