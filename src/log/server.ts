/**
 * The log's HTTP interface: the C2SP tlog-tiles read path (checkpoint, tiles, entry bundles),
 * lookups with offline-verifiable proofs, authenticated submissions, and metrics.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import {
  type BuildClaim,
  type LookupEntry,
  MAX_LOOKUP_PATHS,
  MAX_LOOKUP_REQUEST_BYTES,
  STATEMENTS_LOOKUP_KEY,
  claimToJson,
  entryFromJson,
  formatBatchLookup,
  formatLookup,
  parseEntry,
} from '../claim/index.js';
import { NIX_STORE_DIR, isHashPart } from '../nix/index.js';
import {
  type BodyLimits,
  type ErrorMapper,
  HttpError,
  type Logger,
  type Registry,
  acceptsGzip,
  gzipBody,
  readBody,
  send,
  sendHealth,
  sendMetrics,
  sendError,
} from '../server/index.js';
import {
  type Tile,
  TILE_WIDTH,
  TlogError,
  boundedSubtreeCache,
  formatEntryBundle,
  formatTlogProof,
  hashLeaf,
  parseTilePath,
  proveInclusions,
  tileHashReader,
} from '../tlog/index.js';
import { MAX_STATEMENT_SIZE } from '../identity/index.js';
import { AuthError, type Submitters } from './auth.js';
import { type StatementChain, acceptStatement } from './statements.js';
import { GroupCommit } from './group-commit.js';
import type { CompressedBundle, LogStorage } from './storage.js';

/** The log server's one error mapping (route errors are HttpErrors already). */
export const logErrors: ErrorMapper = (error) => {
  if (!(error instanceof AuthError)) return undefined;
  return error.code === 'revoked'
    ? new HttpError(403, error.message)
    : new HttpError(401, error.message, { 'WWW-Authenticate': 'Bearer realm="accord-log"' });
};

export interface LogServerOptions {
  readonly storage: LogStorage;
  readonly submitters: Submitters;
  readonly logger: Logger;
  readonly metrics: Registry;
  readonly storeDir?: string;
  /** Request body limits for submissions (defaults: 4 MiB, 10 s). */
  readonly body?: BodyLimits;
  /** Most claims in one submission (default 10,000). */
  readonly maxClaims?: number;
  /** The identity whose key statements this log takes (`POST /statements`); none: no route. */
  readonly identity?: StatementChain;
}

