/**
 * Test support: a log server that serves whatever a test scripts — a signed checkpoint of either
 * history of a {@link KernelWorld} at any size, and hash tiles of a history of its choosing,
 * damaged as it likes — through the log's real wire formats (tlog-tiles paths, entry bundles,
 * lookups with tlog-proofs). It plays an honest log, a stale mirror, a forking log and a CDN
 * that corrupts tiles, to the real proxy and monitor.
 */
import { type IncomingMessage, type ServerResponse, createServer } from 'node:http';
import {
  type LookupEntry,
  claimToJson,
  formatBatchLookup,
  formatLookup,
  parseEntry,
} from '../../src/claim/index.js';
import { close, listen, readBody } from '../../src/server/index.js';
import {
  TILE_WIDTH,
  formatEntryBundle,
  formatTlogProof,
  parseTilePath,
  proveInclusion,
} from '../../src/tlog/index.js';
import type { Fault, History, KernelWorld } from './kernel-cases.js';

/** What the log serves now. */
export interface Script {
  /** The checkpoint it signs and proves lookups against. */
  readonly checkpoint: readonly [History, number];
  /** Whose hash tiles it serves (default: the checkpoint's history), and their damage. */
  readonly tiles?: History;
  readonly fault?: Fault;
  /** Answer every tile request only when this is false (default true). */
  readonly tilesOnline?: boolean;
}

export async function scriptedLog(world: KernelWorld) {
  let script: Script = { checkpoint: ['honest', 0] };
  const requests: string[] = [];

  async function entriesAbout(hashPart: string, history: History, size: number, note: string) {
    const tree = world.tree(history);
    const entries = (world.entries.get(history) ?? []).slice(0, size);
    const found: LookupEntry[] = [];
    for (const [index, entry] of entries.entries()) {
      const claim = parseEntry(entry);
      if (claim.storePath.hashPart !== hashPart) continue;
      const inclusionProof = await proveInclusion(index, size, tree);
      found.push({
        index,
        claim: claimToJson(claim),
        entry,
        proof: formatTlogProof({ index, inclusionProof, checkpoint: note }),
      });
    }
    return found;
  }

  async function handle(req: IncomingMessage, res: ServerResponse) {
    const path = new URL(req.url ?? '/', 'http://log').pathname;
    requests.push(path);
    const [history, size] = script.checkpoint;
    const { note } = await world.checkpoint(history, size);
    if (path === '/checkpoint') {
      res.writeHead(200, { 'Content-Type': 'text/plain; charset=utf-8' }).end(note);
      return;
    }
    if (path.startsWith('/tile/')) {
      if (script.tilesOnline === false) {
        res.writeHead(503).end();
        return;
      }
      const target = parseTilePath(path.slice(1));
      const tiles = script.tiles ?? history;
      if (target.kind === 'entries') {
        const { index, width } = target.bundle;
        const entries = (world.entries.get(tiles) ?? []).slice(
          index * TILE_WIDTH,
          index * TILE_WIDTH + width,
        );
        if (entries.length !== width) {
          res.writeHead(404).end();
          return;
        }
        res.writeHead(200).end(formatEntryBundle(entries.map((e) => Buffer.from(e))));
        return;
      }
      try {
        res.writeHead(200).end(world.servedTile(tiles, target.tile, script.fault));
      } catch {
        res.writeHead(404).end();
      }
      return;
    }
    if (path.startsWith('/lookup/')) {
      const hashPart = path.slice('/lookup/'.length);
      const entries = await entriesAbout(hashPart, history, size, note);
      res
        .writeHead(200, { 'Content-Type': 'application/json' })
        .end(formatLookup({ hashPart, treeSize: size, checkpoint: note, entries }));
      return;
    }
    if (path === '/lookup' && req.method === 'POST') {
      const { hashParts } = JSON.parse(
        (await readBody(req, { maxBytes: 1 << 20, timeoutMs: 5000 })).toString('utf8'),
      ) as { hashParts: string[] };
      const paths: Record<string, LookupEntry[]> = {};
      for (const h of hashParts) paths[h] = await entriesAbout(h, history, size, note);
      res
        .writeHead(200, { 'Content-Type': 'application/json' })
        .end(formatBatchLookup({ treeSize: size, checkpoint: note, paths }));
      return;
    }
    res.writeHead(404).end();
  }

  const server = createServer((req, res) => {
    handle(req, res).catch(() => res.destroy());
  });
  const url = await listen(server, '127.0.0.1', 0);
  return {
    url,
    /** Every path asked, in order. */
    requests,
    show(next: Script) {
      script = next;
    },
    close: () => {
      server.closeAllConnections();
      return close(server, 100);
    },
  };
}
