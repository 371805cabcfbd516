/**
 * HTTP plumbing shared by Accord's servers: one error type mapped to status codes in one place,
 * request bodies read with a size cap and a deadline, listen addresses, graceful close.
 */
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { Server as HttpsServer } from 'node:https';
import { gzipSync } from 'node:zlib';
import type { Logger } from './logger.js';
import type { Registry } from './metrics.js';

/** An error with the HTTP status to answer; the message is sent to the client (as `type`). */
export class HttpError extends Error {
  override readonly name = 'HttpError';
  constructor(
    readonly status: number,
    message: string,
    readonly headers: Record<string, string> = {},
    readonly type = 'text/plain; charset=utf-8',
  ) {
    super(message);
  }
}

/**
 * A server's one mapping from its modules' errors to HTTP answers: undefined for an error it
 * does not know (an unexpected failure, a 500).
 */
export type ErrorMapper = (error: unknown) => HttpError | undefined;

/** Options for reading a request body. */
export interface BodyLimits {
  /** Largest body accepted, in bytes (413 beyond). */
  readonly maxBytes: number;
  /** Longest time the whole body may take to arrive, in milliseconds (408 beyond). */
  readonly timeoutMs: number;
}

/**
 * Reads a request body (attacker-controlled): a declared Content-Length over the cap is refused
 * before reading; a body that grows past it, or is still arriving at the deadline (a slow-loris
 * client), is cut off.
 */
export function readBody(req: IncomingMessage, limits: BodyLimits): Promise<Buffer> {
  const declared = req.headers['content-length'];
  if (declared !== undefined && Number(declared) > limits.maxBytes) {
    return Promise.reject(new HttpError(413, `body larger than ${limits.maxBytes} bytes`));
  }
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const fail = (error: HttpError) => {
      clearTimeout(timer);
      req.removeAllListeners('data');
      req.resume();
      reject(error);
    };
    const timer = setTimeout(() => {
      fail(new HttpError(408, `body not received within ${limits.timeoutMs} ms`));
    }, limits.timeoutMs);
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > limits.maxBytes)
        fail(new HttpError(413, `body larger than ${limits.maxBytes} bytes`));
      else chunks.push(chunk);
    });
    req.on('end', () => {
      clearTimeout(timer);
      resolve(Buffer.concat(chunks));
    });
    req.on('error', (e) => {
      fail(new HttpError(400, `cannot read body: ${e.message}`));
    });
  });
}

/** Response options: content type, cache lifetime, and whether gzip may be applied. */
export interface SendOptions {
  readonly type: string;
  readonly cacheControl?: string;
  readonly gzip?: boolean;
  readonly headers?: Record<string, string>;
}

/** True when the request accepts a gzip-encoded answer. */
export function acceptsGzip(req: IncomingMessage): boolean {
  return /\bgzip\b/.test(req.headers['accept-encoding'] ?? '');
}

/**
 * The gzip encoding of a body, at level 1 as nginx compresses by default: on entry bundles
 * (hashes, mostly) it costs about 30% less CPU than the default level 6 for 6% more bytes.
 */
export function gzipBody(data: Uint8Array): Buffer {
  return gzipSync(data, { level: 1 });
}

/**
 * Smallest body sent gzip-encoded: below, compressing costs both sides more time than it saves
 * on the wire (a monitor's `/paths` answer of 1 KiB took about 1 ms more to fetch).
 */
const GZIP_MIN_BYTES = 8192;

/** Sends a body, gzip-encoded when allowed, large enough, and the client accepts gzip. */
export function send(
  req: IncomingMessage,
  res: ServerResponse,
  status: number,
  body: Uint8Array | string,
  options: SendOptions,
): void {
  let data = typeof body === 'string' ? Buffer.from(body) : body;
  const headers: Record<string, string> = { 'Content-Type': options.type, ...options.headers };
  if (options.cacheControl !== undefined) headers['Cache-Control'] = options.cacheControl;
  if (options.gzip === true) {
    headers.Vary = 'Accept-Encoding';
    if (data.length >= GZIP_MIN_BYTES && acceptsGzip(req)) {
      data = gzipBody(data);
      headers['Content-Encoding'] = 'gzip';
    }
  }
  headers['Content-Length'] = String(data.length);
  res.writeHead(status, headers);
  res.end(req.method === 'HEAD' ? undefined : data);
}

