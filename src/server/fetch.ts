/**
 * HTTP(S) and file fetches, and POSTs, for Accord's clients: keep-alive connections, a deadline
 * and a size cap (everything fetched is hostile), and streamed downloads that fail when they
 * stall.
 */
import { constants } from 'node:fs';
import { type FileHandle, open } from 'node:fs/promises';
import http, { type ClientRequest, type IncomingMessage } from 'node:http';
import https from 'node:https';
import { type Readable, pipeline } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { createGunzip } from 'node:zlib';

/** A fetch that failed: `status` when the server answered; 404/403 or ENOENT mean absent. */
export class FetchError extends Error {
  override readonly name = 'FetchError';
  constructor(
    message: string,
    readonly status?: number,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }

  get notFound(): boolean {
    return this.status === 404 || this.status === 403;
  }
}

/** Why every fetch of this process is refused, when it is (see {@link refuseFetches}). */
let refusal: string | undefined;

/**
 * Makes every later fetch, download and POST of this process fail at once with a FetchError
 * naming `reason`, before any connection is made or any file opened; `undefined` allows them
 * again. For a command that promises to use no network (`accord audit --offline`): its clients
 * then take the path they take when nothing answers.
 */
export function refuseFetches(reason: string | undefined): void {
  refusal = reason;
}

const agents = {
  http: new http.Agent({ keepAlive: true, maxSockets: 64 }),
  https: new https.Agent({ keepAlive: true, maxSockets: 64 }),
};

/** How {@link request} is stopped from outside: a client gone, or the caller's deadline. */
interface Stop {
  readonly signal?: AbortSignal;
  /** Called with each request sent (a retry sends another), so a deadline can destroy it. */
  readonly onRequest?: (req: ClientRequest) => void;
  /** Ask caches on the way for a fresh copy (`Cache-Control: no-cache`). */
  readonly fresh?: boolean;
  /** More request headers (credentials: never part of an error message). */
  readonly headers?: Readonly<Record<string, string>>;
}

/**
 * Starts a GET (or a POST) and resolves with the response once its status is 200 (for a POST
 * any 2xx), else a FetchError. `idleMs` bounds every wait: for the headers and between body
 * chunks. The signal is watched with one listener, not handed to node:http, which costs more
 * per request than the rest of a small fetch.
 */
function request(
  url: string,
  idleMs: number,
  stop: Stop = {},
  post?: Post,
): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => {
    const { signal } = stop;
    if (refusal !== undefined) {
      reject(new FetchError(`${url}: ${refusal}`));
      return;
    }
    if (signal?.aborted === true) {
      reject(new FetchError(`${url}: aborted`));
      return;
    }
    let answered = false;
    const secure = url.startsWith('https:');
    const headers: Record<string, string | number> = {
      ...stop.headers,
      'Accept-Encoding': 'gzip, identity',
    };
    if (stop.fresh === true) headers['Cache-Control'] = 'no-cache';
    if (post !== undefined) {
      headers['Content-Type'] = post.type;
      headers['Content-Length'] = Buffer.byteLength(post.body);
    }
    const req = (secure ? https.request : http.request)(
      url,
      {
        method: post === undefined ? 'GET' : 'POST',
        agent: secure ? agents.https : agents.http,
        headers,
      },
      (res) => {
        answered = true;
        const status = res.statusCode ?? 0;
        if (post === undefined ? status !== 200 : status < 200 || status > 299) {
          res.resume();
          reject(new FetchError(`${url}: HTTP ${res.statusCode ?? '?'}`, res.statusCode));
          return;
        }
        resolve(res);
      },
    );
    stop.onRequest?.(req);
    if (signal !== undefined) {
      const abort = () => req.destroy(new FetchError(`${url}: aborted`));
      signal.addEventListener('abort', abort, { once: true });
      req.once('close', () => {
        signal.removeEventListener('abort', abort);
      });
    }
    req.setTimeout(idleMs, () => {
      req.destroy(new FetchError(`${url}: no data for ${idleMs} ms`));
    });
    req.on('error', (cause) => {
      // A kept-alive connection that the server closed as it was reused (its idle timeout, seen
      // late when this process was busy): the request got no answer, so a GET is sent again.
      // Each retry uses up one such connection of the pool; one on a new connection is final.
      const reset = (cause as NodeJS.ErrnoException).code === 'ECONNRESET';
      if (reset && req.reusedSocket && !answered && post === undefined) {
        request(url, idleMs, stop, post).then(resolve, reject);
        return;
      }
      reject(
        cause instanceof FetchError
          ? cause
          : new FetchError(`${url}: unreachable (${cause.message})`, undefined, { cause }),
      );
    });
    req.end(post?.body);
  });
}

