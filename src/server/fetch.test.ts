import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer as httpServer } from 'node:http';
import { type Server, type Socket, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { constants as zlibConstants, createGzip, gunzipSync, gzipSync } from 'node:zlib';
import { afterEach, describe, expect, it } from 'vitest';
import { FetchError, download, fetchBytes, fetchEncoded, postBytes } from './fetch.js';
import { close, listen } from './http.js';

/**
 * A raw HTTP server that answers the first request on each connection (keeping it alive) and
 * closes the connection without an answer at the next one: a keep-alive connection that the
 * server dropped just as the client reused it.
 */
function oneAnswerPerConnection(): Promise<{
  server: Server;
  url: string;
  connections: () => number;
  requests: () => number;
}> {
  let connections = 0;
  let total = 0;
  const server = createServer((socket: Socket) => {
    connections++;
    let requests = 0;
    let seen = '';
    socket.on('data', (chunk) => {
      seen += chunk.toString('latin1');
      for (let end = seen.indexOf('\r\n\r\n'); end >= 0; end = seen.indexOf('\r\n\r\n')) {
        seen = seen.slice(end + 4);
        total++;
        if (requests++ > 0) {
          socket.destroy();
          return;
        }
        socket.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: keep-alive\r\n\r\nok');
      }
    });
    socket.on('error', () => undefined);
  });
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      resolve({
        server,
        url: `http://127.0.0.1:${port}/x`,
        connections: () => connections,
        requests: () => total,
      });
    });
  });
}

