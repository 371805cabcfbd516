/**
 * The proxy against decompression bombs from its upstream (no Nix needed), each fetched ahead
 * after a narinfo request alone and streamed for a NAR request: the proxy's memory stays
 * within a bound, a request that arrives with the bomb is answered before the bomb is done
 * with, and the bomb ends as a 404.
 *
 * The memory bound, BOMB_RSS_BOUND, is generous: what the decoders may hold (a zstd window
 * clamped to the NAR's size, liblzma's work on one 1 KiB slice, bzip2's block buffers) is a
 * few tens of MiB; before the step decoders, these bombs took the proxy to 1.9–2.9 GiB.
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { ServerResponse, createServer } from 'node:http';
import { type Socket, connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { bombs } from '../../bench/bombs.js';
import {
  formatNarInfo,
  formatNixSecretKey,
  generateNixSecretKey,
  parseStorePath,
} from '../../src/nix/index.js';
import { type ProxyService, loadProxyConfig, startProxy } from '../../src/proxy/index.js';
import { close, createLogger, listen } from '../../src/server/index.js';
import { claimWithNar } from '../support/claims.js';
import { type TestLog, startTestLog } from '../support/log.js';

/** The most the proxy's resident memory may grow while it handles one bomb. */
const BOMB_RSS_BOUND = 256 << 20;

const EXT: Record<string, string> = { zstd: 'zst', bzip2: 'bz2', xz: 'xz', gzip: 'gz', br: 'br' };

/** A path whose honest NAR is small (fetched ahead) or over 64 KiB (streamed). */
const bombPath = (i: number, large: boolean) =>
  claimWithNar(i, 'bombs', `bomb path ${i}\n${large ? 'x'.repeat(70_000) : ''}`, `b${i}`);

const cases = bombs().flatMap((bomb, i) => [
  { bomb, ahead: true, path: bombPath(2 * i, false) },
  { bomb, ahead: false, path: bombPath(2 * i + 1, true) },
]);

/** Samples the resident set size until stopped; returns the growth over the first sample. */
function sampleRss(): () => number {
  const start = process.memoryUsage.rss();
  let peak = start;
  const timer = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage.rss());
  }, 1);
  return () => {
    clearInterval(timer);
    return Math.max(peak, process.memoryUsage.rss()) - start;
  };
}

const CACHE_INFO = 'GET /nix-cache-info HTTP/1.1\r\nHost: proxy\r\n\r\n';

/**
 * A keep-alive connection to `url` that has had one /nix-cache-info answered (so the proxy
 * has accepted it and reads it), and a function that sends the request again and resolves
 * with the next answer's first bytes.
 */
async function openConnection(
  url: string,
): Promise<{ ask: () => Promise<string>; socket: Socket }> {
  const { hostname, port } = new URL(url);
  const socket = connect(Number(port), hostname);
  let received = '';
  let waiting: ((text: string) => void) | undefined;
  socket.on('data', (data) => {
    received += String(data);
    // An answer is complete once its Content-Length bytes of body are in.
    const end = received.indexOf('\r\n\r\n');
    const length = Number(/content-length: (\d+)/i.exec(received)?.[1] ?? NaN);
    if (end < 0 || received.length < end + 4 + length) return;
    const text = received;
    received = '';
    waiting?.(text);
  });
  const ask = () =>
    new Promise<string>((resolve) => {
      waiting = resolve;
      socket.write(CACHE_INFO);
    });
  await ask();
  return { ask, socket };
}