/**
 * Answers `GET /health`: 200 with `{"status":"ok", …details}` when `check` (a read of the
 * server's state) succeeds, else 503 with `{"status":"failing","reason":…}`. Never cached.
 */
export async function sendHealth(
  req: IncomingMessage,
  res: ServerResponse,
  check: () => Promise<Record<string, unknown>> | Record<string, unknown>,
): Promise<void> {
  let status = 200;
  let body: Record<string, unknown>;
  try {
    body = { status: 'ok', ...(await check()) };
  } catch (error) {
    status = 503;
    body = { status: 'failing', reason: error instanceof Error ? error.message : String(error) };
  }
  send(req, res, status, `${JSON.stringify(body)}\n`, {
    type: 'application/json',
    cacheControl: 'no-store',
  });
}

/** Answers with the Prometheus text exposition of `metrics`. */
export function sendMetrics(req: IncomingMessage, res: ServerResponse, metrics: Registry): void {
  send(req, res, 200, metrics.render(), { type: 'text/plain; version=0.0.4' });
}

/**
 * A request handler running an async route, whose errors become their HTTP answers: an
 * `HttpError` as it is, a module's error through `toHttp`, anything else a 500.
 */
export function routeHandler(
  route: (req: IncomingMessage, res: ServerResponse) => Promise<void>,
  logger: Logger,
  toHttp?: ErrorMapper,
): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    route(req, res).catch((error: unknown) => {
      sendError(req, res, (error instanceof HttpError ? error : toHttp?.(error)) ?? error, logger);
    });
  };
}

/** Sends an error as `text/plain` (the message), logging unexpected ones. */
export function sendError(
  req: IncomingMessage,
  res: ServerResponse,
  error: unknown,
  logger: Logger,
): void {
  const status = error instanceof HttpError ? error.status : 500;
  const message =
    error instanceof HttpError ? error.message : 'internal error (see the server log)';
  if (!(error instanceof HttpError)) {
    logger.error('request failed', { method: req.method, url: req.url, error });
  }
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const headers = error instanceof HttpError ? error.headers : {};
  send(req, res, status, `${message}\n`, {
    type: error instanceof HttpError ? error.type : 'text/plain; charset=utf-8',
    cacheControl: 'no-store',
    headers: {
      ...headers,
      ...(status === 408 || status === 413 || unreadBody(req) ? { Connection: 'close' } : {}),
    },
  });
}

/**
 * True when the request has a body not read to its end (an answer given before reading it, as
 * to an unauthenticated submission): the connection is closed rather than kept reading a body
 * nobody asked for.
 */
function unreadBody(req: IncomingMessage): boolean {
  const hasBody =
    req.headers['transfer-encoding'] !== undefined ||
    (req.headers['content-length'] !== undefined && req.headers['content-length'] !== '0');
  return hasBody && !req.readableEnded;
}

/** Parses `HOST:PORT` (`[::1]:8080` for IPv6); port 0 picks a free port. */
export function parseListen(text: string): { host: string; port: number } {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]*)):(\d{1,5})$/.exec(text);
  const port = Number(m?.[3]);
  if (m === null || port > 65535)
    throw new Error(`--listen ${JSON.stringify(text)}: want HOST:PORT`);
  return { host: m[1] ?? m[2] ?? '', port };
}

/** Starts listening and resolves with the bound address (`http://host:port`). */
export function listen(server: Server | HttpsServer, host: string, port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      const address = server.address();
      if (address === null || typeof address === 'string') throw new Error('bug: no TCP address');
      const h = address.family === 'IPv6' ? `[${address.address}]` : address.address;
      resolve(`${server instanceof HttpsServer ? 'https' : 'http'}://${h}:${address.port}`);
    });
  });
}

/** Stops accepting connections and waits for the open ones to finish (up to `graceMs`). */
export function close(server: Server | HttpsServer, graceMs = 5000): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      server.closeAllConnections();
    }, graceMs);
    server.close(() => {
      clearTimeout(timer);
      resolve();
    });
    server.closeIdleConnections();
  });
}