describe('fetchBytes()', () => {
  let server: Server | undefined;
  afterEach(() => {
    server?.close();
  });

  it('sends a GET again on a new connection when a reused one is closed unanswered', async () => {
    const s = await oneAnswerPerConnection();
    server = s.server;
    expect((await fetchBytes(s.url, 5000, 100)).toString()).toBe('ok');
    expect((await fetchBytes(s.url, 5000, 100)).toString()).toBe('ok');
    // The second GET went out on the kept-alive connection first, then on a new one.
    expect([s.connections(), s.requests()]).toEqual([2, 3]);
  });

  it('goes through every closed kept-alive connection of the pool to a new one', async () => {
    const s = await oneAnswerPerConnection();
    server = s.server;
    const first = await Promise.all([1, 2, 3].map(() => fetchBytes(s.url, 5000, 100)));
    expect(first.map(String)).toEqual(['ok', 'ok', 'ok']);
    expect(s.connections()).toBe(3);
    expect((await fetchBytes(s.url, 5000, 100)).toString()).toBe('ok');
    expect([s.connections(), s.requests()]).toEqual([4, 7]);
  });

  it('does not send a POST again: the failure is reported', async () => {
    const s = await oneAnswerPerConnection();
    server = s.server;
    expect((await fetchBytes(s.url, 5000, 100)).toString()).toBe('ok');
    const error = await postBytes(s.url, 'body', 'text/plain', 5000, 100).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(FetchError);
    expect((error as FetchError).message).toMatch(/unreachable/);
  });

  it('reports a connection closed unanswered on its first request', async () => {
    const server_ = createServer((socket) => socket.destroy());
    server = server_;
    await new Promise<void>((resolve) => server_.listen(0, '127.0.0.1', resolve));
    const { port } = server_.address() as { port: number };
    const error = await fetchBytes(`http://127.0.0.1:${port}/x`, 5000, 100).catch(
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(FetchError);
    expect((error as FetchError).message).toMatch(/unreachable/);
  });
});

describe('fetchEncoded()', () => {
  it('returns a gzip body as sent, the limit applying to the bytes sent', async () => {
    const text = 'entry '.repeat(1000);
    const server = httpServer((req, res) => {
      const gzip = req.url === '/gz';
      res.writeHead(200, gzip ? { 'Content-Encoding': 'gzip' } : {});
      res.end(gzip ? gzipSync(text) : text);
    });
    try {
      const url = await listen(server, '127.0.0.1', 0);
      const sent = await fetchEncoded(`${url}/gz`, 5000, 200);
      expect(sent.gzip).toBe(true);
      expect(gunzipSync(sent.bytes).toString()).toBe(text);
      expect((await fetchBytes(`${url}/gz`, 5000, 10_000)).toString()).toBe(text);
      const plain = await fetchEncoded(`${url}/plain`, 5000, 10_000);
      expect([plain.gzip, plain.bytes.toString()]).toEqual([false, text]);
      await expect(fetchEncoded(`${url}/plain`, 5000, 200)).rejects.toThrow(/larger than 200/);
    } finally {
      await close(server);
    }
  });
});

describe('deadlines, limits and aborts', () => {
  /** Serves routes; each handler gets the response and may write slowly. */
  async function serve(
    handlers: Record<string, (res: import('node:http').ServerResponse) => void>,
  ) {
    const server = httpServer((req, res) => {
      const h = handlers[req.url ?? ''];
      if (h === undefined) res.writeHead(404).end();
      else h(res);
    });
    const url = await listen(server, '127.0.0.1', 0);
    return { url, server };
  }
  /** Writes a byte every 20 ms, for ever (until the connection goes). */
  const trickle = (res: import('node:http').ServerResponse, gzip = false) => {
    res.writeHead(200, gzip ? { 'Content-Encoding': 'gzip' } : {});
    const z = gzip ? createGzip({ flush: zlibConstants.Z_SYNC_FLUSH }) : undefined;
    z?.pipe(res);
    const timer = setInterval(() => (z ?? res).write('x'), 20);
    res.on('close', () => clearInterval(timer));
  };

  it('a body that keeps coming fails at the deadline, gzip or not', async () => {
    const { url, server } = await serve({
      '/plain': (r) => trickle(r),
      '/gz': (r) => trickle(r, true),
    });
    try {
      for (const path of ['/plain', '/gz']) {
        await expect(fetchBytes(`${url}${path}`, 300, 1 << 20)).rejects.toThrow(
          /no answer within 300 ms/,
        );
      }
    } finally {
      server.closeAllConnections();
      await close(server);
    }
  });

  it('a gzip body that stalls or is cut halfway fails, by fetch or by download', async () => {
    const half = gzipSync(Buffer.alloc(100_000, 'x')).subarray(0, 200);
    const { url, server } = await serve({
      '/stall': (res) => {
        res.writeHead(200, { 'Content-Encoding': 'gzip' });
        res.write(half); // and then nothing
      },
      '/cut': (res) => {
        res.writeHead(200, { 'Content-Encoding': 'gzip' });
        res.write(half);
        setTimeout(() => res.destroy(), 20);
      },
    });
    try {
      const drain = async (path: string) => {
        for await (const chunk of download(`${url}${path}`, 300)) expect(chunk).toBeDefined();
      };
      await expect(drain('/stall')).rejects.toThrow(FetchError);
      await expect(drain('/cut')).rejects.toThrow(/download interrupted/);
      await expect(fetchBytes(`${url}/stall`, 300, 1 << 20)).rejects.toThrow(/no answer/);
      await expect(fetchBytes(`${url}/cut`, 5000, 1 << 20)).rejects.toThrow(/body interrupted/);
    } finally {
      server.closeAllConnections();
      await close(server);
    }
  });

  it('a body without a length that grows past the limit is refused', async () => {
    const { url, server } = await serve({
      '/big': (res) => {
        res.writeHead(200);
        res.write(Buffer.alloc(600));
        res.end(Buffer.alloc(600));
      },
    });
    try {
      await expect(fetchBytes(`${url}/big`, 5000, 1000)).rejects.toThrow(/larger than 1000/);
      expect((await fetchBytes(`${url}/big`, 5000, 1200)).length).toBe(1200);
    } finally {
      await close(server);
    }
  });

  it('a connection closed in the middle of the body is an interrupted body', async () => {
    const { url, server } = await serve({
      '/cut': (res) => {
        res.writeHead(200, { 'Content-Length': '100' });
        res.write('part');
        setTimeout(() => res.destroy(), 20);
      },
    });
    try {
      await expect(fetchBytes(`${url}/cut`, 5000, 1000)).rejects.toThrow(/body interrupted/);
    } finally {
      await close(server);
    }
  });

  it('a download stops when its signal aborts, mid-body', async () => {
    let closed = false;
    const { url, server } = await serve({
      '/slow': (res) => {
        res.on('close', () => (closed = true));
        trickle(res);
      },
    });
    try {
      const abort = new AbortController();
      const chunks = download(`${url}/slow`, 5000, abort.signal);
      await chunks.next();
      abort.abort();
      // The bytes already received may still come out; then the download fails.
      await expect(
        (async () => {
          for await (const chunk of chunks) expect(chunk.length).toBeGreaterThan(0);
        })(),
      ).rejects.toThrow(/aborted/);
      await new Promise((r) => setTimeout(r, 100));
      expect(closed).toBe(true);
      const before = new AbortController();
      before.abort();
      await expect(download(`${url}/slow`, 5000, before.signal).next()).rejects.toThrow(/aborted/);
    } finally {
      server.closeAllConnections();
      await close(server);
    }
  });
});

describe('file:// fetches', () => {
  it('refuse what is not a regular file (a FIFO, a directory) without blocking on it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'accord-fetch-'));
    const fifo = join(dir, 'fifo');
    execFileSync('mkfifo', [fifo]);
    writeFileSync(join(dir, 'file'), 'contents');
    const url = (name: string) => pathToFileURL(join(dir, name)).toString();
    // Nobody ever writes to the FIFO: a blocking open would wait for ever (and hold a thread).
    await expect(fetchBytes(url('fifo'), 1000, 100)).rejects.toThrow(/not a regular file/);
    await expect(fetchBytes(url(''), 1000, 100)).rejects.toThrow(/not a regular file/);
    const stream = download(url('fifo'), 1000);
    await expect(stream.next()).rejects.toThrow(/not a regular file/);
    expect((await fetchBytes(url('file'), 1000, 100)).toString()).toBe('contents');
    await expect(fetchBytes(url('missing'), 1000, 100)).rejects.toMatchObject({ status: 404 });
    const chunks: Buffer[] = [];
    for await (const c of download(url('file'), 1000)) chunks.push(Buffer.from(c));
    expect(Buffer.concat(chunks).toString()).toBe('contents');
  });
});
