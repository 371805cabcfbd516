import { createServer as httpServer } from 'node:http';
import { type Server, type Socket, createServer } from 'node:net';
import { gunzipSync, gzipSync } from 'node:zlib';
import { afterEach, describe, expect, it } from 'vitest';
import { FetchError, fetchBytes, fetchEncoded, postBytes } from './fetch.js';
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
