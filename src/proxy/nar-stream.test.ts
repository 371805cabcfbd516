import { parsePolicy } from '../policy/index.js';
import { SIG_TYPE_ED25519, formatVerifierKey, newSigner } from '../tlog/index.js';
import { createServer } from 'node:http';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { makeNar } from '../../test/support/claims.js';
import { close, listen, silentLogger } from '../server/index.js';
import { fetchWholeNar } from './nar-stream.js';
import { Upstream } from './upstream.js';

const ONE_LOG = parsePolicy(
  `log ${formatVerifierKey(newSigner('l.example/log', SIG_TYPE_ED25519, new Uint8Array(32)))} https://l.example\ndecide l.example/log\nquorum none\n`,
);

describe('fetchWholeNar()', () => {
  const { nar, hash, size } = makeNar('a small path\n');
  const bodies: Record<string, Buffer> = {
    '/plain.nar': nar,
    '/gz.nar': gzipSync(nar),
    '/changed.nar': Buffer.from(nar).fill(0x41, 60, 61),
    '/huge.nar': Buffer.alloc(2 * size + 70_000),
  };
  const server = createServer((req, res) => {
    if (req.url === '/trickle.nar') {
      // A byte every 50 ms: never idle long enough to time out, never done.
      res.writeHead(200);
      const timer = setInterval(() => res.write('x'), 50);
      res.on('close', () => clearInterval(timer));
      return;
    }
    const body = bodies[req.url ?? ''];
    if (body === undefined) res.writeHead(404).end();
    else res.writeHead(200).end(body);
  });
  let upstream: Upstream;
  let url = '';
  beforeAll(async () => {
    url = await listen(server, '127.0.0.1', 0);
    upstream = new Upstream(
      { url, publicKeys: [], guixKeys: [], priority: 10, intermittent: false, timeoutMs: 2000 },
      silentLogger,
      { storeDir: '/nix/store', guix: false, policy: ONE_LOG },
    );
  });
  afterAll(() => {
    server.closeAllConnections();
    return close(server);
  });

  const served = (path: string, compression = 'none') => ({
    upstream: url,
    narUrl: `${url}${path}`,
    compression,
    narHash: hash,
    narSize: size,
  });

  test('a checked NAR owns exactly its bytes (no decoder or pool buffer behind it)', async () => {
    for (const [path, compression] of [
      ['/plain.nar', 'none'],
      ['/gz.nar', 'gzip'],
    ] as const) {
      const outcome = await fetchWholeNar(served(path, compression), upstream);
      if (outcome.kind !== 'ok') throw new Error(`${path}: ${outcome.kind}`);
      expect(outcome.nar.equals(nar)).toBe(true);
      expect(outcome.nar.buffer.byteLength).toBe(nar.length);
    }
  });

  test('a wrong NAR is a mismatch; a missing or oversized one a failure', async () => {
    expect((await fetchWholeNar(served('/changed.nar'), upstream)).kind).toBe('mismatch');
    expect(await fetchWholeNar(served('/gz.nar'), upstream)).toMatchObject({ kind: 'mismatch' });
    expect(await fetchWholeNar(served('/missing.nar'), upstream)).toMatchObject({
      kind: 'failed',
      reason: expect.stringMatching(/HTTP 404/) as unknown,
    });
    expect(await fetchWholeNar(served('/huge.nar'), upstream)).toMatchObject({
      kind: 'failed',
      reason: expect.stringMatching(/larger than/) as unknown,
    });
  });

  test("a NAR that trickles in is given up at 8 KiB/s of the NAR's size after the timeout", async () => {
    // A NAR of 1,000 bytes: 2 s of timeout, then 1000 / 8192 s more (not the time its size
    // cap of 2 × 1,000 + 64 KiB would take at that rate).
    await expect(upstream.fetchWhole(`${url}/trickle.nar`, 1000)).rejects.toThrow(
      /not received within 2123 ms/,
    );
  });
});