/** A request body to POST. */
interface Post {
  readonly body: string | Uint8Array;
  readonly type: string;
}

/**
 * The body of a response, gunzipped when the server compressed it. A pipeline, not `pipe`: a
 * response that fails or stops early must fail the gunzip too, or a reader would wait for ever.
 */
function body(res: IncomingMessage): Readable {
  if (res.headers['content-encoding'] !== 'gzip') return res;
  const gunzip = createGunzip();
  pipeline(res, gunzip, () => undefined);
  return gunzip;
}

/** Options of a fetch. */
export interface FetchOptions {
  /** Ask caches on the way (a CDN, a proxy) for a fresh copy: after a copy proved wrong. */
  readonly fresh?: boolean;
  /** More request headers, as credentials for the server asked (never logged). */
  readonly headers?: Readonly<Record<string, string>>;
}

/**
 * Fetches `url` (http, https or file) and returns its body, failing when no data comes for
 * `timeoutMs` or the body is larger than `maxBytes`.
 */
export async function fetchBytes(
  url: string,
  timeoutMs: number,
  maxBytes: number,
  options: FetchOptions = {},
): Promise<Buffer> {
  if (!url.startsWith('file://'))
    return (await readResponse(url, timeoutMs, maxBytes, undefined, true, options)).bytes;
  const file = await openRegularFile(url);
  try {
    const { size } = await file.stat();
    if (size > maxBytes) throw new FetchError(`${url}: larger than ${maxBytes} bytes`);
    return await file.readFile();
  } finally {
    await file.close();
  }
}

/**
 * Opens a `file://` URL for reading, only if it is a regular file. Opened without blocking
 * and checked before any read: a FIFO or a device would hold one of Node's few I/O threads
 * for as long as it likes (until every file and gzip call waits).
 */
async function openRegularFile(url: string): Promise<FileHandle> {
  if (refusal !== undefined) throw new FetchError(`${url}: ${refusal}`);
  let file: FileHandle;
  try {
    file = await open(fileURLToPath(url), constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (cause) {
    const code = (cause as NodeJS.ErrnoException).code;
    throw new FetchError(`${url}: ${code ?? 'cannot open'}`, code === 'ENOENT' ? 404 : undefined, {
      cause,
    });
  }
  const stat = await file.stat().catch(async (cause: unknown) => {
    await file.close();
    throw new FetchError(`${url}: cannot stat`, undefined, { cause });
  });
  if (!stat.isFile()) {
    await file.close();
    throw new FetchError(`${url}: not a regular file`, 404);
  }
  return file;
}

/** {@link fetchBytes}, but undefined when the server answers 404 (it has no such file). */
export async function fetchIfPresent(
  url: string,
  timeoutMs: number,
  maxBytes: number,
  options: FetchOptions = {},
): Promise<Buffer | undefined> {
  try {
    return await fetchBytes(url, timeoutMs, maxBytes, options);
  } catch (error) {
    if (error instanceof FetchError && error.status === 404) return undefined;
    throw error;
  }
}

/** A body as the server sent it. */
export interface EncodedBody {
  readonly bytes: Buffer;
  /** True when `bytes` are gzip-encoded (`Content-Encoding: gzip`). */
  readonly gzip: boolean;
}

/**
 * Fetches `url` like {@link fetchBytes}, but returns the body as the server sent it, gzip-encoded
 * when it compressed it (for a caller that keeps the encoding); `maxBytes` bounds the bytes sent.
 */
export async function fetchEncoded(
  url: string,
  timeoutMs: number,
  maxBytes: number,
  options: FetchOptions = {},
): Promise<EncodedBody> {
  if (url.startsWith('file://'))
    return { bytes: await fetchBytes(url, timeoutMs, maxBytes), gzip: false };
  return readResponse(url, timeoutMs, maxBytes, undefined, false, options);
}

/**
 * POSTs `body` to `url` (http or https) and returns the answer's body; any 2xx status is a
 * success, others are a FetchError. Same deadline and cap as {@link fetchBytes}.
 */
export async function postBytes(
  url: string,
  body: string | Uint8Array,
  type: string,
  timeoutMs: number,
  maxBytes: number,
): Promise<Buffer> {
  return (await readResponse(url, timeoutMs, maxBytes, { body, type })).bytes;
}

/**
 * Collects a response body (gunzipped when `decode`) up to `maxBytes`. Events, not async
 * iteration: for the small bodies most fetches are, that is a good part of the cost.
 */
function collect(res: IncomingMessage, url: string, maxBytes: number, decode: boolean) {
  return new Promise<Buffer>((resolve, reject) => {
    const stream = decode ? body(res) : res;
    const chunks: Buffer[] = [];
    let size = 0;
    let ended = false;
    const fail = (error: Error) => {
      res.destroy();
      if (stream !== res) stream.destroy();
      reject(error);
    };
    stream.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > maxBytes) fail(new FetchError(`${url}: larger than ${maxBytes} bytes`));
      else chunks.push(chunk);
    });
    stream.once('end', () => {
      ended = true;
      resolve(Buffer.concat(chunks, size));
    });
    stream.once('error', fail);
    if (stream !== res) res.once('error', fail);
    // A connection closed before the end of the body (the server, or a deadline).
    res.once('close', () => {
      if (!ended && !res.complete) fail(new Error('connection closed before the end'));
    });
  });
}

