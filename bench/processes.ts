/** Benchmark support: Accord servers and nginx as child processes, and load tools. */
import { type ChildProcess, execFileSync, spawn, spawnSync } from 'node:child_process';
import { createWriteStream, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const BIN = new URL('../../bin/accord.js', import.meta.url).pathname;

export interface Running {
  readonly url: string;
  readonly child: ChildProcess;
  stop(): Promise<void>;
}

function stopper(child: ChildProcess): () => Promise<void> {
  return () =>
    new Promise((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) {
        resolve();
        return;
      }
      child.once('exit', () => {
        resolve();
      });
      child.kill('SIGTERM');
    });
}

/**
 * Runs `accord ARGS…` until it prints a URL on standard output. With ACCORD_BENCH_LOGS set to
 * a directory, each server's log goes to a file there.
 */
export function startAccord(args: readonly string[]): Promise<Running> {
  const logs = process.env.ACCORD_BENCH_LOGS;
  // ACCORD_BENCH_PROF=DIR writes a CPU profile of each server there (node --cpu-prof).
  const prof = process.env.ACCORD_BENCH_PROF;
  const node = prof === undefined ? [] : ['--cpu-prof', `--cpu-prof-dir=${prof}`];
  const child = spawn(process.execPath, [...node, BIN, ...args], {
    stdio: ['ignore', 'pipe', logs === undefined ? 'ignore' : 'pipe'],
  });
  if (logs !== undefined) {
    const file = createWriteStream(
      join(logs, `${args.slice(0, 2).join('-')}-${child.pid ?? 0}.log`),
    );
    child.stderr?.pipe(file);
  }
  return untilUrl(child, `accord ${args[0] ?? ''}`);
}

/** Resolves once `child` prints a URL on standard output; `what` names it if it exits first. */
function untilUrl(child: ChildProcess, what: string): Promise<Running> {
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
      const url = /^(http:\/\/\S+)$/m.exec(out)?.[1];
      if (url !== undefined) resolve({ url, child, stop: stopper(child) });
    });
    child.on('exit', (code) => {
      reject(new Error(`${what} exited (${code})`));
    });
  });
}

/** Runs a bench script of dist/bench (`relay.js`, `node-relay.js`) until it prints its URL. */
function startScript(script: string, args: readonly string[]): Promise<Running> {
  const child = spawn(process.execPath, [new URL(script, import.meta.url).pathname, ...args], {
    stdio: ['ignore', 'pipe', 'ignore'],
  });
  return untilUrl(child, script);
}

/** Puts the server at `url` `oneWayMs` away, through a relay process (bench/relay.ts). */
export function startRelay(url: string, oneWayMs: number): Promise<Running> {
  return startScript('./relay.js', [new URL(url).host, String(oneWayMs)]);
}

/** A Node process that passes `url`'s body through, hashed with `sha256` (bench/node-relay.ts). */
export function startNodeRelay(url: string, hash: boolean): Promise<Running> {
  return startScript('./node-relay.js', [url, ...(hash ? ['sha256'] : [])]);
}

/** Serves `root` with nginx (Debian's) on a free port, as a static binary cache would be. */
export async function startNginx(root: string, work: string): Promise<Running> {
  mkdirSync(join(work, 'nginx'), { recursive: true });
  // Below Linux's ephemeral range (32768–60999), so no outgoing connection holds the port;
  // another process may still, so a port nginx cannot bind is replaced by another.
  for (let attempt = 0; attempt < 5; attempt++) {
    const started = await tryNginx(root, work, 20000 + Math.floor(Math.random() * 12000));
    if (started !== undefined) return started;
  }
  throw new Error('nginx did not start');
}

async function tryNginx(root: string, work: string, port: number): Promise<Running | undefined> {
  const conf = join(work, 'nginx', 'nginx.conf');
  writeFileSync(
    conf,
    `daemon off;
worker_processes 1;
error_log stderr error;
pid ${join(work, 'nginx', 'nginx.pid')};
user root;
events { worker_connections 1024; }
http {
  access_log off;
  sendfile on;
  tcp_nopush on;
  keepalive_requests 1000000;
  types { text/x-nix-narinfo narinfo; application/x-nix-nar nar; }
  default_type application/octet-stream;
  client_body_temp_path ${join(work, 'nginx')};
  proxy_temp_path ${join(work, 'nginx')};
  fastcgi_temp_path ${join(work, 'nginx')};
  uwsgi_temp_path ${join(work, 'nginx')};
  scgi_temp_path ${join(work, 'nginx')};
  server { listen 127.0.0.1:${port}; root ${root}; }
}
`,
  );
  const child = spawn('nginx', ['-c', conf, '-p', join(work, 'nginx')], { stdio: 'ignore' });
  const url = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 100 && child.exitCode === null; i++) {
    try {
      await fetch(`${url}/nix-cache-info`);
      return { url, child, stop: stopper(child) };
    } catch {
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  await stopper(child)();
  return undefined;
}

/** True when a command exists on PATH (whatever its exit status for `args`). */
export function have(command: string, args = ['--version']): boolean {
  return spawnSync(command, args, { stdio: 'ignore' }).error === undefined;
}

/** Runs wrk against one URL; returns requests/s and the p50/p99 latency in milliseconds. */
export function wrk(url: string, seconds: number): { perSecond: number; p50: number; p99: number } {
  const out = execFileSync('wrk', ['-t2', '-c32', `-d${seconds}s`, '--latency', url], {
    encoding: 'utf8',
  });
  const ms = (label: string) => {
    const m = new RegExp(`^\\s*${label}%\\s+([\\d.]+)(us|ms|s)`, 'm').exec(out);
    if (m === null) throw new Error(`wrk output without ${label}%:\n${out}`);
    const v = Number(m[1]);
    return m[2] === 'us' ? v / 1000 : m[2] === 's' ? v * 1000 : v;
  };
  const rps = /Requests\/sec:\s+([\d.]+)/.exec(out);
  const non2xx = /Non-2xx or 3xx responses: (\d+)/.exec(out);
  if (non2xx !== null) throw new Error(`wrk saw ${non2xx[1] ?? '?'} error responses from ${url}`);
  return { perSecond: Number(rps?.[1]), p50: ms('50'), p99: ms('99') };
}