const TEXT = 'text/plain; charset=utf-8';
const BINARY = 'application/octet-stream';
const JSON_TYPE = 'application/json';
const IMMUTABLE = 'public, max-age=31536000, immutable';
const MAX_STATEMENT_BODY = MAX_STATEMENT_SIZE;
/** Creates the request handler of a log server. */
export function createLogHandler(options: LogServerOptions) {
  const { storage, logger, metrics } = options;
  const storeDir = options.storeDir ?? NIX_STORE_DIR;
  const bodyLimits = options.body ?? { maxBytes: 4 << 20, timeoutMs: 10_000 };
  const maxClaims = options.maxClaims ?? 10_000;
  const requests = metrics.counter(
    'accord_log_http_requests_total',
    'HTTP requests by route and status',
  );
  const submitted = metrics.counter(
    'accord_log_entries_submitted_total',
    'Claims received, by submitter',
  );
  const appended = metrics.counter(
    'accord_log_entries_appended_total',
    'Claims that were new entries',
  );

  // Full entry bundles never change: each is compressed once, at its first request, and the
  // encoding stored (several at a time, in one transaction).
  const storeBundles = new GroupCommit(async (bundles: readonly CompressedBundle[]) => {
    await storage.putCompressedBundles(bundles);
    return bundles.map(() => undefined);
  });

  // Proofs need hashes inside tiles; computed once, they hold for good (about 4 MB here).
  const subtrees = boundedSubtreeCache(100_000);
  const readTiles = (treeSize: number) =>
    tileHashReader(
      treeSize,
      {
        readTiles: (tiles: readonly Tile[]) =>
          Promise.all(
            tiles.map(async (t) => {
              const data = await storage.tile(t.level, t.index);
              if (data === undefined || data.length < t.width * 32)
                throw new Error(`bug: tile missing`);
              return data.subarray(0, t.width * 32);
            }),
          ),
      },
      subtrees,
    );

  async function checkpoint(req: IncomingMessage, res: ServerResponse) {
    const state = await storage.state();
    if (state.checkpoint === undefined) throw new HttpError(404, 'no checkpoint published yet');
    send(req, res, 200, state.checkpoint, { type: TEXT, cacheControl: 'public, max-age=1' });
  }

  async function tile(req: IncomingMessage, res: ServerResponse, path: string) {
    let target;
    try {
      target = parseTilePath(path);
    } catch (e) {
      throw new HttpError(404, e instanceof TlogError ? e.message : 'not a tile path');
    }
    const { treeSize } = await storage.state();
    if (target.kind === 'tile') {
      const { level, index, width } = target.tile;
      const data = await storage.tile(level, index);
      if (data === undefined || data.length < width * 32)
        throw new HttpError(404, `no tile ${path}`);
      send(req, res, 200, data.subarray(0, width * 32), { type: BINARY, cacheControl: IMMUTABLE });
      return;
    }
    const { index, width } = target.bundle;
    const start = index * TILE_WIDTH;
    if (start + width > treeSize) throw new HttpError(404, `no entry bundle ${path}`);
    if (width === TILE_WIDTH && acceptsGzip(req)) {
      let gzip = await storage.compressedBundle(index);
      if (gzip === undefined) {
        const entries = await storage.entries(start, start + width);
        // The encoding is kept for good: it must hold the whole bundle.
        if (entries.length !== width) throw new Error(`bug: bundle ${index} read short`);
        gzip = gzipBody(formatEntryBundle(entries));
        storeBundles.submit({ index, gzip }).catch((error: unknown) => {
          logger.warn('cannot store a compressed entry bundle', {
            index,
            reason: (error as Error).message,
          });
        });
      }
      send(req, res, 200, gzip, {
        type: BINARY,
        cacheControl: IMMUTABLE,
        headers: { 'Content-Encoding': 'gzip', Vary: 'Accept-Encoding' },
      });
      return;
    }
    const bundle = formatEntryBundle(await storage.entries(start, start + width));
    send(req, res, 200, bundle, { type: BINARY, cacheControl: IMMUTABLE, gzip: true });
  }

  /**
   * Every entry for each of `hashParts`, each with a tlog-proof against checkpoint `cp` when
   * sequenced. All the proofs read their hashes in one batch, each hash once.
   */
  async function entriesFor(
    hashParts: readonly string[],
    treeSize: number,
    cp: string | undefined,
    reader: ReturnType<typeof readTiles>,
  ): Promise<LookupEntry[][]> {
    const found = await Promise.all(hashParts.map((h) => storage.lookup(h)));
    const sequenced =
      cp === undefined ? [] : found.flat().flatMap((e) => (e.index < treeSize ? [e.index] : []));
    const proofs = await proveInclusions(sequenced, treeSize, reader);
    const proofOf = new Map(sequenced.map((index, i) => [index, proofs[i]] as const));
    return found.map((entries, i) =>
      entries.map(({ index, data }) => {
        const entry = Buffer.from(data).toString('utf8');
        // Statements are notes; only claims have a JSON form.
        const claim =
          hashParts[i] === STATEMENTS_LOOKUP_KEY
            ? {}
            : { claim: claimToJson(parseEntry(entry, storeDir)) };
        const inclusionProof = proofOf.get(index);
        if (inclusionProof === undefined || cp === undefined) return { index, ...claim, entry };
        return {
          index,
          ...claim,
          entry,
          proof: formatTlogProof({ index, inclusionProof, checkpoint: cp }),
        };
      }),
    );
  }

  function sendLookup(req: IncomingMessage, res: ServerResponse, body: string) {
    // Typical answers are a few KiB: compressing them costs both sides more than it saves.
    const gzip = body.length > 16_384;
    send(req, res, 200, body, { type: JSON_TYPE, cacheControl: 'no-cache', gzip });
  }

  async function lookup(req: IncomingMessage, res: ServerResponse, hashPart: string) {
    if (!isHashPart(hashPart) && hashPart !== STATEMENTS_LOOKUP_KEY)
      throw new HttpError(400, 'not a store path hash part');
    const { treeSize, checkpoint: cp } = await storage.state();
    const [entries = []] = await entriesFor([hashPart], treeSize, cp, readTiles(treeSize));
    sendLookup(req, res, formatLookup({ hashPart, treeSize, checkpoint: cp ?? null, entries }));
  }

  /**
   * Reads a JSON body `{"<key>": [ … ]}` (exactly that key, 1 to `max` items), with the
   * documented errors: 415 for another type, 400 for bad JSON or shape, 413 for too many.
   */
  async function readJsonList(
    req: IncomingMessage,
    limits: { maxBytes: number; timeoutMs: number },
    key: string,
    max: number,
  ): Promise<unknown[]> {
    const type = req.headers['content-type'] ?? '';
    if (!/^application\/json\b/.test(type)) throw new HttpError(415, 'send application/json');
    const body = await readBody(req, limits);
    let parsed: unknown;
    try {
      parsed = JSON.parse(body.toString('utf8'));
    } catch {
      throw new HttpError(400, 'body is not valid JSON');
    }
    const list = (parsed as Record<string, unknown> | null)?.[key];
    if (!Array.isArray(list) || list.length === 0 || Object.keys(parsed as object).length !== 1) {
      throw new HttpError(400, `want {"${key}": [ … ]} with at least one`);
    }
    if (list.length > max) throw new HttpError(413, `more than ${max} ${key}`);
    return list as unknown[];
  }

  /** `POST /lookup`: many paths at once, all proved against one checkpoint. */
  async function lookupMany(req: IncomingMessage, res: ServerResponse) {
    const limits = { maxBytes: MAX_LOOKUP_REQUEST_BYTES, timeoutMs: bodyLimits.timeoutMs };
    const hashParts = await readJsonList(req, limits, 'hashParts', MAX_LOOKUP_PATHS);
    for (const [i, h] of hashParts.entries()) {
      if (typeof h !== 'string' || !isHashPart(h))
        throw new HttpError(400, `hashParts[${i}] is not a store path hash part`);
    }
    const unique = [...new Set(hashParts as string[])];
    const { treeSize, checkpoint: cp } = await storage.state();
    const found = await entriesFor(unique, treeSize, cp, readTiles(treeSize));
    const paths = Object.fromEntries(unique.map((h, i) => [h, found[i] ?? []]));
    sendLookup(req, res, formatBatchLookup({ treeSize, checkpoint: cp ?? null, paths }));
  }

  async function submit(req: IncomingMessage, res: ServerResponse) {
    const submitter = options.submitters.authenticate(req.headers.authorization);
    const claims = await readJsonList(req, bodyLimits, 'claims', maxClaims);
    const entries = claims.map((value: unknown, i) => {
      let checked: { claim: BuildClaim; entry: string };
      try {
        checked = entryFromJson(value, storeDir);
      } catch (e) {
        throw new HttpError(400, `claim ${i}: ${e instanceof Error ? e.message : String(e)}`);
      }
      const data = Buffer.from(checked.entry);
      return { data, leafHash: hashLeaf(data), hashPart: checked.claim.storePath.hashPart };
    });
    const before = (await storage.state()).nextIndex;
    const indexes = await storage.addEntries(entries);
    submitted.inc({ submitter }, entries.length);
    appended.inc({}, indexes.filter((i) => i >= before).length);
    logger.debug('accepted claims', { submitter, count: entries.length });
    send(req, res, 200, JSON.stringify({ indexes }), { type: JSON_TYPE, cacheControl: 'no-store' });
  }

  /** `POST /statements`: one key statement note, which must follow the log's last one. */
  async function statement(req: IncomingMessage, res: ServerResponse) {
    const identity = options.identity;
    if (identity === undefined) throw new HttpError(404, 'this log takes no key statements');
    const submitter = options.submitters.authenticate(req.headers.authorization);
    const type = req.headers['content-type'] ?? '';
    if (!/^text\/plain\b/.test(type)) throw new HttpError(415, 'send text/plain');
    const limits = { maxBytes: MAX_STATEMENT_BODY, timeoutMs: bodyLimits.timeoutMs };
    const body = await readBody(req, limits);
    const index = await acceptStatement(storage, identity, body);
    logger.info('accepted a key statement', { submitter, index });
    send(req, res, 200, JSON.stringify({ index }), { type: JSON_TYPE, cacheControl: 'no-store' });
  }

  async function route(req: IncomingMessage, res: ServerResponse): Promise<string> {
    const url = new URL(req.url ?? '/', 'http://log');
    const path = url.pathname;
    const get = req.method === 'GET' || req.method === 'HEAD';
    const allow = (methods: string) => {
      throw new HttpError(405, `use ${methods}`, { Allow: methods });
    };
    if (path === '/submit') {
      if (req.method !== 'POST') allow('POST');
      await submit(req, res);
      return 'submit';
    }
    if (path === '/statements') {
      if (req.method !== 'POST') allow('POST');
      await statement(req, res);
      return 'statements';
    }
    if (path === '/lookup' && req.method === 'POST') {
      await lookupMany(req, res);
      return 'lookup-many';
    }
    if (!get) allow('GET, HEAD');
    if (path === '/checkpoint') await checkpoint(req, res);
    else if (path.startsWith('/tile/')) await tile(req, res, path.slice(1));
    else if (path.startsWith('/lookup/')) await lookup(req, res, path.slice('/lookup/'.length));
    else if (path === '/metrics') sendMetrics(req, res, metrics);
    else if (path === '/health')
      await sendHealth(req, res, async () => ({ treeSize: (await storage.state()).treeSize }));
    else throw new HttpError(404, 'not found');
    return path.split('/')[1] ?? '';
  }

  return (req: IncomingMessage, res: ServerResponse): void => {
    route(req, res).then(
      (name) => {
        requests.inc({ route: name, status: String(res.statusCode) });
      },
      (error: unknown) => {
        sendError(req, res, logErrors(error) ?? error, logger);
        requests.inc({ route: 'error', status: String(res.statusCode) });
      },
    );
  };
}
