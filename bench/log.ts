/**
 * Sustained append throughput of `accord log serve` over HTTP — entries acknowledged and
 * included in a published checkpoint per second — and checkpoint latency (acknowledgement to
 * a published checkpoint covering the entry), on SQLite and on PostgreSQL. The baseline in the
 * same run is the same load against a server that only parses each batch and answers (the
 * HTTP + JSON ceiling of this machine).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { newToken, submitterLine } from '../src/log/index.js';
import { encodeNix32 } from '../src/nix/index.js';
import { close, listen } from '../src/server/index.js';
import { SIG_TYPE_ED25519, generateKey } from '../src/tlog/index.js';
import type { Row } from './harness.js';

const BIN = new URL('../../bin/accord.js', import.meta.url).pathname;

/** A valid, distinct claim for index `i`, cheap to make (the load generator shares the CPU). */
export function claim(i: number, run: number) {
  const bytes = (n: number, k: number) => {
    const b = Buffer.alloc(n);
    b.writeUInt32BE(run, 0);
    b.writeUInt32BE(k >>> 0, 4);
    b.writeUInt32BE(Math.floor(k / 2 ** 32), 8);
    return b;
  };
  const part = (k: number) => encodeNix32(bytes(20, k));
  return {
    storePath: `/nix/store/${part(2 * i)}-pkg-${i}`,
    narHash: `sha256:${encodeNix32(bytes(32, i))}`,
    narSize: 1000 + i,
    references: [`${part(2 * i + 2)}-pkg-${i + 1}`],
    deriver: `${part(2 * i + 1)}-pkg-${i}.drv`,
  };
}

export function startServer(
  args: readonly string[],
): Promise<{ url: string; child: ChildProcess }> {
  const child = spawn(process.execPath, [BIN, 'log', 'serve', '--listen', '127.0.0.1:0', ...args], {
    stdio: ['ignore', 'pipe', 'ignore'],
  });
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      const url = /^(http:\/\/\S+)$/m.exec(out)?.[1];
      if (url !== undefined) resolve({ url, child });
    });
    child.on('exit', (code) => {
      reject(new Error(`log server exited (${code})`));
    });
  });
}

interface LoadResult {
  perSecond: number;
  p50: number;
  p99: number;
}

export const percentile = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] ?? NaN;
};

/**
 * Sends batches from `clients` concurrent clients for `seconds`; with `latency`, polls the
 * checkpoint to time each batch from acknowledgement to inclusion.
 */
async function load(
  url: string,
  token: string,
  options: { clients: number; batch: number; seconds: number; latency: boolean; run: number },
): Promise<LoadResult> {
  const acked: { last: number; at: number }[] = [];
  // Request bodies are built before the clock starts (as wrk sends prepared requests), so the
  // load generator does not take CPU from the server it measures; past 50,000 claims/s the
  // rest are built on the fly.
  const body = (n: number) =>
    JSON.stringify({
      claims: Array.from({ length: options.batch }, (_, k) =>
        claim(n * options.batch + k, options.run),
      ),
    });
  const prepared = Array.from(
    { length: Math.ceil((options.seconds * 50_000) / options.batch) },
    (_, n) => body(n),
  );
  let next = 0;
  const start = performance.now();
  const end = start + options.seconds * 1000;
  let published = 0;
  const seen: { size: number; at: number }[] = [];
  let polling = options.latency;
  const poller = (async () => {
    while (polling) {
      const text = await (await fetch(`${url}/checkpoint`)).text();
      const size = Number(text.split('\n')[1]);
      if (size > published) {
        published = size;
        seen.push({ size, at: performance.now() });
      }
      await new Promise((r) => setTimeout(r, 10));
    }
  })();
  const client = async () => {
    while (performance.now() < end) {
      const n = next++;
      const res = await fetch(`${url}/submit`, {
        method: 'POST',
        headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' },
        body: prepared[n] ?? body(n),
      });
      const { indexes } = (await res.json()) as { indexes: number[] };
      acked.push({ last: Math.max(...indexes), at: performance.now() });
    }
  };
  await Promise.all(Array.from({ length: options.clients }, client));
  const lastAck = performance.now();
  if (!options.latency) {
    polling = false;
    await poller;
    const total = acked.length * options.batch;
    return { perSecond: total / ((lastAck - start) / 1000), p50: NaN, p99: NaN };
  }
  const needed = Math.max(...acked.map((a) => a.last)) + 1;
  while (published < needed) await new Promise((r) => setTimeout(r, 10));
  polling = false;
  await poller;
  const latencies = acked.map((a) => {
    const when = seen.find((s) => s.size > a.last)?.at ?? NaN;
    return (when - a.at) / 1000;
  });
  const included = seen[seen.length - 1]?.at ?? lastAck;
  return {
    perSecond: needed / ((included - start) / 1000),
    p50: percentile(latencies, 50),
    p99: percentile(latencies, 99),
  };
}

/** A server that parses each batch and answers with made-up indexes: the HTTP ceiling. */
async function ceiling(seconds: number): Promise<number> {
  let n = 0;
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const { claims } = JSON.parse(Buffer.concat(chunks).toString()) as { claims: unknown[] };
      const indexes = claims.map(() => n++);
      res.writeHead(200, { 'Content-Type': 'application/json' }).end(JSON.stringify({ indexes }));
    });
  });
  const url = await listen(server, '127.0.0.1', 0);
  const r = await load(url, 'x', {
    clients: 8,
    batch: 500,
    seconds,
    latency: false,
    run: 1,
  });
  await close(server);
  return r.perSecond;
}

export async function benchLog(seconds: number, postgresUrl: string | undefined): Promise<Row[]> {
  const dir = mkdtempSync(join(tmpdir(), 'accord-bench-log-'));
  const rows: Row[] = [];
  const baseline = await ceiling(seconds);
  try {
    const { signerKey } = generateKey('bench.example/log', SIG_TYPE_ED25519);
    writeFileSync(join(dir, 'log.key'), `${signerKey}\n`);
    const token = newToken();
    writeFileSync(join(dir, 'submitters'), submitterLine('bench', token));
    const stores: [string, string[]][] = [['SQLite', ['--store', `sqlite:${join(dir, 'log.db')}`]]];
    if (postgresUrl !== undefined) {
      const schema = `bench_${Date.now().toString(36)}`;
      stores.push(['PostgreSQL', ['--store', postgresUrl, '--schema', schema]]);
    }
    for (const [name, storeArgs] of stores) {
      const server = await startServer([
        '--key',
        join(dir, 'log.key'),
        '--submitters',
        join(dir, 'submitters'),
        '--max-body',
        String(16 << 20),
        ...storeArgs,
      ]);
      try {
        const r = await load(server.url, token, {
          clients: 8,
          batch: 500,
          seconds,
          latency: true,
          run: Math.floor(Math.random() * 2 ** 32),
        });
        rows.push({
          name: `log append over HTTP, ${name} (8 clients × 500-claim batches)`,
          value: `${Math.round(r.perSecond)} entries/s; checkpoint latency p50 ${r.p50.toFixed(2)} s, p99 ${r.p99.toFixed(2)} s`,
          baseline: `${Math.round(baseline)} claims/s (parse-and-answer server)`,
          ratio: (r.perSecond / baseline).toFixed(2),
          note: 'target ≥ 20,000 entries/s, p99 ≤ 1.5 s',
        });
      } finally {
        server.child.kill('SIGTERM');
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return rows;
}