describe('accord proxy against decompression bombs', () => {
  const dir = mkdtempSync(join(tmpdir(), 'accord-bombs-'));
  const logLines: string[] = [];
  const onLog: ((line: string) => void)[] = [];
  let logs: TestLog[];
  let upstream: ReturnType<typeof createServer>;
  let upstreamUrl: string;
  /** NAR requests the upstream holds: the test answers them. */
  const held = new Map<string, (res: ServerResponse) => void>();
  let proxy: ProxyService;

  beforeAll(async () => {
    logs = [
      await startTestLog({ origin: 'b1.example/log' }),
      await startTestLog({ origin: 'b2.example/log' }),
    ];
    for (const l of logs) {
      await l.submit(cases.map((c) => c.path.claim));
      await l.waitForSize(cases.length);
    }
    upstream = createServer((req, res) => {
      const url = req.url ?? '';
      const c = cases.find(
        (x) =>
          url === `/${x.path.hashPart}.narinfo` ||
          url === `/nar/${x.path.hashPart}.nar.${EXT[x.bomb.compression] ?? ''}`,
      );
      if (c === undefined) {
        res.writeHead(404).end();
        return;
      }
      if (url.endsWith('.narinfo')) {
        const info = formatNarInfo({
          storePath: parseStorePath(c.path.claim.storePath),
          url: `nar/${c.path.hashPart}.nar.${EXT[c.bomb.compression] ?? ''}`,
          compression: c.bomb.compression,
          narHash: {
            algorithm: 'sha256',
            digest: createHash('sha256').update(c.path.nar).digest(),
          },
          narSize: c.path.nar.length,
          references: [],
          sigs: [],
        });
        res.writeHead(200).end(info);
        return;
      }
      res.writeHead(200, { 'Content-Length': String(c.bomb.bytes.length) });
      res.flushHeaders();
      const answer = held.get(c.path.hashPart);
      held.delete(c.path.hashPart);
      if (answer === undefined) res.end(c.bomb.bytes);
      else answer(res);
    });
    upstreamUrl = await listen(upstream, '127.0.0.1', 0);
    writeFileSync(join(dir, 'proxy.sk'), formatNixSecretKey(generateNixSecretKey('bombs-1')));
    writeFileSync(
      join(dir, 'policy'),
      [
        `log ${logs[0]?.vkey ?? ''} ${logs[0]?.url ?? ''}`,
        `log ${logs[1]?.vkey ?? ''} ${logs[1]?.url ?? ''}`,
        'trust builders 2 b1.example/log b2.example/log',
        'decide builders',
        'quorum none',
        '',
      ].join('\n'),
    );
    // NARs are fetched ahead (the default); every bomb is a mismatch, not an upstream failure.
    writeFileSync(
      join(dir, 'proxy.toml'),
      `signing-key = "proxy.sk"\npolicy = "policy"\nstate = "proxy.db"\n[[upstream]]\nurl = "${upstreamUrl}"\n`,
    );
    const logger = createLogger({
      level: 'debug',
      write: (line) => {
        logLines.push(line);
        for (const f of onLog) f(line);
      },
    });
    proxy = await startProxy(loadProxyConfig(join(dir, 'proxy.toml')), logger, '127.0.0.1:0');
  }, 60_000);

  afterAll(async () => {
    await proxy.close();
    upstream.closeAllConnections();
    await close(upstream, 100);
    for (const l of logs) await l.close();
  });

  /**
   * Holds the upstream's answer to the bomb's NAR request until it can be sent, in one turn,
   * with a /nix-cache-info request on an open connection (so both reach the proxy together).
   * Returns the order in which the proxy ended its /nix-cache-info answer and was done with
   * the bomb (`bombDone`, or the end of its answer to `narPath`), seen from inside the proxy's
   * process, and the memory growth meanwhile.
   */
  async function release(
    c: (typeof cases)[number],
    bombDone: { promise: Promise<unknown> } | { narPath: string },
  ): Promise<{ order: string[]; rss: number; info: string }> {
    const res = await new Promise<ServerResponse>((resolve) => {
      held.set(c.path.hashPart, resolve);
    });
    const { ask, socket } = await openConnection(proxy.url);
    const order: string[] = [];
    const own = Object.getOwnPropertyDescriptor(ServerResponse.prototype, 'end');
    const original = Reflect.get(ServerResponse.prototype, 'end') as (...a: unknown[]) => unknown;
    let bombEnded!: () => void;
    const ended = new Promise<void>((resolve) => (bombEnded = resolve));
    ServerResponse.prototype.end = function (this: ServerResponse, ...args: unknown[]) {
      if (this.req.url === '/nix-cache-info') order.push('nix-cache-info');
      if ('narPath' in bombDone && this.req.url === bombDone.narPath) {
        order.push('bomb');
        bombEnded();
      }
      return original.apply(this, args);
    } as typeof ServerResponse.prototype.end;
    const bomb = 'promise' in bombDone ? bombDone.promise.then(() => order.push('bomb')) : ended;
    try {
      const rss = sampleRss();
      res.end(c.bomb.bytes);
      const [text] = await Promise.all([ask(), bomb]);
      return { order, rss: rss(), info: text };
    } finally {
      if (own === undefined) Reflect.deleteProperty(ServerResponse.prototype, 'end');
      else Object.defineProperty(ServerResponse.prototype, 'end', own);
      socket.destroy();
    }
  }

  test.each(cases.filter((c) => c.ahead).map((c) => [c.bomb.name, c] as const))(
    '%s, fetched ahead after a narinfo request alone: bounded memory, other requests first, then a 404',
    async (_, c) => {
      const caught = new Promise<void>((resolve) => {
        onLog.push((line) => {
          if (line.includes('caught ahead') && line.includes(c.path.hashPart)) resolve();
        });
      });
      const released = release(c, { promise: caught });
      const narinfo = await fetch(`${proxy.url}/${c.path.hashPart}.narinfo`);
      expect(narinfo.status).toBe(200);
      const text = await narinfo.text();
      const { order, rss, info } = await released;
      expect(info).toMatch(/^HTTP\/1.1 200 /);
      expect(order).toEqual(['nix-cache-info', 'bomb']);
      expect(rss).toBeLessThan(BOMB_RSS_BOUND);
      const url = /URL: (\S+)/.exec(text)?.[1] ?? '';
      const nar = await fetch(`${proxy.url}/${url}`);
      expect(nar.status).toBe(404);
    },
  );

  test.each(cases.filter((c) => !c.ahead).map((c) => [c.bomb.name, c] as const))(
    '%s, streamed for a NAR request: bounded memory, other requests first, a 404',
    async (_, c) => {
      const narinfo = await fetch(`${proxy.url}/${c.path.hashPart}.narinfo`);
      expect(narinfo.status).toBe(200);
      const url = /URL: (\S+)/.exec(await narinfo.text())?.[1] ?? '';
      const nar = fetch(`${proxy.url}/${url}`);
      const { order, rss, info } = await release(c, { narPath: `/${url}` });
      expect(info).toMatch(/^HTTP\/1.1 200 /);
      expect(order).toEqual(['nix-cache-info', 'bomb']);
      expect(rss).toBeLessThan(BOMB_RSS_BOUND);
      const res = await nar;
      expect(res.status).toBe(404);
      expect(await res.text()).toMatch(/no upstream cache has the agreed NAR/);
    },
  );
});
