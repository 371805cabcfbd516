/** Test support: a directory served over HTTP (a file:// binary cache made an HTTP one). */
import { createReadStream, statSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { join, normalize } from 'node:path';
import { close, listen } from '../../src/server/index.js';

export interface StaticServer {
  readonly url: string;
  readonly server: Server;
  /** Requests seen, by path. */
  readonly requests: string[];
  close(): Promise<void>;
}

export async function serveDirectory(dir: string): Promise<StaticServer> {
  const requests: string[] = [];
  const server = createServer((req, res) => {
    const path = normalize(decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname));
    requests.push(path);
    const file = join(dir, path);
    let size: number;
    try {
      const st = statSync(file);
      if (!st.isFile() || !file.startsWith(dir)) throw new Error('not a file');
      size = st.size;
    } catch {
      res.writeHead(404).end();
      return;
    }
    const type = path.endsWith('.narinfo') ? 'text/x-nix-narinfo' : 'application/octet-stream';
    res.writeHead(200, { 'Content-Type': type, 'Content-Length': String(size) });
    createReadStream(file).pipe(res);
  });
  const url = await listen(server, '127.0.0.1', 0);
  return { url, server, requests, close: () => close(server, 100) };
}
