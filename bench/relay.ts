/**
 * A TCP relay that puts a server `delay` ms away, one way (`node dist/bench/relay.js
 * HOST:PORT DELAY_MS`; it prints its URL): every chunk in each direction waits that long, and a
 * new connection pays a round trip before its first byte, as a handshake would. TCP_NODELAY on
 * both sides. Run as its own process, so the bench's synchronous calls never hold it.
 */
import { createConnection, createServer } from 'node:net';

const [target = '', delayText = '10'] = process.argv.slice(2);
const [host = '127.0.0.1', port = '0'] = target.split(':');
const delay = Number(delayText);

const server = createServer((client) => {
  client.setNoDelay(true);
  client.pause();
  const upstream = createConnection({ host, port: Number(port) });
  upstream.setNoDelay(true);
  const later = (f: () => void) => setTimeout(f, delay);
  const pipe = (from: typeof client, to: typeof client) => {
    from.on('data', (chunk) => {
      later(() => to.write(chunk));
    });
    from.on('end', () => {
      later(() => to.end());
    });
    from.on('error', () => {
      to.destroy();
    });
    from.on('close', () => {
      later(() => {
        if (!to.writableEnded) to.destroy();
      });
    });
  };
  // The handshake's round trip, before anything flows.
  setTimeout(() => {
    pipe(client, upstream);
    pipe(upstream, client);
    client.resume();
  }, 2 * delay);
});
server.listen(0, '127.0.0.1', () => {
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('no address');
  process.stdout.write(`http://127.0.0.1:${address.port}\n`);
});
process.on('SIGTERM', () => process.exit(0));