/** Reads a response's body: gunzipped when `decode` and the server compressed it. */
async function readResponse(
  url: string,
  timeoutMs: number,
  maxBytes: number,
  post?: Post,
  decode = true,
  options: FetchOptions = {},
): Promise<EncodedBody> {
  // The whole exchange has one deadline: when it passes, the request in flight is destroyed.
  let current: ClientRequest | undefined;
  const deadline = { passed: false };
  const timer = setTimeout(() => {
    deadline.passed = true;
    current?.destroy(new FetchError(`${url}: no answer within ${timeoutMs} ms`));
  }, timeoutMs);
  try {
    const stop = {
      onRequest: (r: ClientRequest) => (current = r),
      fresh: options.fresh === true,
      ...(options.headers === undefined ? {} : { headers: options.headers }),
    };
    const res = await request(url, timeoutMs, stop, post);
    if (Number(res.headers['content-length'] ?? 0) > maxBytes) {
      res.destroy();
      throw new FetchError(`${url}: larger than ${maxBytes} bytes`);
    }
    const gzip = !decode && res.headers['content-encoding'] === 'gzip';
    try {
      return { bytes: await collect(res, url, maxBytes, decode), gzip };
    } catch (cause) {
      if (cause instanceof FetchError && !deadline.passed) throw cause;
      const why = deadline.passed
        ? `no answer within ${timeoutMs} ms`
        : `body interrupted (${(cause as Error).message})`;
      throw new FetchError(`${url}: ${why}`, undefined, { cause });
    }
  } finally {
    clearTimeout(timer);
  }
}

/** Streams `url` (http, https or file); fails when no data arrives for `idleMs`. */
export async function* download(
  url: string,
  idleMs: number,
  signal?: AbortSignal,
  options: FetchOptions = {},
): AsyncGenerator<Uint8Array> {
  const stop = {
    ...(signal === undefined ? {} : { signal }),
    ...(options.headers === undefined ? {} : { headers: options.headers }),
  };
  if (url.startsWith('file://')) {
    const file = await openRegularFile(url);
    yield* file.createReadStream({
      ...(signal === undefined ? {} : { signal }),
      highWaterMark: 1 << 20,
    });
    return;
  }
  const res = await request(url, idleMs, stop);
  try {
    yield* body(res);
  } catch (cause) {
    throw cause instanceof FetchError
      ? cause
      : new FetchError(`${url}: download interrupted (${(cause as Error).message})`, undefined, {
          cause,
        });
  } finally {
    res.destroy();
  }
}
