/**
 * HTTP(S) and file fetches, and POSTs, for Accord's clients: keep-alive connections, a deadline
 * and a size cap (everything fetched is hostile), and streamed downloads that fail when they
 * stall.
 */
import { createReadStream } from 'node:fs';
import { open } from 'node:fs/promises';
import http, { type IncomingMessage } from 'node:http';
import https from 'node:https';
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

const agents = {
  http: new http.Agent({ keepAlive: true, maxSockets: 64 }),
  https: new https.Agent({ keepAlive: true, maxSockets: 64 }),
};

/**
 * Starts a GET and resolves with the response once its status is 200 (else a FetchError).
 * `idleMs` bounds every wait: for the headers and between body chunks.
 */
function request(
  url: string,
  idleMs: number,
  signal?: AbortSignal,
  post?: Post,
): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => {
    let answered = false;
    const secure = url.startsWith('https:');
    const headers: Record<string, string | number> = { 'Accept-Encoding': 'gzip, identity' };
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
        ...(signal === undefined ? {} : { signal }),
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
    req.setTimeout(idleMs, () => {
      req.destroy(new FetchError(`${url}: no data for ${idleMs} ms`));
    });
    req.on('error', (cause) => {
      // A kept-alive connection that the server closed as it was reused (its idle timeout, seen
      // late when this process was busy): the request got no answer, so a GET is sent again.
      // Each retry uses up one such connection of the pool; one on a new connection is final.
      const reset = (cause as NodeJS.ErrnoException).code === 'ECONNRESET';
      if (reset && req.reusedSocket && !answered && post === undefined) {
        request(url, idleMs, signal, post).then(resolve, reject);
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

/** The body of a response, gunzipped when the server compressed it. */
function body(res: IncomingMessage): AsyncIterable<Uint8Array> {
  return res.headers['content-encoding'] === 'gzip' ? res.pipe(createGunzip()) : res;
}

/**
 * Fetches `url` (http, https or file) and returns its body, failing when no data comes for
 * `timeoutMs` or the body is larger than `maxBytes`.
 */
export async function fetchBytes(
  url: string,
  timeoutMs: number,
  maxBytes: number,
): Promise<Buffer> {
  if (!url.startsWith('file://')) return (await readResponse(url, timeoutMs, maxBytes)).bytes;
  let file;
  try {
    file = await open(fileURLToPath(url));
  } catch (cause) {
    const code = (cause as NodeJS.ErrnoException).code;
    throw new FetchError(`${url}: ${code ?? 'cannot open'}`, code === 'ENOENT' ? 404 : undefined, {
      cause,
    });
  }
  try {
    const { size } = await file.stat();
    if (size > maxBytes) throw new FetchError(`${url}: larger than ${maxBytes} bytes`);
    return await file.readFile();
  } finally {
    await file.close();
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
): Promise<EncodedBody> {
  if (url.startsWith('file://'))
    return { bytes: await fetchBytes(url, timeoutMs, maxBytes), gzip: false };
  return readResponse(url, timeoutMs, maxBytes, undefined, false);
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

/** Reads a response's body: gunzipped when `decode` and the server compressed it. */
async function readResponse(
  url: string,
  timeoutMs: number,
  maxBytes: number,
  post?: Post,
  decode = true,
): Promise<EncodedBody> {
  const deadline = AbortSignal.timeout(timeoutMs);
  const res = await request(url, timeoutMs, deadline, post).catch((e: unknown) => {
    throw deadline.aborted ? new FetchError(`${url}: no answer within ${timeoutMs} ms`) : e;
  });
  if (Number(res.headers['content-length'] ?? 0) > maxBytes) {
    res.destroy();
    throw new FetchError(`${url}: larger than ${maxBytes} bytes`);
  }
  const gzip = !decode && res.headers['content-encoding'] === 'gzip';
  const chunks: Uint8Array[] = [];
  let size = 0;
  try {
    const stream: AsyncIterable<Uint8Array> = decode ? body(res) : res;
    for await (const chunk of stream) {
      size += chunk.length;
      if (size > maxBytes) throw new FetchError(`${url}: larger than ${maxBytes} bytes`);
      chunks.push(chunk);
    }
  } catch (cause) {
    res.destroy();
    if (cause instanceof FetchError) throw cause;
    const why = deadline.aborted
      ? `no answer within ${timeoutMs} ms`
      : `body interrupted (${(cause as Error).message})`;
    throw new FetchError(`${url}: ${why}`, undefined, { cause });
  }
  return { bytes: Buffer.concat(chunks), gzip };
}

/** Streams `url` (http, https or file); fails when no data arrives for `idleMs`. */
export async function* download(
  url: string,
  idleMs: number,
  signal: AbortSignal,
): AsyncGenerator<Uint8Array> {
  if (url.startsWith('file://')) {
    yield* createReadStream(fileURLToPath(url), { signal, highWaterMark: 1 << 20 });
    return;
  }
  const res = await request(url, idleMs, signal);
  try {
    yield* body(res);
  } finally {
    res.destroy();
  }
}
