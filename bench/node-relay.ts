/**
 * The floor for a NAR a Node process relays: `node dist/bench/node-relay.js URL [sha256]`
 * serves every request with URL's body, passed through as it arrives (with backpressure) and,
 * with `sha256`, hashed on the way; nothing else. It prints its URL. Its own process, like the
 * proxy's, so the bench's synchronous calls never hold it.
 */
import { createHash } from 'node:crypto';
import http from 'node:http';

const [source = '', mode = ''] = process.argv.slice(2);
const agent = new http.Agent({ keepAlive: true });

const server = http.createServer((_req, res) => {
  http.get(source, { agent }, (up) => {
    res.writeHead(200, { 'Content-Length': up.headers['content-length'] ?? '0' });
    const hash = mode === 'sha256' ? createHash('sha256') : undefined;
    up.on('data', (chunk: Buffer) => {
      hash?.update(chunk);
      if (!res.write(chunk)) {
        up.pause();
        res.once('drain', () => up.resume());
      }
    });
    up.on('end', () => {
      hash?.digest();
      res.end();
    });
  });
});
server.listen(0, '127.0.0.1', () => {
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('no address');
  process.stdout.write(`http://127.0.0.1:${address.port}\n`);
});
process.on('SIGTERM', () => process.exit(0));
