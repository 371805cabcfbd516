/** Test support: `accord log serve` as a child process, to kill -9 it and start it again. */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { newToken, submitterLine } from '../../src/log/index.js';
import {
  SIG_TYPE_ED25519,
  formatSignerKey,
  formatVerifierKey,
  generateKey,
  parseSignerKey,
} from '../../src/tlog/index.js';
import { ACCORD_BIN } from './cli.js';

/** Files a log server needs: key, submitters; returns the paths, vkey and token. */
export function prepareLogFiles(dir: string, origin: string) {
  mkdirSync(dir, { recursive: true });
  const { signerKey } = generateKey(origin, SIG_TYPE_ED25519);
  const signer = parseSignerKey(signerKey);
  const key = join(dir, 'log.key');
  writeFileSync(key, `${formatSignerKey(signer)}\n`, { mode: 0o600 });
  const token = newToken();
  const submitters = join(dir, 'submitters');
  writeFileSync(submitters, submitterLine('builder', token));
  return { key, submitters, vkey: formatVerifierKey(signer), token };
}

export interface LogProcess {
  readonly url: string;
  readonly child: ChildProcess;
  /** Everything the server logged so far. */
  stderr(): string;
  kill(signal?: NodeJS.Signals): Promise<void>;
}

/** Starts `accord log serve ARGS…` and resolves once it prints its URL. */
export function startLogProcess(args: readonly string[]): Promise<LogProcess> {
  return startServerProcess(['log', 'serve', '--listen', '127.0.0.1:0', ...args]);
}

/** Starts `accord ARGS…` (any server) and resolves once it prints its URL. */
export function startServerProcess(
  args: readonly string[],
  env: Record<string, string> = {},
): Promise<LogProcess> {
  const child = spawn(process.execPath, [ACCORD_BIN, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...env },
  });
  let out = '';
  let err = '';
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`server did not start:\n${err}`));
    }, 20_000);
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`server exited with ${code}:\n${err}`));
    });
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      const url = /^(https?:\/\/\S+)$/m.exec(out)?.[1];
      if (url === undefined) return;
      clearTimeout(timer);
      child.removeAllListeners('exit');
      resolve({
        url,
        child,
        stderr: () => err,
        kill: (signal = 'SIGKILL') =>
          new Promise((done) => {
            if (child.exitCode !== null || child.signalCode !== null) {
              done();
              return;
            }
            child.once('exit', () => done());
            child.kill(signal);
          }),
      });
    });
  });
}
