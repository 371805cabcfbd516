/** Test support: an HTTP server in front of a real server that can rewrite or withhold answers. */
import { type IncomingMessage, type ServerResponse, createServer } from 'node:http';
import { close, listen, readBody } from '../../src/server/index.js';

/** What to answer instead of the real server's `upstream` answer; 'hang' never answers. */
export type GatewayMode = (
  req: IncomingMessage,
  upstream: Response,
) => Promise<{ status: number; body: Buffer | string } | 'hang'>;

/** Forwards every request (method, body and content type) to `target()`. */
export async function gateway(target: () => string) {
  let mode: GatewayMode | undefined;
  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const body = await readBody(req, { maxBytes: 16 << 20, timeoutMs: 10_000 });
    const type = req.headers['content-type'];
    const upstream = await fetch(`${target()}${req.url ?? ''}`, {
      method: req.method ?? 'GET',
      ...(body.length > 0 ? { body } : {}),
      ...(type === undefined ? {} : { headers: { 'Content-Type': type } }),
    });
    const out =
      mode === undefined
        ? { status: upstream.status, body: Buffer.from(await upstream.arrayBuffer()) }
        : await mode(req, upstream);
    if (out === 'hang') return;
    res.writeHead(out.status).end(out.body);
  };
  const server = createServer((req, res) => {
    handle(req, res).catch(() => res.destroy());
  });
  const url = await listen(server, '127.0.0.1', 0);
  return {
    url,
    set(m: GatewayMode | undefined) {
      mode = m;
    },
    close: () => {
      server.closeAllConnections();
      return close(server, 100);
    },
  };
}
