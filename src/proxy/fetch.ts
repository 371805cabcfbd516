/** HTTP and file fetches with a deadline and a size cap (everything fetched is hostile). */
import { open } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';

/** A fetch that failed: `status` when the server answered, `notFound` for 404/403 or ENOENT. */
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

/**
 * Fetches `url` (http, https or file) and returns its body, failing when it takes longer than
 * `timeoutMs` or is larger than `maxBytes`.
 */
export async function fetchBytes(
  url: string,
  timeoutMs: number,
  maxBytes: number,
): Promise<Buffer> {
  if (url.startsWith('file://')) {
    let file;
    try {
      file = await open(fileURLToPath(url));
    } catch (cause) {
      const code = (cause as NodeJS.ErrnoException).code;
      throw new FetchError(
        `${url}: ${code ?? 'cannot open'}`,
        code === 'ENOENT' ? 404 : undefined,
        { cause },
      );
    }
    try {
      const { size } = await file.stat();
      if (size > maxBytes) throw new FetchError(`${url}: larger than ${maxBytes} bytes`);
      return await file.readFile();
    } finally {
      await file.close();
    }
  }
  let res: Response;
  const signal = AbortSignal.timeout(timeoutMs);
  try {
    res = await fetch(url, { signal, headers: { 'Accept-Encoding': 'gzip, identity' } });
  } catch (cause) {
    const why =
      (cause as Error).name === 'TimeoutError' ? `no answer within ${timeoutMs} ms` : 'unreachable';
    throw new FetchError(`${url}: ${why}`, undefined, { cause });
  }
  if (!res.ok) {
    await res.body?.cancel();
    throw new FetchError(`${url}: HTTP ${res.status}`, res.status);
  }
  const declared = Number(res.headers.get('content-length') ?? NaN);
  if (declared > maxBytes) {
    await res.body?.cancel();
    throw new FetchError(`${url}: larger than ${maxBytes} bytes`);
  }
  const chunks: Uint8Array[] = [];
  let size = 0;
  try {
    const body = (res.body ?? []) as AsyncIterable<Uint8Array> | Uint8Array[];
    for await (const chunk of body) {
      size += chunk.length;
      if (size > maxBytes) throw new FetchError(`${url}: larger than ${maxBytes} bytes`);
      chunks.push(chunk);
    }
  } catch (cause) {
    if (cause instanceof FetchError) throw cause;
    throw new FetchError(`${url}: body interrupted (${(cause as Error).message})`, undefined, {
      cause,
    });
  }
  return Buffer.concat(chunks);
}
